"""apply / unapply / status / check on small real repositories."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from fixture import amend_patch_commit, git, mtimes, snapshot, write

SET = "autodiff-1.63.0"
BRANCH = "patchmgr/" + SET


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def status(world):
    return json.loads(ok(world.run("status", "--json")).stdout)


def test_round_trip_is_byte_identical(world):
    before = snapshot(world)
    ok(world.run("apply"))
    data = status(world)
    assert data["state"] == "applied"
    assert [r["branch"] for r in data["repos"]] == [BRANCH, BRANCH]
    assert data["enzyme"]["checked_out"] == world.enzyme_pin == data["enzyme"]["recorded"]
    # the superproject records the patched llvm-project, so x.py's submodule update has nothing to reset
    llvm_head = world.git("rev-parse", "HEAD", repo="src/llvm-project").strip()
    assert world.git("ls-tree", "HEAD", "src/llvm-project").split()[2] == llvm_head
    assert world.git("submodule", "status", "--recursive").startswith(" ")
    # authors are kept, trailers name set and file
    log = world.git("log", "-3", "--format=%an|%B%x00")
    assert "Dev Eloper|" in log and f"Patchmgr-Set: {SET}" in log
    assert f"Patchmgr-Patch: {SET}/rust/0001-codegen_llvm-mark-f3-differentiable.patch" in log
    ok(world.run("unapply"))
    assert snapshot(world) == before
    assert status(world)["state"] == "unapplied"


def test_reapply_is_a_no_op_with_no_mtime_change(world):
    ok(world.run("apply"))
    times = mtimes(world.checkout)
    index_before = (world.checkout / ".git/index").stat().st_mtime_ns
    res = ok(world.run("apply"))
    assert "already applied" in res.stderr
    assert mtimes(world.checkout) == times
    assert (world.checkout / ".git/index").stat().st_mtime_ns == index_before


def test_apply_unapply_apply_gives_the_same_commits(world):
    ok(world.run("apply"))
    first = world.git("rev-parse", "HEAD")
    ok(world.run("unapply"))
    ok(world.run("apply"))
    assert world.git("rev-parse", "HEAD") == first


def conflicting_world(world):
    lib = world.checkout / "compiler/rustc_codegen_llvm/src/lib.rs"
    lib.write_text(lib.read_text().replace("x * 3.0", "x * 3.5"))
    git(world.checkout, "commit", "-qam", "local change to f3", env=world.env)
    return world


def test_conflict_reports_and_abort_restores(world):
    conflicting_world(world)
    before = snapshot(world)
    res = world.run("apply")
    assert res.returncode == 6, res.stderr
    err = res.stderr
    assert "patch autodiff-1.63.0/rust/0001-codegen_llvm-mark-f3-differentiable.patch does not apply to .:" in err
    assert "compiler/rustc_codegen_llvm/src/lib.rs: hunk @@" in err
    assert "| -    x * 3.0" not in err and "|     x * 3.0" in err  # expected line
    assert "|     x * 3.5" in err  # what the tree has
    assert "patchmgr apply --continue" in err and "--abort" in err
    assert err.strip().splitlines()[-1].startswith("patchmgr: error: patch autodiff-1.63.0/rust/0001")
    # a second apply refuses while stopped
    again = world.run("apply")
    assert again.returncode == 7 and "in progress" in again.stderr
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before


def test_conflict_report_shows_the_tree_where_the_hunk_is_now(world):
    """Issue 26 point 8: the tree gained 30 lines above the hunk and changed its removed line: the
    report shows the tree's lines where the hunk's context is now (line 41, not the patch's 11),
    says how they match there, and shows none of the 30 new lines."""
    conflicting_world(world)
    lib = world.checkout / "compiler/rustc_codegen_llvm/src/lib.rs"
    lib.write_text("".join(f"// a line upstream added above, number {i}\n" for i in range(30)) + lib.read_text())
    git(world.checkout, "commit", "-qam", "upstream adds lines above f3", env=world.env)
    res = world.run("apply")
    assert res.returncode == 6, res.stderr
    shown = res.stderr.split("the tree has")[1].splitlines()
    assert shown[0] == " at line 41 (only its leading context matches there):", res.stderr
    assert shown[1:5] == ["      | }", "      | ", "      | pub fn f3(x: f64) -> f64 {", "      |     x * 3.5"], res.stderr
    assert "a line upstream added above" not in res.stderr
    ok(world.run("apply", "--abort"))


def test_abort_refuses_to_discard_a_change_made_while_stopped(world):
    """Issue 25, class 1: a tracked file the apply never writes, edited while it was stopped, is not
    reset by --abort: it refuses naming the file, before any change."""
    conflicting_world(world)
    before = snapshot(world)
    assert world.run("apply").returncode == 6
    xpy = world.checkout / "x.py"
    original = xpy.read_text()
    xpy.write_text(original + "# my change while the apply was stopped\n")
    stopped = snapshot(world)
    res = world.run("apply", "--abort")
    assert res.returncode == 5 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "x.py was changed after the apply began, where it writes nothing" in res.stderr
    assert snapshot(world) == stopped
    xpy.write_text(original)
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before


def test_abort_refuses_to_delete_a_file_added_while_stopped_where_a_patch_creates_one(world):
    """Issue 25, class 1: --abort deletes an untracked file at a path of the run's patches only when
    it is what a killed git am left (the patch's content); the user's own file there is a refusal."""
    conflicting_world(world)
    before = snapshot(world)
    assert world.run("apply").returncode == 6
    mine = world.checkout / "compiler/rustc_codegen_ssa/src/traits/autodiff.rs"  # the second patch creates it
    assert not mine.exists()
    write(mine, "// my notes on the trait, written while the apply was stopped\n")
    stopped = snapshot(world)
    res = world.run("apply", "--abort")
    assert res.returncode == 5 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert ("compiler/rustc_codegen_ssa/src/traits/autodiff.rs was added after the apply began, where its patches "
            "create a file") in res.stderr
    assert snapshot(world) == stopped
    mine.rename(world.tmp / "autodiff.rs")
    shutil.rmtree(world.checkout / "compiler/rustc_codegen_ssa")
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before


def test_conflict_resolved_then_continue(world):
    conflicting_world(world)
    assert world.run("apply").returncode == 6
    lib = world.checkout / "compiler/rustc_codegen_llvm/src/lib.rs"
    text = lib.read_text()
    assert "<<<<<<<" in text
    resolved = []
    skip = False
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<<"):
            skip = True
            continue
        if line.startswith("======="):
            skip = False
            continue
        if line.startswith(">>>>>>>"):
            continue
        if not skip:
            resolved.append(line)
    lib.write_text("".join(resolved))
    world.git("add", "compiler/rustc_codegen_llvm/src/lib.rs")
    ok(world.run("apply", "--continue"))
    data = status(world)
    assert data["state"] == "applied"
    # the resolved patch differs from its file: drifted, and edited, since the resolution is work
    assert data["repos"][0]["drifted"] == [f"{SET}/rust/0001-codegen_llvm-mark-f3-differentiable.patch"]
    assert data["repos"][0]["edited"] == data["repos"][0]["drifted"]
    assert world.run("unapply").returncode == 9


def test_skip_drops_the_patch(world):
    conflicting_world(world)
    assert world.run("apply").returncode == 6
    ok(world.run("apply", "--skip"))
    data = status(world)
    assert data["repos"][0]["applied"] == [f"{SET}/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch"]
    assert data["state"] == "partial"


def test_nothing_to_continue(world):
    for mode in ("--continue", "--skip", "--abort"):
        res = world.run("apply", mode)
        assert res.returncode == 7 and "no apply is in progress" in res.stderr


KILL_HOOK = """#!/bin/sh
# kill git am's parent (patchmgr) and git am itself, as a crash or Ctrl-\\ would
gp=$(awk '{print $4}' /proc/$PPID/stat)
kill -9 "$gp" "$PPID"
"""


@pytest.mark.parametrize("where,hook", [
    ("src/llvm-project", "post-applypatch"),  # inside the first git am
    (".", "post-applypatch"),  # inside the superproject's git am, Enzyme already cloned
    (".", "reference-transaction"),  # while the superproject's patch branch is made
])
def test_kill_then_abort_restores_exactly(world, where, hook):
    before = snapshot(world)
    git_dir = world.git("rev-parse", "--absolute-git-dir", repo=where).strip()
    hook_path = os.path.join(git_dir, "hooks", hook)
    os.makedirs(os.path.dirname(hook_path), exist_ok=True)
    with open(hook_path, "w") as f:
        f.write(KILL_HOOK)
    os.chmod(hook_path, stat.S_IRWXU)
    res = world.run("apply")
    assert res.returncode == -9, (res.returncode, res.stderr)
    os.unlink(hook_path)
    assert world.run("apply").returncode == 7  # refuses: an apply is in progress
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before
    ok(world.run("apply"))  # and a clean apply works afterwards
    assert status(world)["state"] == "applied"


@pytest.mark.parametrize("repo,path", [(".", "README.md"), ("src/llvm-project", "llvm/CMakeLists.txt")])
def test_dirty_tree_is_refused(world, repo, path):
    target = world.checkout / repo / path
    target.write_text(target.read_text() + "work in progress\n")
    before = snapshot(world)
    res = world.run("apply")
    assert res.returncode == 5
    shown = path if repo == "." else f"{repo}/{path}"
    assert f"uncommitted changes to tracked files: {shown}" in res.stderr
    assert snapshot(world) == before
    assert target.read_text().endswith("work in progress\n")


def test_unapply_refuses_dirty_and_foreign_commits(world):
    ok(world.run("apply"))
    write(world.checkout / "mine.txt", "my work\n")
    world.git("add", "mine.txt")
    world.git("commit", "-qm", "my own commit on the patch branch")
    mine = world.git("rev-parse", "HEAD").strip()
    (world.checkout / "README.md").write_text("dirty\n")
    res = world.run("unapply")
    assert res.returncode == 5 and "README.md" in res.stderr
    world.git("checkout", "README.md")
    before = snapshot(world)
    res = world.run("unapply")
    assert res.returncode == 9, res.stderr
    assert "commits that are not from the series" in res.stderr and "--force" in res.stderr
    assert snapshot(world) == before
    res = ok(world.run("unapply", "--force"))
    backup = [line for line in res.stderr.splitlines() if "refs/patchmgr/backup/" in line]
    assert backup, res.stderr
    ref = backup[0].split(": ", 2)[-1].strip()
    assert world.git("rev-parse", ref).strip() == mine


def test_drifted_patch_file_is_reported_and_unapply_apply_takes_it(world):
    ok(world.run("apply"))
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    patch.write_text(patch.read_text().replace("+// -Z autodiff", "+// -Z autodiff (changed)"))
    data = status(world)
    assert data["repos"][0]["drifted"] == [f"{SET}/rust/{patch.name}"]
    assert "drifted  " in ok(world.run("status")).stdout
    # the commit is as apply made it: nothing to lose, so unapply needs no --force
    ok(world.run("unapply"))
    ok(world.run("apply"))
    assert status(world)["repos"][0]["drifted"] == []


def test_edited_commit_needs_force_to_unapply(world):
    ok(world.run("apply"))
    amend_patch_commit(world, "// my fix to the patch\n")
    data = status(world)
    assert data["repos"][0]["edited"] == [f"{SET}/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch"]
    assert "edited " in ok(world.run("status")).stdout
    res = world.run("unapply")
    assert res.returncode == 9 and "was edited after it was applied" in res.stderr
    res = ok(world.run("unapply", "--force"))
    assert "refs/patchmgr/backup/" in res.stderr


def test_new_patch_is_applied_incrementally(world):
    ok(world.run("apply"))
    head = world.git("rev-parse", "HEAD").strip()
    # a third patch made on top of the applied series
    write(world.checkout / "compiler/rustc_codegen_ssa/src/back/autodiff.rs", "// glue\n")
    world.git("add", "-A")
    world.git("commit", "-qm", "Add the back-end glue")
    world.git("format-patch", "-q", "-1", "-o", str(world.patches / SET / "rust"))
    world.git("reset", "-q", "--hard", head)
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace(
        '0002-Add-the-autodiff-trait-and-Z-autodiff.patch"]',
        '0002-Add-the-autodiff-trait-and-Z-autodiff.patch", "0001-Add-the-back-end-glue.patch"]'))
    assert status(world)["repos"][0]["pending"] == [f"{SET}/rust/0001-Add-the-back-end-glue.patch"]
    ok(world.run("apply"))
    assert world.git("rev-parse", "HEAD~1").strip() == head
    assert status(world)["state"] == "applied"


def test_release_tree_is_detected_from_git_commit_hash(tarball_world):
    data = status(tarball_world)
    assert data["detected_by"] == "git-commit-hash file of a release tree"
    ok(tarball_world.run("apply"))
    assert status(tarball_world)["state"] == "applied"


def test_run_from_inside_the_submodule(world):
    res = ok(world.run("status", cwd=world.llvm))
    assert res.stdout.startswith(f"set {SET}")


def test_enzyme_elsewhere_goes_into_the_superproject(world):
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace('url = "', 'path = "src/tools/enzyme"\nurl = "'))
    before = snapshot(world)
    ok(world.run("apply"))
    assert world.git("ls-tree", "HEAD", "src/tools/enzyme").split()[2] == world.enzyme_pin
    assert "src/tools/enzyme" in (world.checkout / ".gitmodules").read_text()
    ok(world.run("unapply"))
    assert snapshot(world) == before


def test_unreachable_enzyme_is_refused_before_any_change(world):
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace("https://example.invalid/EnzymeAD/Enzyme",
                                                     str(world.tmp / "no-such-enzyme")))
    before = snapshot(world)
    res = world.run("apply")
    assert res.returncode == 8 and "cannot be reached" in res.stderr and "nothing was changed" in res.stderr
    assert snapshot(world) == before
    assert world.run("apply", "--abort").returncode == 7  # nothing to abort


def test_enzyme_commit_missing_upstream_is_refused_before_any_change(world):
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace(world.enzyme_pin, "1" * 40))
    before = snapshot(world)
    res = world.run("apply")
    assert res.returncode == 3 and f"Enzyme commit {'1' * 40} is not in" in res.stderr, res.stderr
    assert snapshot(world) == before


def test_check_leaves_the_tree_alone(world):
    before = snapshot(world)
    res = ok(world.run("check"))
    assert res.stdout.count("ok   ") == 3
    assert snapshot(world) == before


def test_check_reports_each_failing_patch(world):
    conflicting_world(world)
    (world.checkout / "README.md").write_text("dirty is fine for check\n")
    before = snapshot(world)
    res = world.run("check")
    assert res.returncode == 10, res.stderr
    assert "FAIL .: autodiff-1.63.0/rust/0001" in res.stdout
    assert "ok   .: autodiff-1.63.0/rust/0002" in res.stdout
    assert snapshot(world) == before


def test_lint_validates_every_set(world):
    res = ok(world.run("lint"))
    assert res.stdout.strip() == f"ok {SET}: 3 patches"


def test_exit_codes_are_listed_in_readme():
    from pathlib import Path

    from patchmgr.errors import EXIT_CODES

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for code, (name, _) in EXIT_CODES.items():
        assert f"| {code} | {name} |" in readme, f"README lacks exit code {code} ({name})"
    help_text = subprocess.run([sys.executable, "-m", "patchmgr", "--help"], capture_output=True, text=True,
                               cwd=Path(__file__).parent.parent).stdout
    for code, (name, _) in EXIT_CODES.items():
        assert f"{code:>2}  {name}:" in help_text


def test_unreachable_enzyme_then_redirect_and_apply(world):
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace("https://example.invalid/EnzymeAD/Enzyme",
                                                     "https://example.invalid/mirror/Enzyme"))
    res = world.run("apply")
    assert res.returncode == 8 and "url.<local clone>.insteadOf https://example.invalid/mirror/Enzyme" in res.stderr
    git(world.tmp, "config", "--file", world.env["GIT_CONFIG_GLOBAL"],
        f"url.{world.enzyme_upstream}.insteadOf", "https://example.invalid/mirror/Enzyme")
    ok(world.run("apply"))
    data = status(world)
    assert data["state"] == "applied" and data["enzyme"]["in_place"]
