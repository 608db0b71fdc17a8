"""rebase: a proposal for each hunk a stop is about (issue 24, points 1 and 2).

The set's one patch changes a line of `build_session_options`; each fixture
upstream rewrites that function the way rustc 1.63 -> 1.85 did (its
`debugging_opts` became `unstable_opts`), so no exact or fuzzed place exists
and the rebase stops. The proposal must name where the lines went (the same
place, further down the file, or another file the file was split into), with
the patch's change merged onto the new lines and written there with conflict
markers; where the function is gone, it must say there is no likely place
rather than guess. --continue records whether the resolution kept the
candidate, and --abort still restores everything.
"""

from __future__ import annotations

import json
import re

import pytest
from fixture import snapshot
from test_rebase_placement import FILLER, OLD, report_of, series_onto

NEW = "autodiff-1.64.0"
CONFIG = "compiler/rustc_session/src/config.rs"
OPTS = "compiler/rustc_session/src/config/session_options.rs"
FUNCTION = """pub fn build_session_options(matches: &getopts::Matches) -> Options {
    let crate_types = parse_crate_types_from_list(unparsed_crate_types)
        .unwrap_or_else(|e| early_error(error_format, &e[..]));
    let debugging_opts = build_debugging_options(matches, error_format);
    let mut cg = build_codegen_options(matches, error_format);
    check_thread_count(&debugging_opts, error_format);
    Options { crate_types, debugging_opts, cg }
}
"""
OTHER = FILLER.replace("helper", "other")
TEXT = FILLER + FUNCTION + OTHER
LINE = "    check_thread_count(&debugging_opts, error_format);\n"
PATCHED = "    check_thread_count(&debugging_opts, error_format, autodiff_enabled(matches));\n"
REWORDED = FUNCTION.replace("debugging_opts", "unstable_opts")
#: the patch's change made on upstream's reworded lines: what the proposal's candidate must hold
CANDIDATE = "    check_thread_count(&unstable_opts, error_format, autodiff_enabled(matches));\n"
EDIT = (CONFIG, LINE, PATCHED, "session: pass whether autodiff is on to the thread count check")
LATER = "".join(f"// an upstream addition, line {i}\nfn added_{i}() {{}}\n" for i in range(40))


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line of `text` that starts with `needle`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


def proposals_in(report: str) -> list[str]:
    return [line.strip()[2:] for line in report.split("## Proposals for the hunks that stopped")[1].splitlines()
            if line.startswith("  - ")]


def stop(world) -> str:
    """The real rebase, which must stop on the patch: its message."""
    res = world.run("rebase", "--onto", "origin/main", "--no-config")
    assert res.returncode == 6, res.stderr
    return res.stderr


@pytest.mark.parametrize("case", ["reworded", "moved-down", "split"])
def test_the_proposal_names_the_place_and_merges_the_change_onto_the_reworded_lines(world, case):
    """Upstream renamed debugging_opts in the function (reworded), also moved it 80 lines down
    (moved-down), or moved it to a file of its own (split): the proposal's place is the
    function's new lines, the candidate is the patch's change on them, and the stop writes it
    there between conflict markers."""
    new_files = {"reworded": {CONFIG: FILLER + REWORDED + OTHER},
                 "moved-down": {CONFIG: FILLER + LATER + REWORDED + OTHER},
                 "split": {CONFIG: FILLER + OTHER, OPTS: "use super::*;\n\n" + REWORDED}}[case]
    series_onto(world, {CONFIG: TEXT}, [EDIT], new_files)
    target = OPTS if case == "split" else CONFIG
    new_text = new_files[target]
    assert new_text is not None
    first = line_of(new_text, "        .unwrap_or_else")  # the hunk's first context line, where upstream has it
    row, report = report_of(world, "--proposals")
    assert "the rebase stops here" in row, row
    [proposed] = proposals_in(report)
    m = re.match(rf"{CONFIG}:\d+ -> {target}:(\d+)-(\d+) \(similarity (0\.\d+)\); candidate merged onto upstream's "
                 r"lines; rewritten upstream by [0-9a-f]+ Import rustc 1\.64\.0$", proposed)
    assert m, proposed
    start, end, ratio = int(m.group(1)), int(m.group(2)), float(m.group(3))
    assert start <= first <= line_of(new_text, "    check_thread_count") <= end, (proposed, first)
    assert ratio >= 0.6

    message = stop(world)
    assert f"{CONFIG}:63 -> {target}:{start}-{end}" in message, message
    assert f"written at {target}:" in message, message
    text = (world.checkout / target).read_text()
    assert text.count("<<<<<<< proposal for ") == 1, text
    block = text.split("<<<<<<< proposal for ")[1].split(">>>>>>> ")[0]
    ours, rest = block.split("\n", 1)[1].split("||||||| ")
    assert CANDIDATE in ours and "autodiff_enabled" not in rest.split("=======")[1], block
    assert rest.split("=======\n")[1] == "".join(new_text.splitlines(keepends=True)[start - 1:end]), block
    assert line_of(text, "<<<<<<< proposal for ") == start, text
    status = world.run("status")
    assert f"-> {target}:{start}-{end}" in status.stdout, status.stdout
    shown = json.loads(world.run("status", "--json").stdout)["rebase"]["proposals"]
    assert shown[0]["target"] == target and shown[0]["candidate"] and CANDIDATE in shown[0]["candidate"], shown


def test_no_likely_place_is_said_and_nothing_is_written_when_upstream_removed_the_lines(world):
    """Upstream deleted the function: no place in the tree is like the hunk's lines, so the
    proposal says so instead of pointing at the nearest unrelated code, and writes nothing."""
    series_onto(world, {CONFIG: TEXT}, [EDIT], {CONFIG: FILLER + OTHER})
    _, plain = report_of(world)
    assert "## Proposals" not in plain  # the plain dry run leaves them out: minutes on a large series
    _, report = report_of(world, "--proposals")
    [proposed] = proposals_in(report)
    assert re.fullmatch(rf"{CONFIG}:\d+: no likely place \(best similarity 0\.\d\d, below 0\.60\)", proposed), proposed
    message = stop(world)
    assert "no likely place" in message, message
    assert "proposal for" not in (world.checkout / CONFIG).read_text()


@pytest.mark.parametrize("resolution,outcome", [
    ("the candidate", "resolved by hand from the proposal"),
    ("other lines", "resolved by hand"),
], ids=["kept", "rewritten"])
def test_continue_records_whether_the_resolution_kept_the_proposal(world, resolution, outcome):
    """The stop is a stop: nothing is carried until --continue, and the report then says whether
    the committed file holds the proposal's candidate at its place or the user wrote their own."""
    series_onto(world, {CONFIG: TEXT}, [EDIT], {CONFIG: FILLER + REWORDED + OTHER})
    stop(world)
    path = world.checkout / CONFIG
    text = path.read_text()
    head, block = text.split("<<<<<<< proposal for ")
    block, tail = block.split(">>>>>>> ", 1)
    ours = block.split("\n", 1)[1].split("||||||| ")[0]
    if resolution == "other lines":
        ours = ours.replace(CANDIDATE, "    check_thread_count(&unstable_opts, error_format);\n"
                                       "    check_autodiff(&unstable_opts, matches);\n")
    path.write_text(head + ours + tail.split("\n", 1)[1])
    world.git("add", CONFIG)
    res = world.run("rebase", "--continue", "--no-config")
    assert res.returncode == 0, res.stderr
    report = (world.patches / NEW / "rebase-report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith(f"| {OLD}/rust/"))
    assert row.split(" | ")[1] == outcome, row
    assert "## Proposals for the hunks that stopped" in report and "candidate merged" in report, report
    assert "<<<<<<<" not in path.read_text()


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_abort_after_a_proposal_was_written_restores_everything(world, how):
    """The proposal writes into the stop's work tree (here into the file upstream split the
    function into, which the patch never names): --abort still puts every byte back, also after
    a kill right after the write, before the journal records the proposal."""
    series_onto(world, {CONFIG: TEXT}, [EDIT], {CONFIG: FILLER + OTHER, OPTS: "use super::*;\n\n" + REWORDED})
    before = snapshot(world)
    if how == "stopped":
        stop(world)
    else:
        res = world.run("rebase", "--onto", "origin/main", "--no-config",
                        env_extra={"PATCHMGR_TEST_FAULT": f"rebase:proposal:{OPTS}"})
        assert res.returncode == -9, res.stderr
    assert "<<<<<<< proposal for " in (world.checkout / OPTS).read_text()
    res = world.run("rebase", "--abort")
    assert res.returncode == 0, res.stderr
    assert snapshot(world) == before


def test_continue_refuses_a_resolution_that_still_has_the_proposals_markers(world):
    """git am would commit whatever is staged: a file added with the proposal's block still in
    it is refused in one line, before anything changes, and the stop stays as it was."""
    series_onto(world, {CONFIG: TEXT}, [EDIT], {CONFIG: FILLER + REWORDED + OTHER})
    stop(world)
    world.git("add", CONFIG)
    before = snapshot(world)
    res = world.run("rebase", "--continue", "--no-config")
    assert res.returncode == 6, res.stderr
    error = res.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"patchmgr: error: {CONFIG} as staged still has the proposal's conflict markers \(line \d+\); "
                        rf"edit them out, git add {CONFIG}, then patchmgr rebase --continue", error), res.stderr
    assert snapshot(world) == before
