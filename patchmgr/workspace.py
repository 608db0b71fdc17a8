"""A checkout as patchmgr sees it: superproject, submodules, manifest, state.

Everything here reads; nothing changes a repository. apply, unapply and
status share this view, so they agree on what "applied" means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from patchmgr import state
from patchmgr.base import Detected, RepoState, detect, find_root, repo_state, series_limit
from patchmgr.errors import DirtyTree, WrongState
from patchmgr.gitio import Repo
from patchmgr.lint import load_patches
from patchmgr.patchfile import Patch, diff_digest
from patchmgr.series import SUPERPROJECT, Manifest, PatchSet, RepoSeries

PATCH_BRANCH_PREFIX = "patchmgr/"


def patch_branch(set_name: str) -> str:
    return PATCH_BRANCH_PREFIX + set_name


@dataclass
class RepoView:
    series: RepoSeries
    repo: Repo
    state: RepoState
    applied: list[str] = field(default_factory=list)  # patch labels, in order
    pending: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)  # applied commit differs from its patch file
    edited: list[str] = field(default_factory=list)  # ... because the commit changed after apply
    out_of_order: bool = False  # applied patches are not in series order
    skipped: list[str] = field(default_factory=list)  # pending patches that come before applied ones
    tool_commits: int = 0  # Enzyme and gitlink commits

    @property
    def path(self) -> str:
        return self.series.path


@dataclass
class EnzymeView:
    url: str
    path: str
    pinned: str
    recorded: str | None  # the gitlink in its owner's HEAD
    checked_out: str | None  # HEAD of the checked-out submodule

    @property
    def in_place(self) -> bool:
        return self.recorded == self.pinned == self.checked_out


@dataclass
class View:
    root: Path
    detected: Detected
    repos: list[RepoView]
    enzyme: EnzymeView | None
    stale_gitlinks: list[str]  # submodule paths whose superproject record lags their HEAD
    patches: dict[str, list[Patch]]
    applied_record: state.Record | None

    @property
    def patch_set(self) -> PatchSet:
        return self.detected.patch_set

    def view(self, path: str) -> RepoView:
        return next(v for v in self.repos if v.path == path)

    @property
    def fully_applied(self) -> bool:
        """Every patch is on its branch, Enzyme and gitlinks in place (drifted patches still count)."""
        return (all(not v.pending and not v.out_of_order and not v.state.foreign for v in self.repos)
                and (self.enzyme is None or self.enzyme.in_place) and not self.stale_gitlinks
                and all(v.state.series for v in self.repos))

    @property
    def untouched(self) -> bool:
        return all(not v.state.series for v in self.repos)


class Workspace:
    def __init__(self, root: Path, manifest: Manifest):
        self.root = root
        self.manifest = manifest
        self.superproject = Repo(root, SUPERPROJECT)
        self.git_dir = self.superproject.git_dir()

    @classmethod
    def open(cls, start: Path, manifest: Manifest) -> "Workspace":
        return cls(find_root(start), manifest)

    def repo(self, path: str) -> Repo:
        if path == SUPERPROJECT:
            return self.superproject
        directory = self.root / path
        if not (directory / ".git").exists():
            raise WrongState(f"submodule {path} is not checked out; run: git submodule update --init {path}")
        return Repo(directory, path)

    def op_record(self, kind: str | None = None, how: str = "") -> state.Record | None:
        """The operation under way; with `kind`, the one `patchmgr <kind> <how>` may act on, else an error."""
        record = state.load(self.git_dir, state.OP_FILE)
        if kind is None:
            return record
        if record is None:
            raise WrongState(f"no {kind} is in progress, so there is nothing to {how.lstrip('-')}; run patchmgr status")
        if record.kind != kind:
            raise WrongState(f"a {record.kind} of set {record.set} is in progress, not a {kind}; "
                             f"run patchmgr {record.kind} --continue, --skip or --abort")
        return record

    def applied_record(self) -> state.Record | None:
        return state.load(self.git_dir, state.APPLIED_FILE)

    def require_no_op(self) -> None:
        op = self.op_record()
        if op is not None:
            raise WrongState(f"a{'n' if op.kind == state.KIND_APPLY else ''} {op.kind} of set {op.set} is in progress; "
                             f"run patchmgr {op.kind} --continue, --skip or --abort")

    def require_clean(self, repos: list[Repo]) -> None:
        """Refuse before any change when a tracked file anywhere has uncommitted changes."""
        dirty = []
        for repo in repos:
            prefix = "" if repo.label == SUPERPROJECT else repo.label + "/"
            dirty += [prefix + f for f in repo.dirty_files()]
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            raise DirtyTree(f"uncommitted changes to tracked files: {shown}; commit or stash them first (nothing was changed)")

    def superproject_state(self, record: state.Record | None) -> RepoState:
        """The superproject's base and series, from the base the applied record knows if there is one."""
        known = record.origin(SUPERPROJECT).head if record and record.origin(SUPERPROJECT) else None
        return repo_state(self.superproject, known, series_limit(self.manifest))

    def inspect(self, set_name: str | None) -> View:
        """Read every repository of the set and compare it with the manifest."""
        record = self.applied_record()
        limit = series_limit(self.manifest)
        sup_state = self.superproject_state(record)
        applied_set = next((c.set for c in sup_state.series), None)
        detected = detect(self.superproject, sup_state.base, self.manifest, set_name, applied_set)
        patch_set = detected.patch_set
        patches = load_patches(patch_set)
        if applied_set is None:
            record = None  # a record from an older apply that was undone by hand
        views = []
        for series in patch_set.repos:
            repo = self.repo(series.path)
            if series.path == SUPERPROJECT:
                rstate = sup_state
            else:
                origin = record.origin(series.path) if record else None
                known = origin.head if origin else self.superproject.gitlink(sup_state.base, series.path)
                rstate = repo_state(repo, known, limit)
            recorded = record.extra.get("patch_ids", {}).get(series.path, {}) if record else {}
            verified = record.extra.get("verified", {}).get(series.path, {}) if record else {}
            views.append(_compare(patch_set, series, repo, rstate, patches[series.path], recorded, verified))
        enzyme = self._enzyme_view(patch_set)
        stale = []
        for series in patch_set.repos:
            if series.path != SUPERPROJECT and self.superproject.gitlink("HEAD", series.path) != self.repo(series.path).head():
                stale.append(series.path)
        return View(self.root, detected, views, enzyme, stale, patches, record)

    def _enzyme_view(self, patch_set: PatchSet) -> EnzymeView | None:
        pin = patch_set.enzyme
        if pin is None:
            return None
        owner_path = patch_set.enzyme_owner()
        owner = self.repo(owner_path)
        rel = enzyme_rel_path(patch_set)
        checked_out = None
        if (owner.path / rel / ".git").exists():
            checked_out = Repo(owner.path / rel, pin.path).rev("HEAD")
        return EnzymeView(pin.url, pin.path, pin.commit, owner.gitlink("HEAD", rel), checked_out)


def enzyme_rel_path(patch_set: PatchSet) -> str:
    """The Enzyme path relative to the repository that records it."""
    owner = patch_set.enzyme_owner()
    return patch_set.enzyme.path if owner == SUPERPROJECT else patch_set.enzyme.path[len(owner) + 1:]


def _compare(patch_set: PatchSet, series: RepoSeries, repo: Repo, rstate: RepoState, patches: list[Patch],
             recorded: dict[str, str], verified: dict[str, list[str]]) -> RepoView:
    """Compare one repository with its series.

    `recorded` holds the patch-ids of the commits as apply made them: a drifted
    commit that still has its recorded id was not touched (its file changed),
    one that does not was edited, and only that is work unapply could lose.
    `verified` holds the commits and file digests apply saw matching: those are
    not compared again.
    """
    view = RepoView(series=series, repo=repo, state=rstate)
    labels = [patch_set.patch_label(series, n) for n in series.patches]
    mine = [c for c in rstate.series if c.set == patch_set.name]
    on_branch = [c for c in mine if c.patch is not None]
    view.tool_commits = len(mine) - len(on_branch)
    applied = [c.patch for c in on_branch]
    positions = [labels.index(label) if label in labels else -1 for label in applied]
    view.out_of_order = -1 in positions or positions != sorted(positions)
    view.applied = applied
    view.pending = [label for label in labels if label not in applied]
    view.skipped = [label for label in view.pending if positions and labels.index(label) < max(positions)]
    by_label = dict(zip(labels, patches))
    unverified = [c for c in on_branch if c.patch not in by_label
                  or verified.get(c.patch) != [c.sha, diff_digest(by_label[c.patch].diff)]]
    if unverified:
        commit_ids = repo.patch_ids([c.sha for c in unverified])
        file_ids = repo.patch_ids_of_diffs([by_label[c.patch].diff if c.patch in by_label else "" for c in unverified])
        view.drifted = [c.patch for c, fid in zip(unverified, file_ids)
                        if c.patch not in by_label or commit_ids.get(c.sha) != fid]
        view.edited = [c.patch for c in unverified if c.patch in view.drifted
                       and recorded.get(c.patch) != commit_ids.get(c.sha)]
    return view
