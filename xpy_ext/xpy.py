"""Run x.py: stream its output, keep the whole log, and find the error that matters.

A failed bootstrap prints thousands of lines; what a compiler developer needs
first is the first real error (a rustc `error[...]`, a CMake or linker
failure) and where the full log is.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_ERROR_PATTERNS = [
    re.compile(r"^error(\[E\d{4}\])?: (?!aborting due to)"),  # rustc
    re.compile(r"^CMake Error"),
    re.compile(r"(collect2|ld(\.\w+)?|lld): error:|undefined reference to"),
    re.compile(r"^thread 'main' panicked at"),  # bootstrap itself
    re.compile(r"^fatal error:|: fatal error: "),  # C/C++ compilers
]


@dataclass
class XpyResult:
    returncode: int
    log: Path
    first_error: str | None


def first_error(lines: Iterable[str]) -> str | None:
    """The first line that reports a real error, with the location line after a rustc error."""
    lines = list(lines)
    for i, line in enumerate(lines):
        if any(p.search(line) for p in _ERROR_PATTERNS):
            location = next((nxt.strip() for nxt in lines[i + 1:i + 3] if nxt.strip().startswith("-->")), None)
            return line.rstrip() + (f" ({location[3:].strip()})" if location else "")
    return None


def run_xpy(tree: Path, args: list[str], log: Path, echo: Callable[[str], None] | None = None,
            python: str = sys.executable) -> XpyResult:
    """Run `x.py ARGS` in `tree`, writing every line to `log` and passing each to `echo`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8", buffering=1) as out:  # line-buffered: tail -f works
        proc = subprocess.Popen([python, "x.py", *args], cwd=tree, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if echo:
                echo(line.rstrip("\n"))
        returncode = proc.wait()
    error = None
    if returncode != 0:
        with open(log, encoding="utf-8", errors="replace") as f:
            error = first_error(f) or f"x.py exited with {returncode}"
    return XpyResult(returncode, log, error)
