"""rebase --onto: carry a patch set onto a newer upstream, one patch at a time.

The set's files are replayed, not a branch, so what moves is exactly what the
series says. Each patch, in series order, ends as one of:
- dropped as upstream: a commit between the old and the new base carries the
  same change (same patch-id), or the whole patch reverse-applies (every hunk
  is already there);
- clean: it applies as it is;
- merged 3-way: `git am --3way` merges it through the blobs the patch names
  (a file upstream moved is followed that way);
- resolved by hand / skipped by hand: it stopped with a report (hunks, and the
  upstream commits that changed those lines), and --continue or --skip went on.
One `git am` per repository replays the series; each patch's outcome is read
from what git says while applying it. op.json (kind "rebase") is written
before the first change, so --abort puts every repository back exactly,
whenever the run stopped. At the end the replayed branches are exported as a
new set next to the old one, with a report, and become that set's patch
branches (only their trailers change), the Enzyme submodule and gitlinks are
added as apply adds them: the tree is ready for x.py and status agrees with
the files.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import unidiff

from patchmgr import engine, releases, state
from patchmgr.base import read_tarball_ids
from patchmgr.errors import BadInput, Conflict, UsageError, WrongState
from patchmgr.export import write_patches
from patchmgr.faults import fault
from patchmgr.gitio import Repo
from patchmgr.lint import check_against_base, load_patches
from patchmgr.output import say, show
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET, Patch, parse_trailers
from patchmgr.series import SET_NAME, SUPERPROJECT, VERSION, PatchSet, RepoSeries, load_manifest, set_table, write_manifest
from patchmgr.workspace import Workspace, patch_branch

CLEAN, MERGED, BY_HAND, SKIPPED, DROPPED = ("clean", "merged 3-way", "resolved by hand", "skipped by hand",
                                            "dropped as upstream")
REPORT_NAME = "rebase-report.md"


def rebase_branch(set_name: str) -> str:
    return f"patchmgr/rebase/{set_name}"


def start(ws: Workspace, onto: str, set_name: str | None, new_name: str | None, llvm: int | None) -> PatchSet:
    """Plan the rebase, check everything that can be checked before a change, then replay."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    old = view.patch_set
    if not view.untouched:
        raise WrongState(f"set {old.name} is applied; rebase replays the set's files, so first save any change to "
                         "the patches (patchmgr export), then patchmgr unapply, then rebase")
    ws.require_ready([v.repo for v in view.repos])
    patches = view.patches
    for v in view.repos:
        engine.require_no_untracked(v.repo, patches[v.path])
    old_bases = {v.path: v.state.base for v in view.repos}
    onto_sha = _resolve_onto(ws, onto, old, old_bases[SUPERPROJECT])
    ontos = {SUPERPROJECT: onto_sha}
    for v in view.repos:
        if v.path == SUPERPROJECT:
            continue
        link = ws.superproject.gitlink(onto_sha, v.path)
        if link is None:
            raise BadInput(f"the new base {onto} has no submodule {v.path}, which set {old.name} patches")
        if v.repo.rev(link) is None:
            raise WrongState(f"{v.path} does not have commit {link[:12]}, which the new base records; "
                             f"fetch it first (git -C {v.path} fetch)")
        ontos[v.path] = link
    if ontos == old_bases:
        raise WrongState(f"{onto} is the base set {old.name} is already for; nothing to rebase")
    for v in view.repos:
        check_against_base(v.repo, ontos[v.path], patches[v.path])
    new = _new_set_facts(ws, ontos, old, llvm)
    name = new_name or (old.name.replace(old.rustc, new.rustc) if old.rustc in old.name else None)
    if not name or name == old.name:
        raise BadInput(f"cannot name the new set from {old.name!r}; pass --new-set NAME")
    if not SET_NAME.match(name):
        raise BadInput(f"{name!r} is not a valid set name (letters, digits, '.', '_', '-')")
    if name in ws.manifest.sets:
        raise WrongState(f"set {name} already exists in {ws.manifest.path}; pass --new-set NAME, or remove it first")
    dirs = {r.path: _new_dir(r.dir, old.name, name) for r in old.repos}
    for directory in dirs.values():
        target = old.root / directory
        if target.exists() and any(target.iterdir()):
            raise WrongState(f"{target} exists and is not empty; pass --new-set NAME, or move it away first")

    origins = [state.RepoOrigin(v.path, v.branch, v.state.head) for v in view.repos]
    branch = rebase_branch(name)
    for v in view.repos:
        for taken in (branch, patch_branch(name)):
            if v.repo.ref_exists("refs/heads/" + taken):
                raise WrongState(f"branch {taken} already exists in {v.path}; delete it (git -C {v.path} branch -D {taken})")
    journal = state.RebaseJournal(set=name, patch_branch=branch, repos=origins, from_set=old.name, onto_arg=onto,
                                  old_bases=old_bases, ontos=ontos, new=new, dirs=dirs,
                                  manifest=ws.manifest.path.read_text(encoding="utf-8"),
                                  applied_before=ws.applied_record(),
                                  paths={path: sorted({p for patch in patches[path] for p in patch.paths})
                                         for path in patches})
    state.save_op(ws.git_dir, journal)
    fault("rebase:journal")
    say(f"rebasing {old.name} (rustc {old.rustc}) onto {onto} (rustc {new.rustc}, {onto_sha[:12]}) as {name}")
    _replay(ws, journal, old, patches)
    return _finish(ws, journal, old)


def resume(ws: Workspace, how: str, note: str | None = None) -> PatchSet:
    """--continue or --skip: finish the stopped patch, then replay the rest; `note` says why, in the report."""
    journal = ws.op_journal(state.RebaseJournal, how)
    ws.require_ready([ws.repo(o.path) for o in journal.repos], ours=True)
    old = ws.manifest.get(journal.from_set)
    if journal.final is not None:  # stopped while completing the apply of the new set
        return _finish(ws, journal, old)
    patches = load_patches(old)
    outcomes = journal.outcomes
    for origin in journal.repos:
        repo = ws.repo(origin.path)
        if not engine.am_in_progress(repo):
            continue
        label = engine.current_label(repo)
        stopped = next(p for p in patches[origin.path] if p.label == label)
        # git am goes on with the rest of its mailbox after the stopped patch
        queue = [p for p in patches[origin.path] if p.label not in outcomes and p is not stopped]
        if how == "--skip":
            outcomes[label] = [SKIPPED, note or "skipped with --skip"]
            state.save_op(ws.git_dir, journal)
            _settle(ws, repo, journal, queue, repo.try_run("am", "--skip"))
            continue
        res = repo.try_run("am", "--continue")
        if res.status != 0 and engine.am_in_progress(repo) and engine.current_label(repo) == label:
            raise _with_history(engine.conflict(repo, res.out + res.err, "rebase"), repo, journal, stopped)
        outcomes[label] = [BY_HAND, note or ""]
        say(f"{label}: {BY_HAND}")
        # the resolved patch is the first "Applying:" of git's output
        _settle(ws, repo, journal, queue, res, resolved=True)
    _replay(ws, journal, old, patches)
    return _finish(ws, journal, old)


def abort(ws: Workspace) -> None:
    """Every repository back where op.json says it was; a new set already written is taken back too."""
    journal = ws.op_journal(state.RebaseJournal, "--abort")
    old = ws.manifest.sets.get(journal.from_set)
    final = journal.final
    enzyme = ws.enzyme_repo(old) if old and final is not None and final.enzyme_created else None
    if enzyme is not None:
        engine.require_nothing_untracked(enzyme)  # before anything moves
    for origin in journal.repos:
        repo = ws.repo(origin.path)
        engine.restore(repo, origin, journal.patch_branch, journal.paths.get(origin.path, []))
        if journal.written and repo.ref_exists(f"refs/heads/{patch_branch(journal.set)}"):
            repo.run("branch", "-q", "-D", patch_branch(journal.set))
    if final is not None and final.enzyme_created and old is not None and old.enzyme:
        engine.remove_enzyme(ws, old, drop_module=final.enzyme_module_created)
    _unwrite(ws, journal)
    if journal.applied_before is None:
        state.remove(ws.git_dir, state.APPLIED_FILE)
    else:
        state.save_applied(ws.git_dir, journal.applied_before)
    state.remove(ws.git_dir, state.OP_FILE)
    say(f"aborted: {', '.join(o.path for o in journal.repos)} restored to where they were before the rebase of "
         f"{journal.from_set}")


# --- planning -------------------------------------------------------------

def _resolve_onto(ws: Workspace, onto: str, old: PatchSet, old_base: str) -> str:
    """A revision of the superproject, or a rustc version brought in from its Debian source package.

    An imported release stays as tag <version> (also after --abort), so the
    next rebase onto it does not download and commit it again.
    """
    if onto.startswith("-"):
        raise BadInput(f"--onto {onto!r} must be a revision or a rustc version, not an option")
    sha = ws.superproject.rev(onto)
    if sha is not None:
        return sha
    if not VERSION.match(onto):
        raise BadInput(f"--onto {onto!r} is neither a revision in {ws.root} nor a rustc version such as 1.85.0")
    gitlinks = {r.path: ws.superproject.gitlink(old_base, r.path) for r in old.repos if r.path != SUPERPROJECT}
    sha = releases.commit_release(ws.root, onto, old_base, {p: c for p, c in gitlinks.items() if c})
    ws.superproject.run("update-ref", "-m", f"patchmgr: rustc {onto} release tree", f"refs/tags/{onto}", sha, "")
    say(f"rustc {onto} is commit {sha[:12]} (tag {onto}), a child of {old_base[:12]}")
    return sha


def _new_set_facts(ws: Workspace, ontos: dict[str, str], old: PatchSet, llvm: int | None) -> state.NewBase:
    """rustc version, upstream commit and LLVM major of the new base, read from its tree."""
    sup, onto = ws.superproject, ontos[SUPERPROJECT]
    version, upstream = read_tarball_ids(sup, onto)
    if version is None:
        version = (sup.read(onto, "src/version") or "").strip() or None
    if not version or not VERSION.match(version):
        raise BadInput(f"cannot tell the rustc version of {onto[:12]}: it has neither a version nor a src/version file")
    note = ""
    if llvm is None:
        llvm = _llvm_major(ws, ontos)
    if llvm is None:
        llvm, note = old.llvm, f"LLVM major kept from {old.name}: the new base's llvm-project does not say; pass --llvm"
    return state.NewBase(rustc=version, commit=upstream or onto, llvm=llvm, note=note)


def _llvm_major(ws: Workspace, ontos: dict[str, str]) -> int | None:
    for path, commit in ontos.items():
        if path == SUPERPROJECT or not path.endswith("llvm-project"):
            continue
        repo = ws.repo(path)
        for name in ("cmake/Modules/LLVMVersion.cmake", "llvm/CMakeLists.txt"):
            text = repo.read(commit, name)
            found = re.search(r"set\(LLVM_VERSION_MAJOR\s+(\d+)\)", text) if text is not None else None
            if found:
                return int(found.group(1))
    return None


def _new_dir(old_dir: str, old_name: str, new_name: str) -> str:
    return new_name + old_dir[len(old_name):] if old_dir.startswith(old_name + "/") else f"{new_name}/{old_dir}"


# --- replay ---------------------------------------------------------------

def _replay(ws: Workspace, journal: state.RebaseJournal, old: PatchSet, patches: dict[str, list[Patch]]) -> None:
    outcomes = journal.outcomes
    for series in old.apply_order():
        repo = ws.repo(series.path)
        onto = journal.ontos[series.path]
        engine.checkout_branch(repo, journal, lambda: state.save_op(ws.git_dir, journal), journal.patch_branch, onto)
        on_branch = engine.applied_labels(repo, onto, journal.set)
        for label in on_branch:
            if label not in outcomes:  # git am --continue run by hand, or a kill after the am
                stopped = journal.stopped == label
                outcomes[label] = [BY_HAND if stopped else CLEAN, "" if stopped else "outcome not recorded (interrupted)"]
        pending = [p for p in patches[series.path] if p.label not in outcomes]
        if pending:
            journal.stopped = pending[0].label
            state.save_op(ws.git_dir, journal)
            res = engine.am(repo, journal.set, pending, "rebase", check=False)
            fault(f"rebase:am:{series.path}")
            _settle(ws, repo, journal, pending, res)
    state.save_op(ws.git_dir, journal)


def _settle(ws: Workspace, repo: Repo, journal: state.RebaseJournal, pending: list[Patch], res,
            resolved: bool = False) -> None:
    """Give each patch of one `git am` run its outcome, from what git said while applying it.

    git am itself passes over a patch whose change is already there ("No
    changes -- Patch already applied"); a stop is either such a patch in a form
    that conflicts (it reverse-applies: dropped, and am goes on) or a conflict.
    """
    outcomes = journal.outcomes
    queue = list(pending)
    while True:
        segments = re.split(r"(?m)^Applying: .*$", res.out + "\n" + res.err)[1:]
        if resolved:
            segments, resolved = segments[1:], False
        stopped = res.status != 0
        for text in segments[:len(segments) - 1] if stopped else segments:
            patch = queue.pop(0)
            if "No changes -- Patch already applied." in text:
                twin = _upstream_twin(repo, patch, journal.old_bases[repo.label], journal.ontos[repo.label])
                outcomes[patch.label] = [DROPPED, f"same change as upstream {twin}" if twin
                                         else "every hunk is already upstream"]
            else:
                outcomes[patch.label] = [MERGED if "Falling back to patching base and 3-way merge" in text else CLEAN, ""]
            say(f"{patch.label}: {outcomes[patch.label][0]}"
                 + (f" ({outcomes[patch.label][1]})" if outcomes[patch.label][1] else ""))
        journal.stopped = queue[0].label if queue else None
        state.save_op(ws.git_dir, journal)
        if not stopped:
            return
        patch = queue[0]
        if repo.try_run("apply", "--check", "-R", "--cached", input=patch.diff, readonly=True).status != 0:
            raise _with_history(engine.conflict(repo, res.out + res.err, "rebase"), repo, journal, patch)
        outcomes[patch.label] = [DROPPED, "every hunk is already upstream"]
        queue.pop(0)
        say(f"{patch.label}: {DROPPED} (every hunk is already upstream)")
        res = repo.try_run("am", "--skip")


def _upstream_twin(repo: Repo, patch: Patch, old_base: str, onto: str) -> str | None:
    """An upstream commit between the bases with this patch's patch-id, as 'sha subject'.

    Only commits touching exactly the patch's files can carry the same change,
    so only those are diffed (a release import touching everything is not).
    """
    touching = repo.run("log", "--format=%H", f"{old_base}..{onto}", "--", *patch.paths, readonly=True).split()
    if not touching:
        return None
    # every file of each such commit, in one process: git diff-tree prints the id, then its files
    listing = repo.run("diff-tree", "--stdin", "-r", "--root", "--name-only", "--no-renames",
                       input="".join(sha + "\n" for sha in touching), readonly=True)
    files: dict[str, set[str]] = {}
    current, listed = None, set(touching)
    for line in listing.splitlines():
        if line in listed:
            current = files.setdefault(line, set())
        elif current is not None and line:
            current.add(line)
    candidates = [sha for sha in touching if files.get(sha) == set(patch.paths)]
    if not candidates:
        return None
    ids = repo.patch_ids(candidates)
    mine = repo.patch_ids_of_diffs([patch.diff])[0]
    for sha in candidates:
        if ids.get(sha) == mine:
            return repo.run("log", "-1", "--format=%h %s", sha, readonly=True).strip()
    return None


def _with_history(error: Conflict, repo: Repo, journal: state.RebaseJournal, patch: Patch) -> Conflict:
    """The conflict report plus the upstream commits between the bases that changed the patch's lines."""
    old_base, onto = journal.old_bases[repo.label], journal.ontos[repo.label]
    touching = touching_commits(repo, patch.diff, old_base, onto)
    lines = [error.report]
    if touching:
        lines.append(f"upstream commits between the old base {old_base[:12]} and the new base {onto[:12]} "
                     "that changed these lines:")
        lines += [f"  {line}" for line in touching]
    else:
        lines.append(f"no upstream commit between {old_base[:12]} and {onto[:12]} changed these lines "
                     "(an earlier patch of the set may have)")
    return Conflict(str(error), "\n".join(lines))


def touching_commits(repo: Repo, diff: str, old_base: str, onto: str) -> list[str]:
    """'sha subject' of each commit in old..onto that changed or removed a line the diff's hunks cover.

    `git blame --reverse` gives, per line of the old file, the last commit
    that still had it; the first commit after that one to touch the file is
    the one that changed it (or moved the file away). Hunk positions count
    from the old base, so lines moved by an earlier patch of the set are off
    by that patch's size: close enough to name the commit.
    """
    found: list[str] = []
    for patched in unidiff.PatchSet(diff):
        if patched.is_added_file:
            continue
        path = patched.source_file[2:] if patched.source_file.startswith("a/") else patched.path
        ranges = [f"-L{max(h.source_start, 1)},+{max(h.source_length, 1)}" for h in patched]
        res = repo.try_run("blame", "--reverse", f"{old_base}..{onto}", "--porcelain", *ranges, "--", path,
                           readonly=True)
        if res.status != 0:
            continue
        last_seen = []
        for line in res.out.splitlines():
            m = re.match(r"^([0-9a-f]{40}) \d+ \d+", line)
            if m and m.group(1) not in last_seen:
                last_seen.append(m.group(1))
        for sha in last_seen:
            if sha == onto:
                continue
            after = repo.run("rev-list", "--reverse", "--ancestry-path", f"{sha}..{onto}", "--", path,
                             readonly=True).split()
            if after and after[0] not in found:
                found.append(after[0])
    return [repo.run("log", "-1", "--format=%h %s", sha, readonly=True).strip() for sha in found]


# --- the new set ------------------------------------------------------------

def _finish(ws: Workspace, journal: state.RebaseJournal, old: PatchSet) -> PatchSet:
    """Write the new set, then make the replayed branches its patch branches and complete the apply.

    The replayed commits are the ones the files were exported from, so only
    their trailers change (to the new set and file names): new commits with the
    same trees, no checkout and no second git am. The apply that completes it
    (Enzyme, gitlinks) runs inside the rebase journal (`final`), so until it
    ends, rebase --continue finishes it and rebase --abort undoes everything.
    """
    if not journal.written:
        _write_new_set(ws, journal, old)
        fault("rebase:set-written")
        journal.written = True
        state.save_op(ws.git_dir, journal)
    say(f"wrote set {journal.set} next to {old.name}; report: {old.root / journal.set / REPORT_NAME}")
    fresh = Workspace(ws.root, load_manifest(ws.manifest.path.parent))
    new_set = fresh.manifest.get(journal.set)
    if journal.final is None:
        branch = patch_branch(journal.set)
        for origin in journal.repos:
            repo = ws.repo(origin.path)
            if repo.branch() == "refs/heads/" + journal.patch_branch:
                head = _retag(repo, journal.ontos[origin.path], journal.set, journal.names)
                repo.run("update-ref", "-m", f"patchmgr: patch branch of {journal.set}", f"refs/heads/{branch}", head)
                fault(f"rebase:retagged:{origin.path}")
                repo.run("symbolic-ref", "-m", f"patchmgr: switch to {branch}", "HEAD", f"refs/heads/{branch}")
            if repo.ref_exists("refs/heads/" + journal.patch_branch):
                repo.run("branch", "-q", "-D", journal.patch_branch)
        origins = [state.RepoOrigin(o.path, None, journal.ontos[o.path], branch_created=True) for o in journal.repos]
        journal.final = state.ApplyJournal(set=journal.set, patch_branch=branch, repos=origins,
                                           applied_origins=list(origins), bases=dict(journal.ontos))
        state.save_op(ws.git_dir, journal)
        fault("rebase:final")
    patches = load_patches(new_set)
    engine.run_steps(fresh, journal.final, lambda: state.save_op(ws.git_dir, journal), new_set, patches)
    engine.complete(fresh, journal.final, patches)
    return new_set


def _retag(repo: Repo, onto: str, set_name: str, names: dict[str, str]) -> str:
    """onto..HEAD again with the trailers naming the new set and its files; returns the new head."""
    def retagged(message: str) -> str:
        label = parse_trailers(message).get(TRAILER_PATCH)
        message = re.sub(rf"(?m)^{TRAILER_SET}: .*$", f"{TRAILER_SET}: {set_name}", message)
        if label is not None:  # every replayed commit carries one (engine.am adds it); a commit without keeps its message
            message = re.sub(rf"(?m)^{TRAILER_PATCH}: .*$", f"{TRAILER_PATCH}: {names.get(label, label)}", message)
        return message

    head = onto
    for sha, _ in repo.commits(f"{onto}..HEAD"):
        head = repo.recommit(sha, head, message=retagged)
    return head


def _write_new_set(ws: Workspace, journal: state.RebaseJournal, old: PatchSet) -> None:
    import tomlkit

    new, dirs = journal.new, journal.dirs
    candidates = {journal.set} | {Path(d).parts[0] for d in dirs.values()} | set(dirs.values())
    created = [d for d in candidates if not (old.root / d).exists()]
    journal.created = sorted(created)
    state.save_op(ws.git_dir, journal)
    lists: dict[str, list[str]] = {}
    names: dict[str, str] = {}  # old label -> new file; a commit without a patch trailer has no old label to map
    for series in old.repos:
        repo = ws.repo(series.path)
        onto = journal.ontos[series.path]
        commits = repo.commits(f"{onto}..HEAD")
        written, _ = write_patches(repo, [sha for sha, _ in commits], old.root / dirs[series.path], [])
        lists[series.path] = written
        for (_, message), name in zip(commits, written):
            label = parse_trailers(message).get(TRAILER_PATCH)
            if label is not None:
                names[label] = f"{dirs[series.path]}/{name}"

    new_set = dataclasses.replace(old, name=journal.set, rustc=new.rustc, commit=new.commit, llvm=new.llvm,
                                  repos=tuple(RepoSeries(r.path, dirs[r.path], tuple(lists[r.path])) for r in old.repos))
    doc = tomlkit.parse(ws.manifest.path.read_text(encoding="utf-8"))
    table = tomlkit.table()
    table.add(tomlkit.comment(f"Rebased from {old.name} by patchmgr rebase; see {journal.set}/{REPORT_NAME}."))
    for key, value in set_table(new_set).items():
        table[key] = value
    doc["sets"][journal.set] = table
    write_manifest(ws.manifest.path, tomlkit.dumps(doc))
    fault("rebase:manifest-written")

    journal.names = names
    report = render_report(journal, old, names)
    (old.root / journal.set).mkdir(parents=True, exist_ok=True)
    (old.root / journal.set / REPORT_NAME).write_text(report, encoding="utf-8")
    show(report, end="")


def render_report(journal: state.RebaseJournal, old: PatchSet, names: dict[str, str]) -> str:
    """Per patch what the rebase did with it, in series order. No times or hashes of ours: it is committed."""
    new = journal.new
    lines = [f"# Rebase of {old.name} onto rustc {new.rustc}", "",
             f"- from: rustc {old.rustc}, upstream {old.commit}, LLVM {old.llvm}",
             f"- onto: rustc {new.rustc}, upstream {new.commit}, LLVM {new.llvm} (`--onto {journal.onto_arg}`)",
             ""]
    if new.note:
        lines += [f"Note: {new.note}.", ""]
    lines += ["| patch | outcome | in the new set |", "|---|---|---|"]
    counts: dict[str, int] = {}
    for series in old.repos:
        for name in series.patches:
            label = old.patch_label(series, name)
            outcome, detail = journal.outcomes.get(label, ["not replayed", ""])
            counts[outcome] = counts.get(outcome, 0) + 1
            text = (outcome + (f": {detail}" if detail else "")).replace("|", "\\|")
            lines.append(f"| {label} | {text} | {names.get(label, '-')} |")
    lines += ["", "Totals: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items()), ""]
    return "\n".join(lines)


def _unwrite(ws: Workspace, journal: state.RebaseJournal) -> None:
    """Take back what writing the new set did, also when a kill stopped it half way:
    the manifest's old text, the files in the new set's directories (empty or absent
    when the rebase began), the report, and the directories it created."""
    if ws.manifest.path.read_text(encoding="utf-8") != journal.manifest:
        write_manifest(ws.manifest.path, journal.manifest)
    root = ws.manifest.path.parent
    for directory in journal.dirs.values():
        if (root / directory).is_dir():
            for leftover in (root / directory).iterdir():
                leftover.unlink()
    (root / journal.set / REPORT_NAME).unlink(missing_ok=True)
    for rel in sorted(journal.created, key=len, reverse=True):
        shutil.rmtree(root / rel, ignore_errors=True)


def command(ws: Workspace, args) -> None:
    """`patchmgr rebase --onto X | --continue | --skip | --abort`, then the new set's bootstrap config."""
    if args.mode == "--abort":
        abort(ws)
        return
    if args.note and args.mode not in ("--continue", "--skip"):
        raise UsageError("--note goes with rebase --continue or --skip")
    if args.mode:
        patch_set = resume(ws, args.mode, args.note)
    elif not args.onto:
        raise UsageError("rebase needs --onto REV|VERSION (or --continue, --skip, --abort)")
    else:
        patch_set = start(ws, args.onto, args.set_name, args.new_set, args.llvm)
    if not args.no_config:
        from xpy_ext.commands import write_for_set

        write_for_set(ws, args, patch_set)
