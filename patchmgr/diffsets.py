"""diff-sets A B: what changed between two patch sets, patch by patch, as git range-diff shows it.

Both sets are committed, each on its own base, in the object store of bare
scratch repositories that borrow the checkout's objects (mailcommit: the commits
git am makes, with no checkout; the user's repositories are only read), then
`git range-diff` compares the two series, repository by repository.
"""

from __future__ import annotations

from patchmgr.base import repo_base
from patchmgr.errors import CheckFailed
from patchmgr.gitio import TOOL_IDENT, scratch_clones
from patchmgr.lint import load_patches
from patchmgr.mailcommit import DoesNotApply, MailCommitter
from patchmgr.output import show
from patchmgr.series import SUPERPROJECT, PatchSet
from patchmgr.workspace import Workspace

#: the committer of the compared commits: fixed (and dated as their authors dated them), so their
#: ids, which range-diff prints, are the same on every run and machine
_COMMITTER = {"GIT_COMMITTER_NAME": TOOL_IDENT[0], "GIT_COMMITTER_EMAIL": TOOL_IDENT[1]}


def _series_on(committer: MailCommitter, base: str, patches, name: str) -> str:
    """The patches committed on base, one on the other; the last commit."""
    tip = base
    for patch in patches:
        try:
            tip = committer.commit_mail(tip, patch.text, patch.diff, committer=_COMMITTER)
        except DoesNotApply:
            raise CheckFailed(f"{patch.label} of set {name} does not apply to its base; "
                              f"run patchmgr check --set {name}") from None
    return tip


def diff_sets(ws: Workspace, first: str, second: str) -> str:
    sections = range_diff(ws, ws.manifest.get(first), ws.manifest.get(second))
    return f"# {first} -> {second}\n" + "\n".join(f"## {path}\n{out}" for path, out in sections) + "\n"


def range_diff(ws: Workspace, first: PatchSet, second: PatchSet) -> list[tuple[str, str]]:
    """(repository path, git range-diff output) for each repository either set patches."""
    sets = [first, second]
    paths = sorted({r.path for s in sets for r in s.repos}, key=lambda p: (p != SUPERPROJECT, p))
    sections = []
    super_bases = [ws.set_base(s) for s in sets]
    loaded = [load_patches(s) for s in sets]
    with scratch_clones("diffsets") as scratch:
        for path in paths:
            borrowed = scratch.borrow(ws.repo(path))
            ranges = []
            with MailCommitter(borrowed) as committer:
                for patch_set, super_base, by_repo in zip(sets, super_bases, loaded):
                    base = repo_base(ws.superproject, super_base, path, patch_set)
                    patches = by_repo.get(path, [])
                    ranges.append(f"{base}..{_series_on(committer, base, patches, patch_set.name)}")
            if all(r.split("..")[0] == r.split("..")[1] for r in ranges):
                sections.append((path, "(no patches in either set)"))
                continue
            out = borrowed.run("-c", "core.abbrev=12", "range-diff", "--no-color", *ranges, strip=False)
            sections.append((path, out.rstrip()))
    return sections


def command(ws: Workspace, args) -> None:
    """`patchmgr diff-sets A B`."""
    show(diff_sets(ws, args.first, args.second), end="")
