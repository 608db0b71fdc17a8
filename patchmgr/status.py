"""status: where the tree stands against its patch set, as text or JSON."""

from __future__ import annotations

import dataclasses
import json

from patchmgr import state
from patchmgr.output import show
from patchmgr.series import SUPERPROJECT
from patchmgr.workspace import MODES, RepoView, View, Workspace, gitlinks_in


def command(ws: Workspace, args) -> None:
    """`patchmgr status [--json]`: a stopped rebase, or the set against the tree."""
    op = ws.op_record()
    if isinstance(op, state.RebaseJournal):
        shown = {"set": op.set, "from": op.from_set, "onto_arg": op.onto_arg, "ontos": op.ontos,
                 "outcomes": op.outcomes, "stopped": op.stopped,
                 "pin": dataclasses.asdict(op.pin) if op.pin else None,
                 "proposals": [dataclasses.asdict(r) for r in op.proposals.get(op.stopped or "", [])]}
        show(json.dumps({"rebase": shown}, indent=2) if args.json else describe_rebase(op))
        return
    view = ws.inspect(args.set_name or (op.set if op else None))
    if op and not args.set_name and view.detected.how == "--set":
        # the set came from the stopped operation's journal, not from the command line
        view.detected = dataclasses.replace(view.detected, how=f"the {op.kind} in progress")
    data = to_dict(view, f"{op.kind} of {op.set}" if op else None)
    data["patches"] = {"dir": str(ws.manifest.path.parent), "from": getattr(args, "patches_from", "--patches")}
    show(json.dumps(data, indent=2) if args.json else render(data))


def describe_rebase(journal: state.RebaseJournal) -> str:
    """What status shows while a rebase is stopped."""
    pin = journal.pin
    if pin is not None:
        lines = [f"pin move of set {journal.set} is in progress: {pin.path} from {pin.old_commit[:12]} to {pin.arg} "
                 f"({pin.commit[:12]}), its patches carried in {pin.work}"]
    else:
        lines = [f"rebase of {journal.from_set} onto {journal.onto_arg} "
                 f"({journal.ontos[SUPERPROJECT][:12]}) as {journal.set} is in progress"]
    lines += [f"  {label}: {outcome}" + (f" ({detail})" if detail else "")
              for label, (outcome, detail) in journal.outcomes.items()]
    if journal.stopped:
        from patchmgr.rebase import SUPERSEDED, proposal_lines

        finding = journal.findings.get(journal.stopped, "")
        if finding.startswith(SUPERSEDED):
            lines.append(f"  stopped at {journal.stopped}, {finding}: patchmgr rebase --skip leaves it out, "
                         "--continue keeps it (or --abort)")
        else:
            where = f" in {pin.work}" if pin is not None else ""
            lines.append(f"  stopped at {journal.stopped}" + (f", {finding}" if finding else "")
                         + f": resolve{where}, git add, then patchmgr rebase --continue (or --skip, --abort)")
            lines += [f"  {line}" for line in proposal_lines(journal.proposals.get(journal.stopped, []))]
    elif journal.final is not None:
        lines.append("  the new set is written; completing its apply stopped: patchmgr rebase --continue "
                     "(or --abort)")
    return "\n".join(lines)


def to_dict(view: View, op_in_progress: str | None) -> dict:
    ps = view.patch_set
    repos: list[dict[str, object]] = []
    out: dict[str, object] = {
        "set": ps.name,
        "rustc": ps.rustc,
        "upstream_commit": ps.commit,
        "llvm": ps.llvm,
        "detected_by": view.detected.how,
        "state": "applied" if view.fully_applied else "unapplied" if view.untouched else "partial",
        "operation_in_progress": op_in_progress,
        "repos": repos,
        "enzyme": None,
        "stale_gitlinks": view.stale_gitlinks,
        "own_gitlinks": view.own_gitlinks,  # a new commit there is the set's: apply records it
    }
    repos += [_repo_dict(v, own=view.own_gitlinks) for v in view.repos]
    if view.enzyme:
        e = view.enzyme
        enzyme: dict[str, object] = {"path": e.path, "url": e.url, "pinned": e.pinned, "recorded": e.recorded,
                                     "checked_out": e.checked_out, "in_place": e.in_place, "patches": None}
        if e.patched:
            labels = [ps.patch_label(ps.enzyme_series, n) for n in ps.enzyme_series.patches] if ps.enzyme_series else []
            # no dirty listing: a status inside Enzyme (600 files, racily clean after apply) costs more
            # than the rest of status, and the owner's status already says when Enzyme is modified
            enzyme["patches"] = _repo_dict(e.series, dirty=False) if e.series else {"pending": labels}
        out["enzyme"] = enzyme
    return out


def _repo_dict(v: RepoView, dirty: bool = True, own: list[str] | None = None) -> dict[str, object]:
    """One repository as status shows it; `own` (View.own_gitlinks) are submodules whose new commit
    is not the user's uncommitted change but the set's, which apply records."""
    return {
        "path": v.path,
        "branch": v.branch.removeprefix("refs/heads/") if v.branch else None,
        "head": v.state.head,
        "base": v.state.base,
        "applied": v.applied,
        "pending": v.pending,
        "drifted": v.drifted,
        "edited": v.edited,
        "dropped": v.dropped,
        "foreign_commits": list(v.state.foreign),
        "dirty": v.repo.dirty_files(gitlinks_in(v.path, own or [])) if dirty else [],
    }


def _patch_lines(r: dict) -> list[str]:
    """One line per patch, foreign commit and dirty file of a repository (as to_dict gives it)."""
    lines = []
    for label in r.get("applied", []):
        kind = "edited " if label in r["edited"] else "dropped" if label in r.get("dropped", []) \
            else "drifted" if label in r["drifted"] else "applied"
        lines.append(f"  {kind}  {label}")
    lines += [f"  pending  {label}" for label in r.get("pending", [])]
    lines += [f"  foreign  {sha[:12]} (not from the series)" for sha in r.get("foreign_commits", [])]
    lines += [f"  dirty    {path}" for path in r.get("dirty", [])]
    return lines


def render(data: dict) -> str:
    lines = [f"set {data['set']}: rustc {data['rustc']} ({data['upstream_commit'][:12]}), LLVM {data['llvm']}; "
             f"base found by: {data['detected_by']}",
             f"state: {data['state']}"]
    if "patches" in data:
        lines.append(f"patches: {data['patches']['dir']} (from {data['patches']['from']})")
    enzyme_patches = (data["enzyme"] or {}).get("patches") or {}
    if any(r["drifted"] for r in data["repos"]) or enzyme_patches.get("drifted"):
        lines.append("drifted: the patch file changed since apply; edited: the commit changed after apply "
                     "(unapply keeps it only with --force, under refs/patchmgr/backup/)")
    if any(r["dropped"] for r in data["repos"]) or enzyme_patches.get("dropped"):
        lines.append("dropped: applied, but no longer in the set's list (list it again, or patchmgr export to list "
                     "what the branch holds; patchmgr unapply, then apply leaves it out)")
    if data["operation_in_progress"]:
        kind = data["operation_in_progress"].split()[0]
        lines.append(f"in progress: {data['operation_in_progress']} (patchmgr {kind} {MODES[kind]})")
    for r in data["repos"]:
        lines.append(f"{r['path']}: on {r['branch'] or 'detached HEAD'} at {r['head'][:12]}, base {r['base'][:12]}")
        lines += _patch_lines(r)
    e = data["enzyme"]
    if e:
        def short(sha):
            return sha[:12] if sha else "none"
        lines.append(f"enzyme {e['path']}: pinned {short(e['pinned'])}, recorded {short(e['recorded'])}, "
                     f"checked out {short(e['checked_out'])}" + ("" if e["in_place"] else "  (not in place)"))
        lines += _patch_lines(enzyme_patches)
    for path in data["stale_gitlinks"]:
        lines.append(f"gitlink {path}: the superproject records another commit than the submodule's HEAD"
                     + ("; its commits are the set's: patchmgr apply records it" if path in data["own_gitlinks"] else ""))
    return "\n".join(lines)
