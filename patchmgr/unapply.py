"""unapply: back to the base exactly, Enzyme submodule and gitlinks included.

The patch branches are deleted, so anything on them that the series did not
make would be lost: such commits (and applied patches that were edited in
place) stop the command unless --force, which first saves each branch under
refs/patchmgr/backup/.
"""

from __future__ import annotations

import time
from pathlib import Path

from patchmgr import engine, state
from patchmgr.engine import remove_enzyme
from patchmgr.errors import ForeignCommits, WrongState
from patchmgr.faults import fault
from patchmgr.output import say
from patchmgr.series import SUPERPROJECT, PatchSet
from patchmgr.workspace import Workspace, enzyme_rel_path, patch_branch


def unapply(ws: Workspace, set_name: str | None, force: bool) -> list[str]:
    """Returns the backup refs written (only with force)."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    patch_set = view.patch_set
    if view.untouched:
        raise WrongState(f"set {patch_set.name} is not applied here; nothing to unapply")
    enzyme = ws.enzyme_repo(patch_set)
    ws.require_ready([v.repo for v in view.repos] + ([enzyme] if enzyme else []), gitlinks=view.own_gitlinks)
    if enzyme:
        engine.require_nothing_untracked(enzyme)
    branch = patch_branch(patch_set.name)
    unsafe = [v for v in view.patched_repos if v.state.foreign or v.edited]  # Enzyme's work tree goes too
    if unsafe and not force:
        v = unsafe[0]
        what = (f"{len(v.state.foreign)} commits that are not from the series (first {v.state.foreign[0][:12]})"
                if v.state.foreign else f"patch {v.edited[0]} was edited after it was applied")
        raise ForeignCommits(f"{v.path} has {what}; export or move them, or run patchmgr unapply --force "
                             "to save the branch under refs/patchmgr/backup/ first")
    journal = state.UnapplyJournal(set=patch_set.name, patch_branch=branch,
                                   repos=[state.RepoOrigin(v.path, v.branch, v.state.head) for v in view.repos],
                                   bases={v.path: v.state.base for v in view.repos})
    state.save_op(ws.git_dir, journal)
    fault("unapply:journal")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    backups = []
    for v in unsafe:
        ref = f"refs/patchmgr/backup/{patch_set.name}/{'superproject' if v.path == SUPERPROJECT else v.path}/{stamp}"
        v.repo.run("update-ref", ref, v.state.head)
        backups.append(f"{v.path}: {ref}")
    _steps(ws, journal, patch_set, view.applied_record)
    for line in backups:
        say(f"saved {line}")
    return backups


def _steps(ws: Workspace, journal: state.UnapplyJournal, patch_set: PatchSet,
           record: state.AppliedRecord | None) -> None:
    """Every repository to its base (the branch it came from, where that is still at the base), the
    patch branches deleted, Enzyme removed; idempotent, so --continue runs it again."""
    for origin in journal.repos:
        repo = ws.repo(origin.path)
        applied_origin = record.origin(origin.path) if record else None
        # where apply found the repository: its base, or above it a branch whose newest commits were the patches
        start = applied_origin.head if applied_origin else journal.bases[origin.path]
        target = applied_origin.branch if applied_origin else None
        if target == "refs/heads/" + journal.patch_branch:
            target = None
        if target and repo.rev(target) != start:
            target = None  # the branch moved since apply; do not rewind it, stop detached where apply started
        if target:
            repo.run("-c", "submodule.recurse=false", "checkout", "-q", target.removeprefix("refs/heads/"), "--")
        elif repo.head() != start or repo.branch() is not None:
            repo.run("-c", "submodule.recurse=false", "checkout", "-q", "--detach", start, "--")
        fault(f"unapply:checkout:{origin.path}")
        if repo.ref_exists("refs/heads/" + journal.patch_branch):
            repo.run("branch", "-q", "-D", journal.patch_branch)
    if patch_set.enzyme:
        remove_enzyme(ws, patch_set, None)
    fault("unapply:enzyme")
    state.remove(ws.git_dir, state.APPLIED_FILE)
    state.remove(ws.git_dir, state.OP_FILE)
    say(f"unapplied set {patch_set.name}; every repository is back where apply found it")


def resume(ws: Workspace) -> None:
    """unapply --continue: finish an interrupted unapply."""
    journal = ws.op_journal(state.UnapplyJournal, "--continue")
    _steps(ws, journal, ws.manifest.get(journal.set), ws.applied_record())


def abort(ws: Workspace) -> None:
    """unapply --abort: every repository back on its patch branch, Enzyme checked out again."""
    journal = ws.op_journal(state.UnapplyJournal, "--abort")
    engine.require_no_later_edits(ws, journal, "unapply", dict)  # it writes no patch
    for origin in journal.repos:
        engine.restore(ws.repo(origin.path), origin, journal.patch_branch, [])
    patch_set = ws.manifest.sets.get(journal.set)
    if patch_set and patch_set.enzyme:
        owner = ws.repo(patch_set.enzyme_owner() or SUPERPROJECT)
        rel = enzyme_rel_path(patch_set)
        if owner.gitlink("HEAD", rel) and not (owner.path / rel / ".git").exists():
            owner.run("-c", "protocol.file.allow=always", "submodule", "update", "--init", "-q", "--", rel)
    state.remove(ws.git_dir, state.OP_FILE)
    say(f"aborted: the unapply of {journal.set} is undone; the set is applied as before")


def command(ws: Workspace, args) -> None:
    """`patchmgr unapply [--force] [--continue|--abort]`, then the bootstrap config apply wrote is put back."""
    if args.mode == "--abort":
        abort(ws)
        return
    record = ws.applied_record()
    if args.mode == "--continue":
        resume(ws)
    else:
        unapply(ws, args.set_name, args.force)
    if record and record.config:
        from xpy_ext.config import revert

        say(revert(Path(record.config.path), record.config.sha256, record.config.had_backup))
