"""Submodule moves in a revision range that import reads: which are a submodule's own list.

A developer's branch carries llvm-project changes the way git does: commits in
src/llvm-project, and a superproject commit that moves the gitlink to them (a
"bump"). A set carries the same changes as src/llvm-project's own list of
patches, and apply records the gitlink itself. So a commit that only moves
gitlinks is not a patch: the submodule's range, old gitlink..new gitlink, is
imported as that repository's list. What a set cannot express is refused with
the way to make it so: a move mixed with other changes in one commit, a
submodule added or removed, Enzyme's gitlink (the manifest pins it), a
submodule's own submodules, a move that goes back or sideways.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from patchmgr.errors import BadInput
from patchmgr.gitio import Repo
from patchmgr.series import SUPERPROJECT

GITLINK = "160000"


@dataclass
class Bump:
    """The moves of one submodule's gitlink in a range: from `old` (before the first) to `new`."""

    path: str
    old: str
    new: str
    commits: list[str] = field(default_factory=list)  # "abc1234 (subject)" of each moving commit

    def says(self) -> str:
        """import's one line about it."""
        which = ", ".join(self.commits)
        return (f"{'commit' if len(self.commits) == 1 else 'commits'} {which} only "
                f"{'moves' if len(self.commits) == 1 else 'move'} the {self.path} gitlink: not a patch; {self.path}'s "
                f"commits {self.old[:12]}..{self.new[:12]} are imported as the set's {self.path} list")


@dataclass(frozen=True)
class _Change:
    old_mode: str
    new_mode: str
    old: str  # the object before and after: for a gitlink, the submodule's commits
    new: str
    status: str
    path: str


def submodule_bumps(repo: Repo, rev_range: str, base: str, enzyme_path: str | None) -> list[Bump]:
    """The gitlink moves of `rev_range` in `repo`, oldest first per submodule; refused where a set
    cannot list them. Only the superproject's moves become lists: a set's repositories are the
    checkout's, so a gitlink inside a submodule (Enzyme's in llvm-project) is refused."""
    bumps: dict[str, Bump] = {}
    for commit, changes in _changes(repo, rev_range):
        links = [c for c in changes if GITLINK in (c.old_mode, c.new_mode)]
        if not links:
            continue
        named = repo.run("log", "-1", "--format=%h (%s)", commit, "--", readonly=True).strip()
        for link in links:
            _refuse_unlistable(repo, rev_range, named, link, enzyme_path)
        if len(links) < len(changes):
            paths = " and ".join(c.path for c in links)
            raise BadInput(f"{rev_range}: commit {named} moves the {paths} gitlink and changes other files too; make "
                           f"the move a commit of its own (git rebase -i {base[:12]}, 'edit' that commit, git reset "
                           f"HEAD~ -- {links[0].path}, git commit --amend, then commit the gitlink alone), then "
                           "import: the move becomes the submodule's own list")
        for link in links:
            bump = bumps.setdefault(link.path, Bump(link.path, link.old, link.new))
            bump.new = link.new
            bump.commits.append(named)
    return list(bumps.values())


def _refuse_unlistable(repo: Repo, rev_range: str, named: str, link: _Change, enzyme_path: str | None) -> None:
    """A gitlink change a set cannot carry as a submodule's list, refused with what a set does instead."""
    if repo.label != SUPERPROJECT:
        raise BadInput(f"{rev_range}: commit {named} moves the gitlink of {link.path} inside {repo.label}: a set lists "
                       "patches for the checkout's own repositories, not for a submodule's submodules (Enzyme's "
                       "commit is the set's enzyme.commit in the manifest); leave that commit out of the range")
    if link.status != "M" or link.old_mode != link.new_mode:
        what = {"A": "adds submodule", "D": "removes submodule"}.get(link.status, "turns into or out of a submodule")
        raise BadInput(f"{rev_range}: commit {named} {what} {link.path}: a set patches the repositories the base "
                       "already has and cannot add or remove one (Enzyme, which it adds, is pinned in the "
                       "manifest's enzyme table); leave that commit out of the range")
    if link.path == enzyme_path:
        raise BadInput(f"{rev_range}: commit {named} moves Enzyme's gitlink ({link.path}), which the set pins with "
                       "enzyme.commit in the manifest: set the pin there and leave that commit out of the range")


def _changes(repo: Repo, rev_range: str) -> list[tuple[str, list[_Change]]]:
    """Each commit of the range (oldest first) with the paths it changes against its parent, in one
    git diff-tree for the whole range."""
    commits = repo.run("rev-list", "--reverse", "--end-of-options", rev_range, "--", readonly=True).split()
    if not commits:
        return []
    out = repo.run("diff-tree", "--stdin", "-r", "-z", "--raw", "--no-renames", "--no-abbrev",
                   input="".join(c + "\n" for c in commits), readonly=True, strip=False)
    by_commit: dict[str, list[_Change]] = {c: [] for c in commits}
    tokens = out.split("\0")
    current, i = None, 0
    while i < len(tokens):
        token = tokens[i].strip("\n")
        if token.startswith(":"):
            old_mode, new_mode, old, new, status = token[1:].split()
            by_commit[current or ""].append(_Change(old_mode, new_mode, old, new, status[0], tokens[i + 1]))
            i += 2
            continue
        if token:
            current = token
        i += 1
    return [(c, by_commit[c]) for c in commits]

