"""diff-sets A B: what changed between two patch sets, patch by patch, as git range-diff shows it.

Both sets are applied in scratch clones that borrow the checkout's objects (the
user's tree is only read), each on its own base, then `git range-diff` compares
the two series, repository by repository.
"""

from __future__ import annotations

from patchmgr.base import repo_base
from patchmgr.errors import CheckFailed
from patchmgr.gitio import Repo, scratch_clones, tool_commit_env
from patchmgr.lint import load_patches
from patchmgr.output import show
from patchmgr.series import SUPERPROJECT, PatchSet
from patchmgr.workspace import Workspace


def _series_on(clone: Repo, base: str, patches, name: str) -> str:
    """Apply the patches on base; the commits get fixed committers and dates, so their ids (which
    range-diff prints) are the same on every run and machine."""
    clone.run("checkout", "-q", "--detach", base)
    env = tool_commit_env("1970-01-01T00:00:00+00:00")
    for patch in patches:
        if clone.am(patch.text, "--quiet", env=env).status != 0:
            clone.try_run("am", "--abort")
            raise CheckFailed(f"{patch.label} of set {name} does not apply to its base; run patchmgr check --set {name}")
    return clone.head()


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
            clone = scratch.clone(ws.repo(path))
            ranges = []
            for patch_set, super_base, by_repo in zip(sets, super_bases, loaded):
                base = repo_base(ws.superproject, super_base, path, patch_set)
                patches = by_repo.get(path, [])
                ranges.append(f"{base}..{_series_on(clone, base, patches, patch_set.name)}")
            if all(r.split("..")[0] == r.split("..")[1] for r in ranges):
                sections.append((path, "(no patches in either set)"))
                continue
            out = clone.run("-c", "core.abbrev=12", "range-diff", "--no-color", *ranges, strip=False)
            sections.append((path, out.rstrip()))
    return sections


def command(ws: Workspace, args) -> None:
    """`patchmgr diff-sets A B`."""
    show(diff_sets(ws, args.first, args.second), end="")
