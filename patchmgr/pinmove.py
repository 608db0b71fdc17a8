"""rebase --pin PATH=COMMIT: move a set's pinned repository (Enzyme) to another commit, in place.

A pin is a dependency lock of a set, and a set targets one rustc release: a
second set that differs only in its pin would double the maintenance, and the
patches directory's own history keeps the old pin. So the move rewrites the
same set: `enzyme.commit` (and `url`, `llvm`) in the manifest, the pinned
repository's patch files carried onto the new commit, and
`<set>/pin-report.md` with each patch's outcome.

The carry is the upstream rebase's (rebase.decide, carry.Replay: exact, 3-way,
relocation), run in a scratch repository under .git/patchmgr/pin-work that
holds the old pin and the new commit (fetched by id from the URL, reading the
clone apply keeps under .git/modules first). A patch that does not carry stops
there in git am's 3-way conflict state: the user edits the files in that work
tree, `git -C <it> add`s them, and runs `patchmgr rebase --continue` (or
--skip, --abort), as for a rebase. The journal is a rebase journal with `pin`
set, written before the first change; every file the move overwrites or
removes is recorded with its text first (store.Store), so --abort puts the
patches directory back byte for byte, whenever the run stopped. The set must
not be applied: the patch files are what moves, and an applied Enzyme holds
the old pin's commits.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from patchmgr import engine, rebase, state, store
from patchmgr.errors import BadInput, GitFailed, UsageError, WrongState
from patchmgr.export import formatted
from patchmgr.faults import fault
from patchmgr.gitio import Repo
from patchmgr.lint import load_patches
from patchmgr.output import say, show
from patchmgr.patchfile import TRAILER_PATCH, Patch, parse_trailers
from patchmgr.safety import url_problem
from patchmgr.scratch import scratch_dir
from patchmgr.series import PatchSet, RepoSeries, patch_list, read_exactly
from patchmgr.store import line_endings_of
from patchmgr.treefacts import pinned_llvm_majors
from patchmgr.workspace import Workspace, enzyme_rel_path

REPORT_NAME = "pin-report.md"
_FULL_HASH = re.compile(r"^[0-9a-f]{40}$")
_FETCH = ("-c", "protocol.file.allow=always", "fetch", "-q")


def wanted(ws: Workspace, args) -> bool:
    """Whether this `patchmgr rebase` is a pin move: --pin given, or the stopped rebase is one."""
    if args.pin is not None or args.pin_url is not None or args.pin_llvm is not None:
        return True
    if args.mode is None:
        return False
    journal = ws.op_record()
    return isinstance(journal, state.RebaseJournal) and journal.pin is not None


def command(ws: Workspace, args) -> None:
    """`patchmgr rebase --pin PATH=COMMIT [--pin-url URL] [--pin-llvm N,N] [--dry-run]`, and the
    --continue, --skip and --abort of a stopped pin move."""
    if args.mode and args.pin is not None:
        raise UsageError(f"--pin starts a pin move; rebase {args.mode} goes on with the one in progress (drop --pin)")
    if args.mode == "--abort":
        abort(ws)
        return
    if args.note and args.mode not in ("--continue", "--skip"):
        raise UsageError("--note goes with rebase --continue or --skip")
    if args.mode:
        resume(ws, args.mode, args.note)
        return
    if args.pin is None:
        raise UsageError("--pin-url and --pin-llvm go with --pin PATH=COMMIT")
    if args.onto:
        raise UsageError("--pin moves the set's pin in place and --onto writes a new set: run them one after the "
                         "other (rebase --pin, then rebase --onto, or the other way)")
    for given, option in ((args.new_set, "--new-set"), (args.llvm, "--llvm"), (args.verify, "--verify"),
                          (args.drop_superseded, "--drop-superseded")):
        if given:
            raise UsageError(f"{option} goes with rebase --onto, not --pin")
    if args.fuzz < 0:
        raise UsageError(f"--fuzz {args.fuzz}: the number of context lines must be 0 or more")
    path, what = parse_pin(args.pin)
    llvm = parse_llvm(args.pin_llvm)
    if args.dry_run:
        dry_run(ws, args.set_name, path, what, args.pin_url, llvm, args.fuzz, args.report)
    else:
        start(ws, args.set_name, path, what, args.pin_url, llvm, args.fuzz)


def parse_pin(value: str) -> tuple[str, str]:
    """PATH=COMMIT as (path, commit); a usage error when it is not that."""
    path, sep, what = value.partition("=")
    path = path.rstrip("/")
    if not sep or not path or not what or what.startswith("-") or any(c.isspace() for c in what):
        raise UsageError(f"--pin {value!r}: expected PATH=COMMIT, for example src/llvm-project/enzyme=v0.0.30 "
                         "(COMMIT: a commit id, full or abbreviated, or a tag of the pin's URL)")
    return path, what


def parse_llvm(value: str | None) -> tuple[int, ...] | None:
    """--pin-llvm 13,14 as (13, 14)."""
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if not all(p.isdigit() and 3 <= int(p) <= 99 for p in parts) or len(set(parts)) != len(parts):
        raise UsageError(f"--pin-llvm {value!r}: expected LLVM major versions separated by commas, such as 14 or 13,14")
    return tuple(sorted(int(p) for p in parts))


# --- before any change ---------------------------------------------------------

def pinned_series(patch_set: PatchSet, path: str) -> RepoSeries:
    """The patches of the set's pinned repository at `path`; bad input when the set pins none there."""
    pin = patch_set.enzyme
    if pin is None:
        raise BadInput(f"--pin {path}: set {patch_set.name} pins no repository (it has no enzyme table)")
    if path != pin.path:
        raise BadInput(f"--pin {path}: set {patch_set.name} pins no repository there; its pinned repository is "
                       f"{pin.path}")
    return patch_set.enzyme_series or RepoSeries(path, f"{patch_set.name}/enzyme", ())


def resolve(ws: Workspace, patch_set: PatchSet, what: str, url: str | None, llvm: tuple[int, ...] | None,
            work: Repo) -> state.PinMove:
    """The move's facts, with the old pin and the new commit fetched into `work`; refused when
    the URL is unsafe or unreachable, lacks the commit, or the commit is the pin already."""
    pin = patch_set.enzyme
    assert pin is not None
    new_url = url or pin.url
    problem = url_problem(new_url)
    if problem:
        raise BadInput(f"--pin-url {new_url!r}: the URL {problem}")
    _borrow_kept_clone(ws, patch_set, work)
    if _bring(work, pin.url, pin.commit) is None:
        raise BadInput(f"the set's pin {pin.commit} is not in {pin.url}; fix enzyme.commit in the manifest "
                       "(nothing was changed)")
    commit = _bring(work, new_url, what)
    if commit is None:
        _require_reachable(work, new_url)
        raise BadInput(f"{new_url} has no commit {what!r} (a commit id, full or abbreviated, or a tag); "
                       "nothing was changed")
    if commit == pin.commit:
        raise WrongState(f"{what} is commit {commit[:12]}, the pin set {patch_set.name} already has; nothing to move")
    _deepen(work, new_url, pin.commit, commit)
    source = "--pin-llvm"
    if llvm is None:
        llvm, source = pinned_llvm_majors(work, commit)
        source = f"read from {source}" if llvm else ""
    if not llvm:
        llvm, source = pin.llvm, ("kept from the old pin: the new commit's CI workflows name no LLVM majors; "
                                  "pass --pin-llvm")
    return state.PinMove(path=pin.path, arg=what, commit=commit, url=new_url, old_commit=pin.commit, old_url=pin.url,
                         llvm=list(llvm), old_llvm=list(pin.llvm), llvm_source=source, work=str(work.path))


def _borrow_kept_clone(ws: Workspace, patch_set: PatchSet, work: Repo) -> None:
    """Let `work` read the objects of the Enzyme clone apply keeps under .git/modules (the old
    pin is there, often the new commit too), so that neither is downloaded again; nothing is
    written there."""
    owner = patch_set.enzyme_owner()
    if owner is None or not (ws.root / owner / ".git").exists():
        return
    gitdir = engine.module_dir(ws.repo(owner), enzyme_rel_path(patch_set))
    if (gitdir / "objects").is_dir():
        (work.git_dir() / "objects" / "info" / "alternates").write_text(f"{gitdir / 'objects'}\n")
        if (gitdir / "shallow").is_file():  # apply's clone is shallow: a walk must stop at its cut
            shutil.copyfile(gitdir / "shallow", work.git_dir() / "shallow")


def _bring(work: Repo, url: str, what: str) -> str | None:
    """The commit `what` names at `url` (its full id), fetched into `work`; None when it has none.

    By id or tag alone at depth 1 first (the carry needs the two trees, not the
    history), else, for an abbreviated id or a server that serves no commit by
    its id, its branches and tags.
    """
    if _FULL_HASH.match(what) and work.rev(what) is not None:
        return what
    if work.try_run(*_FETCH, "--depth=1", "--", url, what).status == 0:
        found = work.rev("FETCH_HEAD")
        if found is not None and (not _FULL_HASH.match(what) or found == what):
            return found
    work.try_run(*_FETCH, "--update-head-ok", "--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    return work.rev(what)


def _deepen(work: Repo, url: str, old: str, new: str) -> None:
    """The new commit's history back to the old pin's date, where the server gives it (a stop's
    report names the upstream commits that changed the patch's lines, read from that history);
    without it the report only lacks those names."""
    if work.try_run("merge-base", "--is-ancestor", old, new, readonly=True).status == 0:
        return
    since = work.run("log", "-1", "--format=%ct", old, readonly=True).strip()
    work.try_run(*_FETCH, f"--shallow-since={since}", "--", url, new)


def _require_reachable(work: Repo, url: str) -> None:
    res = work.try_run("-c", "protocol.file.allow=always", "ls-remote", "-q", "--", url, "HEAD")
    if res.status != 0:
        detail = next((line for line in res.err.splitlines() if line.startswith("fatal:")), "no answer")
        raise GitFailed(f"{url} cannot be reached ({detail}); fix --pin-url or redirect it with "
                        f"git config url.<local clone>.insteadOf {url} (nothing was changed)")


def work_dir(ws: Workspace) -> Path:
    return ws.git_dir / state.DIR_NAME / state.PIN_WORK_DIR


def _make_work(directory: Path) -> Repo:
    """An empty repository at `directory` (one left by a move killed before its journal is not
    anyone's: no journal names it)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    work = Repo(directory, str(directory))
    work.run("init", "-q")
    return work


def _remove_work(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    try:
        directory.parent.rmdir()  # .git/patchmgr, when nothing else is in it
    except OSError:
        pass


# --- the move ------------------------------------------------------------------

def start(ws: Workspace, set_name: str | None, path: str, what: str, url: str | None,
          llvm: tuple[int, ...] | None, fuzz: int = 0) -> None:
    """Check everything that can be checked before a change, write the journal, carry, write."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    old = view.patch_set
    series = pinned_series(old, path)
    if not view.untouched or ws.enzyme_repo(old) is not None:
        raise WrongState(f"set {old.name} is applied; a pin move rewrites its patch files and pin, so first save any "
                         "change to the patches (patchmgr export), then patchmgr unapply, then move the pin "
                         "(or see what it would do with rebase --dry-run --pin)")
    patches = load_patches(old).get(path, [])
    directory = work_dir(ws)
    work = _make_work(directory)
    try:
        move = resolve(ws, old, what, url, llvm, work)
    except BaseException:
        _remove_work(directory)
        raise
    label = move.work
    journal = state.RebaseJournal(set=old.name, patch_branch=f"patchmgr/pin/{old.name}", repos=[], from_set=old.name,
                                  onto_arg=f"--pin {path}={what}", old_bases={label: move.old_commit},
                                  ontos={label: move.commit},
                                  new=state.NewBase(rustc=old.rustc, commit=old.commit, llvm=old.llvm),
                                  dirs={path: series.dir}, fuzz=fuzz, pin=move)
    state.save_op(ws.git_dir, journal)
    fault("pin:journal")
    _on_branch(work, journal)
    say(f"moving the pin of {old.name} at {path} from {move.old_commit[:12]} to {what} ({move.commit[:12]}); "
        f"carrying its {len(patches)} patches in {directory}")
    _replay(ws, journal, work, patches)
    _finish(ws, journal, work)


def resume(ws: Workspace, how: str, note: str | None) -> None:
    """--continue or --skip of a stopped pin move: settle the stopped patch, carry the rest, write."""
    journal = ws.op_journal(state.RebaseJournal, how)
    assert journal.pin is not None
    work = Repo(Path(journal.pin.work), journal.pin.work)
    if not journal.written:
        _on_branch(work, journal)
        ws.require_ready([work], ours=True)
        patches = load_patches(ws.manifest.get(journal.from_set)).get(journal.pin.path, [])
        rebase.settle(ws, journal, work, patches, how, note)
        _replay(ws, journal, work, patches)
    _finish(ws, journal, work)


def abort(ws: Workspace) -> None:
    """The patches directory back as it was before the move (what the move wrote, and only that:
    store.Undo), and the scratch repository gone."""
    journal = ws.op_journal(state.RebaseJournal, "--abort")
    assert journal.pin is not None
    undo = store.Undo(ws.manifest.path.parent, ws.manifest.path, journal.writes,
                      f"the pin move of {journal.set}", "patchmgr rebase --abort")
    _remove_work(Path(journal.pin.work))
    undo.run()
    state.remove(ws.git_dir, state.OP_FILE)
    say(f"aborted: the pin of {journal.set} stays at {journal.pin.old_commit[:12]}, its patch files and the manifest "
        "as they were")


def _on_branch(work: Repo, journal: state.RebaseJournal) -> None:
    """The scratch repository's work tree on the move's branch at the new commit, where the carry
    goes (once: a move killed right after its journal has not made it yet)."""
    assert journal.pin is not None
    if not work.ref_exists("refs/heads/" + journal.patch_branch):
        work.run("checkout", "-q", "-f", "-B", journal.patch_branch, journal.pin.commit, "--")


def _replay(ws: Workspace, journal: state.RebaseJournal, work: Repo, patches: list[Patch]) -> None:
    while rebase._carry_repo(ws, journal, str(work.path), patches, repo=work):
        pass  # git am took the patch the carry stopped on: carry the rest
    state.save_op(ws.git_dir, journal)


def _finish(ws: Workspace, journal: state.RebaseJournal, work: Repo) -> None:
    """Write the set's moved pin, patch files and report (once), then drop the scratch repository."""
    assert journal.pin is not None
    if not journal.written:
        _write(ws, journal, work)
        journal.written = True
        state.save_op(ws.git_dir, journal)
    _remove_work(Path(journal.pin.work))
    state.remove(ws.git_dir, state.OP_FILE)
    say(f"moved the pin of {journal.set} to {journal.pin.commit[:12]}; report: "
        f"{ws.manifest.path.parent / journal.set / REPORT_NAME}; patchmgr apply checks it out with the carried patches")


def _write(ws: Workspace, journal: state.RebaseJournal, work: Repo) -> None:
    """The carried patch files under their old names (a patch left out loses its file), the
    manifest entry's pin, LLVM majors and patch list changed in place, and the report; each
    recorded through a Store first, so --abort puts back exactly what was there."""
    import tomlkit

    move = journal.pin
    assert move is not None
    root = ws.manifest.path.parent
    directory = root / journal.dirs[move.path]
    out = store.Store(root, journal.writes, lambda: state.save_op(ws.git_dir, journal))
    commits = work.commits(f"{move.commit}..HEAD")
    names = []
    for (_, message), (produced, text) in zip(commits, formatted(work, [sha for sha, _ in commits])):
        label = parse_trailers(message).get(TRAILER_PATCH)
        name = label.rsplit("/", 1)[-1] if label else produced
        names.append(name)
        if not (directory / name).is_file() or read_exactly(directory / name) != text:
            out.write(directory / name, text)
    for label in journal.outcomes:
        name = label.rsplit("/", 1)[-1]
        if name not in names and (directory / name).is_file():
            out.remove(directory / name)
    fault("pin:patches-written")

    current = read_exactly(ws.manifest.path)
    doc = tomlkit.parse(current)
    entry = doc["sets"][journal.set]
    entry["enzyme"]["commit"] = move.commit
    if move.url != move.old_url:
        entry["enzyme"]["url"] = move.url
    if move.llvm != move.old_llvm:
        entry["enzyme"]["llvm"] = move.llvm
    listed = entry["repos"][move.path]["patches"] if move.path in entry["repos"] else None
    if listed is not None and list(listed) != names:
        entry["repos"][move.path]["patches"] = patch_list(names)
    out.change_set(ws.manifest.path, journal.set, line_endings_of(current, tomlkit.dumps(doc)))
    fault("pin:manifest-written")

    report = render_report(journal, names)
    out.write(root / journal.set / REPORT_NAME, report)
    show(report, end="")


def render_report(journal: state.RebaseJournal, names: list[str] | None, dry_run: bool = False) -> str:
    """Per patch of the pinned repository what the move did with it, then every relocated hunk.
    No times: it is committed."""
    move = journal.pin
    assert move is not None
    title = "Dry run of a pin move" if dry_run else "Pin move"
    lines = [f"# {title} of {journal.set}: {move.path} to {move.arg}", "",
             f"- from: {move.old_commit} ({move.old_url}), LLVM {_majors(move.old_llvm)}",
             f"- to: {move.commit} ({move.url}), LLVM {_majors(move.llvm)}"
             + (f" ({move.llvm_source})" if move.llvm_source else ""), "",
             "| patch | outcome | in the set |", "|---|---|---|"]
    for label, (outcome, detail) in journal.outcomes.items():
        name = label.rsplit("/", 1)[-1]
        kept = "-" if names is None or name not in names else label
        lines.append(f"| {label} | {(outcome + (f': {detail}' if detail else '')).replace('|', chr(92) + '|')} "
                     f"| {kept} |")
    if not journal.outcomes:
        lines.append("| (the set has no patches for this repository) | - | - |")
    lines.append("")
    if journal.relocations:
        lines += ["## Relocated hunks", "", "Each hunk placed away from where its patch said: check every one.", ""]
        for label, records in journal.relocations.items():
            lines += [f"- {label}", *(f"  - {record}" for record in records)]
        lines.append("")
    return "\n".join(lines)


def _majors(majors: list[int]) -> str:
    return ", ".join(str(m) for m in majors) if majors else "not stated"


# --- dry run -------------------------------------------------------------------

def dry_run(ws: Workspace, set_name: str | None, path: str, what: str, url: str | None,
            llvm: tuple[int, ...] | None, fuzz: int, report: str | None) -> None:
    """The whole carry in a scratch repository, never stopping (a patch the move would stop on is
    reported and left out, as --skip would); the checkout, the patches and the manifest stay as
    they are, and the set may be applied. The report goes to `report` (default:
    pin-dry-run-<set>.md in the patches directory)."""
    old = ws.inspect(set_name).patch_set
    pinned_series(old, path)
    patches = load_patches(old).get(path, [])
    with scratch_dir("pin") as tmp:
        work = _make_work(tmp / "work")
        move = resolve(ws, old, what, url, llvm, work)
        label = str(work.path)
        journal = state.RebaseJournal(set=old.name, patch_branch="", repos=[], from_set=old.name,
                                      onto_arg=f"--pin {path}={what}", old_bases={label: move.old_commit},
                                      ontos={label: move.commit},
                                      new=state.NewBase(rustc=old.rustc, commit=old.commit, llvm=old.llvm),
                                      dirs={}, fuzz=fuzz, pin=move)
        say(f"dry run: the pin of {old.name} at {path} to {what} ({move.commit[:12]}), in a scratch repository")
        rebase.dry_carry(journal, work, patches, move.old_commit, move.commit, "the move stops here")
    text = render_report(journal, None, dry_run=True)
    target = Path(report) if report else old.root / f"pin-dry-run-{old.name}.md"
    target.write_text(text, encoding="utf-8")
    show(text, end="")
    say(f"dry run report: {target}")

