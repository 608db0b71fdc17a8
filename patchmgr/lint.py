"""Validate a whole patch set before git sees any of it.

Each patch file is parsed and checked on its own (patchfile), then against
the set: a path must belong to the repository whose list carries the patch
(not reach into a nested submodule). Against the base tree, before apply
writes anything: a patch must not write through a symlink or into a
submodule the set does not patch, and the manifest's repository and Enzyme
paths must be what the manifest says they are (submodules, reached through
directories, inside the checkout). The decisions are pure functions over the
modes one `git ls-tree` reports, so they are tested without a repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from patchmgr import gitmodules
from patchmgr.errors import BadInput
from patchmgr.gitio import Repo
from patchmgr.output import show
from patchmgr.patchfile import Patch, parse_patch
from patchmgr.safety import inside
from patchmgr.series import (
    DEFAULT_ENZYME_PATH,
    MANIFEST_NAME,
    SUPERPROJECT,
    Manifest,
    PatchSet,
    RepoSeries,
    TreePath,
    manifest_tree_paths,
    missing_patch_files,
)

MODE_TREE, MODE_SYMLINK, MODE_GITLINK = "040000", "120000", "160000"
#: git ls-tree reads its arguments as pathspecs; a name from a patch such as
#: ':(exclude)x' must stay a literal name, not become pathspec magic
_LITERAL_PATHSPECS = {"GIT_LITERAL_PATHSPECS": "1"}


def load_patches(patch_set: PatchSet) -> dict[str, list[Patch]]:
    """repo path -> parsed patches, in series order; the first problem is raised."""
    missing = missing_patch_files(patch_set)
    if missing:
        raise BadInput(f"{patch_set.root / missing[0]}: patch file listed in the manifest does not exist; "
                       "add it or remove it from the set")
    loaded = {}
    for repo in patch_set.all_series():
        patches = []
        for name in repo.patches:
            label = patch_set.patch_label(repo, name)
            path = patch_set.patch_file(repo, name)
            if not inside(patch_set.root, path):
                raise BadInput(f"{label}: the patch file leads outside {patch_set.root} through a symlink "
                               f"({os.path.realpath(path)}); refusing to read it")
            patch = parse_patch(path.read_bytes(), label)
            _check_ownership(patch_set, repo, patch)
            patches.append(patch)
        loaded[repo.path] = patches
    return loaded


def _nested_paths(patch_set: PatchSet, repo: RepoSeries) -> list[str]:
    """Paths, relative to `repo`, that belong to another repository of the set."""
    prefix = "" if repo.path == SUPERPROJECT else repo.path + "/"
    others = [r.path for r in patch_set.repos if r.path != repo.path]
    if patch_set.enzyme and patch_set.enzyme.path != repo.path:
        others.append(patch_set.enzyme.path)
    return [o[len(prefix):] for o in others if o != SUPERPROJECT and o.startswith(prefix)]


def _check_ownership(patch_set: PatchSet, repo: RepoSeries, patch: Patch) -> None:
    for nested in _nested_paths(patch_set, repo):
        for path in patch.paths:
            if path == nested or path.startswith(nested + "/"):
                raise BadInput(f"{patch.label}: touches {path!r}, which is inside {nested!r}, another repository; "
                               "move the patch to that repository's list")


def leading_paths(path: str) -> list[str]:
    """'a/b/c' -> ['a', 'a/b', 'a/b/c']: every directory git passes through to reach `path`, and the path."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def tree_modes(repo: Repo, base: str, paths: list[str]) -> dict[str, str]:
    """path -> mode ('040000', '100644', '120000', '160000', ...) in `base`'s tree, for each
    of `paths` and its leading directories that exist there; one `git ls-tree`."""
    prefixes = sorted({prefix for path in paths for prefix in leading_paths(path)})
    if not prefixes:
        return {}
    out = repo.run("ls-tree", "-z", "--full-tree", base, "--", *prefixes, readonly=True, strip=False,
                   env=_LITERAL_PATHSPECS)
    modes = {}
    for entry in out.split("\0"):
        meta, tab, name = entry.partition("\t")
        if tab:
            modes[name] = meta.split(" ", 1)[0]
    # ls-tree descends into a directory that a deeper argument lies in and
    # lists what is inside instead of the directory itself; git has no empty
    # trees, so a directory on the way is one with something listed under it
    listed_dirs = {prefix for name in modes for prefix in leading_paths(name)[:-1]}
    for prefix in prefixes:
        if prefix not in modes and prefix in listed_dirs:
            modes[prefix] = MODE_TREE
    return modes


def base_path_problem(path: str, modes: dict[str, str], repo_label: str) -> str | None:
    """Why a patch may not write `path` in a repository whose base tree has `modes`, or None.

    Through a symlink git would write outside the checkout (or wherever the
    link points); into a gitlink it would write files the submodule's own
    repository does not know, which the set does not patch. (A path's length
    is checked where the patch is read: git measures it from the top of the
    repository it works in, whatever the submodule's own path.)
    """
    for prefix in leading_paths(path):
        mode = modes.get(prefix)
        if mode == MODE_SYMLINK:
            return f"touches {path!r} through the symlink {prefix!r} in {repo_label}; refusing the patch"
        if mode == MODE_GITLINK:
            if prefix == path:
                return f"touches {path!r}, a submodule in {repo_label}'s base tree, which the set does not patch"
            return f"touches {path!r} inside submodule {prefix!r} (in {repo_label}), which the set does not patch"
    return None


def check_against_base(repo: Repo, base: str, patches: list[Patch]) -> None:
    """Refuse patches that go through (or are) a symlink or a submodule of the base tree,
    before anything is written."""
    modes = tree_modes(repo, base, [path for patch in patches for path in patch.paths])
    for patch in patches:
        for path in patch.paths:
            problem = base_path_problem(path, modes, repo.label)
            if problem:
                raise BadInput(f"{patch.label}: {problem}")


def _what(mode: str | None) -> str:
    return {None: "it does not exist there", MODE_TREE: "it is a directory", MODE_SYMLINK: "it is a symlink",
            MODE_GITLINK: "it is a submodule"}.get(mode, "it is a file")


def manifest_path_problem(entry: TreePath, modes: dict[str, str], listed: set[str]) -> str | None:
    """Why a manifest path does not fit the base tree with `modes`, or None (pure).

    A repository path must be a submodule (gitlink) reached through
    directories; the Enzyme path must be absent (apply adds it), a directory
    or a submodule, never a file or a symlink. Neither may run through a
    symlink or through a submodule the set does not list: apply would follow
    the link, or add and commit into a repository nothing checks. Past a
    listed submodule the path is that repository's to judge.
    """
    for prefix in leading_paths(entry.path)[:-1]:
        mode = modes.get(prefix)
        if mode == MODE_TREE:
            continue
        if mode == MODE_SYMLINK:
            return f"runs through the symlink {prefix!r} in the base tree"
        if mode == MODE_GITLINK:
            return None if prefix in listed else f"lies inside submodule {prefix!r}, which the set does not list"
        if mode is None:
            return None if entry.kind == "enzyme" else f"is not in the base tree ({prefix!r} does not exist)"
        return f"runs through {prefix!r}, which is a file in the base tree, not a directory"
    mode = modes.get(entry.path)
    if entry.kind == "repo" and mode != MODE_GITLINK:
        return f"is not a submodule in the base tree ({_what(mode)})"
    if entry.kind == "enzyme" and mode not in (None, MODE_TREE, MODE_GITLINK):
        return f"cannot hold the Enzyme submodule ({_what(mode)} in the base tree)"
    return None


def check_manifest_paths(superproject: Repo, base: str, patch_set: PatchSet, root: Path) -> None:
    """Refuse a set whose repository or Enzyme paths do not fit the superproject's base tree
    (see manifest_path_problem) or lead out of the checkout `root` through a symlink in the
    work tree; one `git ls-tree`, nothing written."""
    entries = manifest_tree_paths(patch_set)
    modes = tree_modes(superproject, base, [entry.path for entry in entries])
    listed = {r.path for r in patch_set.repos if r.path != SUPERPROJECT}
    for entry in entries:
        problem = manifest_path_problem(entry, modes, listed)
        if problem is None and entry.kind == "enzyme" and modes.get(entry.path) == MODE_GITLINK:
            problem = _foreign_submodule_problem(superproject, base, patch_set)
        if problem is None and not inside(root, Path(root) / entry.path):
            problem = f"leads outside the checkout through a symlink (to {os.path.realpath(Path(root) / entry.path)})"
        if problem:
            raise BadInput(f"{patch_set.root / MANIFEST_NAME}: key '{entry.key}' path {entry.path!r} {problem}")


def submodule_url(superproject: Repo, base: str, path: str) -> str | None:
    """The URL `base`'s .gitmodules gives the submodule at `path`, as git submodule reads it; None
    where .gitmodules does not name that path or git cannot parse it."""
    entry = gitmodules.read(superproject, f"{base}:.gitmodules").get(path)
    return entry.url if entry else None


def same_repository(a: str, b: str) -> bool:
    """Whether two clone URLs name one repository, spelled with or without '.git' or a final '/'
    (hosts such as GitHub ignore the case of the owner and name)."""
    def norm(url: str) -> str:
        return url.strip().rstrip("/").removesuffix(".git").lower()
    return norm(a) == norm(b)


def _foreign_submodule_problem(superproject: Repo, base: str, patch_set: PatchSet) -> str | None:
    """Why the submodule the base tree already has at the Enzyme path cannot be Enzyme, or None.

    apply takes such a submodule for Enzyme and fetches the pin from its own
    URL; when .gitmodules names another repository there (the Enzyme path set
    to src/llvm-project, whose patch list then reads as Enzyme's), apply would
    patch the superproject first and fail inside the other repository.
    """
    pin = patch_set.enzyme
    assert pin is not None
    url = submodule_url(superproject, base, pin.path)
    if url is not None and same_repository(url, pin.url):
        return None
    which = f"the submodule {url}" if url else "a submodule .gitmodules does not name"
    also = (f", and the set's repos.\"{pin.path}\" list is read as Enzyme's own patches"
            if patch_set.enzyme_series else "")
    return (f"is {which} in the base tree, not Enzyme ({pin.url}){also}; give Enzyme a path of its own "
            f"(the default is {DEFAULT_ENZYME_PATH})")


def command(manifest: Manifest, args) -> None:
    """`patchmgr lint [--set NAME]`: every set of the manifest (or the one named), no tree needed."""
    for patch_set in [manifest.get(args.set_name)] if args.set_name else manifest.sets.values():
        count = sum(len(p) for p in load_patches(patch_set).values())
        show(f"ok {patch_set.name}: {count} patches")
