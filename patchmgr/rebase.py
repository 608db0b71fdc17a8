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
from dataclasses import dataclass
from pathlib import Path

import unidiff

from patchmgr import carry, engine, proposal, releases, state, store, upstreamed
from patchmgr.errors import BadInput, BuildFailed, Conflict, UsageError, WrongState
from patchmgr.export import write_patches
from patchmgr.faults import fault
from patchmgr.gitio import Repo, scratch_clones
from patchmgr.hunks import split_lines
from patchmgr.lint import check_against_base, load_patches
from patchmgr.output import say, show
from patchmgr.patchfile import TRAILER_PATCH, TRAILER_SET, Patch, parse_trailers
from patchmgr.series import (
    SET_NAME,
    SUPERPROJECT,
    VERSION,
    PatchSet,
    RepoSeries,
    load_manifest,
    read_exactly,
    set_table,
)
from patchmgr.store import line_endings_of
from patchmgr.treefacts import read_tree_facts
from patchmgr.workspace import View, Workspace, patch_branch

#: the words a report's outcome begins with (a stopped patch's begins with its finding)
CLEAN, MERGED, RELOCATED, DROPPED, SUPERSEDED, GONE, BY_HAND, SKIPPED = (
    "clean", "merged 3-way", "relocated", "dropped as upstream", "superseded by upstream", "gone", "resolved by hand",
    "skipped by hand")
#: a stopped patch whose resolution keeps every candidate its proposal wrote
FROM_PROPOSAL = "resolved by hand from the proposal"
NO_COMPILE = "does not compile"
DIR_GONE = "directory gone upstream"
OUTCOME_WORDS = (CLEAN, MERGED, RELOCATED, DROPPED, SUPERSEDED, upstreamed.PARTLY, DIR_GONE, GONE, BY_HAND, SKIPPED,
                 NO_COMPILE)
REPORT_NAME = "rebase-report.md"


def rebase_branch(set_name: str) -> str:
    return f"patchmgr/rebase/{set_name}"


@dataclass
class Plan:
    """Everything a rebase decides before it changes anything."""

    old: PatchSet
    patches: dict[str, list[Patch]]
    old_bases: dict[str, str]
    ontos: dict[str, str]
    new: state.NewBase
    name: str


def plan(ws: Workspace, view: View, onto: str, new_name: str | None, llvm: int | None) -> Plan:
    """The old set, the new bases in every repository, the new set's facts and name; checked."""
    old = view.patch_set
    patches = view.patches
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
    return Plan(old, patches, old_bases, ontos, new, name)


def start(ws: Workspace, onto: str, set_name: str | None, new_name: str | None, llvm: int | None,
          fuzz: int = 0, drop_superseded: bool = False, verify: bool = False) -> PatchSet:
    """Plan the rebase, check everything that can be checked before a change, then replay."""
    ws.require_no_op()
    view = ws.inspect(set_name)
    if not view.untouched:
        raise WrongState(f"set {view.patch_set.name} is applied; rebase replays the set's files, so first save any "
                         "change to the patches (patchmgr export), then patchmgr unapply, then rebase "
                         "(or see what it would do with rebase --dry-run)")
    ws.require_ready([v.repo for v in view.repos])
    for v in view.repos:
        engine.require_no_untracked(v.repo, view.patches[v.path])
    p = plan(ws, view, onto, new_name, llvm)
    old, patches, name = p.old, p.patches, p.name
    if name in ws.manifest.sets:
        raise WrongState(f"set {name} already exists in {ws.manifest.path}; pass --new-set NAME, or remove it first")
    dirs = {r.path: _new_dir(r.dir, old.name, name) for r in old.all_series()}
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
                                  old_bases=p.old_bases, ontos=p.ontos, new=p.new, dirs=dirs,
                                  applied_before=ws.applied_record(), fuzz=fuzz, drop_superseded=drop_superseded,
                                  verify=verify,
                                  paths={path: sorted({f for patch in patches[path] for f in patch.paths})
                                         for path in patches})
    _enzyme_unchanged(journal, old)
    state.save_op(ws.git_dir, journal)
    fault("rebase:journal")
    say(f"rebasing {old.name} (rustc {old.rustc}) onto {onto} (rustc {p.new.rustc}, {p.ontos[SUPERPROJECT][:12]}) "
        f"as {name}")
    _replay(ws, journal, old, patches)
    return _finish(ws, journal, old)


def dry_run(ws: Workspace, onto: str, set_name: str | None, new_name: str | None, llvm: int | None,
            fuzz: int = 0, drop_superseded: bool = False, report: str | None = None,
            with_proposals: bool = False) -> None:
    """The whole replay in scratch clones, never stopping; the user's repositories and patches stay as they are.

    A patch the real rebase would stop on is reported with why and left out,
    and the replay goes on (as --skip would). The report goes to `report`
    (default: rebase-dry-run-<new set>.md in the patches directory).
    """
    p = plan(ws, ws.inspect(set_name), onto, new_name, llvm)
    journal = state.RebaseJournal(set=p.name, patch_branch=rebase_branch(p.name), repos=[], from_set=p.old.name,
                                  onto_arg=onto, old_bases=p.old_bases, ontos=p.ontos, new=p.new, dirs={},
                                  fuzz=fuzz, drop_superseded=drop_superseded)
    _enzyme_unchanged(journal, p.old)
    say(f"dry run: {p.old.name} onto {onto} (rustc {p.new.rustc}), in scratch clones")
    with scratch_clones("rebase") as scratch:
        for series in p.old.apply_order():
            clone = scratch.clone(ws.repo(series.path))
            dry_carry(journal, clone, p.patches[series.path], p.old_bases[series.path], p.ontos[series.path],
                      with_proposals=with_proposals)
    text = render_report(journal, p.old, {}, dry_run=True)
    path = Path(report) if report else p.old.root / f"rebase-dry-run-{p.name}.md"
    path.write_text(text, encoding="utf-8")
    show(text, end="")
    say(f"dry run report: {path}")


def dry_carry(journal: state.RebaseJournal, repo: Repo, patches: list[Patch], old_base: str, tip: str,
              stops: str = "the rebase stops here", with_proposals: bool = False) -> None:
    """Carry `patches` from `old_base` onto `tip` in `repo` (a scratch one), never stopping: each
    outcome (a patch it would stop on with why, and left out) and relocation into the journal;
    `with_proposals`: also a proposal for each hunk of a patch it would stop on (minutes on a
    large series: the proposals read the new base's files and their history, hunk by hunk)."""
    replay = carry.Replay(repo, journal.fuzz)
    try:
        commits = replay.materialize(old_base, patches, [engine.tagged(patch, journal.set) for patch in patches])
        for patch, commit in zip(patches, commits):
            decision = decide(replay, journal, repo, patch, commit, tip, [])
            if decision.stop:
                journal.outcomes[patch.label] = [decision.outcome or "conflict", stops
                                                 + (f": {decision.detail}" if decision.detail else "")]
                if with_proposals and decision.unplaced:
                    journal.proposals[patch.label] = [f.record for f in proposals(replay, journal, repo, tip, decision)]
            else:
                if decision.tree is not None:
                    tip = repo.recommit(commit, tip, tree=decision.tree)
                journal.outcomes[patch.label] = [decision.outcome, decision.detail]
            if decision.relocations:
                journal.relocations[patch.label] = decision.relocations
            outcome, detail = journal.outcomes[patch.label]
            say(f"{patch.label}: {outcome}" + (f" ({detail})" if detail else ""))
    finally:
        replay.close()


def resume(ws: Workspace, how: str, note: str | None = None) -> PatchSet:
    """--continue or --skip: settle the stopped patch, then replay the rest; `note` says why, in the report.

    A patch stopped in git am (it did not apply) is finished or dropped with
    git am; one stopped on a finding (superseded) is left out (--skip) or
    carried as it is (--continue).
    """
    journal = ws.op_journal(state.RebaseJournal, how)
    ws.require_ready([ws.repo(o.path) for o in journal.repos], ours=True)
    old = ws.manifest.get(journal.from_set)
    if journal.final is not None:  # stopped while completing the apply of the new set
        return _finish(ws, journal, old)
    patches = load_patches(old)
    for origin in journal.repos:
        settle(ws, journal, ws.repo(origin.path), patches[origin.path], how, note)
    _replay(ws, journal, old, patches)
    return _finish(ws, journal, old)


def settle(ws: Workspace, journal: state.RebaseJournal, repo: Repo, patches: list[Patch], how: str,
           note: str | None) -> None:
    """--continue or --skip of the patch `repo` stopped on (of `patches`, its series), if it stopped
    on one: git am finishes or drops it, or its finding is decided; the outcome is recorded."""
    outcomes = journal.outcomes
    labels = {p.label for p in patches}
    if engine.am_in_progress(repo):
        label = engine.current_label(repo)
        finding = journal.findings.get(label, "")
        if how == "--skip":
            outcomes[label] = [_after(finding, SKIPPED), note or "skipped with --skip"]
            state.save_op(ws.git_dir, journal)
            repo.run("am", "--skip")
        else:
            _require_no_proposal_markers(repo, journal.proposals.get(label, []))
            res = repo.try_run("am", "--continue")
            if res.status != 0 and engine.am_in_progress(repo):
                stopped = next(p for p in patches if p.label == label)
                raise _with_history(engine.conflict(repo, res.out + res.err, "rebase"), repo, journal, stopped)
            outcomes[label] = [_after(finding, _how_resolved(repo, journal.proposals.get(label, []))), note or ""]
        say(f"{label}: {outcomes[label][0]}")
    elif journal.stopped in labels and journal.stopped not in outcomes:  # stopped on a finding
        label = journal.stopped
        if how == "--skip":
            outcomes[label] = [_after(journal.findings.get(label, ""), SKIPPED), note or "skipped with --skip"]
            say(f"{label}: {outcomes[label][0]}")
        else:
            journal.taken[label] = note or ""
    else:
        return
    journal.stopped = None
    state.save_op(ws.git_dir, journal)


def _require_no_proposal_markers(repo: Repo, records: list[state.Proposal]) -> None:
    """Refuse --continue while a staged file still holds a proposal's conflict block: git am
    would commit the markers into the new set."""
    for target in dict.fromkeys(r.target for r in records if r.target):
        staged = repo.read("", target) or ""
        at = next((n for n, line in enumerate(staged.splitlines(), 1) if line.startswith(proposal.MARK_PROPOSAL)), None)
        if at is not None:
            prefix = "" if repo.label == SUPERPROJECT else f"-C {repo.label} "
            raise Conflict(f"{target} as staged still has the proposal's conflict markers (line {at}); edit them out, "
                           f"git {prefix}add {target}, then patchmgr rebase --continue")


def _how_resolved(repo: Repo, records: list[state.Proposal]) -> str:
    """FROM_PROPOSAL when the committed resolution keeps the candidate of every proposal that
    had one (at least one), else BY_HAND."""
    with_candidate = [r for r in records if r.candidate is not None and r.target]
    if with_candidate and all(proposal.kept(repo.read("HEAD", r.target or ""), r) for r in with_candidate):
        return FROM_PROPOSAL
    return BY_HAND


def _after(finding: str, word: str) -> str:
    """A stopped patch's outcome: the finding it stopped with, then what the user did."""
    return f"{finding}, {word}" if finding else word


def abort(ws: Workspace) -> None:
    """Every repository back where op.json says it was; what writing the new set wrote is taken back
    too, and only that (store.Undo): the user's edits since, to the manifest or next to the new
    files, stay."""
    journal = ws.op_journal(state.RebaseJournal, "--abort")
    old = ws.manifest.sets.get(journal.from_set)
    final = journal.final
    enzyme = ws.enzyme_repo(old) if old and final is not None and final.enzyme_created else None
    if enzyme is not None:
        engine.require_nothing_untracked(enzyme)  # before anything moves
    undo = store.Undo(ws.manifest.path.parent, ws.manifest.path, journal.writes, f"the rebase to {journal.set}",
                       "patchmgr rebase --abort")
    new = ws.manifest.sets.get(journal.set) if journal.written else None
    engine.require_no_later_edits(ws, journal, "rebase", engine.patches_of(old, new))
    for origin in journal.repos:
        repo = ws.repo(origin.path)
        engine.restore(repo, origin, journal.patch_branch, journal.paths.get(origin.path, []))
        if journal.written and repo.ref_exists(f"refs/heads/{patch_branch(journal.set)}"):
            repo.run("branch", "-q", "-D", patch_branch(journal.set))
    if final is not None and final.enzyme_created and old is not None and old.enzyme:
        engine.remove_enzyme(ws, old, final)
    undo.run()
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
    # every submodule of the old base, not only the set's: the tag serves every set rebased onto it later
    sha = releases.commit_release(ws.root, onto, old_base, ws.superproject.gitlinks(old_base))
    ws.superproject.run("update-ref", "-m", f"patchmgr: rustc {onto} release tree", f"refs/tags/{onto}", sha, "")
    say(f"rustc {onto} is commit {sha[:12]} (tag {onto}), a child of {old_base[:12]}")
    return sha


def _new_set_facts(ws: Workspace, ontos: dict[str, str], old: PatchSet, llvm: int | None) -> state.NewBase:
    """rustc version, upstream commit and LLVM major of the new base, read from its tree as import
    reads a new set's (patchmgr/treefacts.py); an LLVM major the tree does not say is kept."""
    onto = ontos[SUPERPROJECT]
    facts = read_tree_facts(ws.superproject, onto, ws.root)
    if facts.rustc is None:
        raise BadInput(f"cannot tell the rustc version of {onto[:12]}: it has neither a version nor a src/version "
                       "file, and no release tag")
    note = ""
    if llvm is None:
        llvm = facts.llvm
    if llvm is None:
        llvm, note = old.llvm, (f"LLVM major kept from {old.name}: the new base's llvm-project names no version and "
                                ".gitmodules no rustc/<major> branch for it; pass --llvm")
    return state.NewBase(rustc=facts.rustc, commit=facts.commit, llvm=llvm, note=note)


def _new_dir(old_dir: str, old_name: str, new_name: str) -> str:
    return new_name + old_dir[len(old_name):] if old_dir.startswith(old_name + "/") else f"{new_name}/{old_dir}"


# --- replay ---------------------------------------------------------------

@dataclass
class Decision:
    """What the replay does with one patch: carry it (tree), leave it out (outcome), or stop."""

    outcome: str  # the report's words; for a stop, the finding
    detail: str = ""
    tree: str | None = None  # carry: the new tree on the tip
    stop: bool = False
    am: bool = False  # a stop the user resolves in git am's conflict state (else a decision to take)
    relocations: list[str] = dataclasses.field(default_factory=list)
    unplaced: list[carry.Unplaced] = dataclasses.field(default_factory=list)  # the hunks a proposal is made for


def decide(replay: carry.Replay, journal: state.RebaseJournal, repo: Repo, patch: Patch, commit: str, tip: str,
           resolved: list[tuple[str, str]]) -> Decision:
    """The fate of one patch on `tip`, from the object store alone (so --dry-run decides the same way)."""
    onto, old_base = journal.ontos[repo.label], journal.old_bases[repo.label]
    trailer = upstreamed.upstream_trailer(patch)
    if trailer and (where := upstreamed.trailer_in_base(repo, trailer, onto)):
        return Decision(DROPPED, f"Upstream: {trailer}; {where}")
    carried = replay.carry(tip, commit, patch)
    if carried.word == carry.EMPTY:
        diffs = replay.file_diffs(patch)
        if (label := upstreamed.absorbed_by(repo, diffs, resolved)) is not None:
            return Decision(DROPPED, f"absorbed by the resolution of patch {label}")
        twin = upstreamed.upstream_twin(repo, patch, old_base, onto)
        return Decision(DROPPED, f"same change as upstream {twin}" if twin else "every hunk is already upstream")
    pieces = upstreamed.Pieces()
    if repo.label == SUPERPROJECT and patch.label not in journal.taken:
        tip_view = replay.view(replay.tree_of(tip))
        pieces = upstreamed.upstream_pieces(patch, lambda path: repo.read(commit, path), tip_view)
        if pieces.superseded:
            finding = f"{SUPERSEDED} ({'; '.join(pieces.found)})"
            if journal.drop_superseded:
                return Decision(finding, "dropped with --drop-superseded")
            return Decision(finding, stop=True)
    if carried.word == carry.FAILED:  # a conflict stop; what upstream has of the patch is its finding
        finding = f"{GONE} ({'; '.join(carried.failures)})" if carried.gone else pieces.partly()
        detail = "" if carried.gone else "; ".join(carried.failures + carried.findings)
        return Decision(finding, detail, stop=True, am=True, relocations=carried.relocations,
                        unplaced=carried.unplaced)
    if carried.findings and patch.label not in journal.taken:
        # git am would create the file in the old directory without a word: a decision, not a conflict
        return Decision(f"{DIR_GONE} ({'; '.join(carried.findings)})", stop=True, relocations=carried.relocations)
    word = {carry.CLEAN: CLEAN, carry.MERGED: MERGED, carry.RELOCATED: RELOCATED}[carried.word]
    moved = len(carried.relocations)
    detail = f"{moved} {'hunk' if moved == 1 else 'hunks'} placed elsewhere, see below" if moved else ""
    if patch.label in journal.taken:  # the user kept it after a finding
        word, detail = _after(journal.findings.get(patch.label, ""), BY_HAND), journal.taken[patch.label]
    if trailer:
        detail = "; ".join(filter(None, [detail, f"Upstream: {trailer} is not in the new base"]))
    return Decision(word, detail, carried.tree, relocations=carried.relocations)


def _replay(ws: Workspace, journal: state.RebaseJournal, old: PatchSet, patches: dict[str, list[Patch]]) -> None:
    """Carry each repository's pending patches onto its tip, then move the branch there once.

    The work tree moves only when a repository's carry ends (finished or
    stopped), and the outcomes are saved after it moved: a kill in between
    leaves commits on the branch without outcomes, which the next run reads
    back from their trailers.
    """
    for series in old.apply_order():
        while _carry_repo(ws, journal, series.path, patches[series.path]):
            pass  # git am took the patch the carry stopped on: carry the rest
    state.save_op(ws.git_dir, journal)


def _carry_repo(ws: Workspace, journal: state.RebaseJournal, path: str, patches: list[Patch],
                repo: Repo | None = None) -> bool:
    """One pass over a repository's pending patches (in `repo`, default the checkout's at `path`:
    a pin move carries in a scratch repository); True when it must run again."""
    outcomes = journal.outcomes
    repo = repo or ws.repo(path)
    on_branch = repo.branch() == "refs/heads/" + journal.patch_branch
    if on_branch:
        for label in engine.applied_labels(repo, journal.ontos[path], journal.set):
            if label not in outcomes:  # git am --continue run by hand, or a kill after the carry
                stopped = journal.stopped == label
                outcomes[label] = [BY_HAND if stopped else CLEAN, "" if stopped else "outcome not recorded (interrupted)"]
    pending = [p for p in patches if p.label not in outcomes]
    if not pending:
        return False
    replay = carry.Replay(repo, journal.fuzz)
    try:
        commits = _materialized(ws, journal, replay, path, patches)
        replay.expect(pending)
        tip = repo.head() if on_branch else journal.ontos[path]
        decided: dict[str, list[str]] = {}
        stop: tuple[Patch, Decision] | None = None
        resolved = _resolved(repo, journal)  # only a stop (which ends this pass) adds to it
        for patch in pending:
            decision = decide(replay, journal, repo, patch, commits[patch.label], tip, resolved)
            if decision.stop:
                stop = (patch, decision)
                break
            if decision.tree is not None:
                tip = repo.recommit(commits[patch.label], tip, tree=decision.tree)
            decided[patch.label] = [decision.outcome, decision.detail]
            if decision.relocations:
                journal.relocations[patch.label] = decision.relocations
            say(f"{patch.label}: {decision.outcome}" + (f" ({decision.detail})" if decision.detail else ""))
        _move(ws, repo, journal, tip, on_branch)
        fault(f"rebase:carried:{path}")
        outcomes.update(decided)
        journal.stopped = stop[0].label if stop else None
        state.save_op(ws.git_dir, journal)
        if stop:
            _stop(ws, repo, journal, *stop, proposals(replay, journal, repo, tip, stop[1]))
            return True
        return False
    finally:
        replay.close()


def _materialized(ws: Workspace, journal: state.RebaseJournal, replay: carry.Replay, path: str,
                  patches: list[Patch]) -> dict[str, str]:
    """label -> the patch as a commit on the old base, made once per rebase (kept in the journal)."""
    known = journal.materialized.get(path, [])
    if len(known) != len(patches) or any(replay.repo.rev(sha + "^{commit}") is None for sha in known[-1:]):
        mails = [engine.tagged(p, journal.set) for p in patches]
        known = replay.materialize(journal.old_bases[path], patches, mails)
        journal.materialized[path] = known
        state.save_op(ws.git_dir, journal)
    return {p.label: sha for p, sha in zip(patches, known)}


def _resolved(repo: Repo, journal: state.RebaseJournal) -> list[tuple[str, str]]:
    """(label, commit) of each patch of this repository resolved by hand so far."""
    by_hand = {label for label, (outcome, _) in journal.outcomes.items() if BY_HAND in outcome}
    if not by_hand or repo.branch() != "refs/heads/" + journal.patch_branch:
        return []
    found = []
    for sha, message in repo.commits(f"{journal.ontos[repo.label]}..HEAD"):
        label = parse_trailers(message).get(TRAILER_PATCH)
        if label in by_hand:
            found.append((label, sha))
    return found


def _move(ws: Workspace, repo: Repo, journal: state.RebaseJournal, tip: str, on_branch: bool) -> None:
    """The rebase branch and the work tree to `tip`: one checkout from where they are."""
    if not on_branch:
        engine.checkout_branch(repo, journal, lambda: state.save_op(ws.git_dir, journal), journal.patch_branch, tip)
    elif repo.head() != tip:
        repo.run("-c", "submodule.recurse=false", "reset", "-q", "--keep", tip)


def proposals(replay: carry.Replay, journal: state.RebaseJournal, repo: Repo, tip: str,
              decision: Decision) -> list[proposal.Found]:
    """A proposal for each hunk the stop is about, on the tip's tree, with the upstream commits
    that rewrote its lines (the dry run shows them too; the rebase writes them into the stop)."""
    if not decision.am or not decision.unplaced:
        return []
    found = proposal.propose_all(replay, replay.tree_of(tip), decision.unplaced)
    proposal.with_commits(repo, found, journal.old_bases[repo.label], journal.ontos[repo.label])
    return found


def _stop(ws: Workspace, repo: Repo, journal: state.RebaseJournal, patch: Patch, decision: Decision,
          found: list[proposal.Found]) -> None:
    """Stop on `patch`: in git am's conflict state when it does not apply (each hunk's proposal
    written into the work tree), or for a decision on a finding."""
    journal.findings[patch.label] = decision.outcome
    state.save_op(ws.git_dir, journal)
    if not decision.am:
        raise Conflict(f"patch {patch.label} is {decision.outcome}; 'patchmgr rebase --skip' leaves it out, "
                       "'patchmgr rebase --continue' keeps it, --abort restores every repository")
    res = engine.am(repo, journal.set, [patch], "rebase", check=False)
    fault(f"rebase:am:{repo.label}")
    if res.status == 0:  # git am's own 3-way merge took it (a rename git found and the carry did not)
        journal.outcomes[patch.label] = [MERGED, "by git am --3way"]
        journal.stopped = None
        state.save_op(ws.git_dir, journal)
        say(f"{patch.label}: {MERGED} (by git am --3way)")
        return
    error = _with_history(engine.conflict(repo, res.out + res.err, "rebase"), repo, journal, patch)
    finding = [f"finding: {decision.outcome}"] if decision.outcome else []
    _write_proposals(repo, patch.label, found)
    journal.proposals[patch.label] = [f.record for f in found]
    state.save_op(ws.git_dir, journal)
    raise Conflict(str(error), "\n".join([error.report, *finding, *(f"  {line}" for line in decision.relocations),
                                          *proposal_lines(journal.proposals[patch.label])]))


def proposal_lines(records: list[state.Proposal]) -> list[str]:
    """The proposals of a stop, for its message and for status."""
    if not records:
        return []
    return ["proposals (a suggestion each, never counted as carried: edit the markers, git add, then "
            "patchmgr rebase --continue):", *(f"  {proposal.describe(r)}" for r in records)]


def _write_proposals(repo: Repo, label: str, found: list[proposal.Found]) -> None:
    """Each proposal's block at its place in the stop's work tree (git's own conflict there
    replaced); a place the work tree no longer has as upstream's lines is said, not written."""
    by_target: dict[str, list[proposal.Found]] = {}
    for f in found:
        if f.record.target is not None:
            by_target.setdefault(f.record.target, []).append(f)
    for target, items in by_target.items():
        path = repo.path / target
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except FileNotFoundError:
            text = repo.read("HEAD", target) or ""
        lines = split_lines(text)
        for f in sorted(items, key=lambda f: -f.record.start):  # bottom up: the places above stay where they are
            lines, f.record.written = proposal.write_into(lines, f, label)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(lines), encoding="utf-8", errors="surrogateescape")
        fault(f"rebase:proposal:{target}")


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
        ranges = [(h.source_start, h.source_length) for h in patched]
        found += [sha for sha in proposal.rewriting_commits(repo, path, ranges, old_base, onto) if sha not in found]
    return proposal.subjects(repo, found)


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


def _enzyme_unchanged(journal: state.RebaseJournal, old: PatchSet) -> None:
    """Enzyme's own patches go on its pin, which a new upstream base does not move: they are
    carried as they are (rebase onto another pin is a manifest edit and an apply)."""
    if old.enzyme_series:
        for name in old.enzyme_series.patches:
            journal.outcomes[old.patch_label(old.enzyme_series, name)] = [
                CLEAN, "Enzyme's own patch: its pin is unchanged, so the file is carried as it is"]


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
    """The new set's patch files, its manifest entry and its report, each written through a
    Store that records it in the journal first (so --abort takes back exactly these)."""
    import tomlkit

    new, dirs = journal.new, journal.dirs
    out = store.Store(old.root, journal.writes, lambda: state.save_op(ws.git_dir, journal))
    lists: dict[str, list[str]] = {}
    names: dict[str, str] = {}  # old label -> new file; a commit without a patch trailer has no old label to map
    for series in old.repos:
        repo = ws.repo(series.path)
        onto = journal.ontos[series.path]
        commits = repo.commits(f"{onto}..HEAD")
        written, _ = write_patches(repo, [sha for sha, _ in commits], old.root / dirs[series.path], [], out.write)
        lists[series.path] = written
        for (_, message), name in zip(commits, written):
            label = parse_trailers(message).get(TRAILER_PATCH)
            if label is not None:
                names[label] = f"{dirs[series.path]}/{name}"

    enzyme_series = old.enzyme_series
    if enzyme_series:  # see _enzyme_unchanged
        for name in enzyme_series.patches:
            out.write(old.root / dirs[enzyme_series.path] / name, read_exactly(old.patch_file(enzyme_series, name)))
            names[old.patch_label(enzyme_series, name)] = f"{dirs[enzyme_series.path]}/{name}"
        enzyme_series = RepoSeries(enzyme_series.path, dirs[enzyme_series.path], enzyme_series.patches)
    new_set = dataclasses.replace(old, name=journal.set, rustc=new.rustc, commit=new.commit, llvm=new.llvm,
                                  repos=tuple(RepoSeries(r.path, dirs[r.path], tuple(lists[r.path])) for r in old.repos),
                                  enzyme_series=enzyme_series, from_set=old.name)
    current = read_exactly(ws.manifest.path)  # its CRs too: the store compares bytes
    doc = tomlkit.parse(current)
    table = tomlkit.table()
    table.add(tomlkit.comment(f"Rebased from {old.name} by patchmgr rebase; see {journal.set}/{REPORT_NAME}."))
    for key, value in set_table(new_set).items():
        table[key] = value
    doc["sets"][journal.set] = table
    out.add_set(ws.manifest.path, journal.set, line_endings_of(current, tomlkit.dumps(doc)))
    fault("rebase:manifest-written")

    journal.names = names
    report = render_report(journal, old, names)
    out.write(old.root / journal.set / REPORT_NAME, report)
    show(report, end="")


def render_report(journal: state.RebaseJournal, old: PatchSet, names: dict[str, str], dry_run: bool = False) -> str:
    """Per patch what the rebase did with it, in series order, then every relocated hunk for review.
    No times or hashes of ours: it is committed."""
    new = journal.new
    title = "Dry run of a rebase" if dry_run else "Rebase"
    lines = [f"# {title} of {old.name} onto rustc {new.rustc}", "",
             f"- from: rustc {old.rustc}, upstream {old.commit}, LLVM {old.llvm}",
             f"- onto: rustc {new.rustc}, upstream {new.commit}, LLVM {new.llvm} (`--onto {journal.onto_arg}`)",
             ""]
    if new.note:
        lines += [f"Note: {new.note}.", ""]
    lines += ["| patch | outcome | in the new set |", "|---|---|---|"]
    counts: dict[str, int] = {}
    for series in old.all_series():
        for name in series.patches:
            label = old.patch_label(series, name)
            outcome, detail = journal.outcomes.get(label, ["not replayed", ""])
            word = next((w for w in OUTCOME_WORDS if outcome.startswith(w)), outcome)
            counts[word] = counts.get(word, 0) + 1
            text = (outcome + (f": {detail}" if detail else "")).replace("|", "\\|")
            lines.append(f"| {label} | {text} | {names.get(label, '-')} |")
    lines += ["", "Totals: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items()), ""]
    if journal.proposals:
        lines += ["## Proposals for the hunks that stopped", "",
                  "Where each hunk most likely belongs now, and whether a merge made a candidate there: "
                  "a suggestion, never counted as carried.", ""]
        for label, proposed in journal.proposals.items():
            lines.append(f"- {label}")
            lines += [f"  - {proposal.describe(record)}" for record in proposed]
        lines.append("")
    if journal.relocations:
        lines += ["## Relocated hunks", "", "Each hunk placed away from where its patch said: check every one.", ""]
        for label, records in journal.relocations.items():
            lines.append(f"- {label}")
            lines += [f"  - {record}" for record in records]
        lines.append("")
    return "\n".join(lines)


def command(ws: Workspace, args) -> None:
    """`patchmgr rebase --onto X | --continue | --skip | --abort`, then the new set's bootstrap config
    and, with --verify, its compile check; --pin moves a pin instead (patchmgr/pinmove.py)."""
    from patchmgr import pinmove

    if pinmove.wanted(ws, args):
        pinmove.command(ws, args)
        return
    if args.mode == "--abort":
        abort(ws)
        return
    if args.note and args.mode not in ("--continue", "--skip"):
        raise UsageError("--note goes with rebase --continue or --skip")
    if args.mode and (args.dry_run or args.fuzz or args.drop_superseded):
        raise UsageError("--dry-run, --fuzz and --drop-superseded go with rebase --onto")
    if args.fuzz < 0:
        raise UsageError(f"--fuzz {args.fuzz}: the number of context lines must be 0 or more")
    if args.dry_run and args.verify:
        raise UsageError("--verify compiles the rebased tree, which a dry run does not make; drop one of them")
    verify = args.verify
    if args.mode:
        verify = verify or ws.op_journal(state.RebaseJournal, args.mode).verify
        patch_set = resume(ws, args.mode, args.note)
    elif not args.onto:
        raise UsageError("rebase needs --onto REV|VERSION (or --continue, --skip, --abort)")
    elif args.dry_run:
        dry_run(ws, args.onto, args.set_name, args.new_set, args.llvm, args.fuzz, args.drop_superseded, args.report,
                args.proposals)
        return
    else:
        patch_set = start(ws, args.onto, args.set_name, args.new_set, args.llvm, args.fuzz, args.drop_superseded,
                          args.verify)
    if not args.no_config:
        from xpy_ext.commands import write_for_set

        write_for_set(ws, args, patch_set)
    if verify:
        _verify(ws, patch_set)


def _verify(ws: Workspace, patch_set: PatchSet) -> None:
    """Compile-check the applied new set; a failure becomes the blamed patch's outcome in the report."""
    from patchmgr import verify

    patches = load_patches(patch_set)[SUPERPROJECT]
    verdicts = verify.verify(ws, patch_set, patches)
    report_path = patch_set.root / patch_set.name / REPORT_NAME
    if report_path.is_file() and verdicts:
        text = report_path.read_text(encoding="utf-8")
        for v in verdicts:
            if not v.ok and v.blamed:
                name = v.blamed.split("/", 1)[1] if "/" in v.blamed else v.blamed
                text = _mark_row(text, f"{patch_set.name}/{name}", f"{NO_COMPILE} ({v.configuration}: {v.error})")
        report_path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(verify.render(verdicts)), encoding="utf-8")
    failed = [v for v in verdicts if not v.ok]
    if failed:
        v = failed[0]
        raise BuildFailed(f"the rebased set does not compile ({v.configuration}): {v.error}"
                          + (f", pinned on {v.blamed}" if v.blamed else "") + f"; see {report_path}")
    if verdicts:
        say(f"verify: x.py check passed ({', '.join(v.configuration for v in verdicts)})")


def _mark_row(report: str, new_label: str, outcome: str) -> str:
    """The report row whose new-set column is `new_label`, with `outcome` in front of its outcome."""
    lines = report.split("\n")
    for i, line in enumerate(lines):
        cells = line.split(" | ")
        if len(cells) == 3 and cells[2].rstrip(" |") == new_label:
            cells[1] = outcome.replace("|", "\\|") + "; carried as: " + cells[1]
            lines[i] = " | ".join(cells)
    return "\n".join(lines)
