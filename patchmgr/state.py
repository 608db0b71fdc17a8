"""What patchmgr remembers between runs, inside the superproject's .git/patchmgr/.

Every persisted file is declared here, once, as a dataclass; nothing else
reads or writes them. Each file is JSON written whole through a rename (a kill
never leaves half of one) and carries `version`, so a newer patchmgr can read
an older file and an older one refuses a newer file instead of misreading it.

- `op.json` exists while a command that changes repositories is under way or
  stopped: an `ApplyJournal`, a `RebaseJournal` or an `UnapplyJournal` (its
  `kind` says which). It is written before the first change, so `--abort` can
  always put every repository back, whenever the run was interrupted.
- `applied.json` (`AppliedRecord`) describes an applied set: where each
  repository was before it (unapply returns there), the patch-ids apply
  verified (drift detection without recomputing them), the commits export
  wrote as patches and the bootstrap config it wrote (unapply puts it back).

- `bases.json` (`KnownBases`) remembers, for every set applied here, the superproject commit it
  was last applied on; it outlives unapply and rebase, so check, diff-sets and mcp put a set
  that is not applied on the base it had, not on whatever branch tip carries the same release.
- `verify.json` (`VerifyCache`) keeps the results of `rebase --verify`'s x.py checks by the
  trees checked, so asking again after nothing changed costs nothing.
- `quilt-exports.json` (`QuiltExports`) lists, per directory `export --quilt` wrote, the files it
  wrote there and their digests: such a directory may be written again, and only the files it
  holds unchanged are replaced or removed; any other file in it is the user's.

Format history: version 1 kept everything but the first few fields in an
untyped `extra` dict; it is read by lifting those keys to the top level.
Version 3 added fields with defaults (a journal's `adopted`, `enzyme_module_aside` and
`writes`, applied.json's `exported`) and bases.json: a version-2 file reads as it is (a
rebase journal of version 2 holds the whole manifest instead of `writes`, and is refused
with the advice to finish it with that patchmgr), while a version-2 patchmgr refuses a
version-3 file as newer instead of misreading it. Version 4 writes applied.json's `verified`
entries as objects (`Verified`) instead of positional lists, which a version-3 file's are
read as, verify.json with a version and through the same atomic write, and adds a rebase
journal's `pin` (a pin move) and StoreWrites' `replaced` and a manifest edit's `in_place`, with
defaults: a version-3 file without them reads as before, and a version-3 patchmgr refuses a
pin move's journal as newer instead of misreading it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from patchmgr.errors import WrongState

VERSION = 4
OP_FILE = "op.json"
APPLIED_FILE = "applied.json"
BASES_FILE = "bases.json"
QUILT_EXPORTS_FILE = "quilt-exports.json"
VERIFY_FILE = "verify.json"
DIR_NAME = "patchmgr"
KIND_APPLY = "apply"
KIND_REBASE = "rebase"
KIND_UNAPPLY = "unapply"
#: the scratch repository a pin move carries the pinned repository's patches in (patchmgr/pinmove.py),
#: inside DIR_NAME: it lives while the move is under way or stopped, and the user resolves a stop there
PIN_WORK_DIR = "pin-work"


@dataclass
class RepoOrigin:
    """Where one repository was before a command moved it."""

    path: str  # "." or the submodule path
    branch: str | None  # full ref, None when HEAD was detached
    head: str
    branch_created: bool = False  # the patch branch was made by this run


@dataclass(kw_only=True)
class Journal:
    """The part of op.json every kind shares: which set, which branch, where each repository was."""

    kind: ClassVar[str] = ""
    set: str
    patch_branch: str
    repos: list[RepoOrigin]
    paths: dict[str, list[str]] = field(default_factory=dict)  # repository path -> where the run's patches write

    def origin(self, path: str) -> RepoOrigin | None:
        return next((r for r in self.repos if r.path == path), None)


@dataclass(kw_only=True)
class ApplyJournal(Journal):
    """An apply under way: the steps re-run from it (--continue), --abort returns to `repos`."""

    kind: ClassVar[str] = KIND_APPLY
    bases: dict[str, str]  # repository path -> the commit the series goes on
    applied_origins: list[RepoOrigin]  # what applied.json will say: the first apply's origins
    skipped: list[str] = field(default_factory=list)  # patch labels left out with --skip
    enzyme_created: bool = False  # this run made the Enzyme submodule directory
    enzyme_module_created: bool = False  # ... and its git dir under .git/modules
    enzyme_module_aside: str | None = None  # where it moved an unusable kept clone (--abort moves it back)
    applied_before: AppliedRecord | None = None  # applied.json as it was, for --abort
    reapply: bool = False  # changed patch files applied in place (reapply.py): --continue refused, --abort
    # repository path -> where its patch branch starts when that is not HEAD: below the newest commits of the
    # user's branch, which already are the set's patches (adopt.py)
    adopted: dict[str, str] = field(default_factory=dict)


@dataclass
class ManifestEdit:
    """One edit of the manifest's text: `written` took the place of `before` (the smallest span
    that differs), so an undo puts `before` back where `written` still stands, every other
    byte (what the user wrote since) kept."""

    set: str  # the set the edit added (or, in_place, changed)
    before: str
    written: str
    in_place: bool = False  # an existing set's entry was changed (a pin move), not a set added


@dataclass
class StoreWrites:
    """What an operation wrote into the patches directory (patchmgr/store.py), each entry
    recorded before the write, so its --abort takes back exactly that and nothing the user
    wrote since."""

    manifest: ManifestEdit | None = None
    files: dict[str, str] = field(default_factory=dict)  # path under patches/ -> sha256 of the bytes written ("": removed)
    replaced: dict[str, str] = field(default_factory=dict)  # path under patches/ -> its text before it was overwritten or removed
    dirs: list[str] = field(default_factory=list)  # directories it created, parents first


@dataclass
class NewBase:
    """The facts of a rebase's new base, read from its tree."""

    rustc: str
    commit: str
    llvm: int
    note: str = ""


@dataclass
class PinMove:
    """A pin move (rebase --pin): the pinned repository at `path` goes from the set's pin to
    `commit`; its patches are carried in the scratch repository `work`."""

    path: str  # the pinned repository's path in the checkout (enzyme.path)
    arg: str  # the commit as given (a tag, an abbreviated id)
    commit: str  # the new pin, a full id
    url: str  # the new pin's URL
    old_commit: str
    old_url: str
    llvm: list[int]  # the LLVM majors of the new pin
    old_llvm: list[int]
    llvm_source: str  # where `llvm` was read (or why it was kept)
    work: str  # absolute path of the scratch repository's work tree


@dataclass
class Proposal:
    """Where a hunk a rebase stopped on most likely belongs now, and a candidate resolution
    there (patchmgr/proposal.py); kept so --continue can tell whether the user took it."""

    path: str  # the file the patch names
    line: int  # the hunk's first line there, on the old base
    target: str | None = None  # the file of the most likely place; None: no likely place
    start: int = 0  # its first line there (1-based)
    end: int = 0  # its last line
    similarity: float = 0.0  # of upstream's lines there to the hunk's old lines (0 to 1); the best one's when no place
    runner_up: str = ""  # "path:start-end (similarity)" when the next-best place is close
    commits: list[str] = field(default_factory=list)  # "sha subject" of the upstream commits that rewrote the lines
    candidate: list[str] | None = None  # the hunk's change merged onto upstream's lines; None: no merge made one
    written: str = ""  # where it was written into the stop's work tree, or why not


@dataclass(kw_only=True)
class RebaseJournal(Journal):
    """A rebase under way. `repos` are the origins --abort returns to; the replay
    happens on `patch_branch` (patchmgr/rebase/<new set>); once the new set is
    written, `final` is the apply of the new set that completes it (the same
    journal, so a kill anywhere is undone by rebase --abort)."""

    kind: ClassVar[str] = KIND_REBASE
    from_set: str
    onto_arg: str
    old_bases: dict[str, str]
    ontos: dict[str, str]
    new: NewBase
    dirs: dict[str, str]  # repository path -> the new set's patch directory
    outcomes: dict[str, list[str]] = field(default_factory=dict)  # label -> [outcome, detail]
    stopped: str | None = None  # label of the patch the replay stopped on (in git am, or on a finding)
    findings: dict[str, str] = field(default_factory=dict)  # label -> what it stopped with ("superseded by ...")
    taken: dict[str, str] = field(default_factory=dict)  # label -> note: kept with --continue despite its finding
    relocations: dict[str, list[str]] = field(default_factory=dict)  # label -> "old:line -> new:line (why)"
    proposals: dict[str, list[Proposal]] = field(default_factory=dict)  # label -> one per hunk it stopped on
    materialized: dict[str, list[str]] = field(default_factory=dict)  # repository -> the set as commits on its old base
    fuzz: int = 0  # --fuzz: outer context lines a relocated hunk may leave unmatched
    drop_superseded: bool = False  # --drop-superseded
    verify: bool = False  # --verify: compile-check the new set once it is applied
    written: bool = False  # the new set's files and manifest entry are written
    writes: StoreWrites = field(default_factory=StoreWrites)  # what writing the new set wrote, for --abort
    names: dict[str, str] = field(default_factory=dict)  # old label -> new label
    final: ApplyJournal | None = None
    applied_before: AppliedRecord | None = None  # applied.json as it was, for --abort
    pin: PinMove | None = None  # a pin move of the set in place (patchmgr/pinmove.py), not a rebase onto a new base


@dataclass(kw_only=True)
class UnapplyJournal(Journal):
    """An unapply under way: `repos` are the patched branches and heads, which
    --abort restores (branches recreated, Enzyme checked out again)."""

    kind: ClassVar[str] = KIND_UNAPPLY
    bases: dict[str, str]


@dataclass
class ConfigWritten:
    """The bootstrap config apply wrote, so unapply can put back the user's."""

    path: str
    sha256: str
    had_backup: bool


@dataclass
class ConfigInputs:
    """What the last rendered config depended on, and its digest: equal means up to date."""

    key: str
    result: str | None


@dataclass
class Verified:
    """A patch's commit as apply (or export) found it equal to the patch file: while the
    branch still has this commit and the file this diff, no patch-id needs computing."""
    commit: str
    diff: str  # digest of the file's diff
    file: str = ""  # digest of the whole file (its message and author too); "" in older records


@dataclass
class AppliedRecord:
    set: str
    patch_branch: str
    repos: list[RepoOrigin]
    # repository path -> patch label -> patch-id of its commit as applied (where it matched its file)
    patch_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    # repository path -> patch label -> its commit and file, verified equal
    verified: dict[str, dict[str, Verified]] = field(default_factory=dict)
    # repository path -> commit -> patch label: commits export wrote as that patch file although their
    # trailers do not name it (a commit the user made on the branch, a patch export renamed); they are
    # the applied patch, as the commits apply made are
    exported: dict[str, dict[str, str]] = field(default_factory=dict)
    config: ConfigWritten | None = None
    config_inputs: ConfigInputs | None = None
    # repository path -> the commit the series sits on, where that is not the origin's HEAD (a branch
    # whose newest commits were the patches: the patch branch starts below them, adopt.py)
    bases: dict[str, str] = field(default_factory=dict)

    def origin(self, path: str) -> RepoOrigin | None:
        return next((r for r in self.repos if r.path == path), None)

    def base(self, path: str) -> str | None:
        """The commit the series sits on in repository `path`, as apply recorded it."""
        origin = self.origin(path)
        return self.bases.get(path) or (origin.head if origin else None)


@dataclass
class KnownBases:
    sets: dict[str, str] = field(default_factory=dict)  # set name -> superproject commit it was last applied on


@dataclass
class Verdict:
    """One x.py check of `rebase --verify`: did the trees compile in this configuration."""
    configuration: str
    ok: bool
    error: str | None = None  # the first error, with its location
    blamed: str | None = None  # the patch label it is pinned on


@dataclass
class VerifyCache:
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # digest of (trees, configuration, crates) -> verdict


@dataclass
class QuiltExports:
    # absolute directory -> file name in it -> digests it may have (two while a write is under
    # way: the old content and the new one, so a killed export is recognised as patchmgr's)
    dirs: dict[str, dict[str, list[str]]] = field(default_factory=dict)


JOURNALS: dict[str, type[Journal]] = {j.kind: j for j in (ApplyJournal, RebaseJournal, UnapplyJournal)}
T = TypeVar("T")


# --- encoding ---------------------------------------------------------------

def _is_dataclass_hint(cls: Any) -> bool:
    """dataclasses.is_dataclass as a plain bool: its TypeIs would narrow _decode's `cls` (any type hint)
    to DataclassInstance, which has neither __name__ nor a constructor to call."""
    return dataclasses.is_dataclass(cls)


def _decode(cls: Any, value: Any) -> Any:
    """`value` (parsed JSON) as type `cls`, checked; TypeError names what does not fit."""
    origin, args = typing.get_origin(cls), typing.get_args(cls)
    if _is_dataclass_hint(cls):
        if not isinstance(value, dict):
            raise TypeError(f"{cls.__name__} must be an object")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = set(value) - set(fields)
        if unknown:
            raise TypeError(f"unknown key {sorted(unknown)[0]!r} in {cls.__name__}")
        return cls(**{k: _decode(hints[k], v) for k, v in value.items()})
    if origin is typing.Union or type(cls).__name__ == "UnionType":
        if value is None and type(None) in args:
            return None
        return _decode(next(a for a in args if a is not type(None)), value)
    if origin is list:
        if not isinstance(value, list):
            raise TypeError("expected a list")
        return [_decode(args[0], v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError("expected an object")
        return {k: _decode(args[1], v) for k, v in value.items()}
    if cls is Any:
        return value
    if cls in (str, int, bool) and (type(value) is not cls):
        raise TypeError(f"expected {cls.__name__}, got {value!r}")
    return value


def _encode(obj: Any) -> dict:
    data = dataclasses.asdict(obj)
    kind = getattr(obj, "kind", None)
    return {"version": VERSION, **({"kind": kind} if kind else {}), **data}


def _upgrade(name: str, data: dict) -> dict:
    """A version-1 file's keys as version 2 names them: `extra` lifted, `from` renamed,
    and the Enzyme flags kept only where the journal kind has them."""
    data = {**data.pop("extra", {}), **data}
    if "from" in data:
        data["from_set"] = data.pop("from")
    if name == APPLIED_FILE:
        drop: tuple[str, ...] = ("kind", "enzyme_created", "enzyme_module_created")
    elif data.get("kind") == KIND_REBASE:
        drop = ("enzyme_created", "enzyme_module_created")
    else:
        drop = ()
    return {k: v for k, v in data.items() if k not in drop}


# --- files -------------------------------------------------------------------

def _dir(git_dir: Path) -> Path:
    return git_dir / DIR_NAME


def _write(git_dir: Path, name: str, data: dict) -> None:
    directory = _dir(git_dir)
    directory.mkdir(exist_ok=True)
    tmp = directory / (name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / name)


def _read(git_dir: Path, name: str) -> dict | None:
    path = _dir(git_dir) / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise WrongState(f"{path} is corrupt ({e}); move it away and run patchmgr status") from None
    if not isinstance(data, dict):
        raise WrongState(f"{path} is corrupt (not a JSON object); move it away and run patchmgr status")
    version = data.pop("version", 1)
    if not isinstance(version, int) or version > VERSION:
        raise WrongState(f"{path} was written by a newer patchmgr (format {version}, this one reads up to "
                         f"{VERSION}); use that version, or upgrade this one")
    data = _upgrade(name, data) if version == 1 else data
    return _positional_verified(data) if version < 4 and name == APPLIED_FILE else data


def _positional_verified(data: dict) -> dict:
    """applied.json's `verified` entries as lists ([commit, diff digest] or [commit, diff
    digest, file digest], before version 4) as the objects `Verified` reads."""
    verified = data.get("verified")
    if not isinstance(verified, dict):
        return data
    def entry(value: Any) -> Any:
        if isinstance(value, list) and 2 <= len(value) <= 3:
            return dict(zip(("commit", "diff", "file"), value))
        return value  # not a list of that shape: _decode names what is wrong
    return {**data, "verified": {path: {label: entry(v) for label, v in labels.items()} if isinstance(labels, dict)
                                 else labels for path, labels in verified.items()}}


def _load(git_dir: Path, name: str, cls: type[T], data: dict) -> T:
    try:
        return _decode(cls, data)
    except (TypeError, KeyError, StopIteration) as e:
        path = _dir(git_dir) / name
        raise WrongState(f"{path} is corrupt ({e}); move it away and run patchmgr status") from None


def save_op(git_dir: Path, journal: Journal) -> None:
    _write(git_dir, OP_FILE, _encode(journal))


def load_op(git_dir: Path) -> Journal | None:
    data = _read(git_dir, OP_FILE)
    if data is None:
        return None
    kind = data.pop("kind", KIND_APPLY)
    if kind not in JOURNALS:
        raise WrongState(f"{_dir(git_dir) / OP_FILE} records an unknown operation {kind!r}; "
                         "use the patchmgr that started it")
    if kind == KIND_REBASE and "manifest" in data:  # the manifest's whole text: an abort would overwrite later edits
        raise WrongState(f"{_dir(git_dir) / OP_FILE} records a rebase started by an older patchmgr; "
                         "use that version to --continue or --abort it")
    return _load(git_dir, OP_FILE, JOURNALS[kind], data)


def save_applied(git_dir: Path, record: AppliedRecord) -> None:
    _write(git_dir, APPLIED_FILE, _encode(record))


def load_applied(git_dir: Path) -> AppliedRecord | None:
    data = _read(git_dir, APPLIED_FILE)
    return None if data is None else _load(git_dir, APPLIED_FILE, AppliedRecord, data)


def load_bases(git_dir: Path) -> KnownBases:
    data = _read(git_dir, BASES_FILE)
    return KnownBases() if data is None else _load(git_dir, BASES_FILE, KnownBases, data)


def record_base(git_dir: Path, set_name: str, commit: str) -> None:
    known = load_bases(git_dir)
    if known.sets.get(set_name) != commit:
        known.sets[set_name] = commit
        _write(git_dir, BASES_FILE, _encode(known))


def load_quilt_exports(git_dir: Path) -> QuiltExports:
    data = _read(git_dir, QUILT_EXPORTS_FILE)
    return QuiltExports() if data is None else _load(git_dir, QUILT_EXPORTS_FILE, QuiltExports, data)


def save_quilt_exports(git_dir: Path, exports: QuiltExports) -> None:
    _write(git_dir, QUILT_EXPORTS_FILE, _encode(exports))


def load_verify_cache(git_dir: Path) -> VerifyCache:
    data = _read(git_dir, VERIFY_FILE)
    if data is not None and "verdicts" not in data and all(isinstance(v, dict) for v in data.values()):
        data = {"verdicts": data}  # before version 4: the bare map, no version, written in place
    return VerifyCache() if data is None else _load(git_dir, VERIFY_FILE, VerifyCache, data)


def save_verify_cache(git_dir: Path, cache: VerifyCache) -> None:
    _write(git_dir, VERIFY_FILE, _encode(cache))


def remove(git_dir: Path, name: str) -> None:
    for path in (_dir(git_dir) / name, _dir(git_dir) / (name + ".tmp")):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    try:
        _dir(git_dir).rmdir()
    except OSError:
        pass
