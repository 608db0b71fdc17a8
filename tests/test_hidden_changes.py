"""Changes hidden by index flags: a file marked `git update-index --assume-unchanged` or
`--skip-worktree` that the user edited is invisible to git status, yet checkout, read-tree,
reset and git am would overwrite it. Every command that writes the work tree (apply, the
in-place re-apply, unapply, and their --continue/--abort) refuses before any change, naming
the file and its flag; a flagged file that still matches the index is no obstacle."""

from __future__ import annotations

import pytest
from fixture import git, snapshot

SET = "autodiff-1.63.0"
OPTIONS = "compiler/rustc_session/src/options.rs"  # written by the second superproject patch
CMAKE = "llvm/CMakeLists.txt"  # in src/llvm-project, written by its patch
FLAGS = ["--assume-unchanged", "--skip-worktree"]


def hide_edit(world, path: str, flag: str, repo: str = ".") -> str:
    """Mark `path` with `flag`, then append a line to it as the user; returns the new content."""
    world.git("update-index", flag, "--", path, repo=repo)
    target = world.checkout / repo / path
    target.write_text(target.read_text() + "// the user's own line\n")
    return target.read_text()


def refused(world, res, where: str, flag: str) -> None:
    assert res.returncode == 5, res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{where} has changes git does not show: it is marked {flag}" in line
    assert f"update-index --no-{flag[2:]} -- " in line and "nothing was changed" in line


@pytest.mark.parametrize("flag", FLAGS)
def test_apply_refuses_a_hidden_edit(fast_world, flag):
    world = fast_world
    mine = hide_edit(world, OPTIONS, flag)
    before = snapshot(world)
    refused(world, world.run("apply", "--no-config"), OPTIONS, flag)
    assert snapshot(world) == before and (world.checkout / OPTIONS).read_text() == mine


@pytest.mark.parametrize("flag", FLAGS)
def test_the_in_place_reapply_refuses_a_hidden_edit_before_its_journal(applied_world, flag):
    world = applied_world
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    patch.write_text(patch.read_text().replace("+// -Z autodiff", "+// -Z autodiff (changed)"))
    mine = hide_edit(world, OPTIONS, flag)
    before = snapshot(world)
    refused(world, world.run("apply", "--no-config"), OPTIONS, flag)
    assert snapshot(world) == before and (world.checkout / OPTIONS).read_text() == mine
    assert not (world.checkout / ".git/patchmgr/op.json").exists()  # no journal for --abort to act on


@pytest.mark.parametrize("flag", FLAGS)
def test_unapply_refuses_a_hidden_edit_in_a_submodule(applied_world, flag):
    world = applied_world
    mine = hide_edit(world, CMAKE, flag, repo="src/llvm-project")
    before = snapshot(world)
    res = world.run("unapply")
    refused(world, res, f"src/llvm-project/{CMAKE}", flag)
    assert f"git -C src/llvm-project update-index --no-{flag[2:]} -- {CMAKE}" in res.stderr
    assert snapshot(world) == before and (world.llvm / CMAKE).read_text() == mine


def stop_on_a_conflict(world) -> None:
    """A local commit under the first superproject patch: apply patches src/llvm-project, then stops."""
    lib = world.checkout / "compiler/rustc_codegen_llvm/src/lib.rs"
    lib.write_text(lib.read_text().replace("x * 3.0", "x * 3.5"))
    git(world.checkout, "commit", "-qam", "local change to f3", env=world.env)
    assert world.run("apply", "--no-config").returncode == 6


@pytest.mark.parametrize("flag", FLAGS)
def test_abort_refuses_a_hidden_edit_made_while_stopped(fast_world, flag):
    world = fast_world
    base_text = (world.llvm / CMAKE).read_text()  # what --abort writes back
    stop_on_a_conflict(world)
    mine = hide_edit(world, CMAKE, flag, repo="src/llvm-project")
    before = snapshot(world)
    refused(world, world.run("apply", "--abort"), f"src/llvm-project/{CMAKE}", flag)
    assert snapshot(world) == before and (world.llvm / CMAKE).read_text() == mine
    # the way out the message gives: the flag cleared and the change stashed, the abort goes on
    world.git("update-index", f"--no-{flag[2:]}", "--", CMAKE, repo="src/llvm-project")
    world.git("stash", "-q", repo="src/llvm-project")
    res = world.run("apply", "--abort")
    assert res.returncode == 0, res.stderr
    assert (world.llvm / CMAKE).read_text() == base_text
    assert "+// the user's own line" in world.git("stash", "show", "-p", repo="src/llvm-project")


@pytest.mark.parametrize("flag", FLAGS)
def test_continue_refuses_a_hidden_edit_a_later_patch_would_overwrite(fast_world, flag):
    world = fast_world
    stop_on_a_conflict(world)
    lib = world.checkout / "compiler/rustc_codegen_llvm/src/lib.rs"
    lib.write_text(lib.read_text().split("<<<<<<<")[0] + "pub fn f3(x: f64) -> f64 {\n    x * 3.5 // autodiff\n}\n")
    world.git("add", "compiler/rustc_codegen_llvm/src/lib.rs")
    mine = hide_edit(world, OPTIONS, flag)
    before = snapshot(world)
    refused(world, world.run("apply", "--continue", "--no-config"), OPTIONS, flag)
    assert snapshot(world) == before and (world.checkout / OPTIONS).read_text() == mine


def test_which_flagged_files_count_as_changed(tmp_path, monkeypatch):
    """Content compared with the index as git stores it; a skip-worktree file missing from the
    work tree is a sparse checkout's, an assume-unchanged one missing is a deletion."""
    import os

    from fixture import hermetic_env, write

    from patchmgr.gitio import Repo

    env = hermetic_env(tmp_path)
    repo = tmp_path / "r"
    files = ["same.txt", "edited file.txt", "sparse.txt", "deleted.txt", "edited-skip.txt", "touched.txt"]
    for name in files:
        write(repo / name, f"{name}\n")
    os.symlink("same.txt", repo / "link")
    git(tmp_path, "init", "-q", str(repo), env=env)
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-qm", "files", env=env)
    git(repo, "update-index", "--assume-unchanged", "same.txt", "edited file.txt", "deleted.txt", "link", env=env)
    git(repo, "update-index", "--skip-worktree", "sparse.txt", "edited-skip.txt", "touched.txt", env=env)
    later = (repo / "touched.txt").stat().st_mtime + 5
    os.utime(repo / "touched.txt", (later, later))
    (repo / "edited file.txt").write_text("mine\n")
    (repo / "edited-skip.txt").write_text("mine\n")
    (repo / "sparse.txt").unlink()
    (repo / "deleted.txt").unlink()
    (repo / "link").unlink()
    os.symlink("edited file.txt", repo / "link")
    for key in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "HOME"):
        monkeypatch.setenv(key, env[key])
    assert Repo(repo).hidden_changes() == [
        ("deleted.txt", "--assume-unchanged", "changed"), ("edited file.txt", "--assume-unchanged", "changed"),
        ("edited-skip.txt", "--skip-worktree", "changed"), ("link", "--assume-unchanged", "changed"),
        ("touched.txt", "--skip-worktree", "touched")]
    assert git(repo, "status", "--porcelain", env=env) == ""  # what git itself shows of them


@pytest.mark.parametrize("flag", FLAGS)
def test_a_flagged_file_only_touched_is_refused_before_the_reapply_stops_on_it(applied_world, flag):
    """Same content, a new mtime: git's read-tree would refuse the file ("not uptodate") after the
    re-apply's journal; the refusal comes first, with the way out."""
    import os

    world = applied_world
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    patch.write_text(patch.read_text().replace("+// -Z autodiff", "+// -Z autodiff (changed)"))
    world.git("update-index", flag, "--", OPTIONS)
    later = (world.checkout / OPTIONS).stat().st_mtime + 5
    os.utime(world.checkout / OPTIONS, (later, later))
    before = snapshot(world)
    res = world.run("apply", "--no-config")
    assert res.returncode == 5, res.stderr
    assert f"{OPTIONS} is marked {flag} and was touched since git last read it (its content is unchanged)" \
        in res.stderr and f"run git update-index --no-{flag[2:]} -- {OPTIONS} (nothing was changed)" in res.stderr
    assert snapshot(world) == before
    world.git("update-index", f"--no-{flag[2:]}", "--", OPTIONS)
    assert world.run("apply", "--no-config").returncode == 0
    assert (world.checkout / OPTIONS).read_text().endswith("// -Z autodiff (changed)\n")
