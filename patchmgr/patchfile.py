"""One `git format-patch` file: parse, validate, and tag for `git am`.

Pure functions on text. Validation runs before git sees a patch, so a hostile
or broken file is refused with its name and the reason, and nothing in any
repository has changed yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import unidiff

from patchmgr.errors import BadInput
from patchmgr.safety import path_problem, url_problem

TRAILER_SET = "Patchmgr-Set"
TRAILER_PATCH = "Patchmgr-Patch"

_MBOX_FROM = re.compile(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$")
_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]?(.*)$")
_DIFF_GIT = re.compile(r"^diff --git (\S+) (\S+)$")
_PATH_LINES = re.compile(r"^(?:rename from|rename to|copy from|copy to) (.*)$")
_TRAILER_LINE = re.compile(r"^[A-Za-z0-9-]+: ")


@dataclass(frozen=True)
class Patch:
    label: str  # patches/-relative name, for messages
    text: str
    subject: str
    author: str
    paths: tuple[str, ...]  # every path the diff touches, repository-relative
    diff: str = field(repr=False)


def _fail(label: str, problem: str) -> BadInput:
    return BadInput(f"{label}: {problem}")


def parse_patch(raw: bytes, label: str) -> Patch:
    """Parse one format-patch mbox message and refuse anything git am should not see."""
    if not raw.strip():
        raise _fail(label, "is empty; regenerate it with git format-patch")
    if b"\r" in raw:
        raise _fail(label, "has CRLF line endings, which git am would strip; convert it with dos2unix or regenerate it with git format-patch")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(label, f"is not UTF-8 (byte {e.start}); regenerate it with git format-patch") from None
    lines = text.split("\n")
    if not _MBOX_FROM.match(lines[0]):
        raise _fail(label, "is not a git format-patch mbox (first line must be 'From <sha> Mon Sep 17 00:00:00 2001')")
    if sum(1 for line in lines if _MBOX_FROM.match(line)) > 1:
        raise _fail(label, "holds more than one patch; split it into one file per commit")

    headers: dict[str, str] = {}
    i, last = 1, None
    while i < len(lines) and lines[i] != "":
        line = lines[i]
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
        else:
            m = _HEADER.match(line)
            if not m:
                raise _fail(label, f"has a malformed mail header on line {i + 1}: {line[:60]!r}")
            last = m.group(1).lower()
            headers[last] = m.group(2)
        i += 1
    for required in ("from", "subject"):
        if not headers.get(required, "").strip():
            raise _fail(label, f"has no {required.capitalize()}: header")

    diff_start = next((j for j in range(i, len(lines)) if lines[j].startswith("diff --git ")), None)
    if diff_start is None:
        raise _fail(label, "contains no diff (an empty commit); drop it from the series or add its change")
    diff_end = len(lines)
    for j in range(len(lines) - 1, diff_start, -1):
        if lines[j] == "-- ":  # format-patch's signature separator
            diff_end = j
            break
    diff = "\n".join(lines[diff_start:diff_end]) + "\n"
    if "\nGIT binary patch\n" in diff or re.search(r"^Binary files .* differ$", diff, re.M):
        raise _fail(label, "contains a binary diff; patchmgr series carry text changes only")

    paths = _diff_paths(diff, label)
    return Patch(label=label, text=text, subject=re.sub(r"^\[PATCH[^\]]*\]\s*", "", headers["subject"]).strip(),
                 author=headers["from"].strip(), paths=tuple(paths), diff=diff)


def _strip_prefix(path: str, label: str) -> str | None:
    if path == "/dev/null":
        return None
    if path.startswith('"'):
        raise _fail(label, f"touches a path git had to quote ({path}); rename the file to plain characters")
    if path[:2] in ("a/", "b/"):
        return path[2:]
    raise _fail(label, f"has a path without the a/ or b/ prefix ({path!r}); regenerate it with git format-patch")


def _check_path(path: str, label: str) -> str:
    problem = path_problem(path)
    if problem:
        raise _fail(label, f"touches {path!r}, which {problem}; refusing the patch")
    return path


def _diff_paths(diff: str, label: str) -> list[str]:
    paths: list[str] = []

    def add(p: str | None):
        if p is not None and p not in paths:
            paths.append(_check_path(p, label))

    for line in diff.split("\n"):
        m = _DIFF_GIT.match(line)
        if line.startswith("diff --git ") and not m:
            raise _fail(label, f"has a diff header git had to quote or that is malformed: {line[:80]!r}")
        if m:
            add(_strip_prefix(m.group(1), label))
            add(_strip_prefix(m.group(2), label))
        m2 = _PATH_LINES.match(line)
        if m2:
            add(_check_path(m2.group(1), label))
        if re.match(r"^(?:new file mode|new mode|old mode|deleted file mode|index [0-9a-f]+\.\.[0-9a-f]+) 120000$", line) or (
                line.startswith("index ") and line.endswith(" 120000")):
            raise _fail(label, "creates or changes a symlink; patchmgr series may not carry symlinks")
        if re.match(r"^(?:new file mode|new mode|index [0-9a-f]+\.\.[0-9a-f]+) 160000$", line):
            raise _fail(label, "adds or moves a submodule; pin submodules in the manifest instead")
    try:
        patch_set = unidiff.PatchSet(diff)
    except unidiff.UnidiffParseError as e:
        raise _fail(label, f"has a malformed diff: {e}") from None
    for patched in patch_set:
        for name in (patched.source_file, patched.target_file):
            add(_strip_prefix(name, label))
        if patched.path == ".gitmodules":
            for hunk in patched:
                for hline in hunk:
                    m = re.match(r"^\s*url\s*=\s*(\S.*)$", hline.value)
                    if hline.is_added and m and url_problem(m.group(1).strip()):
                        raise _fail(label, f"adds a submodule URL {m.group(1).strip()!r} that {url_problem(m.group(1).strip())}")
    if not paths:
        raise _fail(label, "contains no file changes")
    return paths


def with_trailers(text: str, trailers: list[tuple[str, str]]) -> str:
    """The message with `trailers` appended to its trailer block, ready for git am.

    Commits then name the set and patch file they came from, which is how
    status, unapply and export map commits back to files without extra state.
    """
    lines = text.split("\n")
    header_end = lines.index("")
    diff_start = next(j for j in range(header_end, len(lines)) if lines[j].startswith("diff --git "))
    sep = next((j for j in range(header_end + 1, diff_start) if lines[j] == "---"), diff_start)
    body = lines[header_end + 1:sep]
    while body and body[-1] == "":
        body.pop()
    new = [f"{k}: {v}" for k, v in trailers]
    if body and _TRAILER_LINE.match(body[-1]):
        # extend an existing trailer block (Signed-off-by: ...)
        body += new
    elif body:
        body += [""] + new
    else:
        body = new
    return "\n".join(lines[:header_end + 1] + body + lines[sep:])


def diff_digest(diff: str) -> str:
    """A cheap fingerprint of a patch's diff, to recognise a file unchanged since apply."""
    import hashlib

    return hashlib.sha256(diff.encode("utf-8")).hexdigest()


def parse_trailers(message: str) -> dict[str, str]:
    """The Patchmgr-* trailers of a commit message (last paragraph only)."""
    paragraphs = message.strip().split("\n\n")
    found = {}
    for line in paragraphs[-1].split("\n") if paragraphs else []:
        key, sep, value = line.partition(": ")
        if sep and key in (TRAILER_SET, TRAILER_PATCH):
            found[key] = value.strip()
    return found
