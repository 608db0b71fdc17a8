#!/usr/bin/env python3
"""The edit-rebuild loop on a built tree: one line of a patch changed, then x.py build again.

Needs a rustc 1.63.0 tree with the series applied and a stage1 compiler built (for example
the one `BUILD=1 scripts/quickstart.sh` makes), so it runs outside CI. For each way of taking
the edit, `patchmgr apply` (in place) and `patchmgr unapply && patchmgr apply`, it changes
one comment line in the codegen patch's new file, takes the edit, counts the files whose
mtime changed against those whose content changed, and times the next
`x.py build --stage 1 library/std`. The patch file is put back at the end.

    python3 scripts/bench_loop.py --tree DIR [--patches DIR]

--patches: the patches directory the tree was applied from (default $PATCHMGR_PATCHES, else
this repository's patches/). It is edited and restored.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SET = "autodiff-1.63.0"
PATCH = "0004-codegen-differentiate-the-whole-program-with-Enzyme-.patch"


def files(tree: Path) -> dict[str, tuple[int, str]]:
    """path -> (mtime, content digest) of every file under the tree's sources (build/ left out)."""
    out = {}
    for dirpath, dirnames, names in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in (".git", "build")]
        for name in names:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(tree))] = (p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
    return out


def patchmgr(tree: Path, patches: Path, *args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "patchmgr", "-C", str(tree), "--patches", str(patches), *args],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if res.returncode != 0:
        raise SystemExit(f"bench_loop: patchmgr {' '.join(args)} failed: {res.stderr.strip()[-400:]}")


def build(tree: Path) -> float:
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "x.py", "build", "--stage", "1", "library/std"], cwd=tree,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"bench_loop: x.py build failed: {res.stderr.strip()[-400:]}")
    return time.perf_counter() - start


def edit(patch: Path, n: int) -> None:
    """Change (or add) a trailing comment on the patch's first added comment line."""
    lines = patch.read_text().split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("+//"))
    lines[i] = lines[i].split("  // loop edit")[0] + f"  // loop edit {n}"
    patch.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True)
    parser.add_argument("--patches", type=Path, default=Path(os.environ.get("PATCHMGR_PATCHES", REPO / "patches")))
    args = parser.parse_args()
    tree, patches = args.tree.resolve(), args.patches.resolve()
    patch = patches / SET / "rust" / PATCH
    original = patch.read_bytes()
    rows = []
    try:
        build(tree)  # the starting point: everything built
        for n, (name, steps) in enumerate([("patchmgr apply (in place)", [["apply"]]),
                                           ("patchmgr unapply && patchmgr apply", [["unapply"], ["apply"]])], 1):
            before = files(tree)
            edit(patch, n)
            start = time.perf_counter()
            for step in steps:
                patchmgr(tree, patches, *step)
            took = time.perf_counter() - start
            after = files(tree)
            touched = [p for p in after if after[p][0] != before.get(p, (None,))[0]]
            changed = [p for p in after if after[p][1] != before.get(p, (None, None))[1]]
            rows.append((name, took, len(touched), len(changed), build(tree)))
    finally:
        patch.write_bytes(original)
        patchmgr(tree, patches, "apply")
    print("| how the edit is taken | patchmgr | files with a new mtime | files with new content | "
          "next `x.py build --stage 1 library/std` |")
    print("|---|---|---|---|---|")
    for name, took, touched, changed, rebuild in rows:
        print(f"| {name} | {took:.1f} s | {touched} | {changed} | {rebuild / 60:.1f} min |")


if __name__ == "__main__":
    main()
