#!/usr/bin/env python3
"""Compile-check the patched compiler: `x.py check compiler/rustc_codegen_llvm`.

Run on a tree prepared by prepare_bootstrap.py with the series applied. With
--enzyme-cfg, `llvm.enzyme = true` is set in config.toml first, so the
compiler crates are checked with `--cfg llvm_enzyme` (Enzyme itself is not
built by a check). Prints the time taken and, on failure, the first error and
the log's path.

    scripts/compile_check.py TREE [--enzyme-cfg] [--log FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tomlkit  # noqa: E402

from xpy_ext.xpy import run_xpy  # noqa: E402


def set_enzyme(tree: Path, on: bool) -> None:
    """Set llvm.enzyme in the tree's config.toml, keeping everything else as it is."""
    config = tree / "config.toml"
    doc = tomlkit.parse(config.read_text())
    doc.setdefault("llvm", tomlkit.table())["enzyme"] = on
    config.write_text(tomlkit.dumps(doc))


def check(tree: Path, enzyme_cfg: bool, log: Path) -> int:
    set_enzyme(tree, enzyme_cfg)
    start = time.monotonic()
    result = run_xpy(tree, ["check", "compiler/rustc_codegen_llvm"], log)
    took = time.monotonic() - start
    what = "with --cfg llvm_enzyme" if enzyme_cfg else "with Enzyme off"
    if result.returncode == 0:
        print(f"compile_check: x.py check compiler/rustc_codegen_llvm {what}: ok in {took:.0f} s (log {log})")
    else:
        print(f"compile_check: x.py check {what} failed in {took:.0f} s: {result.first_error}; full log: {log}",
              file=sys.stderr)
    return result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--enzyme-cfg", action="store_true", help="set llvm.enzyme = true first")
    parser.add_argument("--log", type=Path, help="log file (default: TREE/build/compile-check.log)")
    args = parser.parse_args()
    tree = args.tree.resolve()
    return check(tree, args.enzyme_cfg, args.log or tree / "build" / "compile-check.log")


if __name__ == "__main__":
    sys.exit(main())
