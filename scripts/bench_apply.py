#!/usr/bin/env python3
"""Benchmark patchmgr against plain git on the real rustc 1.63.0 tree.

Same run, same patches: `patchmgr apply` against plain `git am`, a no-op
re-apply and `patchmgr status` against `git status`, with the peak RSS of
each command (its own process tree, from wait4). Medians of --runs runs.

    python3 scripts/bench_apply.py [--runs 5] [--tree DIR]

Without --tree, a tree is imported into a temporary directory with
scripts/import_rustc.py (downloads are cached).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomlkit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import import_rustc  # noqa: E402

SET = "autodiff-1.63.0"


def measure(argv: list[str], cwd: Path, env: dict) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one command and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed: {proc.stderr.read().decode()[-300:]}")
    return elapsed, usage.ru_maxrss // 1024


def git(cwd: Path, env: dict, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def bench_args(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, help="an imported rustc 1.63.0 tree to use (it is left as it was)")
    return parser.parse_args()


def bench_tree(args: argparse.Namespace, tmp: Path) -> tuple[Path, dict]:
    """The tree (imported into tmp without --tree) and an environment with a private git config."""
    tree = args.tree or tmp / "rustc-1.63.0"
    if not args.tree:
        import_rustc.build("1.63.0", tree)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(tmp / "gitconfig"), HOME=str(tmp),
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@invalid", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="bench@invalid")
    return tree, env


def main() -> int:
    args = bench_args(__doc__)
    tmp = Path(tempfile.mkdtemp(prefix="patchmgr-bench-"))
    try:
        tree, env = bench_tree(args, tmp)
        # the same patches, without the Enzyme clone that plain git am does not do
        patches = tmp / "patches"
        shutil.copytree(REPO / "patches", patches)
        manifest = tomlkit.parse((patches / "series.toml").read_text())
        del manifest["sets"][SET]["enzyme"]
        (patches / "series.toml").write_text(tomlkit.dumps(manifest))
        files = [str(p) for p in sorted((patches / SET / "rust").glob("*.patch"))]
        patchmgr = [sys.executable, "-m", "patchmgr", "--patches", str(patches)]
        base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, env=env, capture_output=True, text=True,
                              check=True).stdout.strip()
        branch = subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], cwd=tree, env=env, capture_output=True,
                                text=True, check=True).stdout.strip()

        rows: dict[str, list[tuple[float, int]]] = {k: [] for k in
                                                    ("apply", "git am", "no-op apply", "status", "git status")}
        for _ in range(args.runs):
            git(tree, env, "checkout", "-q", "-b", "bench-am", base)
            rows["git am"].append(measure(["git", "am", "-q", "--3way", *files], tree, env))
            git(tree, env, "checkout", "-q", branch)
            git(tree, env, "branch", "-q", "-D", "bench-am")
            rows["apply"].append(measure([*patchmgr, "apply"], tree, env))
            rows["no-op apply"].append(measure([*patchmgr, "apply"], tree, env))
            rows["status"].append(measure([*patchmgr, "status"], tree, env))
            rows["git status"].append(measure(["git", "status"], tree, env))
            subprocess.run([*patchmgr, "unapply"], cwd=tree, env=env, check=True, capture_output=True)

        def med(name: str) -> tuple[float, int]:
            return statistics.median(t for t, _ in rows[name]), max(r for _, r in rows[name])

        print(f"real rustc 1.63.0 tree, {len(files)} patches, median of {args.runs} runs, {os.cpu_count()} cores\n")
        print("| command | time | baseline | baseline time | ratio | target | peak RSS |")
        print("|---|---|---|---|---|---|---|")
        for name, baseline, target in [("apply", "git am", 1.10), ("no-op apply", "git status", 1.5),
                                       ("status", "git status", 1.3)]:
            (t, rss), (bt, brss) = med(name), med(baseline)
            print(f"| patchmgr {name} | {t * 1000:.0f} ms | {baseline} | {bt * 1000:.0f} ms | {t / bt:.2f}x | "
                  f"<= {target}x | {rss} MB (git: {brss} MB) |")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
