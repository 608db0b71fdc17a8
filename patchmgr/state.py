"""What patchmgr remembers between runs, inside the superproject's .git/.

Two small JSON files, each written whole through a rename so a kill never
leaves half of one:
- `op.json` exists while an apply or a rebase is under way (or stopped on a conflict).
  It is written before the first change, so `--abort` can always put every
  repository back, whenever the run was interrupted.
- `applied.json` records, for an applied set, where each repository was
  before (its branch and commit), so unapply returns there.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from patchmgr.errors import WrongState

OP_FILE = "op.json"
APPLIED_FILE = "applied.json"
KIND_APPLY = "apply"
KIND_REBASE = "rebase"


@dataclass
class RepoOrigin:
    path: str  # "." or the submodule path
    branch: str | None  # full ref, None when HEAD was detached
    head: str
    branch_created: bool = False  # the patch branch was made by this run


@dataclass
class Record:
    set: str
    patch_branch: str
    repos: list[RepoOrigin]
    enzyme_created: bool = False  # this run made the Enzyme submodule directory
    enzyme_module_created: bool = False  # ... and its git dir under .git/modules
    extra: dict = field(default_factory=dict)
    kind: str = KIND_APPLY  # which command's --continue / --skip / --abort owns an op.json

    def origin(self, path: str) -> RepoOrigin | None:
        return next((r for r in self.repos if r.path == path), None)


def _dir(git_dir: Path) -> Path:
    return git_dir / "patchmgr"


def save(git_dir: Path, name: str, record: Record) -> None:
    directory = _dir(git_dir)
    directory.mkdir(exist_ok=True)
    tmp = directory / (name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(asdict(record), f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / name)


def load(git_dir: Path, name: str) -> Record | None:
    path = _dir(git_dir) / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["repos"] = [RepoOrigin(**r) for r in data["repos"]]
        return Record(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as e:
        raise WrongState(f"{path} is corrupt ({e}); move it away and run patchmgr status") from None


def remove(git_dir: Path, name: str) -> None:
    try:
        (_dir(git_dir) / name).unlink()
    except FileNotFoundError:
        pass
    try:
        _dir(git_dir).rmdir()
    except OSError:
        pass
