"""Scratch directories: every temporary directory patchmgr makes, and their removal after a kill.

Each one is `patchmgr-<purpose>-XXXXXXXX` in the system's temporary directory
(TMPDIR) and holds an owner record, OWNER: the maker's pid and command, in a
file it holds an `flock` on for as long as the directory is in use. The git
commands patchmgr runs inherit that lock (gitio passes `held_fds` on), so a git
that outlives a killed patchmgr keeps the directory until it ends. The kernel
drops the lock when its holders die, however they die: a `finally` cannot
remove anything after a SIGKILL, so the next patchmgr that makes a scratch
directory removes, once, every `patchmgr-*` directory whose owner record it can
lock (its maker is gone; -v names each). A directory whose record is locked belongs to a
running command and is never touched; one without a record (kept with
`check --keep`, or not patchmgr's) is left alone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patchmgr.output import trace

PREFIX = "patchmgr-"
OWNER = ".patchmgr-owner"

_fds: dict[Path, int] = {}  # each live scratch directory -> the locked descriptor of its owner record
_swept = False


def held_fds() -> tuple[int, ...]:
    """The owner records' descriptors, for the git commands run meanwhile to inherit."""
    return tuple(_fds.values())


class ScratchDir:
    """A scratch directory of this process: made with its owner record locked, removed by
    `cleanup`, or handed to the user by `keep` (its record goes, so no sweep removes it)."""

    def __init__(self, purpose: str):
        sweep()
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{purpose}-"))
        # made under another name and locked before it takes its name, so a sweep never sees it unlocked
        made = self.path / (OWNER + ".new")
        fd = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()} {' '.join(sys.argv[1:])[:200]}\n".encode("utf-8", "replace"))
        os.rename(made, self.path / OWNER)
        _fds[self.path] = fd

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    def keep(self) -> None:
        (self.path / OWNER).unlink(missing_ok=True)
        self._release()

    def _release(self) -> None:
        fd = _fds.pop(self.path, None)
        if fd is not None:
            os.close(fd)


@contextmanager
def scratch_dir(purpose: str, keep: bool = False) -> Iterator[Path]:
    """A scratch directory for `purpose` for the `with` block: removed afterwards unless `keep`."""
    made = ScratchDir(purpose)
    try:
        yield made.path
    finally:
        if keep:
            made.keep()
        else:
            made.cleanup()


def sweep() -> None:
    """Remove the scratch directories whose makers are gone (a kill); once per process."""
    global _swept
    if _swept:
        return
    _swept = True
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False):
            _remove_if_orphaned(Path(entry.path))


def _remove_if_orphaned(directory: Path) -> None:
    """Remove `directory` when its owner record is ours and no live process holds it."""
    try:
        fd = os.open(directory / OWNER, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return  # no record: kept for the user, being made this instant, or not patchmgr's
    try:
        if os.fstat(fd).st_uid != os.getuid():
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # its maker, or a git it started, is running
        owner = os.pread(fd, 300, 0).decode("utf-8", "replace").strip() or "unknown"
        shutil.rmtree(directory, ignore_errors=True)
        trace(f"removed {directory}, left by a patchmgr that was killed ({owner})")
    finally:
        os.close(fd)
