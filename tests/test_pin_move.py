"""rebase --pin: move a set's pinned Enzyme to another commit and carry its patches (issue 22).

The world's Enzyme stand-in gets a pin with a source file and two patches of
the set on it, then newer commits: one where the patches apply as they are,
one that moves the file (the hunks follow it: relocated) and says in its CI
which LLVM majors it builds against, and one that changes a patched line (the
first patch conflicts: the move stops in git am's state in its scratch
repository). Each test asserts the set's files, manifest and report, and that
--abort and a refusal leave every byte of the patches directory and the
checkout as it was.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from fixture import ENZYME_PATH, commit_all, git, snapshot, write

SET = "autodiff-1.63.0"
UTILS = "enzyme/Enzyme/Utils.cpp"
MOVED = "enzyme/Enzyme/Utils/Utils.cpp"
SOURCE = "".join(f"double f{i}(double x) {{\n  return x * {i};\n}}\n\n" for i in range(16))
FIRST = f"{SET}/enzyme/0001-enzyme-f3-returns-its-square.patch"
SECOND = f"{SET}/enzyme/0002-enzyme-f12-returns-its-cube.patch"


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


class Pins:
    """The pinned repository's commits: the set's pin and the three newer ones, by tag."""

    def __init__(self, world):
        up, env = world.enzyme_upstream, world.env
        write(up / UTILS, SOURCE)
        self.pin = commit_all(up, "Enzyme with Utils.cpp", env)
        work = world.tmp / "enzyme-patches"
        git(world.tmp, "clone", "-q", str(up), str(work), env=env)
        utils = work / UTILS
        utils.write_text(utils.read_text().replace("return x * 3;", "return x * x;"))
        commit_all(work, "enzyme: f3 returns its square", env)
        utils.write_text(utils.read_text().replace("return x * 12;", "return x * x * x;"))
        commit_all(work, "enzyme: f12 returns its cube", env)
        out = world.patches / SET / "enzyme"
        git(work, "format-patch", "-q", "--zero-commit", "-o", str(out), "-2", "HEAD", env=env)
        manifest = world.patches / "series.toml"
        text = manifest.read_text().replace(world.enzyme_pin, self.pin)
        text = text.replace('commit = "' + self.pin + '"\n', 'commit = "' + self.pin + '"\nllvm = [13]\n')
        manifest.write_text(text + f'\n[sets."{SET}".repos."{ENZYME_PATH}"]\ndir = "{SET}/enzyme"\n'
                            f'patches = ["{Path(FIRST).name}", "{Path(SECOND).name}"]\n')
        write(up / "enzyme/NEWS", "clean: the patches apply as they are\n")
        self.clean = commit_all(up, "NEWS", env)
        git(up, "tag", "clean", env=env)
        (up / MOVED).parent.mkdir()
        git(up, "mv", UTILS, MOVED, env=env)
        write(up / ".github/workflows/enzyme-ci.yml",
              'jobs:\n  build:\n    strategy:\n      matrix:\n        llvm: ["13", "14"] #, "15"]\n')
        self.moved = commit_all(up, "move Utils.cpp into a directory of its own; CI on LLVM 13 and 14", env)
        git(up, "tag", "moved", env=env)
        moved = up / MOVED
        moved.write_text(moved.read_text().replace("return x * 3;", "return 3 * x;"))
        self.conflict = commit_all(up, "f3: multiply the other way round", env)
        git(up, "tag", "conflict", env=env)


@pytest.fixture
def pins(world) -> Pins:
    return Pins(world)


def move(world, tag, *extra, **kw):
    return world.run("rebase", "--pin", f"{ENZYME_PATH}={tag}", *extra, **kw)


def entry(world) -> dict:
    return tomllib.loads((world.patches / "series.toml").read_text())["sets"][SET]


def patch_bytes(world) -> dict[str, bytes]:
    """Every file of the patches directory, byte for byte."""
    return {str(p.relative_to(world.patches)): p.read_bytes() for p in sorted(world.patches.rglob("*")) if p.is_file()}


def report(world) -> str:
    return (world.patches / SET / "pin-report.md").read_text()


def test_a_clean_move_rewrites_the_set_in_place_and_apply_checks_out_the_new_pin(world, pins):
    before = (world.patches / FIRST).read_text()
    ok(move(world, "clean"))
    data = entry(world)
    assert data["enzyme"]["commit"] == pins.clean
    assert data["enzyme"]["llvm"] == [13]  # the new commit's CI names none: kept, and the report says so
    assert data["repos"][ENZYME_PATH]["patches"] == [Path(FIRST).name, Path(SECOND).name]
    text = report(world)
    assert f"| {FIRST} | clean | {FIRST} |" in text and f"| {SECOND} | clean | {SECOND} |" in text
    assert "kept from the old pin" in text
    after = (world.patches / FIRST).read_text()
    assert "+  return x * x;" in after and after != before  # the index line names the new pin's blob
    assert not (world.checkout / ".git/patchmgr").exists()  # scratch repository and journal gone
    # apply takes the moved pin with the carried patches; status and export agree with the files
    ok(world.run("apply", "--no-config"))
    assert world.git("rev-parse", "HEAD~2", repo=ENZYME_PATH).strip() == pins.clean
    assert "return x * x * x;" in (world.checkout / ENZYME_PATH / UTILS).read_text()
    data = json.loads(ok(world.run("status", "--json")).stdout)
    assert data["state"] == "applied" and data["enzyme"]["pinned"] == pins.clean
    assert data["enzyme"]["patches"]["applied"] == [FIRST, SECOND] and not data["enzyme"]["patches"]["drifted"]
    enzyme = {k: v for k, v in patch_bytes(world).items() if k.startswith(f"{SET}/enzyme/")}
    ok(world.run("export"))  # the carried files are what export writes from the applied commits
    assert {k: v for k, v in patch_bytes(world).items() if k.startswith(f"{SET}/enzyme/")} == enzyme


def test_a_moved_file_is_followed_hunk_by_hunk_and_the_llvm_majors_read_from_ci(world, pins):
    ok(move(world, "moved"))
    data = entry(world)
    assert data["enzyme"]["commit"] == pins.moved and data["enzyme"]["llvm"] == [13, 14]
    text = report(world)
    assert f"| {FIRST} | relocated: 1 hunk placed elsewhere, see below | {FIRST} |" in text
    assert "## Relocated hunks" in text
    assert re.search(rf"- {FIRST}\n  - {UTILS}:\d+ -> {MOVED}:\d+ \(directory moved", text), text
    assert "LLVM 13, 14 (read from .github/workflows/enzyme-ci.yml)" in text
    carried = (world.patches / FIRST).read_text()
    assert f"+++ b/{MOVED}" in carried and f"+++ b/{UTILS}" not in carried
    ok(world.run("apply", "--no-config"))
    assert "return x * x;" in (world.checkout / ENZYME_PATH / MOVED).read_text()


def stopped(world) -> str:
    """Move to the conflicting commit; the scratch repository it stopped in."""
    res = move(world, "conflict")
    assert res.returncode == 6, res.stderr
    assert f"patch {FIRST} conflicts in" in res.stderr
    op = json.loads(ok(world.run("status", "--json")).stdout)["rebase"]
    assert op["stopped"] == FIRST
    work = op["pin"]["work"]
    assert op["pin"]["commit"] == git(world.enzyme_upstream, "rev-parse", "conflict", env=world.env).strip()
    assert (Path(work) / ".git/rebase-apply").is_dir()  # git am's conflict state, to resolve with an editor
    text = ok(world.run("status")).stdout
    assert f"pin move of set {SET} is in progress" in text and f"stopped at {FIRST}" in text and work in text
    return work


def test_a_conflict_stops_and_continue_takes_the_resolution(world, pins):
    work = stopped(world)
    utils = Path(work) / MOVED
    assert "<<<<<<<" in utils.read_text()
    lines = utils.read_text().splitlines(keepends=True)
    start, mid, end = (next(i for i, line in enumerate(lines) if line.startswith(m)) for m in ("<<<<<<<", "=======", ">>>>>>>"))
    utils.write_text("".join(lines[:start] + ["  return x * x; /* was 3 * x */\n"] + lines[end + 1:]))
    assert mid > start
    git(Path(work), "add", MOVED, env=world.env)
    ok(world.run("rebase", "--continue", "--note", "kept the square"))
    assert entry(world)["enzyme"]["commit"] == pins.conflict
    text = report(world)
    assert f"| {FIRST} | resolved by hand: kept the square | {FIRST} |" in text
    assert "return x * x; /* was 3 * x */" in (world.patches / FIRST).read_text()
    assert not Path(work).exists()


def test_skip_leaves_the_patch_out_of_the_set(world, pins):
    stopped(world)
    ok(world.run("rebase", "--skip"))
    assert entry(world)["repos"][ENZYME_PATH]["patches"] == [Path(SECOND).name]
    assert not (world.patches / FIRST).exists()
    assert f"| {FIRST} | skipped by hand: skipped with --skip | - |" in report(world)


def test_abort_restores_every_file_and_the_manifest_byte_for_byte(world, pins):
    files, snap = patch_bytes(world), snapshot(world)
    stopped(world)
    ok(world.run("rebase", "--abort"))
    assert patch_bytes(world) == files and snapshot(world) == snap
    assert not (world.checkout / ".git/patchmgr").exists()


def test_abort_after_the_skip_removed_a_file_puts_it_back(world, pins):
    """A kill once the files are written (one removed, one replaced, the manifest changed): --abort
    puts back all three exactly."""
    files = patch_bytes(world)
    stopped(world)
    res = world.run("rebase", "--skip", env_extra={"PATCHMGR_TEST_FAULT": "pin:manifest-written"})
    assert res.returncode == -9, res.stderr
    assert not (world.patches / FIRST).exists() and entry(world)["enzyme"]["commit"] == pins.conflict
    ok(world.run("rebase", "--abort"))
    assert patch_bytes(world) == files


@pytest.mark.parametrize("phase", ["pin:journal", "pin:patches-written", "pin:manifest-written"])
def test_a_kill_at_any_phase_is_undone_by_abort_and_finished_by_continue(world, pins, phase):
    files, snap = patch_bytes(world), snapshot(world)
    res = move(world, "moved", env_extra={"PATCHMGR_TEST_FAULT": phase})
    assert res.returncode == -9, f"phase {phase} was not reached: {res.stderr}"
    ok(world.run("rebase", "--abort"))
    assert patch_bytes(world) == files and snapshot(world) == snap
    res = move(world, "moved", env_extra={"PATCHMGR_TEST_FAULT": phase})
    assert res.returncode == -9
    ok(world.run("rebase", "--continue"))
    assert entry(world)["enzyme"]["commit"] == pins.moved and "relocated" in report(world)
    assert not (world.checkout / ".git/patchmgr").exists()


def test_the_dry_run_reports_and_changes_nothing(world, pins, tmp_path):
    files, snap = patch_bytes(world), snapshot(world)
    out = tmp_path / "dry.md"
    res = ok(move(world, "conflict", "--dry-run", "--report", str(out)))
    assert patch_bytes(world) == files and snapshot(world) == snap
    text = out.read_text()
    assert text.startswith(f"# Dry run of a pin move of {SET}: {ENZYME_PATH} to conflict")
    assert f"| {FIRST} | conflict: the move stops here" in text
    assert f"| {SECOND} | relocated" in text and f"{UTILS}:" in text, res.stderr


@pytest.mark.parametrize("pin, code, words", [
    ("src/llvm-project/enzyme", 2, "expected PATH=COMMIT"),
    (f"{ENZYME_PATH}=", 2, "expected PATH=COMMIT"),
    ("src/llvm-project=clean", 3, f"pins no repository there; its pinned repository is {ENZYME_PATH}"),
    (f"{ENZYME_PATH}=no-such-tag", 3, "has no commit 'no-such-tag'"),
    (f"{ENZYME_PATH}=0123456789abcdef0123456789abcdef01234567", 3, "has no commit"),
])
def test_bad_pins_are_refused_before_any_change(world, pins, pin, code, words):
    files, snap = patch_bytes(world), snapshot(world)
    res = world.run("rebase", "--pin", pin)
    assert res.returncode == code and words in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert patch_bytes(world) == files and snapshot(world) == snap


def test_the_pin_itself_and_an_applied_set_are_refused(world, pins):
    files = patch_bytes(world)
    res = move(world, pins.pin[:10])
    assert res.returncode == 7 and "the pin set autodiff-1.63.0 already has; nothing to move" in res.stderr
    ok(world.run("apply", "--no-config"))
    snap = snapshot(world)
    res = move(world, "clean")
    assert res.returncode == 7 and f"set {SET} is applied; a pin move rewrites" in res.stderr, res.stderr
    res = world.run("rebase", "--pin", f"{ENZYME_PATH}=clean", "--onto", "HEAD")
    assert res.returncode == 2 and "run them one after the other" in res.stderr
    assert patch_bytes(world) == files and snapshot(world) == snap


def test_pin_llvm_and_an_abbreviated_id(world, pins):
    ok(move(world, pins.moved[:9], "--pin-llvm", "14,15"))
    data = entry(world)
    assert data["enzyme"]["commit"] == pins.moved and data["enzyme"]["llvm"] == [14, 15]
    assert "LLVM 14, 15 (--pin-llvm)" in report(world)


def test_the_clone_apply_keeps_is_read_not_written(world, pins):
    """After apply and unapply, Enzyme's clone under .git/modules holds the old pin: the move reads
    its objects and changes nothing there; the next apply fetches the new pin into it."""
    ok(world.run("apply", "--no-config"))
    ok(world.run("unapply"))
    kept = world.llvm / ".git/modules/enzyme" if (world.llvm / ".git").is_dir() else \
        world.checkout / ".git/modules/src/llvm-project/modules/enzyme"
    assert kept.is_dir()
    state = {str(p.relative_to(kept)): p.read_bytes() for p in kept.rglob("*") if p.is_file()}
    ok(move(world, "moved"))
    assert {str(p.relative_to(kept)): p.read_bytes() for p in kept.rglob("*") if p.is_file()} == state
    assert entry(world)["enzyme"]["commit"] == pins.moved
    ok(world.run("apply", "--no-config"))
    assert world.git("rev-parse", "HEAD~2", repo=ENZYME_PATH).strip() == pins.moved


def test_a_set_without_enzyme_patches_moves_its_pin_alone(world):
    later = git(world.enzyme_upstream, "rev-parse", "HEAD", env=world.env).strip()
    manifest = (world.patches / "series.toml").read_text()
    ok(world.run("rebase", "--pin", f"{ENZYME_PATH}={later[:12]}"))
    assert (world.patches / "series.toml").read_text() == manifest.replace(world.enzyme_pin, later)
    assert "(the set has no patches for this repository)" in report(world)
    ok(world.run("apply", "--no-config"))
    assert world.git("rev-parse", "HEAD", repo=ENZYME_PATH).strip() == later


def test_abort_keeps_a_later_manifest_edit_and_refuses_over_an_edited_patch_file(world, pins):
    """--abort takes back what the move wrote and only that: a comment added to the manifest since
    stays; a carried patch file edited since is refused (exit 5), with nothing changed."""
    files = patch_bytes(world)
    res = move(world, "moved", env_extra={"PATCHMGR_TEST_FAULT": "pin:manifest-written"})
    assert res.returncode == -9, res.stderr
    carried = world.patches / FIRST
    written = carried.read_bytes()
    carried.write_bytes(written + b"\n")
    now = patch_bytes(world)
    res = world.run("rebase", "--abort")
    assert res.returncode == 5 and f"{carried} was changed since the pin move" in res.stderr, res.stderr
    assert patch_bytes(world) == now
    carried.write_bytes(written)
    manifest = world.patches / "series.toml"
    manifest.write_bytes(b"# mine\n" + manifest.read_bytes())
    ok(world.run("rebase", "--abort"))
    assert patch_bytes(world) == dict(files, **{"series.toml": b"# mine\n" + files["series.toml"]})


def test_an_unreachable_url_is_refused_before_any_change(world, pins):
    files, snap = patch_bytes(world), snapshot(world)
    res = move(world, "clean", "--pin-url", str(world.tmp / "no-such-repository"))
    assert res.returncode == 8 and "cannot be reached" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert patch_bytes(world) == files and snapshot(world) == snap
