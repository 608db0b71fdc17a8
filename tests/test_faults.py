"""Kills at every phase, stale lock files, two commands at once: the matching --abort (or
--continue) restores exactly, and nothing is ever half done.

PATCHMGR_TEST_FAULT=<phase> makes patchmgr SIGKILL itself when it reaches the phase
(patchmgr/faults.py); each phase name below is one such place in the code.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixture import git, snapshot

SET = "autodiff-1.63.0"
LLVM = "src/llvm-project"


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def killed_at(world, phase, *args):
    res = world.run(*args, env_extra={"PATCHMGR_TEST_FAULT": phase})
    assert res.returncode == -9, f"phase {phase} was not reached: {res.returncode} {res.stderr}"
    return res


def pre_applypatch_hook(world, script: str) -> Path:
    """A superproject hook that git am runs after applying each patch, before committing it."""
    git_dir = Path(world.git("rev-parse", "--absolute-git-dir").strip())
    hook = git_dir / "hooks" / "pre-applypatch"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\n" + script)
    hook.chmod(stat.S_IRWXU)
    return hook


def one_error_line(res, code, pattern):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, res.stderr
    assert lines[-1].startswith("patchmgr: error: ") and pattern in lines[-1], res.stderr
    assert "Traceback" not in res.stderr


#: the steps that make the Enzyme submodule (engine._make_enzyme): journal written (a kept clone to move
#: aside named), git dir cloned, work tree checked out,
#: .gitmodules written (not yet staged), registered
ENZYME_PHASES = ["apply:enzyme:started", "apply:enzyme:cloned", "apply:enzyme:checked-out", "apply:enzyme:gitmodules-written",
                 "apply:enzyme:registered"]
APPLY_PHASES = ["apply:journal", f"branch-created:{LLVM}", f"apply:am:{LLVM}", *ENZYME_PHASES, "branch-created:.",
                "apply:am:.", "apply:enzyme-cloned", "apply:gitlink-staged", "apply:recorded"]


@pytest.mark.parametrize("phase", APPLY_PHASES)
def test_apply_killed_then_abort_restores_exactly(fast_world, phase):
    world = fast_world
    before = snapshot(world)
    killed_at(world, phase, "apply")
    one_error_line(world.run("apply"), 7, "an apply of set autodiff-1.63.0 is in progress")
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before
    assert not (world.checkout / ".git" / "patchmgr").exists()


@pytest.mark.parametrize("phase", APPLY_PHASES[1:])
def test_apply_killed_then_continue_completes(fast_world, world_template, phase):
    world = fast_world
    killed_at(world, phase, "apply")
    ok(world.run("apply", "--continue"))
    data = ok(world.run("status", "--json")).stdout
    assert '"state": "applied"' in data
    ok(world.run("unapply"))


UNAPPLY_PHASES = ["unapply:journal", f"unapply:checkout:{LLVM}", "unapply:checkout:.", "unapply:enzyme"]


@pytest.mark.parametrize("phase", UNAPPLY_PHASES)
def test_unapply_killed_then_abort_or_continue(fast_world, phase):
    world = fast_world
    before = snapshot(world)
    ok(world.run("apply", "--no-config"))
    applied = snapshot(world)
    killed_at(world, phase, "unapply")
    one_error_line(world.run("apply"), 7, "an unapply of set autodiff-1.63.0 is in progress; "
                                          "run patchmgr unapply --continue or --abort")
    ok(world.run("unapply", "--abort"))
    assert snapshot(world) == applied
    killed_at(world, phase, "unapply")
    ok(world.run("unapply", "--continue"))
    assert snapshot(world) == before


def test_unapply_abort_refuses_to_discard_a_change_made_after_the_kill(fast_world):
    """Issue 25, class 1: a file the unapply never writes, edited after it was killed, is not reset
    by --abort; put back, the abort is exact."""
    world = fast_world
    ok(world.run("apply", "--no-config"))
    applied = snapshot(world)
    killed_at(world, "unapply:checkout:.", "unapply")
    passes = world.checkout / LLVM / "llvm/lib/Passes/PassBuilder.cpp"
    original = passes.read_text()
    passes.write_text(original + "// mine\n")
    stopped = snapshot(world)
    one_error_line(world.run("unapply", "--abort"), 5, f"{LLVM}/llvm/lib/Passes/PassBuilder.cpp was changed after "
                                                       "the unapply began, where it writes nothing")
    assert snapshot(world) == stopped
    passes.write_text(original)
    ok(world.run("unapply", "--abort"))
    assert snapshot(world) == applied


REBASE_PHASES = ["rebase:journal", f"rebase:carried:{LLVM}", "rebase:carried:.", "rebase:manifest-written",
                 "rebase:set-written", f"rebase:retagged:{LLVM}", "rebase:final", *ENZYME_PHASES, "apply:enzyme-cloned",
                 "apply:gitlink-staged", "apply:recorded"]


def _new_upstream(world) -> str:
    """A new upstream commit, 1.64.0, on top of the base; returns its id, known to the checkout."""
    work = world.tmp / "upstream-work"
    git(world.tmp, "clone", "-q", str(world.upstream), str(work), env=world.env)
    (work / "README.md").write_text("rust 1.64\n")
    (work / "src").mkdir(exist_ok=True)
    (work / "src" / "version").write_text("1.64.0\n")
    git(work, "add", "-A", env=world.env)
    git(work, "commit", "-q", "-m", "Rust 1.64.0", env=world.env)
    world.git("fetch", "-q", str(work), "HEAD:refs/tags/next")
    return world.git("rev-parse", "next").strip()


def _patches_bytes(world) -> dict:
    return {str(p.relative_to(world.patches)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(world.patches.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("phase", REBASE_PHASES)
def test_rebase_killed_then_abort_restores_tree_and_series(fast_world, phase):
    world = fast_world
    _new_upstream(world)
    before, series = snapshot(world), _patches_bytes(world)
    killed_at(world, phase, "rebase", "--onto", "next", "--no-config")
    one_error_line(world.run("apply", "--abort"), 7, "a rebase of set autodiff-1.64.0 is in progress, not an apply")
    ok(world.run("rebase", "--abort"))
    assert snapshot(world) == before
    assert _patches_bytes(world) == series
    # and the same rebase, killed there again, completes with --continue
    killed_at(world, phase, "rebase", "--onto", "next", "--no-config")
    ok(world.run("rebase", "--continue", "--no-config"))
    status = ok(world.run("status", "--json")).stdout
    assert '"set": "autodiff-1.64.0"' in status and '"state": "applied"' in status


NEW_SET = "autodiff-1.64.0"
SET_WRITING = ["rebase:manifest-written", "rebase:set-written", "rebase:final"]


@pytest.mark.parametrize("phase", SET_WRITING)
def test_rebase_abort_after_a_kill_keeps_the_users_files_and_manifest_edits(fast_world, phase):
    """Issue 25, class 1: what the user added under the new set's directory and to the manifest
    after the kill stays; only what the rebase wrote is taken back."""
    world = fast_world
    _new_upstream(world)
    manifest = world.patches / "series.toml"
    before, series, text = snapshot(world), _patches_bytes(world), manifest.read_text()
    killed_at(world, phase, "rebase", "--onto", "next", "--no-config")
    new_dir = world.patches / NEW_SET / "rust"
    assert list(new_dir.glob("*.patch"))  # the rebase wrote there
    (new_dir / "notes.md").write_text("what I found while it was stopped\n")
    manifest.write_text(manifest.read_text() + "# reviewed the new set\n")
    ok(world.run("rebase", "--abort"))
    assert snapshot(world) == before
    assert manifest.read_text() == text + "# reviewed the new set\n"
    assert (new_dir / "notes.md").read_text() == "what I found while it was stopped\n"
    assert sorted(p.name for p in (world.patches / NEW_SET).rglob("*")) == ["notes.md", "rust"]
    after = _patches_bytes(world)
    assert {k: v for k, v in after.items() if k not in ("series.toml", f"{NEW_SET}/rust/notes.md")} == \
        {k: v for k, v in series.items() if k != "series.toml"}


def test_rebase_abort_refuses_while_a_file_the_rebase_wrote_was_changed(fast_world):
    """A patch file of the new set or its manifest entry edited after the kill: --abort refuses
    naming it, before any change; once it is moved away or put back, the abort is exact."""
    world = fast_world
    _new_upstream(world)
    manifest = world.patches / "series.toml"
    before, series = snapshot(world), _patches_bytes(world)
    killed_at(world, "rebase:set-written", "rebase", "--onto", "next", "--no-config")
    patch = sorted((world.patches / NEW_SET / "rust").glob("*.patch"))[0]
    patch.write_text(patch.read_text() + "my edit of the new patch\n")
    stopped, files = snapshot(world), _patches_bytes(world)
    one_error_line(world.run("rebase", "--abort"), 5, f"{patch} was changed since the rebase to {NEW_SET} wrote it")
    assert snapshot(world) == stopped and _patches_bytes(world) == files
    patch.rename(world.tmp / patch.name)  # moved away: the abort goes on

    written = manifest.read_text()
    assert written.count('rustc = "1.64.0"') == 1
    manifest.write_text(written.replace('rustc = "1.64.0"', 'rustc = "1.64.1"'))
    stopped, files = snapshot(world), _patches_bytes(world)
    one_error_line(world.run("rebase", "--abort"), 5, f"{manifest}: the entry of set {NEW_SET} was changed since "
                                                      f"the rebase to {NEW_SET} wrote it")
    assert snapshot(world) == stopped and _patches_bytes(world) == files
    manifest.write_text(written)
    ok(world.run("rebase", "--abort"))
    assert snapshot(world) == before and _patches_bytes(world) == series


@pytest.mark.parametrize("phase, made", [("rebase:carried:.", "patchmgr-carry-"),
                                         ("export:rendered", "patchmgr-export-")])
def test_scratch_directories_of_a_killed_run_are_removed_by_the_next_one(fast_world, phase, made):
    """Issue 25, class 8: a kill leaves its scratch directory in TMPDIR; the next command that makes
    one removes it, but never one a live process holds, nor one kept with check --keep."""
    world = fast_world
    tmp = world.tmp / "tmpdir"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    if phase.startswith("rebase"):
        _new_upstream(world)
        args, undo = ["rebase", "--onto", "next", "--no-config"], ["rebase", "--abort"]
    else:
        ok(world.run("apply", "--no-config"))
        (world.checkout / "README.md").write_text("rust, with a new patch\n")
        world.git("commit", "-qam", "docs: a new patch")
        args, undo = ["export"], ["export"]
    res = world.run(*args, env_extra={**env, "PATCHMGR_TEST_FAULT": phase})
    assert res.returncode == -9, res.stderr
    left = [p.name for p in tmp.iterdir()]
    assert len(left) == 1 and left[0].startswith(made), left
    ok(world.run(*undo, env_extra=env))

    live = tmp / "patchmgr-check-live"  # another process's, running: this test holds its owner record
    live.mkdir()
    with open(live / ".patchmgr-owner", "w") as owner:
        fcntl.flock(owner, fcntl.LOCK_EX)
        owner.write(f"{os.getpid()} check\n")
        owner.flush()
        ok(world.run("check", "--keep", env_extra=env))
        kept = [p for p in tmp.iterdir() if p != live]
        assert len(kept) == 1 and kept[0].name.startswith("patchmgr-check-"), kept
        ok(world.run("check", env_extra=env))
        assert sorted(tmp.iterdir()) == sorted([live, kept[0]])
    ok(world.run("check", env_extra=env))  # its lock released, as when its process ends: removed
    assert list(tmp.iterdir()) == [kept[0]]


def test_a_git_that_outlives_its_killed_patchmgr_keeps_the_scratch_directory(fast_world):
    """Issue 25, class 8: the git commands patchmgr runs inherit the owner record's lock, so a git am
    still running in a scratch clone after its patchmgr was killed keeps the directory until it ends.
    The git am is the in-place apply's, which makes the edited patch's commits in a scratch clone."""
    world = fast_world
    ok(world.run("apply", "--no-config"))
    patch = sorted((world.patches / SET / "rust").iterdir())[1]
    patch.write_text(patch.read_text().replace("+// -Z autodiff", "+// -Z autodiff (changed)"))
    tmp, templates, release = world.tmp / "tmpdir", world.tmp / "templates", world.tmp / "release"
    tmp.mkdir()
    hook = templates / "hooks" / "pre-applypatch"  # copied into every clone: runs inside the scratch clone's git am
    hook.parent.mkdir(parents=True)
    hook.write_text(f'#!/bin/sh\nif mkdir "{world.tmp}/killed" 2>/dev/null; then\n'
                    "  kill -9 $(awk '{print $4}' /proc/$PPID/stat)\n"  # patchmgr, git am's parent
                    f'  while [ ! -e "{release}" ]; do sleep 0.05; done\nfi\n')
    hook.chmod(stat.S_IRWXU)
    config = world.tmp / "gitconfig"
    config.write_bytes(Path(world.env["GIT_CONFIG_GLOBAL"]).read_bytes())
    git(world.tmp, "config", "--file", str(config), "init.templateDir", str(templates), env=world.env)
    env = {"TMPDIR": str(tmp), "GIT_CONFIG_GLOBAL": str(config)}
    res = world.run("apply", "--no-config", env_extra=env)
    assert res.returncode == -9, res.stderr
    left = list(tmp.iterdir())
    assert len(left) == 1 and left[0].name.startswith("patchmgr-reapply-"), left
    try:
        ok(world.run("check", env_extra={"TMPDIR": str(tmp)}))  # the orphaned git am still runs there
        assert left[0] in list(tmp.iterdir())
    finally:
        release.touch()
    deadline = time.time() + 30
    while True:  # the git am finishes, and with it the last holder of the lock
        ok(world.run("check", env_extra={"TMPDIR": str(tmp)}))
        if not tmp.exists() or not list(tmp.iterdir()):
            break
        assert time.time() < deadline, list(tmp.iterdir())
        time.sleep(0.2)


@pytest.mark.parametrize("phase", ["export:file-written", "export:files-written"])
def test_export_killed_then_again_gives_the_same_files(fast_world, phase):
    world = fast_world
    ok(world.run("apply", "--no-config"))
    # a new commit on the patch branch, so export has files to write
    (world.checkout / "README.md").write_text("rust, with a new patch\n")
    world.git("commit", "-qam", "docs: a new patch")
    killed_at(world, phase, "export")
    ok(world.run("export"))
    interrupted = _patches_bytes(world)
    ok(world.run("export"))
    assert _patches_bytes(world) == interrupted
    assert not list(world.patches.rglob("*.tmp"))
    assert any(name.endswith("docs-a-new-patch.patch") for name in interrupted)


def test_stale_git_locks_after_a_kill_do_not_stop_abort(fast_world):
    world = fast_world
    before = snapshot(world)
    killed_at(world, "apply:am:.", "apply")
    for repo in (".", LLVM):
        git_dir = world.git("rev-parse", "--absolute-git-dir", repo=repo).strip()
        for name in ("index.lock", "packed-refs.lock", "REBASE_HEAD.lock", "HEAD.lock",
                     "refs/heads/patchmgr/autodiff-1.63.0.lock"):
            path = os.path.join(git_dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()
    res = ok(world.run("apply", "--abort"))
    assert "removed the stale" in res.stderr
    assert snapshot(world) == before


def test_killed_inside_git_am_leaves_no_file_behind(fast_world):
    """git am killed after writing a new file, before updating the index: abort removes the file."""
    world = fast_world
    before = snapshot(world)
    # the second superproject patch's new file written, not yet in the index
    hook = pre_applypatch_hook(world, 'if [ -e compiler/rustc_codegen_ssa/src/traits/autodiff.rs ]; then\n'
                                      '  git rm -q --cached compiler/rustc_codegen_ssa/src/traits/autodiff.rs\n'
                                      '  gp=$(awk \'{print $4}\' /proc/$PPID/stat); kill -9 "$gp" "$PPID"\nfi\n')
    res = world.run("apply")
    assert res.returncode == -9, res.stderr
    hook.unlink()
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before


def test_a_second_command_is_refused_while_one_runs(fast_world):
    world = fast_world
    before = snapshot(world)
    started, release = world.tmp / "started", world.tmp / "release"
    hook = pre_applypatch_hook(world, f'touch "{started}"\nwhile [ ! -e "{release}" ]; do sleep 0.05; done\n')
    env = dict(world.env)
    first = subprocess.Popen([sys.executable, "-m", "patchmgr", "--patches", str(world.patches), "apply", "--no-config"],
                             cwd=world.checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not started.exists():
            assert time.time() < deadline and first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.05)
        for args in (["apply"], ["unapply"], ["apply", "--abort"], ["rebase", "--abort"], ["export"]):
            second = world.run(*args)
            one_error_line(second, 13, f"another patchmgr is running on this checkout (pid and command: {first.pid} ")
        status = world.run("status")  # reading is allowed
        assert status.returncode == 0, status.stderr
    finally:
        release.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    hook.unlink()
    ok(world.run("unapply"))
    assert snapshot(world) == before


def test_a_lock_left_by_a_dead_patchmgr_is_taken_over(fast_world):
    world = fast_world
    lock = world.checkout / ".git" / "patchmgr.lock"
    lock.write_text("999999 apply\n")  # no process holds it
    res = ok(world.run("apply", "--no-config"))
    assert "took over the lock left by a patchmgr that is no longer running (999999 apply)" in res.stderr
    assert not lock.exists()


def test_killed_patchmgr_whose_git_still_runs_keeps_the_checkout(fast_world):
    """The lock is inherited by git: a git am that outlives its killed patchmgr still holds it."""
    world = fast_world
    before = snapshot(world)
    started, release = world.tmp / "started", world.tmp / "release"
    # once: kill patchmgr, then keep git am running until released
    hook = pre_applypatch_hook(world, f'if [ ! -e "{started}" ]; then\n  gp=$(awk \'{{print $4}}\' /proc/$PPID/stat)\n'
                                      f'  kill -9 "$gp"\n  touch "{started}"\n'
                                      f'  while [ ! -e "{release}" ]; do sleep 0.05; done\nfi\n')
    first = world.run("apply", "--no-config")
    assert first.returncode == -9
    try:
        one_error_line(world.run("apply", "--abort"), 13, "another patchmgr is running on this checkout")
    finally:
        release.touch()
    deadline = time.time() + 60
    while (res := world.run("apply", "--abort")).returncode == 13:
        assert time.time() < deadline
        time.sleep(0.1)
    assert res.returncode == 0, res.stderr
    hook.unlink()
    assert snapshot(world) == before


def test_abort_refuses_while_the_cloned_enzyme_holds_the_users_files(fast_world):
    world = fast_world
    before = snapshot(world)
    killed_at(world, "apply:am:.", "apply")  # Enzyme is cloned by then
    notes = world.checkout / LLVM / "enzyme" / "my-notes.txt"
    notes.write_text("written while the apply was stopped\n")
    stopped = snapshot(world)
    one_error_line(world.run("apply", "--abort"), 5, "src/llvm-project/enzyme holds files that are not in "
                                                     "Enzyme's commit (my-notes.txt)")
    assert snapshot(world) == stopped
    notes.unlink()
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before


ENZYME_GIT_DIR = ".git/modules/src/llvm-project/modules/enzyme"


def kill_inside_the_enzyme_clone(world, during: str = "clone", hooks: Path | None = None) -> dict:
    """Environment for a patchmgr whose git in the Enzyme clone is killed, with patchmgr, as a kill of the
    process group would: `during` the clone, while it writes its first ref (objects in, no commit checked
    out), or the checkout of the pin, while it moves HEAD (files written, HEAD.lock taken). The hook goes
    into a template only new clones get, or into `hooks` (a kept clone's)."""
    hook = (hooks or world.tmp / "template" / "hooks") / "reference-transaction"
    hook.parent.mkdir(parents=True, exist_ok=True)
    only = '[ "$ref" = HEAD ] && [ -e enzyme/CMakeLists.txt ] || exit 0\n'  # run in the work tree, checked out
    hook.write_text('#!/bin/sh\ncase "$(git rev-parse --absolute-git-dir)" in */modules/enzyme) ;; *) exit 0 ;; esac\n'
                    '[ "$1" = prepared ] || exit 0\nread old new ref\n' + (only if during == "checkout" else "") +
                    'pid=$PPID; all=""\nwhile [ "$pid" -gt 1 ]; do\n  all="$all $pid"\n'
                    '  case "$(tr "\\0" " " < /proc/$pid/cmdline)" in *patchmgr*) break ;; esac\n'
                    '  pid=$(awk \'{print $4}\' /proc/$pid/stat)\ndone\nkill -9 $all\n')
    hook.chmod(stat.S_IRWXU)
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "init.templateDir", "GIT_CONFIG_VALUE_0": str(hook.parent.parent)}


def half_made_enzyme(world, how: str, *command: str) -> None:
    """apply killed inside git clone of Enzyme (objects in, no commit checked out); with `no-git-dir`, as a
    kill a moment earlier leaves it: git clone wrote the work tree's .git file, not yet the git dir it names."""
    res = world.run(*(command or ["apply"]), env_extra=kill_inside_the_enzyme_clone(world))
    assert res.returncode == -9, res.stderr
    assert (world.checkout / LLVM / "enzyme" / ".git").is_file()
    assert git(world.checkout / ENZYME_GIT_DIR, "rev-parse", "--verify", "-q", "HEAD", env=world.env, check=False) == ""
    if how == "no-git-dir":
        shutil.rmtree(world.checkout / ENZYME_GIT_DIR)


def test_a_half_made_enzyme_clone_is_undone_by_abort(fast_world):
    world = fast_world
    before = snapshot(world)
    half_made_enzyme(world, "no-git-dir")
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before
    assert not (world.checkout / ENZYME_GIT_DIR).exists() and not (world.checkout / LLVM / "enzyme").exists()


@pytest.mark.parametrize("how", ["inside-clone", "no-git-dir"])
def test_a_half_made_enzyme_clone_is_made_again_by_continue(fast_world, how):
    world = fast_world
    before = snapshot(world)
    half_made_enzyme(world, how)
    res = ok(world.run("apply", "--continue"))
    assert "removed the Enzyme clone the interrupted run left half made" in res.stderr
    data = json.loads(ok(world.run("status", "--json")).stdout)
    assert data["state"] == "applied" and data["enzyme"]["in_place"]
    assert world.git("config", "--file", ".gitmodules", "submodule.enzyme.path", repo=LLVM).strip() == "enzyme"
    assert world.git("submodule", "status", "--", "enzyme", repo=LLVM).split()[1] == "enzyme"
    ok(world.run("unapply"))
    assert snapshot(world) == before



def test_a_rebase_killed_inside_the_enzyme_clone_aborts_and_continues(fast_world):
    world = fast_world
    _new_upstream(world)
    before, series = snapshot(world), _patches_bytes(world)
    half_made_enzyme(world, "no-git-dir", "rebase", "--onto", "next", "--no-config")
    ok(world.run("rebase", "--abort"))
    assert snapshot(world) == before and _patches_bytes(world) == series
    half_made_enzyme(world, "inside-clone", "rebase", "--onto", "next", "--no-config")
    ok(world.run("rebase", "--continue", "--no-config"))
    data = json.loads(ok(world.run("status", "--json")).stdout)
    assert data["set"] == "autodiff-1.64.0" and data["state"] == "applied" and data["enzyme"]["in_place"]


def test_a_kill_inside_the_checkout_of_enzyme_is_finished_by_continue(fast_world):
    """git checkout of the pin killed with the run while it moves HEAD: its HEAD.lock goes, the checkout is made again."""
    world = fast_world
    before = snapshot(world)
    res = world.run("apply", env_extra=kill_inside_the_enzyme_clone(world, "checkout"))
    assert res.returncode == -9, res.stderr
    assert (world.checkout / ENZYME_GIT_DIR / "HEAD.lock").exists()
    (world.checkout / ENZYME_GIT_DIR / "hooks" / "reference-transaction").unlink()  # the template's, not to fire again
    res = ok(world.run("apply", "--continue"))
    assert "removed the stale" in res.stderr and "HEAD.lock" in res.stderr
    data = json.loads(ok(world.run("status", "--json")).stdout)
    assert data["state"] == "applied" and data["enzyme"]["in_place"]
    ok(world.run("unapply"))
    assert snapshot(world) == before


def test_a_kill_inside_the_checkout_of_a_kept_clone_leaves_it_usable(fast_world):
    """The same kill in the clone an earlier apply kept: --abort takes the lock out of it, the next apply uses it."""
    world = fast_world
    ok(world.run("apply", "--no-config"))
    ok(world.run("unapply"))
    before = snapshot(world)
    kill_inside_the_enzyme_clone(world, "checkout", hooks=world.checkout / ENZYME_GIT_DIR / "hooks")
    res = world.run("apply")
    assert res.returncode == -9, res.stderr
    assert (world.checkout / ENZYME_GIT_DIR / "HEAD.lock").exists()
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before
    assert not list((world.checkout / ENZYME_GIT_DIR).glob("*.lock"))
    (world.checkout / ENZYME_GIT_DIR / "hooks" / "reference-transaction").unlink()
    res = ok(world.run("apply", "--no-config"))
    assert "is unusable" not in res.stderr
    assert json.loads(ok(world.run("status", "--json")).stdout)["state"] == "applied"


def test_rebase_abort_on_a_crlf_manifest_keeps_its_bytes_and_the_users_edit(fast_world):
    """A CRLF manifest: the rebase writes the new set's entry with the file's own line endings, so
    an abort after it was written takes out only that entry, keeping what the user added since."""
    world = fast_world
    _new_upstream(world)
    manifest = world.patches / "series.toml"
    manifest.write_bytes(manifest.read_bytes().replace(b"\n", b"\r\n"))
    original = manifest.read_bytes()
    killed_at(world, "rebase:manifest-written", "rebase", "--onto", "next", "--no-config")
    written = manifest.read_bytes()
    assert written != original and b"\n" not in written.replace(b"\r\n", b"")  # its line endings kept
    manifest.write_bytes(written + b"# reviewed\r\n")
    ok(world.run("rebase", "--abort"))
    assert manifest.read_bytes() == original + b"# reviewed\r\n"
