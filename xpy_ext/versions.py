"""What differs between the bootstrap of one rustc release and the next: one table.

Everything release-specific that patchmgr needs to write a bootstrap config
lives here, keyed by the first release it applies to. What can be read from
the tree itself (the keys its bootstrap knows, the change-id it expects, the
oldest LLVM it accepts) is read from the tree, at the paths this table names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from patchmgr.errors import BadInput


@dataclass(frozen=True)
class Bootstrap:
    since: tuple[int, int, int]  # first release this row describes
    config_file: str  # the file x.py reads by default
    example_file: str  # where the tree documents every key (commented out)
    header: str  # "changelog-seen" (value 2) or "change-id" (latest id of the tree)
    change_tracker: str | None  # where the change ids live
    llvm_check: str  # the file whose `major >= N` check gives the oldest LLVM accepted


#: oldest first. 1.63 and 1.85 are checked against their real trees by the tests.
TABLE: tuple[Bootstrap, ...] = (
    Bootstrap((1, 52, 0), "config.toml", "config.toml.example", "changelog-seen", None,
              "src/bootstrap/native.rs"),
    Bootstrap((1, 71, 0), "config.toml", "config.example.toml", "changelog-seen", None,
              "src/bootstrap/llvm.rs"),
    Bootstrap((1, 74, 0), "config.toml", "config.example.toml", "change-id",
              "src/bootstrap/src/utils/change_tracker.rs", "src/bootstrap/src/core/build_steps/llvm.rs"),
    Bootstrap((1, 87, 0), "bootstrap.toml", "bootstrap.example.toml", "change-id",
              "src/bootstrap/src/utils/change_tracker.rs", "src/bootstrap/src/core/build_steps/llvm.rs"),
)


def parse_version(version: str) -> tuple[int, int, int]:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)", version)
    if not m:
        raise BadInput(f"{version!r} is not a rustc version such as 1.63.0")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def bootstrap_for(version: str) -> Bootstrap:
    wanted = parse_version(version)
    rows = [row for row in TABLE if row.since <= wanted]
    if not rows:
        raise BadInput(f"rustc {version} is older than any bootstrap patchmgr knows ({TABLE[0].since})")
    return rows[-1]


def known_keys(tree: Path, row: Bootstrap) -> set[str]:
    """Every `section.key` the tree's example config documents (targets as `target.*`)."""
    path = tree / row.example_file
    if not path.is_file():
        raise BadInput(f"{path} is missing, so the keys this bootstrap knows cannot be checked; "
                       "is this a rustc source tree?")
    keys, section = set(), ""
    for line in path.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^#?\s*\[([A-Za-z0-9_.\-\"]+)\]\s*$", line)
        if header:
            section = header.group(1)
            if section.startswith("target."):
                section = "target.*"
            continue
        key = re.match(r"^#?\s*([a-z][a-z0-9\-_]*)\s*=", line)
        if key:
            keys.add(f"{section}.{key.group(1)}" if section else key.group(1))
    return keys


def header_value(tree: Path, row: Bootstrap) -> int:
    if row.header == "changelog-seen":
        return 2
    if row.change_tracker is None:
        raise BadInput(f"the bootstrap row for rustc {'.'.join(map(str, row.since))} writes {row.header} "
                       "but names no file that lists the change ids")
    path = tree / row.change_tracker
    ids = [int(n) for n in re.findall(r"change_id:\s*(\d+)", path.read_text(encoding="utf-8"))] if path.is_file() else []
    if not ids:
        raise BadInput(f"{path} lists no change ids; cannot write change-id for this tree")
    return max(ids)


def oldest_llvm(tree: Path, row: Bootstrap) -> int | None:
    path = tree / row.llvm_check
    if not path.is_file():
        return None
    m = re.search(r"if major >= (\d+)", path.read_text(encoding="utf-8"))
    return int(m.group(1)) if m else None
