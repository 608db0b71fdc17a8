"""The commands that only read (check, diff-sets, mcp) build the series in git's object store.

Issue 26 point 7: on rustc's 50,000-file tree the scratch clones' checkouts
made them take tens of seconds. The series is committed in the object store
instead (patchmgr/mailcommit.py), and each commit must be the one git am makes.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from fixture import LIB_RS, REPO, commit_all, git, hermetic_env, snapshot, write
from test_diffsets import second_revision
from test_mcp import COVER

from patchmgr import gitio
from patchmgr.gitio import Repo
from patchmgr.mailcommit import DoesNotApply, MailCommitter
from patchmgr.patchfile import parse_patch

SET = "autodiff-1.63.0"
AM = ("am", "--3way", "--keep-cr", "--keep-non-patch", "--committer-date-is-author-date")


def mails(repo: Path, env: dict, range_: str, out: Path) -> list:
    """The commits of `range_` as format-patch mails, parsed as patchmgr reads patch files."""
    git(repo, "format-patch", "-q", "--zero-commit", "-o", str(out), range_, env=env)
    return [parse_patch(path.read_bytes(), path.name) for path in sorted(out.glob("*.patch"))]


def commit(repo: Path, env: dict, message: str, author: str | None = None) -> None:
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "--cleanup=verbatim", "-m", message, *([f"--author={author}"] if author else []), env=env)


@pytest.fixture
def hermetic(tmp_path, monkeypatch) -> dict:
    """This process's git runs with the tests' private configuration (patchmgr's in-process git too)."""
    env = hermetic_env(tmp_path)
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(gitio, "_passed", None)  # the user settings gitio read once per process
    return env


def test_mail_committed_in_the_object_store_is_the_commit_git_am_makes(tmp_path, hermetic):
    env = hermetic
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo), env=env)
    write(repo / "lib.rs", LIB_RS)
    (repo / "crlf.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    base = commit_all(repo, "base", env)
    git(repo, "checkout", "-q", "-b", "series", env=env)
    write(repo / "lib.rs", LIB_RS.replace("x * 1.0", "x * 1.5"))
    commit(repo, env, "[X86] tweak f1\n\nFirst paragraph.   \n\n\n\nSecond paragraph.\n",
           author="Jöhn Dœ <jd@example.invalid>")
    (repo / "crlf.txt").write_bytes(b"one\r\ntwo, changed\r\nthree\r\n")
    commit(repo, env, "crlf: change a line of a file with CRLF endings")
    write(repo / "new/file.rs", "pub fn new() {}\n")
    commit(repo, env, "add a file")
    # a mail that conflicts with upstream even 3-way, tried between the others
    git(repo, "checkout", "-q", "-b", "conflicting", base, env=env)
    write(repo / "lib.rs", LIB_RS.replace("pub fn f2(x: f64)", "pub fn f2(z: f64)"))
    commit(repo, env, "conflicting change")
    # upstream changes a context line of the first patch: a plain apply fails, a 3-way merge is clean
    git(repo, "checkout", "-q", "main", env=env)
    write(repo / "lib.rs", LIB_RS.replace("pub fn f2(x: f64) -> f64 {", "pub fn f2(x: f64) -> f64 { // upstream"))
    upstream = commit_all(repo, "upstream", env)
    series = mails(repo, env, f"{base}..series", tmp_path / "mails")
    [conflicting] = mails(repo, env, f"{base}..conflicting", tmp_path / "conflicting")

    clone = tmp_path / "clone"  # plain git am in a scratch clone
    git(tmp_path, "clone", "-q", "--shared", str(repo), str(clone), env=env)
    git(clone, "checkout", "-q", "--detach", upstream, env=env)
    git(clone, *AM, *sorted(str(p) for p in (tmp_path / "mails").glob("*.patch")), env=env)
    expected = git(clone, "rev-list", "--reverse", f"{upstream}..HEAD", env=env).split()

    before = (git(repo, "for-each-ref", env=env), git(repo, "status", "--porcelain=v2", "--branch", env=env),
              (repo / ".git/index").read_bytes())
    made = []
    with MailCommitter(Repo(repo)) as committer:
        tip = committer.commit_mail(upstream, series[0].text, series[0].diff)
        made.append(tip)
        with pytest.raises(DoesNotApply, match=r"^git apply failed in \.: error: patch failed: lib.rs:\d+; "
                                                r"3-way: Applied patch to .lib.rs. with conflicts"):
            committer.commit_mail(tip, conflicting.text, conflicting.diff)
        for patch in series[1:]:
            tip = committer.commit_mail(tip, patch.text, patch.diff)
            made.append(tip)
    assert len(expected) == 3 and made == expected  # same tree, author, committer, dates and message
    assert git(repo, "log", "-1", "--format=%s|%an", made[0], env=env).strip() == "[X86] tweak f1|Jöhn Dœ"
    # nothing of the user's changed: refs, index, work tree (the new objects are unreferenced)
    assert before == (git(repo, "for-each-ref", env=env), git(repo, "status", "--porcelain=v2", "--branch", env=env),
                      (repo / ".git/index").read_bytes())


def git_commands(trace: Path) -> set[str]:
    """The git commands a GIT_TRACE file records (past global options such as -c key=value)."""
    return set(git_command_counts(trace))


def git_command_counts(trace: Path) -> collections.Counter[str]:
    """git command -> how many times a GIT_TRACE file records it run."""
    found: collections.Counter[str] = collections.Counter()
    for line in trace.read_text(errors="replace").splitlines():
        _, sep, argv = line.partition("trace: built-in: git ")
        if sep:
            args = shlex.split(argv)
            found[next((a for i, a in enumerate(args) if not a.startswith("-")
                        and (i == 0 or args[i - 1] not in ("-c", "-C"))), "")] += 1
    return found


def test_read_only_commands_check_out_nothing(world, tmp_path):
    second_revision(world)
    write(world.patches / SET / "cover.md", COVER)
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace(f'[sets."{SET}"]\n', f'[sets."{SET}"]\ncover = "{SET}/cover.md"\n', 1))
    before = snapshot(world)
    out = {}
    for args in (["check", "--set", SET], ["diff-sets", SET, "v2"], ["mcp", "--set", SET, "--out", str(tmp_path / "mcp")]):
        trace = tmp_path / f"trace-{args[0]}"
        res = world.run(*args, env_extra={"GIT_TRACE": str(trace)})
        assert res.returncode == 0, res.stderr
        out[args[0]] = res.stdout
        commands = git_commands(trace)
        assert {"apply", "commit-tree"} <= commands, (args, commands)
        assert not commands & {"clone", "checkout", "switch", "am", "reset"}, (args, commands)
    assert out["check"].count("ok   ") == 3
    assert re.search(r"2: +[0-9a-f]+ ! +1: +[0-9a-f]+ Add the autodiff trait and -Z autodiff", out["diff-sets"])
    assert (tmp_path / "mcp" / "mcp.md").exists()
    assert snapshot(world) == before


def test_check_keep_leaves_the_series_in_a_bare_repository(world, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    res = world.run("check", "--keep", env_extra={"TMPDIR": str(scratch)})
    assert res.returncode == 0, res.stderr
    [kept] = scratch.glob("patchmgr-check-*")
    subjects = git(kept / "superproject.git", "log", "--reverse", "--format=%s", "-2", "HEAD", env=world.env)
    assert subjects.splitlines() == ["codegen_llvm: mark f3 differentiable", "Add the autodiff trait and -Z autodiff"]


def test_benchmark_runs_on_the_fixture(world):
    """scripts/bench_readonly.py, as a smoke test only: its times mean nothing on a small tree."""
    before = snapshot(world)
    res = subprocess.run([sys.executable, str(REPO / "scripts/bench_readonly.py"), "--checkout", str(world.checkout),
                          "--patches", str(world.patches), "--set", SET, "--runs", "1"],
                         env=world.env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for ours, theirs in (("diff-sets", "git range-diff of the same commits"),
                         ("check", "git am --3way in a checked-out scratch clone"),
                         ("mcp", "git am --3way in a checked-out scratch clone")):
        assert re.search(rf"^\| patchmgr {ours} \| \d+ ms \| {theirs} \| \d+ ms \| \d+\.\d\dx \|$", res.stdout, re.M), \
            res.stdout
    assert snapshot(world) == before
