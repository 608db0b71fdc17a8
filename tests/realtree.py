"""The real rustc 1.63.0 tree and the Enzyme stand-in, built once per test session.

The tree comes from scripts/import_rustc.py (Debian's source package, cached);
the shipped patches/ are copied and only the Enzyme commit is changed to the
stand-in's, so the real URL is still what patchmgr clones (redirected by
url.<base>.insteadOf in a private git config).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit
from fixture import git, hermetic_env

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import import_rustc as builder  # noqa: E402

REAL_SET = "autodiff-1.63.0"


def unavailable(reason: str):
    """Skip loudly on a developer machine; in CI a real-tree test that cannot run is a failure."""
    message = f"REAL-TREE TEST NOT RUN: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def enzyme_standin(tmp: Path, env: dict) -> tuple[Path, str]:
    repo = tmp / "enzyme-standin"
    shutil.copytree(REPO / "tests" / "enzyme-standin", repo)
    git(repo, "init", "-q", env=env)
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "-m", "Enzyme stand-in", env=env)
    return repo, git(repo, "rev-parse", "HEAD", env=env).strip()


class RealTree:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.env = hermetic_env(tmp)
        self.root = tmp / "rustc-1.63.0"
        try:
            builder.build("1.63.0", self.root)
        except SystemExit as e:
            unavailable(f"could not build the rustc 1.63.0 tree from Debian's source package: {e}")
        self.enzyme_repo, self.enzyme_commit = enzyme_standin(tmp, self.env)
        manifest = tomlkit.parse((REPO / "patches" / "series.toml").read_text())
        self.enzyme_url = str(manifest["sets"][REAL_SET]["enzyme"]["url"])
        git(tmp, "config", "--file", self.env["GIT_CONFIG_GLOBAL"], f"url.{self.enzyme_repo}.insteadOf", self.enzyme_url,
            env=self.env)
        self.patches = tmp / "patches"
        shutil.copytree(REPO / "patches", self.patches)
        entry = manifest["sets"][REAL_SET]
        entry["enzyme"]["commit"] = self.enzyme_commit
        # the set's patches for Enzyme itself are made for the real pin's sources, which the stand-in
        # does not have: left out here (tests/test_enzyme_patches.py covers the mechanism, and the
        # stage1 build in tests/test_autodiff_stage1.py applies them to the real Enzyme)
        enzyme_path = str(entry["enzyme"].get("path", "src/llvm-project/enzyme"))
        if enzyme_path in entry["repos"]:
            del entry["repos"][enzyme_path]
        (self.patches / "series.toml").write_text(tomlkit.dumps(manifest))

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(self.patches), *args],
                              cwd=self.root, env=self.env, capture_output=True, text=True)

    def git(self, *args: str, repo: str = ".") -> str:
        return git(self.root / repo, *args, env=self.env)
