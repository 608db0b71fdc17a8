"""The edit loop: a changed patch file applied in place touches only the files whose content
changed (their mtimes), Enzyme and the recorded gitlinks stay, and --abort returns exactly."""

from __future__ import annotations

import json

import pytest
from fixture import mtimes, snapshot, write

SET = "autodiff-1.63.0"
OPTIONS = "compiler/rustc_session/src/options.rs"


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def edit_second_patch(world, new: str = "(changed)") -> None:
    """One line of the second superproject patch, which adds a line to options.rs."""
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    patch.write_text(patch.read_text().replace("+// -Z autodiff", f"+// -Z autodiff {new}"))


def test_a_changed_patch_touches_only_the_changed_file(applied_world):
    world = applied_world
    before = mtimes(world.checkout)
    edit_second_patch(world)
    res = ok(world.run("apply", "--no-config"))
    assert f"1 file changed: {OPTIONS}" in res.stderr
    after = mtimes(world.checkout)
    files = {p for p in after if (world.checkout / p).is_file() and not (world.checkout / p).is_symlink()}
    assert {p for p in files if after[p] != before.get(p)} == {OPTIONS}  # cargo goes by files' mtimes
    assert (world.checkout / OPTIONS).read_text().endswith("// -Z autodiff (changed)\n")
    data = json.loads(ok(world.run("status", "--json")).stdout)
    assert data["state"] == "applied" and data["enzyme"]["in_place"] and not data["stale_gitlinks"]
    assert all(not r["drifted"] and not r["edited"] for r in data["repos"])
    # the same state as unapply && apply would give, commit for commit
    heads = [r["head"] for r in data["repos"]]
    ok(world.run("unapply"))
    ok(world.run("apply", "--no-config"))
    assert [r["head"] for r in json.loads(ok(world.run("status", "--json")).stdout)["repos"]] == heads


def test_the_report_names_the_crate(applied_world):
    world = applied_world
    write(world.checkout / "compiler/rustc_session/Cargo.toml", '[package]\nname = "rustc_session"\nversion = "0.0.0"\n')
    edit_second_patch(world)
    res = ok(world.run("apply", "--no-config"))
    assert f"1 file changed: {OPTIONS} (rustc_session)" in res.stderr


@pytest.mark.parametrize("phase", ["reapply:journal", "reapply:switched:src/llvm-project", "reapply:switched:.",
                                   "apply:recorded"])
def test_killed_then_abort_returns_to_the_old_patches(applied_world, phase):
    world = applied_world
    edit_second_patch(world)
    before = snapshot(world)
    res = world.run("apply", "--no-config", env_extra={"PATCHMGR_TEST_FAULT": phase})
    assert res.returncode == -9, res.stderr
    res = world.run("apply", "--continue")
    assert res.returncode == 7 and "apply of changed patch files was interrupted" in res.stderr
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before
    ok(world.run("apply", "--no-config"))  # and then it goes through


def test_a_changed_patch_that_no_longer_applies_changes_nothing(applied_world):
    world = applied_world
    patch = sorted((world.patches / SET / "rust").iterdir())[0]
    patch.write_text(patch.read_text().replace("-    x * 3.0\n", "-    x * 4.0\n"))
    before = snapshot(world)
    res = world.run("apply", "--no-config")
    assert res.returncode == 10 and "does not apply to the base any more" in res.stderr
    assert res.stderr.strip().splitlines()[-1].endswith("(nothing was changed)")
    assert snapshot(world) == before


def test_refused_when_a_repository_is_not_on_the_patch_branch(applied_world):
    world = applied_world
    world.git("checkout", "-q", "-b", "experiment")  # same commit, another branch
    edit_second_patch(world)
    before = snapshot(world)
    res = world.run("apply", "--no-config")
    assert res.returncode == 7 and ". is not on branch patchmgr/autodiff-1.63.0" in res.stderr
    assert snapshot(world) == before


def test_refused_when_an_untracked_file_stands_where_the_new_version_writes(applied_world):
    world = applied_world
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    patch.write_text(patch.read_text().replace("traits/autodiff.rs", "traits/autodiff_v2.rs"))
    write(world.checkout / "compiler/rustc_codegen_ssa/src/traits/autodiff_v2.rs", "my own\n")
    before = snapshot(world)
    res = world.run("apply", "--no-config")
    assert res.returncode == 7 and "untracked file compiler/rustc_codegen_ssa/src/traits/autodiff_v2.rs" in res.stderr
    assert snapshot(world) == before


def test_an_edited_message_is_drift_and_taken_in_place(applied_world):
    world = applied_world
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    text = patch.read_text()
    assert "] Add the autodiff trait" in text
    patch.write_text(text.replace("] Add the autodiff trait", "] Reworded: add the autodiff trait", 1))
    data = json.loads(ok(world.run("status", "--json")).stdout)
    assert data["repos"][0]["drifted"] == [f"{SET}/rust/{patch.name}"] and data["repos"][0]["edited"] == []
    before = mtimes(world.checkout)
    res = ok(world.run("apply", "--no-config"))
    assert "the patch commits changed, no file did" in res.stderr
    assert mtimes(world.checkout) == before
    assert world.git("log", "-1", "--format=%s", "HEAD~1").startswith("Reworded: add the autodiff trait")
    ok(world.run("export"))  # and export writes the message back (the file named after the new subject)
    assert [p.name for p in (world.patches / SET / "rust").iterdir() if "Reworded:" in p.read_text()] == \
        ["0002-Reworded-add-the-autodiff-trait-and-Z-autodiff.patch"]
