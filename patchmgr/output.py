"""The one way patchmgr talks to its user.

Results (status, reports, drafts) go to stdout and are never silenced;
progress and remarks go to stderr as `patchmgr: ...`, hidden by `-q`; `-v`
adds a trace of every git command run. Errors are the CLI's to print.
"""

from __future__ import annotations

import os
import sys

QUIET, NORMAL, VERBOSE = 0, 1, 2
_level = NORMAL


def _emit(stream, text: str, end: str = "\n") -> None:
    """Print to `stream`; where its reader is gone (`patchmgr status | head`), go on without it,
    as git does: no traceback, and a command that changes the tree is not cut off halfway
    because nobody reads its progress."""
    try:
        print(text, end=end, file=stream, flush=True)
    except BrokenPipeError:
        _silence(stream)


def silence_all() -> None:
    """Both output streams to /dev/null: after a closed pipe, nothing more is said."""
    _silence(sys.stdout)
    _silence(sys.stderr)


def _silence(stream) -> None:
    """Point `stream`'s file descriptor at /dev/null, so that this and every later write (the
    interpreter's own flush at exit included) goes nowhere instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def set_level(level: int) -> None:
    global _level
    _level = level


def say(message: str) -> None:
    """Progress or a remark: one line on stderr, unless -q."""
    if _level >= NORMAL:
        _emit(sys.stderr, f"patchmgr: {message}")


def aside(text: str) -> None:
    """A comment around a result (what a --dry-run would do next): stderr, unless -q."""
    if _level >= NORMAL:
        _emit(sys.stderr, text)


def progress_wanted() -> bool:
    """Whether a long run (x.py) should show its progress line."""
    return _level >= NORMAL


def verbose() -> bool:
    """Whether -v's trace is wanted (so that building its lines can be skipped)."""
    return _level >= VERBOSE


def trace(message: str) -> None:
    """Detail only -v wants, such as each git command."""
    if _level >= VERBOSE:
        _emit(sys.stderr, f"patchmgr: + {message}")


def show(text: str, end: str = "\n") -> None:
    """A command's result, on stdout."""
    _emit(sys.stdout, text, end)


def error(message: str) -> None:
    """The one line an error ends with."""
    _emit(sys.stderr, f"patchmgr: error: {message}")


def report(text: str) -> None:
    """Multi-line detail that belongs with an error (a conflict's hunks): stderr, always."""
    _emit(sys.stderr, text)
