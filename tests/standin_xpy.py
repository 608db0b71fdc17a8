#!/usr/bin/env python3
"""A stand-in for rustc's x.py in tests: records its arguments, prints what bootstrap
1.63 prints for `x.py build --stage 1 library/std`, and lays out a stage1 sysroot
whose rustc is a real one ($STANDIN_RUSTC). STANDIN_XPY_FAIL=1 makes it fail the way a compile error does."""

import json
import os
import shutil
import sys
from pathlib import Path

HOST = "x86_64-unknown-linux-gnu"
tree = Path(__file__).resolve().parent
(tree / "xpy-args.json").write_text(json.dumps(sys.argv[1:]))

# the announcements of a real stage1 build of the patched 1.63 with llvm.enzyme = true, in order
steps = [
    (f"Building stage0 std artifacts ({HOST} -> {HOST})", ["core", "alloc", "std"]),
    (f"Copying stage0 std from stage0 ({HOST} -> {HOST} / {HOST})", []),
    (f"Building stage0 compiler artifacts ({HOST} -> {HOST})", ["rustc_span", "rustc_middle", "rustc_driver"]),
    (f"Copying stage0 rustc from stage0 ({HOST} -> {HOST} / {HOST})", []),
    (f"Assembling stage1 compiler ({HOST})", []),
    (f"Building Enzyme for {HOST} against LLVM 13.0.1", []),
    (f"Building stage1 std artifacts ({HOST} -> {HOST})", ["core", "alloc", "std"]),
    (f"Copying stage1 std from stage1 ({HOST} -> {HOST} / {HOST})", []),
]
print("Building rustbuild")
print("    Finished dev [unoptimized] target(s) in 0.10s")
for i, (title, crates) in enumerate(steps):
    print(title, flush=True)
    for crate in crates:
        print(f"   Compiling {crate} v0.0.0 ({tree}/library/{crate})", flush=True)
    if os.environ.get("STANDIN_XPY_FAIL") and i == 2:
        print("warning: unused variable: `x`")
        print("error[E0425]: cannot find value `autodiff` in this scope")
        print("   --> compiler/rustc_codegen_ssa/src/back/write.rs:906:12")
        print("    |")
        print("error: aborting due to previous error")
        print("Build completed unsuccessfully in 0:00:01")
        sys.exit(1)

sysroot = tree / "build" / HOST / "stage1"
(sysroot / "bin").mkdir(parents=True, exist_ok=True)
(sysroot / "lib").mkdir(parents=True, exist_ok=True)
rustc = sysroot / "bin" / "rustc"
if not rustc.exists():
    rustc.symlink_to(os.environ.get("STANDIN_RUSTC") or shutil.which("rustc"))
(sysroot / "lib" / "LLVMEnzyme-13.so").write_text("stand-in")
print("Build completed successfully in 0:00:01")
