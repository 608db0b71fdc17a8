"""apply, apply --continue / --skip / --abort.

The run is a list of idempotent steps per repository (patch branch, git am
of the patches not yet on it, Enzyme submodule, gitlinks), so --continue
simply runs the steps again. Before the first change op.json records where
every repository was; --abort returns there from any point, a kill included.
"""

from __future__ import annotations

import shutil
import sys

from patchmgr import state
from patchmgr.diagnose import failing_hunks, render
from patchmgr.errors import BadInput, Conflict, GitFailed, WrongState
from patchmgr.gitio import Repo, identity_env, tool_commit_env
from patchmgr.lint import check_symlinks, load_patches
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET, Patch, diff_digest, parse_trailers, with_trailers
from patchmgr.series import SUPERPROJECT, PatchSet
from patchmgr.workspace import View, Workspace, enzyme_rel_path, patch_branch


def _say(message: str) -> None:
    print(f"patchmgr: {message}", file=sys.stderr)


def apply(ws: Workspace, set_name: str | None) -> PatchSet:
    """Apply the set for this tree's base; returns the set."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    patch_set = view.patch_set
    repos = [v.repo for v in view.repos]
    if view.fully_applied and not any(v.drifted for v in view.repos):
        ws.require_clean(repos)
        _say(f"set {patch_set.name} is already applied; nothing to do")
        return patch_set
    for v in view.repos:
        if v.state.foreign or v.edited or v.out_of_order:
            what = ("commits that are not from the series" if v.state.foreign
                    else f"patch {(v.edited or v.applied)[0]} applied in a form that differs from its file")
            raise WrongState(f"{v.path} has {what}; run patchmgr status, then patchmgr unapply (--force keeps a backup) and apply again")
        if v.drifted:
            raise WrongState(f"patch file {v.drifted[0]} changed since it was applied; "
                             "run patchmgr unapply, then patchmgr apply, to apply the new version")
    skipped = [label for v in view.repos for label in v.skipped]
    if skipped:
        raise WrongState(f"patch {skipped[0]} was skipped and later patches are applied; "
                         "run patchmgr unapply, then apply again to include it")
    ws.require_clean(repos)
    for v in view.repos:
        pending = [p for p in view.patches[v.path] if p.label in v.pending]
        check_symlinks(v.repo, v.state.base, pending)
    if patch_set.enzyme:
        _check_enzyme_path(ws, patch_set, view)

    branch = patch_branch(patch_set.name)
    origins = []
    for v in view.repos:
        current = v.repo.branch()
        if current != "refs/heads/" + branch and v.repo.ref_exists("refs/heads/" + branch):
            raise WrongState(f"branch {branch} already exists in {v.path}; delete it (git -C {v.path} branch -D {branch}) "
                             "or run patchmgr unapply")
        origins.append(state.RepoOrigin(v.path, current, v.repo.head()))
    applied = view.applied_record
    record = state.Record(set=patch_set.name, patch_branch=branch, repos=origins,
                          extra={"applied_origins": [o.__dict__ for o in (applied.repos if applied else origins)],
                                 "bases": {v.path: v.state.base for v in view.repos}})
    state.save(ws.git_dir, state.OP_FILE, record)
    run_steps(ws, record, patch_set, view.patches)
    finish(ws, record, view.patches)
    return patch_set


def _check_enzyme_path(ws: Workspace, patch_set: PatchSet, view: View) -> None:
    enzyme = view.enzyme
    target = ws.root / patch_set.enzyme.path
    if enzyme.recorded is None and target.exists() and any(target.iterdir()):
        raise WrongState(f"{patch_set.enzyme.path} exists and is not the Enzyme submodule; move it away, then apply again")


def finish(ws: Workspace, record: state.Record, patches: dict[str, list[Patch]]) -> None:
    previous = ws.applied_record()  # an incremental apply keeps what the first one recorded (the config)
    extra = dict(previous.extra) if previous and previous.set == record.set else {}
    extra["patch_ids"], extra["verified"] = _patch_ids(ws, record, patches)
    applied = state.Record(set=record.set, patch_branch=record.patch_branch,
                           repos=[state.RepoOrigin(**o) for o in record.extra["applied_origins"]], extra=extra)
    for origin in applied.repos:
        origin.branch_created = True
    state.save(ws.git_dir, state.APPLIED_FILE, applied)
    state.remove(ws.git_dir, state.OP_FILE)
    _say(f"applied set {record.set} on branch {record.patch_branch} in {', '.join(o.path for o in record.repos)}; "
         "patchmgr status shows each patch")


def _patch_ids(ws: Workspace, record: state.Record, patches: dict[str, list[Patch]]) -> tuple[dict, dict]:
    """repo path -> patch label -> patch-id of its commit as applied, where it matches its file;
    and repo path -> label -> [commit, digest of the file's diff] for those same commits.

    Status and unapply compare against the ids to tell a patch file changed since
    apply (nothing to lose) from a commit edited after it (work to keep). A
    commit from a resolved conflict already differs from its file: it gets no
    entry, so it counts as edited. While commit and file are the ones recorded,
    no patch-id needs computing at all (the slow part of status).
    """
    files = {p.label: p.diff for series in patches.values() for p in series}
    ids, verified = {}, {}
    for origin in record.repos:
        repo = ws.repo(origin.path)
        commits = [(sha, parse_trailers(message).get(TRAILER_PATCH))
                   for sha, message in repo.commits(f"{record.extra['bases'][origin.path]}..HEAD")]
        commits = [(sha, label) for sha, label in commits if label in files]
        by_sha = repo.patch_ids([sha for sha, _ in commits])
        by_file = dict(zip([label for _, label in commits],
                           repo.patch_ids_of_diffs([files[label] for _, label in commits])))
        matching = [(sha, label) for sha, label in commits if by_sha.get(sha) == by_file[label]]
        ids[origin.path] = {label: by_sha[sha] for sha, label in matching}
        verified[origin.path] = {label: [sha, diff_digest(files[label])] for sha, label in matching}
    return ids, verified


def resume(ws: Workspace, how: str) -> PatchSet:
    """--continue or --skip: finish the stopped git am, then run the remaining steps."""
    record = ws.op_record(state.KIND_APPLY, how)
    patch_set = ws.manifest.get(record.set)
    for origin in record.repos:
        repo = ws.repo(origin.path)
        if am_in_progress(repo):
            if how == "--skip":
                record.extra.setdefault("skipped", []).append(current_label(repo))
                state.save(ws.git_dir, state.OP_FILE, record)
            res = repo.try_run("am", "--skip" if how == "--skip" else "--continue", env=identity_env(repo))
            if res.status != 0:
                raise conflict(repo, res.out + res.err)
    patches = load_patches(patch_set)
    run_steps(ws, record, patch_set, patches)
    finish(ws, record, patches)
    return patch_set


def abort(ws: Workspace) -> None:
    """Put every repository back where op.json says it was."""
    record = ws.op_record(state.KIND_APPLY, "--abort")
    patch_set = ws.manifest.sets.get(record.set)
    for origin in record.repos:
        repo = ws.repo(origin.path)
        restore(repo, origin, record.patch_branch)
    if record.enzyme_created and patch_set and patch_set.enzyme:
        remove_enzyme(ws, patch_set, drop_module=record.enzyme_module_created)
    state.remove(ws.git_dir, state.OP_FILE)
    _say(f"aborted: {', '.join(o.path for o in record.repos)} restored to where they were before the apply of {record.set}")


def restore(repo: Repo, origin: state.RepoOrigin, branch: str) -> None:
    git_dir = repo.git_dir()
    if am_in_progress(repo) and repo.try_run("am", "--quit").status != 0:
        shutil.rmtree(git_dir / "rebase-apply", ignore_errors=True)
    # Only a killed patchmgr run can have left these: op.json says one was under way.
    for name in ["index", "HEAD", f"refs/heads/{branch}", origin.branch]:
        lock = git_dir / f"{name}.lock" if name else None
        if lock is not None and lock.exists():
            lock.unlink()
            _say(f"removed the stale {lock} left by the interrupted run")
    repo.run("reset", "-q", "--hard")
    if origin.branch:
        repo.run("checkout", "-f", "-q", "-B", origin.branch.removeprefix("refs/heads/"), origin.head, "--")
    else:
        repo.run("checkout", "-f", "-q", "--detach", origin.head, "--")
    if origin.branch_created and repo.ref_exists("refs/heads/" + branch) and origin.branch != "refs/heads/" + branch:
        repo.run("branch", "-q", "-D", branch)


def remove_enzyme(ws: Workspace, patch_set: PatchSet, drop_module: bool) -> None:
    """Remove the Enzyme submodule's work tree and config that apply added (its git dir is kept as a cache)."""
    owner = ws.repo(patch_set.enzyme_owner())
    rel = enzyme_rel_path(patch_set)
    target = owner.path / rel
    if owner.gitlink("HEAD", rel) is None and target.exists():
        shutil.rmtree(target)
        # and the directories submodule add created for it, as git does for files
        parent = target.parent
        while parent != owner.path and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    owner.try_run("config", "--remove-section", f"submodule.{rel}")
    if drop_module:
        shutil.rmtree(owner.git_dir() / "modules" / rel, ignore_errors=True)


def am_in_progress(repo: Repo) -> bool:
    return (repo.git_dir() / "rebase-apply").exists()


def run_steps(ws: Workspace, record: state.Record, patch_set: PatchSet, patches: dict[str, list[Patch]]) -> None:
    bases = record.extra["bases"]
    for series in patch_set.apply_order():
        repo = ws.repo(series.path)
        _checkout_patch_branch(ws, repo, record)
        skipped = record.extra.get("skipped", [])
        labels = [patch_set.patch_label(series, n) for n in series.patches]
        labels = [label for label in labels if label not in skipped]
        done = applied_labels(repo, bases[series.path], patch_set.name)
        pending = [p for p in patches[series.path] if p.label not in done and p.label not in skipped]
        if done != labels[:len(done)]:
            raise WrongState(f"{series.path}: the patch branch no longer matches the series; run patchmgr apply --abort")
        if pending:
            am(ws, repo, patch_set.name, pending)
        if patch_set.enzyme and patch_set.enzyme_owner() == series.path:
            _add_enzyme(ws, repo, record, patch_set, bases[series.path])
        for nested in patch_set.repos:
            if nested.path != SUPERPROJECT and series.path == SUPERPROJECT:
                _record_gitlink(repo, ws.repo(nested.path), patch_set, bases[series.path])


def _checkout_patch_branch(ws: Workspace, repo: Repo, record: state.Record) -> None:
    ref = "refs/heads/" + record.patch_branch
    if repo.branch() == ref:
        return
    origin = record.origin(repo.label)
    if repo.ref_exists(ref):
        repo.run("checkout", "-q", record.patch_branch, "--")
        return
    origin.branch_created = True
    state.save(ws.git_dir, state.OP_FILE, record)  # before the branch exists, so abort deletes it
    # The branch starts at HEAD, so moving HEAD onto it changes no file: two ref
    # writes instead of a checkout that would re-stat the whole index.
    repo.run("update-ref", "-m", "patchmgr: start the patch branch", ref, "HEAD", "")
    repo.run("symbolic-ref", "-m", f"patchmgr: switch to {record.patch_branch}", "HEAD", ref)


def applied_labels(repo: Repo, base: str, set_name: str) -> list[str]:
    labels = []
    for _, message in repo.commits(f"{base}..HEAD"):
        trailers = parse_trailers(message)
        if trailers.get(TRAILER_SET) == set_name and TRAILER_PATCH in trailers:
            labels.append(trailers[TRAILER_PATCH])
    return labels


def am(ws: Workspace, repo: Repo, set_name: str, pending, command: str = "apply", check: bool = True):
    """git am --3way of `pending`, tagged with the trailers.

    With check, a stop raises the conflict report; without, git's result is
    returned (not quiet: rebase reads which patches fell back to a 3-way merge).
    """
    mbox = "".join(with_trailers(p.text, [(TRAILER_SET, set_name), (TRAILER_PATCH, p.label)]) for p in pending)
    mbox_file = ws.git_dir / "patchmgr" / f"am-{repo.label.replace('/', '_')}.mbox"
    mbox_file.write_text(mbox, encoding="utf-8")
    if command == "apply":
        _say(f"{repo.label}: applying {len(pending)} patches")
    try:
        res = repo.try_run("am", "--3way", "--committer-date-is-author-date", *(["--quiet"] if check else []),
                           str(mbox_file), env=identity_env(repo))
    finally:
        mbox_file.unlink()  # git am keeps its own copy of the mails while it is stopped
    if check and res.status != 0:
        raise conflict(repo, res.out + res.err, command)
    return res


def conflict(repo: Repo, git_output: str, command: str = "apply") -> Conflict:
    """The report for a stopped git am: which patch, which hunks, and what to run next."""
    git_dir = repo.git_dir()
    apply_dir = git_dir / "rebase-apply"
    if not apply_dir.exists():
        detail = [line for line in git_output.strip().splitlines() if line.strip()]
        return Conflict(f"git am failed in {repo.label}: {detail[-1] if detail else 'no output'}; "
                        f"run patchmgr {command} --abort to restore the tree")
    message = _current_message(repo)
    label = current_label(repo)
    diff = message[message.find("diff --git "):]

    def read(path: str) -> str | None:
        res = repo.try_run("show", f"HEAD:{path}", readonly=True, strip=False)
        return res.out if res.status == 0 else None

    unmerged = [f for f in repo.run("diff", "--name-only", "--diff-filter=U", readonly=True).splitlines() if f]
    lines = [f"patch {label} does not apply to {repo.label}:"]
    lines += render(failing_hunks(diff, read)) or ["  (the hunks match, but git am failed: " + git_output.strip()[-200:] + ")"]
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


def _current_message(repo: Repo) -> str:
    """The mail git am stopped on."""
    apply_dir = repo.git_dir() / "rebase-apply"
    current = int((apply_dir / "next").read_text().strip())
    return (apply_dir / f"{current:04d}").read_text(encoding="utf-8", errors="replace")


def current_label(repo: Repo) -> str:
    prefix = TRAILER_PATCH + ": "
    return next((line[len(prefix):].strip() for line in _current_message(repo).splitlines()
                 if line.startswith(prefix)), "?")


def _base_date(repo: Repo, base: str) -> str:
    return repo.run("log", "-1", "--format=%cI", base, readonly=True).strip()


def _add_enzyme(ws: Workspace, owner: Repo, record: state.Record, patch_set: PatchSet, base: str) -> None:
    pin = patch_set.enzyme
    rel = enzyme_rel_path(patch_set)
    target = owner.path / rel
    if owner.gitlink("HEAD", rel) == pin.commit and (target / ".git").exists() \
            and Repo(target, pin.path).rev("HEAD") == pin.commit:
        return
    module_dir = owner.git_dir() / "modules" / rel
    record.enzyme_created = True
    record.enzyme_module_created = not module_dir.exists()
    state.save(ws.git_dir, state.OP_FILE, record)
    _say(f"{owner.label}: adding Enzyme at {pin.path} from {pin.url} ({pin.commit[:12]})")
    if owner.gitlink("HEAD", rel) is None:
        args = ["-c", "protocol.file.allow=always", "submodule", "add", "--progress", "--name", rel]
        if module_dir.exists():
            args.append("--force")  # reuse the clone a previous apply left in .git/modules
        status = owner.stream(*args, "--", pin.url, rel)
        if status != 0:
            raise GitFailed(f"cloning Enzyme from {pin.url} failed; check the URL or redirect it with "
                            f"git config url.<local>.insteadOf {pin.url}, then patchmgr apply --continue or --abort")
    sub = Repo(target, pin.path)
    if sub.rev(pin.commit) is None:
        sub.run("fetch", "-q", "origin", pin.commit)
    if sub.rev(pin.commit) is None:
        raise BadInput(f"Enzyme commit {pin.commit} is not in {pin.url}; fix enzyme.commit in the manifest, then patchmgr apply --abort")
    sub.run("checkout", "-q", "--detach", pin.commit)
    owner.run("add", "--", rel)
    owner.run("commit", "-q", "--no-verify", "-m", f"Add Enzyme at {pin.commit[:12]} as submodule {rel}\n\n"
              f"From {pin.url}\n\n{TRAILER_SET}: {patch_set.name}", env=tool_commit_env(_base_date(owner, base)))


def _record_gitlink(superproject: Repo, nested: Repo, patch_set: PatchSet, base: str) -> None:
    if superproject.gitlink("HEAD", nested.label) == nested.head():
        return
    superproject.run("add", "--", nested.label)
    superproject.run("commit", "-q", "--no-verify", "-m", f"Record {nested.label} with the {patch_set.name} patches\n\n"
                     f"{TRAILER_SET}: {patch_set.name}", env=tool_commit_env(_base_date(superproject, base)))
