"""A branch that already holds the series as plain commits (the user's own branch, which the set
was imported from).

git am of a patch whose change is already there makes no commit and says nothing, so applying the
set on top of such a branch would write a patch branch with nothing on it. Instead the patch branch
starts below those commits: the tree ends up as the branch has it, the commits carry the series'
trailers, and the user's branch stays where it is (unapply returns to it).
"""

from __future__ import annotations

from itertools import takewhile

from patchmgr.gitio import Repo
from patchmgr.patchfile import Patch


def held_prefix(commit_ids: list[str | None], file_ids: list[str | None]) -> int:
    """How many of the first patches (`file_ids`, in series order) are the newest commits
    (`commit_ids`, oldest first), in the same order; 0 when none are (pure)."""
    for k in range(min(len(commit_ids), len(file_ids)), 0, -1):
        if None not in file_ids[:k] and commit_ids[-k:] == file_ids[:k]:
            return k
    return 0


def held_commits(repo: Repo, pending: list[Patch]) -> tuple[str, list[str]] | None:
    """(the commit below them, the commits oldest first) when HEAD's newest commits are the first
    of `pending` by patch-id; None otherwise.

    Only single-parent commits are compared: a merge or a root commit (a release tree's import,
    an upstream merge) ends the search before its diff, which can be the whole tree, is read.
    """
    if not pending:
        return None
    out = repo.run("rev-list", "--first-parent", "--parents", f"--max-count={len(pending)}", "HEAD", readonly=True)
    rows = list(takewhile(lambda row: len(row) == 2, (line.split() for line in out.splitlines())))  # newest first
    if not rows:
        return None
    shas = [sha for sha, _ in reversed(rows)]
    ids = repo.patch_ids(shas)
    k = held_prefix([ids.get(sha) for sha in shas], repo.patch_ids_of_diffs([p.diff for p in pending[:len(shas)]]))
    return (rows[k - 1][1], shas[-k:]) if k else None
