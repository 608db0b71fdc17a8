"""The patches directory's writer: atomic writes, and the record that lets an abort take back
exactly what an operation wrote.

An operation (the rebase writing its new set) writes through a `Store` that
records each thing in the journal *before* writing it: the file's path with the
digest of its bytes, each directory it creates, and the manifest edit as the
span of text it replaced. `Undo` then removes only what still is as written:
- a file whose bytes still have the recorded digest is deleted; a file the
  user changed since is a refusal naming it, checked before anything is
  removed (a file the user added next to them is never looked at);
- the manifest edit is taken out of the manifest's *current* text (the span
  written goes back to the span it replaced), so a comment or any other edit
  the user made since stays; an entry the user edited is a refusal too;
- a directory it created goes only when it is empty.
So an abort never writes back a snapshot taken before the operation began: work
done after it began survives.

Other writers of the patches directory (export, import) use `write_atomic` and
`write_file` here, without a record: their result is the point, not something
to take back.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Callable
from pathlib import Path

from patchmgr import state
from patchmgr.errors import DirtyTree
from patchmgr.output import say


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace a file of the series (the manifest, a patch) through a rename, so a kill never
    leaves half of it; line endings as they are (a patch of a CRLF file carries CRs). Flushed to
    disk before the rename, as the state files are, so a journal never names a file a crash lost."""
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
        f.write(text.encode("utf-8") if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_file(path: Path, text: str | bytes) -> None:
    """`write_atomic`, making the directories it needs first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def read_exactly(path: Path) -> str:
    """A file of the series as its bytes say: no newline translation (CRs stay)."""
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def line_endings_of(current: str, text: str) -> str:
    """`text` (a manifest tomlkit wrote from `current`) with `current`'s line endings: tomlkit keeps
    a CRLF file's CRs on the lines it read but ends the lines it adds with LF alone."""
    if "\r\n" in current and "\n" not in current.replace("\r\n", ""):
        return text.replace("\r\n", "\n").replace("\n", "\r\n")
    return text


def digest(text: str) -> str:
    """sha256 of the bytes `write_atomic` writes for `text`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: StoreWrites.files' digest of a file the operation removed
REMOVED = ""


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class Store:
    """Writes into the patches directory `root`, each recorded in `record` (saved with `save`)
    before it happens, so that a kill at any point leaves nothing `Undo` does not know of."""

    def __init__(self, root: Path, record: state.StoreWrites, save: Callable[[], None]):
        self.root, self.record, self.save = root, record, save

    def write(self, path: Path, text: str) -> None:
        """Write the file at `path` (inside the patches directory) atomically, recorded; a file
        that was there before the operation wrote it is recorded with its text, which Undo puts back."""
        rel = self._rel(path)
        self._mkdirs(path.parent)
        if rel not in self.record.files and path.is_file():
            self.record.replaced[rel] = read_exactly(path)
        if self.record.files.get(rel) != digest(text):
            self.record.files[rel] = digest(text)
            self.save()
        write_atomic(path, text)

    def remove(self, path: Path) -> None:
        """Remove the file at `path`, its text recorded first (Undo puts it back)."""
        rel = self._rel(path)
        if rel not in self.record.files:
            self.record.replaced[rel] = read_exactly(path)
            self.record.files[rel] = REMOVED
            self.save()
        path.unlink(missing_ok=True)

    def add_set(self, manifest: Path, name: str, text: str) -> None:
        """Write `text`, the manifest with set `name` added, recording the span it replaces. Once
        written (the run was killed after it and goes on), the first record stands."""
        current = read_exactly(manifest)
        if self.record.manifest is not None and self.record.manifest.set == name and name in _sets(current):
            return
        before, written = _changed_span(current, text)
        self.record.manifest = state.ManifestEdit(set=name, before=before, written=written)
        self.save()
        write_atomic(manifest, text)

    def change_set(self, manifest: Path, name: str, text: str) -> None:
        """Write `text`, the manifest with set `name`'s entry changed in place, recording the span it
        replaces. Once written (the run was killed after it and goes on), the first record stands."""
        current = read_exactly(manifest)
        edit = self.record.manifest
        if edit is not None and edit.in_place and edit.written and current.count(edit.written) == 1:
            return
        before, written = _changed_span(current, text)
        self.record.manifest = state.ManifestEdit(set=name, before=before, written=written, in_place=True)
        self.save()
        write_atomic(manifest, text)

    def _mkdirs(self, directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        if not missing:
            return
        self.record.dirs += [self._rel(d) for d in reversed(missing) if self._rel(d) not in self.record.dirs]
        self.save()
        for d in reversed(missing):
            d.mkdir()

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


class Undo:
    """Taking back what `record` says was written under `root`. Made before any change (it
    refuses when the user changed one of those files since), run after the repositories are
    back. `what` names the operation and `again` the command to run again, in messages."""

    def __init__(self, root: Path, manifest: Path, record: state.StoreWrites, what: str, again: str):
        self.root, self.manifest, self.record, self.what = root, manifest, record, what
        self.files = [root / rel for rel in record.files if rel not in record.replaced]
        self.restore = {root / rel: text for rel, text in record.replaced.items()
                        if _bytes(root / rel) != text.encode("utf-8")}
        changed = [root / rel for rel, sha in record.files.items() if not _as_recorded(root / rel, sha, record.replaced.get(rel))]
        self.manifest_text = _manifest_undone(manifest, record.manifest, what, again)
        if changed:
            raise DirtyTree(f"{changed[0]} was changed since {what} wrote it; move it away (or delete it), then "
                            f"run {again} again (nothing was changed)")

    def run(self) -> None:
        if self.manifest_text is not None:
            write_atomic(self.manifest, self.manifest_text)
        for path in self.files:
            path.unlink(missing_ok=True)
            _tmp(path).unlink(missing_ok=True)  # a kill inside write_atomic leaves the file's own temporary
        for path, text in self.restore.items():
            write_file(path, text)
        for rel in self.record.replaced:
            _tmp(self.root / rel).unlink(missing_ok=True)
        for rel in reversed(self.record.dirs):
            directory = self.root / rel
            if directory.is_dir():
                if any(directory.iterdir()):
                    say(f"kept {directory}: it holds files {self.what} did not write")
                else:
                    directory.rmdir()


def _bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _as_recorded(path: Path, sha: str, original: str | None) -> bool:
    """Whether the file at `path` is as the operation left it: with the digest it wrote (or gone,
    where it removed the file or never got to write it), or, for a file it replaced, still or
    again the original text."""
    now = _bytes(path)
    if original is not None and now == original.encode("utf-8"):
        return True
    if now is None:
        return original is None or sha == REMOVED
    return hashlib.sha256(now).hexdigest() == sha


def _manifest_undone(manifest: Path, edit: state.ManifestEdit | None, what: str, again: str) -> str | None:
    """The manifest's current text with `edit` taken back, or None when there is nothing to take back;
    refuses when the set's entry was changed since it was written."""
    if edit is None or not manifest.is_file():
        return None
    current = read_exactly(manifest)
    try:
        sets = _sets(current)
    except tomllib.TOMLDecodeError as e:
        raise DirtyTree(f"{manifest} is not valid TOML ({e}); fix it, then run {again} again "
                        "(nothing was changed)") from None
    if edit.in_place:
        return _change_undone(manifest, current, edit, what, again)
    if edit.set not in sets:
        return None  # not written yet (a kill before it), or the user removed it
    if current.count(edit.written) != 1:
        raise DirtyTree(f"{manifest}: the entry of set {edit.set} was changed since {what} wrote it; remove "
                        f"[sets.\"{edit.set}\"] yourself, then run {again} again (nothing was changed)")
    start = current.index(edit.written)
    undone = current[:start] + edit.before + current[start + len(edit.written):]
    try:
        if edit.set not in _sets(undone):
            return undone
    except tomllib.TOMLDecodeError:
        pass
    raise DirtyTree(f"{manifest}: the entry of set {edit.set} cannot be taken out of the manifest as it is now; "
                    f"remove [sets.\"{edit.set}\"] yourself, then run {again} again (nothing was changed)")


def _change_undone(manifest: Path, current: str, edit: state.ManifestEdit, what: str, again: str) -> str | None:
    """The manifest with an in-place change of a set's entry taken back: the span written (still
    there once) back to the span it replaced; None when it was never written (a kill before it)."""
    if edit.written and current.count(edit.written) == 1:
        start = current.index(edit.written)
        return current[:start] + edit.before + current[start + len(edit.written):]
    if edit.written and edit.written not in current and edit.before in current:
        return None
    raise DirtyTree(f"{manifest}: the entry of set {edit.set} was changed since {what} changed it; put it back as "
                    f"it was yourself (the patches directory's history has it), then run {again} again "
                    "(nothing was changed)")


def _sets(text: str) -> dict:
    sets = tomllib.loads(text).get("sets", {})
    return sets if isinstance(sets, dict) else {}


def _changed_span(old: str, new: str) -> tuple[str, str]:
    """The span of `old` and the span of `new` that replaces it, with the common start and end left out."""
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end = 0
    while end < limit - start and old[len(old) - 1 - end] == new[len(new) - 1 - end]:
        end += 1
    return old[start:len(old) - end], new[start:len(new) - end]
