"""Explain why a patch does not apply: which hunks, what they expected, what the tree has.

Pure: takes the patch text and a way to read the tree's files, returns lines.
git am only says "patch failed"; a compiler developer resolving a conflict
in a 45,000-file tree wants the hunk and its surroundings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import unidiff


@dataclass(frozen=True)
class HunkFailure:
    path: str
    header: str  # "@@ -12,7 +12,9 @@ fn foo"
    expected: list[str]  # the hunk's context and removed lines
    found: list[str]  # the tree's lines where the hunk should go
    missing_file: bool = False


def failing_hunks(diff: str, read: Callable[[str], str | None]) -> list[HunkFailure]:
    """Hunks whose expected lines are nowhere in the file as `read` returns it."""
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
        lines = content.split("\n")
        for hunk in patched:
            expected = [line.value.rstrip("\n") for line in hunk if line.is_context or line.is_removed]
            if _find(lines, expected) is None:
                start = max(hunk.source_start - 1, 0)
                found = lines[start:start + max(len(expected), 1)]
                header = f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
                failures.append(HunkFailure(source_path, (header + " " + hunk.section_header).rstrip(), expected, found))
    return failures


def _find(lines: list[str], block: list[str]) -> int | None:
    if not block:
        return 0
    n = len(block)
    for i in range(len(lines) - n + 1):
        if lines[i:i + n] == block:
            return i
    return None


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
        out.append("    the tree has there:")
        out += [f"      | {line}" for line in f.found[:limit_lines]] or ["      | (end of file)"]
    return out
