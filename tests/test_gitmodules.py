"""One reader of .gitmodules (patchmgr/gitmodules.py), as git submodule reads it, from the object store."""

from __future__ import annotations

from fixture import git, hermetic_env, write

from patchmgr import gitmodules
from patchmgr.gitio import Repo

GITMODULES = """\
[submodule "src/llvm-project"]
\tpath = src/llvm-project
\turl = https://github.com/rust-lang/llvm-project.git
\tbranch = rustc/14.0-2022-06-20
[submodule "tools.cargo"]
\tpath = "src/tools/car go"   ; a quoted path with a space, and a comment
\turl = https://github.com/rust-lang/cargo.git
[submodule "nowhere"]
\turl = https://example.invalid/no-path.git
"""


def hermetic(tmp_path, monkeypatch) -> dict:
    env = hermetic_env(tmp_path)
    for key in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "HOME"):
        monkeypatch.setenv(key, env[key])
    return env


def test_reads_entries_by_path_with_gits_own_parser(tmp_path, monkeypatch):
    env = hermetic(tmp_path, monkeypatch)
    repo_dir = tmp_path / "r"
    repo_dir.mkdir()
    git(repo_dir, "init", "-q", env=env)
    write(repo_dir / ".gitmodules", GITMODULES)
    git(repo_dir, "add", ".gitmodules", env=env)
    git(repo_dir, "commit", "-q", "-m", "modules", env=env)
    write(repo_dir / ".gitmodules", "[submodule \"x\"]\n\tpath = x\n")
    git(repo_dir, "add", ".gitmodules", env=env)
    repo = Repo(repo_dir, "r")

    committed = gitmodules.read(repo, "HEAD:.gitmodules")
    assert committed == {
        "src/llvm-project": gitmodules.Submodule("src/llvm-project", "src/llvm-project",
                                                 "https://github.com/rust-lang/llvm-project.git", "rustc/14.0-2022-06-20"),
        "src/tools/car go": gitmodules.Submodule("tools.cargo", "src/tools/car go", "https://github.com/rust-lang/cargo.git"),
    }
    assert gitmodules.read(repo, ":.gitmodules") == {"x": gitmodules.Submodule("x", "x")}  # the index's


def test_a_missing_or_malformed_file_lists_no_submodule(tmp_path, monkeypatch):
    env = hermetic(tmp_path, monkeypatch)
    repo_dir = tmp_path / "r"
    repo_dir.mkdir()
    git(repo_dir, "init", "-q", env=env)
    write(repo_dir / "a", "a\n")
    git(repo_dir, "add", "a", env=env)
    git(repo_dir, "commit", "-q", "-m", "a", env=env)
    repo = Repo(repo_dir, "r")
    assert gitmodules.read(repo, "HEAD:.gitmodules") == {}
    write(repo_dir / ".gitmodules", "[submodule \"x\"\n\tpath = x\n")  # no closing bracket: git refuses it
    git(repo_dir, "add", ".gitmodules", env=env)
    assert gitmodules.read(repo, ":.gitmodules") == {}
