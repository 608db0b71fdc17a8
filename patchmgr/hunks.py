"""A patch's hunks as blocks of lines, and placing them in a file the patch was not made for.

Pure functions. git apply finds a hunk only in the file the patch names,
near the line it names; after a big upstream jump the same lines can live in
another file (a directory moved, a file was split) or far from where they
were. `place` finds a hunk's whole preimage (context and removed lines,
exactly) wherever it is in a file, nearest the expected line, as git apply
does with offsets; fuzz (dropping outer context lines) only when asked for,
because a fuzzed hunk can land in the wrong place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_LINES = re.compile(r"[^\n]*\n|[^\n]+$")
#: lines too common to say where a hunk belongs
_TRIVIAL = re.compile(r"^[\s{}()\[\];,]*$|^\s*(//|#|/\*|\*)\s*$|^\s*(else|return|break|continue|\}\s*else\s*\{)\s*;?$")


@dataclass(frozen=True)
class Hunk:
    old_start: int  # 1-based line of the preimage in the old file (0 for an empty file)
    before: tuple[str, ...]  # context and removed lines, with their line ends
    after: tuple[str, ...]  # context and added lines
    lead: int  # context lines before the first change
    trail: int  # context lines after the last change


@dataclass(frozen=True)
class FileDiff:
    """One `diff --git` section: the names come from the validated parse (patchfile.FileChange)."""

    old_path: str | None
    new_path: str | None
    new_mode: str | None  # "100644" for a created file
    binary: bool
    hunks: tuple[Hunk, ...] = field(default=())


@dataclass(frozen=True)
class Placement:
    hunk: int  # index in the file's hunks
    old_line: int  # where the patch says (1-based)
    new_line: int  # where it was placed in the new file (1-based)
    fuzz: int = 0


def split_lines(text: str) -> list[str]:
    """Lines with their ends, the last one without if the file does not end in a newline."""
    return _LINES.findall(text)


def sections(diff: str) -> list[str]:
    """The text of each `diff --git` section, in order."""
    parts = re.split(r"(?m)^(?=diff --git )", diff)
    return [p for p in parts if p.startswith("diff --git ")]


def parse_section(text: str, old_path: str | None, new_path: str | None) -> FileDiff:
    lines = text.split("\n")
    new_mode = next((line.split()[-1] for line in lines if line.startswith("new file mode ")), None)
    binary = any(line.startswith(("GIT binary patch", "Binary files ")) for line in lines)
    hunks = []
    i = 0
    while i < len(lines):
        m = _HUNK.match(lines[i])
        if not m:
            i += 1
            continue
        old_len = int(m.group(2)) if m.group(2) is not None else 1
        new_len = int(m.group(4)) if m.group(4) is not None else 1
        before: list[str] = []
        after: list[str] = []
        kinds: list[str] = []
        i += 1
        while i < len(lines) and (len(before) < old_len or len(after) < new_len or lines[i].startswith("\\")):
            line = lines[i]
            if line.startswith("\\"):  # "\ No newline at end of file": the line above has no end
                if kinds and kinds[-1] in " -" and before:
                    before[-1] = before[-1][:-1]
                if kinds and kinds[-1] in " +" and after:
                    after[-1] = after[-1][:-1]
            else:
                kind, body = (line[:1] or " "), line[1:] + "\n"
                kinds.append(kind)
                if kind in " -":
                    before.append(body)
                if kind in " +":
                    after.append(body)
            i += 1
        changed = [k for k, kind in enumerate(kinds) if kind != " "]
        lead = changed[0] if changed else len(kinds)
        trail = len(kinds) - 1 - changed[-1] if changed else 0
        hunks.append(Hunk(int(m.group(1)), tuple(before), tuple(after), lead, trail))
    return FileDiff(old_path, new_path, new_mode, binary, tuple(hunks))


def find_block(lines: list[str], block: tuple[str, ...], expected: int, start: int = 0) -> int | None:
    """The 0-based index at or after `start` where `block` occurs, nearest `expected`."""
    n = len(block)
    if n == 0:
        return max(start, min(expected, len(lines)))
    first = block[0]
    best = None
    for i in range(start, len(lines) - n + 1):
        if lines[i] == first and tuple(lines[i:i + n]) == block:
            if best is None or abs(i - expected) < abs(best - expected):
                best = i
            elif i > expected:
                break
    return best


def place(lines: list[str], hunks: tuple[Hunk, ...], fuzz: int = 0
          ) -> tuple[list[str], list[Placement], list[int]]:
    """Apply every hunk that can be placed: (new lines, placements, indices of hunks not placed).

    Hunks go in order and never overlap; each is looked for nearest where the
    ones before it leave it. With `fuzz` up to that many outer context lines
    on each side may be left out of the match (and are then kept as the file has them).
    """
    out = list(lines)
    placements: list[Placement] = []
    missing: list[int] = []
    shift, floor = 0, 0
    for k, hunk in enumerate(hunks):
        expected = max(hunk.old_start - 1, 0) + shift
        for f in range(0, fuzz + 1):
            top, bottom = min(f, hunk.lead), min(f, hunk.trail)
            if f and not (top or bottom):
                continue
            before = hunk.before[top:len(hunk.before) - bottom]
            after = hunk.after[top:len(hunk.after) - bottom]
            at = find_block(out, before, expected + top, floor)
            if at is not None:
                out[at:at + len(before)] = list(after)
                placements.append(Placement(k, hunk.old_start, at - top + 1, f))
                shift = at - top - max(hunk.old_start - 1, 0) + len(after) - len(before)
                floor = at + len(after)
                break
        else:
            missing.append(k)
    return out, placements, missing


def already_there(lines: list[str], hunk: Hunk) -> bool:
    """The hunk's result is in the file and its preimage is not: the change is already made."""
    return (hunk.before != hunk.after and find_block(lines, hunk.after, 0) is not None
            and find_block(lines, hunk.before, 0) is None)


def distinctive(hunk: Hunk, count: int = 3) -> list[str]:
    """The preimage lines most likely to name where the hunk belongs: the longest non-trivial ones."""
    seen: list[str] = []
    for line in sorted((line.strip() for line in hunk.before), key=len, reverse=True):
        if len(line) >= 12 and not _TRIVIAL.match(line) and line not in seen:
            seen.append(line)
    return seen[:count]
