"""A commit the user adds on a patch branch, once export wrote it as a patch file, is that
applied patch (issue 25 class 5, issue 26 point 5): status lists it applied (not foreign, not
pending), unapply needs no --force, apply has nothing to do (in src/llvm-project and Enzyme it
records the submodule's new commit once), and a later edit of its file is applied in place,
as after an amend. In the superproject, src/llvm-project and Enzyme."""

from __future__ import annotations

import json

from fixture import ENZYME_PATH, write
from test_enzyme_patches import add_enzyme_patch

SET = "autodiff-1.63.0"
LLVM = "src/llvm-project"


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def status(world) -> dict:
    return json.loads(ok(world.run("status", "--json")).stdout)


def commit_on_branch(world, repo: str, path: str, text: str, subject: str) -> None:
    write(world.checkout / repo / path, text)
    world.git("add", "--", path, repo=repo)
    world.git("commit", "-q", "-m", subject, repo=repo)


def adopted_then_unapplied(world, repo_status, label: str) -> None:
    """After the export: applied, nothing pending or foreign; apply then has nothing to do
    (after recording a submodule's new commit, where one moved); unapply needs no --force."""
    data = status(world)
    r = repo_status(data)
    assert label in r["applied"] and r["pending"] == [] and r["foreign_commits"] == []
    assert r["drifted"] == [] and r["edited"] == []
    if data["state"] != "applied":  # a submodule's new commit is the set's to record: apply does
        ok(world.run("apply", "--no-config"))
        data = status(world)
    assert data["state"] == "applied" and not data["stale_gitlinks"], data
    assert "nothing to do" in ok(world.run("apply", "--no-config")).stderr
    ok(world.run("unapply"))
    assert status(world)["state"] == "unapplied"


def test_a_commit_in_the_superproject_exported_is_the_applied_patch(applied_world):
    world = applied_world
    commit_on_branch(world, ".", "compiler/rustc_codegen_ssa/src/back/autodiff.rs", "// glue\n", "Add the back-end glue")
    label = f"{SET}/rust/0003-Add-the-back-end-glue.patch"
    assert f"wrote {label}" in ok(world.run("export")).stderr
    # the file edited after the export: drift, taken in place, as for an amended commit
    patch = world.patches / label
    patch.write_text(patch.read_text().replace("+// glue", "+// glue, revised"))
    data = status(world)
    assert data["repos"][0]["drifted"] == [label] and data["repos"][0]["edited"] == []
    assert "1 file changed" in ok(world.run("apply", "--no-config")).stderr
    assert (world.checkout / "compiler/rustc_codegen_ssa/src/back/autodiff.rs").read_text() == "// glue, revised\n"
    adopted_then_unapplied(world, lambda d: d["repos"][0], label)
    ok(world.run("apply", "--no-config"))  # from the files again: the patch is part of the set
    assert label in status(world)["repos"][0]["applied"]


def test_a_commit_in_llvm_project_exported_is_the_applied_patch(applied_world):
    world = applied_world
    commit_on_branch(world, LLVM, "llvm/lib/Passes/Enzyme.cpp", "// enzyme pass\n", "Register the Enzyme pass")
    label = f"{SET}/llvm-project/0002-Register-the-Enzyme-pass.patch"
    assert f"wrote {label}" in ok(world.run("export")).stderr
    # the superproject's record of src/llvm-project lags: the set's to record, not the user's change
    assert status(world)["repos"][0]["dirty"] == []
    assert f"gitlink {LLVM}: the superproject records another commit than the submodule's HEAD; its commits " \
        "are the set's: patchmgr apply records it" in ok(world.run("status")).stdout.splitlines()
    adopted_then_unapplied(world, lambda d: next(r for r in d["repos"] if r["path"] == LLVM), label)


def test_a_commit_in_enzyme_exported_is_the_applied_patch(world):
    add_enzyme_patch(world)
    ok(world.run("apply", "--no-config"))
    commit_on_branch(world, ENZYME_PATH, "enzyme/Enzyme/Errors.cpp", "// errors\n", "enzyme: an errors file")
    label = f"{SET}/enzyme/0002-enzyme-an-errors-file.patch"
    assert f"wrote {label}" in ok(world.run("export")).stderr
    adopted_then_unapplied(world, lambda d: d["enzyme"]["patches"], label)


def test_a_commit_inserted_between_patches_renames_the_later_files_and_all_stay_applied(applied_world):
    """export numbers the files in branch order: a commit put under the last patch renames that
    patch's file, and the commit apply made for it is adopted under the new name."""
    world = applied_world
    tip = world.git("rev-parse", "HEAD").strip()  # the gitlink commit, above the two patches
    second = world.git("rev-parse", "HEAD~1").strip()
    world.git("checkout", "-q", "--detach", "HEAD~2")
    commit_on_branch(world, ".", "docs/autodiff.md", "# autodiff\n", "docs: autodiff")
    for sha in (second, tip):
        world.git("cherry-pick", "--allow-empty", sha)
    world.git("checkout", "-q", "-B", f"patchmgr/{SET}")
    out = ok(world.run("export")).stderr
    assert f"wrote {SET}/rust/0003-Add-the-autodiff-trait-and-Z-autodiff.patch" in out
    assert f"removed {SET}/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch" in out
    labels = [f"{SET}/rust/0001-codegen_llvm-mark-f3-differentiable.patch", f"{SET}/rust/0002-docs-autodiff.patch",
              f"{SET}/rust/0003-Add-the-autodiff-trait-and-Z-autodiff.patch"]
    data = status(world)
    assert data["repos"][0]["applied"] == labels and data["state"] == "applied"
    adopted_then_unapplied(world, lambda d: d["repos"][0], labels[1])
