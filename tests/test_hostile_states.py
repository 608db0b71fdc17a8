"""Hostile tree states: every command that changes repositories refuses before any change.

Each case puts a real checkout into a state a user (or a killed git) can leave it
in: a git operation stopped in one of the repositories, Enzyme included, a lock
file, an untracked file where a patch writes, uncommitted work. The command must
exit with its code, print exactly one `patchmgr: error:` line that names the
repository or file, no traceback, and leave the snapshot (refs, HEADs, index,
status with ignored files, every byte, each git dir's operation files and locks,
the upstreams and a canary outside) exactly as it was.
"""

from __future__ import annotations

import os
import re

import pytest
from fixture import git, snapshot, write

LLVM = "src/llvm-project"
ENZYME = "src/llvm-project/enzyme"
NEW_FILE = "compiler/rustc_codegen_ssa/src/traits/autodiff.rs"  # a file the second patch creates


def _git(world, repo, *args, check=True, env=None):
    return git(world.checkout / repo, *args, env=dict(world.env, **(env or {})), check=check)


def _first_file(world, repo) -> str:
    entries = [line.split("\t") for line in _git(world, repo, "ls-files", "-s").splitlines()]
    return next(name for meta, name in entries if meta.startswith("100644") and not name.startswith("."))


def stopped_am(repo):
    def setup(world):
        name = _first_file(world, repo)
        mail = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
                "From: User <user@example.invalid>\nDate: Mon, 8 Aug 2022 12:00:00 +0000\nSubject: [PATCH] mine\n\n"
                f"---\ndiff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n@@ -1 +1 @@\n-not there\n+mine\n")
        mbox = world.tmp / "mine.mbox"
        mbox.write_text(mail)
        _git(world, repo, "am", str(mbox), check=False)
    return setup


def stopped_rebase(repo):
    def setup(world):
        _git(world, repo, "rebase", "-i", "--root", env={"GIT_SEQUENCE_EDITOR": "sed -i 1s/^pick/edit/"})
    return setup


def _side_branches(world, repo):
    """side-base: one commit changing the first file; side: one more on top of it. HEAD unchanged."""
    name = _first_file(world, repo)
    head = _git(world, repo, "rev-parse", "HEAD").strip()
    _git(world, repo, "checkout", "-q", "-b", "side-base")
    write(world.checkout / repo / name, "b\n")
    _git(world, repo, "commit", "-qam", "b")
    _git(world, repo, "checkout", "-q", "-b", "side")
    write(world.checkout / repo / name, "c\n")
    _git(world, repo, "commit", "-qam", "c")
    _git(world, repo, "checkout", "-q", "--detach", head)
    if _git(world, repo, "branch", "--list", "main").strip():
        _git(world, repo, "checkout", "-q", "main")


def stopped_merge(repo):
    def setup(world):
        _side_branches(world, repo)
        _git(world, repo, "merge", "--no-commit", "--no-ff", "side-base", check=False)
    return setup


def stopped_cherry_pick(repo):
    def setup(world):
        _side_branches(world, repo)
        _git(world, repo, "cherry-pick", "side", check=False)
    return setup


def stopped_revert(repo):
    def setup(world):
        _side_branches(world, repo)
        _git(world, repo, "revert", "--no-edit", "side", check=False)
    return setup


def stopped_sequence(repo):
    def setup(world):
        _side_branches(world, repo)
        _git(world, repo, "cherry-pick", "side", "side-base", check=False)  # the first conflicts
    return setup


def bisecting(repo):
    def setup(world):
        _git(world, repo, "bisect", "start")
    return setup


def lock_file(repo, name):
    def setup(world):
        git_dir = _git(world, repo, "rev-parse", "--absolute-git-dir").strip()
        path = os.path.join(git_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    return setup


def untracked_new_file(world):
    write(world.checkout / NEW_FILE, "my own notes\n")


def ignored_new_file(world):
    write(world.checkout / NEW_FILE, "my own notes\n")
    write(world.checkout / ".git" / "info" / "exclude", "autodiff.rs\n")


def untracked_dir_at_new_file(world):
    write(world.checkout / NEW_FILE / "inner.txt", "a directory where the patch puts a file\n")


def modified(repo):
    def setup(world):
        path = world.checkout / repo / _first_file(world, repo)
        path.write_text(path.read_text() + "work in progress\n")
    return setup


def staged(repo):
    def setup(world):
        write(world.checkout / repo / "new-work.txt", "staged\n")
        _git(world, repo, "add", "new-work.txt")
    return setup


def deleted(repo):
    def setup(world):
        (world.checkout / repo / _first_file(world, repo)).unlink()
    return setup


def branch_taken(repo):
    def setup(world):
        _git(world, repo, "branch", "patchmgr/autodiff-1.63.0")
    return setup


def enzyme_path_is_a_file(world):
    write(world.checkout / ENZYME, "not a directory\n")


def enzyme_path_is_occupied(world):
    write(world.checkout / ENZYME / "mine.txt", "someone else's directory\n")


def untracked_gitmodules_in_llvm(world):
    write(world.checkout / LLVM / ".gitmodules", "# my notes on submodules, not committed\n")


def enzyme_path_is_a_symlink(world):
    (world.tmp / "outside" / "enzyme").mkdir(parents=True)
    os.symlink(world.tmp / "outside" / "enzyme", world.checkout / ENZYME)


OPS = [("git am", stopped_am), ("git rebase", stopped_rebase), ("git merge", stopped_merge),
       ("git cherry-pick", stopped_cherry_pick), ("git revert", stopped_revert), ("git bisect", bisecting)]
LOCKS = ["index.lock", "HEAD.lock", "packed-refs.lock", "config.lock", "refs/heads/main.lock"]

# (id, setup, exit code, what the one error line says)
UNAPPLIED_STATES = (
    [(f"{what} stopped in {repo}", make(repo), 7, rf"{what}.* is in progress in {re.escape(repo)}")
     for repo in (".", LLVM) for what, make in OPS]
    + [("cherry-pick sequence stopped in .", stopped_sequence("."), 7, r"is in progress in \.")]
    + [(f"{name} in {repo}", lock_file(repo, name), 7, rf"{re.escape(name)} exists: a git command is running in {re.escape(repo)}")
       for repo in (".", LLVM) for name in LOCKS]
    + [("untracked file where a patch writes", untracked_new_file, 7, rf"untracked file {NEW_FILE} is in the way"),
       ("ignored file where a patch writes", ignored_new_file, 7, rf"untracked file {NEW_FILE} is in the way"),
       ("directory where a patch writes a file", untracked_dir_at_new_file, 7, r"is in the way of patch"),
       ("modified file in .", modified("."), 5, r"uncommitted changes to tracked files: "),
       ("modified file in llvm", modified(LLVM), 5, r"uncommitted changes to tracked files: src/llvm-project/"),
       ("staged file in .", staged("."), 5, r"uncommitted changes to tracked files: new-work\.txt"),
       ("staged file in llvm", staged(LLVM), 5, r"src/llvm-project/new-work\.txt"),
       ("deleted file in .", deleted("."), 5, r"uncommitted changes to tracked files"),
       ("deleted file in llvm", deleted(LLVM), 5, r"uncommitted changes to tracked files: src/llvm-project/")])
APPLY_ONLY_STATES = [
    ("patch branch taken in .", branch_taken("."), 7, r"branch patchmgr/autodiff-1\.63\.0 already exists in \."),
    ("patch branch taken in llvm", branch_taken(LLVM), 7, r"already exists in src/llvm-project"),
    ("enzyme path is a file", enzyme_path_is_a_file, 7, r"src/llvm-project/enzyme exists and is not the Enzyme submodule"),
    ("enzyme path is occupied", enzyme_path_is_occupied, 7, r"exists and is not the Enzyme submodule"),
    ("untracked .gitmodules where apply registers Enzyme", untracked_gitmodules_in_llvm, 7,
     r"untracked file src/llvm-project/\.gitmodules is in the way of the Enzyme submodule"),
    ("enzyme path is a symlink", enzyme_path_is_a_symlink, 3, r"enzyme\.path' path 'src/llvm-project/enzyme' leads outside the checkout through a symlink"),
]


def _refused(world, args, code, pattern):
    before = snapshot(world)
    had_state = (world.checkout / ".git" / "patchmgr").exists()
    res = world.run(*args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, res.stderr
    assert len(lines) == 1 and lines[0].startswith("patchmgr: error: "), res.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in res.stderr
    assert snapshot(world) == before
    assert (world.checkout / ".git" / "patchmgr").exists() == had_state
    assert not (world.checkout / ".git" / "patchmgr.lock").exists()


@pytest.mark.parametrize("name,setup,code,pattern", UNAPPLIED_STATES + APPLY_ONLY_STATES,
                         ids=[c[0] for c in UNAPPLIED_STATES + APPLY_ONLY_STATES])
def test_apply_refuses(fast_world, name, setup, code, pattern):
    setup(fast_world)
    _refused(fast_world, ["apply"], code, pattern)


@pytest.mark.parametrize("name,setup,code,pattern", UNAPPLIED_STATES, ids=[c[0] for c in UNAPPLIED_STATES])
def test_rebase_refuses(fast_world, name, setup, code, pattern):
    setup(fast_world)
    _refused(fast_world, ["rebase", "--onto", "HEAD"], code, pattern)


def enzyme_edit(world):
    path = world.checkout / ENZYME / "enzyme" / "CMakeLists.txt"
    path.write_text(path.read_text() + "# my change\n")


def enzyme_untracked(world):
    write(world.checkout / ENZYME / "enzyme" / "build-notes.txt", "mine\n")


def enzyme_ignored(world):
    write(world.checkout / ENZYME / "enzyme" / "build" / "CMakeCache.txt", "a build\n")
    enzyme_git = _git(world, ENZYME, "rev-parse", "--absolute-git-dir").strip()
    with open(os.path.join(enzyme_git, "info", "exclude"), "a") as f:
        f.write("build/\n")


def enzyme_moved(world):
    _git(world, ENZYME, "checkout", "-q", "--detach", "HEAD~0")
    write(world.checkout / ENZYME / "enzyme" / "mine.txt", "x\n")
    _git(world, ENZYME, "add", "enzyme/mine.txt")
    _git(world, ENZYME, "commit", "-qm", "my Enzyme commit")


APPLIED_STATES = (
    [(f"{what} stopped in {repo}", make(repo), 7, rf"{what}.* is in progress in {re.escape(repo)}")
     for repo in (".", LLVM, ENZYME) for what, make in OPS[:4] + OPS[5:]]
    + [(f"{name} in {repo}", lock_file(repo, name), 7, rf"{re.escape(name)} exists: a git command is running in {re.escape(repo)}")
       for repo in (".", LLVM, ENZYME) for name in ("index.lock", "HEAD.lock", "packed-refs.lock")]
    + [("tracked edit in Enzyme", enzyme_edit, 5, r"uncommitted changes to tracked files: src/llvm-project/enzyme/enzyme/CMakeLists\.txt"),
       ("modified file in llvm (applied)", modified(LLVM), 5, r"uncommitted changes to tracked files: src/llvm-project/"),
       ("Enzyme at another commit", enzyme_moved, 5, r"src/llvm-project/enzyme \(checked out at another commit than recorded\)")])
UNAPPLY_ONLY_STATES = [
    ("untracked file in Enzyme", enzyme_untracked, 5, r"src/llvm-project/enzyme holds files that are not in Enzyme's commit \(enzyme/build-notes\.txt\)"),
    ("ignored build in Enzyme", enzyme_ignored, 5, r"holds files that are not in Enzyme's commit \(enzyme/build/CMakeCache\.txt\)"),
]


@pytest.mark.parametrize("name,setup,code,pattern", APPLIED_STATES + UNAPPLY_ONLY_STATES,
                         ids=[c[0] for c in APPLIED_STATES + UNAPPLY_ONLY_STATES])
def test_unapply_refuses(applied_world, name, setup, code, pattern):
    setup(applied_world)
    _refused(applied_world, ["unapply"], code, pattern)


@pytest.mark.parametrize("name,setup,code,pattern", APPLIED_STATES, ids=[c[0] for c in APPLIED_STATES])
def test_apply_on_an_applied_tree_refuses(applied_world, name, setup, code, pattern):
    setup(applied_world)
    _refused(applied_world, ["apply", "--no-config"], code, pattern)


@pytest.mark.parametrize("command,mode", [(c, m) for c in ("apply", "rebase") for m in ("--continue", "--skip", "--abort")]
                         + [("unapply", "--continue"), ("unapply", "--abort")])
def test_nothing_in_progress(fast_world, command, mode):
    _refused(fast_world, [command, mode], 7, rf"no {command} is in progress, so there is nothing to {mode[2:]}")


@pytest.mark.parametrize("setup", [stopped_am("."), stopped_am(LLVM)], ids=["superproject", "llvm"])
def test_a_users_am_is_never_taken_for_ours(fast_world, setup):
    setup(fast_world)
    for mode in ("--continue", "--skip", "--abort"):
        _refused(fast_world, ["apply", mode], 7, r"no apply is in progress")



def _outside_repo_behind_a_symlink(world):
    """A git repository outside the checkout, reachable through a symlink the user's tree commits."""
    outside = world.tmp / "outside" / "repo"
    outside.mkdir(parents=True)
    git(outside, "init", "-q", env=world.env)
    write(outside / "victim.txt", "not yours\n")
    git(outside, "add", "-A", env=world.env)
    git(outside, "commit", "-qm", "outside", env=world.env)
    os.symlink(outside, world.checkout / "compiler" / "ext")
    world.git("add", "compiler/ext")
    world.git("commit", "-qm", "a link to elsewhere")


@pytest.mark.parametrize("key", ["repos", "enzyme.path"])
def test_manifest_paths_through_a_symlink_reach_nothing_outside(fast_world, key):
    world = fast_world
    _outside_repo_behind_a_symlink(world)
    manifest = world.patches / "series.toml"
    text = manifest.read_text()
    if key == "repos":
        text += '\n[sets."autodiff-1.63.0".repos."compiler/ext"]\ndir = "autodiff-1.63.0/ext"\npatches = []\n'
        pattern = r"key 'sets\.autodiff-1\.63\.0\.repos\.\"compiler/ext\"' path 'compiler/ext' .*symlink"
    else:
        text = text.replace('url = "', 'path = "compiler/ext/enzyme"\nurl = "', 1)
        pattern = r"key 'sets\.autodiff-1\.63\.0\.enzyme\.path' path 'compiler/ext/enzyme' .*symlink"
    manifest.write_text(text)
    for args in (["apply"], ["status"], ["rebase", "--onto", "HEAD"]):
        _refused(world, args, 3, pattern)
