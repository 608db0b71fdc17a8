#!/usr/bin/env python3
"""Benchmark the commands that only read (diff-sets, check, mcp) against plain git.

`patchmgr diff-sets A B` against `git range-diff` of the same two series (made
beforehand with git am, untimed); `patchmgr check` and `patchmgr mcp` against
`git am --3way` of the set's superproject patches in a scratch clone checked out
at the set's base, as a user would try a series by hand. That checkout is not
in git am's time: it has a row of its own, what every scratch clone of the tree
costs before the first patch goes in. Medians of --runs runs, with ratios.

    python3 scripts/bench_readonly.py [--runs 3] [--tree DIR] [--enzyme DIR]
    python3 scripts/bench_readonly.py --checkout DIR --patches DIR --set NAME [--runs 3]

Without --checkout it runs on the real rustc 1.63.0 tree as scripts/bench_apply.py
sets it up (imported into a temporary directory, or a clone of --tree). With
--checkout it runs in that checkout as it is, which the commands only read. The
second set diff-sets compares with (the set without its last superproject patch)
and, where the set has none, a cover letter for mcp go into a copy of the
patches directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import tomlkit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from bench_apply import SET, bench_tree, git, measure, pin_enzyme  # noqa: E402

from patchmgr.base import repo_base  # noqa: E402
from patchmgr.series import SUPERPROJECT, load_manifest  # noqa: E402
from patchmgr.workspace import Workspace  # noqa: E402

COVER = "# Benchmark\n\n" + "".join(f"## {name}\n\n(benchmark)\n\n" for name in
                                    ("Motivation", "Design", "Alternatives", "Open questions", "Mentors or Reviewers"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tree", type=Path, help="an imported rustc 1.63.0 tree to clone (it is left as it was)")
    parser.add_argument("--enzyme", type=Path, metavar="DIR",
                        help="a local Enzyme repository whose HEAD the set pins (default: the tests' stand-in)")
    parser.add_argument("--checkout", type=Path, help="run in this checkout as it is (with --patches and --set)")
    parser.add_argument("--patches", type=Path, help="the patches directory of --checkout")
    parser.add_argument("--set", dest="set_name", help="the set of --checkout to measure")
    args = parser.parse_args()
    if args.checkout and not (args.patches and args.set_name):
        parser.error("--checkout needs --patches and --set")
    return args


def setup(args: argparse.Namespace, tmp: Path) -> tuple[Path, dict, Path, str]:
    """(checkout, environment, the patches directory's copy, set name)."""
    patches = tmp / "patches"
    if args.checkout:
        tree, env, set_name = args.checkout.resolve(), dict(os.environ), args.set_name
        shutil.copytree(args.patches, patches)
        doc = tomlkit.parse((patches / "series.toml").read_text())
    else:
        tree, env = bench_tree(args, tmp)
        set_name = SET
        shutil.copytree(REPO / "patches", patches)
        doc = tomlkit.parse((patches / "series.toml").read_text())
        pin_enzyme(args, tmp, env, doc)
    table = doc["sets"][set_name]
    second = tomlkit.parse(tomlkit.dumps({"set": table}))["set"]
    second["repos"][SUPERPROJECT]["patches"] = list(table["repos"][SUPERPROJECT]["patches"])[:-1]
    doc["sets"][f"{set_name}-v2"] = second
    if "cover" not in table:
        (patches / "bench-cover.md").write_text(COVER)
        table["cover"] = "bench-cover.md"
    (patches / "series.toml").write_text(tomlkit.dumps(doc))
    return tree, env, patches, set_name


def superproject_base(tree: Path, env: dict, patches: Path, set_name: str) -> str:
    """The commit check, diff-sets and mcp put the set's superproject patches on."""
    os.environ.update(env)  # the in-process git reads as the commands do
    ws = Workspace(tree, load_manifest(patches))
    patch_set = ws.manifest.get(set_name)
    return repo_base(ws.superproject, ws.set_base(patch_set), SUPERPROJECT, patch_set)


def patch_files(patches: Path, set_name: str) -> list[str]:
    patch_set = load_manifest(patches).get(set_name)
    series = next(r for r in patch_set.repos if r.path == SUPERPROJECT)
    return [str(patch_set.patch_file(series, name)) for name in series.patches]


def am(clone: Path, files: list[str]) -> list[str]:
    """git am, as a user runs it by hand, of `files` in `clone`."""
    return ["git", "-C", str(clone), "am", "-q", "--3way", "--keep-non-patch", *files]


#: each command and the plain git it is measured against
PAIRS = (("diff-sets", "range-diff", "git range-diff of the same commits"),
         ("check", "am", "git am --3way in a checked-out scratch clone"),
         ("mcp", "am", "git am --3way in a checked-out scratch clone"))


def table(med: dict[str, float]) -> list[str]:
    """The Markdown table of the medians (seconds), with the ratios."""
    lines = ["| command | time | plain git | time | ratio |", "|---|---|---|---|---|"]
    lines += [f"| patchmgr {ours} | {med[ours] * 1000:.0f} ms | {label} | {med[theirs] * 1000:.0f} ms | "
              f"{med[ours] / med[theirs]:.2f}x |" for ours, theirs, label in PAIRS]
    lines.append(f"| (the scratch clone's checkout, before git am) | | git checkout of the base | "
                 f"{med['checkout'] * 1000:.0f} ms | |")
    return lines


def main() -> int:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="patchmgr-bench-"))
    try:
        tree, env, patches, set_name = setup(args, tmp)
        second = f"{set_name}-v2"
        base = superproject_base(tree, env, patches, set_name)
        files = {name: patch_files(patches, name) for name in (set_name, second)}
        clone = tmp / "plain"
        git(tmp, env, "clone", "-q", "--shared", "--no-checkout", "--", str(tree), str(clone))
        tips = {}
        for name in (set_name, second):  # the two series as commits, for range-diff
            git(clone, env, "checkout", "-q", "--detach", base)
            measure(am(clone, files[name]), tmp, env)
            tips[name] = git(clone, env, "rev-parse", "HEAD")
        patchmgr = [sys.executable, "-m", "patchmgr", "--patches", str(patches)]
        rows: dict[str, list[float]] = {k: [] for k in ("diff-sets", "range-diff", "check", "mcp", "am", "checkout")}
        for _ in range(args.runs):
            rows["diff-sets"].append(measure([*patchmgr, "diff-sets", set_name, second], tree, env)[0])
            rows["range-diff"].append(measure(["git", "-C", str(clone), "range-diff", f"{base}..{tips[set_name]}",
                                               f"{base}..{tips[second]}"], tmp, env)[0])
            rows["check"].append(measure([*patchmgr, "check", "--set", set_name], tree, env)[0])
            rows["mcp"].append(measure([*patchmgr, "mcp", "--set", set_name, "--out", str(tmp / "mcp")], tree, env)[0])
            git(clone, env, "read-tree", "--empty")  # an empty work tree: the checkout writes every file
            for path in clone.iterdir():
                if path.is_dir() and path.name != ".git":
                    shutil.rmtree(path)
                elif not path.is_dir():
                    path.unlink()
            rows["checkout"].append(measure(["git", "-C", str(clone), "checkout", "-q", "-f", "--detach", base],
                                            tmp, env)[0])
            rows["am"].append(measure(am(clone, files[set_name]), tmp, env)[0])
        count = len(files[set_name])
        print(f"{tree.name}: set {set_name} ({count} superproject patches) and {second} ({count - 1}), "
              f"median of {args.runs} runs, {os.cpu_count()} cores\n")
        print("\n".join(table({name: statistics.median(times) for name, times in rows.items()})))
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
