"""xpy_ext: config rendering and merging, the x.py runner, `patchmgr build`."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from patchmgr.errors import BadInput
from xpy_ext import config
from xpy_ext.build import Progress, expected_steps, run_build
from xpy_ext.versions import bootstrap_for, header_value
from xpy_ext.xpy import first_error, run_xpy

HERE = Path(__file__).parent
TEMPLATE = HERE.parent / "patches" / "autodiff-1.63.0" / "config.toml.in"  # the autodiff set's bootstrap template

EXAMPLE_163 = """# Sample TOML configuration file (1.63 style)
#changelog-seen = 2
#profile = <none>
[llvm]
#link-shared = false
#enzyme = false
[build]
#vendor = false
#locked-deps = false
#submodules = true
#rustc = "/path/to/rustc"
#cargo = "/path/to/cargo"
#local-rebuild = false
#docs = true
#extended = false
[rust]
#deny-warnings = true
#jemalloc = false
#codegen-units = 1
[target.x86_64-unknown-linux-gnu]
#llvm-config = <none>
"""


def tree_163(tmp_path: Path) -> Path:
    (tmp_path / "config.toml.example").write_text(EXAMPLE_163)
    return tmp_path


def tree_185(tmp_path: Path) -> Path:
    example = EXAMPLE_163.replace("#changelog-seen = 2", "#change-id = <latest>").replace("[build]", "[build]\n#jobs = 0")
    (tmp_path / "config.example.toml").write_text(example)
    tracker = tmp_path / "src/bootstrap/src/utils/change_tracker.rs"
    tracker.parent.mkdir(parents=True)
    tracker.write_text("ChangeInfo { change_id: 123456, ... },\nChangeInfo { change_id: 134809, ... },\n"
                       "ChangeInfo { change_id: 134650, ... },\n")
    return tmp_path


PARAMS = config.Params(offline=True, stage0_rustc="/usr/bin/rustc", stage0_cargo="/usr/bin/cargo",
                       llvm_config="/usr/lib/llvm-14/bin/llvm-config")


def test_render_for_1_63(tmp_path):
    text, row = config.render_for_tree(tree_163(tmp_path), "1.63.0", PARAMS, TEMPLATE)
    assert row.config_file == "config.toml"
    assert text.startswith("changelog-seen = 2\n")
    for line in ["vendor = true", 'rustc = "/usr/bin/rustc"', "local-rebuild = true", "enzyme = true",
                 "link-shared = true", "[target.x86_64-unknown-linux-gnu]",
                 'llvm-config = "/usr/lib/llvm-14/bin/llvm-config"']:
        assert line in text, line
    assert "@" not in text.replace("# \"@name@\"", "")  # every placeholder filled or dropped
    assert "profile" not in [line.split(" =")[0] for line in text.splitlines()]


def test_render_for_a_newer_base_uses_change_id(tmp_path):
    tree = tree_185(tmp_path)
    row = bootstrap_for("1.85.0")
    assert (row.config_file, row.header) == ("config.toml", "change-id")
    assert header_value(tree, row) == 134809
    text, _ = config.render_for_tree(tree, "1.85.0", config.Params(jobs=2), TEMPLATE)
    assert text.startswith("change-id = 134809\n") and "jobs = 2" in text
    assert not any(line.startswith("changelog-seen") for line in text.splitlines())
    assert bootstrap_for("1.90.0").config_file == "bootstrap.toml"


def test_key_unknown_to_the_tree_is_refused(tmp_path):
    with pytest.raises(BadInput, match=r"key build\.jobs is not known to this tree's bootstrap"):
        config.render_for_tree(tree_163(tmp_path), "1.63.0", config.Params(jobs=2), TEMPLATE)
    example = tmp_path / "config.toml.example"
    example.write_text(EXAMPLE_163.replace("#enzyme = false\n", ""))  # an unpatched 1.63 tree
    with pytest.raises(BadInput, match=r"key llvm\.enzyme is not known"):
        config.render_for_tree(tmp_path, "1.63.0", PARAMS, TEMPLATE)


USER_CONFIG = """# my own settings, do not lose these comments
changelog-seen = 2

[rust]
codegen-units = 4  # fast builds
deny-warnings = true   # I want warnings to fail

[dist]
compression-formats = ["gz"]
"""


def test_merge_keeps_user_values_and_comments_byte_for_byte(tmp_path):
    tree = tree_163(tmp_path)
    (tree / "config.toml").write_text(USER_CONFIG)
    path, changes, written = config.write_config(tree, "1.63.0", PARAMS, TEMPLATE)
    assert written
    merged = path.read_text()
    # every line the user wrote is still there, in order
    positions = [merged.index(line) for line in USER_CONFIG.splitlines() if line]
    assert positions == sorted(positions)
    assert "deny-warnings = true   # I want warnings to fail" in merged
    assert any(c.startswith("kept your rust.deny-warnings = true") for c in changes)
    assert "added llvm.enzyme = true" in " ".join(changes) or "added [llvm]" in changes
    assert (tree / "config.toml.patchmgr-backup").read_text() == USER_CONFIG


def test_second_write_is_a_no_op_with_no_mtime_change(tmp_path):
    tree = tree_163(tmp_path)
    path, _, written = config.write_config(tree, "1.63.0", PARAMS, TEMPLATE)
    assert written
    before = path.stat().st_mtime_ns
    _, _, written = config.write_config(tree, "1.63.0", PARAMS, TEMPLATE)
    assert not written and path.stat().st_mtime_ns == before
    assert not (tree / "config.toml.patchmgr-backup").exists()


def test_first_error_finds_the_rustc_error_and_its_location():
    lines = ["   Compiling foo", "warning: unused", "error[E0425]: cannot find value `x` in this scope",
             "  --> src/lib.rs:3:5", "error: aborting due to previous error"]
    assert first_error(lines) == "error[E0425]: cannot find value `x` in this scope (src/lib.rs:3:5)"
    assert first_error(["CMake Error at CMakeLists.txt:3 (find_package):"]).startswith("CMake Error")
    assert "undefined reference" in first_error(["/usr/bin/ld: foo.o: undefined reference to `bar'"])
    assert first_error(["all good"]) is None


@pytest.fixture
def xpy_tree(tmp_path):
    shutil.copy(HERE / "standin_xpy.py", tmp_path / "x.py")
    return tmp_path


def test_run_build_progress_log_and_success(xpy_tree):
    out = io.StringIO()
    progress = Progress(total=expected_steps(1, enzyme=True), out=out)
    log = xpy_tree / "build" / "build.log"
    result = run_xpy(xpy_tree, ["build", "--stage", "1", "library/std"], log, echo=progress)
    assert result.returncode == 0 and result.first_error is None
    assert json.loads((xpy_tree / "xpy-args.json").read_text()) == ["build", "--stage", "1", "library/std"]
    shown = out.getvalue().splitlines()
    assert shown[0] == "[1/5] Building stage0 std artifacts (x86_64-unknown-linux-gnu -> x86_64-unknown-linux-gnu)"
    assert shown[3] == "[4/5] Building Enzyme for x86_64-unknown-linux-gnu against LLVM 13.0.1"
    assert shown[-1].startswith("[5/5] Building stage1 std artifacts")
    assert len(shown) == 5  # copying steps are not counted
    assert "Build completed successfully" in log.read_text()


def test_run_build_failure_reports_first_error(xpy_tree, monkeypatch):
    monkeypatch.setenv("STANDIN_XPY_FAIL", "1")
    log = xpy_tree / "fail.log"
    result = run_build(xpy_tree, ["build", "--stage", "1"], log, enzyme=True, stage=1)
    assert result.returncode == 1
    assert result.first_error == ("error[E0425]: cannot find value `autodiff` in this scope "
                                  "(compiler/rustc_codegen_ssa/src/back/write.rs:906:12)")
    assert "Build completed unsuccessfully" in log.read_text()


def real_rustc() -> str:
    """The rustc binary itself (not a rustup proxy, which needs the real HOME)."""
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    return str(Path(sysroot) / "bin" / "rustc")


def test_patchmgr_build_dry_run_and_build(world):
    world.env["STANDIN_RUSTC"] = real_rustc()
    assert world.run("apply").returncode == 0
    (world.checkout / "config.toml.example").write_text(EXAMPLE_163)
    shutil.copy(HERE / "standin_xpy.py", world.checkout / "x.py")
    args = ["build", "--llvm-config", "none", "--stage0", "download", "--no-link"]
    dry = world.run(*args, "--dry-run", "-j", "2")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[-1].endswith("x.py build --stage 1 -j 2 library/std")
    assert "changelog-seen = 2" in dry.stdout and "enzyme = true" in dry.stdout
    assert not (world.checkout / "xpy-args.json").exists()  # dry run ran nothing
    assert not (world.checkout / "config.toml").exists()

    res = world.run(*args)
    assert res.returncode == 0, res.stderr
    assert "[5/5] Building stage1 std artifacts" in res.stderr
    assert "passed the smoke test" in res.stderr
    assert (world.checkout / "build" / "patchmgr-build.log").is_file()

    failed = world.run(*args, env_extra={"STANDIN_XPY_FAIL": "1"})
    assert failed.returncode == 11
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("patchmgr: error: x.py build failed: error[E0425]: cannot find value `autodiff`")
    assert last.endswith("patchmgr-build.log")


def test_build_refuses_an_unapplied_tree(world):
    res = world.run("build", "--dry-run")
    assert res.returncode == 7 and "run patchmgr apply first" in res.stderr


def test_apply_writes_config_and_unapply_puts_it_back(world):
    from fixture import snapshot

    (world.checkout / "config.toml.example").write_text(EXAMPLE_163)
    (world.checkout / "config.toml").write_text(USER_CONFIG)
    before = snapshot(world)
    res = world.run("apply", "--llvm-config", "none", "--stage0", "download")
    assert res.returncode == 0, res.stderr
    assert "config.toml: added" in res.stderr
    merged = (world.checkout / "config.toml").read_text()
    assert "enzyme = true" in merged and merged.startswith(USER_CONFIG.split("\n")[0])
    again = world.run("apply", "--llvm-config", "none", "--stage0", "download")
    assert "config.toml is up to date" in again.stderr
    res = world.run("unapply")
    assert res.returncode == 0, res.stderr
    assert "config.toml restored from config.toml.patchmgr-backup" in res.stderr
    assert snapshot(world) == before


def test_unapply_leaves_a_config_the_user_changed(world):
    (world.checkout / "config.toml.example").write_text(EXAMPLE_163)
    assert world.run("apply", "--llvm-config", "none", "--stage0", "download").returncode == 0
    config_file = world.checkout / "config.toml"
    config_file.write_text(config_file.read_text() + "\n[dist]\ncompression-formats = [\"xz\"]\n")
    res = world.run("unapply")
    assert res.returncode == 0 and "changed since patchmgr wrote it; left as it is" in res.stderr
    assert "compression-formats" in config_file.read_text()


def test_explicit_choice_replaces_the_file_value(tmp_path):
    tree = tree_163(tmp_path)
    (tree / "config.toml").write_text('changelog-seen = 2\n\n[target.x86_64-unknown-linux-gnu]\n'
                                      'llvm-config = "/usr/lib/llvm-14/bin/llvm-config"  # mine\n')
    params = config.Params(llvm_config="/usr/lib/llvm-13/bin/llvm-config")
    _, changes, written = config.write_config(tree, "1.63.0", params, TEMPLATE)
    assert written and any(c.startswith("kept your target.x86_64-unknown-linux-gnu.llvm-config") for c in changes)
    _, changes, written = config.write_config(tree, "1.63.0", params, TEMPLATE,
                                              config.forced_keys("/usr/lib/llvm-13/bin/llvm-config", "auto"))
    assert written and any(c.startswith("set target.x86_64-unknown-linux-gnu.llvm-config") for c in changes)
    assert config.effective(tree, bootstrap_for("1.63.0"), "x86_64-unknown-linux-gnu")["llvm_config"] == \
        "/usr/lib/llvm-13/bin/llvm-config"
