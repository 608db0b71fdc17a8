"""The series compiles: x.py check on the real, patched rustc 1.63.0 tree (minutes).

The tree is prepared for an offline bootstrap as Debian does (its quilt series,
pruned checksums, settled Cargo.lock, local-rebuild with Debian's rustc 1.63),
the series is applied with patchmgr (which writes config.toml from the set's bootstrap template),
then `x.py check compiler/rustc_codegen_llvm`
runs with Enzyme off and again with `llvm.enzyme = true` (the compiler crates see
`--cfg llvm_enzyme`; a check does not build Enzyme itself). The #[autodiff] attribute's rules
(modes, activities, which activity suits which type: the expansion errors) are a module without
compiler dependencies, so their unit tests run here with the stage0 rustc, in seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from realtree import REAL_SET, REPO, RealTree, unavailable

from patchmgr.series import load_manifest
from xpy_ext.commands import build_llvm

pytestmark = [pytest.mark.realtree, pytest.mark.slow]

#: the LLVM the shipped set builds with by default: the newest its pinned Enzyme builds against
LLVM = build_llvm(load_manifest(REPO / "patches").get(REAL_SET))

sys.path.insert(0, str(REPO / "scripts"))


@pytest.fixture(scope="module")
def patched(tmp_path_factory):
    rustc = shutil.which("rustc", path="/usr/bin")
    version = subprocess.run([rustc, "--version"], capture_output=True, text=True).stdout if rustc else ""
    if not version.startswith("rustc 1.63.") or not shutil.which("llvm-config", path=f"/usr/lib/llvm-{LLVM}/bin"):
        unavailable(f"Debian's rustc 1.63 and llvm-{LLVM}-dev are needed for x.py check; run scripts/install_deps.sh as root")
    import prepare_bootstrap

    real = RealTree(tmp_path_factory.mktemp("check"))
    prepare_bootstrap.prepare(real.root)
    res = real.run("apply")
    assert res.returncode == 0, res.stderr
    # apply rendered the set's template for 1.63: offline local-rebuild on the system LLVM the pinned Enzyme builds with
    config = (real.root / "config.toml").read_text()
    assert config.startswith("changelog-seen = 2\n")
    for line in ['vendor = true', 'rustc = "/usr/bin/rustc"', 'local-rebuild = true', 'enzyme = true',
                 f'llvm-config = "/usr/lib/llvm-{LLVM}/bin/llvm-config"']:
        assert line in config, line
    return real


def test_build_dry_run_on_the_real_tree(patched):
    res = patched.run("build", "--dry-run", "-j", "2")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1].endswith("x.py build --stage 1 -j 2 library/std")
    assert "changelog-seen = 2" in lines and "enzyme = true" in lines
    assert not (patched.root / "build" / "patchmgr-build.log").exists()


def test_bootstrap_builds_enzyme_with_cmake(patched):
    """The series' bootstrap step builds Enzyme (here the stand-in) against the system LLVM."""
    import compile_check

    from xpy_ext.xpy import run_xpy

    compile_check.set_enzyme(patched.root, True)
    log = patched.tmp / "enzyme-build.log"
    result = run_xpy(patched.root, ["build", "src/llvm-project/enzyme"], log)
    assert result.returncode == 0, f"{result.first_error}; see {log}:\n" + log.read_text()[-3000:]
    assert f"Building Enzyme for x86_64-unknown-linux-gnu against LLVM {LLVM}." in log.read_text()
    library = next(patched.root.glob(f"build/*/native/enzyme/build/Enzyme/LLVMEnzyme-{LLVM}.so"))
    # like Enzyme itself, the library registers a legacy pass named `enzyme` when loaded
    ir = patched.tmp / "f.ll"
    ir.write_text("define double @f(double %x) {\n  ret double %x\n}\n")
    res = subprocess.run([f"/usr/lib/llvm-{LLVM}/bin/opt", "-enable-new-pm=0", "-load", str(library), "-enzyme", "-S",
                          str(ir)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "define double @f(double %x)" in res.stdout


@pytest.mark.parametrize("enzyme_cfg", [False, True], ids=["enzyme-off", "cfg-llvm_enzyme"])
def test_xpy_check_codegen_llvm(patched, enzyme_cfg):
    import compile_check

    log = patched.tmp / f"check-{'on' if enzyme_cfg else 'off'}.log"
    rc = compile_check.check(patched.root, enzyme_cfg, log)
    assert rc == 0, f"x.py check failed; see {log}:\n" + log.read_text()[-3000:]
    text = log.read_text()
    assert "Checking rustc_codegen_llvm" in text
    # cargo's fingerprints record the flags the LLVM backend was checked with
    prints = [p.read_text() for p in patched.root.glob(
        "build/*/stage0-rustc/*/release/.fingerprint/rustc_codegen_llvm-*/lib-rustc_codegen_llvm.json")]
    assert prints
    assert any('"--cfg=llvm_enzyme"' in p for p in prints) == enzyme_cfg
    # patchmgr still sees the applied set, and x.py left the tracked tree alone
    status = patched.run("status")
    assert status.returncode == 0 and "state: applied" in status.stdout
    assert "dirty" not in status.stdout


def test_autodiff_attribute_rules_unit_tests(patched):
    """rustc_builtin_macros' autodiff/rules.rs, as the series writes it, compiled alone with its
    tests (`rustc --test`) and run: rustc's ui tests would need a stage1 compiler."""
    rules = patched.root / "compiler/rustc_builtin_macros/src/autodiff/rules.rs"
    binary = patched.tmp / "autodiff-rules-tests"
    res = subprocess.run(["/usr/bin/rustc", "--edition", "2021", "--test", str(rules), "-o", str(binary)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([str(binary)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"^test result: ok\. [1-9]\d* passed; 0 failed", res.stdout, re.M), res.stdout
