"""Which patch set a checkout needs, and the commits it applies onto.

A checkout is a rust-lang/rust clone (its HEAD is, or descends from, the
upstream commit a set declares) or a git import of a release tarball (its
`git-commit-hash` file names the upstream commit). Commits the series itself
made carry a `Patchmgr-Set` trailer, so the base of an applied tree is found
by walking past them: no state file can go stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchmgr.errors import BadInput, UnknownBase, WrongState
from patchmgr.gitio import Repo
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET, parse_trailers
from patchmgr.series import SUPERPROJECT, Manifest, PatchSet, nearest_sets


@dataclass(frozen=True)
class SeriesCommit:
    sha: str
    set: str
    patch: str | None  # None for commits patchmgr made itself (Enzyme, gitlinks)


@dataclass(frozen=True)
class RepoState:
    """What is on top of a repository's base."""

    head: str
    base: str
    series: tuple[SeriesCommit, ...]  # oldest first
    foreign: tuple[str, ...]  # commits above the series' first commit that carry no trailer
    commits: tuple[str, ...] = ()  # every commit above the base, oldest first (series and foreign interleaved)
    branch: str | None = None  # the checked-out branch's full ref; None when detached

    def tool_commits(self, set_name: str | None = None) -> list[str]:
        """The commits patchmgr made itself (Enzyme submodule, gitlinks): a set trailer (of `set_name`,
        if given), no patch; oldest first."""
        return [c.sha for c in self.series if c.patch is None and set_name in (None, c.set)]


@dataclass(frozen=True)
class Detected:
    patch_set: PatchSet
    how: str  # how the base was recognised, for status and messages
    applied_set: str | None  # the set whose commits are on HEAD, if any


def find_root(start: Path) -> Path:
    """The superproject's top level, also when run from inside src/llvm-project."""
    probe = Repo(start)
    res = probe.try_run("rev-parse", "--show-superproject-working-tree", "--show-toplevel", readonly=True)
    if res.status != 0:
        raise WrongState(f"{start} is not inside a git checkout; run patchmgr -C DIR with your rustc checkout, "
                         "or import a release tree with scripts/import_rustc.py")
    lines = [line for line in res.out.splitlines() if line]
    return Path(lines[0])


def _classify(items: list[tuple[str, str]], exported: dict[str, SeriesCommit]) -> tuple[list[SeriesCommit], list[str]]:
    """Series and foreign commits among (sha, message) pairs: a commit export wrote as a patch file is
    that patch, whatever its trailers say; the others are the series' when they carry a set
    trailer."""
    series, foreign = [], []
    for sha, message in items:
        trailers = parse_trailers(message)
        if sha in exported:
            series.append(exported[sha])
        elif TRAILER_SET in trailers:
            series.append(SeriesCommit(sha, trailers[TRAILER_SET], trailers.get(TRAILER_PATCH)))
        else:
            foreign.append(sha)
    return series, foreign


def repo_state(repo: Repo, known_base: str | None, limit: int,
               exported: dict[str, SeriesCommit] | None = None) -> RepoState:
    """Split HEAD's first-parent history into base, series commits and foreign commits.

    With the base recorded at apply time every commit above it is classified,
    so a commit of the user's between two series commits is still seen (and
    unapply will not drop it). Without one, the series is found by walking
    back over trailer-carrying commits. `exported` (commit -> what it is) are
    the commits export wrote as patches (AppliedRecord.exported).
    """
    exported = exported or {}
    head, branch = repo.head_and_branch()
    if known_base and repo.try_run("merge-base", "--is-ancestor", known_base, head, readonly=True).status == 0:
        items = repo.commits(f"{known_base}..{head}")
        series, foreign = _classify(items, exported)
        return RepoState(head=head, base=known_base, series=tuple(series), foreign=tuple(foreign),
                         commits=tuple(sha for sha, _ in items), branch=branch)
    above, below, seen_series = [], None, False
    for sha, message in repo.commits(head, newest=limit + 1):
        if TRAILER_SET in parse_trailers(message) or sha in exported:
            seen_series = True
        elif seen_series:
            below = sha
            break
        above.append((sha, message))
    if below is None:
        if seen_series:
            raise WrongState(f"{repo.label}: no commit below the patch series within {limit} commits; "
                             "run patchmgr status to inspect")
        return RepoState(head=head, base=head, series=(), foreign=(), branch=branch)
    items = list(reversed(above))
    series, foreign = _classify(items, exported)
    return RepoState(head=head, base=below, series=tuple(series), foreign=tuple(foreign),
                     commits=tuple(sha for sha, _ in items), branch=branch)


def read_tarball_ids(repo: Repo, commit: str) -> tuple[str | None, str | None]:
    """(version, upstream commit) from a release tree's `version` and `git-commit-hash` files."""
    version, commit_hash = (repo.read(commit, name) for name in ("version", "git-commit-hash"))
    return (version.split()[0] if version and version.strip() else None), (commit_hash.strip() if commit_hash else None)


def detect(repo: Repo, base: str, manifest: Manifest, set_name: str | None, applied_set: str | None) -> Detected:
    if applied_set is not None:
        if set_name is not None and set_name != applied_set:
            raise WrongState(f"set {applied_set!r} is applied; run patchmgr unapply before working with {set_name!r}")
        if applied_set not in manifest.sets:
            raise UnknownBase(f"the tree carries set {applied_set!r}, which {manifest.path} no longer declares; "
                              "add the set back to the manifest (or pass --patches DIR with the one that has it), "
                              "then patchmgr unapply")
        return Detected(manifest.sets[applied_set], "applied", applied_set)
    if set_name is not None:
        return Detected(manifest.get(set_name), "--set", None)

    matches = [s for s in manifest.sets.values() if s.commit == base]
    how = "HEAD is the upstream commit"
    if not matches:
        for s in manifest.sets.values():
            if repo.rev(s.commit) and repo.try_run("merge-base", "--is-ancestor", s.commit, base, readonly=True).status == 0:
                matches.append(s)
        how = "HEAD descends from the upstream commit"
    version = None
    if not matches:
        version, upstream = read_tarball_ids(repo, base)
        matches = [s for s in manifest.sets.values() if upstream and s.commit == upstream]
        how = "git-commit-hash file of a release tree"
    if not matches:
        found = f"rustc {version}" if version else f"commit {base[:12]}"
        raise UnknownBase(f"no patch set is for this tree's base ({found}); {nearest_sets(manifest, version)}; "
                          "pass --set NAME to force one")
    if len(matches) > 1:
        raise BadInput(f"sets {', '.join(s.name for s in matches)} are all for this base; pass --set NAME to choose")
    return Detected(matches[0], how, None)


def tree_is_for(repo: Repo, base: str, patch_set: PatchSet) -> bool:
    """Whether `patch_set` goes on the tree's base `base` by the rules detect applies: its upstream
    commit, a descendant of it (your branch on top of upstream), or a release tree of it."""
    if base == patch_set.commit:
        return True
    if repo.rev(patch_set.commit):
        return repo.try_run("merge-base", "--is-ancestor", patch_set.commit, base, readonly=True).status == 0
    return read_tarball_ids(repo, base)[1] == patch_set.commit


def series_limit(manifest: Manifest) -> int:
    """How far back to look for the base: the longest series, with room for the tool's own commits."""
    return max((sum(len(r.patches) for r in s.repos) for s in manifest.sets.values()), default=0) + 8


def find_base(repo: Repo, ws_base: str, patch_set: PatchSet) -> str:
    """The commit of this repository that is the set's upstream base (release_base), or an error."""
    base = release_base(repo, ws_base, patch_set.commit)
    if base is None:
        raise UnknownBase(f"no commit of this checkout is the base of {patch_set.name} (rustc {patch_set.rustc}, "
                          f"{patch_set.commit[:12]}); check out or import that tree first")
    return base


def release_base(repo: Repo, ws_base: str, commit: str) -> str | None:
    """The commit of this repository that is upstream `commit`: itself, else the import of its
    release tree: on the tree's base or a branch whose `git-commit-hash` names it, the commit
    that last wrote that file (a branch's own commits on top are not the base); None if none."""
    if repo.rev(commit):
        return commit
    tips = [ws_base] + [line.split()[0] for line in
                        repo.run("for-each-ref", "--format=%(objectname)", "refs/heads/", readonly=True).splitlines()]
    for tip in tips:
        if read_tarball_ids(repo, tip)[1] == commit:
            return repo.run("log", "-1", "--format=%H", tip, "--", "git-commit-hash", readonly=True).strip() or tip
    return None


def repo_base(superproject: Repo, super_base: str, path: str, patch_set: PatchSet) -> str:
    """The base of repository `path` for a set on superproject commit `super_base`: the commit it records there.

    A base that has no such submodule (a set written for another tree) is refused by name, not left to git.
    """
    if path == SUPERPROJECT:
        return super_base
    link = superproject.gitlink(super_base, path)
    if link is None:
        raise BadInput(f"the base of set {patch_set.name} ({super_base[:12]}) has no submodule {path}")
    return link
