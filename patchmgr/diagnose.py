"""Explain why a patch does not apply: which hunks, what they expected, what the tree has.

Pure: takes the patch text and a way to read the tree's files, returns lines.
git am only says "patch failed"; a compiler developer resolving a conflict
in a 45,000-file tree wants the hunk and its surroundings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import unidiff

from patchmgr.carry import compiletest
from patchmgr.hunks import best_place, parse_section, split_lines


@dataclass(frozen=True)
class HunkFailure:
    path: str
    header: str  # "@@ -12,7 +12,9 @@ fn foo"
    expected: list[str]  # the hunk's context and removed lines
    found: list[str]  # the tree's lines where the hunk's lines match best now ([] where no place does)
    missing_file: bool = False
    line: int | None = None  # 1-based line of `found` in the tree's file; None where no place matches
    how: str = ""  # how they match there: the outer context lines that differ, or a rewrite


def failing_hunks(diff: str, read: Callable[[str], str | None]) -> list[HunkFailure]:
    """Hunks whose expected lines are nowhere in the file as `read` returns it, each with the
    tree's lines where its lines match best (the placement rebase uses, hunks.best_place): after
    upstream inserted lines above, the patch's own line number points at unrelated code."""
    failures = []
    for patched in unidiff.PatchSet(diff):
        if patched.is_added_file:
            if read(patched.path) is not None:
                failures.append(HunkFailure(patched.path, "new file", [], ["(the file already exists)"]))
            continue
        source_path = patched.source_file[2:] if patched.source_file.startswith("a/") else patched.path
        content = read(source_path)
        if content is None:
            failures.append(HunkFailure(source_path, "whole file", [], [], missing_file=True))
            continue
        lines = split_lines(content)
        for hunk in patched:
            block = parse_section(str(hunk), source_path, source_path).hunks[0]
            placed = best_place(lines, block, compiletest(source_path))
            if placed is not None and not placed.fuzz and not placed.how:
                continue  # its lines are there as they are
            header = f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
            expected = [line.rstrip("\n") for line in block.before]
            failure = HunkFailure(source_path, (header + " " + hunk.section_header).rstrip(), expected, [])
            if placed is not None:
                at = placed.new_line - 1
                found = [line.rstrip("\n") for line in lines[at:at + len(block.before)]]
                how = placed.how or f"{placed.fuzz} of its {block.lead + block.trail} context lines differ"
                failure = dataclasses.replace(failure, found=found, line=placed.new_line, how=how)
            failures.append(failure)
    return failures


def render(failures: list[HunkFailure], limit_lines: int = 12) -> list[str]:
    out = []
    for f in failures:
        if f.missing_file:
            out.append(f"  {f.path}: the file does not exist in the tree")
            continue
        out.append(f"  {f.path}: hunk {f.header}")
        if f.expected:
            out.append("    the patch expects:")
            out += [f"      | {line}" for line in f.expected[:limit_lines]]
            if len(f.expected) > limit_lines:
                out.append(f"      | ... ({len(f.expected) - limit_lines} more lines)")
        if f.line is None and f.expected:
            out.append("    the tree has no one place where these lines match, even with the hunk's outer "
                       "context lines set aside")
            continue
        out.append(f"    the tree has at line {f.line} ({f.how}):" if f.line is not None else "    the tree has:")
        out += [f"      | {line}" for line in f.found[:limit_lines]] or ["      | (end of file)"]
    return out
