#!/usr/bin/env python3
"""Benchmark `patchmgr rebase` against plain `git rebase` on the real rustc 1.63.0 tree.

The new upstream is the 1.63.0 release with Debian's 37 quilt patches
committed on top (the series replays onto it without conflicts, so both
tools run to the end). Same run, same commits (the set's patches for
rustc): `git rebase --onto` of a branch made with `git am`, and `patchmgr
rebase --onto` of the set's files (which also exports the new set and
applies it, Enzyme submodule and Enzyme's own patches included, as its
documentation says). Medians of --runs runs, peak RSS of each command's
process tree.

    python3 scripts/bench_rebase.py [--runs 5] [--tree DIR] [--enzyme DIR]

--enzyme pins HEAD of a local Enzyme repository, as scripts/bench_apply.py
does; without it the set pins the tests' Enzyme stand-in, which lacks the
files the set's Enzyme patches change, so those patches are left out (the
benchmark says so on stderr).

--debian measures the rebase engine on a real series instead: Debian's 37
quilt patches for rustc 1.63, imported with `patchmgr import`, carried onto
rustc 1.85.0 (Debian's rustc-web 1.85.0 tarball committed on the 1.63.0
base) by `patchmgr rebase --dry-run` (every stop skipped), and scored against
Debian's own 1.85 series (its debian/patches, used only as the truth, matched
by quilt file name): of the patches Debian kept, how many are carried
(clean, merged, relocated), how many of those change the same files and add
the same lines as Debian's refresh, and how many relocations land in a file
Debian's patch does not touch; of the patches Debian dropped, how many are
flagged (dropped as upstream, superseded, gone). Then the shipped autodiff
set onto the same commit, patch by patch. Timed against plain `git rebase
--onto` of the same 37 commits (made with `git am --3way` on the 1.63.0
base) onto the same commit, each conflict skipped with `git rebase --skip`.
With --fuzz N the dry run is made a second time with `--fuzz N` (untimed),
and its results are scored as rows and a column of their own, next to the
default ones (exact preimages, reindented, compiletest directives).

    python3 scripts/bench_rebase.py --debian [--runs 1] [--tree DIR] [--fuzz 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tomlkit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

from bench_apply import SET, bench_parser, bench_tree, git, measure, pin_enzyme  # noqa: E402
from prepare_bootstrap import debian_dir, quilt_series  # noqa: E402

from patchmgr.hunks import split_lines  # noqa: E402

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


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--debian", action="store_true",
                        help="Debian's 1.63 series onto 1.85.0, scored against Debian's 1.85 series (see above)")
    parser.add_argument("--fuzz", type=int, default=0, metavar="N",
                        help="with --debian: also score a dry run with --fuzz N, as separate rows")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.debian:
        return debian_main(args)
    tmp = Path(tempfile.mkdtemp(prefix="patchmgr-bench-rebase-"))
    try:
        tree, env = bench_tree(args, tmp)
        patches = tmp / "patches"
        shutil.copytree(REPO / "patches", patches)
        manifest_path = patches / "series.toml"
        manifest = tomlkit.parse(manifest_path.read_text())
        enzyme = pin_enzyme(args, tmp, env, manifest)
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
        print(f"real rustc 1.63.0 tree onto Debian's 37 patches, {len(files)} commits, {enzyme}, median of "
              f"{args.runs} runs, {os.cpu_count()} cores\n")
        print("| command | time | baseline | baseline time | ratio | target | peak RSS |")
        print("|---|---|---|---|---|---|---|")
        print(f"| patchmgr rebase | {pt * 1000:.0f} ms | git rebase | {gt * 1000:.0f} ms | {pt / gt:.2f}x | <= 1.2x | "
              f"{prss} MB (git: {grss} MB) |")
        return 0
    finally:
        if args.tree:
            subprocess.run(["git", "branch", "-q", "-D", "bench-onto"], cwd=args.tree, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


# --- --debian: Debian's real series, 1.63 -> 1.85, scored against Debian's own refresh -------------

NEW_VERSION = "1.85.0"
CARRIED = ("clean", "merged 3-way", "relocated")
FLAGGED = ("dropped as upstream", "superseded by upstream", "gone")


def debian_dir_of(version: str) -> Path:
    """debian/ of the release's Debian source package (downloaded once, as import_rustc does)."""
    from patchmgr.releases import RELEASES, cache_dir, download, run

    package, debian_version, _, _ = RELEASES[version]
    target = cache_dir() / "debian" / debian_version
    if not (target / "debian" / "patches" / "series").exists():
        dl = download(package, debian_version)
        target.mkdir(parents=True, exist_ok=True)
        run("tar", "--no-same-owner", "-xf", next(dl.glob("*.debian.tar.*")), "-C", target)
    return target / "debian"


def release_onto(tree: Path, env: dict, base: str) -> str:
    """rustc 1.85.0 as a child of `base`, tagged, with the base's submodules (gitlinks and .gitmodules):
    what `rebase --onto 1.85.0` commits. A tag already there (from an earlier run, possibly made
    before `rebase` carried every gitlink of the base) lends its tree, so nothing is extracted again.
    """
    from patchmgr.releases import RELEASES, commit_message, commit_release, fixed_env

    links = {}
    for entry in git(tree, env, "ls-tree", "-r", "-z", base).split("\0"):
        meta, _, path = entry.partition("\t")
        if meta.startswith("160000 "):
            links[path] = meta.split()[2]
    tagged = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/tags/{NEW_VERSION}^{{commit}}"], cwd=tree,
                            env=env, capture_output=True, text=True).stdout.strip()
    if not tagged:
        onto = commit_release(tree, NEW_VERSION, base, links)
    else:
        index = dict(env, GIT_INDEX_FILE=str(tree / ".git" / "bench-release.index"))
        git(tree, index, "read-tree", tagged)
        modules = git(tree, env, "rev-parse", f"{base}:.gitmodules")
        entries = [f"100644 {modules}\t.gitmodules", *(f"160000 {c}\t{p}" for p, c in links.items())]
        subprocess.run(["git", "update-index", "--index-info"], cwd=tree, env=index, check=True,
                       input="\n".join(entries) + "\n", text=True, capture_output=True)
        tree_id = git(tree, index, "write-tree")
        os.unlink(tree / ".git" / "bench-release.index")
        onto = git(tree, {**fixed_env(RELEASES[NEW_VERSION][3]), **{k: env[k] for k in ("GIT_CONFIG_GLOBAL", "HOME")}},
                   "commit-tree", tree_id, "-p", base, "-m", commit_message(NEW_VERSION))
    git(tree, env, "tag", "-f", NEW_VERSION, onto)
    return onto


def report_outcomes(path: Path) -> dict[str, str]:
    """label -> outcome text, from a rebase report's table."""
    found = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0] not in ("patch", "---"):
            found[cells[0]] = cells[1].replace("\\|", "|")
    return found


def word(outcome: str) -> str:
    """The outcome's kind: a carry, a finding, or a stop (conflict)."""
    for w in (*CARRIED, *FLAGGED):
        if outcome.startswith(w):
            return w
    return "stop (conflict)"


def changes(diff: str, strip: int) -> tuple[set[str], set[str]]:
    """(files changed, lines added, stripped) of a unified diff; paths lose `strip` leading components."""
    import unidiff

    files, added = set(), set()
    for f in unidiff.PatchSet(diff):
        name = f.target_file if f.target_file != "/dev/null" else f.source_file
        files.add(name.split("/", strip)[-1])
        added |= {line.value.strip() for h in f for line in h if line.is_added and line.value.strip()}
    return files, added


@dataclass
class Proposed:
    """The proposals of one stopped patch, with the new tree's files they were measured on."""

    found: list  # proposal.Found
    files: dict[str, list[str]]  # path -> lines of the tip's file
    seconds: float  # what making them took (as the dry run makes them)


def carried_diffs(tree: Path, patches: Path, set_name: str, onto: str, outcomes: dict[str, str],
                  fuzz: int = 0) -> tuple[dict[str, str], dict[str, Proposed]]:
    """label -> the carried patch as a diff on the new base, for each patch the dry run carried;
    and label -> the proposals for the hunks of each patch it stopped on.

    The same decisions as the dry run (rebase.decide, rebase.proposals), replayed in the tree's
    object store only (no work tree, no index of the tree's): a stopped patch leaves the tip as it was.
    """
    from patchmgr import carry, engine, rebase, state
    from patchmgr.series import SUPERPROJECT, load_manifest
    from patchmgr.workspace import Workspace

    ws = Workspace.open(tree, load_manifest(patches))
    p = rebase.plan(ws, ws.inspect(set_name), onto, "bench-scored", None)
    journal = state.RebaseJournal(set=p.name, patch_branch="bench", repos=[], from_set=p.old.name, onto_arg=onto,
                                  old_bases=p.old_bases, ontos=p.ontos, new=p.new, dirs={}, fuzz=fuzz)
    repo = ws.repo(SUPERPROJECT)
    replay = carry.Replay(repo, fuzz)
    diffs, proposed = {}, {}
    try:
        pending = p.patches[SUPERPROJECT]
        commits = replay.materialize(p.old_bases[SUPERPROJECT], pending,
                                     [engine.tagged(patch, p.name) for patch in pending])
        tip = p.ontos[SUPERPROJECT]
        for patch, commit in zip(pending, commits):
            if word(outcomes.get(patch.label, "")) == "stop (conflict)":
                decision = rebase.decide(replay, journal, repo, patch, commit, tip, [])
                start = time.perf_counter()
                found = rebase.proposals(replay, journal, repo, tip, decision)
                seconds = time.perf_counter() - start
                view = replay.view(replay.tree_of(tip))
                files = {path: split_lines(view.text(path) or "")
                         for f in found for path in {f.record.path, f.record.target} if path}
                proposed[patch.label] = Proposed(found, files, seconds)
            if word(outcomes.get(patch.label, "")) not in CARRIED:
                continue
            decision = rebase.decide(replay, journal, repo, patch, commit, tip, [])
            if decision.tree is None or word(decision.outcome) != word(outcomes[patch.label]):
                raise SystemExit(f"bench: {patch.label}: {decision.outcome} here, {outcomes[patch.label]} in the dry run")
            new_tip = repo.recommit(commit, tip, tree=decision.tree)
            diffs[patch.label] = repo.run("diff", tip, new_tip, readonly=True, strip=False)
            tip = new_tip
    finally:
        replay.close()
    return diffs, proposed


def debian_hunks(diff: str) -> dict[str, list]:
    """path -> the hunks (hunks.Hunk) of a Debian quilt patch, paths without their first component."""
    import unidiff

    from patchmgr.hunks import parse_section

    found: dict[str, list] = {}
    for f in unidiff.PatchSet(diff):
        name = (f.source_file if f.source_file != "/dev/null" else f.target_file).split("/", 1)[-1]
        found[name] = [parse_section(str(h), name, name).hunks[0] for h in f]
    return found


def _changed(hunk) -> list[str]:
    """The lines a hunk removes and adds, stripped: what it is about, wherever it sits."""
    core_before = hunk.before[hunk.lead:len(hunk.before) - hunk.trail]
    core_after = hunk.after[hunk.lead:len(hunk.after) - hunk.trail]
    return [line.strip() for line in (*core_before, "=>", *core_after)]


def counterpart(hunk, theirs: dict[str, list]) -> tuple[str, object] | None:
    """The hunk of Debian's refresh that makes the same change (most similar removed and added
    lines, at least half alike), or None: Debian dropped that hunk, or rewrote it beyond recognition."""
    from patchmgr.proposal import similarity, tokens

    mine = tokens(" ".join(_changed(hunk)))
    scored = [(similarity(mine, tokens(" ".join(_changed(h)))), path, h) for path, hs in theirs.items() for h in hs]
    if not scored:
        return None
    best = max(scored, key=lambda x: x[0])
    return (best[1], best[2]) if best[0] >= 0.5 else None


def debian_span(lines: list[str], hunk) -> tuple[int, int]:
    """Where Debian's hunk changes the file (0-based, end exclusive): its preimage found in the file
    (else its own line number), its removed lines, or the two lines around a pure insertion."""
    from patchmgr.hunks import find_block

    at = find_block(lines, hunk.before, max(hunk.old_start - 1, 0))
    at = at if at is not None else max(hunk.old_start - 1, 0)
    first, last = at + hunk.lead, at + len(hunk.before) - hunk.trail
    return (first, last) if last > first else (max(first - 1, 0), first + 1)


def score_proposals(labels, kept, quilt_of, new_patches, proposed: dict[str, Proposed]) -> dict:
    """The stopped hunks of the kept patches against Debian's refresh: how many have a counterpart
    there, how many of those the proposal places where it changes (same file, overlapping lines),
    how many candidates equal it (the file with the candidate is the file with Debian's hunk)."""
    from patchmgr.hunks import find_block
    from patchmgr.proposal import block, describe

    total = with_truth = place_right = equal = no_place = merged = 0
    rows, blocks = [], []
    for label in labels:
        if label not in kept or label not in proposed:
            continue
        quilt = quilt_of[label].removesuffix(".patch")
        theirs = debian_hunks(new_patches[quilt].read_text(encoding="utf-8", errors="surrogateescape"))
        got = proposed[label]
        for f in got.found:
            total += 1
            r = f.record
            no_place += r.target is None
            merged += r.candidate is not None
            match = counterpart(f.hunk, theirs)
            verdict = "no counterpart in Debian's refresh"
            if match is not None:
                with_truth += 1
                path, hunk = match
                verdict = "place wrong"
                if r.target == path:
                    lines = got.files.get(path) or []
                    first, last = debian_span(lines, hunk)
                    if r.start - 1 < last and first < r.end:
                        place_right += 1
                        verdict = "place right"
                        at = find_block(lines, hunk.before, max(hunk.old_start - 1, 0))
                        if r.candidate is not None and at is not None:
                            ours = lines[:r.start - 1] + r.candidate + lines[r.end:]
                            if ours == lines[:at] + list(hunk.after) + lines[at + len(hunk.before):]:
                                equal += 1
                                verdict += ", candidate equal"
            rows.append((quilt, proposal_text(r), verdict))
            blocks.append(f"## {quilt}: {verdict}\n{describe(r)}\n" + "".join(
                block(label, r.path, f.hunk, f.window, r.candidate, r.similarity) if r.target else []))
    if os.environ.get("BENCH_PROPOSALS"):  # every block as the rebase would write it, for reading
        Path(os.environ["BENCH_PROPOSALS"]).write_text("\n".join(blocks), encoding="utf-8")
    seconds = sum(p.seconds for p in proposed.values())
    return {"total": total, "with_truth": with_truth, "place_right": place_right, "equal": equal,
            "no_place": no_place, "merged": merged, "rows": rows, "seconds": seconds}


def proposal_text(record) -> str:
    from patchmgr.proposal import describe

    return describe(record).replace("|", "\\|")


def git_rebase_skipping(tree: Path, env: dict, onto: str, base: str, branch: str) -> tuple[float, int, int, int]:
    """`git rebase --onto` of base..branch, each stop skipped: (seconds, peak MB, stops, commits carried)."""
    total, peak, stops = 0.0, 0, 0
    argv = ["git", "rebase", "-q", "--onto", onto, base, branch]
    while True:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        total += time.perf_counter() - start
        peak = max(peak, usage.ru_maxrss // 1024)
        if status == 0:
            break
        if not (tree / ".git" / "rebase-merge").exists():
            raise SystemExit(f"bench: {' '.join(argv)} failed without stopping on a conflict")
        stops += 1
        argv = ["git", "rebase", "--skip"]
    carried = len(git(tree, env, "rev-list", f"{onto}..HEAD").split())
    return total, peak, stops, carried


def debian_main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="patchmgr-bench-debian-"))
    try:
        tree, env = bench_tree(args, tmp)
        run = dict(cwd=tree, env=env, capture_output=True, text=True)
        base = git(tree, env, "rev-parse", "HEAD")
        branch = git(tree, env, "symbolic-ref", "--short", "HEAD")
        old_debian, new_debian = debian_dir(), debian_dir_of(NEW_VERSION)
        old_names = [p.name for p in quilt_series(old_debian)]
        new_patches = {Path(line.split()[0]).name.removesuffix(".patch"): new_debian / "patches" / line.split()[0]
                       for line in (new_debian / "patches" / "series").read_text().splitlines()
                       if line.strip() and not line.lstrip().startswith("#")}

        patches = tmp / "debian-patches"
        patchmgr = [sys.executable, "-m", "patchmgr", "--patches", str(patches)]
        res = subprocess.run([*patchmgr, "import", str(old_debian / "patches" / "series"), "--set", "debian-1.63.0",
                              "--rustc", "1.63.0", "--commit", git(tree, env, "show", "HEAD:git-commit-hash"),
                              "--llvm", "14"], **run)
        imported = re.search(r"imported (\d+) patches", res.stderr)
        if res.returncode != 0 or not imported:
            raise SystemExit(f"bench: patchmgr import failed: {res.stderr[-500:]}")
        manifest = tomlkit.parse((patches / "series.toml").read_text())
        files = [str(x) for x in manifest["sets"]["debian-1.63.0"]["repos"]["."]["patches"]]
        labels = [f"debian-1.63.0/rust/{name}" for name in files]
        if len(labels) != len(old_names):
            raise SystemExit(f"bench: imported {len(labels)} of {len(old_names)} quilt patches: {res.stderr[-500:]}")
        quilt_of = dict(zip(labels, old_names))

        git(tree, env, "config", "gc.auto", "0")  # no automatic gc in the middle of a measurement
        # the baseline's branch: the same 37 commits (one patch has CRLF lines: --keep-cr, as patchmgr keeps them)
        git(tree, env, "checkout", "-q", "-b", "bench-debian", base)
        git(tree, env, "am", "-q", "--3way", "--keep-cr", *(str(patches / "debian-1.63.0" / "rust" / f) for f in files))
        git(tree, env, "checkout", "-q", branch)
        onto = release_onto(tree, env, base)
        report = tmp / "debian-dry-run.md"
        times = [measure([*patchmgr, "rebase", "--dry-run", "--onto", NEW_VERSION, "--report", str(report)], tree, env)
                 for _ in range(args.runs)]
        outcomes = report_outcomes(report)
        diffs, proposed = carried_diffs(tree, patches, "debian-1.63.0", onto, outcomes)
        relocations = _relocations(report)
        scores = [("default", outcomes, diffs, relocations)]
        if args.fuzz:
            fuzzed = tmp / "debian-dry-run-fuzz.md"
            res = subprocess.run([*patchmgr, "rebase", "--dry-run", "--fuzz", str(args.fuzz), "--onto", NEW_VERSION,
                                  "--report", str(fuzzed)], **run)
            if res.returncode != 0:
                raise SystemExit(f"bench: the dry run with --fuzz {args.fuzz} failed: {res.stderr[-500:]}")
            fuzz_outcomes = report_outcomes(fuzzed)
            scores.append((f"--fuzz {args.fuzz}", fuzz_outcomes,
                           carried_diffs(tree, patches, "debian-1.63.0", onto, fuzz_outcomes, args.fuzz)[0],
                           _relocations(fuzzed)))

        git_runs = []
        for k in range(args.runs):
            if k:
                git(tree, env, "checkout", "-q", "-B", "bench-debian", git(tree, env, "rev-parse", "bench-debian-orig"))
            else:
                git(tree, env, "branch", "-f", "bench-debian-orig", "bench-debian")
            git(tree, env, "checkout", "-q", branch)
            git_runs.append(git_rebase_skipping(tree, env, onto, base, "bench-debian"))
        git(tree, env, "checkout", "-q", "-f", branch)

        autodiff_report = tmp / "autodiff-dry-run.md"
        res = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(REPO / "patches"), "rebase",
                              "--dry-run", "--onto", NEW_VERSION, "--set", SET, "--report", str(autodiff_report)], **run)
        if res.returncode != 0:
            raise SystemExit(f"bench: the autodiff set's dry run failed: {res.stderr[-500:]}")

        _print_debian(args, imported.group(1), labels, quilt_of, new_patches, scores, times, git_runs,
                      report_outcomes(autodiff_report), proposed)
        if os.environ.get("BENCH_KEEP_REPORT"):
            shutil.copy(report, os.environ["BENCH_KEEP_REPORT"])
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _relocations(report: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    label = None
    for line in report.read_text().split("## Relocated hunks", 1)[-1].splitlines() if "## Relocated hunks" in \
            report.read_text() else []:
        if line.startswith("- "):
            label = line[2:].strip()
        elif line.startswith("  - ") and label:
            found.setdefault(label, []).append(line[4:].strip())
    return found


def _score(labels, kept, quilt_of, new_patches, outcomes, diffs, relocations) -> dict:
    """One dry run against Debian's refresh: the counts, and per patch (outcome word, comparison)."""
    rows, same, wrong, carried = {}, 0, 0, 0
    for label in labels:
        quilt = quilt_of[label].removesuffix(".patch")
        kind = word(outcomes.get(label, "not replayed"))
        match = "-"
        if kind in CARRIED and label in kept:
            carried += 1
            theirs = changes(new_patches[quilt].read_text(encoding="utf-8", errors="surrogateescape"), 1)
            mine = changes(diffs[label], 1)
            if mine == theirs:
                same += 1
                match = "same files, same added lines"
            else:
                match = (f"files {'same' if mine[0] == theirs[0] else 'differ'}, added lines: "
                         f"{len(mine[1] & theirs[1])} common, {len(mine[1] - theirs[1])} only here, "
                         f"{len(theirs[1] - mine[1])} only in Debian's")
            for record in relocations.get(label, []):
                target = re.search(r" -> (\S+?)(?::\d+)? ", record + " ")
                if target and target.group(1) not in theirs[0]:
                    wrong += 1
                    match += f"; relocation outside Debian's files: {record}"
        elif kind in CARRIED:
            carried_dropped = relocations.get(label, [])
            match = f"{len(carried_dropped)} relocations (no truth to check them against)" if carried_dropped else "-"
        rows[label] = (kind, match)
    dropped = [label for label in labels if label not in kept]
    flagged = sum(1 for label in dropped if word(outcomes.get(label, "")) in FLAGGED)
    wrong_flag = sum(1 for label in kept if word(outcomes.get(label, "")) in FLAGGED)
    return {"rows": rows, "same": same, "wrong": wrong, "carried": carried, "flagged": flagged,
            "wrong_flag": wrong_flag}


def _print_debian(args, imported, labels, quilt_of, new_patches, scores, times, git_runs, autodiff, proposed) -> None:
    kept = [label for label in labels if quilt_of[label].removesuffix(".patch") in new_patches]
    dropped = [label for label in labels if label not in kept]
    scored = [(name, _score(labels, kept, quilt_of, new_patches, outcomes, diffs, relocations))
              for name, outcomes, diffs, relocations in scores]
    pt = statistics.median(t for t, _ in times)
    prss = max(r for _, r in times)
    gt = statistics.median(t for t, _, _, _ in git_runs)
    _, grss, gstops, gcarried = git_runs[0]

    print(f"Debian's rustc 1.63 quilt series ({imported} of {len(labels)} patches imported by patchmgr import) "
          f"onto rustc {NEW_VERSION}, scored against Debian's {NEW_VERSION} series; {args.runs} run(s), "
          f"{os.cpu_count()} cores\n")
    print("| measure | " + " | ".join(name for name, _ in scored) + " | target |")
    print("|---|" + "---|" * len(scored) + "---|")
    for title, cell, target in (
            ("Debian kept: carried automatically (clean, merged, relocated)",
             lambda s: f"{s['carried']}/{len(kept)}", ">= 18/23"),
            ("... of those, same files and added lines as Debian's refresh", lambda s: f"{s['same']}/{s['carried']}", ""),
            ("... relocations outside the files of Debian's refresh", lambda s: str(s["wrong"]), "0"),
            ("... flagged dropped/superseded/gone although Debian kept them", lambda s: str(s["wrong_flag"]), "0"),
            ("Debian dropped: flagged (dropped as upstream, superseded, gone)",
             lambda s: f"{s['flagged']}/{len(dropped)}", ">= 6/14")):
        print(f"| {title} | " + " | ".join(cell(s) for _, s in scored) + f" | {target} |")
    print()
    header = " | ".join(f"patchmgr ({name}) | against Debian's refresh ({name})" for name, _ in scored)
    print(f"| patch (Debian's name) | Debian 1.85 | {header} |")
    print("|---|---|" + "---|---|" * len(scored))
    for label in labels:
        quilt = quilt_of[label].removesuffix(".patch")
        truth = "kept" if label in kept else "dropped"
        cells = " | ".join(f"{s['rows'][label][0]} | {s['rows'][label][1]}" for _, s in scored)
        print(f"| {quilt} | {truth} | {cells} |")
    print()
    _print_proposals(score_proposals(labels, kept, quilt_of, new_patches, proposed), pt)
    print()
    print(f"autodiff set ({SET}) onto {NEW_VERSION}:\n")
    print("| patch | outcome |")
    print("|---|---|")
    for label, outcome in autodiff.items():
        # the finding in full (where upstream has each piece), what the stop would be about in short
        finding, stops, why = outcome.partition(": the rebase stops here")
        print(f"| {label} | {word(outcome)}: {finding}{stops}{why[:120]} |")
    print()
    print("| command | time | baseline | baseline time | ratio | peak RSS |")
    print("|---|---|---|---|---|---|")
    print(f"| patchmgr rebase --dry-run | {pt:.1f} s | git rebase, every stop skipped ({gstops} stops, "
          f"{gcarried} commits carried) | {gt:.1f} s | {pt / gt:.2f}x | {prss} MB (git: {grss} MB) |")


def _print_proposals(s: dict, dry_run_seconds: float) -> None:
    """The proposals for the stopped hunks of the kept patches, scored against Debian's refresh."""
    truth = s["with_truth"] or 1
    print(f"Proposals for the {s['total']} hunks the kept patches stop on ({s['with_truth']} with a counterpart "
          f"in Debian's refresh; {s['no_place']} said no likely place; {s['merged']} with a merged candidate); "
          f"made in {s['seconds']:.1f} s (the dry run: {dry_run_seconds:.1f} s)\n")
    print("| measure | result | target |")
    print("|---|---|---|")
    print(f"| proposed place where Debian's refreshed hunk changes (same file, overlapping lines) | "
          f"{s['place_right']}/{s['with_truth']} ({100 * s['place_right'] / truth:.0f}%) | >= 80% |")
    print(f"| candidate equal to Debian's refreshed hunk | {s['equal']}/{s['with_truth']} "
          f"({100 * s['equal'] / truth:.0f}%) | >= 30% |")
    print()
    print("| patch (Debian's name) | proposal | against Debian's refresh |")
    print("|---|---|---|")
    for quilt, text, verdict in s["rows"]:
        print(f"| {quilt} | {text} | {verdict} |")


if __name__ == "__main__":
    sys.exit(main())
