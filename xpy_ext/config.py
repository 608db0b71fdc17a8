"""Render a set's bootstrap template for a tree and merge it into the tree's bootstrap config.

The template belongs to the set that needs it (manifest key `bootstrap`; the
autodiff set's is patches/autodiff-1.63.0/config.toml.in): a set that does
not touch bootstrap names none, and its config is left alone.

Rendering is pure: template text, the release's row of the version table, the
keys the tree's bootstrap knows and the parameters in, TOML text out. Merging
keeps the user's file byte for byte where it does not add a key: values and
comments the user wrote win, and nothing is written when nothing changes (so
x.py, which rebuilds on a newer config, sees no change).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from patchmgr.errors import BadInput
from xpy_ext.versions import Bootstrap, bootstrap_for, header_value, known_keys

BACKUP_SUFFIX = ".patchmgr-backup"


@dataclass(frozen=True)
class Params:
    """The choices a rendered config makes; None leaves a key out."""

    host: str = "x86_64-unknown-linux-gnu"
    profile: str | None = None
    offline: bool | None = None
    stage0_rustc: str | None = None
    stage0_cargo: str | None = None
    llvm_config: str | None = None
    jobs: int | None = None

    def values(self) -> dict[str, object]:
        local = self.stage0_rustc is not None
        return {
            "host": self.host, "profile": self.profile, "offline": self.offline,
            "stage0_rustc": self.stage0_rustc, "stage0_cargo": self.stage0_cargo,
            "local_rebuild": True if local else None, "jobs": self.jobs,
            "llvm_config": self.llvm_config, "llvm_link_shared": True if self.llvm_config else None,
        }


def _placeholder(value) -> str | None:
    if isinstance(value, str) and len(value) > 2 and value.startswith("@") and value.endswith("@"):
        return value[1:-1]
    return None


def _fill(table, values: dict[str, object], path: str, keys: set[str], used: set[str], label: str) -> None:
    from tomlkit.items import Table

    for key in list(table.keys()):
        name = _placeholder(key)
        if name is not None:  # a table named by a value, e.g. [target."@host@"]
            item = table.pop(key)
            key = str(values[name])
            table[key] = item
        item = table[key]
        dotted = f"{path}.{key}" if path else key
        if isinstance(item, Table):
            if path == "target":
                dotted = "target.*"  # the example documents one target table for all
            _fill(item, values, dotted, keys, used, label)
            if not item:
                del table[key]
            continue
        name = _placeholder(item.unwrap() if hasattr(item, "unwrap") else item)
        if name is not None:
            if name not in values:
                raise BadInput(f"{label}: unknown placeholder @{name}@ for key {dotted}")
            if values[name] is None:
                del table[key]
                continue
            table[key] = values[name]
        if dotted not in keys:
            raise BadInput(f"{label}: key {dotted} is not known to this tree's bootstrap; "
                           "drop it from the template or leave its value unset for this release")
        used.add(dotted)


def render(template: str, row: Bootstrap, keys: set[str], header: int, params: Params,
           label: str = "the template") -> str:
    import tomlkit  # imported here: a no-op apply never needs it

    doc = tomlkit.parse(template)
    _fill(doc, params.values(), "", keys | {row.header}, set(), label)
    if row.header in doc:
        del doc[row.header]
    rendered = tomlkit.document()
    # the header goes first, where bootstrap's own files have it
    rendered.add(row.header, header)
    for key, item in doc.body:
        rendered.append(key, item)
    return tomlkit.dumps(rendered)


def render_for_tree(tree: Path, version: str, params: Params, template: Path) -> tuple[str, Bootstrap]:
    row = bootstrap_for(version)
    try:
        text = template.read_text(encoding="utf-8")
    except OSError as e:
        raise BadInput(f"{template}: cannot read the bootstrap template ({e.strerror})") from None
    return render(text, row, known_keys(tree, row), header_value(tree, row), params, template.name), row


def merge(existing: str, rendered: str, force: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """(merged text, what changed): rendered keys the user has not set are added.

    Keys in `force` (dotted, targets as `target.*`) were asked for on the command line just now:
    they replace the file's value.
    """
    import tomlkit
    from tomlkit.items import Table

    mine = tomlkit.parse(existing)
    theirs = tomlkit.parse(rendered)
    changes: list[str] = []

    def walk(dst, src, prefix: str) -> None:
        for key, value in src.items():
            dotted = f"{prefix}{key}"
            generic = "target.*." + key if prefix.startswith("target.") else dotted
            if isinstance(value, Table):
                if key not in dst:
                    dst[key] = value
                    changes.append(f"added [{dotted}]")
                elif isinstance(dst[key], Table):
                    walk(dst[key], value, dotted + ".")
            elif key not in dst:
                dst[key] = value
                changes.append(f"added {dotted} = {tomlkit.dumps({key: value}).split('=', 1)[1].strip()}")
            elif dst[key] != value and generic in force:
                changes.append(f"set {dotted} = {tomlkit.dumps({key: value}).split('=', 1)[1].strip()} "
                               f"(was {tomlkit.dumps({key: dst[key]}).split('=', 1)[1].strip()}), as asked")
                dst[key] = value
            elif dst[key] != value:
                changes.append(f"kept your {dotted} = {tomlkit.dumps({key: dst[key]}).split('=', 1)[1].strip()} "
                               f"(the template has {tomlkit.dumps({key: value}).split('=', 1)[1].strip()})")

    walk(mine, theirs, "")
    return tomlkit.dumps(mine), changes


def write_config(tree: Path, version: str, params: Params, template: Path,
                 force: frozenset[str] = frozenset()) -> tuple[Path, list[str], bool]:
    """Render and merge into the tree's config; returns (path, change lines, written)."""
    rendered, row = render_for_tree(tree, version, params, template)
    path = tree / row.config_file
    if not path.exists():
        _atomic_write(path, rendered)
        return path, [f"wrote {path.name} from {template.name}"], True
    existing = path.read_text(encoding="utf-8")
    merged, changes = merge(existing, rendered, force)
    if merged == existing:
        return path, [line for line in changes if line.startswith("kept")], False
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    shutil.copy2(path, backup)
    _atomic_write(path, merged)
    return path, changes + [f"previous {path.name} saved as {backup.name}"], True


def inputs_key(tree: Path, version: str, choices: tuple, llvm_major: int, template: Path) -> str:
    """A digest of everything a rendering depends on: the user's choices, the files read, and the
    toolchains `detect_params` would run. When it and the config file are unchanged since the last
    write, the config is up to date without detecting or rendering anything (a no-op apply should
    not pay for either)."""
    import hashlib

    row = bootstrap_for(version)
    h = hashlib.sha256(repr((version, choices)).encode())
    for path in (template, tree / row.example_file, tree / (row.change_tracker or row.example_file)):
        h.update(path.read_bytes() if path.exists() else b"-")
    for tool in (Path("/usr/bin/rustc"), Path("/usr/bin/cargo"), Path(f"/usr/lib/llvm-{llvm_major}/bin/llvm-config")):
        h.update(repr(tool.stat()[6:9] if tool.exists() else None).encode())
    return h.hexdigest()


def digest(path: Path) -> str | None:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def revert(path: Path, written: str, had_backup: bool) -> str:
    """Undo a write_config, unless the file changed since: then it is the user's and stays."""
    if digest(path) != written:
        return f"{path.name} changed since patchmgr wrote it; left as it is"
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    if had_backup and backup.exists():
        os.replace(backup, path)
        return f"{path.name} restored from {backup.name}"
    path.unlink()
    return f"removed the {path.name} that apply wrote"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def forced_keys(llvm_config: str, stage0: str) -> frozenset[str]:
    """The keys an explicit command-line choice sets over the config file's values."""
    keys = set()
    if llvm_config not in ("auto", "none"):
        keys.add("target.*.llvm-config")
    if stage0 not in ("auto", "download"):
        keys |= {"build.rustc", "build.cargo", "build.local-rebuild"}
    return frozenset(keys)


class Effective(TypedDict):
    """The config values preflight checks, keyed as preflight.check names them."""

    llvm_config: str | None
    stage0_rustc: str | None
    offline: bool


def effective(tree: Path, row: Bootstrap, host: str) -> Effective:
    """What x.py will use from the written config: llvm-config and stage0 rustc."""
    import tomllib

    path = tree / row.config_file
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return {"llvm_config": data.get("target", {}).get(host, {}).get("llvm-config"),
            "stage0_rustc": data.get("build", {}).get("rustc"),
            "offline": bool(data.get("build", {}).get("vendor"))}


def detect_params(tree: Path, version: str, llvm_major: int, llvm_config: str = "auto", stage0: str = "auto",
                  online: bool = False, profile: str | None = None, host: str = "x86_64-unknown-linux-gnu") -> Params:
    """Sensible defaults for this machine: a system LLVM of the set's major, a matching system
    rustc as stage0, offline when the tree vendors its crates."""
    llvm: str | None = llvm_config  # the argument is a path, "auto" or "none"; the choice is a path or no LLVM
    if llvm_config == "auto":
        candidate = Path(f"/usr/lib/llvm-{llvm_major}/bin/llvm-config")
        llvm = str(candidate) if candidate.exists() else shutil.which("llvm-config")
    elif llvm_config == "none":
        llvm = None
    rustc = cargo = None
    if stage0 != "download":
        bindir = Path("/usr/bin") if stage0 == "auto" else Path(stage0)
        want = "rustc " + ".".join(version.split(".")[:2]) + "."
        import subprocess

        try:
            found = subprocess.run([str(bindir / "rustc"), "--version"], capture_output=True, text=True).stdout
        except OSError:
            found = ""
        if found.startswith(want) and (bindir / "cargo").exists():
            rustc, cargo = str(bindir / "rustc"), str(bindir / "cargo")
        elif stage0 != "auto":
            raise BadInput(f"--stage0 {stage0}: no rustc {want[6:-1]} with cargo there (found {found.strip() or 'none'})")
    offline = None if online else ((tree / "vendor").is_dir() or None)
    return Params(host=host, profile=profile, offline=offline, stage0_rustc=rustc, stage0_cargo=cargo,
                  llvm_config=llvm)
