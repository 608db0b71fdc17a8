"""A developer's own series: the branch it was made on, the patches directory a checkout uses."""

from __future__ import annotations

import json

from fixture import snapshot, write

SET = "autodiff-1.63.0"
BRANCH = "patchmgr/" + SET


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def _dev_branch_with_the_series(world, extra: str | None = None) -> str:
    """Branch `dev` at the base with the set's superproject patches committed by plain git am (no
    trailers), as a developer has them before importing; returns its tip."""
    world.git("checkout", "-q", "-b", "dev")
    rust = sorted((world.patches / SET / "rust").iterdir())
    world.git("am", "-q", *map(str, rust))
    if extra:
        write(world.checkout / "NOTES.md", extra)
        world.git("add", "NOTES.md")
        world.git("commit", "-q", "-m", "my notes")
    return world.git("rev-parse", "HEAD").strip()


def test_apply_on_the_branch_that_holds_the_series_adopts_it(world):
    tip = _dev_branch_with_the_series(world)
    tree = world.git("rev-parse", "HEAD^{tree}").strip()
    before = snapshot(world)
    res = ok(world.run("apply", "--no-config"))
    assert "the newest 2 commits of branch dev are the set's patches" in res.stderr
    data = json.loads(ok(world.run("status", "--json")).stdout)
    assert data["state"] == "applied"
    sup = next(r for r in data["repos"] if r["path"] == ".")
    assert len(sup["applied"]) == 2 and not sup["pending"] and not sup["foreign_commits"]
    # the patch branch starts below dev's commits and ends with dev's content; dev is untouched
    assert world.git("rev-parse", "dev").strip() == tip
    assert world.git("rev-parse", f"{BRANCH}~3").strip() == world.base  # 2 patches + the gitlink commit
    assert world.git("diff", "--stat", tree, "HEAD", "--", ".", ":(exclude)src/llvm-project", ":(exclude).gitmodules") == ""
    # a commit of the user's between two patch commits is still seen (the base is recorded, not
    # found by walking back over the trailers)
    applied_tip = world.git("rev-parse", BRANCH).strip()
    world.git("checkout", "-q", f"{BRANCH}~2")
    write(world.checkout / "NOTES.md", "between\n")
    world.git("add", "NOTES.md")
    world.git("commit", "-q", "-m", "mine, between the patches")
    mine = world.git("rev-parse", "HEAD").strip()
    world.git("cherry-pick", f"{BRANCH}~1", f"{BRANCH}")
    world.git("checkout", "-q", "-B", BRANCH)
    sup = next(r for r in json.loads(ok(world.run("status", "--json")).stdout)["repos"] if r["path"] == ".")
    assert sup["foreign_commits"] == [mine]
    world.git("checkout", "-q", "-B", BRANCH, applied_tip)  # the branch as apply made it
    ok(world.run("unapply"))
    assert world.git("symbolic-ref", "HEAD").strip() == "refs/heads/dev"
    assert snapshot(world) == before


def test_a_patch_whose_change_the_tree_has_is_never_called_applied(world):
    # the change of the second patch is already in the tree, in a commit that is not the patch
    world.git("checkout", "-q", "-b", "dev")
    second = sorted((world.patches / SET / "rust").iterdir())[1]
    world.git("am", "-q", str(second))
    write(world.checkout / "NOTES.md", "and more\n")
    world.git("add", "NOTES.md")
    world.git("commit", "-q", "-m", "my notes")
    res = world.run("apply", "--no-config")
    assert res.returncode == 7, res.stderr
    assert "0002-" in res.stderr and "changed nothing in ." in res.stderr and "--abort" in res.stderr
    assert "applied set" not in res.stderr
    assert json.loads(ok(world.run("status", "--json")).stdout)["state"] != "applied"
    ok(world.run("apply", "--abort"))
    assert world.git("symbolic-ref", "HEAD").strip() == "refs/heads/dev"


def test_held_prefix_takes_the_newest_commits_in_series_order():
    from patchmgr.adopt import held_prefix

    assert held_prefix(["x", "a", "b"], ["a", "b", "c"]) == 2
    assert held_prefix(["a", "b", "x"], ["a", "b"]) == 0  # the user's own commit is newest: not adopted
    assert held_prefix(["b", "a"], ["a", "b"]) == 1  # only the newest commits count: "a" is, "b" below it is not
    assert held_prefix([None], [None]) == 0  # a diff git gives no patch-id matches nothing
    assert held_prefix([], ["a"]) == 0


def _installed_env(world) -> dict:
    """The world's environment with no --patches and no $PATCHMGR_PATCHES: the installed default applies."""
    return {k: v for k, v in world.env.items() if k != "PATCHMGR_PATCHES"}


def run_bare(world, *args: str, cwd=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "patchmgr", *args], cwd=cwd or world.checkout, env=_installed_env(world),
                          capture_output=True, text=True)


def test_init_remembers_the_patches_directory_for_the_checkout(world):
    res = ok(run_bare(world, "init", str(world.patches)))
    assert str(world.patches) in res.stderr
    assert world.git("config", "--local", "patchmgr.patches").strip() == str(world.patches)
    # every command finds it, also from inside src/llvm-project; status says where it came from
    data = json.loads(ok(run_bare(world, "status", "--json", cwd=world.llvm)).stdout)
    assert data["patches"] == {"dir": str(world.patches), "from": data["patches"]["from"]}
    assert "patchmgr init" in data["patches"]["from"]
    ok(run_bare(world, "apply", "--no-config"))
    assert "patches: " + str(world.patches) in ok(run_bare(world, "status")).stdout


def test_commands_that_write_patches_refuse_the_installed_series(world):
    from pathlib import Path

    import patchmgr_series

    installed = Path(patchmgr_series.__file__).parent
    before = sorted((p.relative_to(installed), p.stat().st_mtime_ns) for p in installed.rglob("*"))
    for args in (["import", "HEAD~1..HEAD", "--set", "mine"], ["export"], ["rebase", "--onto", "HEAD"]):
        res = run_bare(world, *args)
        assert res.returncode == 2, (args, res.stderr)
        assert "patchmgr init DIR" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert sorted((p.relative_to(installed), p.stat().st_mtime_ns) for p in installed.rglob("*")) == before
    # export --quilt writes only the directory it is given
    res = run_bare(world, "export", "--quilt", str(world.tmp / "quilt"))
    assert "patchmgr init DIR" not in res.stderr


def test_init_refuses_a_directory_that_is_not_a_patches_directory(world, tmp_path):
    busy = tmp_path / "busy"
    write(busy / "notes.txt", "mine\n")
    res = run_bare(world, "init", str(busy))
    assert res.returncode == 3 and "no series.toml" in res.stderr
    assert world.git("config", "--local", "patchmgr.patches", check=False) == ""
    fresh = tmp_path / "new-series"
    ok(run_bare(world, "init", str(fresh)))
    assert fresh.is_dir() and "no manifest yet" in run_bare(world, "init", str(fresh)).stderr


def _second_set(world, name: str = "v2") -> None:
    """Set `name`: the same patches as the shipped set, under another name."""
    import shutil

    shutil.copytree(world.patches / SET, world.patches / name)
    text = (world.patches / "series.toml").read_text()
    block = text[text.index(f'[sets."{SET}"]'):]
    (world.patches / "series.toml").write_text(text + "\n" + block.replace(f'"{SET}"', f'"{name}"').replace(f"{SET}/", f"{name}/"))


def test_check_of_another_set_works_while_one_is_applied(world):
    _second_set(world)
    ok(world.run("apply", "--no-config", "--set", SET))
    before = snapshot(world)
    res = ok(world.run("check", "--set", "v2"))
    assert res.stdout.count("ok   ") == 3
    assert snapshot(world) == before


def test_a_set_that_is_not_applied_goes_on_the_base_it_was_applied_on(tarball_world):
    world = tarball_world
    _second_set(world)
    ok(world.run("apply", "--no-config", "--set", SET))
    ok(world.run("unapply"))
    base = world.git("rev-parse", "HEAD").strip()
    # a branch of the user's on that release, with a change the first patch conflicts with
    world.git("checkout", "-q", "-b", "dev")
    lib = world.checkout / "compiler/rustc_codegen_llvm/src/lib.rs"
    lib.write_text(lib.read_text().replace("x * 3.0", "x * 3.5"))
    world.git("commit", "-q", "-am", "my experiment")
    # the checkout moves on to another release (as after a rebase)
    world.git("checkout", "-q", "-b", "zz-next", base)
    write(world.checkout / "git-commit-hash", "0" * 40 + "\n")
    world.git("commit", "-q", "-am", "Import the next release")
    res = world.run("diff-sets", SET, "v2")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(" = ") >= 3  # the same patches on the same base: every commit equal


def test_a_line_added_by_hand_without_fixing_the_hunk_count_is_refused(world):
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    text = patch.read_text()
    at = text.index("\n-- \n")
    patch.write_text(text[:at] + "\n+// a line the @@ header does not count" + text[at:])
    before = snapshot(world)
    for args in (["lint"], ["apply", "--no-config"]):
        res = world.run(*args)
        assert res.returncode == 3, (args, res.stderr)
        assert "a hunk line its @@ header does not count" in res.stderr and "a line the @@ header" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(world) == before


def test_import_of_a_range_on_a_release_tree_builds_on_the_range_base_not_the_branch_tip(tarball_world):
    """On a release tree (no upstream commit in the checkout) the imported files are export's form:
    they are built on the release's import, not on the tip of the branch that holds them."""
    world = tarball_world
    base = world.git("rev-parse", "HEAD").strip()
    _dev_branch_with_the_series(world)
    mine = world.tmp / "mine"
    res = ok(world.run("--patches", str(mine), "import", f"{base}..dev", "--set", "mine", "--rustc", "1.63.0",
                       "--commit", world.base, "--llvm", "14"))
    assert "import's form" not in res.stderr, res.stderr
    ok(world.run("--patches", str(mine), "apply", "--no-config", "--set", "mine"))
    res = ok(world.run("--patches", str(mine), "export"))
    assert "nothing changed" in res.stderr


def test_a_symmetric_range_imports_only_the_branch_side(world):
    """`A...B` is B's commits since the merge base, as import's help says, not both sides' commits
    (which is what rev-list would make of it)."""
    base = world.git("rev-parse", "HEAD").strip()
    world.git("checkout", "-q", "-b", "side")
    write(world.checkout / "NOTES.md", "mine\n")
    world.git("add", "NOTES.md")
    world.git("commit", "-q", "-m", "docs: my notes")
    world.git("checkout", "-q", "-b", "moved-on", base)
    write(world.checkout / "UPSTREAM.md", "upstream moved on\n")
    world.git("add", "UPSTREAM.md")
    world.git("commit", "-q", "-m", "upstream: moved on")
    mine = world.tmp / "mine"
    ok(world.run("--patches", str(mine), "import", "moved-on...side", "--set", "mine", "--rustc", "1.63.0",
                 "--commit", world.base, "--llvm", "14"))
    names = sorted(p.name for p in (mine / "mine" / "rust").iterdir())
    assert names == ["0001-docs-my-notes.patch"], names


def test_a_file_system_refusal_is_one_line_with_its_own_exit_code(world, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    res = run_bare(world, "init", str(blocker / "series"))
    assert res.returncode == 14, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert str(blocker / "series") in res.stderr
    assert world.git("config", "--local", "patchmgr.patches", check=False) == ""
