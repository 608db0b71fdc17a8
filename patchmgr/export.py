"""export: the patch branches back to patch files and the manifest, deterministically.

Exporting an unchanged series gives byte-identical files: no commit hashes
(`--zero-commit`), full blob ids (abbreviations grow with the repository),
no tool version (`--no-signature`), no patchmgr trailers, and the dates are
the commits' author dates, which an unchanged commit keeps.
File names come from the subjects (git's own naming), the order from the
branch. Files whose content did not change are not rewritten.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from patchmgr.errors import WrongState
from patchmgr.faults import fault
from patchmgr.gitio import FORMAT_PATCH_FLAGS, Repo
from patchmgr.output import say
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET
from patchmgr.series import PatchSet, read_exactly, write_atomic, write_manifest
from patchmgr.workspace import Workspace

_OURS = re.compile(rf"^(?:{TRAILER_SET}|{TRAILER_PATCH}): .*(?:\n|\Z)", re.M)


def strip_trailers(text: str) -> str:
    """The mail without the trailers apply added, exactly as it was before apply.

    The headers end at the first blank line and the message at the `---` line; a body-less
    commit's mail has the `---` right after that blank line, and stays so (one blank line,
    as format-patch writes it)."""
    headers, _, after = text.partition("\n\n")
    if after.startswith("---\n"):
        body, rest = "", after
    else:
        body, sep, rest = after.partition("\n---\n")
        rest = sep[1:] + rest
    body = _OURS.sub("", body).rstrip("\n")
    return headers + "\n\n" + (body + "\n" if body else "") + rest


def export_set(ws: Workspace, set_name: str | None) -> list[str]:
    """Write the set's patch files from its branches; returns one line per change made."""
    ws.require_no_op()  # a stopped apply or rebase has branches that are not the set's yet
    view = ws.inspect(set_name)
    if view.untouched:
        raise WrongState(f"set {view.patch_set.name} is not applied here, so there is nothing to export; "
                         "run patchmgr apply first")
    patch_set = view.patch_set
    changes: list[str] = []
    lists: dict[str, list[str]] = {}
    for v in view.patched_repos:
        tool = v.state.tool_commits()
        commits = [sha for sha in v.state.commits if sha not in tool]
        directory = patch_set.root / v.series.dir
        names, written = write_patches(v.repo, commits, directory, v.series.patches)
        changes += [f"{verb} {patch_set.patch_label(v.series, name)}" for verb, name in written]
        lists[v.path] = names
    fault("export:files-written")
    if any(lists.get(r.path, list(r.patches)) != list(r.patches) for r in patch_set.all_series()):
        _write_lists(ws.manifest.path, patch_set, lists)
        changes.append(f"updated the patch lists of {patch_set.name} in {ws.manifest.path.name}")
    return changes


def write_patches(repo: Repo, commits: list[str], directory: Path, listed: tuple[str, ...] | list[str]
                  ) -> tuple[list[str], list[tuple[str, str]]]:
    """Format `commits` into `directory`; returns the file names in order and (verb, name) per change.

    Files of `listed` that no commit produces any more are removed.
    """
    changes: list[tuple[str, str]] = []
    names: list[str] = []
    if commits:
        directory.mkdir(parents=True, exist_ok=True)
    for name, text in formatted(repo, commits):
        target = directory / name
        names.append(name)
        if not target.exists() or read_exactly(target) != text:
            write_atomic(target, text)
            changes.append(("wrote", name))
            fault("export:file-written")
    for old in sorted(set(listed) - set(names)):
        stale = directory / old
        if stale.exists():
            stale.unlink()
            changes.append(("removed", old))
    return names, changes


def formatted(repo: Repo, commits: list[str]) -> list[tuple[str, str]]:
    """(file name, text) of each commit as export writes it; import writes the same, so that
    an export right after an import changes nothing."""
    out = []
    with tempfile.TemporaryDirectory(prefix="patchmgr-export-") as tmp:
        for number, sha in enumerate(commits, 1):
            res = repo.run("format-patch", *FORMAT_PATCH_FLAGS,
                           f"--start-number={number}", "-o", tmp, "-1", sha).strip()
            produced = Path(res.splitlines()[-1])
            out.append((produced.name, strip_trailers(read_exactly(produced))))
    return out


def _write_lists(manifest: Path, patch_set: PatchSet, lists: dict[str, list[str]]) -> None:
    import tomlkit

    doc = tomlkit.parse(manifest.read_text(encoding="utf-8"))
    for path, names in lists.items():
        array = tomlkit.array()
        array.extend(names)
        array.multiline(True)
        doc["sets"][patch_set.name]["repos"][path]["patches"] = array
    write_manifest(manifest, tomlkit.dumps(doc))


def command(ws: Workspace, args) -> None:
    """`patchmgr export`: one line per file written or removed."""
    for line in export_set(ws, args.set_name) or ["nothing changed: the files match the branches"]:
        say(line)
