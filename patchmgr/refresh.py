"""refresh and new: quilt's habits on an applied set.

`refresh [PATCH]` folds the uncommitted changes of tracked files into the applied patch that
touched those files (or the one named), `new NAME` makes them a new patch at the end of the
set. Both work on one repository at a time (the one whose files changed: the superproject,
src/llvm-project or Enzyme), then write the patch files through export and record what export
recorded, so the set stays applied.

The commits are made in the object store with a private index: the user's work tree is never
written, and the real index is only set to what the work tree already holds. Each run is steps
a kill can stop between without loss: (1) the new commits, unreferenced; (2) the real index
set to the work tree's content of the changed files (the changes now staged, still uncommitted
against the old HEAD); (3) the patch branch moved, atomically, from the old commit to the new
one; (4) the patch files written and the submodule's new commit recorded (`settle`). A kill
before (3) leaves the changes where they were (staged), so the same command again does the
whole job; a kill after it leaves nothing to fold, and `patchmgr refresh` with nothing to fold
does (4) alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from patchmgr.errors import UsageError, WrongState
from patchmgr.export import export_set, formatted
from patchmgr.faults import fault
from patchmgr.gitio import Repo
from patchmgr.mailcommit import MailCommitter
from patchmgr.output import say
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET
from patchmgr.series import SUPERPROJECT, load_manifest
from patchmgr.workspace import RepoView, View, Workspace, patch_branch


def changed_paths(repo: Repo) -> list[str]:
    """Tracked files whose work-tree (or staged) content differs from HEAD, relative to `repo`;
    submodules are left out (their changes are their own repository's)."""
    out = repo.run("diff", "HEAD", "--name-only", "-z", "--no-renames", "--ignore-submodules=all",
                   readonly=True, strip=False)
    return [p for p in out.split("\0") if p]


def _where(v: RepoView) -> str:
    return "" if v.path == SUPERPROJECT else v.path + "/"


def applied_view(ws: Workspace, set_name: str | None, command: str) -> View:
    """The applied set, every repository on its patch branch with only the series on it; else a
    refusal saying what to do first."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    name = view.patch_set.name
    if view.untouched:
        raise WrongState(f"set {name} is not applied here, so {command} has no patch branch to work on; "
                         "run patchmgr apply first (nothing was changed)")
    repos = [v.repo for v in view.patched_repos]
    ws.require_ready(repos, clean=False)  # no git operation stopped, no git lock, no hidden changes
    for v in view.patched_repos:
        if v.state.series and v.branch != "refs/heads/" + patch_branch(name):
            raise WrongState(f"{v.path} is not on branch {patch_branch(name)}; check it out, then run patchmgr "
                             f"{command} again (nothing was changed)")
        if v.pending:
            raise WrongState(f"patch {v.pending[0]} of {v.path} is not applied; run patchmgr apply first, so "
                             f"{command} writes the whole list (nothing was changed)")
        if v.state.foreign:
            raise WrongState(f"{v.path} has commits that are not from the series (first {v.state.foreign[0][:12]}); "
                             f"run patchmgr export to make them patches, then patchmgr {command} (nothing was changed)")
        edited_file = [label for label in v.drifted if label not in v.edited]
        if edited_file:  # export would write the branch's version over the file's
            raise WrongState(f"patch file {edited_file[0]} changed since it was applied; run patchmgr apply to take "
                             f"it (or export to discard it), then patchmgr {command} (nothing was changed)")
    return view


def require_on_branch(v: RepoView, set_name: str, command: str) -> None:
    """The repository the changes are in has its patch branch checked out: that branch moves,
    and the work tree must be the one it describes."""
    branch = patch_branch(set_name)
    if v.branch != "refs/heads/" + branch:
        raise WrongState(f"{v.path} is not on branch {branch}, so {command} has no patch branch to add to there; "
                         f"check it out (or run patchmgr apply), then run patchmgr {command} again (nothing was changed)")


def settle(ws: Workspace, set_name: str) -> list[str]:
    """Write the patch files from the branches (export, which records the commits it wrote as
    the applied patches) and record a submodule's new commit in its owner (apply's steps):
    what makes a moved patch branch the applied set again. Idempotent."""
    from patchmgr.apply import apply

    changes = export_set(ws, set_name)
    fault("refresh:exported")
    ws.manifest = load_manifest(ws.manifest.path.parent)  # export may have written the set's lists
    if not ws.inspect(set_name).fully_applied:
        apply(ws, set_name)
    return changes


def _stage(repo: Repo, paths: list[str]) -> None:
    """The real index at `paths` set to the work tree's content (what the new commit holds), so
    once the branch moves nothing is left staged against it; the work tree is not written."""
    if paths:
        repo.run("--literal-pathspecs", "add", "-A", "-f", "--", *paths)
    fault("refresh:staged")


def _move_branch(repo: Repo, set_name: str, new: str, old: str) -> None:
    """The patch branch from `old` to `new` in one atomic ref update (refused if it moved since)."""
    repo.run("update-ref", "-m", "patchmgr: fold uncommitted changes", "refs/heads/" + patch_branch(set_name), new, old)
    fault("refresh:branch-moved")


# --- refresh -------------------------------------------------------------------

def touched_by(repo: Repo, sha: str) -> set[str]:
    out = repo.run("diff-tree", "--no-commit-id", "--name-only", "-r", "-z", "--no-renames", sha,
                   readonly=True, strip=False)
    return {p for p in out.split("\0") if p}


def _changed_repos(view: View) -> dict[str, list[str]]:
    """Repository path -> its changed tracked files, for the repositories that have any."""
    found = {v.path: changed_paths(v.repo) for v in view.patched_repos}
    return {path: files for path, files in found.items() if files}


def _name_matches(label: str, wanted: str) -> bool:
    """A patch named on the command line: its label, its file name, or a path ending in it."""
    return label == wanted or label.rsplit("/", 1)[-1] == wanted or label.endswith("/" + wanted.lstrip("./"))


def choose_target(view: View, changed: dict[str, list[str]], wanted: str | None) -> tuple[RepoView, str, str]:
    """(repository, commit, patch label) the changes go into; refused, listing the candidates,
    when the changed files are in several repositories or touched by several patches or none."""
    if wanted is not None:
        named = [(v, c) for v in view.patched_repos for c in v.state.series
                 if c.set == view.patch_set.name and c.patch and _name_matches(c.patch, wanted)]
        if len(named) != 1:
            labels = [c.patch for v in view.patched_repos for c in v.state.series if c.patch]
            what = "matches several applied patches" if named else "is not an applied patch"
            raise UsageError(f"{wanted} {what}; applied: {', '.join(labels) or 'none'} (nothing was changed)")
        v, c = named[0]
        others = [p for p in changed if p != v.path]
        if others:
            raise WrongState(f"patch {c.patch} is in {v.path}, but {others[0]} has uncommitted changes too; commit or "
                             "stash those, then refresh (nothing was changed)")
        assert c.patch is not None
        return v, c.sha, c.patch
    if len(changed) > 1:
        raise WrongState(f"uncommitted changes in several repositories ({', '.join(changed)}); refresh folds one "
                         "repository's changes at a time: stash the others, or name the patch (nothing was changed)")
    path, files = next(iter(changed.items()))
    v = next(r for r in view.patched_repos if r.path == path)
    mine = [c for c in v.state.series if c.set == view.patch_set.name and c.patch]
    hits = [c for c in mine if touched_by(v.repo, c.sha) & set(files)]
    if len(hits) == 1 and hits[0].patch:
        return v, hits[0].sha, hits[0].patch
    shown = ", ".join(_where(v) + f for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    if hits:
        raise UsageError(f"{shown} are touched by several patches: {', '.join(str(c.patch) for c in hits)}; name one: "
                         "patchmgr refresh PATCH (nothing was changed)")
    raise UsageError(f"no applied patch touches {shown}; name one (patchmgr refresh PATCH; applied in {path}: "
                     f"{', '.join(str(c.patch) for c in mine) or 'none'}) or start one with patchmgr new NAME "
                     "(nothing was changed)")


def folded_commits(v: RepoView, target: str, files: list[str], labels: dict[str, str]) -> tuple[str, str]:
    """(the new tip, the old tip): every commit from `target` to HEAD made again with the work
    tree's changes of `files` in its tree, as fixup and rebase would leave them, in the object
    store. A later commit whose change the fold would have to cross (the changes do not apply
    below it) is refused by name before anything is changed."""
    repo, commits = v.repo, list(v.state.commits)
    head = repo.head()
    later = commits[commits.index(target):]
    with MailCommitter(repo, "refresh") as index:
        wanted = index.tree_with_work_tree(head, files)
        diff = repo.run("diff-tree", "-p", "--binary", "--full-index", "--no-renames", head, wanted,
                        readonly=True, strip=False)
        trees = {head: wanted}
        for newer, sha in zip(reversed(later), list(reversed(later))[1:]):
            tree = index.apply(f"{sha}^{{tree}}", diff, three_way=False)
            if tree is None:
                raise WrongState(f"the changes to {', '.join(files[:3])} in {v.path} depend on patch "
                                 f"{labels.get(newer, newer[:12])}, which comes after {labels[target]}; fold them "
                                 f"into that one (patchmgr refresh {labels.get(newer, newer[:12])}) or make them "
                                 "a new patch (nothing was changed)")
            trees[sha] = tree
    parent = repo.run("rev-parse", f"{target}^", readonly=True).strip()
    for sha in later:
        parent = repo.recommit(sha, parent, tree=trees[sha])
    return parent, head


def refresh(ws: Workspace, set_name: str | None, wanted: str | None) -> list[str]:
    """Fold the uncommitted changes into their patch; returns the lines to print."""
    view = applied_view(ws, set_name, "refresh")
    name = view.patch_set.name
    changed = _changed_repos(view)
    if not changed:
        if wanted is not None:
            raise UsageError(f"no tracked file has uncommitted changes, so there is nothing to fold into {wanted} "
                             "(nothing was changed)")
        return settle(ws, name) or ["nothing to fold: no tracked file has uncommitted changes, and the patch "
                                    "files match the branches"]
    v, target, label = choose_target(view, changed, wanted)
    require_on_branch(v, name, "refresh")
    files = changed.get(v.path, [])
    labels = {c.sha: c.patch for c in v.state.series if c.patch}
    new, old = folded_commits(v, target, files, labels)
    _stage(v.repo, files)
    _move_branch(v.repo, name, new, old)
    say(f"{v.path}: folded {len(files)} changed files into {label}")
    return settle(ws, name)


# --- new -----------------------------------------------------------------------

def repo_of(view: View, root: Path, path: str) -> tuple[RepoView, str]:
    """The repository of the set a path named on the command line (from the current directory)
    lies in, the deepest one, and the path relative to it."""
    full = os.path.normpath(os.path.join(os.getcwd(), path))
    rel = os.path.relpath(full, root)
    if rel == ".." or rel.startswith("../"):
        raise UsageError(f"{path} is outside the checkout {root} (nothing was changed)")
    best = None
    for v in view.patched_repos:
        prefix = "" if v.path == SUPERPROJECT else v.path + "/"
        if (rel + "/").startswith(prefix) and (best is None or len(prefix) > len(_where(best))):
            best = v
    assert best is not None  # the superproject holds every path of the checkout
    inner = rel[len(_where(best)):] or "."
    if inner == ".":
        raise UsageError(f"{path} is a whole repository; name the files to take (nothing was changed)")
    return best, inner


def new_patch(ws: Workspace, set_name: str | None, subject: str, paths: list[str]) -> list[str]:
    """A new patch at the end of the set from the uncommitted changes of tracked files (or exactly
    the files named, which may be untracked); returns the lines to print."""
    if not subject.strip() or not subject.splitlines()[0].strip():
        raise UsageError("the new patch needs a name (its commit subject), or --message TEXT (nothing was changed)")
    view = applied_view(ws, set_name, "new")
    if paths:
        named = [repo_of(view, ws.root, p) for p in paths]
        repos = {v.path for v, _ in named}
        if len(repos) > 1:
            raise UsageError(f"the files named are in several repositories ({', '.join(sorted(repos))}); a patch "
                             "belongs to one (nothing was changed)")
        v, files = named[0][0], [inner for _, inner in named]
        unknown = [f for f in files if not os.path.lexists(v.repo.path / f)
                   and not v.repo.run("--literal-pathspecs", "ls-files", "--", f, readonly=True)]
        if unknown:
            raise UsageError(f"{_where(v)}{unknown[0]} is neither a file nor tracked (nothing was changed)")
        if v.path != SUPERPROJECT:
            # its owner then records the submodule's new commit through apply, which refuses a tree
            # with other uncommitted changes: refused here, before the branch moves
            others = [_where(r) + f for r, fs in ((next(x for x in view.patched_repos if x.path == p), fs)
                                                  for p, fs in _changed_repos(view).items())
                      for f in fs if r.path != v.path or f not in files]
            if others:
                raise WrongState(f"{others[0]} has uncommitted changes too; a new patch in {v.path} is recorded in "
                                 "its owner by apply, which needs the rest of the tree clean: commit or stash them "
                                 "first (nothing was changed)")
    else:
        changed = _changed_repos(view)
        if not changed:
            raise UsageError("no tracked file has uncommitted changes to make a patch of; name new files after "
                             "--: patchmgr new NAME -- PATH... (nothing was changed)")
        if len(changed) > 1:
            raise WrongState(f"uncommitted changes in several repositories ({', '.join(changed)}); a patch belongs "
                             "to one: name its files after -- (nothing was changed)")
        path, files = next(iter(changed.items()))
        v = next(r for r in view.patched_repos if r.path == path)
    require_on_branch(v, view.patch_set.name, "new")
    head = v.repo.head()
    with MailCommitter(v.repo, "new") as index:
        tree = index.tree_with_work_tree(head, files)
    if tree == v.repo.run("rev-parse", f"{head}^{{tree}}", readonly=True).strip():
        raise UsageError(f"the files named hold no change against the patch branch in {v.path} (nothing was changed)")
    label = _new_label(view, v, tree, head, subject)
    message = f"{subject.rstrip()}\n\n{TRAILER_SET}: {view.patch_set.name}\n{TRAILER_PATCH}: {label}\n"
    new = v.repo.run("commit-tree", tree, "-p", head, "-F", "-", input=message).strip()
    _stage(v.repo, files)
    _move_branch(v.repo, view.patch_set.name, new, head)
    say(f"{v.path}: committed {subject.splitlines()[0]!r} on {patch_branch(view.patch_set.name)}")
    return settle(ws, view.patch_set.name)


def _new_label(view: View, v: RepoView, tree: str, head: str, subject: str) -> str:
    """The label export will give a commit of `subject` on top of the branch: the next number,
    and the name format-patch makes of the subject. The commit carries it in its trailers from
    the start, so a kill before the file is written leaves a patch of the set, not a foreign
    commit."""
    draft = v.repo.run("commit-tree", tree, "-p", head, "-F", "-", input=subject.rstrip() + "\n").strip()
    number = len([sha for sha in v.state.commits if sha not in v.state.tool_commits()]) + 1
    name = f"{number:04d}" + formatted(v.repo, [draft])[0][0][4:]
    return view.patch_set.patch_label(v.series, name)


def refresh_command(ws: Workspace, args) -> None:
    """`patchmgr refresh [PATCH]`."""
    for line in refresh(ws, args.set_name, args.patch):
        say(line)


def new_command(ws: Workspace, args) -> None:
    """`patchmgr new NAME [--message TEXT] [-- PATH...]`."""
    for line in new_patch(ws, args.set_name, args.message or args.name, args.paths):
        say(line)
