#!/usr/bin/env python3
"""Benchmark patchmgr against plain git on the real rustc 1.63.0 tree.

Same run, same patches, same Enzyme: `patchmgr apply` against plain `git am`
plus the Enzyme submodule added with plain git, a no-op re-apply and
`patchmgr status` against `git status`, with the peak RSS of each command
(its own process tree, from wait4). Medians of --runs runs.

    python3 scripts/bench_apply.py [--runs 5] [--tree DIR] [--enzyme DIR]

Without --tree, a tree is imported into a temporary directory with
scripts/import_rustc.py (downloads are cached); with it, the benchmark runs in
a clone of that tree at its base, so the tree itself is left as it was.
Without --enzyme, the set pins the small Enzyme stand-in of the tests
(tests/enzyme-standin); --enzyme pins HEAD of a local Enzyme repository, so
that the submodule's status costs what a real-size checkout costs.
"""

from __future__ import annotations

import argparse
import os
import shlex
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
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import import_rustc  # noqa: E402
from realtree import enzyme_standin  # noqa: E402

from patchmgr.base import repo_state, series_limit  # noqa: E402
from patchmgr.gitio import Repo  # noqa: E402
from patchmgr.series import load_manifest  # noqa: E402
from patchmgr.workspace import enzyme_rel_path  # noqa: E402

SET = "autodiff-1.63.0"
LLVM = "src/llvm-project"


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


def git(cwd: Path, env: dict, *args: str) -> str:
    """Run git; its stdout, stripped."""
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark on the real tree takes (--runs, --tree, --enzyme); a benchmark
    adds its own to it."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, help="an imported rustc 1.63.0 tree to clone (it is left as it was)")
    parser.add_argument("--enzyme", type=Path, metavar="DIR",
                        help="a local Enzyme repository whose HEAD the set pins (default: the tests' stand-in)")
    return parser


def bench_args(doc: str) -> argparse.Namespace:
    return bench_parser(doc).parse_args()


def bench_tree(args: argparse.Namespace, tmp: Path) -> tuple[Path, dict]:
    """The tree, imported into tmp (or with --tree, cloned there), and the environment the
    commands run in: a private git config, this checkout's patchmgr (not whichever is
    installed), and a private bytecode cache, so that patchmgr starts as an installed one does
    (pip compiles it) and not by compiling every module on every run, as it would under
    PYTHONDONTWRITEBYTECODE."""
    tree = tmp / "rustc-1.63.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(tmp / "gitconfig"), HOME=str(tmp),
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@invalid", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="bench@invalid", PYTHONPYCACHEPREFIX=str(tmp / "pycache"),
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    if args.tree:
        clone_tree(args.tree.resolve(), tree, env)
    else:
        import_rustc.build("1.63.0", tree)
    return tree, env


def clone_tree(source: Path, dest: Path, env: dict) -> None:
    """A clone of `source` at its base (below the set's commits when it has the set applied, as a
    built tree does), with its src/llvm-project. The benchmarks switch branches, apply and unapply,
    which they must not do in the tree they were given; --shared borrows its objects, writing none."""
    base = repo_state(Repo(source), None, series_limit(load_manifest(REPO / "patches"))).base
    git(source.parent, env, "clone", "-q", "--shared", "--no-checkout", "--", str(source), str(dest))
    git(dest, env, "checkout", "-q", "-B", "upstream", base)
    # the submodule from the source's own clone of it, at the commit the base records
    git(dest, env, "submodule", "init", "--", LLVM)
    git(dest, env, "config", f"submodule.{LLVM}.url", git(source / LLVM, env, "rev-parse", "--absolute-git-dir"))
    git(dest, env, "-c", "protocol.file.allow=always", "submodule", "update", "-q", "--", LLVM)
    for repo in (dest, dest / LLVM):  # the branch each clone made for its source's HEAD: a patch branch, perhaps
        for ref in git(repo, env, "for-each-ref", "--format=%(refname)", "refs/heads/").split():
            if ref != "refs/heads/upstream" or repo != dest:
                git(repo, env, "update-ref", "-d", ref)


def pin_enzyme(args: argparse.Namespace, tmp: Path, env: dict, manifest) -> str:
    """Pin the set's Enzyme to HEAD of --enzyme, else to the stand-in, and redirect the manifest's
    URL to that repository in the private git config (as a user without network would);
    returns how the table names it."""
    enzyme = manifest["sets"][SET]["enzyme"]
    if args.enzyme:
        repo = args.enzyme.resolve()
        commit = git(repo, env, "rev-parse", "HEAD^{commit}")
    else:
        repo, commit = enzyme_standin(tmp, env)
        # the set's patches for Enzyme itself need the real sources: left out with the stand-in
        manifest["sets"][SET]["repos"].pop(str(enzyme.get("path", LLVM + "/enzyme")), None)
        print("bench: NO --enzyme: the set pins the tests' small Enzyme stand-in (tests/enzyme-standin), and its "
              "patches for Enzyme itself are LEFT OUT; pass --enzyme DIR (a local Enzyme repository) to measure "
              "the whole set on the real Enzyme", file=sys.stderr)
    enzyme["commit"] = commit
    config = env["GIT_CONFIG_GLOBAL"]
    git(tmp, env, "config", "--file", config, f"url.{repo}.insteadOf", str(enzyme["url"]))
    git(tmp, env, "config", "--file", config, "protocol.file.allow", "always")
    files = len(git(repo, env, "ls-tree", "-r", "--name-only", commit).splitlines())
    return f"{'Enzyme ' + commit[:12] if args.enzyme else 'the Enzyme stand-in'} ({files} files)"


def checked_out(repo: Path, env: dict) -> str:
    """The branch checked out in `repo`, or its commit when HEAD is detached (as a fresh submodule's is)."""
    branch = git(repo, env, "rev-parse", "--abbrev-ref", "HEAD")
    return branch if branch != "HEAD" else git(repo, env, "rev-parse", "HEAD")


class PlainGit:
    """What apply does, done with plain git: the patches with `git am`, then the Enzyme submodule
    added at its pin (reusing the clone an earlier apply left in .git/modules, as apply does) with
    the set's Enzyme patches on it, and the submodule commits recorded, on a branch `bench-am` in
    both repositories."""

    BRANCH = "bench-am"

    def __init__(self, tree: Path, env: dict, patches: Path):
        self.tree, self.env = tree, env
        patch_set = load_manifest(patches).sets[SET]
        assert patch_set.enzyme and patch_set.enzyme_owner() == LLVM, "the set's Enzyme lives in src/llvm-project"
        assert all(not r.patches for r in patch_set.repos if r.path != "."), "only the superproject has patches"
        self.files = [str(patch_set.patch_file(r, name)) for r in patch_set.repos if r.path == "." for name in r.patches]
        self.pin, self.rel = patch_set.enzyme, enzyme_rel_path(patch_set)
        self.enzyme_files = [str(patch_set.patch_file(patch_set.enzyme_series, name))
                             for name in patch_set.enzyme_series.patches] if patch_set.enzyme_series else []
        self.owner = tree / LLVM
        self.start = {tree: checked_out(tree, env), self.owner: checked_out(self.owner, env)}

    def command(self) -> list[str]:
        """One shell command, so that its time and peak RSS are measured like patchmgr's."""
        steps = [["git", "am", "-q", "--3way", *self.files],
                 ["git", "-C", LLVM, "submodule", "add", "-q", "--force", "--name", self.rel, "--", self.pin.url,
                  self.rel],
                 ["git", "-C", f"{LLVM}/{self.rel}", "checkout", "-q", "--detach", self.pin.commit],
                 *([["git", "-C", f"{LLVM}/{self.rel}", "am", "-q", "--3way", *self.enzyme_files]]
                   if self.enzyme_files else []),
                 ["git", "-C", LLVM, "commit", "-q", "-m", "Add Enzyme"],
                 ["git", "add", "--", LLVM],
                 ["git", "commit", "-q", "-m", f"Record {LLVM}"]]
        return ["sh", "-ec", " && ".join(shlex.join(step) for step in steps)]

    def branch(self) -> None:
        for repo, start in self.start.items():
            git(repo, self.env, "checkout", "-q", "-b", self.BRANCH, start)

    def undo(self) -> None:
        """Both repositories back where they started, the Enzyme work tree gone (its clone kept)."""
        shutil.rmtree(self.owner / self.rel)
        git(self.owner, self.env, "config", "--remove-section", f"submodule.{self.rel}")
        for repo in (self.owner, self.tree):
            git(repo, self.env, "checkout", "-q", self.start[repo])
            git(repo, self.env, "branch", "-q", "-D", self.BRANCH)


def main() -> int:
    args = bench_args(__doc__)
    tmp = Path(tempfile.mkdtemp(prefix="patchmgr-bench-"))
    try:
        tree, env = bench_tree(args, tmp)
        patches = tmp / "patches"
        shutil.copytree(REPO / "patches", patches)
        manifest = tomlkit.parse((patches / "series.toml").read_text())
        enzyme = pin_enzyme(args, tmp, env, manifest)
        (patches / "series.toml").write_text(tomlkit.dumps(manifest))
        patchmgr = [sys.executable, "-m", "patchmgr", "--patches", str(patches)]
        plain = PlainGit(tree, env, patches)
        # the first apply clones Enzyme into .git/modules; every measured one reuses that clone
        measure([*patchmgr, "apply"], tree, env)
        measure([*patchmgr, "unapply"], tree, env)

        rows: dict[str, list[tuple[float, int]]] = {k: [] for k in ("apply", "git am + submodule add", "no-op apply",
                                                                    "status", "git status")}
        for _ in range(args.runs):
            plain.branch()
            rows["git am + submodule add"].append(measure(plain.command(), tree, env))
            plain.undo()
            rows["apply"].append(measure([*patchmgr, "apply"], tree, env))
            rows["no-op apply"].append(measure([*patchmgr, "apply"], tree, env))
            rows["status"].append(measure([*patchmgr, "status"], tree, env))
            rows["git status"].append(measure(["git", "status"], tree, env))
            measure([*patchmgr, "unapply"], tree, env)

        def med(name: str) -> tuple[float, int]:
            return statistics.median(t for t, _ in rows[name]), max(r for _, r in rows[name])

        print(f"real rustc 1.63.0 tree, {len(plain.files)} patches, {enzyme}, median of {args.runs} runs, "
              f"{os.cpu_count()} cores\n")
        print("| command | time | baseline | baseline time | ratio | target | peak RSS |")
        print("|---|---|---|---|---|---|---|")
        for name, baseline, target in [("apply", "git am + submodule add", 1.10), ("no-op apply", "git status", 1.5),
                                       ("status", "git status", 1.3)]:
            (t, rss), (bt, brss) = med(name), med(baseline)
            print(f"| patchmgr {name} | {t * 1000:.0f} ms | {baseline} | {bt * 1000:.0f} ms | {t / bt:.2f}x | "
                  f"<= {target}x | {rss} MB (git: {brss} MB) |")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
