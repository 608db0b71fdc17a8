"""check: does the set apply to this tree's base? Tried in scratch clones only.

The user's repositories are only read (a --shared clone borrows their
objects), so check is safe in the middle of work, on a dirty tree too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from patchmgr.base import repo_base
from patchmgr.diagnose import failing_hunks, render
from patchmgr.errors import CheckFailed, GitFailed
from patchmgr.gitio import Repo, Scratch, scratch_clones
from patchmgr.lint import check_against_base, load_patches
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
    applied on the set's base in scratch clones."""
    patch_set = ws.manifest.get(set_name) if set_name else ws.inspect(None).patch_set
    super_base = ws.set_base(patch_set)
    by_repo = load_patches(patch_set)
    results: list[PatchResult] = []
    with scratch_clones("check", keep) as scratch:
        for series in patch_set.repos:
            repo, patches = ws.repo(series.path), by_repo[series.path]
            base = repo_base(ws.superproject, super_base, series.path, patch_set)
            check_against_base(repo, base, patches)
            results += _am_each(scratch.clone(repo, at=base), patches)
        pin = patch_set.enzyme
        if pin and patch_set.enzyme_series:
            results += _am_each(_enzyme_at_pin(ws, patch_set, scratch), by_repo[pin.path])
    return results


def _am_each(clone: Repo, patches: list[Patch]) -> list[PatchResult]:
    """Each patch applied in turn with git am; a failing one is reported with its hunks and left out."""
    results = []
    for patch in patches:
        res = clone.am(patch.text, "--quiet")
        if res.status == 0:
            results.append(PatchResult(clone.label, patch.label, True, []))
            continue
        detail = render(failing_hunks(patch.diff, partial(clone.read, "HEAD"))) \
            or [f"  {(res.err or res.out).strip()[-200:]}"]
        results.append(PatchResult(clone.label, patch.label, False, detail))
        clone.run("am", "--abort")
    return results


def _enzyme_at_pin(ws: Workspace, patch_set: PatchSet, scratch: Scratch) -> Repo:
    """A scratch repository at the pinned Enzyme commit: borrowing the objects of the clone
    apply keeps in .git/modules when it has the commit (as `clone --shared` does: that git dir
    may name a work tree unapply removed, which a fetch from it trips on), else fetched from
    the pin's URL (depth 1)."""
    from patchmgr.engine import kept_clone

    pin = patch_set.enzyme
    assert pin is not None
    clone = Repo(scratch.root / "enzyme", pin.path)
    clone.path.mkdir()
    clone.run("init", "-q")
    kept = kept_clone(ws, patch_set)
    if kept is not None:
        (clone.git_dir() / "objects" / "info" / "alternates").write_text(f"{kept / 'objects'}\n")
    elif clone.try_run("-c", "protocol.file.allow=always", "fetch", "-q", "--depth=1", "--", pin.url, pin.commit).status:
        raise GitFailed(f"cannot fetch Enzyme commit {pin.commit[:12]} from {pin.url} to check Enzyme's patches; "
                        f"check enzyme.url, or redirect it with git config url.<local>.insteadOf {pin.url}")
    clone.run("checkout", "-q", "--detach", pin.commit)
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
