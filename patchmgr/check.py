"""check: does the set apply to this tree's base? Tried in scratch clones only.

The user's repositories are only read (a --shared clone borrows their
objects), so check is safe in the middle of work, on a dirty tree too.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchmgr.diagnose import failing_hunks, render
from patchmgr.errors import CheckFailed
from patchmgr.gitio import Repo, identity_env
from patchmgr.lint import check_symlinks
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
    scratch = Path(tempfile.mkdtemp(prefix="patchmgr-check-"))
    try:
        for v in view.repos:
            patches = view.patches[v.path]
            check_symlinks(v.repo, v.state.base, patches)
            clone = Repo(scratch / ("superproject" if v.path == "." else v.path.replace("/", "_")), v.path)
            v.repo.run("clone", "-q", "--shared", "--no-checkout", "--", str(v.repo.path), str(clone.path))
            clone.run("checkout", "-q", "--detach", v.state.base)
            env = identity_env(clone)
            for patch in patches:
                mbox = clone.path / ".git" / "check.mbox"
                mbox.write_text(patch.text, encoding="utf-8")
                res = clone.try_run("am", "--3way", "--quiet", str(mbox), env=env)
                if res.status == 0:
                    results.append(PatchResult(v.path, patch.label, True, []))
                    continue

                def read(path: str, clone=clone) -> str | None:
                    r = clone.try_run("show", f"HEAD:{path}", strip=False)
                    return r.out if r.status == 0 else None

                detail = render(failing_hunks(patch.diff, read)) or [f"  {(res.err or res.out).strip()[-200:]}"]
                results.append(PatchResult(v.path, patch.label, False, detail))
                clone.run("am", "--abort")
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return results


def report(results: list[PatchResult]) -> tuple[str, int]:
    lines = []
    for r in results:
        lines.append(f"{'ok  ' if r.ok else 'FAIL'} {r.repo}: {r.label}")
        lines += r.detail
    failed = [r for r in results if not r.ok]
    return "\n".join(lines), len(failed)


def require_ok(results: list[PatchResult]) -> None:
    failed = [r for r in results if not r.ok]
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(results)} patches do not apply to the base (first: {failed[0].label}); "
                          "see the report above, then fix or rebase the series")
