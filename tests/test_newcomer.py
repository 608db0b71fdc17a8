"""What a newcomer meets with defaults only: the LLVM the pinned Enzyme builds with, a
bootstrap template only for the set that has one, and patches of files with CRLF endings."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fixture import git, snapshot, write

from patchmgr.errors import BadInput
from patchmgr.patchfile import parse_patch
from patchmgr.series import load_manifest
from xpy_ext import preflight
from xpy_ext.commands import build_llvm
from xpy_ext.versions import bootstrap_for

REPO = Path(__file__).resolve().parent.parent
SET = "autodiff-1.63.0"


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def test_the_shipped_pin_names_the_llvm_it_builds_with():
    patch_set = load_manifest(REPO / "patches").get(SET)
    assert patch_set.enzyme is not None and patch_set.enzyme.llvm == tuple(range(7, 15))
    assert patch_set.llvm == 14  # the upstream base's LLVM, and the newest the pinned Enzyme builds against
    assert build_llvm(patch_set) == 14
    older = dataclasses.replace(patch_set, enzyme=dataclasses.replace(patch_set.enzyme, llvm=(13,)))
    assert build_llvm(older) == 13  # a pin that does not build against the set's LLVM takes its own
    assert build_llvm(dataclasses.replace(patch_set, enzyme=None)) == 14


def fake_llvm_config(tmp_path: Path, version: str) -> str:
    tool = tmp_path / f"llvm-config-{version}"
    tool.write_text(f"#!/bin/sh\necho {version}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return str(tool)


@pytest.mark.parametrize("version,problem", [
    ("14.0.6", "LLVM 14 from {tool} is not one the pinned Enzyme builds against (LLVM 13); "
               "apt-get install llvm-13-dev and pass --llvm-config /usr/lib/llvm-13/bin/llvm-config (or leave it at auto)"),
    ("13.0.1", None),
])
def test_preflight_refuses_an_llvm_the_pinned_enzyme_cannot_build_with(tmp_path, version, problem):
    tool = fake_llvm_config(tmp_path, version)
    found = [str(p) for p in preflight.check(tmp_path, bootstrap_for("1.63.0"), "1.63.0", llvm_config=tool,
                                             stage0_rustc=None, offline=False, enzyme=True, enzyme_llvm=(13,))
             if "LLVM" in str(p)]
    assert found == ([problem.format(tool=tool)] if problem else [])


def test_preflight_names_the_shipped_pins_llvm_range(tmp_path):
    """The shipped pin builds against LLVM 7 to 14: LLVM 19 (Debian's newest) is refused, naming the range."""
    patch_set = load_manifest(REPO / "patches").get(SET)
    tool = fake_llvm_config(tmp_path, "19.1.7")
    found = [str(p) for p in preflight.check(tmp_path, bootstrap_for("1.63.0"), "1.63.0", llvm_config=tool,
                                             stage0_rustc=None, offline=False, enzyme=True,
                                             enzyme_llvm=patch_set.enzyme.llvm) if "LLVM" in str(p)]
    assert found == [f"LLVM 19 from {tool} is not one the pinned Enzyme builds against (LLVM 7 to 14); apt-get install "
                     "llvm-14-dev and pass --llvm-config /usr/lib/llvm-14/bin/llvm-config (or leave it at auto)"]


@pytest.mark.parametrize("value,message", [
    ("[]", None), ("[13]", None), ("[13, 14]", None),
    ("13", r"enzyme\.llvm' must be a list of LLVM major"),
    ('["13"]', r"enzyme\.llvm' must be a list of LLVM major version numbers such as \[13\], not '13'"),
    ("[true]", r"not True"), ("[13, 13]", r"lists an LLVM major twice"),
])
def test_enzyme_llvm_key(tmp_path, value, message):
    text = (REPO / "patches" / "series.toml").read_text()
    assert "llvm = [7, 8, 9, 10, 11, 12, 13, 14]" in text
    text = text.replace("llvm = [7, 8, 9, 10, 11, 12, 13, 14]", f"llvm = {value}")
    (tmp_path / "series.toml").write_text(text)
    if message is None:
        load_manifest(tmp_path)
    else:
        with pytest.raises(BadInput, match=message):
            load_manifest(tmp_path)


EXAMPLE = "[llvm]\n#enzyme = false\n[build]\n#vendor = false\n"


def test_a_set_without_a_template_leaves_the_config_alone(world):
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace(f'bootstrap = "{SET}/config.toml.in"\n', ""))
    (world.checkout / "config.toml.example").write_text(EXAMPLE)
    res = ok(world.run("apply"))
    assert "config" not in res.stderr.replace("config.toml.example", "")
    assert not (world.checkout / "config.toml").exists()
    res = world.run("config")
    assert res.returncode == 3 and "names no bootstrap template (key 'bootstrap' in the manifest)" in res.stderr


def test_a_missing_template_is_one_clear_error(world):
    (world.patches / SET / "config.toml.in").unlink()
    (world.checkout / "config.toml.example").write_text(EXAMPLE)
    res = world.run("config", "--show")
    assert res.returncode == 3
    assert res.stderr.strip().splitlines()[-1].endswith("config.toml.in: cannot read the bootstrap template "
                                                         "(No such file or directory)")


# --- CRLF ---------------------------------------------------------------------

def crlf_world(world):
    """A tracked file with CRLF endings (as some of rustc's vendored files have), and a patch of it."""
    path = world.checkout / "src" / "windows.bat"
    write(path, "")
    path.write_bytes(b"@echo off\r\nset A=1\r\nset B=2\r\n")
    world.git("add", "src/windows.bat")
    world.git("commit", "-qm", "a file with CRLF endings")
    work = world.tmp / "crlf-work"
    git(world.tmp, "clone", "-q", str(world.checkout), str(work), env=world.env)
    (work / "src" / "windows.bat").write_bytes(b"@echo off\r\nset A=1\r\nset B=3\r\n")
    git(work, "commit", "-qam", "windows: B is 3", env=world.env)
    out = git(work, "format-patch", "--zero-commit", "--full-index", "--no-signature", "-1",
              "-o", str(world.patches / SET / "rust"), env=world.env)  # as export writes it
    name = Path(out.strip()).name
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace('patches = ["0001', f'patches = ["{name}", "0001', 1))
    return world.patches / SET / "rust" / name


def test_a_patch_of_a_crlf_file_applies_exports_and_round_trips(world):
    patch_file = crlf_world(world)
    raw = patch_file.read_bytes()
    assert b"-set B=2\r\n+set B=3\r\n" in raw
    before = snapshot(world)
    ok(world.run("apply", "--no-config"))
    assert (world.checkout / "src" / "windows.bat").read_bytes() == b"@echo off\r\nset A=1\r\nset B=3\r\n"
    assert '"drifted": []' in ok(world.run("status", "--json")).stdout
    ok(world.run("export"))
    assert patch_file.read_bytes() == raw  # byte-identical, CRs included
    ok(world.run("unapply"))
    assert snapshot(world) == before


def test_a_mail_mangled_to_crlf_is_still_refused():
    text = (REPO / "tests" / "samples" / "good-plain.patch").read_bytes()
    with pytest.raises(BadInput, match=r"has CRLF line endings, which git am would strip"):
        parse_patch(text.replace(b"\n", b"\r\n"), "x.patch")


@pytest.mark.parametrize("line", [b"From: Dev <d@x>\r", b"diff --git a/x b/x\r", b"--- a/x\r", b"+x\ry"])
def test_a_cr_anywhere_but_a_content_line_end_is_refused(line):
    text = (REPO / "tests" / "samples" / "good-plain.patch").read_bytes()
    lines = text.split(b"\n")
    lines.insert(3 if line.startswith(b"From:") else len(lines) - 4, line)
    with pytest.raises(BadInput):
        parse_patch(b"\n".join(lines), "x.patch")



# --- import starts a manifest -------------------------------------------------

def _series_dir(world):
    """A format-patch mail of the user's own, in a directory."""
    mails = world.tmp / "mails"
    work = world.tmp / "own-work"
    git(world.tmp, "clone", "-q", str(world.checkout), str(work), env=world.env)
    write(work / "NOTES.md", "mine\n")
    git(work, "add", "NOTES.md", env=world.env)
    git(work, "commit", "-qm", "docs: notes", env=world.env)
    git(work, "format-patch", "-q", "--zero-commit", "-o", str(mails), "HEAD~1..HEAD", env=world.env)
    return mails


@pytest.mark.parametrize("start", ["no directory", "empty directory", "manifest without sets"])
def test_import_starts_a_manifest(world, start):
    mails = _series_dir(world)
    patches = world.tmp / "my-patches"
    if start != "no directory":
        patches.mkdir()
    if start == "manifest without sets":
        (patches / "series.toml").write_text("schema = 1\n\n[sets]\n")
    base = world.git("rev-parse", "HEAD").strip()
    res = world.run("--patches", str(patches), "import", str(mails), "--set", "mine-1.63.0",
                    "--rustc", "1.63.0", "--commit", base, "--llvm", "14")
    assert res.returncode == 0, res.stderr
    assert ("started" in res.stderr) == (start != "manifest without sets")
    manifest = load_manifest(patches)
    assert list(manifest.sets) == ["mine-1.63.0"]
    assert [p.endswith("docs-notes.patch") for p in manifest.get("mine-1.63.0").repos[0].patches] == [True]
    ok(world.run("--patches", str(patches), "apply", "--no-config"))
    assert (world.checkout / "NOTES.md").read_text() == "mine\n"


def test_import_of_a_new_set_with_a_bad_base_writes_nothing(world):
    mails = _series_dir(world)
    patches = world.tmp / "my-patches"
    patches.mkdir()
    res = world.run("--patches", str(patches), "import", str(mails), "--set", "mine", "--rustc", "1.63.0",
                    "--commit", "abc", "--llvm", "14")
    assert res.returncode == 3 and "must be a full 40-character" in res.stderr
    assert list(patches.iterdir()) == []


# --- git runs in a known configuration ------------------------------------------

HOSTILE_CONFIG = """
[diff]
    noprefix = true
    mnemonicPrefix = true
    renames = copies
    algorithm = patience
    context = 1
    indentHeuristic = false
[format]
    signOff = true
    headers = "X-Evil: 1\\n"
    signature = evil
    numbered = true
    useAutoBase = true
    forceInBodyFrom = true
    thread = shallow
[rerere]
    enabled = true
    autoUpdate = true
[log]
    showSignature = true
    decorate = full
[core]
    abbrev = 5
    quotePath = false
[color]
    ui = always
[am]
    messageId = true
    keepcr = true
[apply]
    whitespace = fix
[commit]
    gpgSign = true
"""


def _cycle(world, hostile: bool) -> dict:
    """apply, a new commit exported, unapply, rebase onto a new upstream, diff-sets: what it wrote."""
    from test_rebase import move_upstream

    env = {}
    if hostile:
        config = world.tmp / "hostile.gitconfig"
        config.write_text(Path(world.env["GIT_CONFIG_GLOBAL"]).read_text() + HOSTILE_CONFIG)
        env = {"GIT_CONFIG_GLOBAL": str(config)}
        # the repository's own config is git's to read even in patchmgr's known configuration
        world.git("config", "--local", "format.headers", "X-Local-Evil: 1")
        world.git("config", "--local", "format.to", "evil@example.invalid")
    assert world.run("apply", "--no-config", env_extra=env).returncode == 0
    write(world.checkout / "compiler/rustc_session/src/options.rs",
          (world.checkout / "compiler/rustc_session/src/options.rs").read_text() + "// whitespace at the end   \n")
    world.git("commit", "-qam", "session: one more line")
    res = world.run("export", env_extra=env)
    assert res.returncode == 0, res.stderr
    assert world.run("unapply", "--force", env_extra=env).returncode == 0
    move_upstream(world, "with-more")
    res = world.run("rebase", "--onto", "1.64.0", "--no-config", env_extra=env)
    assert res.returncode == 6, res.stderr  # the rewritten line conflicts
    res = world.run("rebase", "--skip", "--note", "upstream rewrote it", "--no-config", env_extra=env)
    assert res.returncode == 0, res.stderr
    diff = world.run("diff-sets", SET, "autodiff-1.64.0", env_extra=env)
    assert diff.returncode == 0, diff.stderr
    files = {str(p.relative_to(world.patches)): p.read_bytes() for p in sorted(world.patches.rglob("*")) if p.is_file()}
    for name, text in files.items():
        if name.endswith(".patch"):  # the headers end at the first blank line, and are only git's own
            headers = text.split(b"\n\n", 1)[0]
            assert b"Evil" not in headers and b"\nTo:" not in headers and headers.count(b"\nSubject: ") == 1, name
    return {"files": files, "diff-sets": diff.stdout,
            "log": world.git("log", "--format=%H %T %an %cn %B", "HEAD")}


def test_the_cycle_gives_the_same_bytes_under_a_hostile_global_config(tmp_path):
    from fixture import build_world

    (tmp_path / "plain").mkdir()
    (tmp_path / "hostile").mkdir()
    plain = _cycle(build_world(tmp_path / "plain"), hostile=False)
    hostile = _cycle(build_world(tmp_path / "hostile"), hostile=True)
    assert hostile["files"] == plain["files"]
    assert hostile["diff-sets"] == plain["diff-sets"]
    assert hostile["log"] == plain["log"]
    exported = [v for k, v in plain["files"].items() if k.endswith("session-one-more-line.patch")]
    assert exported and b"Signed-off-by" not in exported[0] and b"X-Evil" not in exported[0]


# --- Enzyme fetched by commit ---------------------------------------------------

def _enzyme_over_file_url(world, server_refuses_ids: bool):
    """The Enzyme URL redirected to file://, as to a server (a plain path would be a local clone)."""
    from fixture import ENZYME_URL

    config = world.env["GIT_CONFIG_GLOBAL"]
    git(world.tmp, "config", "--file", config, "--unset-all", f"url.{world.enzyme_upstream}.insteadOf", env=world.env)
    git(world.tmp, "config", "--file", config, f"url.file://{world.enzyme_upstream}.insteadOf", ENZYME_URL, env=world.env)
    if server_refuses_ids:  # as an old server does: protocol v0 and no unadvertised objects
        git(world.enzyme_upstream, "config", "uploadpack.allowReachableSHA1InWant", "false", env=world.env)
        git(world.tmp, "config", "--file", config, "protocol.version", "0", env=world.env)


def test_enzyme_is_fetched_by_commit_at_depth_one(world):
    _enzyme_over_file_url(world, server_refuses_ids=False)
    res = ok(world.run("apply", "--no-config"))
    assert f"fetched Enzyme commit {world.enzyme_pin[:12]} alone (depth 1)" in res.stderr
    enzyme = world.checkout / "src/llvm-project/enzyme"
    assert git(enzyme, "rev-parse", "HEAD", env=world.env).strip() == world.enzyme_pin
    assert git(enzyme, "rev-list", "--count", "HEAD", env=world.env).strip() == "1"
    assert git(enzyme, "rev-parse", "--is-shallow-repository", env=world.env).strip() == "true"
    ok(world.run("unapply"))
    ok(world.run("apply", "--no-config"))  # the kept clone has the commit: nothing fetched again
    assert git(enzyme, "rev-parse", "HEAD", env=world.env).strip() == world.enzyme_pin


def test_a_server_that_refuses_commit_ids_gets_a_full_fetch(world):
    _enzyme_over_file_url(world, server_refuses_ids=True)
    res = ok(world.run("apply", "--no-config"))
    assert "does not serve a commit by its id; fetching the whole history" in res.stderr
    enzyme = world.checkout / "src/llvm-project/enzyme"
    assert git(enzyme, "rev-parse", "HEAD", env=world.env).strip() == world.enzyme_pin
    assert git(enzyme, "rev-parse", "--is-shallow-repository", env=world.env).strip() == "false"


def test_after_unapply_the_kept_enzyme_clone_is_enough_offline(world):
    """unapply keeps Enzyme's clone under .git/modules: apply again needs no network."""
    from fixture import ENZYME_URL

    ok(world.run("apply", "--no-config"))
    ok(world.run("unapply"))
    config = world.env["GIT_CONFIG_GLOBAL"]
    git(world.tmp, "config", "--file", config, "--unset-all", f"url.{world.enzyme_upstream}.insteadOf", env=world.env)
    git(world.tmp, "config", "--file", config, f"url.{world.tmp / 'unreachable'}.insteadOf", ENZYME_URL, env=world.env)
    res = ok(world.run("apply", "--no-config"))
    assert "checking that" not in res.stderr
    assert json.loads(ok(world.run("status", "--json")).stdout)["enzyme"]["in_place"]


def test_gc_settings_of_the_user_count_in_patch_commands(world):
    """gc.auto = 0 in the user's global config keeps a git am of patchmgr's from starting a gc
    (which, in the background, would repack the objects of a big tree under the user's feet)."""
    probe = ("from patchmgr.gitio import Repo, _user_settings; import json, sys; "
             "print(json.dumps(dict(_user_settings(Repo(sys.argv[1])))))")
    res = subprocess.run([sys.executable, "-c", probe, str(world.checkout)], env=world.env, capture_output=True,
                         text=True, check=True)
    settings = json.loads(res.stdout)
    assert settings.get("gc.auto") == "0" and settings.get("maintenance.auto") == "false", settings
