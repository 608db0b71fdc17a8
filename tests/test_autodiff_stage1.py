"""Differentiation through Enzyme with a stage1 compiler built from the series (outside CI).

A stage1 build takes 30 to 40 minutes here, so these run only when
PATCHMGR_STAGE1 names the stage1 sysroot of a compiler built with
`llvm.enzyme = true` (for example after `patchmgr build --stage 1`), and say so
when they do not run. They compile small programs with `-Z autodiff` and check
the derivative they print: one in the same crate, one from another crate (an
rlib), one that goes through code from std; a cargo workspace with a proc
macro (the cargo recipe); the #[autodiff] attribute in reverse and forward
mode, in one crate and across crates, with a Duplicated slice, and its
expansion errors; what Enzyme cannot differentiate as a short compiler error
(with its IR on request); a package with crates.io dependencies taken from the
tree's vendored crates.
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


# --- cargo: a workspace with a proc macro (README, "Using autodiff from cargo") -------------

CARGO = os.environ.get("PATCHMGR_CARGO", "/usr/bin/cargo")  # cargo 1.65 here; it drives a 1.63 rustc


def cargo_build(rustc: str, tmp: Path, rustflags: str, *args: str, env: dict[str, str] | None = None) -> Path:
    """Builds a copy of tests/autodiff/cargo_workspace offline with the stage1 rustc; the workspace."""
    import shutil

    work = tmp / "ws"
    if not work.exists():
        shutil.copytree(PROGRAMS / "cargo_workspace", work)
    full = {**os.environ, "RUSTC": rustc, "RUSTFLAGS": rustflags, "CARGO_HOME": str(tmp / "cargo-home"),
            "CARGO_TARGET_DIR": str(work / "target"), **(env or {})}
    full.pop("RUSTC_WRAPPER", None)
    res = subprocess.run([CARGO, "build", "--offline", *args], cwd=work, env=full, capture_output=True, text=True)
    assert res.returncode == 0, f"cargo build {' '.join(args)} failed:\n{res.stderr[-4000:]}"
    return work


@pytest.mark.parametrize("profile", ["release", "dev"])
def test_cargo_workspace_with_a_proc_macro(rustc, tmp_path, profile):
    """The recipe: RUSTFLAGS="-Z autodiff -C embed-bitcode=yes"; the proc macro compiles as without the flag."""
    args = ["--release"] if profile == "release" else []
    work = cargo_build(rustc, tmp_path, "-Z autodiff -C embed-bitcode=yes", *args)
    out = run([str(work / "target" / ("release" if profile == "release" else "debug") / "app")], work)
    assert out.strip() == "f'(2) = 13"


def test_cargo_workspace_with_fat_lto(rustc, tmp_path):
    """`lto = "fat"`: cargo gives the rlibs -C linker-plugin-lto and the proc macro -C embed-bitcode=no."""
    work = cargo_build(rustc, tmp_path, "-Z autodiff", "--release", env={"CARGO_PROFILE_RELEASE_LTO": "fat"})
    assert run([str(work / "target/release/app")], work).strip() == "f'(2) = 13"


def test_cargo_host_target_keeps_host_crates_out(rustc, tmp_path):
    """With --target, RUSTFLAGS reach only the target's crates (not proc macros, not build scripts)."""
    work = cargo_build(rustc, tmp_path, "-Z autodiff -C embed-bitcode=yes", "--release",
                       "--target", "x86_64-unknown-linux-gnu")
    assert run([str(work / "target/x86_64-unknown-linux-gnu/release/app")], work).strip() == "f'(2) = 13"


def test_cargo_without_embed_bitcode_names_the_fix(rustc, tmp_path):
    import shutil

    work = tmp_path / "ws"
    shutil.copytree(PROGRAMS / "cargo_workspace", work)
    env = {**os.environ, "RUSTC": rustc, "RUSTFLAGS": "-Z autodiff", "CARGO_HOME": str(tmp_path / "cargo-home"),
           "CARGO_TARGET_DIR": str(work / "target")}
    res = subprocess.run([CARGO, "build", "--offline", "--release"], cwd=work, env=env, capture_output=True, text=True)
    assert res.returncode != 0
    assert "`-Z autodiff` needs the bitcode of every crate" in res.stderr
    assert 'RUSTFLAGS="-Z autodiff -C embed-bitcode=yes"' in res.stderr
    assert "cannot prefer dynamic linking" not in res.stderr  # the proc macro is not the one that fails


def test_proc_macro_crate_compiles_as_without_the_flag(rustc, tmp_path):
    """Even with -C embed-bitcode=no, a proc macro takes no whole-program path and no check."""
    src = PROGRAMS / "cargo_workspace/macros/src/lib.rs"
    run([rustc, "-Z", "autodiff", "-C", "embed-bitcode=no", "-C", "prefer-dynamic", "--crate-type", "proc-macro",
         "--crate-name", "macros", "--edition", "2021", "--extern", "proc_macro", str(src), "--out-dir", str(tmp_path)],
        tmp_path)
    run([rustc, "-Z", "autodiff", "-C", "embed-bitcode=no", "--crate-type", "rlib", "--crate-name", "poly",
         "--edition", "2021", str(PROGRAMS / "poly.rs"), "--out-dir", str(tmp_path)], tmp_path)


# --- the #[autodiff] attribute ------------------------------------------------------------

def test_attribute_reverse_mode(rustc, tmp_path):
    assert build_and_run(rustc, tmp_path, "attr_reverse.rs") == "f(3, 2) = 24, df/dx = 12, df/dy = 12"


def test_attribute_forward_mode(rustc, tmp_path):
    assert build_and_run(rustc, tmp_path, "attr_forward.rs") == "g(2) = 8, g'(2) = 12"


def test_attribute_duplicated_slice(rustc, tmp_path):
    assert build_and_run(rustc, tmp_path, "attr_slice.rs") == "sum_sq = 14, gradient = [2.0, 4.0, 6.0]"


def test_attribute_across_crates(rustc, tmp_path):
    run([rustc, *FLAGS, "-Z", "autodiff", "--crate-type", "rlib", "--crate-name", "attr_lib",
         str(PROGRAMS / "attr_lib.rs"), "--out-dir", str(tmp_path)], tmp_path)
    out = build_and_run(rustc, tmp_path, "attr_main.rs", "--extern", f"attr_lib={tmp_path / 'libattr_lib.rlib'}")
    assert out == "reverse: cube(2) = 10, cube'(2) = 13\nforward: cube(2) = 10, cube'(2) = 13"


def test_attribute_expansion_errors(rustc, tmp_path):
    res = subprocess.run([rustc, "-Z", "autodiff", str(PROGRAMS / "attr_errors.rs"), "-o", str(tmp_path / "prog")],
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    for message in ["wrong number of activities: expected 2 (one for each of the 1 arguments",
                    "`Active` takes a by-value float; a reference is `Duplicated`",
                    "`Duplicated` takes a reference; a by-value float is `Active`",
                    "unknown autodiff mode `Backward`",
                    "`#[autodiff]` does not support generic functions yet",
                    "`#[autodiff]` does not support methods yet"]:
        assert message in res.stderr
    assert "panicked" not in res.stderr


def test_attribute_needs_the_flag_and_the_feature(rustc, tmp_path):
    res = subprocess.run([rustc, str(PROGRAMS / "attr_reverse.rs"), "-o", str(tmp_path / "prog")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "`#[autodiff]` needs `-Z autodiff`" in res.stderr
    src = tmp_path / "ungated.rs"
    src.write_text((PROGRAMS / "attr_reverse.rs").read_text().replace("#![feature(autodiff)]", ""))
    res = subprocess.run([rustc, "-Z", "autodiff", str(src), "-o", str(tmp_path / "prog")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "use of unstable library feature 'autodiff'" in res.stderr


# --- what Enzyme cannot differentiate: a compiler error -----------------------------------

def compile_failing(rustc: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([rustc, *FLAGS, "-Z", "autodiff", str(PROGRAMS / "enzyme_failure.rs"),
                           "-o", str(tmp / "prog"), *extra], capture_output=True, text=True)


def test_enzyme_failure_is_a_short_error(rustc, tmp_path):
    """Enzyme itself (v0.0.24 as v0.0.30) ends in `LLVM ERROR: unknown binary operator` after printing IR."""
    res = compile_failing(rustc, tmp_path)
    assert res.returncode == 1, res.stderr[-4000:]
    assert "error: Enzyme: cannot handle unknown binary operator in enzyme_failure::flip_low_bit: " \
           "%3 = xor i64 %2, 1" in res.stderr, res.stderr[-4000:]
    assert "`-Z autodiff-print-ir` prints the IR Enzyme failed on" in res.stderr
    assert len(res.stderr.splitlines()) < 20, res.stderr[-4000:]
    assert "define " not in res.stderr and "LLVM ERROR" not in res.stderr and "panicked" not in res.stderr
    assert not (tmp_path / "prog").exists()


def test_enzyme_failure_prints_the_ir_on_request(rustc, tmp_path):
    res = compile_failing(rustc, tmp_path, "-Z", "autodiff-print-ir")
    assert res.returncode == 1, res.stderr[-4000:]
    assert "error: Enzyme: cannot handle unknown binary operator in enzyme_failure::flip_low_bit" in res.stderr
    assert "define internal double @preprocess__ZN14enzyme_failure12flip_low_bit" in res.stderr
    assert "constantinst[" in res.stderr
    assert "note: `-Z autodiff-print-ir`" not in res.stderr


# --- crates.io dependencies, offline from the tree's vendored crates -------------------------

def vendored_package(rustc: str, tmp: Path) -> Path:
    """A copy of tests/autodiff/vendored_crates whose crates.io source is the tree's vendor dir."""
    import shutil

    sysroot = Path(rustc).parent.parent  # <tree>/build/<host>/stage1
    vendor = os.environ.get("PATCHMGR_VENDOR") or str((sysroot / "../../../vendor").resolve())
    if not (Path(vendor) / "libm").is_dir() or not (Path(vendor) / "num-traits").is_dir():
        pytest.skip(f"VENDORED CRATES TEST NOT RUN: no libm and num-traits in {vendor} (the vendor dir of the "
                    "tree the stage1 sysroot was built in); set PATCHMGR_VENDOR to a rustc tree's vendor dir")
    work = tmp / "pkg"
    shutil.copytree(PROGRAMS / "vendored_crates", work)
    (work / ".cargo").mkdir()
    (work / ".cargo" / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "vendored"\n\n'
        f'[source.vendored]\ndirectory = "{vendor}"\n')
    return work


def cargo_vendored(rustc: str, tmp: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUSTC": rustc, "RUSTFLAGS": "-Z autodiff -C embed-bitcode=yes",
           "CARGO_HOME": str(tmp / "cargo-home"), "CARGO_TARGET_DIR": str(work / "target")}
    env.pop("RUSTC_WRAPPER", None)
    return subprocess.run([CARGO, "build", "--offline", "--release", *args], cwd=work, env=env,
                          capture_output=True, text=True)


def test_crate_from_crates_io_through_vendored_sources(rustc, tmp_path):
    work = vendored_package(rustc, tmp_path)
    res = cargo_vendored(rustc, tmp_path, work, "--bin", "pow")
    assert res.returncode == 0, res.stderr[-4000:]
    assert "Compiling num-traits v0.2" in res.stderr
    assert run([str(work / "target/release/pow")], work).strip() == "cube'(2) = 12"


def test_libm_sin_is_a_short_error(rustc, tmp_path):
    """Enzyme itself prints the whole module's IR and aborts on libm's sin (illegal updateAnalysis)."""
    work = vendored_package(rustc, tmp_path)
    res = cargo_vendored(rustc, tmp_path, work, "--bin", "sin")
    assert res.returncode != 0
    assert "error: Enzyme: illegal type analysis update in " in res.stderr, res.stderr[-4000:]
    assert "could not compile `vendored`" in res.stderr
    assert "define " not in res.stderr and "internal compiler error" not in res.stderr
    assert len(res.stderr.splitlines()) < 30, res.stderr[-4000:]


def test_stage1_build_through_patchmgr():
    """`patchmgr build --stage 1` on a prepared, patched tree (PATCHMGR_STAGE1_TREE): 30-40 minutes."""
    import sys

    tree = os.environ.get("PATCHMGR_STAGE1_TREE")
    if not tree:
        pytest.skip("STAGE1 BUILD NOT RUN: set PATCHMGR_STAGE1_TREE to a tree prepared by "
                    "scripts/prepare_bootstrap.py with the series applied (a 30-40 minute build, outside CI)")
    res = subprocess.run([sys.executable, "-m", "patchmgr", "-C", tree, "build", "--stage", "1", "--no-link",
                          "--llvm-config", os.environ.get("PATCHMGR_LLVM_CONFIG", "auto")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "passed the smoke test" in res.stderr
    assert list((Path(tree) / "build/x86_64-unknown-linux-gnu/stage1/lib").glob("LLVMEnzyme-*"))
