"""Validation before a change, and messages that name the real situation (issue 25, class 7).

A manifest whose Enzyme path is another repository is refused before apply
writes anything; a patch taken out of the set's list while applied is called
dropped (not drifted, and not blamed on its neighbour); status says how it
really found the set while an apply is stopped inside Enzyme; a path git
accepts (under PATH_MAX) is applied, one git refuses still is refused.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from fixture import ENZYME_PATH, LLVM_URL, git, snapshot, write
from test_badinput import patch_text
from test_enzyme_patches import LABEL as ENZYME_LABEL
from test_enzyme_patches import add_enzyme_patch

from patchmgr.errors import BadInput
from patchmgr.gitio import Repo
from patchmgr.lint import check_manifest_paths
from patchmgr.series import load_manifest

SET = "autodiff-1.63.0"
SECOND = f"{SET}/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch"


def _one_error(res, code: int, pattern: str) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, res.stderr
    assert len(lines) == 1 and lines[0].startswith("patchmgr: error: "), res.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def _edit_manifest(world, old: str, new: str) -> None:
    path = world.patches / "series.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# --- the Enzyme path on another repository ------------------------------------

def test_enzyme_path_on_the_llvm_submodule_is_refused_before_any_change(fast_world):
    """enzyme.path = src/llvm-project: the llvm-project list would be read as Enzyme's patches and
    apply would patch the superproject, then fail inside llvm-project. Refused up front."""
    world = fast_world
    _edit_manifest(world, 'url = "', 'path = "src/llvm-project"\nurl = "')
    before = snapshot(world)
    for command in (["apply", "--no-config"], ["status"], ["check"]):
        line = _one_error(world.run(*command), 3, r"key 'sets\.autodiff-1\.63\.0\.enzyme\.path' path 'src/llvm-project' "
                                                  rf"is the submodule {re.escape(LLVM_URL)} in the base tree, not Enzyme")
        assert "give Enzyme a path of its own" in line
        assert snapshot(world) == before, command
    assert not (world.checkout / ".git" / "patchmgr").exists()


def test_a_submodule_of_the_base_is_enzyme_only_when_gitmodules_says_so(tmp_path, fast_world):
    """A tree that already has Enzyme as a submodule (rustc 1.85's src/tools/enzyme) keeps working,
    the URL spelled with '.git'; the same path holding another repository is refused."""
    world = fast_world
    root = tmp_path / "tree"
    root.mkdir()
    git(root, "init", "-q", env=world.env)
    write(root / ".gitmodules", '[submodule "enzyme"]\n\tpath = src/tools/enzyme\n'
                                '\turl = https://example.invalid/EnzymeAD/Enzyme.git\n'
                                '[submodule "other"]\n\tpath = src/tools/other\n\turl = https://example.invalid/x/other\n')
    git(root, "add", ".gitmodules", env=world.env)
    for path in ("src/llvm-project", "src/tools/enzyme", "src/tools/other"):
        git(root, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{path}", env=world.env)
    git(root, "commit", "-q", "-m", "base", env=world.env)
    base = git(root, "rev-parse", "HEAD", env=world.env).strip()

    _edit_manifest(world, 'url = "', 'path = "src/tools/enzyme"\nurl = "')
    check_manifest_paths(Repo(root), base, load_manifest(world.patches).get(SET), root)

    _edit_manifest(world, 'path = "src/tools/enzyme"', 'path = "src/tools/other"')
    with pytest.raises(BadInput, match=r"'src/tools/other' is the submodule https://example\.invalid/x/other in the "
                                       r"base tree, not Enzyme"):
        check_manifest_paths(Repo(root), base, load_manifest(world.patches).get(SET), root)


# --- a patch dropped from the list while applied --------------------------------

def test_a_patch_dropped_from_the_list_is_called_dropped(applied_world):
    world = applied_world
    _edit_manifest(world, f', "{SECOND.rsplit("/", 1)[1]}"]', "]")
    first = f"{SET}/rust/0001-codegen_llvm-mark-f3-differentiable.patch"

    text = world.run("status")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert f"  dropped  {SECOND}" in lines
    assert f"  applied  {first}" in lines
    assert not any(line.startswith("  drifted") for line in lines), text.stdout
    assert any(line.startswith("dropped: applied, but no longer in the set's list") for line in lines)
    data = json.loads(world.run("status", "--json").stdout)
    superproject = next(r for r in data["repos"] if r["path"] == ".")
    assert superproject["dropped"] == [SECOND] and superproject["drifted"] == []

    before = snapshot(world)
    line = _one_error(world.run("apply", "--no-config"), 7,
                      rf"\. has patch {re.escape(SECOND)} applied, which is no longer in the set's list")
    assert first not in line and "differs from its file" not in line
    assert "patchmgr unapply, then apply" in line
    assert snapshot(world) == before


# --- how status found the base while an apply is stopped inside Enzyme ------------

def test_status_in_a_stop_inside_enzyme_says_how_the_set_was_found(world):
    add_enzyme_patch(world)
    patch = world.patches / ENZYME_LABEL
    patch.write_text(patch.read_text().replace(" project(Enzyme)", " project(NotEnzyme)"))
    res = world.run("apply", "--no-config")
    assert res.returncode == 6, res.stderr
    assert (world.checkout / ENZYME_PATH / ".git").exists()

    res = world.run("status")
    assert res.returncode == 0, res.stderr
    head = res.stdout.splitlines()[0]
    assert "--set" not in head, head
    assert head.endswith("base found by: the apply in progress"), head
    assert json.loads(world.run("status", "--json").stdout)["detected_by"] == "the apply in progress"
    # given on the command line, --set is what status says
    assert world.run("status", "--set", SET).stdout.splitlines()[0].endswith("base found by: --set")


# --- path length as git reads it ---------------------------------------------------

def _long_path(size: int) -> str:
    """A repository-relative path of exactly `size` bytes, in components git and ext4 accept."""
    parts, used = [], 0
    while size - used > 255 + 1:
        parts.append("d" * 200)
        used += 201
    path = "/".join(parts + ["f" * (size - used)])
    assert len(path) == size
    return path


def test_a_path_git_accepts_is_applied_and_one_it_refuses_is_not(fast_world):
    """4,027 bytes is under PATH_MAX (git writes it); 4,096 is not (git apply refuses it)."""
    world = fast_world
    name = "0003-long-path.patch"
    _edit_manifest(world, f'"{SECOND.rsplit("/", 1)[1]}"]', f'"{SECOND.rsplit("/", 1)[1]}", "{name}"]')
    target = world.patches / SET / "rust" / name

    target.write_text(patch_text(_long_path(4096)))
    before = snapshot(world)
    _one_error(world.run("apply", "--no-config"), 3, r"is 4096 bytes long \(git and file systems allow 4095\)")
    assert snapshot(world) == before

    accepted = _long_path(4027)
    target.write_text(patch_text(accepted))
    assert world.run("lint").returncode == 0
    res = world.run("apply", "--no-config")
    assert res.returncode == 0, res.stderr
    def tracked() -> str:
        return subprocess.run(["git", "ls-files", "-z", "--", accepted], cwd=world.checkout, env=world.env,
                              capture_output=True, text=True, check=True).stdout
    assert tracked() == accepted + "\0"
    assert world.run("status").stdout.splitlines()[1] == "state: applied"
    res = world.run("unapply")
    assert res.returncode == 0, res.stderr
    assert tracked() == ""
