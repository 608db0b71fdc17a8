"""check: does the set apply to this tree's base? Tried in scratch clones only.

The user's repositories are only read (a --shared clone borrows their
objects), so check is safe in the middle of work, on a dirty tree too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from patchmgr.diagnose import failing_hunks, render
from patchmgr.errors import CheckFailed
from patchmgr.gitio import scratch_clones
from patchmgr.lint import check_against_base
from patchmgr.output import show
from patchmgr.workspace import Workspace


@dataclass
class PatchResult:
    repo: str
    label: str
    ok: bool
    detail: list[str]


def check(ws: Workspace, set_name: str | None, keep: bool = False) -> list[PatchResult]:
    view = ws.inspect(set_name)
    results: list[PatchResult] = []
    with scratch_clones("check", keep) as scratch:
        for v in view.repos:
            patches = view.patches[v.path]
            check_against_base(v.repo, v.state.base, patches)
            clone = scratch.clone(v.repo, at=v.state.base)
            for patch in patches:
                res = clone.am(patch.text, "--quiet")
                if res.status == 0:
                    results.append(PatchResult(v.path, patch.label, True, []))
                    continue
                detail = render(failing_hunks(patch.diff, partial(clone.read, "HEAD"))) \
                    or [f"  {(res.err or res.out).strip()[-200:]}"]
                results.append(PatchResult(v.path, patch.label, False, detail))
                clone.run("am", "--abort")
    return results


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
