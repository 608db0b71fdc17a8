"""The git-am engine that apply, rebase and unapply share.

Applying a set is a list of idempotent steps per repository (switch to the
patch branch, git am the patches not yet on it, add the Enzyme submodule,
record the submodules' gitlinks), so --continue simply runs the steps again.
Every step that creates something first writes that into the journal (through
the `save` it is given: apply saves its own journal, rebase the enclosing
rebase journal), so --abort knows what to take away. The verbs (apply, rebase,
unapply) decide when to run what; this module only knows how.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from patchmgr import gitmodules, state
from patchmgr.diagnose import failing_hunks, render
from patchmgr.errors import BadInput, Conflict, DirtyTree, GitFailed, PatchmgrError, WrongState
from patchmgr.faults import fault
from patchmgr.gitio import Repo, Result, tool_commit_env
from patchmgr.output import progress_wanted, say
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET, Patch, diff_digest, parse_trailers, with_trailers
from patchmgr.scratch import scratch_dir
from patchmgr.series import SUPERPROJECT, EnzymePin, PatchSet, write_atomic
from patchmgr.workspace import Workspace, enzyme_rel_path

Save = Callable[[], None]



# --- git am -----------------------------------------------------------------

def am_in_progress(repo: Repo) -> bool:
    return (repo.git_dir() / "rebase-apply").exists()


def am(repo: Repo, set_name: str, pending: list[Patch], command: str = "apply", check: bool = True) -> Result:
    """git am --3way of `pending`, tagged with the trailers.

    With check, a stop raises the conflict report; without, git's result is
    returned (not quiet: rebase reads which patches fell back to a 3-way merge).
    """
    mbox = "".join(tagged(p, set_name) for p in pending)
    if command == "apply":
        say(f"{repo.label}: applying {len(pending)} patches")
    res = repo.am(mbox, *(["--quiet"] if check else []))
    if check and res.status != 0:
        raise conflict(repo, res.out + res.err, command)
    return res


def tagged(patch: Patch, set_name: str) -> str:
    """The patch's mail with the trailers that name its set and file in the commit."""
    return with_trailers(patch.text, [(TRAILER_SET, set_name), (TRAILER_PATCH, patch.label)])


def conflict(repo: Repo, git_output: str, command: str = "apply") -> Conflict:
    """The report for a stopped git am: which patch, which hunks, and what to run next."""
    if not am_in_progress(repo):
        detail = [line for line in git_output.strip().splitlines() if line.strip()]
        return Conflict(f"git am failed in {repo.label}: {detail[-1] if detail else 'no output'}; "
                        f"run patchmgr {command} --abort to restore the tree")
    message = repo.stopped_mail() or ""
    label = current_label(repo)
    diff = message[message.find("diff --git "):]
    unmerged = [f for f in repo.run("diff", "--name-only", "--diff-filter=U", readonly=True).splitlines() if f]
    lines = [f"patch {label} does not apply to {repo.label}:"]
    lines += render(failing_hunks(diff, lambda path: repo.read("HEAD", path))) or [
        "  (the hunks match, but git am failed: " + git_output.strip()[-200:] + ")"]
    prefix = "" if repo.label == SUPERPROJECT else f"-C {repo.label} "
    if unmerged:
        lines.append(f"conflicted files (3-way merge left markers): {', '.join(unmerged)}")
        lines.append(f"next: edit them, run 'git {prefix}add <files>', then 'patchmgr {command} --continue'")
    else:
        lines.append("git could not merge it (no 3-way base); apply it by hand, for example:")
        lines.append(f"  git {prefix}am --show-current-patch=diff | git {prefix}apply --reject, fix the .rej hunks, "
                     f"git {prefix}add the files, then 'patchmgr {command} --continue'")
    lines.append(f"or: 'patchmgr {command} --skip' drops this patch, 'patchmgr {command} --abort' restores every repository")
    return Conflict(f"patch {label} conflicts in {repo.label}; resolve it and run patchmgr {command} --continue, or --abort",
                    "\n".join(lines))


def current_label(repo: Repo) -> str:
    """The patch git am stopped on, from the trailer patchmgr gave its mail; '?' for a mail not ours."""
    prefix = TRAILER_PATCH + ": "
    return next((line[len(prefix):].strip() for line in (repo.stopped_mail() or "").splitlines()
                 if line.startswith(prefix)), "?")


def require_all_made(repo: Repo, base: str, set_name: str, pending: list[Patch]) -> None:
    """Stop when git am made no commit for a patch: it does that, silently, for a patch whose
    change the tree already has (--3way finds nothing to merge), and the set would be called
    applied with that patch missing."""
    made = set(applied_labels(repo, base, set_name))
    missing = [p.label for p in pending if p.label not in made]
    if missing:
        raise WrongState(f"patch {missing[0]} changed nothing in {repo.label}: the tree already has its change, so git am "
                         "made no commit for it; run patchmgr apply --abort, then drop it from the set's list "
                         "(or apply on a commit without that change)")


def series_labels(commits: list[tuple[str, str]], set_name: str, exported: dict[str, str] | None = None) -> list[str]:
    """The patch labels of the set's commits among (sha, message) pairs, in order; a commit of
    `exported` (commit -> label, AppliedRecord.exported) is the patch export wrote it as."""
    labels = []
    for sha, message in commits:
        trailers = parse_trailers(message)
        if exported and sha in exported:
            labels.append(exported[sha])
        elif trailers.get(TRAILER_SET) == set_name and TRAILER_PATCH in trailers:
            labels.append(trailers[TRAILER_PATCH])
    return labels


def applied_labels(repo: Repo, base: str, set_name: str, exported: dict[str, str] | None = None) -> list[str]:
    return series_labels(repo.commits(f"{base}..HEAD"), set_name, exported)


def exported_before(journal: state.ApplyJournal, path: str) -> dict[str, str]:
    """The commits of `path` export wrote as patches of the set applied before this run."""
    record = journal.applied_before
    return record.exported.get(path, {}) if record and record.set == journal.set else {}


def require_no_untracked(repo: Repo, patches: list[Patch]) -> None:
    """Refuse before any change when an untracked (or ignored) file stands where a patch writes:
    git am would stop on it half way, and --abort could not tell it from the patch's."""
    found = untracked_at(repo, sorted({p for patch in patches for p in patch.paths}))
    if found:
        where = "" if repo.label == SUPERPROJECT else repo.label + "/"
        owner = next(p.label for p in patches if any(found[0] == q or found[0].startswith(q + "/") for q in p.paths))
        raise WrongState(f"untracked file {where}{found[0]} is in the way of patch {owner}; move it away, "
                         "then run the command again (nothing was changed)")


def untracked_at(repo: Repo, paths: list[str] | tuple[str, ...]) -> list[str]:
    """The untracked (or ignored) files at `paths` (files, or directories they lie under)."""
    if not paths:
        return []
    out = repo.run("--literal-pathspecs", "ls-files", "-z", "--others", "--", *paths, readonly=True, strip=False)
    return [name for name in out.split("\0") if name]


def remove_created(repo: Repo, paths: list[str]) -> None:
    """Delete the untracked files at `paths` that a killed git am left behind (the journal's
    run refused to start while any was there, and require_no_later_edits refused any other
    content, so each is the patch's, not the user's)."""
    for name in untracked_at(repo, paths):
        (repo.path / name).unlink(missing_ok=True)
        _remove_empty_parents(repo.path / name, repo.path)
        say(f"removed {name} in {repo.label}, left by the interrupted git am")


def _remove_empty_parents(path: Path, top: Path) -> None:
    """The directories that only held `path`, as git removes them with the files it deletes."""
    parent = path.parent
    while parent != top and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


# --- putting repositories back ----------------------------------------------

def remove_stale_locks(repo: Repo) -> None:
    """Remove the lock files a killed git left in `repo`'s git dir.

    Only called by --abort, under patchmgr's own lock, with a journal saying
    one of its runs was interrupted: the git commands of that run are gone
    with it (a kill of patchmgr ends them too), and these are their files.
    """
    for lock in repo.lock_files():
        lock.unlink(missing_ok=True)
        say(f"removed the stale {lock} left by the interrupted run")


def require_no_later_edits(ws: Workspace, journal: state.Journal, what: str,
                           patches: Callable[[], dict[str, list[Patch]]]) -> None:
    """Before an --abort changes anything: refuse while a file holds a change the interrupted
    run cannot have made, which the abort's reset would discard or its clean-up delete.

    The run began on a clean tree (require_ready, require_no_untracked) and writes
    only where its patches write (journal.paths), where its checkouts moved HEAD
    (the files between the origin and HEAD) and .gitmodules (the Enzyme
    submodule); gitlinks are its own too. A tracked file changed anywhere else
    was changed by the user. An untracked file at a path of its patches is a
    killed git am's only when it holds what one of the run's `patches` creates
    there. A repository with a lock file a killed git left is not judged: that
    git's writes can be anywhere it was going.
    """
    for origin in journal.repos:
        repo = ws.repo(origin.path)
        if repo.lock_files():
            continue
        paths = journal.paths.get(origin.path, [])
        where = "" if repo.label == SUPERPROJECT else repo.label + "/"
        later = _edits_since(repo, origin, paths)
        if later:
            more = f" (and {len(later) - 1} more)" if len(later) > 1 else ""
            raise DirtyTree(f"{where}{later[0]}{more} was changed after the {what} began, where it writes nothing, "
                            "and --abort would discard that; save the change elsewhere and undo it, then run "
                            f"patchmgr {what} --abort again (nothing was changed)")
        added = [name for name in untracked_at(repo, paths)
                 if not _created_by(repo, name, patches().get(origin.path, []))]
        if added:
            raise DirtyTree(f"{where}{added[0]} was added after the {what} began, where its patches create a file, "
                            f"and --abort would delete it; move it away, then run patchmgr {what} --abort again "
                            "(nothing was changed)")


def patches_of(*patch_sets: PatchSet | None) -> Callable[[], dict[str, list[Patch]]]:
    """For require_no_later_edits: the sets' patches (a rebase's old set, and its new one once
    written: the final apply git-ams those), read when first asked (only an untracked file at a
    patch path needs them); a set whose files cannot be read gives none (then no file is its)."""
    @functools.cache
    def read() -> dict[str, list[Patch]]:
        from patchmgr.lint import load_patches

        found: dict[str, list[Patch]] = {}
        for patch_set in filter(None, patch_sets):
            try:
                for path, patches in load_patches(patch_set).items():
                    found.setdefault(path, []).extend(patches)
            except PatchmgrError:
                continue
        return found
    return read


def _edits_since(repo: Repo, origin: state.RepoOrigin, paths: list[str]) -> list[str]:
    out = repo.run("status", "--porcelain", "-z", "--no-renames", "--untracked-files=no", "--ignore-submodules=all",
                   readonly=True, strip=False)
    dirty = [entry[3:] for entry in out.split("\0") if entry]
    if not dirty:
        return []
    moved = repo.run("diff", "--name-only", "-z", "--no-renames", origin.head, "HEAD", "--", readonly=True, strip=False)
    ours = set(paths) | set(moved.split("\0")) | {".gitmodules"}
    return [path for path in dirty if path not in ours]


def _created_by(repo: Repo, name: str, patches: list[Patch]) -> bool:
    """Whether the untracked file `name` holds exactly what one of `patches` creates there, as
    git apply makes it (that patch's section alone, into an empty private index)."""
    blob = repo.try_run("hash-object", "--", name, readonly=True)
    if blob.status != 0:
        return False
    pattern = re.sub(r"([*?\[\\])", r"[\1]", name)  # --include takes a glob
    with scratch_dir("created") as tmp:
        for n, patch in enumerate(p for p in patches if name in p.paths):
            env = {"GIT_INDEX_FILE": str(tmp / f"index{n}")}
            if repo.try_run("apply", "--cached", f"--include={pattern}", input=patch.diff, env=env).status != 0:
                continue
            staged = repo.run("--literal-pathspecs", "ls-files", "-s", "--", name, env=env, readonly=True).split()
            if staged[1:2] == [blob.out]:
                return True
    return False


def restore(repo: Repo, origin: state.RepoOrigin, branch: str, paths: list[str]) -> None:
    """`repo` back on its original branch (or detached HEAD) and commit, index and work tree
    as they were (`paths`: where the run's patches write); the patch branch deleted when this
    run created it."""
    git_dir = repo.git_dir()
    remove_stale_locks(repo)
    if am_in_progress(repo) and repo.try_run("am", "--quit").status != 0:
        shutil.rmtree(git_dir / "rebase-apply", ignore_errors=True)
    repo.run("reset", "-q", "--hard")
    remove_created(repo, paths)
    if origin.branch:
        repo.run("checkout", "-f", "-q", "-B", origin.branch.removeprefix("refs/heads/"), origin.head, "--")
    else:
        repo.run("checkout", "-f", "-q", "--detach", origin.head, "--")
    if origin.branch_created and repo.ref_exists("refs/heads/" + branch) and origin.branch != "refs/heads/" + branch:
        repo.run("branch", "-q", "-D", branch)


# --- branches, Enzyme, gitlinks -----------------------------------------------

def checkout_branch(repo: Repo, journal: state.Journal, save: Save, branch: str, start: str | None = None) -> bool:
    """Switch `repo` to `branch`, creating it at `start` (HEAD when None; recorded in the journal
    first, so --abort deletes it); True when that checked out another commit. Starting at HEAD
    moves no file: two ref writes, no checkout."""
    ref = "refs/heads/" + branch
    head, current = repo.head_and_branch()
    if current == ref:
        return False
    if repo.ref_exists(ref):
        repo.run("-c", "submodule.recurse=false", "checkout", "-q", branch, "--")
        return True
    origin = journal.origin(repo.label)
    assert origin is not None, repo.label
    origin.branch_created = True
    save()
    if start is None or repo.rev(start) == head:
        repo.run("update-ref", "-m", "patchmgr: start the patch branch", ref, head, "")
        fault(f"branch-created:{repo.label}")
        repo.run("symbolic-ref", "-m", f"patchmgr: switch to {branch}", "HEAD", ref)
        return False
    repo.run("-c", "submodule.recurse=false", "checkout", "-q", "-b", branch, start, "--")
    return True


def _base_date(repo: Repo, base: str) -> str:
    return repo.run("log", "-1", "--format=%cI", base, readonly=True).strip()


def add_enzyme(owner: Repo, journal: state.ApplyJournal, save: Save, patch_set: PatchSet, base: str,
               patches: list[Patch]) -> None:
    """Enzyme at its pin (a clone on the first apply), its own patches on top where the set has
    any, and the owner's commit recording it."""
    pin = patch_set.enzyme
    assert pin is not None
    rel = enzyme_rel_path(patch_set)
    target = owner.path / rel
    recorded = owner.gitlink("HEAD", rel)
    if recorded is None and not _registered(owner, rel):
        _make_enzyme(owner, journal, save, pin, rel)
    sub = Repo(target, pin.path)
    _fetch_pin(sub, pin.url, pin.commit)
    if patch_set.enzyme_series is None:
        head = sub.rev("HEAD")
        if head != pin.commit:
            sub.run("checkout", "-q", "--detach", pin.commit)
            head = pin.commit
    else:
        _patch_enzyme(sub, journal, patch_set, patches)
        head = sub.head()
    fault("apply:enzyme-cloned")
    if recorded == head:
        return
    owner.run("add", "--no-warn-embedded-repo", "--", rel)
    subject = f"Add Enzyme at {pin.commit[:12]} as submodule {rel}" if recorded is None \
        else f"Record {rel} with the {patch_set.name} patches"
    mine = f" and {len(patches)} patches of the set" if patch_set.enzyme_series and recorded is None else ""
    owner.run("commit", "-q", "--no-verify", "-m", f"{subject}\n\nFrom {pin.url}{mine}\n\n{TRAILER_SET}: {patch_set.name}",
              env=tool_commit_env(_base_date(owner, base)))


def module_dir(owner: Repo, rel: str) -> Path:
    """Where git keeps the git dir of `owner`'s submodule `rel` (named by its path, as apply names it)."""
    return owner.git_dir() / "modules" / rel


def _make_enzyme(owner: Repo, journal: state.ApplyJournal, save: Save, pin: EnzymePin, rel: str) -> None:
    """The Enzyme submodule, step by step as `git submodule add` makes it, so that a kill between
    any two steps leaves a state --continue finishes and --abort undoes: the git dir (the kept
    clone when it is usable, else a fresh shallow clone), the work tree joined to it, checked out
    detached at the pin (a kept clone's old patch branch is never reused), then the owner's
    config and .gitmodules. The journal says first what this run creates or moves aside."""
    target, gitdir = owner.path / rel, module_dir(owner, rel)
    if journal.enzyme_created and (target / ".git").is_file():  # --continue: git in Enzyme was killed with the run
        remove_stale_locks(Repo(target, rel))
    if not journal.enzyme_created:
        problem = kept_clone_problem(gitdir, pin) if gitdir.exists() else None
        journal.enzyme_created = True
        journal.enzyme_module_created = problem is not None or not gitdir.exists()
        journal.enzyme_module_aside = str(_aside_path(gitdir)) if problem else None
        save()
        if problem:
            say(f"the Enzyme clone kept in {gitdir} is unusable ({problem}); moving it to "
                f"{journal.enzyme_module_aside} and cloning Enzyme afresh")
        fault("apply:enzyme:started")
    aside = journal.enzyme_module_aside
    if aside and not Path(aside).exists() and gitdir.exists():  # not moved yet: a kill came after the journal
        gitdir.rename(aside)
    if journal.enzyme_module_created and (gitdir.exists() or (target / ".git").exists()):
        problem = kept_clone_problem(gitdir, pin) if gitdir.exists() else "the git dir its .git file names is missing"
        if problem:
            _remove_half_made(target, gitdir, problem)
    say(f"{owner.label}: adding Enzyme at {pin.path} from {pin.url} ({pin.commit[:12]})")
    if not gitdir.exists():
        gitdir.parent.mkdir(parents=True, exist_ok=True)
        status = owner.stream("-c", "protocol.file.allow=always", "clone", "--no-checkout", _progress(), "--depth", "1",
                              "--separate-git-dir", str(gitdir), "--", pin.url, str(target))
        if status != 0:
            raise GitFailed(f"cloning Enzyme from {pin.url} failed; check the URL or redirect it with "
                            f"git config url.<local>.insteadOf {pin.url}, then patchmgr apply --continue or --abort")
        fault("apply:enzyme:cloned")
    _join_work_tree(target, gitdir)
    sub = Repo(target, pin.path)
    _fetch_pin(sub, pin.url, pin.commit)
    sub.run("checkout", "-f", "-q", "--detach", pin.commit, "--")
    fault("apply:enzyme:checked-out")
    owner.run("config", f"submodule.{rel}.url", pin.url)
    if owner.try_run("config", "submodule.active", readonly=True).status != 0:
        owner.run("config", f"submodule.{rel}.active", "true")
    owner.run("config", "--file", ".gitmodules", f"submodule.{rel}.path", rel)
    owner.run("config", "--file", ".gitmodules", f"submodule.{rel}.url", pin.url)
    fault("apply:enzyme:gitmodules-written")
    owner.run("add", "--force", "--", ".gitmodules")  # the last step: see _registered
    fault("apply:enzyme:registered")


def _registered(owner: Repo, rel: str) -> bool:
    """Whether the submodule at `rel` is in the .gitmodules of `owner`'s index but not of its HEAD:
    _make_enzyme's last step is done, so a --continue goes on from there (also for a journal an
    older patchmgr wrote while `git submodule add` made it)."""
    return rel in gitmodules.read(owner, ":.gitmodules") and rel not in gitmodules.read(owner, "HEAD:.gitmodules")


def _aside_path(gitdir: Path) -> Path:
    """A free name beside `gitdir` for an unusable kept clone: moved, not deleted (it may hold work)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    candidates = (gitdir.with_name(f"{gitdir.name}.unusable-{stamp}" + (f"-{n}" if n else "")) for n in range(100))
    return next(p for p in candidates if not p.exists())


def _join_work_tree(target: Path, gitdir: Path) -> None:
    """The work tree's .git file and the git dir's core.worktree naming each other by relative
    paths, as git submodule add leaves them (so the checkout can be moved)."""
    target.mkdir(parents=True, exist_ok=True)
    real_target, real_gitdir = os.path.realpath(target), os.path.realpath(gitdir)
    write_atomic(target / ".git", f"gitdir: {os.path.relpath(real_gitdir, real_target)}\n")
    (gitdir / "index").unlink(missing_ok=True)  # a kept clone's index is of a work tree unapply removed
    Repo(gitdir, "").run("config", "--file", str(gitdir / "config"), "core.worktree",
                         os.path.relpath(real_target, real_gitdir))


def _remove_half_made(target: Path, gitdir: Path, problem: str) -> None:
    """Take away the Enzyme clone a killed run of this same operation left half made (its git dir
    and a work tree that holds nothing but the .git file), so it can be made again."""
    extra = _beside_git_file(target)
    if extra:
        raise DirtyTree(f"{target} holds files that are not Enzyme's ({', '.join(extra[:5])}); move them away, "
                        "then run the command again (nothing was changed)")
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(gitdir, ignore_errors=True)
    say(f"removed the Enzyme clone the interrupted run left half made ({problem})")


def _beside_git_file(target: Path) -> list[str]:
    """What a work tree holds besides its .git file."""
    return sorted(p.name for p in target.iterdir() if p.name != ".git") if target.is_dir() else []


def _patch_enzyme(sub: Repo, journal: state.ApplyJournal, patch_set: PatchSet, patches: list[Patch]) -> None:
    """Enzyme's own patches on the pinned commit, on the patch branch, as for any repository:
    the ones not yet there (--continue), or all of them from the pin when the checkout is
    anywhere else (a fresh clone is detached at the pin)."""
    pin = patch_set.enzyme
    assert pin is not None
    ref = "refs/heads/" + journal.patch_branch
    done = applied_labels(sub, pin.commit, patch_set.name, exported_before(journal, pin.path)) \
        if sub.branch() == ref else None
    labels = [p.label for p in patches if p.label not in journal.skipped]
    if done is None or done != labels[:len(done)]:
        sub.run("checkout", "-q", "-B", journal.patch_branch, pin.commit, "--")
        done = []
    pending = [p for p in patches if p.label not in done and p.label not in journal.skipped]
    if pending:
        am(sub, patch_set.name, pending)
        fault(f"apply:am:{pin.path}")


def _progress() -> str:
    return "--progress" if progress_wanted() else "--quiet"


def _fetch_pin(sub: Repo, url: str, commit: str) -> None:
    """Bring `commit` into the Enzyme clone: by its id at depth 1 (what servers such as GitHub
    allow for any reachable commit), else, where the server refuses that, the whole history.
    Says which, since the second can be hundreds of megabytes."""
    if sub.rev(commit) is not None:
        return
    if sub.stream("-c", "protocol.file.allow=always", "fetch", _progress(), "--depth", "1", "origin", commit) == 0 \
            and sub.rev(commit) is not None:
        say(f"fetched Enzyme commit {commit[:12]} alone (depth 1), not the repository's history")
        return
    say(f"{url} does not serve a commit by its id; fetching the whole history to find {commit[:12]}")
    shallow = (sub.git_dir() / "shallow").exists()
    sub.stream("-c", "protocol.file.allow=always", "fetch", _progress(), *(["--unshallow"] if shallow else []),
               "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*")
    if sub.rev(commit) is None:
        raise BadInput(f"Enzyme commit {commit} is not in {url}; fix enzyme.commit in the manifest, "
                       "then patchmgr apply --abort")


def kept_clone(ws: Workspace, patch_set: PatchSet) -> Path | None:
    """The Enzyme clone under .git/modules (the checkout's git dir, kept by unapply as a cache)
    when it is usable (kept_clone_problem) and has the pinned commit."""
    pin = patch_set.enzyme
    assert pin is not None
    gitdir = module_dir(ws.repo(patch_set.enzyme_owner() or SUPERPROJECT), enzyme_rel_path(patch_set))
    if gitdir.is_dir() and kept_clone_problem(gitdir, pin) is None and \
            _in_git_dir(gitdir, "cat-file", "-e", f"{pin.commit}^{{commit}}").status == 0:
        return gitdir
    return None


def kept_clone_problem(gitdir: Path, pin: EnzymePin) -> str | None:
    """Why the clone in `gitdir` must not be used for Enzyme, or None: its HEAD must name a commit,
    its origin must be the manifest's URL (both as git's url.<base>.insteadOf rewrites them), and
    where it has the pinned commit, every object of that commit's tree must be there."""
    if _in_git_dir(gitdir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").status != 0:
        return "its HEAD names no commit"
    origin = _in_git_dir(gitdir, "ls-remote", "--get-url", "origin").out.strip()
    wanted = _in_git_dir(gitdir, "ls-remote", "--get-url", pin.url).out.strip()
    if origin != wanted:
        return f"its origin is {origin}, not {wanted}"
    if _in_git_dir(gitdir, "cat-file", "-e", f"{pin.commit}^{{commit}}").status == 0:
        res = _in_git_dir(gitdir, "rev-list", "--objects", "--no-walk", pin.commit, "--")
        if res.status != 0:
            detail = next((line for line in res.err.splitlines() if line.startswith(("fatal:", "error:"))), "")
            return f"objects of commit {pin.commit[:12]} are missing: {detail or 'git rev-list failed'}"
    return None


def _in_git_dir(gitdir: Path, *args: str) -> Result:
    """A read-only git command in the git dir itself, with an explicit work tree: unapply removed
    the one its config names, and git refuses to start without it."""
    return Repo(gitdir, "").try_run("--git-dir", str(gitdir), "--work-tree", str(gitdir), *args, readonly=True)


def verify_enzyme_pin(ws: Workspace, patch_set: PatchSet) -> None:
    """Before any change: the pinned Enzyme commit can be had from its URL.

    A clone a previous apply left under .git/modules that passes
    kept_clone_problem and has the commit is enough; otherwise (an unusable
    one is moved aside when Enzyme is made) the commit is fetched (depth 1)
    into a scratch repository, so an unreachable URL or a commit the
    repository does not have is refused while the tree is untouched.
    """
    pin = patch_set.enzyme
    assert pin is not None
    if kept_clone(ws, patch_set) is not None:
        return
    with scratch_dir("enzyme") as tmp:
        scratch = Repo(tmp, pin.path)
        scratch.run("init", "-q", "--bare")
        say(f"checking that {pin.url} has Enzyme commit {pin.commit[:12]}")
        # the commit object alone where the server filters (GitHub does): a check, not a download
        res = scratch.try_run("-c", "protocol.file.allow=always", "fetch", "-q", "--depth=1", "--filter=tree:0", "--",
                              pin.url, pin.commit)
        if res.status == 0:
            return
        reachable = scratch.try_run("-c", "protocol.file.allow=always", "ls-remote", "-q", "--", pin.url, "HEAD")
        if reachable.status != 0:
            detail = next((line for line in reachable.err.splitlines() if line.startswith("fatal:")), "no answer")
            raise GitFailed(f"Enzyme's URL {pin.url} cannot be reached ({detail}); fix enzyme.url or redirect it with "
                            f"git config url.<local clone>.insteadOf {pin.url} (nothing was changed)")
        # a server that does not serve commits by id: all of its branches and tags, then look
        scratch.try_run("-c", "protocol.file.allow=always", "fetch", "-q", "--", pin.url, "+refs/*:refs/scratch/*")
        if scratch.rev(pin.commit) is None:
            raise BadInput(f"Enzyme commit {pin.commit} is not in {pin.url}; fix enzyme.commit in the manifest "
                           "(nothing was changed)")


def require_nothing_untracked(enzyme: Repo) -> None:
    """Before the Enzyme work tree is removed (unapply, an --abort): refuse while it holds files
    that are not Enzyme's, naming them. A work tree whose git dir has no commit checked out (a
    clone a kill cut short) holds nothing of Enzyme's but its .git file."""
    if enzyme.rev("HEAD") is None:
        extra = _beside_git_file(enzyme.path)
    else:
        out = enzyme.run("status", "--porcelain", "-z", "--untracked-files=all", "--ignored", readonly=True, strip=False)
        extra = [entry[3:] for entry in out.split("\0") if entry[:2] in ("??", "!!")]
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise DirtyTree(f"{enzyme.label} holds files that are not in Enzyme's commit ({shown}); removing it "
                        "would delete them: move them away, then run the command again (nothing was changed)")


def remove_enzyme(ws: Workspace, patch_set: PatchSet, made_by: state.ApplyJournal | None) -> None:
    """Remove the Enzyme submodule's work tree and config that apply added (its git dir is kept as a
    cache). `made_by`: the journal of the run that added it (an --abort), whose fresh clone goes too,
    and a kept clone it moved aside comes back; None for unapply."""
    owner = ws.repo(patch_set.enzyme_owner() or SUPERPROJECT)
    rel = enzyme_rel_path(patch_set)
    target = owner.path / rel
    enzyme = ws.enzyme_repo(patch_set)
    if enzyme is not None and made_by is not None:
        remove_stale_locks(enzyme)  # of a git the kill ended with the run: they would stay in a kept clone
    if enzyme is not None and enzyme.rev("HEAD") is not None and am_in_progress(enzyme):  # a stopped git am (an --abort)
        enzyme.try_run("am", "--quit")
    if owner.gitlink("HEAD", rel) is None and target.exists():
        shutil.rmtree(target)
        _remove_empty_parents(target, owner.path)  # and the directories submodule add created for it
    owner.try_run("config", "--remove-section", f"submodule.{rel}")
    if made_by is not None:
        _remove_our_gitmodules(owner, rel, patch_set.enzyme.url if patch_set.enzyme else "")
        _restore_module_dir(module_dir(owner, rel), made_by)


def _restore_module_dir(gitdir: Path, made_by: state.ApplyJournal) -> None:
    """The git dir under .git/modules as it was before the run: its own clone removed, and the
    unusable kept clone it moved aside put back (left alone where the kill came before the move)."""
    aside = Path(made_by.enzyme_module_aside) if made_by.enzyme_module_aside else None
    if made_by.enzyme_module_created and (aside is None or aside.exists()):
        shutil.rmtree(gitdir, ignore_errors=True)
    if aside is not None and aside.exists():
        aside.rename(gitdir)
        say(f"moved the unusable Enzyme clone back to {gitdir}")


def _remove_our_gitmodules(owner: Repo, rel: str, url: str) -> None:
    """An untracked .gitmodules that holds only the Enzyme entry this run wrote (killed before it
    was staged, so git reset left it): the run's, not the user's."""
    if not owner.run("ls-files", "--others", "--", ".gitmodules", readonly=True):
        return
    res = owner.try_run("config", "--file", ".gitmodules", "--list", readonly=True)
    ours = {f"submodule.{rel}.path={rel}", f"submodule.{rel}.url={url}"}
    if res.status == 0 and res.out and set(res.out.splitlines()) <= ours:
        (owner.path / ".gitmodules").unlink()


def _record_gitlink(superproject: Repo, nested: Repo, patch_set: PatchSet, base: str) -> None:
    if superproject.gitlink("HEAD", nested.label) == nested.head():
        return
    superproject.run("add", "--", nested.label)
    fault("apply:gitlink-staged")
    superproject.run("commit", "-q", "--no-verify", "-m", f"Record {nested.label} with the {patch_set.name} patches\n\n"
                     f"{TRAILER_SET}: {patch_set.name}", env=tool_commit_env(_base_date(superproject, base)))


# --- the steps ----------------------------------------------------------------

def run_steps(ws: Workspace, journal: state.ApplyJournal, save: Save, patch_set: PatchSet,
              patches: dict[str, list[Patch]], known: dict[str, list[str]] | None = None) -> None:
    """Bring every repository to the fully applied set, from wherever the journal's run got to.

    `known` (repository path -> applied labels) is what the caller already read
    of a repository whose HEAD has not moved since; the others are read here.
    """
    bases = journal.bases
    for series in patch_set.apply_order():
        repo = ws.repo(series.path)
        moved = checkout_branch(repo, journal, save, journal.patch_branch, journal.adopted.get(series.path))
        labels = [patch_set.patch_label(series, n) for n in series.patches]
        labels = [label for label in labels if label not in journal.skipped]
        done = known[series.path] if known and series.path in known and not moved else \
            applied_labels(repo, bases[series.path], patch_set.name, exported_before(journal, series.path))
        pending = [p for p in patches[series.path] if p.label not in done and p.label not in journal.skipped]
        if done != labels[:len(done)]:
            raise WrongState(f"{series.path}: the patch branch no longer matches the series; run patchmgr apply --abort")
        if pending:
            am(repo, patch_set.name, pending)
            fault(f"apply:am:{series.path}")
            require_all_made(repo, bases[series.path], patch_set.name, pending)
        if patch_set.enzyme and patch_set.enzyme_owner() == series.path:
            add_enzyme(repo, journal, save, patch_set, bases[series.path], patches.get(patch_set.enzyme.path, []))
        if series.path == SUPERPROJECT:
            for nested in patch_set.repos:
                if nested.path != SUPERPROJECT:
                    _record_gitlink(repo, ws.repo(nested.path), patch_set, bases[series.path])


def complete(ws: Workspace, journal: state.ApplyJournal, patches: dict[str, list[Patch]]) -> None:
    """Record the applied set (applied.json) and end the operation (op.json goes)."""
    previous = ws.applied_record()  # an incremental apply keeps what the first one recorded (the config)
    keep = previous if previous and previous.set == journal.set else None
    exported = keep.exported if keep else {}  # commits export wrote as patches, which this run did not remake
    ids, verified = _patch_ids(ws, journal, patches, exported)
    applied = state.AppliedRecord(set=journal.set, patch_branch=journal.patch_branch,
                                  repos=[state.RepoOrigin(o.path, o.branch, o.head, branch_created=True)
                                         for o in journal.applied_origins],
                                  patch_ids=ids, verified=verified, exported=exported,
                                  config=keep.config if keep else None,
                                  config_inputs=keep.config_inputs if keep else None,
                                  bases={**(keep.bases if keep else {}), **journal.adopted})
    state.save_applied(ws.git_dir, applied)
    fault("apply:recorded")
    state.remove(ws.git_dir, state.OP_FILE)
    state.record_base(ws.git_dir, journal.set, journal.bases[SUPERPROJECT])  # once done: an aborted apply leaves none
    say(f"applied set {journal.set} on branch {journal.patch_branch} in {', '.join(o.path for o in journal.repos)}; "
        "patchmgr status shows each patch")


def _patch_ids(ws: Workspace, journal: state.ApplyJournal, patches: dict[str, list[Patch]],
               exported: dict[str, dict[str, str]]
               ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, state.Verified]]]:
    """repo path -> patch label -> patch-id of its commit as applied, where it matches its file;
    and repo path -> label -> that commit with the digests of the file's diff and of the whole
    file (the last tells an edit of only the message or author).

    Status and unapply compare against the ids to tell a patch file changed since
    apply (nothing to lose) from a commit edited after it (work to keep). A
    commit from a resolved conflict already differs from its file: it gets no
    entry, so it counts as edited. While commit and file are the ones recorded,
    no patch-id needs computing at all (the slow part of status).
    """
    by_label = {p.label: p for series in patches.values() for p in series}
    ids, verified = {}, {}
    bases = {o.path: journal.bases[o.path] for o in journal.repos}
    patch_set = ws.manifest.sets.get(journal.set)
    if patch_set and patch_set.enzyme and patch_set.enzyme_series and ws.enzyme_repo(patch_set):
        bases.setdefault(patch_set.enzyme.path, patch_set.enzyme.commit)  # Enzyme's patches, when cloned by this run
    for path, base in bases.items():
        repo = ws.repo(path)
        mine = exported.get(path, {})
        commits = [(sha, mine.get(sha) or parse_trailers(message).get(TRAILER_PATCH))
                   for sha, message in repo.commits(f"{base}..HEAD")]
        ids[path], verified[path] = matching_ids(repo, [(sha, by_label[label]) for sha, label in commits
                                                        if label in by_label])
    return ids, verified


def matching_ids(repo: Repo, pairs: list[tuple[str, Patch]]) -> tuple[dict[str, str], dict[str, state.Verified]]:
    """For each (commit, patch) whose commit has its patch file's patch-id: label -> that id, and
    label -> the commit and the digests of the file's diff and of the whole file (AppliedRecord's
    patch_ids and verified); pairs that differ get no entry."""
    by_sha = repo.patch_ids([sha for sha, _ in pairs])
    by_file = repo.patch_ids_of_diffs([patch.diff for _, patch in pairs])
    matching = [(sha, patch) for (sha, patch), file_id in zip(pairs, by_file) if by_sha.get(sha) == file_id]
    return ({patch.label: by_sha[sha] for sha, patch in matching},
            {patch.label: state.Verified(sha, diff_digest(patch.diff), diff_digest(patch.text)) for sha, patch in matching})
