"""apply of changed patch files on an applied tree: only what changed is touched.

The edit-rebuild loop (edit a patch, apply, x.py build) must not give every
file of the series a new mtime, or x.py rebuilds the compiler from
rustc_session up. So the new patch commits are made away from the work tree,
in a scratch clone that checks out only the series' paths (sparse), the
tool's own commits (the Enzyme submodule, the recorded gitlinks) are made again
on top with plumbing and the same metadata, and each repository then moves from
its old patched commit to the new one with a two-tree `git read-tree -m -u`,
which writes only the paths whose content differs. An ApplyJournal with the old
heads is written first, so `apply --abort` returns to them from any point.
"""

from __future__ import annotations

import re
from pathlib import Path

from patchmgr import engine, state
from patchmgr.errors import CheckFailed, WrongState
from patchmgr.faults import fault
from patchmgr.gitio import Repo, Scratch, scratch_clones
from patchmgr.lint import check_against_base
from patchmgr.output import say
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET, Patch, with_trailers
from patchmgr.series import SUPERPROJECT, PatchSet
from patchmgr.workspace import View, Workspace, enzyme_rel_path, patch_branch, returns_to


def wanted(view: View) -> bool:
    """Whether `view` is an applied tree whose patch files changed (or grew) and nothing of the
    user's is on the branches: the case this module takes instead of unapply && apply."""
    return (not view.untouched and any(v.drifted for v in view.patched_repos)
            and not any(v.state.foreign or v.edited or v.out_of_order or v.skipped for v in view.patched_repos))


TEMP_REF = "refs/patchmgr/reapply"  # the new commits, fetched from the scratch clone, until switched to


def reapply(ws: Workspace, view: View) -> PatchSet:
    patch_set = view.patch_set
    branch = patch_branch(patch_set.name)
    repos = [v.repo for v in view.repos] + [r for r in [ws.enzyme_repo(patch_set)] if r]
    ws.require_ready(repos, gitlinks=view.own_gitlinks)
    # Enzyme's own patches first: its owner's tool commit then records its new head
    order = [v for v in view.patched_repos if v not in view.repos and v.drifted] + \
        [view.view(r.path) for r in patch_set.apply_order()]
    for v in order:
        if v.branch != "refs/heads/" + branch:
            raise WrongState(f"{v.path} is not on branch {branch}, where the set is applied; check it out "
                             f"(git -C {v.path} checkout {branch}), then apply again (nothing was changed)")
        check_against_base(v.repo, v.state.base, view.patches[v.path])
        engine.require_no_untracked(v.repo, view.patches[v.path])
    applied = view.applied_record
    origins = [state.RepoOrigin(v.path, v.branch, v.state.head) for v in order]
    journal = state.ApplyJournal(set=patch_set.name, patch_branch=branch, repos=origins,
                                 applied_origins=list(applied.repos) if applied else returns_to(order),
                                 bases={v.path: v.state.base for v in order}, applied_before=applied,
                                 reapply=True)
    with scratch_clones("reapply") as scratch:
        built: dict[str, Repo] = {}
        new_heads: dict[str, str] = {}  # gitlink path in its owner -> the new commit to record
        for v in order:
            built[v.path] = _build(scratch, v.repo, v.state.base, v.state.tool_commits(patch_set.name), patch_set,
                                   view.patches[v.path], new_heads)
            new_heads[_gitlink_path(patch_set, v.path)] = built[v.path].head()
            # where the switch writes: what --abort checks for files a killed read-tree left
            journal.paths[v.path] = _changed(built[v.path], v.state.head, built[v.path].head())
        state.save_op(ws.git_dir, journal)
        fault("reapply:journal")
        changed: list[str] = []
        for v in order:
            new = built[v.path].head()
            v.repo.run("fetch", "-q", "--no-tags", str(built[v.path].path), f"+{new}:{TEMP_REF}")
            _switch(v.repo, v.state.head, new, branch)
            changed += [p if v.path == SUPERPROJECT else f"{v.path}/{p}" for p in journal.paths[v.path]]
            v.repo.run("update-ref", "-d", TEMP_REF)
            fault(f"reapply:switched:{v.path}")
    engine.complete(ws, journal, view.patches)
    _report(ws, changed)
    return patch_set


def _build(scratch: Scratch, repo: Repo, base: str, tools: list[str], patch_set: PatchSet, patches: list[Patch],
           new_heads: dict[str, str]) -> Repo:
    """The new series for one repository, made in a sparse scratch clone (returned, at the new
    head): git am of every patch on the base, as the checkout's committer, then the tool's
    commits of the old branch made again on top."""
    clone = scratch.clone(repo)
    paths = sorted({p for patch in patches for p in patch.paths} | {".gitmodules"})
    clone.run("sparse-checkout", "set", "--no-cone", *("/" + _glob_escape(p) for p in paths))
    clone.run("checkout", "-q", "--detach", base)
    mbox = "".join(with_trailers(p.text, [(TRAILER_SET, patch_set.name), (TRAILER_PATCH, p.label)]) for p in patches)
    res = clone.am(mbox, "--quiet", env=_committer(repo))
    if res.status != 0:
        label = engine.current_label(clone)
        raise CheckFailed(f"patch {label} does not apply to the base any more; fix it (patchmgr check shows the "
                          "hunks), then apply again (nothing was changed)")
    head = clone.head()
    for tool in tools:
        head = _remake(clone, tool, head, new_heads)
    clone.run("update-ref", "--no-deref", "HEAD", head)
    return clone


def _gitlink_path(patch_set: PatchSet, path: str) -> str:
    """Where the repository at `path` is recorded as a gitlink: its path in the superproject, or
    Enzyme's in the repository that holds it."""
    pin = patch_set.enzyme
    return enzyme_rel_path(patch_set) if pin and path == pin.path else path


def _committer(repo: Repo) -> dict[str, str]:
    """The checkout's committer identity (its own config included), for commits made elsewhere."""
    res = repo.try_run("var", "GIT_COMMITTER_IDENT", readonly=True)
    m = re.match(r"^(.*) <(.*)> \d+ [+-]\d{4}$", res.out.strip()) if res.status == 0 else None
    return {"GIT_COMMITTER_NAME": m.group(1), "GIT_COMMITTER_EMAIL": m.group(2)} if m else {}


def _changed(clone: Repo, old: str, new: str) -> list[str]:
    """The paths whose content differs between the old and the new patched commit, gitlinks left out."""
    raw = clone.run("diff-tree", "-r", "-z", "--no-renames", old, new, strip=False).split("\0")
    return [path for meta, path in zip(raw[::2], raw[1::2]) if "160000" not in meta.split(" ")[:2]]


def _remake(clone: Repo, tool: str, parent: str, new_heads: dict[str, str]) -> str:
    """`tool`'s change (the Enzyme submodule, or gitlinks) on `parent`, with its message and
    identity; a gitlink of a repository of the set points at that repository's new head."""
    raw = clone.run("diff-tree", "-r", "--no-renames", "--no-commit-id", "-z", f"{tool}^", tool, strip=False)
    fields = raw.split("\0")
    entries = []
    for meta, path in zip(fields[::2], fields[1::2]):
        _, new_mode, _, new_sha, status = meta.lstrip(":").split(" ")
        if status == "D":
            entries.append(f"0 {'0' * 40}\t{path}")
        else:
            entries.append(f"{new_mode} {new_heads.get(path, new_sha)}\t{path}")
    clone.run("read-tree", parent)
    clone.run("update-index", "--index-info", input="".join(e + "\n" for e in entries))
    return clone.recommit(tool, parent, tree=clone.run("write-tree").strip())


def _glob_escape(path: str) -> str:
    """A path as a literal sparse-checkout (gitignore-style) pattern."""
    return re.sub(r"([*?\[\]\\!#])", r"\\\1", path)


def _switch(repo: Repo, old: str, new: str, branch: str) -> None:
    """Move `repo` (on `branch`, at `old`) to `new`, writing only the paths whose content differs."""
    repo.try_run("update-index", "-q", "--refresh")  # stat data only: read-tree wants it current
    repo.run("read-tree", "-m", "-u", old, new)
    repo.run("update-ref", "-m", "patchmgr: apply the changed patch files", f"refs/heads/{branch}", new, old)


def _report(ws: Workspace, changed: list[str]) -> None:
    """'2 files changed: compiler/rustc_codegen_llvm/src/back/autodiff.rs (rustc_codegen_llvm), ...'"""
    if not changed:
        say("the patch commits changed, no file did")
        return
    named = [f"{path} ({crate})" if (crate := crate_of(ws.root, path)) else path for path in changed]
    say(f"{len(changed)} file{'s' if len(changed) != 1 else ''} changed: {', '.join(named)}")


def crate_of(root: Path, path: str) -> str | None:
    """The package name of the nearest Cargo.toml above `path` in the work tree, if any."""
    directory = (root / path).parent
    while directory != root and root in directory.parents:
        manifest = directory / "Cargo.toml"
        if manifest.is_file():
            m = re.search(r'(?ms)^\[package\].*?^name\s*=\s*"([^"]+)"', manifest.read_text(encoding="utf-8",
                                                                                          errors="replace"))
            return m.group(1) if m else None
        directory = directory.parent
    return None


def refuse_resume() -> None:
    raise WrongState("an apply of changed patch files was interrupted; run patchmgr apply --abort "
                     "(it returns to the patches as they were), then patchmgr apply again")
