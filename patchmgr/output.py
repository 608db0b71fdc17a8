"""The one way patchmgr talks to its user.

Results (status, reports, drafts) go to stdout and are never silenced;
progress and remarks go to stderr as `patchmgr: ...`, hidden by `-q`; `-v`
adds a trace of every git command run. Errors are the CLI's to print.
"""

from __future__ import annotations

import sys

QUIET, NORMAL, VERBOSE = 0, 1, 2
_level = NORMAL


def set_level(level: int) -> None:
    global _level
    _level = level


def say(message: str) -> None:
    """Progress or a remark: one line on stderr, unless -q."""
    if _level >= NORMAL:
        print(f"patchmgr: {message}", file=sys.stderr, flush=True)


def aside(text: str) -> None:
    """A comment around a result (what a --dry-run would do next): stderr, unless -q."""
    if _level >= NORMAL:
        print(text, file=sys.stderr, flush=True)


def progress_wanted() -> bool:
    """Whether a long run (x.py) should show its progress line."""
    return _level >= NORMAL


def trace(message: str) -> None:
    """Detail only -v wants, such as each git command."""
    if _level >= VERBOSE:
        print(f"patchmgr: + {message}", file=sys.stderr, flush=True)


def show(text: str, end: str = "\n") -> None:
    """A command's result, on stdout."""
    print(text, end=end, flush=True)


def error(message: str) -> None:
    """The one line an error ends with."""
    print(f"patchmgr: error: {message}", file=sys.stderr, flush=True)


def report(text: str) -> None:
    """Multi-line detail that belongs with an error (a conflict's hunks): stderr, always."""
    print(text, file=sys.stderr, flush=True)
