"""import: a patch set from a branch range, a directory of format-patch files, or a quilt series.

Whatever the source, the result is the same: git format-patch mails in the
set's directory, validated like every other patch file, and the set's list
in the manifest. Quilt patches (Debian's, say) become mails: their DEP-3
header gives author, subject and message; a patch without one gets its
subject from its file name; traditional diffs get git headers.
"""

from __future__ import annotations

import re
from pathlib import Path

from patchmgr.errors import BadInput
from patchmgr.export import strip_trailers
from patchmgr.gitio import FORMAT_PATCH_FLAGS, Repo
from patchmgr.output import say
from patchmgr.patchfile import parse_patch
from patchmgr.safety import path_problem
from patchmgr.scratch import scratch_dir
from patchmgr.series import (
    MANIFEST_NAME,
    SCHEMA,
    SUPERPROJECT,
    Manifest,
    load_manifest,
    parse_manifest,
    read_exactly,
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
    with scratch_dir("import") as tmp:
        out = repo.run("format-patch", *FORMAT_PATCH_FLAGS,
                       "-o", str(tmp), "--end-of-options", rev_range)
        files = [Path(line) for line in out.splitlines() if line.strip()]
        if not files:
            raise BadInput(f"{rev_range} holds no commits to import")
        return [(f.name, strip_trailers(read_exactly(f))) for f in files]


def mails_from_directory(directory: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in directory.iterdir() if p.suffix == ".patch" and p.is_file())
    if not files:
        raise BadInput(f"{directory} holds no .patch files")
    return [(f.name, f.read_bytes().decode("utf-8", errors="replace")) for f in files]


def mails_from_quilt(series: Path) -> list[tuple[str, str]]:
    names = [line.split()[0] for line in series.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    if not names:
        raise BadInput(f"{series} lists no patches")
    mails = []
    for number, name in enumerate(names, 1):
        problem = path_problem(name)
        if problem:
            raise BadInput(f"{series}: patch name {name!r} {problem}")
        path = series.parent / name
        if not path.is_file():
            raise BadInput(f"{series}: lists {name}, which does not exist")
        # bytes decoded as they are: a CR in a patch is refused by validation, not silently dropped
        mail = quilt_to_mail(path.read_bytes().decode("utf-8", errors="replace"), Path(name).stem)
        subject = mail.split("Subject: [PATCH] ", 1)[1].split("\n", 1)[0]
        mails.append((f"{number:04d}-{sanitize(subject)}.patch", mail))
    return mails


def quilt_to_mail(text: str, fallback_subject: str) -> str:
    """A quilt patch as a git format-patch mail (one that already is a mail stays as it is)."""
    if re.match(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n", text):
        return text
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith(("diff --git ", "--- ", "Index: "))), len(lines))
    fields: dict[str, list[str]] = {}
    other: list[str] = []
    key = None
    for line in lines[:start]:
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
    diff = _git_style("\n".join(lines[start:]))
    return (f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {author}\nDate: {date}\nSubject: [PATCH] {subject}\n\n"
            + (message + "\n" if message else "") + "---\n" + diff.rstrip("\n") + "\n")


def _strip_component(path: str) -> str:
    path = path.split("\t")[0].strip()
    return path if path == "/dev/null" else path.split("/", 1)[1] if "/" in path else path


def _git_style(diff: str) -> str:
    """Traditional `---`/`+++` diffs (quilt's) with the git headers git am and patchmgr expect."""
    if "\ndiff --git " in "\n" + diff:
        return diff
    out: list[str] = []
    lines = diff.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Index: ") or re.match(r"^={10,}$", line):
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            src, dst = _strip_component(line[4:]), _strip_component(lines[i + 1][4:])
            name = dst if dst != "/dev/null" else src
            out.append(f"diff --git a/{name} b/{name}")
            if src == "/dev/null":
                out.append("new file mode 100644")
            if dst == "/dev/null":
                out.append("deleted file mode 100644")
            out.append("--- " + ("/dev/null" if src == "/dev/null" else f"a/{name}"))
            out.append("+++ " + ("/dev/null" if dst == "/dev/null" else f"b/{name}"))
            i += 2
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def write_set(manifest: Manifest, set_name: str, repo_path: str, mails: list[tuple[str, str]],
              meta: dict[str, object]) -> list[str]:
    """Validate the mails, write them into the set's directory, and list them in the manifest."""
    import tomlkit

    existing = manifest.sets.get(set_name)
    series = existing.repo(repo_path) if existing else None
    directory = series.dir if series else f"{set_name}/{'rust' if repo_path == SUPERPROJECT else Path(repo_path).name}"
    for name, text in mails:
        parse_patch(text.encode("utf-8"), f"{directory}/{name}")  # refuse before anything is written
    if existing is None:
        missing = [k for k in ("rustc", "commit", "llvm") if meta.get(k) is None]
        if missing:
            raise BadInput(f"set {set_name} is new: give its upstream base with "
                           + ", ".join(f"--{k}" for k in missing))
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
        [f"imported {len(mails)} patches into {set_name} ({repo_path}): {directory}/"]


def command(patches: Path, args) -> None:
    """`patchmgr import SOURCE --set NAME`: the source is a directory of mails, a quilt series
    file, or else a revision range of the checkout. Into a directory without a manifest, the
    import starts one."""
    path = patches / MANIFEST_NAME
    manifest = load_manifest(patches, require_sets=False) if path.exists() else Manifest(path=path, sets={})
    source = Path(args.source)
    if source.is_dir():
        mails = mails_from_directory(source)
    elif source.is_file():
        mails = mails_from_quilt(source)
    else:
        from patchmgr.base import find_root

        root = find_root(args.root.resolve())
        mails = mails_from_range(Repo(root / args.repo, args.repo), args.source)
    meta = {"rustc": args.rustc, "commit": args.commit, "llvm": args.llvm}
    for line in write_set(manifest, args.set_name, args.repo, mails, meta):
        say(line)
