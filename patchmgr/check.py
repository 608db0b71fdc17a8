"""check: does the set apply to this tree's base? Tried in scratch repositories only.

Each patch is committed on the one before in the object store of a bare scratch
repository that borrows the user's objects (mailcommit: what git am makes, with no
checkout of the tree). The user's repositories are only read, so check is safe
in the middle of work, on a dirty tree too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from patchmgr.base import repo_base
from patchmgr.diagnose import failing_hunks, render
from patchmgr.errors import CheckFailed, GitFailed
from patchmgr.gitio import Repo, Scratch, scratch_clones
from patchmgr.lint import check_against_base, load_patches
from patchmgr.mailcommit import DoesNotApply, MailCommitter
from patchmgr.output import show
from patchmgr.patchfile import Patch
from patchmgr.series import PatchSet
from patchmgr.workspace import Workspace


@dataclass
class PatchResult:
    repo: str
    label: str
    ok: bool
    detail: list[str]


def check(ws: Workspace, set_name: str | None, keep: bool = False) -> list[PatchResult]:
    """Each patch of the set (the one for this tree's base, or `set_name`, whatever is applied)
    committed on the set's base in scratch repositories."""
    patch_set = ws.manifest.get(set_name) if set_name else ws.inspect(None).patch_set
    super_base = ws.set_base(patch_set)
    by_repo = load_patches(patch_set)
    results: list[PatchResult] = []
    with scratch_clones("check", keep) as scratch:
        for series in patch_set.repos:
            repo, patches = ws.repo(series.path), by_repo[series.path]
            base = repo_base(ws.superproject, super_base, series.path, patch_set)
            check_against_base(repo, base, patches)
            results += _commit_each(scratch.borrow(repo), base, patches)
        pin = patch_set.enzyme
        if pin and patch_set.enzyme_series:
            results += _commit_each(_enzyme_at_pin(ws, patch_set, scratch), pin.commit, by_repo[pin.path])
    return results


def _commit_each(repo: Repo, base: str, patches: list[Patch]) -> list[PatchResult]:
    """Each patch committed in turn on `base` as git am would; a failing one is reported with its
    hunks (against the tree the patches before it made) and left out. The scratch repository's
    HEAD ends at the last commit, so that one kept with --keep shows the series (git log)."""
    results = []
    tip = base
    with MailCommitter(repo) as committer:
        for patch in patches:
            try:
                tip = committer.commit_mail(tip, patch.text, patch.diff)
            except DoesNotApply as e:
                detail = render(failing_hunks(patch.diff, partial(repo.read, tip))) or [f"  {str(e)[-200:]}"]
                results.append(PatchResult(repo.label, patch.label, False, detail))
                continue
            results.append(PatchResult(repo.label, patch.label, True, []))
    repo.run("update-ref", "--no-deref", "HEAD", tip)
    return results


def _enzyme_at_pin(ws: Workspace, patch_set: PatchSet, scratch: Scratch) -> Repo:
    """A scratch repository holding the pinned Enzyme commit: borrowing the objects of the clone
    apply keeps in .git/modules when it has the commit (as `clone --shared` does: that git dir
    may name a work tree unapply removed, which a fetch from it trips on), else fetched from
    the pin's URL (depth 1)."""
    from patchmgr.engine import kept_clone

    pin = patch_set.enzyme
    assert pin is not None
    kept = kept_clone(ws, patch_set)
    clone = scratch.bare(pin.path, kept / "objects" if kept is not None else None)
    if kept is None and clone.try_run("-c", "protocol.file.allow=always", "fetch", "-q", "--depth=1", "--", pin.url,
                                      pin.commit).status:
        raise GitFailed(f"cannot fetch Enzyme commit {pin.commit[:12]} from {pin.url} to check Enzyme's patches; "
                        f"check enzyme.url, or redirect it with git config url.<local>.insteadOf {pin.url}")
    return clone


def report(results: list[PatchResult]) -> str:
    lines = []
    for r in results:
        lines.append(f"{'ok  ' if r.ok else 'FAIL'} {r.repo}: {r.label}")
        lines += r.detail
    return "\n".join(lines)


def require_ok(results: list[PatchResult]) -> None:
    failed = [r for r in results if not r.ok]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(results)} patches do not apply to the base (first: {failed[0].label}); "
                          "see the report above, then fix or rebase the series")


def command(ws: Workspace, args) -> None:
    """`patchmgr check [--keep]`: the report on stdout, exit code 10 when a patch fails."""
    results = check(ws, args.set_name, keep=args.keep)
    show(report(results))
    require_ok(results)
