"""export: the patch branches back to patch files and the manifest, deterministically.

Exporting an unchanged series gives byte-identical files: no commit hashes
(`--zero-commit`), full blob ids (abbreviations grow with the repository),
no tool version (`--no-signature`), no patchmgr trailers, and the dates are
the commits' author dates, which an unchanged commit keeps.
File names come from the subjects (git's own naming), the order from the
branch. Files whose content did not change are not rewritten. Each commit
written is recorded as the applied form of its file (`record_exported`), so a commit the
user made on the branch is a patch of the set from then on.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from patchmgr import state
from patchmgr.errors import BadInput, UsageError, WrongState
from patchmgr.faults import fault
from patchmgr.gitio import FORMAT_PATCH_FLAGS, Repo
from patchmgr.output import say
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET, parse_patch, parse_trailers
from patchmgr.scratch import scratch_dir
from patchmgr.series import PatchSet, patch_list, read_exactly, write_atomic
from patchmgr.store import line_endings_of, write_file
from patchmgr.workspace import View, Workspace

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
    body = without_own_trailers(body).rstrip("\n")
    return headers + "\n\n" + (body + "\n" if body else "") + rest


def without_own_trailers(message: str) -> str:
    """A commit message without the Patchmgr-Set and Patchmgr-Patch trailers apply added."""
    return _OURS.sub("", message)


@dataclass
class Rendered:
    """One repository's patch files as export would leave them: nothing written yet."""

    directory: Path
    names: list[str] = field(default_factory=list)  # every file, in branch order
    texts: dict[str, str] = field(default_factory=dict)  # name -> content, for the files that differ
    stale: list[str] = field(default_factory=list)  # listed files no commit produces any more

    def changes(self) -> list[tuple[str, str]]:
        """(verb, name) per file written or removed."""
        return [("wrote", name) for name in self.texts] + [("removed", name) for name in self.stale]


def export_set(ws: Workspace, set_name: str | None) -> list[str]:
    """Write the set's patch files from its branches; returns one line per change made.

    Every file is rendered and every target checked before the first one is
    written, so a target export cannot write (a directory in the way) stops it
    with the patches directory untouched.
    """
    ws.require_no_op()  # a stopped apply or rebase has branches that are not the set's yet
    view = ws.inspect(set_name)
    if view.untouched:
        raise WrongState(f"set {view.patch_set.name} is not applied here, so there is nothing to export; "
                         "run patchmgr apply first")
    patch_set = view.patch_set
    rendered: dict[str, Rendered] = {}
    commits: dict[str, list[str]] = {}
    for v in view.patched_repos:
        tool = v.state.tool_commits()
        commits[v.path] = [sha for sha in v.state.commits if sha not in tool]
        rendered[v.path] = render_patches(v.repo, commits[v.path], patch_set.root / v.series.dir, v.series.patches)
    for r in rendered.values():
        refuse_unwritable(r)
    changes: list[str] = []
    for path, r in rendered.items():
        series = next(s for s in patch_set.all_series() if s.path == path)
        write_rendered(r)
        changes += [f"{verb} {patch_set.patch_label(series, name)}" for verb, name in r.changes()]
    fault("export:files-written")
    lists = {path: r.names for path, r in rendered.items()}
    if any(lists.get(r.path, list(r.patches)) != list(r.patches) for r in patch_set.all_series()):
        _write_lists(ws.manifest.path, patch_set, lists)
        changes.append(f"updated the patch lists of {patch_set.name} in {ws.manifest.path.name}")
    record_exported(ws, view, {path: list(zip(commits[path], r.names)) for path, r in rendered.items()})
    return changes


def record_exported(ws: Workspace, view: View, written: dict[str, list[tuple[str, str]]]) -> None:
    """Record in applied.json that each commit export wrote (repository path -> (commit, file
    name)) is the applied form of its file, as apply records the commits it makes.

    A commit whose trailers name no patch (one the user made on the branch) or
    another one (a file export renamed) becomes that patch for status, apply
    and unapply (AppliedRecord.exported), instead of a foreign commit that
    unapply would tell the user to export; and the patch-ids are the ones
    verified, so a later edit of the file is drift, not an edited commit, as
    after an amend. Run on every export, so one killed before it is completed
    by the next.
    """
    from patchmgr.engine import matching_ids

    record = view.applied_record
    if record is None:
        return
    patch_set = view.patch_set
    new = dataclasses.replace(record, patch_ids=dict(record.patch_ids), verified=dict(record.verified),
                              exported=dict(record.exported))
    for v in view.patched_repos:
        labels = [(sha, patch_set.patch_label(v.series, name)) for sha, name in written.get(v.path, [])]
        trailers = {sha: parse_trailers(message).get(TRAILER_PATCH)
                    for sha, message in v.repo.commits(f"{v.state.base}..{v.state.head}")}
        pairs = []
        for sha, label in labels:
            try:
                pairs.append((sha, parse_patch((patch_set.root / label).read_bytes(), label)))
            except BadInput:
                continue  # a file apply would refuse: lint and apply name it
        new.patch_ids[v.path], new.verified[v.path] = matching_ids(v.repo, pairs)
        new.exported[v.path] = {sha: patch.label for sha, patch in pairs if trailers.get(sha) != patch.label}
        if not new.exported[v.path]:
            del new.exported[v.path]
    if new != record:
        state.save_applied(ws.git_dir, new)


def write_patches(repo: Repo, commits: list[str], directory: Path, listed: tuple[str, ...] | list[str],
                  write: Callable[[Path, str], None] = write_file) -> tuple[list[str], list[tuple[str, str]]]:
    """Format `commits` into `directory` through `write` (a rebase's Store records each file);
    returns the file names in order and (verb, name) per change.

    Files of `listed` that no commit produces any more are removed.
    """
    rendered = render_patches(repo, commits, directory, listed)
    refuse_unwritable(rendered)
    write_rendered(rendered, write)
    return rendered.names, rendered.changes()


def render_patches(repo: Repo, commits: list[str], directory: Path, listed: tuple[str, ...] | list[str]) -> Rendered:
    """The patch file of each of `commits` (format-patch in a temporary directory), and which
    files of `directory` would change: nothing in `directory` is touched."""
    rendered = Rendered(directory)
    for name, text in formatted(repo, commits):
        target = directory / name
        rendered.names.append(name)
        if not target.is_file() or target.is_symlink() or read_exactly(target) != text:
            rendered.texts[name] = text
    rendered.stale = [old for old in sorted(set(listed) - set(rendered.names)) if os.path.lexists(directory / old)]
    return rendered


def refuse_unwritable(rendered: Rendered) -> None:
    """Refuse, before anything is written, a target that is not a file export can replace: a
    directory (or other non-file) at a patch's name or at its temporary name, a file where
    a directory on the way should be."""
    directory = rendered.directory
    for parent in [directory, *directory.parents]:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise WrongState(f"{parent} is not a directory, but export writes patch files under it; "
                                 "move it away, then export again (nothing was written)")
            break
    for name in rendered.texts:
        for target in (directory / name, directory / (name + ".tmp")):
            if os.path.lexists(target) and not target.is_symlink() and not target.is_file():
                raise WrongState(f"{target} is a directory (or another non-file) where export writes patch "
                                 f"{name}; move it away, then export again (nothing was written)")
    for name in rendered.stale:
        target = directory / name
        if not target.is_symlink() and not target.is_file():
            raise WrongState(f"{target} is a directory (or another non-file) where export removes the patch "
                             f"file {name}; move it away, then export again (nothing was written)")


def write_rendered(rendered: Rendered, write: Callable[[Path, str], None] = write_file) -> None:
    """Write the changed files through `write` (each through a rename) and remove the stale ones."""
    for name, text in rendered.texts.items():  # `write` makes the directories (a Store records them)
        write(rendered.directory / name, text)
        fault("export:file-written")
    for name in rendered.stale:
        (rendered.directory / name).unlink()


def formatted(repo: Repo, commits: list[str]) -> list[tuple[str, str]]:
    """(file name, text) of each commit as export writes it; import writes the same, so that
    an export right after an import changes nothing."""
    out = []
    with scratch_dir("export") as tmp:
        for number, sha in enumerate(commits, 1):
            res = repo.run("format-patch", *FORMAT_PATCH_FLAGS,
                           f"--start-number={number}", "-o", str(tmp), "-1", sha).strip()
            produced = Path(res.splitlines()[-1])
            out.append((produced.name, strip_trailers(read_exactly(produced))))
            fault("export:rendered")
    return out


def _write_lists(manifest: Path, patch_set: PatchSet, lists: dict[str, list[str]]) -> None:
    import tomlkit

    current = read_exactly(manifest)
    doc = tomlkit.parse(current)
    for path, names in lists.items():
        doc["sets"][patch_set.name]["repos"][path]["patches"] = patch_list(names)
    write_atomic(manifest, line_endings_of(current, tomlkit.dumps(doc)))  # a CRLF manifest stays CRLF


def command(ws: Workspace, args) -> None:
    """`patchmgr export`: one line per file written or removed; `--quilt DIR` writes a quilt
    series instead (patchmgr/quiltexport.py)."""
    if args.quilt is not None:
        from patchmgr import quiltexport

        return quiltexport.command(ws, args)
    if args.repo != ".":
        raise UsageError("--repo goes with --quilt: export writes every repository's patch files")
    for line in export_set(ws, args.set_name) or ["nothing changed: the files match the branches"]:
        say(line)
