"""rebase --verify: does the carried set compile on the new base?

A patch can apply cleanly and still not compile (upstream renamed what it
calls). After the rebase, `x.py check` runs on the crates the set's patches
touch (the nearest Cargo.toml of each file), once per compile configuration
of the set (Enzyme off, and `--cfg llvm_enzyme` for a set that pins Enzyme),
and the first error is pinned on the patch that last changed its file (or
its crate). Results are cached by the trees checked, so asking again after
nothing changed costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from patchmgr import state
from patchmgr.output import say
from patchmgr.patchfile import Patch
from patchmgr.series import PatchSet
from patchmgr.workspace import Workspace

_LOCATION = re.compile(r"\(([^()\s]+?):(\d+)(?::\d+)?\)$")


@dataclass(frozen=True)
class Configuration:
    name: str  # as the report says it
    enzyme: bool | None  # llvm.enzyme for this check; None: the config as it is


def configurations(patch_set: PatchSet) -> list[Configuration]:
    if patch_set.enzyme is None:
        return [Configuration("as configured", None)]
    return [Configuration("Enzyme off", False), Configuration("--cfg llvm_enzyme", True)]


#: a workspace exclusion x.py still checks, with a step of its own
_CHECKED_OUTSIDE = ("src/bootstrap",)


def unchecked(root: Path) -> list[str]:
    """Directories x.py check does not reach: vendored crates, and what the root workspace
    excludes (the gcc and cranelift backends: their own workspaces, built only when configured)."""
    import tomllib

    try:
        workspace = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8")).get("workspace", {})
    except (OSError, tomllib.TOMLDecodeError):
        workspace = {}
    return ["vendor", *(d for d in workspace.get("exclude", []) if d not in _CHECKED_OUTSIDE)]


def crate_dirs(root: Path, paths: list[str]) -> list[str]:
    """The nearest directory with a Cargo.toml of each path x.py check reaches."""
    skip = unchecked(root)
    dirs = set()
    for path in paths:
        if any(path == d or path.startswith(d.rstrip("/") + "/") for d in skip):
            continue
        parent = Path(path).parent
        while str(parent) not in (".", "") and not (root / parent / "Cargo.toml").is_file():
            parent = parent.parent
        if str(parent) not in (".", ""):
            dirs.add(str(parent))
    return sorted(dirs)


def blame(error: str, patches: list[Patch], crates: dict[str, list[str]]) -> str | None:
    """The patch an error is pinned on: the last to change its file, else the last to touch its crate."""
    m = _LOCATION.search(error)
    if not m:
        return patches[-1].label if patches else None
    path = m.group(1)
    for patch in reversed(patches):
        if path in patch.paths:
            return patch.label
    for patch in reversed(patches):
        if any(path.startswith(crate + "/") for crate in crates.get(patch.label, [])):
            return patch.label
    return None


def verify(ws: Workspace, patch_set: PatchSet, patches: list[Patch]) -> list[state.Verdict]:
    """x.py check of the crates the superproject's patches touch, per configuration, cached by tree."""
    from xpy_ext.xpy import run_xpy

    crates = {p.label: crate_dirs(ws.root, list(p.paths)) for p in patches}
    targets = sorted({c for dirs in crates.values() for c in dirs})
    if not targets:
        say("verify: the set's patches touch no crate x.py checks")
        return []
    cache = state.load_verify_cache(ws.git_dir)
    trees = [ws.repo(r.path).run("rev-parse", "HEAD^{tree}", readonly=True).strip() for r in patch_set.repos]
    verdicts = []
    for conf in configurations(patch_set):
        key = hashlib.sha256(json.dumps([trees, conf.name, targets]).encode()).hexdigest()
        known = cache.verdicts.get(key)
        if known is not None:
            verdicts.append(known)
            say(f"verify ({conf.name}): {'ok' if known.ok else 'fails'}, as checked before for these trees")
            continue
        args = ["check", *targets]
        if conf.enzyme is not None:
            args = ["--config", str(_config_for(ws, conf.enzyme)), *args]
        say(f"verify ({conf.name}): x.py check {' '.join(targets)}")
        result = run_xpy(ws.root, args, ws.root / "build" / f"patchmgr-verify-{_slug(conf.name)}.log")
        verdict = state.Verdict(conf.name, result.returncode == 0, result.first_error)
        if not verdict.ok and verdict.error:
            verdict.blamed = blame(verdict.error, patches, crates)
        verdicts.append(verdict)
        cache.verdicts[key] = verdict
        state.save_verify_cache(ws.git_dir, cache)
    return verdicts


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _config_for(ws: Workspace, enzyme: bool) -> Path:
    """The tree's config with llvm.enzyme set, as a file under build/ (ignored by git), for x.py --config."""
    import tomlkit

    source = next((ws.root / name for name in ("config.toml", "bootstrap.toml") if (ws.root / name).is_file()), None)
    doc = tomlkit.parse(source.read_text(encoding="utf-8")) if source else tomlkit.document()
    doc.setdefault("llvm", tomlkit.table())["enzyme"] = enzyme
    path = ws.root / "build" / f"patchmgr-verify-enzyme-{'on' if enzyme else 'off'}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def render(verdicts: list[state.Verdict]) -> list[str]:
    """The report's compile-check section."""
    lines = ["## Compile check (rebase --verify)", ""]
    for v in verdicts:
        if v.ok:
            lines.append(f"- {v.configuration}: x.py check passed")
        else:
            on = f", pinned on {v.blamed}" if v.blamed else ""
            lines.append(f"- {v.configuration}: does not compile: {v.error}{on}")
    return lines + [""]

