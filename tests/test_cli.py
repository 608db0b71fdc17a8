"""The command line's smaller promises (issue 26, point 8).

Global options before or after the command name; each command's --help with
its own and the global options and examples; -v showing git commands as a
user types them; a closed pipe ending the output quietly; a mistyped --set
answered with the close names; build --dry-run warning when the set writes
no config.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

SET = "autodiff-1.63.0"
COMMANDS = ["apply", "unapply", "status", "check", "lint", "export", "rebase", "diff-sets", "import", "mcp", "config",
            "build"]


def patchmgr(world, *args: str, cwd=None, **kw) -> subprocess.CompletedProcess:
    """patchmgr with exactly these arguments (World.run puts --patches first)."""
    return subprocess.run([sys.executable, "-m", "patchmgr", *args], cwd=cwd or world.checkout, env=world.env,
                          capture_output=True, text=True, **kw)


def _status_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[0]


# --- global options before or after the command name ------------------------------

def test_patches_and_C_work_on_either_side_of_the_command(applied_world, tmp_path):
    world = applied_world
    checkout, patches = ["-C", str(world.checkout)], ["--patches", str(world.patches)]
    for args in ([*checkout, *patches, "status"], ["status", *checkout, *patches],
                 [*checkout, "status", *patches], [*patches, "status", *checkout]):
        line = _status_line(patchmgr(world, *args, cwd=tmp_path))  # run from outside the checkout
        assert line.startswith(f"set {SET}: rustc 1.63.0"), (args, line)


@pytest.mark.parametrize("where", ["before", "after"])
def test_set_works_on_either_side_of_the_command(fast_world, where):
    world = fast_world
    patches = ["--patches", str(world.patches)]
    args = [*patches, "--set", SET, "status"] if where == "before" else [*patches, "status", "--set", SET]
    assert _status_line(patchmgr(world, *args)).endswith("base found by: --set")
    args = [*patches, "--set", SET, "lint"] if where == "before" else [*patches, "lint", "--set", SET]
    res = patchmgr(world, *args)
    assert res.returncode == 0 and res.stdout == f"ok {SET}: 3 patches\n", res.stderr
    # import needs it, from either side; diff-sets names its sets as arguments
    res = patchmgr(world, *patches, "import", "HEAD~1..HEAD")
    assert res.returncode == 2 and res.stderr.strip() == \
        "patchmgr: error: import needs --set NAME, the set to create or update", res.stderr
    res = patchmgr(world, *patches, "--set", SET, "diff-sets", SET, SET)
    assert res.returncode == 2 and "diff-sets takes its sets as arguments, not --set" in res.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_and_verbose_work_on_either_side_and_verbose_shows_plain_git_commands(fast_world, where):
    world = fast_world
    patches = ["--patches", str(world.patches)]
    quiet = patchmgr(world, *patches, *(["-q", "status"] if where == "before" else ["status", "-q"]))
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr

    args = ["-v", "apply", "--no-config"] if where == "before" else ["apply", "--no-config", "-v"]
    res = patchmgr(world, *patches, *args)
    assert res.returncode == 0, res.stderr
    trace = [line for line in res.stderr.splitlines() if line.startswith("patchmgr: + ")]
    assert "patchmgr: + git am --3way --keep-cr --keep-non-patch --committer-date-is-author-date --quiet" in trace
    assert "patchmgr: + git -C src/llvm-project am --3way --keep-cr --keep-non-patch --committer-date-is-author-date --quiet" in trace
    # git's pinned defaults are said once, not as some forty -c per command
    pinned = [line for line in trace if "settings pinned to git's defaults" in line]
    assert len(pinned) == 1, pinned
    assert not [line for line in trace if line.count(" -c ") > 1 and line not in pinned], trace


# --- each command's --help -------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_shows_global_options_examples_and_not_the_exit_code_table(fast_world, command):
    res = patchmgr(fast_world, command, "--help")
    assert res.returncode == 0, res.stderr
    text = res.stdout
    for option in ("-C DIR", "--patches DIR", "--set NAME", "-q, --quiet", "-v, --verbose"):
        assert option in text, (command, option)
    assert re.search(r"^examples:\n  patchmgr .*" + re.escape(command), text, re.M), text
    assert "exit codes: patchmgr --help lists them" in text
    assert "13  busy" not in text and "check-failed" not in text
    assert "13  busy" in patchmgr(fast_world, "--help").stdout  # the table is the main help's


# --- a closed pipe ----------------------------------------------------------------------

def _closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone (`| head` after it exits)."""
    read, write = os.pipe()
    os.close(read)
    return write


def test_status_into_a_closed_pipe_exits_quietly(applied_world):
    world = applied_world
    out = _closed_pipe()
    try:
        res = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(world.patches), "status"],
                             cwd=world.checkout, env=world.env, stdout=out, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(out)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "", res.stderr


def test_apply_with_its_progress_into_a_closed_pipe_still_finishes(fast_world):
    """Nobody reading the progress must not cut a change off halfway."""
    world = fast_world
    err = _closed_pipe()
    try:
        res = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(world.patches), "-v", "apply",
                              "--no-config"], cwd=world.checkout, env=world.env, stdout=subprocess.PIPE, stderr=err,
                             text=True)
    finally:
        os.close(err)
    assert res.returncode == 0
    assert _status_line(world.run("status")).endswith("base found by: applied")
    assert world.run("status").stdout.splitlines()[1] == "state: applied"


# --- a mistyped --set ----------------------------------------------------------------------

def test_a_mistyped_set_gets_did_you_mean_not_unapply(applied_world):
    world = applied_world
    for command in (["status"], ["apply", "--no-config"], ["unapply"], ["check"], ["export"]):
        res = world.run(*command, "--set", "autodiff-1.63")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 4 and len(lines) == 1, res.stderr
        assert lines[0] == (f"patchmgr: error: no patch set named 'autodiff-1.63' in {world.patches / 'series.toml'}; "
                            f"did you mean {SET}?"), lines[0]
    res = world.run("status", "--set", "zzz")
    assert res.returncode == 4 and res.stderr.strip().endswith(f"; known sets: {SET}"), res.stderr
    assert "unapply" not in res.stderr


# --- build --dry-run for a set without a bootstrap template ---------------------------------------

def test_build_dry_run_warns_when_no_config_will_exist(applied_world):
    world = applied_world
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace(f'bootstrap = "{SET}/config.toml.in"\n', ""))
    res = world.run("build", "--dry-run", "--llvm-config", "none", "--stage0", "download")
    assert res.returncode == 0, res.stderr
    assert (f"patchmgr: warning: set {SET} names no bootstrap template (key 'bootstrap' in the manifest), so patchmgr "
            "writes no config: no config.toml will exist and x.py builds with its defaults") in res.stderr.splitlines()
    assert not (world.checkout / "config.toml").exists()

    (world.checkout / "config.toml").write_text("# mine\n")
    res = world.run("build", "--dry-run", "--llvm-config", "none", "--stage0", "download")
    assert "x.py reads the tree's own config.toml as it is" in res.stderr
    assert (world.checkout / "config.toml").read_text() == "# mine\n"
