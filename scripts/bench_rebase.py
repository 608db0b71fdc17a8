#!/usr/bin/env python3
"""Benchmark `patchmgr rebase` against plain `git rebase` on the real rustc 1.63.0 tree.

The new upstream is the 1.63.0 release with Debian's 37 quilt patches
committed on top (the series replays onto it without conflicts, so both
tools run to the end). Same run, same four commits: `git rebase --onto` of a
branch made with `git am`, and `patchmgr rebase --onto` of the set's files
(which also exports the new set and applies it, Enzyme submodule included,
as its documentation says). Medians of --runs runs, peak RSS of each
command's process tree.

    python3 scripts/bench_rebase.py [--runs 5] [--tree DIR]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import tomlkit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

from bench_apply import bench_args, bench_tree, git, measure  # noqa: E402
from prepare_bootstrap import debian_dir, quilt_series  # noqa: E402
from realtree import enzyme_standin  # noqa: E402

SET = "autodiff-1.63.0"
NEW = "bench-rebased"


def debian_upstream(tree: Path, env: dict, scratch: Path) -> str:
    """A commit on top of the tree's HEAD with Debian's quilt series applied, made in a worktree."""
    work = scratch / "debian-work"
    git(tree, env, "worktree", "add", "-q", "--detach", str(work), "HEAD")
    for patch in quilt_series(debian_dir()):
        subprocess.run(["patch", "-p1", "-s", "--no-backup-if-mismatch", "-i", str(patch)], cwd=work, check=True,
                       capture_output=True)
    git(work, env, "add", "-A")
    git(work, env, "commit", "-q", "-m", "Debian's quilt series as the newer upstream")
    onto = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()
    git(tree, env, "worktree", "remove", "--force", str(work))
    git(tree, env, "branch", "-f", "bench-onto", onto)
    return onto


def main() -> int:
    args = bench_args(__doc__)
    tmp = Path(tempfile.mkdtemp(prefix="patchmgr-bench-rebase-"))
    try:
        tree, env = bench_tree(args, tmp)
        enzyme_repo, enzyme_commit = enzyme_standin(tmp, env)
        patches = tmp / "patches"
        shutil.copytree(REPO / "patches", patches)
        manifest_path = patches / "series.toml"
        manifest = tomlkit.parse(manifest_path.read_text())
        manifest["sets"][SET]["enzyme"]["commit"] = enzyme_commit
        git(tmp, env, "config", "--file", env["GIT_CONFIG_GLOBAL"], f"url.{enzyme_repo}.insteadOf",
            str(manifest["sets"][SET]["enzyme"]["url"]))
        git(tmp, env, "config", "--file", env["GIT_CONFIG_GLOBAL"], "protocol.file.allow", "always")
        manifest_path.write_text(tomlkit.dumps(manifest))
        pristine = manifest_path.read_bytes()
        files = [str(p) for p in sorted((patches / SET / "rust").glob("*.patch"))]
        patchmgr = [sys.executable, "-m", "patchmgr", "--patches", str(patches)]
        run = dict(cwd=tree, env=env, check=True, capture_output=True)
        base = subprocess.run(["git", "rev-parse", "HEAD"], text=True, **run).stdout.strip()
        branch = subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], text=True, **run).stdout.strip()
        onto = debian_upstream(tree, env, tmp)

        rows: dict[str, list[tuple[float, int]]] = {"patchmgr rebase": [], "git rebase": []}
        for _ in range(args.runs):
            git(tree, env, "checkout", "-q", "-b", "bench-series", base)
            git(tree, env, "am", "-q", "--3way", *files)
            rows["git rebase"].append(measure(["git", "rebase", "-q", "--onto", onto, base, "bench-series"], tree, env))
            git(tree, env, "checkout", "-q", branch)
            git(tree, env, "branch", "-q", "-D", "bench-series")

            rows["patchmgr rebase"].append(measure([*patchmgr, "rebase", "--onto", onto, "--new-set", NEW,
                                                    "--no-config"], tree, env))
            subprocess.run([*patchmgr, "unapply", "--set", NEW], **run)
            git(tree, env, "checkout", "-q", branch)
            manifest_path.write_bytes(pristine)
            shutil.rmtree(patches / NEW)

        (pt, prss), (gt, grss) = [(statistics.median(t for t, _ in rows[k]), max(r for _, r in rows[k]))
                                  for k in ("patchmgr rebase", "git rebase")]
        print(f"real rustc 1.63.0 tree onto Debian's 37 patches, {len(files)} commits, median of {args.runs} runs, "
              f"{os.cpu_count()} cores\n")
        print("| command | time | baseline | baseline time | ratio | target | peak RSS |")
        print("|---|---|---|---|---|---|---|")
        print(f"| patchmgr rebase | {pt * 1000:.0f} ms | git rebase | {gt * 1000:.0f} ms | {pt / gt:.2f}x | <= 1.2x | "
              f"{prss} MB (git: {grss} MB) |")
        return 0
    finally:
        if args.tree:
            subprocess.run(["git", "branch", "-q", "-D", "bench-onto"], cwd=args.tree, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
