"""Before a build: is everything x.py will need here? One line per missing piece.

Each problem names the Debian package that fixes it, so a fresh machine is one
`apt-get install` away from building.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from xpy_ext.versions import Bootstrap, oldest_llvm

MIN_FREE_GB = 25  # a stage1 build of 1.63 with its LLVM build dir, measured: about 15 GB


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}; {self.fix}"


def _version(argv: list[str]) -> str | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def llvm_major(llvm_config: str) -> int | None:
    out = _version([llvm_config, "--version"])
    m = re.match(r"(\d+)\.", out or "")
    return int(m.group(1)) if m else None


def enzyme_library_major(sysroot: Path) -> int | None:
    """The LLVM major of an Enzyme library already in a sysroot, from its name."""
    for lib in sorted((sysroot / "lib").glob("LLVMEnzyme-*")):
        m = re.match(r"LLVMEnzyme-(\d+)", lib.name)
        if m:
            return int(m.group(1))
    return None


def majors_text(majors: tuple[int, ...]) -> str:
    """LLVM majors as a reader says them: a run of consecutive ones as "7 to 14" (an Enzyme
    release's CI covers a range), others as "13 or 15"."""
    ordered = sorted(majors)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]} to {ordered[-1]}"
    return " or ".join(str(m) for m in ordered)


def check(tree: Path, row: Bootstrap, version: str, *, llvm_config: str | None, stage0_rustc: str | None,
          offline: bool, enzyme: bool, stage1_sysroot: Path | None = None,
          enzyme_llvm: tuple[int, ...] = ()) -> list[Problem]:
    """`enzyme_llvm`: the LLVM majors the pinned Enzyme builds against (empty: not stated)."""
    problems: list[Problem] = []
    for tool, package in [("cmake", "cmake"), ("ninja", "ninja-build"), ("c++", "g++"), ("cc", "gcc"),
                          ("git", "git")]:
        if shutil.which(tool) is None:
            problems.append(Problem(f"{tool} is not installed", f"apt-get install {package}"))
    if llvm_config:
        major = llvm_major(llvm_config)
        oldest = oldest_llvm(tree, row)
        if major is None:
            needed = max(enzyme_llvm) if enzyme and enzyme_llvm else oldest or 14
            problems.append(Problem(f"llvm-config {llvm_config} does not run",
                                    f"apt-get install llvm-{needed}-dev (or pass --llvm-config)"))
        elif oldest and major < oldest:
            problems.append(Problem(f"LLVM {major} from {llvm_config} is older than rustc {version} accepts ({oldest})",
                                    f"apt-get install llvm-{oldest}-dev and pass its llvm-config"))
        elif enzyme and enzyme_llvm and major not in enzyme_llvm:
            wanted = majors_text(enzyme_llvm)
            problems.append(Problem(f"LLVM {major} from {llvm_config} is not one the pinned Enzyme builds against "
                                    f"(LLVM {wanted})",
                                    f"apt-get install llvm-{max(enzyme_llvm)}-dev and pass --llvm-config "
                                    f"/usr/lib/llvm-{max(enzyme_llvm)}/bin/llvm-config (or leave it at auto)"))
        elif enzyme and stage1_sysroot is not None:
            built = enzyme_library_major(stage1_sysroot)
            if built is not None and built != major:
                problems.append(Problem(f"the sysroot's Enzyme was built for LLVM {built}, this build uses LLVM {major}",
                                        "remove build/*/native/enzyme and build again"))
    if stage0_rustc:
        out = _version([stage0_rustc, "--version"])
        want = ".".join(version.split(".")[:2])
        if out is None:
            problems.append(Problem(f"stage0 rustc {stage0_rustc} does not run", "apt-get install rustc cargo"))
        elif not re.match(rf"rustc {re.escape(want)}\.", out):
            problems.append(Problem(f"local-rebuild needs rustc {want} as stage0, {stage0_rustc} is {out}",
                                    f"install rustc {want} (Debian: apt-get install rustc cargo) or use a downloaded stage0"))
    if offline and not (tree / "vendor").is_dir():
        problems.append(Problem("an offline build needs the vendored crates in vendor/, which this tree lacks",
                                "run `cargo vendor` with network once, or build from a release tarball"))
    free_gb = shutil.disk_usage(tree).free / 1e9
    if free_gb < MIN_FREE_GB:
        problems.append(Problem(f"only {free_gb:.0f} GB free under {tree}", f"free at least {MIN_FREE_GB} GB"))
    return problems
