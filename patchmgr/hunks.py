"""A patch's hunks as blocks of lines, and placing them in a file the patch was not made for.

Pure functions. git apply finds a hunk only in the file the patch names,
near the line it names; after a big upstream jump the same lines can live in
another file (a directory moved, a file was split) or far from where they
were. `place` finds a hunk's whole preimage (context and removed lines,
exactly) wherever it is in a file, nearest the expected line, as git apply
does with offsets. When that fails, two rewrites that keep every line's text
are tried, each only where it gives exactly one place in the file:
- reindented: the preimage matches once leading whitespace is ignored
  (upstream reindented the code, tabs to spaces) and each old indentation
  became one indentation of the file's; the added lines take the mapped one;
- compiletest directives (asked for by the caller, for rustc's tests/): the
  hunk's `// only-x86_64` lines written as `//@ only-x86_64`, as upstream
  rewrote every test's header, then an exact match.
Fuzz only when asked for (`fuzz` N): the lines the hunk removes and the
context between its changes must match exactly, up to N of its outer context
lines may differ (they stay as the file has them), the lines that do match
must include a telling one the file has nowhere else, and the place must be
the only one in the file within that bound: a hunk that could go in two
places is not placed.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_LINES = re.compile(r"[^\n]*\n|[^\n]+$")
REINDENTED = "reindented as the file now is"
DIRECTIVES = "compiletest directives written as //@"
LEAD_ONLY = "only its leading context matches there"
TRAIL_ONLY = "only its trailing context matches there"
#: a compiletest header line of rustc's tests before 1.78: `// only-x86_64`, `//[rev] compile-flags: -O`
_DIRECTIVE = re.compile(r"^()//(\[[\w,-]+\])? ?((?:(?:only|ignore|needs|min|max|normalize|aux|pretty|check|build|"
                        r"run|dont-check)-[\w.-]+|revisions|compile-flags|no-prefer-dynamic|edition|error-pattern|"
                        r"exec-env|rustc-env|unset-rustc-env|should-fail|should-ice|known-bug|force-host|incremental|"
                        r"failure-status|stderr-per-bitwidth|assembly-output|filecheck-flags|forbid-output|"
                        r"no-system-llvm|regex-error-pattern|rustfix-only-machine-applicable|doc-flags|"
                        r"unique-doc-out-dir|exact-llvm-major-version|add-core-stubs)(?=[:\s(]|$).*)$", re.S)
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
    fuzz: int = 0  # outer context lines that differ from the file's
    how: str = ""  # a rewrite the hunk needed to match: REINDENTED or DIRECTIVES, else exact
    #: (best_place only: LEAD_ONLY or TRAIL_ONLY, a place its context alone says)


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


def place(lines: list[str], hunks: tuple[Hunk, ...], fuzz: int = 0, directives: bool = False
          ) -> tuple[list[str], list[Placement], list[int]]:
    """Apply every hunk that can be placed: (new lines, placements, indices of hunks not placed).

    Hunks go in order and never overlap; each is looked for nearest where the
    ones before it leave it, exactly first, then reindented, then (with
    `directives`) with compiletest directives as `//@`, then (with `fuzz`) with
    up to that many outer context lines different, where the context kept is the file's.
    """
    out = list(lines)
    placements: list[Placement] = []
    missing: list[int] = []
    shift, floor = 0, 0
    for k, hunk in enumerate(hunks):
        expected = max(hunk.old_start - 1, 0) + shift
        found = _locate(out, hunk, expected, floor, fuzz, directives)
        if found is None:
            missing.append(k)
            continue
        at, length, replacement, first, mismatched, how = found
        out[at:at + length] = replacement
        placements.append(Placement(k, hunk.old_start, first + 1, mismatched, how))
        shift = first - max(hunk.old_start - 1, 0) + len(hunk.after) - len(hunk.before)
        floor = at + len(replacement)
    return out, placements, missing


def best_place(lines: list[str], hunk: Hunk, directives: bool = False) -> Placement | None:
    """Where the hunk's preimage matches the file best, for a conflict report that shows what the
    tree has there: `place` with the least fuzz that places it (exactly, reindented or with
    compiletest directives first), up to every outer context line set aside; else where its
    leading, then its trailing, context alone is, at one place and held by a telling line (the
    lines it removes were changed upstream); None when nothing of it has one place in the file.
    Never used to apply: the file is not changed."""
    for fuzz in range(hunk.lead + hunk.trail + 1):
        _, placements, _ = place(lines, (hunk,), fuzz, directives)
        if placements:
            return placements[0]
    for side, offset, how in ((hunk.before[:hunk.lead], 0, LEAD_ONLY),
                              (hunk.before[len(hunk.before) - hunk.trail:], len(hunk.before) - hunk.trail, TRAIL_ONLY)):
        spots = find_all(lines, side) if any(_telling(line) for line in side) else []
        if len(spots) == 1:
            return Placement(0, hunk.old_start, max(spots[0] - offset, 0) + 1, how=how)
    return None


def _locate(lines: list[str], hunk: Hunk, expected: int, floor: int, fuzz: int, directives: bool
            ) -> tuple[int, int, list[str], int, int, str] | None:
    """Where and how one hunk goes: (index, lines replaced, their replacement, first line of the
    hunk's window (0-based), context lines that differ, rewrite), or None."""
    at = find_block(lines, hunk.before, expected, floor)
    if at is not None:
        return at, len(hunk.before), list(hunk.after), at, 0, ""
    reindented = _reindented(lines, hunk, floor)
    if reindented is not None:
        at, after = reindented
        return at, len(hunk.before), after, at, 0, REINDENTED
    rewritten = compiletest_directives(hunk) if directives else None
    if rewritten is not None:
        spots = find_all(lines, rewritten.before, floor)
        if len(spots) == 1:
            return spots[0], len(rewritten.before), list(rewritten.after), spots[0], 0, DIRECTIVES
    if fuzz:
        anchored = anchor(lines, hunk, fuzz, floor)
        if anchored is not None:
            core, mismatched = anchored
            length = len(hunk.before) - hunk.lead - hunk.trail
            return core, length, list(hunk.after[hunk.lead:len(hunk.after) - hunk.trail]), \
                max(core - hunk.lead, 0), mismatched, ""
    return None


def find_all(lines: list[str], block: tuple[str, ...], start: int = 0) -> list[int]:
    """Every 0-based index at or after `start` where `block` occurs."""
    n = len(block)
    if n == 0:
        return list(range(start, len(lines) + 1))
    first = block[0]
    return [i for i in range(start, len(lines) - n + 1) if lines[i] == first and tuple(lines[i:i + n]) == block]


def anchor(lines: list[str], hunk: Hunk, fuzz: int, floor: int = 0) -> tuple[int, int] | None:
    """The one place where the hunk's changed part (removed lines and the context between its
    changes) matches exactly and at most `fuzz` of its outer context lines differ, line for
    line: (0-based index of the changed part, context lines that differ), or None when there
    is no such place, or more than one, or none of the lines that match there is found only
    there in the file (a hunk held by common lines alone, `/// ```rust` and `///`, whose one
    telling line is the one that differs, would land in the wrong doc comment).

    Context that differs counts line by line, so a context line upstream edited costs one;
    lines above `floor` (taken by an earlier hunk) or past the file's ends never match.
    """
    lead, trail = hunk.lead, hunk.trail
    core = hunk.before[lead:len(hunk.before) - trail]
    counts = collections.Counter(lines)
    found: list[tuple[int, int]] = []
    for c in find_all(lines, core, floor):
        end = c + len(core)
        if end > len(lines):
            continue
        same = [hunk.before[lead - 1 - j] for j in range(lead)
                if c - 1 - j >= floor and lines[c - 1 - j] == hunk.before[lead - 1 - j]]
        same += [hunk.before[len(hunk.before) - trail + j] for j in range(trail)
                 if end + j < len(lines) and lines[end + j] == hunk.before[len(hunk.before) - trail + j]]
        mismatched = lead + trail - len(same)
        if mismatched > fuzz:
            continue
        if not any(counts[line] == 1 and _telling(line) for line in (*core, *same)) or \
                len(same) <= mismatched and not core:
            continue
        found.append((c, mismatched))
        if len(found) > 1:
            return None
    return found[0] if found else None


def _telling(line: str) -> bool:
    """A line that can say where a hunk belongs: not blank, not only braces, keywords or a bare comment."""
    text = line.strip()
    return len(text) >= 8 and not _TRIVIAL.match(text)


def _indent(line: str) -> tuple[str, str]:
    body = line.lstrip(" \t")
    return line[:len(line) - len(body)], body


def _reindented(lines: list[str], hunk: Hunk, floor: int) -> tuple[int, list[str]] | None:
    """The one place where the preimage matches once leading whitespace is ignored, and the hunk's
    result there with each line's indentation mapped as the preimage's was: (index, lines), or
    None (no such place, several, or an indentation the file has two ways, or one an added line
    has that the preimage does not show)."""
    bodies = tuple(_indent(line)[1] for line in hunk.before)
    if not bodies or not any(_telling(b) for b in bodies):
        return None
    file_bodies = [_indent(line)[1] for line in lines]
    spots = find_all(file_bodies, bodies, floor)
    if len(spots) != 1:
        return None
    at = spots[0]
    mapping: dict[str, str] = {}
    for old, new in zip(hunk.before, lines[at:at + len(hunk.before)]):
        (old_indent, body), new_indent = _indent(old), _indent(new)[0]
        if body.strip() and mapping.setdefault(old_indent, new_indent) != new_indent:
            return None
    after = []
    for line in hunk.after:
        indent, body = _indent(line)
        if not body.strip():
            after.append(line)
        elif indent in mapping:
            after.append(mapping[indent] + body)
        else:
            return None
    return at, after


def compiletest_directives(hunk: Hunk) -> Hunk | None:
    """The hunk with its compiletest header lines written as upstream writes them since 1.78
    (`// only-x86_64` -> `//@ only-x86_64`), or None when it has none."""
    def rewrite(block: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_DIRECTIVE.sub(r"\1//@\2 \3", line) for line in block)

    before, after = rewrite(hunk.before), rewrite(hunk.after)
    if before == hunk.before and after == hunk.after:
        return None
    return Hunk(hunk.old_start, before, after, hunk.lead, hunk.trail)


def already_there(lines: list[str], hunk: Hunk, directives: bool = False) -> bool:
    """The hunk's result is in the file and its preimage is not: the change is already made
    (with `directives`, also when it is there with compiletest directives written as `//@`)."""
    if hunk.before != hunk.after and find_block(lines, hunk.after, 0) is not None \
            and find_block(lines, hunk.before, 0) is None:
        return True
    rewritten = compiletest_directives(hunk) if directives else None
    return rewritten is not None and already_there(lines, rewritten)


def distinctive(hunk: Hunk, count: int = 3) -> list[str]:
    """The preimage lines most likely to name where the hunk belongs: the longest non-trivial ones."""
    seen: list[str] = []
    for line in sorted((line.strip() for line in hunk.before), key=len, reverse=True):
        if len(line) >= 12 and not _TRIVIAL.match(line) and line not in seen:
            seen.append(line)
    return seen[:count]
