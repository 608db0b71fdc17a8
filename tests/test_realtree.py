"""apply / re-apply / unapply on the real rustc 1.63.0 source tree (marked realtree)."""

from __future__ import annotations

import json

import pytest

from fixture import mtimes, tree_snapshot
from realtree import REAL_SET, RealTree

pytestmark = pytest.mark.realtree


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return RealTree(tmp_path_factory.mktemp("real"))


def test_real_tree_round_trip(real):
    before = tree_snapshot(real.root, ["src/llvm-project"], real.env)
    status = json.loads(real.run("status", "--json").stdout)
    assert status["set"] == REAL_SET and status["detected_by"] == "git-commit-hash file of a release tree"

    res = real.run("apply")
    assert res.returncode == 0, res.stderr
    status = json.loads(real.run("status", "--json").stdout)
    assert status["state"] == "applied" and status["enzyme"]["in_place"]
    assert (real.root / "compiler/rustc_codegen_ssa/src/traits/autodiff.rs").is_file()
    assert (real.root / "src/llvm-project/enzyme/enzyme/CMakeLists.txt").is_file()
    assert real.git("submodule", "status", "--recursive").startswith(" ")

    times = mtimes(real.root)
    res = real.run("apply")
    assert res.returncode == 0 and "already applied" in res.stderr
    assert mtimes(real.root) == times

    res = real.run("unapply")
    assert res.returncode == 0, res.stderr
    assert tree_snapshot(real.root, ["src/llvm-project"], real.env) == before


def test_real_series_applies_with_plain_git_am(real):
    """The patch files are plain format-patch mails: git am alone takes them."""
    scratch = real.tmp / "plain-am"
    real.git("worktree", "add", "-q", "--detach", str(scratch), "HEAD")
    try:
        from fixture import git

        patches = sorted((real.patches / REAL_SET / "rust").glob("*.patch"))
        git(scratch, "am", "-q", *map(str, patches), env=real.env)
        assert git(scratch, "rev-list", "--count", "HEAD~1..HEAD", env=real.env).strip() == "1"
    finally:
        real.git("worktree", "remove", "--force", str(scratch))


def test_real_check(real):
    res = real.run("check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok   .: autodiff-1.63.0/rust/0001" in res.stdout
