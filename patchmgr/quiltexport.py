"""export --quilt: a set's patch branch written as a quilt series, for a distribution's debian/patches.

The counterpart of importing a quilt series (patchmgr/quilt.py, patchmgr/importer.py):
a commit imported from one carries its file name, its series lines and its header
in Quilt-* trailers, and is written back under that name with that header above
its diff, as `quilt refresh` keeps a header and rewrites the diff below it. A
commit whose message or author changed since the import, or that was never
imported from quilt, gets a header written from the commit (From, Date, Subject,
message), which import reads back the same. The diff is always the commit's own,
as a -p1 git diff: what `patch -p1` (quilt push) applies to the tree the commit
makes. What patch would apply differently or not at all (a binary diff, a submodule,
a commit without a change) is refused before anything is written.

DIR is the user's: it must be new, empty, or a directory this checkout's export
--quilt wrote (.git/patchmgr/quilt-exports.json lists what it wrote there and
the digests). Only those files, unchanged, are replaced or removed; any other file
in DIR is left alone, and one in the way of a patch is refused.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from patchmgr import state
from patchmgr.errors import BadInput, WrongState
from patchmgr.export import without_own_trailers
from patchmgr.faults import fault
from patchmgr.gitio import Repo
from patchmgr.importer import imported_as
from patchmgr.output import say
from patchmgr.quilt import Kept, diff_start, patch_stem, read_kept
from patchmgr.safety import path_problem
from patchmgr.store import write_file
from patchmgr.workspace import RepoView, Workspace

SERIES = "series"
#: quilt's cat_file decompresses by the name's suffix: a patch named so is written compressed
_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": lambda data: gzip.compress(data, mtime=0), ".bz2": bz2.compress,
    ".xz": lzma.compress, ".lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE)}
#: diff lines GNU patch, which quilt runs, does not apply as git does
_UNWRITABLE = (
    (re.compile(r"^(GIT binary patch|Binary files )", re.M), "a binary file, which patch cannot apply"),
    (re.compile(r"^(new file mode|deleted file mode|old mode|new mode|index [0-9a-f]+\.\.[0-9a-f]+) 160000$", re.M),
     "a submodule commit, which patch cannot apply"),
)


@dataclass(frozen=True)
class QuiltPatch:
    """One patch as export --quilt writes it."""

    name: str
    series: list[str]  # the series lines up to and including its own
    end: list[str] | None  # the series lines after the last patch, kept by the import's last commit
    text: str
    rewritten_header: bool  # the header was written from the commit, not kept from the import


def export_quilt(ws: Workspace, set_name: str | None, repo_path: str, directory: Path) -> list[str]:
    """Write the set's patch branch of `repo_path` as a quilt series into `directory`; one
    line per change. Everything is rendered and checked before the first write."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    if view.untouched:
        raise WrongState(f"set {view.patch_set.name} is not applied here, so there is nothing to export; "
                         "run patchmgr apply first")
    v = next((v for v in view.patched_repos if v.path == repo_path), None)
    if v is None:
        raise BadInput(f"set {view.patch_set.name} has no patches for repository {repo_path!r}; "
                       f"give --repo one of: {', '.join(r.path for r in view.patched_repos)}")
    patches = render(v)
    # surrogateescape: bytes of the commit that are not UTF-8 are written as they are, as git has them
    files = {p.name: _compressed(p.name, p.text.encode("utf-8", "surrogateescape")) for p in patches}
    files[SERIES] = series_text(patches).encode("utf-8")
    changes = write_directory(ws.git_dir, directory.expanduser().absolute(), files)
    rewritten = [p.name for p in patches if p.rewritten_header]
    if rewritten:
        changes.append(f"note: header written from the commit (its message or author changed since import, or it "
                       f"was not imported from quilt): {', '.join(rewritten)}")
    return changes


def render(v: RepoView) -> list[QuiltPatch]:
    """Each commit of the patch branch (patchmgr's own Enzyme and gitlink commits left out)
    as a quilt patch; names checked to be distinct and safe."""
    tool = set(v.state.tool_commits())
    commits = [sha for sha in v.state.commits if sha not in tool]
    messages = {sha: without_own_trailers(message) for sha, message in v.repo.commits(f"{v.state.base}..{v.state.head}")}
    idents = _idents(v.repo, v.state.base, v.state.head)
    patches = []
    seen: dict[str, str] = {}
    for number, sha in enumerate(commits, 1):
        where = f"{v.repo.label}: commit {sha[:12]}"
        kept = read_kept(messages[sha], where)
        patch = _patch(v.repo, sha, number, messages[sha], idents[sha], kept, where)
        if patch.name in seen:
            raise BadInput(f"{where} and commit {seen[patch.name][:12]} are both quilt patch {patch.name}; "
                           "rename one (its Quilt-Patch trailer), then export again")
        seen[patch.name] = sha
        patches.append(patch)
    return patches


def _idents(repo: Repo, base: str, head: str) -> dict[str, tuple[str, str]]:
    """sha -> (author as 'Name <email>', author date in RFC 2822) for the commits of base..head."""
    out = repo.run("log", "--format=%H%x00%an <%ae>%x00%aD", f"{base}..{head}", "--", readonly=True)
    return {sha: (author, date) for sha, author, date in (line.split("\0") for line in out.splitlines() if line)}


def _patch(repo: Repo, sha: str, number: int, message: str, ident: tuple[str, str], kept: Kept | None,
           where: str) -> QuiltPatch:
    diff = repo.run("diff-tree", "-p", "--full-index", "--no-renames", "-r", f"{sha}^", sha, "--",
                    readonly=True, strip=False)
    if not diff.strip():
        raise BadInput(f"{where} changes no file, and quilt refuses a patch without a diff; drop the commit "
                       "(or give it a change), then export again")
    for pattern, what in _UNWRITABLE:
        if pattern.search(diff):
            raise BadInput(f"{where} changes {what}; quilt would not make the commit's tree: "
                           "leave it out of the quilt series or change it")
    name = kept.name if kept else _name(message, number)
    _check_name(name, where)
    rewritten = not (kept and _untouched(kept, ident[0]))
    if kept and not rewritten:
        text = "\n".join(kept.header) + "\n" if kept.header else ""
    else:
        text = _header(message, ident)
    head = text.split("\n")[:-1]
    if diff_start(head) < len(head):
        raise BadInput(f"{where}: line {diff_start(head) + 1} of its header ({head[diff_start(head)][:40]}) "
                       "reads as the start of a diff to quilt and patch; change that line of the message")
    return QuiltPatch(name, kept.series if kept and kept.series else [name], kept.end if kept else None,
                      text + diff, rewritten)


def _untouched(kept: Kept, author: str) -> bool:
    """Whether the commit still has the author and message the import made of its header
    (compared as git keeps messages: trailing blanks and runs of blank lines aside)."""
    expected_author, expected = imported_as(kept.header, patch_stem(kept.name))
    return author == expected_author and _stripspace(kept.message) == _stripspace(expected)


def _stripspace(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _header(message: str, ident: tuple[str, str]) -> str:
    """A header for a commit that has none kept: From, Date, Subject and the message's body,
    which import reads back as the same author, date, subject and message."""
    kept_at = message.rfind("\nQuilt-Patch: ")
    subject, _, body = (message[:kept_at + 1] if kept_at >= 0 else message).strip("\n").partition("\n")
    body = body.strip("\n")
    return f"From: {ident[0]}\nDate: {ident[1]}\nSubject: {subject}\n" + (f"\n{body}\n" if body else "") + "---\n"


def _name(message: str, number: int) -> str:
    """A file name for a commit that was not imported from quilt: its subject, as format-patch
    names files, without the number."""
    from patchmgr.importer import sanitize

    subject = message.strip().split("\n", 1)[0]
    return f"{sanitize(subject)}.patch" if subject else f"patch-{number}.patch"


def _check_name(name: str, where: str) -> None:
    """A name quilt's series can list and that stays inside DIR."""
    problem = path_problem(name)
    if problem is None and (re.search(r"\s", name) or name.startswith("#")):
        problem = "holds a blank or starts with '#', which a series line cannot list"
    if problem is None and (name == SERIES or name.split("/")[0] == ".pc"):
        problem = "is quilt's own"
    if problem:
        raise BadInput(f"{where}: quilt patch name {name!r} {problem}; rename it (its Quilt-Patch trailer)")


def _compressed(name: str, data: bytes) -> bytes:
    suffix = Path(name).suffix
    return _COMPRESS[suffix](data) if suffix in _COMPRESS else data


def series_text(patches: list[QuiltPatch]) -> str:
    """The series file: each patch's kept lines (comments and blank lines before it, its own
    line), then the lines the import kept after the last patch."""
    lines = [line for p in patches for line in p.series]
    end = next((p.end for p in patches if p.end is not None), [""])
    return "\n".join(lines + end)


# --- DIR ------------------------------------------------------------------------

def write_directory(git_dir: Path, directory: Path, files: dict[str, bytes]) -> list[str]:
    """Write `files` into `directory` and remove the files an earlier export wrote there that
    are no longer produced; refuse, before any write, a directory that is the user's."""
    exports = state.load_quilt_exports(git_dir)
    ours = exports.dirs.get(str(directory), {})
    present = _present(directory)
    if present and not ours:
        raise WrongState(f"{directory} holds files patchmgr did not write (such as {present[0]}); export --quilt "
                         "writes into a new or empty directory, or one it wrote before: give another")
    unchanged = {name for name in present if name in ours and _digest(directory / name) in ours[name]}
    for name in files:
        if name in present and name not in unchanged:
            raise WrongState(f"{directory / name} is not the file patchmgr wrote there (changed since, or the "
                             "user's own); move it away, then export again (nothing was written)")
        _refuse_in_the_way(directory, name)
    writes = {name: data for name, data in files.items()
              if name not in present or (directory / name).read_bytes() != data}
    stale = sorted(name for name in unchanged if name not in files)
    exports.dirs[str(directory)] = {**{n: ours[n] for n in stale},
                                    **{n: sorted(set(ours.get(n, [])) | {_hash(d)}) for n, d in files.items()}}
    state.save_quilt_exports(git_dir, exports)  # first: a killed export is still recognised as patchmgr's
    for name, data in writes.items():
        write_file(directory / name, data)
        fault("export-quilt:file-written")
    for name in stale:
        (directory / name).unlink()
    exports.dirs[str(directory)] = {n: [_hash(d)] for n, d in files.items()}
    state.save_quilt_exports(git_dir, exports)
    return [f"wrote {directory / name}" for name in writes] + [f"removed {directory / name}" for name in stale]


def _present(directory: Path) -> list[str]:
    """Every entry under `directory` that is not a directory, relative, sorted."""
    if not os.path.lexists(directory):
        return []
    if not directory.is_dir() or directory.is_symlink():
        raise WrongState(f"{directory} is not a directory (or is a symbolic link); give a new or empty directory "
                         "to export --quilt")
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_symlink() or not p.is_dir())


def _refuse_in_the_way(directory: Path, name: str) -> None:
    """A directory at a file's place, or a file or symlink at one of its directories' places."""
    target = directory / name
    if target.is_dir() and not target.is_symlink():
        raise WrongState(f"{target} is a directory where export --quilt writes patch {name}; move it away, then "
                         "export again (nothing was written)")
    for parent in target.parents:
        if parent == directory:
            break
        if os.path.lexists(parent) and (parent.is_symlink() or not parent.is_dir()):
            raise WrongState(f"{parent} is not a directory, but export --quilt writes {name} under it; move it "
                             "away, then export again (nothing was written)")


def _digest(path: Path) -> str:
    return "" if path.is_symlink() else _hash(path.read_bytes())


def _hash(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def command(ws: Workspace, args) -> None:
    for line in export_quilt(ws, args.set_name, args.repo, args.quilt) or [f"nothing changed: {args.quilt} matches the branch"]:
        say(line)
