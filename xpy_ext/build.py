"""`patchmgr build`: x.py build with a progress line, a full log, and a smoke test.

x.py prints thousands of lines; the terminal gets one line per step that
bootstrap announces ("Building stage0 compiler artifacts ...") with a count of
crates compiled, the log file gets everything, and a failure ends with the
first real error and the log's path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from patchmgr.output import progress_wanted
from patchmgr.scratch import scratch_dir
from xpy_ext.xpy import XpyResult, run_xpy

# the steps bootstrap announces (copying and uplifting take no time and are not counted)
_STEP = re.compile(r"^(Building (stage\d+ |LLVM |LLD |Enzyme |tool ).*|Assembling stage\d+ compiler.*)$")
_COMPILING = re.compile(r"^\s+Compiling (\S+)")


def xpy_arguments(stage: int, jobs: int | None, paths: list[str]) -> list[str]:
    """The x.py arguments for a build (x.py itself comes first when it runs)."""
    args = ["build", "--stage", str(stage)]
    if jobs:
        args += ["-j", str(jobs)]
    return args + list(paths)


def expected_steps(stage: int, enzyme: bool) -> int:
    """How many steps bootstrap 1.63 announces for a stage-N build of std, for the progress line.

    Seen in a real stage1 build: stage0 std, stage0 compiler, assembling the
    stage1 compiler, Enzyme, stage1 std; each further stage adds its
    compiler, its assembly and its std.
    """
    if stage == 0:
        return 1
    return 4 + (1 if enzyme else 0) + 3 * (stage - 1)


@dataclass
class Progress:
    """Turns x.py's lines into the one-line status a person watches."""

    total: int
    out: TextIO = field(default=sys.stderr)
    step: int = 0
    title: str = "starting x.py"
    crates: int = 0
    tty: bool = False

    def __call__(self, line: str) -> None:
        if _STEP.match(line):
            self.step += 1
            self.title = line.strip()
            self.crates = 0
            self._show(newline=True)
        elif _COMPILING.match(line):
            self.crates += 1
            if self.tty:
                self._show(newline=False)

    def render(self) -> str:
        of = f"/{self.total}" if self.step <= self.total else ""
        crates = f" ({self.crates} crates compiled)" if self.crates else ""
        return f"[{self.step}{of}] {self.title}{crates}"

    def _show(self, newline: bool) -> None:
        if self.tty:
            self.out.write("\r\033[K" + self.render() + ("\n" if newline else ""))
        elif newline:
            self.out.write(self.render() + "\n")
        self.out.flush()


def run_build(tree: Path, args: list[str], log: Path, enzyme: bool, stage: int) -> XpyResult:
    progress = Progress(total=expected_steps(stage, enzyme), tty=sys.stderr.isatty())
    result = run_xpy(tree, args, log, echo=progress if progress_wanted() else None)
    if progress.tty and progress_wanted():
        sys.stderr.write("\n")
    return result


def stage_sysroot(tree: Path, host: str, stage: int) -> Path:
    return tree / "build" / host / f"stage{stage}"


def smoke_test(sysroot: Path, enzyme: bool) -> list[str]:
    """Problems with a freshly built compiler: it runs, builds and runs hello world, has Enzyme."""
    rustc = sysroot / "bin" / "rustc"
    problems = []
    version = subprocess.run([str(rustc), "--version"], capture_output=True, text=True)
    if version.returncode != 0:
        return [f"{rustc} --version failed: {version.stderr.strip()[-200:]}"]
    with scratch_dir("smoke") as tmp:
        source = Path(tmp) / "hello.rs"
        source.write_text('fn main() { println!("hello from stage1"); }\n')
        built = subprocess.run([str(rustc), str(source), "-o", str(Path(tmp) / "hello")],
                               capture_output=True, text=True)
        if built.returncode != 0:
            problems.append(f"hello world does not compile: {built.stderr.strip()[-300:]}")
        else:
            ran = subprocess.run([str(Path(tmp) / "hello")], capture_output=True, text=True)
            if ran.stdout.strip() != "hello from stage1":
                problems.append(f"hello world printed {ran.stdout.strip()!r}")
    if enzyme and not list((sysroot / "lib").glob("LLVMEnzyme-*")):
        problems.append(f"no LLVMEnzyme library in {sysroot / 'lib'}, though llvm.enzyme is on")
    return problems


def link_toolchain(sysroot: Path, name: str) -> str:
    """Link the sysroot as a rustup toolchain, or say how to."""
    link = ["rustup", "toolchain", "link", name, str(sysroot)]
    if shutil.which("rustup") is None:
        return f"rustup is not installed; to use this compiler as a toolchain: {' '.join(link)}"
    res = subprocess.run(link, capture_output=True, text=True)
    if res.returncode != 0:
        return f"rustup toolchain link failed ({res.stderr.strip()[-200:]}); run: {' '.join(link)}"
    return f"linked as rustup toolchain {name}: cargo +{name} build"
