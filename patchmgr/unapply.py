"""unapply: back to the base exactly, Enzyme submodule and gitlinks included.

The patch branches are deleted, so anything on them that the series did not
make would be lost: such commits (and applied patches that were edited in
place) stop the command unless --force, which first saves each branch under
refs/patchmgr/backup/.
"""

from __future__ import annotations

import sys
import time

from patchmgr import state
from patchmgr.apply import remove_enzyme
from patchmgr.errors import ForeignCommits, WrongState
from patchmgr.workspace import Workspace


def unapply(ws: Workspace, set_name: str | None, force: bool) -> list[str]:
    """Returns the backup refs written (only with force)."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    if view.untouched:
        raise WrongState(f"set {view.patch_set.name} is not applied here; nothing to unapply")
    ws.require_clean([v.repo for v in view.repos])
    patch_set = view.patch_set
    branch = "patchmgr/" + patch_set.name
    unsafe = [v for v in view.repos if v.state.foreign or v.edited]
    backups = []
    if unsafe and not force:
        v = unsafe[0]
        what = (f"{len(v.state.foreign)} commits that are not from the series (first {v.state.foreign[0][:12]})"
                if v.state.foreign else f"patch {v.edited[0]} was edited after it was applied")
        raise ForeignCommits(f"{v.path} has {what}; export or move them, or run patchmgr unapply --force "
                             "to save the branch under refs/patchmgr/backup/ first")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for v in unsafe:
        ref = f"refs/patchmgr/backup/{patch_set.name}/{'superproject' if v.path == '.' else v.path}/{stamp}"
        v.repo.run("update-ref", ref, v.repo.head())
        backups.append(f"{v.path}: {ref}")

    record = view.applied_record
    for v in view.repos:
        origin = record.origin(v.path) if record else None
        target_branch = origin.branch if origin and origin.branch != "refs/heads/" + branch else None
        if target_branch and v.repo.rev(target_branch) != v.state.base:
            target_branch = None  # the branch moved since apply; do not rewind it, stop detached at the base
        if target_branch:
            v.repo.run("checkout", "-q", target_branch.removeprefix("refs/heads/"), "--")
        else:
            v.repo.run("checkout", "-q", "--detach", v.state.base, "--")
        if v.repo.ref_exists("refs/heads/" + branch):
            v.repo.run("branch", "-q", "-D", branch)
    if patch_set.enzyme:
        remove_enzyme(ws, patch_set, drop_module=False)
    state.remove(ws.git_dir, state.APPLIED_FILE)
    print(f"patchmgr: unapplied set {patch_set.name}; every repository is back at its base", file=sys.stderr)
    for line in backups:
        print(f"patchmgr: saved {line}", file=sys.stderr)
    return backups
