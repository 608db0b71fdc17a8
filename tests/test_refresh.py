"""refresh and new, quilt's habits on an applied set (issue 26 point 5): the uncommitted changes
folded into the patch that touched those files (below the top too, the later commits rewritten),
or made a new patch at the end of the set; the patch files written by export and the set still
applied (status applied, unapply without --force, apply a no-op), in the superproject,
src/llvm-project and Enzyme. Refusals list the candidates and change nothing; a kill at any step
is finished by running the command again."""

from __future__ import annotations

import subprocess

import pytest
from fixture import ENZYME_PATH, mtimes, snapshot, write
from test_enzyme_patches import LABEL, add_enzyme_patch
from test_export_adopts import adopted_then_unapplied, ok, status

SET = "autodiff-1.63.0"
LLVM = "src/llvm-project"
FIRST = f"{SET}/rust/0001-codegen_llvm-mark-f3-differentiable.patch"
SECOND = f"{SET}/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch"
LLVM_PATCH = f"{SET}/llvm-project/0001-Build-Enzyme-as-an-external-project.patch"
LIB = "compiler/rustc_codegen_llvm/src/lib.rs"
OPTIONS = "compiler/rustc_session/src/options.rs"


def edit(world, path: str, old: str, new: str) -> bytes:
    target = world.checkout / path
    target.write_text(target.read_text().replace(old, new, 1))
    return target.read_bytes()


def superproject(data):
    return data["repos"][0]


def llvm(data):
    return next(r for r in data["repos"] if r["path"] == LLVM)


def test_refresh_folds_into_a_patch_below_the_top(applied_world):
    world = applied_world
    after = edit(world, LIB, "x * 7.0", "x * 7.5")
    world.git("add", LIB)  # staged or not, the work tree's content is what is folded
    before = mtimes(world.checkout)
    out = ok(world.run("refresh")).stderr
    assert mtimes(world.checkout) == before  # the work tree is not written: nothing for x.py to rebuild
    assert f"into {FIRST}" in out and f"wrote {FIRST}" in out
    assert "+    x * 7.5" in (world.patches / FIRST).read_text()
    assert (world.checkout / LIB).read_bytes() == after
    assert world.git("status", "--porcelain", "--untracked-files=no") == ""
    assert world.git("log", "-1", "--format=%s", "HEAD~1").strip() == "Add the autodiff trait and -Z autodiff"
    adopted_then_unapplied(world, superproject, FIRST)


def test_refresh_in_llvm_project_keeps_the_gitlink_recorded(applied_world):
    world = applied_world
    edit(world, f"{LLVM}/llvm/CMakeLists.txt", "LLVM_OPTION_9 OFF", "LLVM_OPTION_9 ON")
    ok(world.run("refresh"))
    assert "+set(LLVM_OPTION_9 ON)" in (world.patches / LLVM_PATCH).read_text()
    data = status(world)
    assert data["state"] == "applied" and not data["stale_gitlinks"], data
    adopted_then_unapplied(world, llvm, LLVM_PATCH)


def test_refresh_in_enzyme(world):
    add_enzyme_patch(world)
    ok(world.run("apply", "--no-config"))
    label = LABEL
    path = world.checkout / ENZYME_PATH / "enzyme/CMakeLists.txt"
    path.write_text(path.read_text() + "# refreshed\n")
    ok(world.run("refresh"))
    assert "+# refreshed" in (world.patches / label).read_text()
    adopted_then_unapplied(world, lambda d: d["enzyme"]["patches"], label)


@pytest.mark.parametrize("case", ["several", "none", "later", "file-edited", "repos", "unknown", "new-repos"])
def test_refresh_refuses_before_any_change(applied_world, case):
    world = applied_world
    if case == "several":
        edit(world, LIB, "x * 7.0", "x * 7.5")
        edit(world, OPTIONS, "// options", "// options!")
        args, words = ["refresh"], f"touched by several patches: {FIRST}, {SECOND}"
    elif case == "none":
        edit(world, "README.md", "rust", "rust!")
        args, words = ["refresh"], "no applied patch touches README.md"
    elif case in ("repos", "new-repos"):  # a patch belongs to one repository
        edit(world, LIB, "x * 7.0", "x * 7.5")
        edit(world, f"{LLVM}/llvm/CMakeLists.txt", "LLVM_OPTION_9 OFF", "LLVM_OPTION_9 ON")
        args = ["refresh"] if case == "repos" else ["new", "two places"]
        words = f"uncommitted changes in several repositories (., {LLVM})"
    elif case == "unknown":
        edit(world, LIB, "x * 7.0", "x * 7.5")
        args, words = ["refresh", "0009-nothing.patch"], f"is not an applied patch; applied: {FIRST}, {SECOND}, "
    elif case == "file-edited":  # export would write the branch's version over the user's edit of the file
        edit(world, LIB, "x * 7.0", "x * 7.5")
        patch = world.patches / FIRST
        patch.write_text(patch.read_text().replace("// autodiff: differentiable", "// autodiff: yes"))
        args, words = ["refresh"], f"patch file {FIRST} changed since it was applied"
    else:  # the change's context is a line the second patch added: it cannot go into the first
        (world.checkout / OPTIONS).write_text((world.checkout / OPTIONS).read_text() + "// more\n")
        args, words = ["refresh", FIRST.rsplit("/", 1)[-1]], f"depend on patch {SECOND}"
    before = snapshot(world)
    files = sorted((p, p.read_bytes()) for p in world.patches.rglob("*") if p.is_file())
    res = world.run(*args)
    assert res.returncode in (2, 7) and words in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(world) == before
    assert sorted((p, p.read_bytes()) for p in world.patches.rglob("*") if p.is_file()) == files


def test_new_takes_untracked_files_only_when_named(applied_world):
    world = applied_world
    write(world.checkout / "docs/autodiff.md", "# autodiff\n")
    write(world.checkout / "notes.txt", "mine\n")
    res = world.run("new", "docs: autodiff")
    assert res.returncode == 2 and "name new files after --" in res.stderr
    out = ok(world.run("new", "docs: autodiff", "--", "docs/autodiff.md")).stderr
    label = f"{SET}/rust/0003-docs-autodiff.patch"
    assert f"wrote {label}" in out
    assert "+# autodiff" in (world.patches / label).read_text()
    assert label.rsplit("/", 1)[-1] in (world.patches / "series.toml").read_text()
    assert world.git("status", "--porcelain") == "?? notes.txt\n"
    adopted_then_unapplied(world, superproject, label)


def test_new_in_llvm_project_from_tracked_changes(applied_world):
    world = applied_world
    edit(world, f"{LLVM}/llvm/lib/Passes/PassBuilder.cpp", "// pass builder", "// pass builder, with Enzyme")
    ok(world.run("new", "Register Enzyme in the pass builder"))
    label = f"{SET}/llvm-project/0002-Register-Enzyme-in-the-pass-builder.patch"
    assert "+// pass builder, with Enzyme" in (world.patches / label).read_text()
    data = status(world)
    assert data["state"] == "applied" and not data["stale_gitlinks"], data
    adopted_then_unapplied(world, llvm, label)


@pytest.mark.parametrize("phase", ["refresh:staged", "refresh:branch-moved", "refresh:exported", "export:file-written"])
def test_a_killed_refresh_is_finished_by_running_it_again(applied_world, phase):
    world = applied_world
    after = edit(world, f"{LLVM}/llvm/CMakeLists.txt", "LLVM_OPTION_9 OFF", "LLVM_OPTION_9 ON")
    res = world.run("refresh", env_extra={"PATCHMGR_TEST_FAULT": phase})
    assert res.returncode == -9, res.stderr
    assert (world.checkout / LLVM / "llvm/CMakeLists.txt").read_bytes() == after
    ok(world.run("refresh"))
    assert "+set(LLVM_OPTION_9 ON)" in (world.patches / LLVM_PATCH).read_text()
    assert (world.checkout / LLVM / "llvm/CMakeLists.txt").read_bytes() == after
    adopted_then_unapplied(world, llvm, LLVM_PATCH)


def test_a_new_killed_after_the_branch_moved_is_finished_by_refresh(applied_world):
    world = applied_world
    write(world.checkout / "docs/autodiff.md", "# autodiff\n")
    res = world.run("new", "docs: autodiff", "--", "docs/autodiff.md",
                    env_extra={"PATCHMGR_TEST_FAULT": "refresh:branch-moved"})
    assert res.returncode == -9, res.stderr
    assert (world.checkout / "docs/autodiff.md").read_text() == "# autodiff\n"
    ok(world.run("refresh"))
    label = f"{SET}/rust/0003-docs-autodiff.patch"
    assert "+# autodiff" in (world.patches / label).read_text()
    adopted_then_unapplied(world, superproject, label)


def test_new_of_named_files_in_a_submodule_is_refused_before_any_change_while_other_files_changed(applied_world):
    """Its owner records the submodule's new commit through apply, which needs the rest of the tree
    clean: refused before the branch moves, not half way with a false "nothing was changed"."""
    world = applied_world
    edit(world, f"{LLVM}/llvm/lib/Passes/PassBuilder.cpp", "// pass builder", "// pass builder, with Enzyme")
    edit(world, "compiler/rustc_session/src/options.rs", "// options", "// options, mine")
    before, files = snapshot(world), sorted((p, p.read_bytes()) for p in world.patches.rglob("*") if p.is_file())
    res = world.run("new", "Register Enzyme", "--", f"{LLVM}/llvm/lib/Passes/PassBuilder.cpp")
    assert res.returncode == 7, res.stderr
    assert "compiler/rustc_session/src/options.rs has uncommitted changes too" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(world) == before
    assert sorted((p, p.read_bytes()) for p in world.patches.rglob("*") if p.is_file()) == files


def test_refresh_refuses_while_a_git_am_of_patchmgrs_mails_is_stopped(applied_world):
    """A stopped git am whose mail carries patchmgr's trailers is still a stopped git operation for
    refresh (only --continue of the run that started it may go on over it)."""
    world = applied_world
    opts = world.checkout / "compiler/rustc_session/src/options.rs"
    mail = next((world.patches / SET / "rust").glob("0002-*.patch")).read_text()
    mail = mail.replace("+// -Z autodiff\n", "+// -Z autodiff, again\n").replace(
        "\n---\n", f"\n\nPatchmgr-Set: {SET}\nPatchmgr-Patch: {SET}/rust/0002-x.patch\n---\n", 1)
    subprocess.run(["git", "am", "--3way"], input=mail, text=True, cwd=world.checkout, env=world.env,
                   capture_output=True)
    assert (world.checkout / ".git/rebase-apply").exists()
    opts.write_text(opts.read_text() + "// more\n")
    res = world.run("refresh")
    assert res.returncode == 7 and "in progress" in res.stderr, res.stderr
