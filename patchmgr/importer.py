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
    write_atomic,
    write_manifest,
)

EPOCH = "Thu, 1 Jan 1970 00:00:00 +0000"
UNKNOWN_AUTHOR = "Unknown Author <unknown@invalid>"
_DEP3_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$")


def sanitize(subject: str) -> str:
    """A file-name slug from a subject, as git format-patch makes them."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", subject).strip("-.")
    return re.sub(r"\.\.+", ".", slug)[:52] or "patch"


def mails_from_range(repo: Repo, rev_range: str) -> list[tuple[str, str]]:
    """(file name, mail) for each commit of `base..branch`, oldest first."""
    if rev_range.startswith("-") or ".." not in rev_range:
        raise BadInput(f"{rev_range!r} is not a revision range such as upstream..my-branch")
    _refuse_merges(repo, rev_range)
    with scratch_dir("import") as tmp:
        out = repo.run("format-patch", *FORMAT_PATCH_FLAGS,
                       "-o", str(tmp), "--end-of-options", rev_range)
        files = [Path(line) for line in out.splitlines() if line.strip()]
        if not files:
            raise BadInput(f"{rev_range} holds no commits to import")
        return [(f.name, strip_trailers(utf8(f.read_bytes(), f"{rev_range}: {f.name}"))) for f in files]


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


def write_set(manifest: Manifest, set_name: str, repo_path: str, mails: list[tuple[str, str]],
              meta: dict[str, object], root_of_checkout: Path | None) -> list[str]:
    """Validate the mails, write them into the set's directory in export's form, and list them
    in the manifest."""
    import tomlkit

    existing = manifest.sets.get(set_name)
    series = existing.repo(repo_path) if existing else None
    directory = series.dir if series else f"{set_name}/{'rust' if repo_path == SUPERPROJECT else Path(repo_path).name}"
    patches = [parse_patch(text.encode("utf-8"), f"{directory}/{name}") for name, text in mails]  # refuse before any write
    if existing is None:
        missing = [k for k in ("rustc", "commit", "llvm") if meta.get(k) is None]
        if missing:
            raise BadInput(f"set {set_name} is new: give its upstream base with "
                           + ", ".join(f"--{k}" for k in missing))
    commit = existing.commit if existing else str(meta["commit"])
    mails, note = in_export_form(root_of_checkout, repo_path, commit, series_limit(manifest), patches, mails)
    root = manifest.path.parent
    if manifest.path.exists():
        doc = tomlkit.parse(manifest.path.read_text(encoding="utf-8"))
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
    entry = tomlkit.table()
    entry["dir"] = directory
    array = tomlkit.array()
    array.extend(name for name, _ in mails)
    array.multiline(True)
    entry["patches"] = array
    repos[repo_path] = entry
    text = tomlkit.dumps(doc)
    parse_manifest(text, manifest.path)  # what will be written validates (--commit, --rustc, ...), before any write
    (root / directory).mkdir(parents=True, exist_ok=True)
    for name, mail in mails:
        write_atomic(root / directory / name, mail)
    started = not manifest.path.exists()
    write_manifest(manifest.path, text)
    return ([f"started {manifest.path}"] if started else []) + \
        [f"imported {len(mails)} patches into {set_name} ({repo_path}): {directory}/"] + ([note] if note else [])


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


def command(patches: Path, args) -> None:
    """`patchmgr import SOURCE --set NAME`: the source is a directory of mails, a quilt series
    file, or else a revision range of the checkout. Into a directory without a manifest, the
    import starts one."""
    path = patches / MANIFEST_NAME
    manifest = load_manifest(patches, require_sets=False) if path.exists() else Manifest(path=path, sets={})
    source = Path(args.source)
    try:
        root: Path | None = find_root(args.root.resolve())
    except WrongState:
        root = None  # a quilt series or a directory of mails is read without a checkout
    if source.is_dir():
        mails = mails_from_directory(source)
    elif source.is_file():
        mails = mails_from_quilt(source)
    else:
        root = find_root(args.root.resolve())
        mails = mails_from_range(Repo(root / args.repo, args.repo), args.source)
    meta = {"rustc": args.rustc, "commit": args.commit, "llvm": args.llvm}
    for line in write_set(manifest, args.set_name, args.repo, mails, meta, root):
        say(line)
