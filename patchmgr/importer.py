"""import: a patch set from a branch range, a directory of format-patch files, or a quilt series.

Whatever the source, the result is the same: git format-patch mails in the
set's directory, validated like every other patch file, and the set's list
in the manifest. Quilt patches (Debian's, say) become mails: their DEP-3
header gives author, subject and message; a patch without one gets its
subject from its file name; traditional diffs get git headers, read with the
series line's options (patchmgr/quilt.py). The mails are then written in
export's form (committed on the base in the object store, formatted as export
formats them), so that the first export after an import rewrites nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

from patchmgr.base import find_root, release_base, repo_state, series_limit
from patchmgr.bumps import submodule_bumps
from patchmgr.carry import Replay
from patchmgr.errors import BadInput, GitFailed, PatchmgrError, WrongState
from patchmgr.export import formatted, strip_trailers
from patchmgr.gitio import FORMAT_PATCH_FLAGS, Repo
from patchmgr.output import say
from patchmgr.patchfile import Patch, parse_patch
from patchmgr.quilt import (
    SeriesEntry,
    diff_start,
    git_diff,
    kept_trailers,
    patch_stem,
    read_patch_bytes,
    read_series,
    series_lines,
)
from patchmgr.safety import path_problem
from patchmgr.scratch import scratch_dir
from patchmgr.series import (
    MANIFEST_NAME,
    SCHEMA,
    SUPERPROJECT,
    Manifest,
    load_manifest,
    parse_manifest,
    patch_list,
    read_exactly,
    write_atomic,
)
from patchmgr.store import line_endings_of
from patchmgr.treefacts import LLVM_PROJECT, describe, read_tree_facts

EPOCH = "Thu, 1 Jan 1970 00:00:00 +0000"
UNKNOWN_AUTHOR = "Unknown Author <unknown@invalid>"
_DEP3_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$")


def sanitize(subject: str) -> str:
    """A file-name slug from a subject, as git format-patch makes them."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", subject).strip("-.")
    return re.sub(r"\.\.+", ".", slug)[:52] or "patch"


def mails_from_range(repo: Repo, rev_range: str, leave_out: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(file name, mail) for each commit of `base..branch`, oldest first; commits that change only
    the paths `leave_out` (submodule moves, imported as those repositories' own lists) are not
    patches and are left out."""
    with scratch_dir("import") as tmp:
        pathspec = ["--", ".", *(f":(exclude,literal){path}" for path in leave_out)] if leave_out else []
        out = repo.run("format-patch", *FORMAT_PATCH_FLAGS,
                       "-o", str(tmp), "--end-of-options", rev_range, *pathspec)
        files = [Path(line) for line in out.splitlines() if line.strip()]
        return [(f.name, strip_trailers(utf8(f.read_bytes(), f"{rev_range}: {f.name}"))) for f in files]


def range_ends(repo: Repo, rev_range: str) -> tuple[str, str]:
    """The commits `BASE..BRANCH` (or `BASE...BRANCH`) starts from and ends at in `repo`. Each side is
    looked up before git sees the range, so a side that is no commit there is named with the
    repository it was looked up in (a range of src/llvm-project given without --repo, say)."""
    if rev_range.startswith("-") or ".." not in rev_range:
        raise BadInput(f"{rev_range!r} is not a revision range such as upstream..my-branch")
    symmetric = "..." in rev_range
    left, _, right = rev_range.partition("..." if symmetric else "..")
    ends = []
    for side in (left or "HEAD", right or "HEAD"):
        sha = repo.rev(side)
        if sha is None:
            where = ("the superproject (.; --repo PATH looks ranges up in a submodule)" if repo.label == SUPERPROJECT
                     else f"{repo.label} (the repository --repo {repo.label} names)")
            raise BadInput(f"{rev_range}: {side!r} is not a commit in {where}")
        ends.append(sha)
    if not symmetric:
        return ends[0], ends[1]
    common = repo.try_run("merge-base", ends[0], ends[1], readonly=True)
    if common.status != 0:
        raise BadInput(f"{rev_range}: {left!r} and {right!r} have no common ancestor in {repo.label}")
    return common.out.strip(), ends[1]


def _refuse_merges(repo: Repo, rev_range: str) -> None:
    """git format-patch leaves merges out, and with them what a merge changes by itself (its
    conflict resolutions): a range with one would import less than it holds."""
    merges = repo.run("rev-list", "--merges", "--end-of-options", rev_range, "--", readonly=True).split()
    if not merges:
        return
    merge = repo.run("log", "-1", "--format=%h (%s)", merges[-1], "--", readonly=True)
    base, _, branch = rev_range.partition("..")
    how = f"git rebase {base} {branch}" if base and branch and not branch.startswith(".") else "git rebase BASE BRANCH"
    raise BadInput(f"{rev_range} holds merge commit {merge}, whose own change format-patch would drop: make the "
                   f"range a line of commits first ({how} replays the merged commits; redo what the merge itself "
                   "changed as a commit), then import")


def utf8(raw: bytes, label: str) -> str:
    """The text of a patch or series file. Patch files are UTF-8 mails (README, *Patch files*),
    so bytes that are not UTF-8 cannot be carried into a set as they are: refused, never
    replaced by U+FFFD (which would write other bytes than quilt applies)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BadInput(f"{label} is not UTF-8 (line {line} of the file, byte 0x{raw[e.start]:02x}); patch files "
                       "hold UTF-8 text, so these bytes cannot be imported as they are: convert a header with "
                       "iconv, keep a patch of non-UTF-8 content out of the set") from None


def mails_from_directory(directory: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in directory.iterdir() if p.suffix == ".patch" and p.is_file())
    if not files:
        raise BadInput(f"{directory} holds no .patch files")
    return [(f.name, utf8(f.read_bytes(), str(f))) for f in files]


def mails_from_quilt(series: Path) -> list[tuple[str, str]]:
    """(file name, mail) for each patch of a quilt series, in the series' order, each doing
    what `quilt push` does with it (its -pN and -R honoured), and each keeping in Quilt-*
    trailers its file name, series lines and header for `export --quilt`."""
    text = utf8(series.read_bytes(), str(series))
    entries = read_series(series, text)
    contexts, end = series_lines(text, entries)
    mails = []
    for number, entry in enumerate(entries, 1):
        where = entry.where(series)
        problem = path_problem(entry.name)
        if problem:
            raise BadInput(f"{where}: patch name {entry.name!r} {problem}")
        path = series.parent / entry.name
        if not path.is_file():
            raise BadInput(f"{where}: lists {entry.name}, which does not exist")
        # bytes decoded as they are: a CR in a patch is refused by validation, not silently dropped
        patch = utf8(read_patch_bytes(path, where), where)
        head = patch.split("\n")[:diff_start(patch.split("\n"))]
        kept = kept_trailers(entry.name, contexts[number - 1], head, end if number == len(entries) else None)
        mail = quilt_to_mail(patch, patch_stem(entry.name), entry, where, kept)
        subject = mail.split("Subject: [PATCH] ", 1)[1].split("\n", 1)[0]
        mails.append((f"{number:04d}-{sanitize(subject)}.patch", mail))
    return mails


def is_mail(text: str) -> bool:
    """A patch that is a format-patch mail (git am reads its own header)."""
    return bool(re.match(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n", text))


def quilt_to_mail(text: str, fallback_subject: str, entry: SeriesEntry | None = None, where: str = "the patch",
                  kept: list[str] | None = None) -> str:
    """A quilt patch as a git format-patch mail (one that already is a mail keeps its header),
    its diff doing what patch does with the series line's options (-p1 when none); `kept`
    trailer lines end its message."""
    entry = entry or SeriesEntry(fallback_subject, 0)
    lines = text.split("\n")
    start = diff_start(lines)
    diff = git_diff("\n".join(lines[start:]), entry, where)
    if is_mail(text):
        head = lines[:start]
        if kept:
            cut = next((i for i, line in enumerate(head) if line.rstrip() == "---"), len(head))
            head = head[:cut] + ([""] if head[cut - 1].strip() else []) + kept + head[cut:]
        return ("\n".join(head) + "\n" if head else "") + diff
    author, date, subject, message = header_fields(lines[:start], fallback_subject)
    if kept:
        message = (message + "\n\n" if message else "") + "\n".join(kept)
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {author}\nDate: {date}\nSubject: [PATCH] {subject}\n\n"
            + (message + "\n" if message else "") + "---\n" + diff.rstrip("\n") + "\n")


def header_fields(head: list[str], fallback_subject: str) -> tuple[str, str, str, str]:
    """(author, date, subject, message) of a quilt patch's header: DEP-3 fields (or the
    From/Date/Subject of gbp pq's form) become author, date and subject, the description's
    other lines and the text outside the fields the message, the other fields trailers."""
    fields: dict[str, list[str]] = {}
    other: list[str] = []
    key = None
    for line in head:
        if line == "---":
            break  # a diffstat follows, up to the diff
        if re.match(r"^={10,}$", line):
            continue
        m = _DEP3_KEY.match(line)
        if m and not line.startswith(" "):
            key = m.group(1).lower()
            fields.setdefault(key, []).append(m.group(2).strip())
        elif line.startswith(" ") and key:
            fields[key].append(line.strip() if line.strip() != "." else "")
        elif line.strip() and line.strip() != "---":
            other.append(line.rstrip())
    description = fields.pop("description", None) or fields.pop("subject", None)
    subject = re.sub(r"^\[PATCH[^\]]*\]\s*", "", description[0]) if description and description[0] else fallback_subject
    body = [line for line in (description or [])[1:]] + ([""] if other else []) + other
    author = (fields.pop("author", None) or fields.pop("from", None) or [UNKNOWN_AUTHOR])[0]
    if "<" not in author:
        author = f"{author} <unknown@invalid>"
    date = (fields.pop("date", None) or [EPOCH])[0]
    if date == EPOCH and fields.get("last-update"):
        m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", fields["last-update"][0])
        if m:
            months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
            date = f"{int(m.group(3))} {months[int(m.group(2)) - 1]} {m.group(1)} 00:00:00 +0000"
    trailers = [f"{k.title()}: {' '.join(v)}" for k, v in fields.items() if k not in ("last-update",)]
    message = "\n".join(body).strip("\n")
    if trailers:
        message = (message + "\n\n" if message else "") + "\n".join(trailers)
    return author, date, subject, message


def mail_fields(head: list[str]) -> tuple[str, str]:
    """(author, message) git am makes of a mail's header and body (folded header lines joined,
    a leading [PATCH ...] dropped from the subject, the body up to the --- line)."""
    headers: dict[str, str] = {}
    last = None
    i = 1
    while i < len(head) and head[i].strip():
        if head[i][:1] in (" ", "\t") and last:
            headers[last] += " " + head[i].strip()
        else:
            last, _, value = head[i].partition(":")
            last = last.lower()
            headers[last] = value.strip()
        i += 1
    body = []
    for line in head[i + 1:]:
        if line.rstrip() == "---" or line.startswith("--- "):
            break
        body.append(line)
    subject = re.sub(r"^\[PATCH[^\]]*\]\s*", "", headers.get("subject", ""))
    return headers.get("from", ""), subject + "\n\n" + "\n".join(body)


def imported_as(head: list[str], fallback_subject: str) -> tuple[str, str]:
    """(author, message) the commit of a quilt patch with this header had when it was
    imported: what export --quilt compares to tell an edited message from an untouched one."""
    if head and is_mail(head[0] + "\n"):
        return mail_fields(head)
    author, _, subject, message = header_fields(head, fallback_subject)
    return author, subject + "\n\n" + message


def write_set(manifest: Manifest, set_name: str, lists: dict[str, list[tuple[str, str]]],
              meta: dict[str, object], root_of_checkout: Path | None) -> list[str]:
    """Validate the mails, write them into the set's directories in export's form, and list them
    in the manifest: one list per repository (a range with an llvm-project move gives two), all
    validated before the first write."""
    existing = manifest.sets.get(set_name)
    if existing is None:
        assert all(meta.get(k) is not None for k in ("rustc", "commit", "llvm")), meta  # new_set_meta's job
    commit = existing.commit if existing else str(meta["commit"])
    ready: dict[str, tuple[str, list[tuple[str, str]], str | None]] = {}
    for repo_path, repo_mails in lists.items():
        series = existing.repo(repo_path) if existing else None
        directory = series.dir if series else f"{set_name}/{'rust' if repo_path == SUPERPROJECT else Path(repo_path).name}"
        # every mail parsed (and refused) before any write
        patches = [parse_patch(text.encode("utf-8"), f"{directory}/{name}") for name, text in repo_mails]
        formed, note = in_export_form(root_of_checkout, repo_path, commit, series_limit(manifest), patches, repo_mails)
        ready[repo_path] = (directory, formed, note)
    root = manifest.path.parent
    text = _manifest_text(manifest, set_name, {path: (d, [n for n, _ in formed]) for path, (d, formed, _) in ready.items()},
                          meta)
    parse_manifest(text, manifest.path)  # what will be written validates (--commit, --rustc, ...), before any write
    for directory, formed, _ in ready.values():
        (root / directory).mkdir(parents=True, exist_ok=True)
        for name, mail in formed:
            write_atomic(root / directory / name, mail)
    started = not manifest.path.exists()
    write_atomic(manifest.path, text)
    said = [f"started {manifest.path}"] if started else []
    for repo_path, (directory, formed, note) in ready.items():
        said += [f"imported {len(formed)} patches into {set_name} ({repo_path}): {directory}/"] + ([note] if note else [])
    return said


def _manifest_text(manifest: Manifest, set_name: str, lists: dict[str, tuple[str, list[str]]],
                   meta: dict[str, object]) -> str:
    """The manifest with the set's lists (repository -> (directory, file names)) in place, the rest
    of the file kept as the user wrote it (tomlkit); a new set gets its base from `meta`."""
    import tomlkit

    current = read_exactly(manifest.path) if manifest.path.exists() else ""
    if current:
        doc = tomlkit.parse(current)
    else:  # the first import starts the manifest
        doc = tomlkit.document()
        doc.add(tomlkit.comment("patchmgr manifest: the patch sets this directory carries (schema in patchmgr's README)"))
        doc["schema"] = SCHEMA
        doc["sets"] = tomlkit.table(is_super_table=True)
    sets = doc["sets"]
    if set_name not in sets:
        table = tomlkit.table()
        table["rustc"], table["commit"], table["llvm"] = meta["rustc"], meta["commit"], meta["llvm"]
        table["repos"] = tomlkit.table()
        sets[set_name] = table
    repos = sets[set_name]["repos"]
    for repo_path, (directory, names) in lists.items():
        entry = tomlkit.table()
        entry["dir"] = directory
        entry["patches"] = patch_list(names)
        repos[repo_path] = entry
    return line_endings_of(current, tomlkit.dumps(doc))  # a CRLF manifest stays CRLF


def in_export_form(root: Path | None, repo_path: str, commit: str, limit: int, patches: list[Patch],
                   mails: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str | None]:
    """The mails as export writes them once they are applied, so that export right after import
    changes nothing: each committed on the one before from the set's base in the object store
    (as rebase does; no checkout), with the message git am makes, then formatted by export.
    Where that cannot be done, the mails stay in import's own form and the note says why."""
    target = _import_base(root, repo_path, commit, limit)
    if isinstance(target, str):
        return mails, f"note: the files are in import's form, not export's, so the first export rewrites them: {target}"
    repo, base = target
    replay = Replay(repo)
    try:
        commits = replay.materialize(base, patches, [text for _, text in mails])
    except GitFailed as e:
        return mails, (f"note: the files are in import's form, not export's, so the first export rewrites them: "
                       f"they do not apply to the base {base[:12]} as they are ({e})")
    finally:
        replay.close()
    return formatted(repo, commits), None


def _import_base(root: Path | None, repo_path: str, commit: str, limit: int) -> tuple[Repo, str] | str:
    """The repository the set's patches go into and the commit apply puts them on: the set's
    commit, or a release tree below any applied series whose git-commit-hash names it (as base
    detection finds it); else why there is none."""
    if root is None:
        return "no checkout around the current directory to build the commits in"
    superproject = Repo(root)
    try:
        below = repo_state(superproject, None, limit).base
    except PatchmgrError:
        below = superproject.head()
    base = release_base(superproject, below, commit)
    if base is None:
        return f"the set's commit {commit[:12]} is not in {root} (neither a commit nor a release tree's git-commit-hash)"
    if repo_path == SUPERPROJECT:
        return superproject, base
    pin = superproject.gitlink(base, repo_path)
    sub = Repo(root / repo_path, repo_path)
    if pin is None or not (root / repo_path / ".git").exists() or sub.rev(pin) is None:
        return f"{repo_path} does not have the commit the base records for it"
    return sub, pin


def lists_from_range(root: Path, repo_path: str, rev_range: str, enzyme_path: str | None) -> tuple[
        dict[str, list[tuple[str, str]]], list[str], str]:
    """The lists a range gives (its repository's, and for each submodule the superproject's range
    moves, that submodule's), the lines that say so, and the commit the range starts from."""
    repo = checked_out(root, repo_path)
    base, tip = range_ends(repo, rev_range)
    # A...B means the branch's commits since the merge base; to rev-list and format-patch it would
    # mean both sides' commits, so git is given the two commits range_ends found
    commits = f"{base}..{tip}"
    _refuse_merges(repo, commits)
    bumps = submodule_bumps(repo, commits, base, enzyme_path)
    lists = {repo_path: mails_from_range(repo, commits, tuple(b.path for b in bumps))}
    for bump in bumps:
        sub = checked_out(root, bump.path)
        for commit in (bump.old, bump.new):
            if sub.rev(commit) is None:
                raise WrongState(f"{bump.path} does not have commit {commit[:12]}, which {rev_range} moves its gitlink "
                                 f"from or to; fetch it first (git -C {bump.path} fetch)")
        if sub.try_run("merge-base", "--is-ancestor", bump.old, bump.new, readonly=True).status != 0:
            raise BadInput(f"{rev_range} moves the {bump.path} gitlink from {bump.old[:12]} to {bump.new[:12]}, which "
                           "does not descend from it, so its commits are no range of patches; rebase them onto "
                           f"{bump.old[:12]} in {bump.path}, move the gitlink there, then import")
        sub_range = f"{bump.old}..{bump.new}"
        _refuse_merges(sub, sub_range)
        submodule_bumps(sub, sub_range, bump.old, enzyme_path)  # refuses any: a submodule's submodules are no list
        lists[bump.path] = mails_from_range(sub, sub_range)
    if not any(lists.values()):
        raise BadInput(f"{rev_range} holds no commits to import")
    return lists, [bump.says() for bump in bumps], base


def checked_out(root: Path, path: str) -> Repo:
    """The repository at `path` of the checkout, where a range is looked up; one that is not there
    is named (a submodule not initialised has no commits to read)."""
    if path != SUPERPROJECT:
        problem = path_problem(path)
        if problem:
            raise BadInput(f"--repo {path!r}: the path {problem}")
        if not (root / path / ".git").exists():
            if Repo(root).gitlink("HEAD", path) is None:
                raise BadInput(f"--repo {path}: the checkout {root} has no submodule there; a range is looked up in "
                               "the superproject (.) or in one of its submodules")
            raise WrongState(f"{path} is not checked out in {root}, so no range can be looked up in it; "
                             f"git submodule update --init {path} first")
    return Repo(root / path, path)


def new_set_meta(args, existing: bool, root: Path | None, tree: str | None) -> tuple[dict[str, object], str | None]:
    """rustc, commit and LLVM of a new set: each option given wins, the rest is read from the tree
    the set starts from (patchmgr/treefacts.py, as rebase reads a new base); with the line that
    says which was read and from where."""
    given: dict[str, object] = {"rustc": args.rustc, "commit": args.commit, "llvm": args.llvm}
    if existing or all(v is not None for v in given.values()):
        return given, None
    if root is None or tree is None:
        missing = [k for k, v in given.items() if v is None]
        raise BadInput(f"set {args.set_name} is new: give its upstream base with "
                       + ", ".join(f"--{k}" for k in missing) + " (no checkout here to read them from)")
    facts = read_tree_facts(Repo(root), tree, root)
    meta: dict[str, object] = {"rustc": facts.rustc, "commit": facts.commit, "llvm": facts.llvm}
    meta.update({k: v for k, v in given.items() if v is not None})
    missing = [k for k, v in meta.items() if v is None]
    if missing:
        raise BadInput(f"set {args.set_name} is new and tree {tree[:12]} does not say its "
                       + " or ".join(_UNSAID[k] for k in missing) + ": give "
                       + ", ".join(f"--{k}" for k in missing))
    return meta, describe(facts, given)


#: what the tree lacks, for each fact it could not give
_UNSAID = {"rustc": "rustc version (no version or src/version file, no release tag)",
           "llvm": f"LLVM major (no LLVM_VERSION_MAJOR in {LLVM_PROJECT}'s CMake, no rustc/<major> branch for it "
                   "in .gitmodules)"}


def checkout_base(root: Path | None, manifest: Manifest) -> str | None:
    """The commit below any applied series in the checkout: the tree a quilt series or a directory
    of mails is imported for."""
    if root is None:
        return None
    try:
        return repo_state(Repo(root), None, series_limit(manifest)).base
    except PatchmgrError:
        return None


def command(patches: Path, args) -> None:
    """`patchmgr import SOURCE --set NAME`: the source is a directory of mails, a quilt series
    file, or else a revision range of the checkout (of the repository --repo names). Into a
    directory without a manifest, the import starts one."""
    path = patches / MANIFEST_NAME
    manifest = load_manifest(patches, require_sets=False) if path.exists() else Manifest(path=path, sets={})
    existing = manifest.sets.get(args.set_name)
    source = Path(args.source)
    try:
        root: Path | None = find_root(args.root.resolve())
    except WrongState:
        root = None  # a quilt series or a directory of mails is read without a checkout
    said: list[str] = []
    if source.is_dir() or source.is_file():
        lists = {args.repo: mails_from_directory(source) if source.is_dir() else mails_from_quilt(source)}
        tree = checkout_base(root, manifest)
    else:
        root = find_root(args.root.resolve())
        enzyme = existing.enzyme.path if existing and existing.enzyme else None
        lists, said, start = lists_from_range(root, args.repo, args.source, enzyme)
        tree = start if args.repo == SUPERPROJECT else checkout_base(root, manifest)
    meta, facts = new_set_meta(args, existing is not None, root, tree)
    for line in said + ([facts] if facts else []) + write_set(manifest, args.set_name, lists, meta, root):
        say(line)
