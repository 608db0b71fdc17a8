"""A checkout as patchmgr sees it: superproject, submodules, manifest, state.

Everything here reads; nothing changes a repository. apply, unapply and
status share this view, so they agree on what "applied" means.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from patchmgr import state
from patchmgr.base import Detected, RepoState, SeriesCommit, detect, find_base, find_root, repo_state, series_limit, tree_is_for
from patchmgr.errors import Busy, DirtyTree, WrongState
from patchmgr.gitio import Repo, hold_in_children
from patchmgr.lint import check_manifest_paths, load_patches
from patchmgr.output import say
from patchmgr.patchfile import TRAILER_PATCH, Patch, diff_digest
from patchmgr.series import SUPERPROJECT, Manifest, PatchSet, RepoSeries

PATCH_BRANCH_PREFIX = "patchmgr/"
LOCK_FILE = "patchmgr.lock"  # in the superproject's git dir, beside git's own locks
J = TypeVar("J", bound=state.Journal)


#: how each kind of stopped operation goes on or back
MODES = {state.KIND_APPLY: "--continue, --skip or --abort", state.KIND_REBASE: "--continue, --skip or --abort",
          state.KIND_UNAPPLY: "--continue or --abort"}


def _an(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


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
    dropped: list[str] = field(default_factory=list)  # applied, but no longer in the set's list
    out_of_order: bool = False  # applied patches are not in series order
    skipped: list[str] = field(default_factory=list)  # pending patches that come before applied ones
    tool_commits: int = 0  # Enzyme and gitlink commits
    branch: str | None = None  # the checked-out branch's full ref, None when detached

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
    patched: bool = False  # the set carries patches for Enzyme itself
    series: RepoView | None = None  # those patches against the checkout (None while it is not checked out)

    @property
    def in_place(self) -> bool:
        """Checked out and recorded at the pin, or at the pin with every Enzyme patch on top
        (a drifted patch still counts, as for the other repositories)."""
        if self.recorded != self.checked_out:
            return False
        if not self.patched:
            return self.checked_out == self.pinned
        s = self.series
        return (s is not None and s.state.base == self.pinned and not s.pending and not s.out_of_order
                and not s.state.foreign)


@dataclass
class View:
    root: Path
    detected: Detected
    repos: list[RepoView]
    enzyme: EnzymeView | None
    stale_gitlinks: list[str]  # submodule paths whose superproject record lags their HEAD
    patches: dict[str, list[Patch]]
    applied_record: state.AppliedRecord | None

    @property
    def patch_set(self) -> PatchSet:
        return self.detected.patch_set

    def view(self, path: str) -> RepoView:
        return next(v for v in self.repos if v.path == path)

    @property
    def patched_repos(self) -> list[RepoView]:
        """Every repository with patches applied or due: the tree's, and Enzyme's once it is checked out."""
        return self.repos + ([self.enzyme.series] if self.enzyme and self.enzyme.series else [])

    @property
    def fully_applied(self) -> bool:
        """Every patch is on its branch, Enzyme and gitlinks in place (drifted patches still count)."""
        return (all(not v.pending and not v.out_of_order and not v.state.foreign for v in self.repos)
                and (self.enzyme is None or self.enzyme.in_place) and not self.stale_gitlinks
                and all(v.state.series for v in self.repos))

    @property
    def own_gitlinks(self) -> list[str]:
        """Submodules of the set (src/llvm-project, a patched Enzyme) whose HEAD may differ from the
        commit their owner records without any work of the user's at stake: on the patch branch,
        every commit above the base the series' (those export wrote as patches included). apply records
        such a HEAD, unapply returns the submodule to its base."""
        branch = "refs/heads/" + patch_branch(self.patch_set.name)
        candidates = [v for v in self.patched_repos if v.path != SUPERPROJECT]
        return [v.path for v in candidates if v.branch == branch and v.state.series and not v.state.foreign]

    @property
    def untouched(self) -> bool:
        return all(not v.state.series for v in self.repos)


class Workspace:
    def __init__(self, root: Path, manifest: Manifest):
        self.root = root
        self.manifest = manifest
        self.superproject = Repo(root, SUPERPROJECT)
        self.git_dir = self.superproject.git_dir()
        self._repos: dict[str, Repo] = {}
        self._gitlinks: dict[tuple[str, str], str | None] = {}

    @classmethod
    def open(cls, start: Path, manifest: Manifest) -> Workspace:
        return cls(find_root(start), manifest)

    @contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold the checkout's patchmgr lock for the whole of `command`.

        An flock on .git/patchmgr.lock: the kernel drops it when the holder
        dies, so a killed run never blocks the next one; the pid written in
        the file names the holder for the refusal, and a file left by a dead
        one is taken over with a word. After taking the lock its inode is
        compared with the path's, in case the holder removed the file between
        our open and our flock.
        """
        path = self.git_dir / LOCK_FILE
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise Busy(f"another patchmgr is running on this checkout (pid and command: {holder}), or a git "
                           "command it started is still running; wait for it to finish, then run yours again") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        left = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if left:
            say(f"took over the lock left by a patchmgr that is no longer running ({left})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        hold_in_children(fd)
        try:
            yield
        finally:
            hold_in_children(None)
            os.unlink(path)
            os.close(fd)

    def repo(self, path: str) -> Repo:
        """The repository at `path`, the same object each time: what a Repo reads once (its git
        dir, its own identity config) is then read once per command, not once per caller."""
        if path == SUPERPROJECT:
            return self.superproject
        directory = self.root / path
        if not (directory / ".git").exists():
            raise WrongState(f"submodule {path} is not checked out; run: git submodule update --init {path}")
        if path not in self._repos:
            self._repos[path] = Repo(directory, path)
        return self._repos[path]

    def recorded_gitlink(self, commit: str, path: str) -> str | None:
        """The commit submodule `path` has in the superproject's commit `commit` (a full hash: its
        tree never changes, so each is read once; while nothing is applied, base and head are one)."""
        if (commit, path) not in self._gitlinks:
            self._gitlinks[commit, path] = self.superproject.gitlink(commit, path)
        return self._gitlinks[commit, path]

    def op_record(self) -> state.Journal | None:
        """The operation under way or stopped, if any."""
        return state.load_op(self.git_dir)

    def op_journal(self, kind: type[J], how: str) -> J:
        """The journal `patchmgr <kind> <how>` acts on, or an error saying what is in progress instead."""
        journal = self.op_record()
        if journal is None:
            raise WrongState(f"no {kind.kind} is in progress, so there is nothing to {how.lstrip('-')}; "
                             "run patchmgr status")
        if not isinstance(journal, kind):
            raise WrongState(f"{_an(journal.kind)} of set {journal.set} is in progress, not {_an(kind.kind)}; "
                             f"run patchmgr {journal.kind} {MODES[journal.kind]}")
        self.require_no_hidden_changes(self._journal_repos(journal))
        return journal

    def _journal_repos(self, journal: state.Journal) -> list[Repo]:
        """The repositories a --continue, --skip or --abort of `journal` may write: its own, and the
        set's Enzyme while it is checked out."""
        patch_set = self.manifest.sets.get(journal.set)
        enzyme = self.enzyme_repo(patch_set) if patch_set else None
        if enzyme is not None and enzyme.try_run("rev-parse", "--git-dir", readonly=True).status != 0:
            enzyme = None  # half made by the killed run (its .git names no git dir): the run's own steps undo it
        return [self.repo(o.path) for o in journal.repos] + ([enzyme] if enzyme else [])

    def applied_record(self) -> state.AppliedRecord | None:
        return state.load_applied(self.git_dir)

    def require_no_op(self) -> None:
        op = self.op_record()
        if op is not None:
            raise WrongState(f"{_an(op.kind)} of set {op.set} is in progress; "
                             f"run patchmgr {op.kind} {MODES[op.kind]}")

    def enzyme_repo(self, patch_set: PatchSet) -> Repo | None:
        """The checked-out Enzyme submodule of the set, if there is one."""
        if patch_set.enzyme is None:
            return None
        target = self.root / patch_set.enzyme.path
        return Repo(target, patch_set.enzyme.path) if (target / ".git").exists() else None

    def require_ready(self, repos: list[Repo], ours: bool = False, gitlinks: list[str] | None = None,
                      writes: bool = True, clean: bool = True) -> None:
        """Refuse before any change when a git operation is stopped, or a git lock file
        exists, in any of `repos`, or a tracked file has uncommitted changes.

        With `ours`, a stopped git am whose mail patchmgr tagged is the run being
        continued, not the user's. `gitlinks` (View.own_gitlinks) are submodules
        whose new HEAD is the set's to record, not an uncommitted change. Without
        `writes` (a command that then writes nothing, such as a no-op apply) files
        hidden by index flags are not looked for: a listing of the whole index is
        the dearest read here, and nothing would overwrite them. Without `clean`
        (refresh and new, whose input is the uncommitted changes) tracked files may differ.
        """
        for repo in repos:
            what = repo.operation_in_progress()
            if what and not (ours and (repo.git_dir() / "rebase-apply" / "applying").exists()
                             and _tagged_by_us(repo)):
                raise WrongState(f"{what} is in progress in {repo.label}; finish or abort it there first "
                                 "(nothing was changed)")
            locks = repo.lock_files()
            if locks:
                raise WrongState(f"{locks[0]} exists: a git command is running in {repo.label}, or one was killed; "
                                 "if none is running, remove that file (nothing was changed)")
        if writes:
            self.require_no_hidden_changes(repos)
        if clean and not ours:
            self.require_clean(repos, gitlinks or [])

    def require_no_hidden_changes(self, repos: list[Repo]) -> None:
        """Refuse before any change when a file marked --assume-unchanged or --skip-worktree holds
        changes: git would overwrite them as if there were none (Repo.hidden_changes), and the
        user's stash or commit would not take them either, so the flag is named with its way out.
        A flagged file only touched (same content) is refused too: git would stop half way on it.
        Checked also while continuing or aborting, where ordinary changes are the run's own."""
        hidden = [(repo, *found) for repo in repos for found in repo.hidden_changes()]
        if not hidden:
            return
        hidden.sort(key=lambda h: h[3] != "changed")  # an edit of the user's before a touched file
        repo, path, flag, what = hidden[0]
        where = "" if repo.label == SUPERPROJECT else repo.label + "/"
        git = "git" if repo.label == SUPERPROJECT else f"git -C {repo.label}"
        more = f" (and {len(hidden) - 1} more such files)" if len(hidden) > 1 else ""
        clear = f"{git} update-index --no-{flag[2:]} -- {path}"
        if what == "changed":
            raise DirtyTree(f"{where}{path} has changes git does not show: it is marked {flag}{more}; run {clear}, "
                            "then commit or stash the change (nothing was changed)")
        raise DirtyTree(f"{where}{path} is marked {flag} and was touched since git last read it (its content is "
                        f"unchanged), so git would refuse to write it{more}; run {clear} (nothing was changed)")

    def require_clean(self, repos: list[Repo], gitlinks: list[str] | None = None) -> None:
        """Refuse before any change when a tracked file anywhere has uncommitted changes (a
        submodule of `gitlinks` at another commit than recorded is not one)."""
        dirty = []
        for repo in repos:
            prefix = "" if repo.label == SUPERPROJECT else repo.label + "/"
            dirty += [prefix + f for f in repo.dirty_files(gitlinks_in(repo.label, gitlinks or []))]
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            raise DirtyTree(f"uncommitted changes to tracked files: {shown}; commit or stash them first (nothing was changed)")

    def superproject_state(self, record: state.AppliedRecord | None) -> RepoState:
        """The superproject's base and series, from the base the applied record knows if there is one."""
        known = record.base(SUPERPROJECT) if record else None
        return repo_state(self.superproject, known, series_limit(self.manifest), exported_commits(record, SUPERPROJECT))

    def set_base(self, patch_set: PatchSet) -> str:
        """The superproject commit `patch_set` goes on, whatever is applied: the base below it when
        it is the applied set; the tree's base when nothing is applied and the set is for it (what
        apply would use); else the one it was last applied on here, else its upstream commit, else
        a release tree's import (base.find_base), never a branch that merely descends from it. For
        the commands that only read (check, diff-sets, mcp)."""
        sup_state = self.superproject_state(self.applied_record())
        if any(c.set == patch_set.name for c in sup_state.series) or \
                (not sup_state.series and tree_is_for(self.superproject, sup_state.base, patch_set)):
            return sup_state.base
        recorded = state.load_bases(self.git_dir).sets.get(patch_set.name)
        if recorded and self.superproject.rev(recorded) == recorded:
            return recorded
        return find_base(self.superproject, sup_state.base, patch_set)

    def inspect(self, set_name: str | None) -> View:
        """Read every repository of the set and compare it with the manifest."""
        record = self.applied_record()
        limit = series_limit(self.manifest)
        sup_state = self.superproject_state(record)
        applied_set = next((c.set for c in sup_state.series), None)
        detected = detect(self.superproject, sup_state.base, self.manifest, set_name, applied_set)
        patch_set = detected.patch_set
        check_manifest_paths(self.superproject, sup_state.base, patch_set, self.root)  # before any submodule is read
        patches = load_patches(patch_set)
        if applied_set is None:
            record = None  # a record from an older apply that was undone by hand
        views = []
        for series in patch_set.repos:
            repo = self.repo(series.path)
            if series.path == SUPERPROJECT:
                rstate = sup_state
            else:
                known = (record.base(series.path) if record else None) or \
                    self.recorded_gitlink(sup_state.base, series.path)
                rstate = repo_state(repo, known, limit, exported_commits(record, series.path))
            recorded = record.patch_ids.get(series.path, {}) if record else {}
            verified = record.verified.get(series.path, {}) if record else {}
            views.append(_compare(patch_set, series, repo, rstate, patches[series.path], recorded, verified))
        enzyme = self._enzyme_view(patch_set, patches, record, limit)
        stale = [v.path for v in views if v.path != SUPERPROJECT
                 and self.recorded_gitlink(sup_state.head, v.path) != v.state.head]
        return View(self.root, detected, views, enzyme, stale, patches, record)

    def _enzyme_view(self, patch_set: PatchSet, patches: dict[str, list[Patch]], record: state.AppliedRecord | None,
                     limit: int) -> EnzymeView | None:
        pin = patch_set.enzyme
        if pin is None:
            return None
        owner = self.repo(patch_set.enzyme_owner() or SUPERPROJECT)
        rel = enzyme_rel_path(patch_set)
        view = EnzymeView(pin.url, pin.path, pin.commit, owner.gitlink("HEAD", rel), None,
                          patched=patch_set.enzyme_series is not None)
        if (owner.path / rel / ".git").exists():
            sub = Repo(owner.path / rel, pin.path)
            if patch_set.enzyme_series is None:
                view.checked_out = sub.rev("HEAD")
            else:
                rstate = repo_state(sub, pin.commit, limit, exported_commits(record, pin.path))
                view.checked_out = rstate.head
                view.series = _compare(patch_set, patch_set.enzyme_series, sub, rstate, patches[pin.path],
                                       record.patch_ids.get(pin.path, {}) if record else {},
                                       record.verified.get(pin.path, {}) if record else {})
        return view


def returns_to(views: list[RepoView]) -> list[state.RepoOrigin]:
    """Where unapply takes each repository back (applied.json's origins): where apply found it, that
    is its base or a branch whose newest commits are the patches (adopt.py); or, when the series was
    already on it with no record of where it began, its base."""
    return [state.RepoOrigin(v.path, v.branch, v.state.base if v.state.series else v.state.head) for v in views]


def gitlinks_in(label: str, gitlinks: list[str]) -> set[str]:
    """Those of `gitlinks` (paths from the checkout's top) inside the repository at `label`, as
    paths relative to it (how its own git status names them)."""
    prefix = "" if label == SUPERPROJECT else label + "/"
    return {g[len(prefix):] for g in gitlinks if g.startswith(prefix)}


def exported_commits(record: state.AppliedRecord | None, path: str) -> dict[str, SeriesCommit]:
    """The commits of the repository at `path` that export wrote as patches of the applied set
    (AppliedRecord.exported), as the series commits they are."""
    if record is None:
        return {}
    return {sha: SeriesCommit(sha, record.set, label) for sha, label in record.exported.get(path, {}).items()}


def _tagged_by_us(repo: Repo) -> bool:
    """Whether the mail git am stopped on carries patchmgr's trailer (a run of ours, not the user's)."""
    return f"\n{TRAILER_PATCH}: " in (repo.stopped_mail() or "")


def enzyme_rel_path(patch_set: PatchSet) -> str:
    """The Enzyme path relative to the repository that records it."""
    pin, owner = patch_set.enzyme, patch_set.enzyme_owner()
    if pin is None or owner is None:
        raise WrongState(f"set {patch_set.name} pins no Enzyme, so it has no Enzyme path")
    return pin.path if owner == SUPERPROJECT else pin.path[len(owner) + 1:]


def _compare(patch_set: PatchSet, series: RepoSeries, repo: Repo, rstate: RepoState, patches: list[Patch],
             recorded: dict[str, str], verified: dict[str, state.Verified]) -> RepoView:
    """Compare one repository with its series.

    `recorded` holds the patch-ids of the commits as apply made them: a drifted
    commit that still has its recorded id was not touched (its file changed),
    one that does not was edited, and only that is work unapply could lose.
    `verified` holds the commits and file digests apply saw matching: those are
    not compared again.
    """
    view = RepoView(series=series, repo=repo, state=rstate, branch=rstate.branch)
    labels = [patch_set.patch_label(series, n) for n in series.patches]
    mine = [c for c in rstate.series if c.set == patch_set.name]
    on_branch = [(c.sha, c.patch) for c in mine if c.patch is not None]  # (commit, patch label)
    view.tool_commits = len(mine) - len(on_branch)
    applied = [label for _, label in on_branch]
    positions = [labels.index(label) if label in labels else -1 for label in applied]
    view.out_of_order = -1 in positions or positions != sorted(positions)
    view.applied = applied
    view.pending = [label for label in labels if label not in applied]
    view.skipped = [label for label in view.pending if positions and labels.index(label) < max(positions)]
    by_label = dict(zip(labels, patches))
    unverified = [(sha, label) for sha, label in on_branch if label not in by_label or label not in verified
                  or (verified[label].commit, verified[label].diff) != (sha, diff_digest(by_label[label].diff))]
    # the same commit and diff, but the file's message or author edited since apply: drifted, not edited
    view.drifted = [label for sha, label in on_branch if (sha, label) not in unverified
                    and verified[label].file and verified[label].file != diff_digest(by_label[label].text)]
    if unverified:
        commit_ids = repo.patch_ids([sha for sha, _ in unverified])
        file_ids = repo.patch_ids_of_diffs([by_label[label].diff if label in by_label else "" for _, label in unverified])
        view.drifted += [label for (sha, label), fid in zip(unverified, file_ids)
                         if label not in by_label or commit_ids.get(sha) != fid]
        view.edited = [label for sha, label in unverified if label in view.drifted
                       and recorded.get(label) != commit_ids.get(sha)]
    # a patch taken out of the list has no file to drift from: its own word, not "drifted"
    view.dropped = [label for label in applied if label not in labels]
    view.drifted = [label for label in view.drifted if label not in view.dropped]
    return view
