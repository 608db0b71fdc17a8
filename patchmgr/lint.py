"""Validate a whole patch set before git sees any of it.

Each patch file is parsed and checked on its own (patchfile), then against
the set: a path must belong to the repository whose list carries the patch
(not reach into a nested submodule) and must not run through a symlink the
base tree has.
"""

from __future__ import annotations

from patchmgr.errors import BadInput
from patchmgr.gitio import Repo
from patchmgr.patchfile import Patch, parse_patch
from patchmgr.series import SUPERPROJECT, PatchSet, RepoSeries, missing_patch_files


def load_patches(patch_set: PatchSet) -> dict[str, list[Patch]]:
    """repo path -> parsed patches, in series order; the first problem is raised."""
    missing = missing_patch_files(patch_set)
    if missing:
        raise BadInput(f"{patch_set.root / missing[0]}: patch file listed in the manifest does not exist; "
                       "add it or remove it from the set")
    loaded = {}
    for repo in patch_set.repos:
        patches = []
        for name in repo.patches:
            label = patch_set.patch_label(repo, name)
            patch = parse_patch(patch_set.patch_file(repo, name).read_bytes(), label)
            _check_ownership(patch_set, repo, patch)
            patches.append(patch)
        loaded[repo.path] = patches
    return loaded


def _nested_paths(patch_set: PatchSet, repo: RepoSeries) -> list[str]:
    """Paths, relative to `repo`, that belong to another repository of the set."""
    prefix = "" if repo.path == SUPERPROJECT else repo.path + "/"
    others = [r.path for r in patch_set.repos if r.path != repo.path]
    if patch_set.enzyme:
        others.append(patch_set.enzyme.path)
    return [o[len(prefix):] for o in others if o != SUPERPROJECT and o.startswith(prefix)]


def _check_ownership(patch_set: PatchSet, repo: RepoSeries, patch: Patch) -> None:
    for nested in _nested_paths(patch_set, repo):
        for path in patch.paths:
            if path == nested or path.startswith(nested + "/"):
                raise BadInput(f"{patch.label}: touches {path!r}, which is inside {nested!r}, another repository; "
                               "move the patch to that repository's list")


def check_symlinks(repo: Repo, base: str, patches: list[Patch]) -> None:
    """Refuse patches whose paths go through (or are) a symlink in the base tree."""
    prefixes = set()
    for patch in patches:
        for path in patch.paths:
            parts = path.split("/")
            prefixes.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    if not prefixes:
        return
    out = repo.run("ls-tree", "-z", "--full-tree", base, "--", *sorted(prefixes), readonly=True, strip=False)
    links = {entry.partition("\t")[2] for entry in out.split("\0") if entry.startswith("120000 ")}
    for patch in patches:
        for path in patch.paths:
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                if "/".join(parts[:i]) in links:
                    raise BadInput(f"{patch.label}: touches {path!r} through the symlink {'/'.join(parts[:i])!r} "
                                   f"in {repo.label}; refusing the patch")
