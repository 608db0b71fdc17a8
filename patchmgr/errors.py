"""Failure classes and their exit codes.

Scripts around patchmgr (CI, `patchmgr apply && ./x.py build`) need to tell a
conflict they can resolve from a tree they must clean first, so each class of
failure has its own exit code. README.md lists the same table; keep them in
step (tests/test_apply.py checks that they agree).
"""

from __future__ import annotations

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_OS = 14

#: code -> (name, meaning); the single source for README's table.
EXIT_CODES: dict[int, tuple[str, str]] = {
    0: ("ok", "done, or nothing to do"),
    1: ("internal", "a bug in patchmgr (a traceback follows)"),
    2: ("usage", "bad command line"),
    3: ("bad-input", "malformed or hostile manifest or patch file"),
    4: ("unknown-base", "the tree's upstream base matches no patch set"),
    5: ("dirty", "uncommitted changes to tracked files; nothing was changed"),
    6: ("conflict", "a patch did not apply; resolve, then --continue, --skip or --abort"),
    7: ("state", "wrong state for this command (nothing to continue, operation in progress, not applied, ...)"),
    8: ("git", "a git command failed unexpectedly"),
    9: ("foreign-commits", "the patch branch holds commits that are not from the series"),
    10: ("check-failed", "the set does not apply cleanly in a scratch repository"),
    11: ("build", "preflight or the x.py build failed"),
    12: ("release", "a release's source package could not be downloaded or imported"),
    13: ("busy", "another patchmgr command is running on this checkout; nothing was changed"),
    14: ("os", "the file system refused a read or write (permissions, space, a directory in the way); the error names the path"),
}


class PatchmgrError(Exception):
    """An expected failure: one line for the user, and an exit code."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str):
        # One line: the CLI prints it after "patchmgr: error: ".
        super().__init__(" ".join(message.split("\n")))


class UsageError(PatchmgrError):
    exit_code = EXIT_USAGE


class BadInput(PatchmgrError):
    exit_code = 3


class UnknownBase(PatchmgrError):
    exit_code = 4


class DirtyTree(PatchmgrError):
    exit_code = 5


class Conflict(PatchmgrError):
    exit_code = 6

    def __init__(self, message: str, report: str = ""):
        super().__init__(message)
        # Multi-line details printed before the one-line error.
        self.report = report


class WrongState(PatchmgrError):
    exit_code = 7


class GitFailed(PatchmgrError):
    exit_code = 8


class ForeignCommits(PatchmgrError):
    exit_code = 9


class CheckFailed(PatchmgrError):
    exit_code = 10


class BuildFailed(PatchmgrError):
    exit_code = 11


class ReleaseFailed(PatchmgrError):
    exit_code = 12


class Busy(PatchmgrError):
    exit_code = 13
