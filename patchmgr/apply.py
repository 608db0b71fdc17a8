"""apply, apply --continue / --skip / --abort: the verb over the engine's steps.

Before the first change op.json (an ApplyJournal) records where every
repository was; --abort returns there from any point, a kill included, and
--continue runs the engine's idempotent steps again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from patchmgr import state
from patchmgr.adopt import held_commits
from patchmgr.errors import BadInput, WrongState
from patchmgr.lint import check_against_base, load_patches
from patchmgr.output import say
from patchmgr.patchfile import Patch
from patchmgr.series import SUPERPROJECT, PatchSet
from patchmgr.workspace import RepoView, View, Workspace, patch_branch, returns_to

if TYPE_CHECKING:
    from patchmgr import engine


def apply(ws: Workspace, set_name: str | None) -> PatchSet:
    """Apply the set for this tree's base; returns the set."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    patch_set = view.patch_set
    repos = [v.repo for v in view.repos] + [r for r in [ws.enzyme_repo(patch_set)] if r]
    if view.fully_applied and not any(v.drifted for v in view.patched_repos):
        ws.require_ready(repos, gitlinks=view.own_gitlinks, writes=False)
        say(f"set {patch_set.name} is already applied; nothing to do")
        return patch_set
    # imported only now: a no-op apply, the common case, never needs the engine (start-up stays small)
    from patchmgr import engine, reapply
    from patchmgr.faults import fault

    if reapply.wanted(view):
        reapply.reapply(ws, view)
        # what the in-place path does not do (Enzyme patches new to the set) the steps below do
        view = ws.inspect(set_name)
        if view.fully_applied:
            return patch_set
    for v in view.patched_repos:
        if v.dropped:
            raise WrongState(f"{v.path} has patch {v.dropped[0]} applied, which is no longer in the set's list in "
                             f"{ws.manifest.path}; list it again (patchmgr export lists what the branch holds), or run "
                             "patchmgr unapply, then apply to leave it out")
        if v.state.foreign or v.edited or v.out_of_order:
            what = ("commits that are not from the series" if v.state.foreign
                    else f"patch {v.edited[0]} applied in a form that differs from its file" if v.edited
                    else "its patches applied in another order than the set's list")
            raise WrongState(f"{v.path} has {what}; run patchmgr status, then patchmgr unapply "
                             "(--force keeps a backup) and apply again")
    skipped = [label for v in view.patched_repos for label in v.skipped]
    if skipped:
        raise WrongState(f"patch {skipped[0]} was skipped and later patches are applied; "
                         "run patchmgr unapply, then apply again to include it")
    ws.require_ready(repos, gitlinks=view.own_gitlinks)
    adopted: dict[str, str] = {}
    for v in view.patched_repos:
        pending = [p for p in view.patches[v.path] if p.label in v.pending]
        held = None if v.state.series else held_commits(v.repo, pending)
        if held:
            adopted[v.path] = held[0]
            _say_adopted(v, pending, held)
        check_against_base(v.repo, adopted.get(v.path, v.state.base), pending)
        engine.require_no_untracked(v.repo, pending)
    _check_enzyme_path(ws, view)

    branch = patch_branch(patch_set.name)
    origins = []
    for v in view.patched_repos:
        if v.branch != "refs/heads/" + branch and v.repo.ref_exists("refs/heads/" + branch):
            raise WrongState(f"branch {branch} already exists in {v.path}; delete it (git -C {v.path} branch -D {branch}) "
                             "or run patchmgr unapply")
        origins.append(state.RepoOrigin(v.path, v.branch, v.state.head))
    if patch_set.enzyme and not (view.enzyme and view.enzyme.in_place):
        engine.verify_enzyme_pin(ws, patch_set)  # last: the only check that may go to the network
    applied = view.applied_record
    journal = state.ApplyJournal(set=patch_set.name, patch_branch=branch, repos=origins,
                                 applied_origins=list(applied.repos) if applied else returns_to(view.patched_repos),
                                 bases={v.path: adopted.get(v.path, v.state.base) for v in view.patched_repos},
                                 adopted=adopted, applied_before=applied,
                                 paths={v.path: sorted({p for patch in view.patches[v.path] if patch.label in v.pending
                                                        for p in patch.paths}) for v in view.patched_repos})
    save = _saver(ws, journal)
    save()
    fault("apply:journal")
    known = {v.path: v.applied for v in view.repos}
    engine.run_steps(ws, journal, save, patch_set, view.patches, known)
    engine.complete(ws, journal, view.patches)
    return patch_set


def _say_adopted(v: RepoView, pending: list[Patch], held: tuple[str, list[str]]) -> None:
    below, commits = held
    where = f"branch {v.branch.removeprefix('refs/heads/')}" if v.branch else "HEAD"
    labels = ", ".join(p.label.rsplit("/", 1)[-1] for p in pending[:len(commits)])
    say(f"{v.path}: the newest {len(commits)} commits of {where} are the set's patches {labels} (same patch-ids); "
        f"the patch branch starts below them at {below[:12]} and {where} stays as it is (unapply returns to it)")


def _saver(ws: Workspace, journal: state.Journal) -> engine.Save:
    return lambda: state.save_op(ws.git_dir, journal)


def _check_enzyme_path(ws: Workspace, view: View) -> None:
    """Refuse an Enzyme path that something else occupies, or that leads out through a symlink."""
    pin = view.patch_set.enzyme
    if pin is None or view.enzyme is None or view.enzyme.recorded is not None:
        return
    target = ws.root / pin.path
    if os.path.realpath(target.parent) != os.path.join(os.path.realpath(ws.root), os.path.dirname(pin.path)) \
            or target.is_symlink():
        raise BadInput(f"{ws.manifest.path}: enzyme.path {pin.path!r} goes through a symlink in the checkout; "
                       "refusing to write there")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise WrongState(f"{pin.path} exists and is not the Enzyme submodule; move it away, then apply again "
                         "(nothing was changed)")
    owner = ws.repo(view.patch_set.enzyme_owner() or SUPERPROJECT)
    if owner.run("ls-files", "--others", "--", ".gitmodules", readonly=True):
        # apply writes the Enzyme entry there and stages it; --abort could not tell the user's lines from it
        where = "" if owner.label == SUPERPROJECT else owner.label + "/"
        raise WrongState(f"untracked file {where}.gitmodules is in the way of the Enzyme submodule; move it away "
                         "(or commit it), then apply again (nothing was changed)")


def resume(ws: Workspace, how: str) -> PatchSet:
    """--continue or --skip: finish the stopped git am, then run the remaining steps."""
    from patchmgr import engine, reapply

    journal = ws.op_journal(state.ApplyJournal, how)
    if journal.reapply:
        reapply.refuse_resume()
    patch_set = ws.manifest.get(journal.set)
    ws.require_ready([ws.repo(o.path) for o in journal.repos], ours=True)
    save = _saver(ws, journal)
    enzyme = ws.enzyme_repo(patch_set) if journal.enzyme_created else None  # Enzyme cloned by this run
    for repo in [ws.repo(o.path) for o in journal.repos] + ([enzyme] if enzyme else []):
        if engine.am_in_progress(repo):
            if how == "--skip":
                journal.skipped.append(engine.current_label(repo))
                save()
            res = repo.try_run("am", "--skip" if how == "--skip" else "--continue")
            if res.status != 0:
                raise engine.conflict(repo, res.out + res.err)
    patches = load_patches(patch_set)
    engine.run_steps(ws, journal, save, patch_set, patches)
    engine.complete(ws, journal, patches)
    return patch_set


def abort(ws: Workspace) -> None:
    """Put every repository back where op.json says it was."""
    from patchmgr import engine, reapply

    journal = ws.op_journal(state.ApplyJournal, "--abort")
    patch_set = ws.manifest.sets.get(journal.set)
    enzyme = ws.enzyme_repo(patch_set) if patch_set and journal.enzyme_created else None
    if enzyme is not None:
        engine.require_nothing_untracked(enzyme)  # before anything moves
    engine.require_no_later_edits(ws, journal, "apply", engine.patches_of(patch_set))
    for origin in journal.repos:
        repo = ws.repo(origin.path)
        engine.restore(repo, origin, journal.patch_branch, journal.paths.get(origin.path, []))
        if journal.reapply and repo.ref_exists(reapply.TEMP_REF):
            repo.run("update-ref", "-d", reapply.TEMP_REF)
    if journal.enzyme_created and patch_set and patch_set.enzyme:
        engine.remove_enzyme(ws, patch_set, journal)
    if journal.applied_before is None:
        state.remove(ws.git_dir, state.APPLIED_FILE)
    else:
        state.save_applied(ws.git_dir, journal.applied_before)
    state.remove(ws.git_dir, state.OP_FILE)
    say(f"aborted: {', '.join(o.path for o in journal.repos)} restored to where they were before the apply of {journal.set}")


def command(ws: Workspace, args) -> None:
    """`patchmgr apply [--continue|--skip|--abort]`, then the set's bootstrap config."""
    if args.mode == "--abort":
        abort(ws)
        return
    patch_set = resume(ws, args.mode) if args.mode else apply(ws, args.set_name)
    if not args.no_config:
        from xpy_ext.commands import write_for_set

        write_for_set(ws, args, patch_set)
