"""rebase --onto: a fixture upstream moves on, and the set follows it patch by patch.

Upstream's later history (made here, fetched into the user's checkout):
- llvm-project moves llvm/CMakeLists.txt, which the llvm patch edits (merged 3-way);
- a commit rewrites the line the first rust patch changes (conflict);
- a commit carries the second rust patch's change itself (dropped as upstream);
- the release commit records the new llvm-project and says 1.64.0 in src/version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixture import commit_all, commit_upstream, git, snapshot, write

OLD, NEW = "autodiff-1.63.0", "autodiff-1.64.0"
LIB = "compiler/rustc_codegen_llvm/src/lib.rs"


def move_upstream(world, twin: str) -> dict:
    """Upstream history after the set's base; `twin` is 'exact' (same patch-id) or 'with-more' (more in the commit)."""
    env = world.env
    llvm = world.llvm_upstream
    git(llvm, "mv", "llvm/CMakeLists.txt", "llvm/options.cmake", env=env)
    llvm_new = commit_all(llvm, "Move the LLVM option list to llvm/options.cmake", env)

    up = world.upstream
    lib = up / LIB
    lib.write_text(lib.read_text().replace("    x * 3.0\n", "    3.0 * x\n"))
    rewrite = commit_all(up, "codegen_llvm: scale f3 from the left", env)
    write(up / "compiler/rustc_codegen_ssa/src/traits/autodiff.rs", "pub trait AutoDiffMethods {}\n")
    opts = up / "compiler/rustc_session/src/options.rs"
    opts.write_text(opts.read_text() + "// -Z autodiff\n")
    if twin == "with-more":
        write(up / "README.md", "rust, now with autodiff\n")
    commit_all(up, "Upstream autodiff trait and -Z autodiff", env)
    write(up / "src/version", "1.64.0\n")
    git(up, "add", "src/version", env=env)
    git(up, "update-index", "--add", "--cacheinfo", f"160000,{llvm_new},src/llvm-project", env=env)
    git(up, "commit", "-q", "-m", "Rust 1.64.0", env=env)
    git(up, "tag", "1.64.0", env=env)
    world.git("fetch", "-q", "--tags", "origin")
    world.git("fetch", "-q", "origin", repo="src/llvm-project")
    return {"onto": world.git("rev-parse", "origin/main").strip(), "rewrite": rewrite[:7], "llvm": llvm_new}


def patch_bytes(world) -> dict:
    return {str(p.relative_to(world.patches)): p.read_bytes() for p in sorted(world.patches.rglob("*")) if p.is_file()}


def new_set(world) -> dict:
    import tomllib

    return tomllib.loads((world.patches / "series.toml").read_text())["sets"][NEW]


@pytest.mark.parametrize("twin", ["exact", "with-more"])
def test_rebase_conflict_resolved_upstreamed_patch_dropped_moved_file_merged(world, twin):
    up = move_upstream(world, twin)
    old_files = patch_bytes(world)
    res = world.run("rebase", "--onto", "origin/main", "--llvm", "15")
    assert res.returncode == 6, res.stderr
    assert f"{OLD}/llvm-project/0001-Build-Enzyme-as-an-external-project.patch: relocated" in res.stderr
    # the report: the patch, the hunk, the conflicted file, the upstream commit that changed those lines
    assert f"patch {OLD}/rust/0001-codegen_llvm-mark-f3-differentiable.patch does not apply" in res.stderr
    assert f"conflicted files (3-way merge left markers): {LIB}" in res.stderr
    assert "that changed these lines:" in res.stderr
    assert f"  {up['rewrite']} codegen_llvm: scale f3 from the left" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1].startswith("patchmgr: error: patch ")
    status = world.run("status")
    assert "stopped at" in status.stdout and "relocated" in status.stdout

    lib = world.checkout / LIB
    text = lib.read_text()
    assert "<<<<<<<" in text
    lib.write_text(world.git("show", f"{up['onto']}:{LIB}").replace("    3.0 * x\n", "    3.0 * x // autodiff: differentiable\n"))
    world.git("add", LIB)
    res = world.run("rebase", "--continue")
    assert res.returncode == 0, res.stderr

    report = (world.patches / NEW / "rebase-report.md").read_text()
    assert f"| {OLD}/rust/0001-codegen_llvm-mark-f3-differentiable.patch | resolved by hand | " \
           f"{NEW}/rust/0001-codegen_llvm-mark-f3-differentiable.patch |" in report
    detail = ("same change as upstream" if twin == "exact" else "every hunk is already upstream")
    assert f"| {OLD}/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch | dropped as upstream: {detail}" in report
    assert f"| {OLD}/llvm-project/0001-Build-Enzyme-as-an-external-project.patch | relocated: " in report
    # the hunk the move carried, for the reviewer: old place -> new place, and why
    assert ("  - llvm/CMakeLists.txt:3 -> llvm/options.cmake:3 (file moved: llvm/CMakeLists.txt -> llvm/options.cmake, "
            "by git's rename detection)") in report, report
    entry = new_set(world)
    assert (entry["rustc"], entry["commit"], entry["llvm"]) == ("1.64.0", up["onto"], 15)
    assert entry["repos"]["."] == {"dir": f"{NEW}/rust", "patches": ["0001-codegen_llvm-mark-f3-differentiable.patch"]}
    llvm_patch = (world.patches / NEW / "llvm-project" / entry["repos"]["src/llvm-project"]["patches"][0]).read_text()
    assert "+++ b/llvm/options.cmake" in llvm_patch and "+set(LLVM_OPTION_5 ON)" in llvm_patch
    # the old set is untouched, byte for byte
    assert {k: v for k, v in patch_bytes(world).items() if k.startswith(OLD)} == \
           {k: v for k, v in old_files.items() if k.startswith(OLD)}

    # the new set is applied from its own files: status agrees, export changes nothing
    data = json.loads(world.run("status", "--json").stdout)
    assert data["set"] == NEW and all(not r["pending"] and not r["drifted"] for r in data["repos"]), data
    assert world.git("symbolic-ref", "HEAD").strip() == f"refs/heads/patchmgr/{NEW}"
    assert "3.0 * x // autodiff: differentiable" in lib.read_text()
    assert "nothing changed" in world.run("export").stderr
    assert world.git("branch", "--list", "patchmgr/rebase/*") == ""
    # unapply goes to the new base, where the rebase put the set
    assert world.run("unapply").returncode == 0
    assert world.git("rev-parse", "HEAD").strip() == up["onto"] and world.git("branch", "--list", "patchmgr/*") == ""


def test_rebase_conflict_shows_the_tree_where_the_hunk_is_now(world):
    """Issue 26 point 8: upstream added 30 lines above f3 and rewrote the line the patch changes:
    the rebase's stop shows the tree's lines where the hunk's context is now (line 41), not the
    30 new lines at the patch's line 11."""
    up = world.upstream
    lib = up / LIB
    lib.write_text("".join(f"// upstream's new line {i}\n" for i in range(30))
                   + lib.read_text().replace("    x * 3.0\n", "    3.0 * x\n"))
    write(up / "src/version", "1.64.0\n")
    commit_upstream(up, "Rust 1.64.0", world.env)
    world.git("fetch", "-q", "origin")
    res = world.run("rebase", "--onto", "origin/main")
    assert res.returncode == 6, res.stderr
    shown = res.stderr.split("the tree has")[1].splitlines()
    assert shown[0] == " at line 41 (only its leading context matches there):", res.stderr
    assert shown[3:5] == ["      | pub fn f3(x: f64) -> f64 {", "      |     3.0 * x"], res.stderr
    assert "upstream's new line" not in res.stderr
    assert world.run("rebase", "--abort").returncode == 0


def test_rebase_abort_restores_everything_exactly(world):
    move_upstream(world, "exact")
    world.git("checkout", "-q", "-b", "work")
    before, files = snapshot(world), patch_bytes(world)
    res = world.run("rebase", "--onto", "1.64.0")  # a tag: a version the checkout already has
    assert res.returncode == 6, res.stderr
    assert world.run("apply").returncode == 7  # the rebase owns the tree now
    export = world.run("export")
    assert export.returncode == 7 and "a rebase of set autodiff-1.64.0 is in progress" in export.stderr
    wrong = world.run("apply", "--continue")
    assert wrong.returncode == 7 and "a rebase of set autodiff-1.64.0 is in progress" in wrong.stderr
    res = world.run("rebase", "--abort")
    assert res.returncode == 0, res.stderr
    assert snapshot(world) == before and patch_bytes(world) == files
    assert not (world.checkout / ".git/patchmgr").exists()


def test_rebase_abort_keeps_what_the_user_wrote_in_the_manifest_during_the_stop(world):
    """An abort takes back what the rebase wrote, never an edit made since (issue 25, class 1)."""
    move_upstream(world, "exact")
    before = snapshot(world)
    assert world.run("rebase", "--onto", "1.64.0").returncode == 6
    manifest = world.patches / "series.toml"
    edited = "# carried since 1.63.0, see the tracking issue\n" + manifest.read_text() + "# a note at the end\n"
    manifest.write_text(edited)
    res = world.run("rebase", "--abort")
    assert res.returncode == 0, res.stderr
    assert manifest.read_text() == edited
    assert snapshot(world) == before


def test_rebase_abort_refuses_to_discard_a_change_made_during_the_stop(world):
    """Issue 25, class 1: a tracked file the rebase never writes, edited while it was stopped."""
    move_upstream(world, "exact")
    before = snapshot(world)
    assert world.run("rebase", "--onto", "1.64.0").returncode == 6
    xpy = world.checkout / "x.py"
    original = xpy.read_text()
    xpy.write_text(original + "# mine\n")
    stopped, files = snapshot(world), patch_bytes(world)
    res = world.run("rebase", "--abort")
    assert res.returncode == 5 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "x.py was changed after the rebase began, where it writes nothing" in res.stderr
    assert snapshot(world) == stopped and patch_bytes(world) == files
    xpy.write_text(original)
    assert world.run("rebase", "--abort").returncode == 0
    assert snapshot(world) == before


def test_rebase_skip_leaves_the_patch_out(world):
    move_upstream(world, "exact")
    assert world.run("rebase", "--onto", "1.64.0", "--new-set", "ad-next").returncode == 6
    res = world.run("rebase", "--skip", "--note", "upstream's f3 needs no marker")
    assert res.returncode == 0, res.stderr
    report = (world.patches / "ad-next" / "rebase-report.md").read_text()
    assert "0001-codegen_llvm-mark-f3-differentiable.patch | skipped by hand: upstream's f3 needs no marker | - |" in report
    assert "Note: LLVM major kept from autodiff-1.63.0" in report  # llvm-project names no version
    import tomllib

    entry = tomllib.loads((world.patches / "series.toml").read_text())["sets"]["ad-next"]
    assert entry["repos"]["."]["patches"] == [] and entry["llvm"] == 14


@pytest.mark.parametrize("args, code, message", [
    (["--onto", "no-such-rev"], 3, "is neither a revision in"),
    (["--onto=--help-me"], 3, "must be a revision or a rustc version"),
    (["--onto", "HEAD"], 7, "is the base set autodiff-1.63.0 is already for"),
    ([], 2, "rebase needs --onto"),
    (["--onto", "HEAD", "--note", "why"], 2, "--note goes with rebase --continue or --skip"),
    (["--continue"], 7, "no rebase is in progress"),
])
def test_rebase_bad_requests(world, args, code, message):
    before = snapshot(world)
    res = world.run("rebase", *args)
    assert res.returncode == code and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(world) == before


def test_rebase_refuses_an_applied_set_and_a_taken_name(world):
    move_upstream(world, "exact")
    assert world.run("apply").returncode == 0
    res = world.run("rebase", "--onto", "1.64.0")
    assert res.returncode == 7 and "then patchmgr unapply, then rebase" in res.stderr
    assert world.run("unapply").returncode == 0
    res = world.run("rebase", "--onto", "1.64.0", "--new-set", OLD)
    assert res.returncode == 3 and "cannot name the new set from 'autodiff-1.63.0'" in res.stderr, res.stderr


KILL_HOOK = """#!/bin/sh
# kill git checkout's parent (patchmgr) and git checkout itself, as a crash would
gp=$(awk '{print $4}' /proc/$PPID/stat)
kill -9 "$gp" "$PPID"
"""


def test_kill_during_the_replay_then_abort_restores_exactly(world):
    """Killed while llvm-project's work tree moves to its carried commits (git checkout's hook)."""
    move_upstream(world, "exact")
    before, files = snapshot(world), patch_bytes(world)
    hook = Path(world.git("rev-parse", "--absolute-git-dir", repo="src/llvm-project").strip()) / "hooks" / "post-checkout"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(KILL_HOOK)
    hook.chmod(0o700)
    res = world.run("rebase", "--onto", "1.64.0")
    assert res.returncode == -9, (res.returncode, res.stderr)
    hook.unlink()
    assert "rebase of autodiff-1.63.0 onto 1.64.0" in world.run("status").stdout
    res = world.run("rebase", "--abort")
    assert res.returncode == 0, res.stderr
    assert snapshot(world) == before and patch_bytes(world) == files


def test_a_patch_the_resolution_of_an_earlier_one_took_is_absorbed(world):
    """Upstream rewrites f3 only; resolving the first patch the user also adds the second patch's change."""
    up = world.upstream
    lib = up / LIB
    lib.write_text(lib.read_text().replace("    x * 3.0\n", "    3.0 * x\n"))
    write(up / "src/version", "1.64.0\n")
    commit_upstream(up, "codegen_llvm: scale f3 from the left", world.env)
    world.git("fetch", "-q", "origin")
    assert world.run("rebase", "--onto", "origin/main", "--new-set", "ad-next", "--no-config").returncode == 6
    (world.checkout / LIB).write_text(lib.read_text().replace("    3.0 * x\n", "    3.0 * x // autodiff: differentiable\n"))
    write(world.checkout / "compiler/rustc_codegen_ssa/src/traits/autodiff.rs", "pub trait AutoDiffMethods {}\n")
    opts = world.checkout / "compiler/rustc_session/src/options.rs"
    opts.write_text(opts.read_text() + "// -Z autodiff\n")
    world.git("add", LIB, "compiler/rustc_codegen_ssa/src/traits/autodiff.rs", "compiler/rustc_session/src/options.rs")
    res = world.run("rebase", "--continue", "--no-config")
    assert res.returncode == 0, res.stderr
    report = (world.patches / "ad-next" / "rebase-report.md").read_text()
    assert (f"| {OLD}/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch | dropped as upstream: absorbed by the "
            f"resolution of patch {OLD}/rust/0001-codegen_llvm-mark-f3-differentiable.patch | - |") in report, report


XPY_CHECK = """#!/usr/bin/env python3
import json, sys
with open("xpy-calls.json", "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
config = sys.argv[sys.argv.index("--config") + 1] if "--config" in sys.argv else ""
if "enzyme-on" in config:
    print("   Checking rustc_codegen_llvm v0.0.0")
    print("error[E0425]: cannot find value `enzyme_ctx` in this scope")
    print("  --> compiler/rustc_codegen_llvm/src/lib.rs:14:5")
    print("error: aborting due to previous error")
    sys.exit(1)
print("Build completed successfully in 0:00:01")
"""


def test_verify_compile_checks_the_touched_crates_and_names_the_patch(world):
    """--verify: x.py check of the crates the patches touch, per configuration; a failure is pinned on its patch."""
    up = world.upstream
    write(up / "compiler/rustc_codegen_llvm/Cargo.toml", '[package]\nname = "rustc_codegen_llvm"\n')
    write(up / "x.py", XPY_CHECK)
    write(up / "src/version", "1.64.0\n")
    commit_upstream(up, "Rust 1.64.0", world.env)
    world.git("fetch", "-q", "origin")
    res = world.run("rebase", "--onto", "origin/main", "--verify", "--no-config")
    assert res.returncode == 11, res.stderr
    patch = f"{NEW}/rust/0001-codegen_llvm-mark-f3-differentiable.patch"
    assert res.stderr.rstrip().splitlines()[-1] == (
        "patchmgr: error: the rebased set does not compile (--cfg llvm_enzyme): error[E0425]: cannot find value "
        f"`enzyme_ctx` in this scope (compiler/rustc_codegen_llvm/src/lib.rs:14:5), pinned on {patch}; see "
        f"{world.patches / NEW / 'rebase-report.md'}")
    calls = [json.loads(line) for line in (world.checkout / "xpy-calls.json").read_text().splitlines()]
    assert [c[2:] for c in calls] == [["check", "compiler/rustc_codegen_llvm"]] * 2
    assert [Path(c[1]).name for c in calls] == ["patchmgr-verify-enzyme-off.toml", "patchmgr-verify-enzyme-on.toml"]
    report = (world.patches / NEW / "rebase-report.md").read_text()
    assert (f"| {OLD}/rust/0001-codegen_llvm-mark-f3-differentiable.patch | does not compile (--cfg llvm_enzyme: "
            "error[E0425]") in report and "; carried as: clean |" in report, report
    assert "- Enzyme off: x.py check passed" in report
    (world.checkout / "xpy-calls.json").unlink()


def test_verify_checks_the_crates_x_py_reaches(tmp_path):
    """Nearest Cargo.toml of each file; vendored crates and the root workspace's exclusions (the gcc
    backend) are not x.py check's; src/bootstrap is, by a step of its own."""
    from patchmgr.verify import crate_dirs

    write(tmp_path / "Cargo.toml", '[workspace]\nmembers = ["compiler/rustc"]\n'
                                   'exclude = ["build", "compiler/rustc_codegen_gcc", "src/bootstrap"]\n')
    for crate in ("compiler/rustc_codegen_llvm", "compiler/rustc_codegen_gcc", "src/bootstrap", "vendor/cc"):
        write(tmp_path / crate / "Cargo.toml", "[package]\n")
    paths = ["compiler/rustc_codegen_llvm/src/back/autodiff.rs", "compiler/rustc_codegen_gcc/src/lib.rs",
             "src/bootstrap/native.rs", "vendor/cc/src/lib.rs", "README.md", "src/test/ui/x.rs"]
    assert crate_dirs(tmp_path, paths) == ["compiler/rustc_codegen_llvm", "src/bootstrap"]

