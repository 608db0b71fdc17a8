"""Differentiation through Enzyme with a stage1 compiler built from the series (outside CI).

A stage1 build takes 30 to 40 minutes here, so these run only when
PATCHMGR_STAGE1 names the stage1 sysroot of a compiler built with
`llvm.enzyme = true` (for example after `patchmgr build --stage 1`), and say so
when they do not run. They compile small programs with `-Z autodiff` and check
the derivative they print: one in the same crate, one from another crate (an
rlib), one that goes through code from std.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.stage1

PROGRAMS = Path(__file__).parent / "autodiff"
FLAGS = ["-O", "-C", "embed-bitcode=yes", "-C", "panic=abort"]


@pytest.fixture(scope="module")
def rustc():
    sysroot = os.environ.get("PATCHMGR_STAGE1")
    if not sysroot:
        pytest.skip("STAGE1 AUTODIFF TESTS NOT RUN: set PATCHMGR_STAGE1 to a stage1 sysroot built with "
                    "llvm.enzyme = true (they need a 30-40 minute build, so CI does not run them)")
    path = Path(sysroot) / "bin" / "rustc"
    assert path.exists(), f"{path} does not exist"
    return str(path)


def run(argv: list[str], cwd: Path) -> str:
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(argv)} failed:\n{res.stderr[-4000:]}"
    return res.stdout


def build_and_run(rustc: str, tmp: Path, main: str, *extra: str) -> str:
    run([rustc, *FLAGS, "-Z", "autodiff", str(PROGRAMS / main), "-o", str(tmp / "prog"), *extra], tmp)
    return run([str(tmp / "prog")], tmp).strip()


def test_same_crate(rustc, tmp_path):
    assert build_and_run(rustc, tmp_path, "square.rs") == "square'(3) = 6"


def test_function_from_another_crate(rustc, tmp_path):
    run([rustc, *FLAGS, "--crate-type", "rlib", "--crate-name", "poly", str(PROGRAMS / "poly.rs"),
         "--out-dir", str(tmp_path)], tmp_path)
    out = build_and_run(rustc, tmp_path, "cross_crate.rs", "--extern", f"poly={tmp_path / 'libpoly.rlib'}")
    assert out == "cube_plus'(2) = 14"


def test_through_std(rustc, tmp_path):
    assert build_and_run(rustc, tmp_path, "with_std.rs") == "weighted'(0) = 7"


def test_fat_lto_path(rustc, tmp_path):
    run([rustc, *FLAGS, "--crate-type", "rlib", "--crate-name", "poly", str(PROGRAMS / "poly.rs"),
         "--out-dir", str(tmp_path)], tmp_path)
    out = build_and_run(rustc, tmp_path, "cross_crate.rs", "--extern", f"poly={tmp_path / 'libpoly.rlib'}",
                        "-C", "lto=fat")
    assert out == "cube_plus'(2) = 14"


def test_without_the_flag_enzyme_never_runs(rustc, tmp_path):
    """What the series is for: nothing replaces the call to __enzyme_autodiff without -Z autodiff."""
    res = subprocess.run([rustc, *FLAGS, str(PROGRAMS / "square.rs"), "-o", str(tmp_path / "prog")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "undefined reference to `__enzyme_autodiff'" in res.stderr


def test_without_enzyme_requirements_is_an_error(rustc, tmp_path):
    res = subprocess.run([rustc, "-Z", "autodiff", "-C", "embed-bitcode=no", str(PROGRAMS / "square.rs"),
                          "-o", str(tmp_path / "prog")], capture_output=True, text=True)
    assert res.returncode != 0
    assert "`-Z autodiff` needs the bitcode of every crate" in res.stderr
    assert "panicked" not in res.stderr
    res = subprocess.run([rustc, "-Z", "autodiff", "-C", "lto=thin", str(PROGRAMS / "square.rs"),
                          "-o", str(tmp_path / "prog")], capture_output=True, text=True)
    assert res.returncode != 0 and "does not work with thin LTO" in res.stderr


def test_stage1_build_through_patchmgr():
    """`patchmgr build --stage 1` on a prepared, patched tree (PATCHMGR_STAGE1_TREE): 30-40 minutes."""
    import sys

    tree = os.environ.get("PATCHMGR_STAGE1_TREE")
    if not tree:
        pytest.skip("STAGE1 BUILD NOT RUN: set PATCHMGR_STAGE1_TREE to a tree prepared by "
                    "scripts/prepare_bootstrap.py with the series applied (a 30-40 minute build, outside CI)")
    res = subprocess.run([sys.executable, "-m", "patchmgr", "-C", tree, "build", "--stage", "1", "--no-link",
                          "--llvm-config", os.environ.get("PATCHMGR_LLVM_CONFIG", "/usr/lib/llvm-13/bin/llvm-config")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "passed the smoke test" in res.stderr
    assert list((Path(tree) / "build/x86_64-unknown-linux-gnu/stage1/lib").glob("LLVMEnzyme-*"))
