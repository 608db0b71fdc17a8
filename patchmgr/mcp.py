"""mcp: a Major Change Proposal draft, a prototype branch and a mail series, from the set itself.

The compiler team takes a change like this through an MCP (an issue in
rust-lang/compiler-team) with a prototype behind it. The prose is the
author's: the set's cover letter. Everything that can be read off the series
is generated (base, Enzyme pin, the options and config keys the patches add,
what is gated, new files, diffstat per crate, the patches), so the draft
cannot drift from the code. Same series, same bytes: no dates, no hashes of
ours. Each run that finds the series changed records a revision (v1, v2, ...)
next to the draft, with the range-diff from the one before.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from patchmgr.base import repo_base
from patchmgr.diffsets import range_diff
from patchmgr.errors import BadInput, CheckFailed, WrongState
from patchmgr.gitio import Repo, Scratch, scratch_clones, tool_commit_env
from patchmgr.lint import load_patches
from patchmgr.mailcommit import DoesNotApply, MailCommitter
from patchmgr.output import say
from patchmgr.patchfile import Patch
from patchmgr.series import SUPERPROJECT, Manifest, PatchSet, load_manifest, set_table
from patchmgr.surface import Surface, diffstat, find_surface
from patchmgr.workspace import Workspace, enzyme_rel_path

COVER_SECTIONS = ("Motivation", "Design", "Alternatives", "Open questions", "Mentors or Reviewers")
DRAFT_NAME = "mcp.md"
REVISIONS = "revisions"
#: the sections patchmgr fills in a template; the others are the author's (the process, comments)
FILLED = ("Proposal", "Mentors or Reviewers")

DEFAULT_TEMPLATE = """\
---
title: "(My major change proposal)"
labels: major-change, T-compiler
---

# Proposal

# Mentors or Reviewers

# Process

*Left for the author: the Process section of the compiler team's current MCP template
(rust-lang/compiler-team, .github/ISSUE_TEMPLATE/major_change.md), unchanged. Or run
`patchmgr mcp --template` with that file, and patchmgr keeps its sections as they are.*

# Comments

*Left for the author: the template's Comments section, unchanged.*
"""


@dataclass(frozen=True)
class Cover:
    title: str
    sections: dict[str, str]


def parse_cover(text: str, label: str) -> Cover:
    """A cover letter: a `# Title` line, then `## <section>` for each of COVER_SECTIONS."""
    lines = text.strip("\n").split("\n")
    if not lines or not lines[0].startswith("# ") or not lines[0][2:].strip():
        raise BadInput(f"{label}: the first line must be the proposal's title, as '# <title>'")
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines[1:]:
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif line.strip():
            raise BadInput(f"{label}: text before the first '## ' section; put it under '## Motivation'")
    bodies = {name: "\n".join(body).strip("\n") for name, body in sections.items()}
    for name in COVER_SECTIONS:
        if not bodies.get(name, "").strip():
            raise BadInput(f"{label}: no '## {name}' section (or it is empty); the draft needs it")
    return Cover(title=lines[0][2:].strip(), sections=bodies)


def fill_template(template: str, label: str, title: str, filled: dict[str, str]) -> str:
    """The template with its title and the FILLED sections replaced; every other byte kept."""
    front, body = "", template
    if template.startswith("---\n") and "\n---\n" in template[4:]:
        end = template.index("\n---\n", 4) + 5
        front, body = template[:end], template[end:]
        quoted = '"' + title.replace('\\', '\\\\').replace('"', '\\"') + '"'
        front, count = re.subn(r"^title:.*$", lambda _: f"title: {quoted}", front, count=1, flags=re.M)
        if not count:
            front = front.replace("---\n", f"---\ntitle: {quoted}\n", 1)
    else:
        front = f"---\ntitle: \"{title}\"\n---\n"
    parts = re.split(r"(?m)^(# .+)\n", body)
    head, pairs = parts[0], list(zip(parts[1::2], parts[2::2]))
    names = [h[2:].strip() for h, _ in pairs]
    for name in FILLED:
        if name not in names:
            raise BadInput(f"{label}: the template has no '# {name}' section, so the draft cannot be made from it")
    out = [head]
    for heading, content in pairs:
        name = heading[2:].strip()
        if name in filled:
            out.append(f"{heading}\n\n{filled[name].strip()}\n\n")
        else:
            out.append(f"{heading}\n{content}")
    return front + "".join(out).rstrip("\n") + "\n"


# --- the prototype: the series committed, in scratch repositories ----------

@dataclass
class Built:
    repo: Repo  # the scratch repository holding the commits
    base: str
    head: str


def build_prototype(ws: Workspace, patch_set: PatchSet, patches: dict[str, list[Patch]], scratch: Scratch
                    ) -> dict[str, Built]:
    """Commit the set on its base as plain commits (no patchmgr trailers), submodules first, in
    bare scratch repositories that borrow the checkout's objects (the commits git am makes,
    without a checkout: mailcommit).

    Enzyme becomes a .gitmodules entry and gitlink in its owner (nothing is
    cloned), and the superproject records the patched submodules, as the
    pull request would.
    """
    sup_base = ws.set_base(patch_set)
    built: dict[str, Built] = {}
    for series in patch_set.apply_order():
        borrowed = scratch.borrow(ws.repo(series.path))
        base = repo_base(ws.superproject, sup_base, series.path, patch_set)
        date = borrowed.run("log", "-1", "--format=%cI", base).strip()
        with MailCommitter(borrowed) as committer:
            tip = base
            for patch in patches[series.path]:
                try:
                    tip = committer.commit_mail(tip, patch.text, patch.diff)
                except DoesNotApply:
                    raise CheckFailed(f"{patch.label} does not apply to the base of {patch_set.name}; run patchmgr "
                                      f"check --set {patch_set.name}, fix or rebase the set, then mcp again") from None
            if patch_set.enzyme and patch_set.enzyme_owner() == series.path:
                tip = _add_enzyme(committer, tip, patch_set, date)
            if series.path == SUPERPROJECT:
                links = [f"160000 {nested.head}\t{path}" for path, nested in built.items() if nested.head != nested.base]
                tree = committer.tree_with(committer.tree_of(tip), links)
                if tree != committer.tree_of(tip):
                    tip = _tool_commit(borrowed, tree, tip, f"Update {', '.join(built)} for {patch_set.name}", date)
        built[series.path] = Built(borrowed, base, tip)
    return built


def _add_enzyme(committer: MailCommitter, tip: str, patch_set: PatchSet, date: str) -> str:
    """A commit on `tip` that adds Enzyme as a submodule: its .gitmodules entry (written by git
    config, as `git submodule add` writes it) and its gitlink at the pin."""
    pin = patch_set.enzyme
    assert pin is not None
    repo, rel = committer.repo, enzyme_rel_path(patch_set)
    modules = committer.file("gitmodules")
    modules.write_text(repo.read(tip, ".gitmodules") or "", encoding="utf-8", errors="surrogateescape")
    repo.run("config", "-f", str(modules), f"submodule.{rel}.path", rel)
    repo.run("config", "-f", str(modules), f"submodule.{rel}.url", pin.url)
    blob = repo.run("hash-object", "-w", "--", str(modules)).strip()
    tree = committer.tree_with(committer.tree_of(tip), [f"100644 {blob}\t.gitmodules", f"160000 {pin.commit}\t{rel}"])
    return _tool_commit(repo, tree, tip, f"Add Enzyme as submodule {rel}\n\n{pin.url} at {pin.commit}", date)


def _tool_commit(repo: Repo, tree: str, parent: str, message: str, date: str) -> str:
    """A commit of patchmgr's own (the Enzyme submodule, the gitlinks), dated as the base, so the
    same set gives the same commit."""
    return repo.run("commit-tree", tree, "-p", parent, "-F", "-", input=message + "\n", env=tool_commit_env(date)).strip()


def check_outputs(ws: Workspace, patch_set: PatchSet, branch: str | None, mails: Path | None) -> None:
    """Refuse a taken branch name or a used mail directory before any work."""
    if branch:
        ref = f"refs/heads/{branch}"
        if branch.startswith("-") or ws.superproject.try_run("check-ref-format", ref).status != 0:
            raise BadInput(f"{branch!r} is not a valid branch name")
        for series in patch_set.repos:
            if ws.repo(series.path).ref_exists(ref):
                raise WrongState(f"branch {branch} already exists in {series.path}; delete it or pick another --branch")
    if mails and mails.exists() and any(mails.iterdir()):
        raise WrongState(f"{mails} exists and is not empty; pick an empty --format-patch directory")


def make_branch(ws: Workspace, built: dict[str, Built], name: str) -> list[str]:
    """The prototype commits as branch `name` in each repository; the work trees are not touched."""
    ref = f"refs/heads/{name}"
    lines = []
    for path, b in built.items():
        if b.head == b.base:
            continue
        ws.repo(path).run("fetch", "-q", "--no-tags", str(b.repo.path), f"{b.head}:{ref}")
        count = len(b.repo.run("rev-list", f"{b.base}..{b.head}").split())
        lines.append(f"branch {name} in {path}: {count} commits on {b.base[:12]}")
    return lines


def write_mails(built: dict[str, Built], out: Path, cover: Cover, revision: int, summary: str) -> list[str]:
    """A numbered format-patch series per repository, the cover letter as patch 0."""
    lines = []
    for path, b in built.items():
        if b.head == b.base:
            continue
        target = out if path == SUPERPROJECT else out / path
        target.mkdir(parents=True, exist_ok=True)
        prefix = "PATCH" if revision == 1 else f"PATCH v{revision}"
        b.repo.run("format-patch", "-q", "--numbered", "--cover-letter", "--no-signature", "--zero-commit",
                   f"--subject-prefix={prefix}", "-o", str(target), f"{b.base}..{b.head}")
        letter = next(target.glob("0000-cover-letter.patch"))
        blurb = "\n\n".join(f"## {name}\n\n{cover.sections[name]}" for name in COVER_SECTIONS[:-1]) + "\n\n" + summary
        text = letter.read_text(encoding="utf-8").replace("*** SUBJECT HERE ***", cover.title)
        letter.write_text(text.replace("*** BLURB HERE ***", blurb.strip()), encoding="utf-8")
        lines.append(f"wrote {len(list(target.glob('*.patch')))} mails for {path} to {target}")
    return lines


# --- revisions --------------------------------------------------------------

def snapshot(patch_set: PatchSet) -> dict[str, bytes]:
    """The series as files: a one-set manifest and its patches. The cover letter is prose, not series."""
    import tomlkit

    table = set_table(patch_set, cover=False)
    doc = tomlkit.document()
    doc["schema"] = 1
    doc["sets"] = {patch_set.name: table}
    files = {"series.toml": tomlkit.dumps(doc).encode()}
    for r in patch_set.all_series():
        for name in r.patches:
            files[f"{r.dir}/{name}"] = patch_set.patch_file(r, name).read_bytes()
    return files


def _read_revision(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != "range-diff.txt"}


def lineage(manifest: Manifest, patch_set: PatchSet) -> list[str]:
    """The set's name, then the sets it was rebased from (the manifest's `from`), newest first:
    a draft's revisions may be of any of them."""
    names, current = [patch_set.name], patch_set
    while current.from_set and current.from_set not in names:
        names.append(current.from_set)
        found = manifest.sets.get(current.from_set)
        if found is None:
            break  # no longer declared: its own `from` is not known here
        current = found
    return names


def revision_numbers(root: Path) -> list[int]:
    return sorted(int(p.name[1:]) for p in root.glob("v*") if re.fullmatch(r"v\d+", p.name)) if root.exists() else []


def revision_set(directory: Path) -> str | None:
    """The name of the set a recorded revision is of (its series.toml holds that one set)."""
    try:
        sets = tomllib.loads((directory / "series.toml").read_text(encoding="utf-8")).get("sets", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return next(iter(sets), None) if isinstance(sets, dict) else None


def default_out(names: list[str]) -> Path:
    """./mcp-<set>, or where the draft of a set this one was rebased from is, so its revisions go on."""
    for name in names:
        candidate = Path.cwd() / f"mcp-{name}"
        if candidate.is_dir():
            return candidate
    return Path.cwd() / f"mcp-{names[0]}"


def last_revision_set(out: Path) -> str | None:
    """The set the newest revision under draft directory `out` is of; None when there is none."""
    numbers = revision_numbers(out / REVISIONS)
    return revision_set(out / REVISIONS / f"v{numbers[-1]}") if numbers else None


def check_revisions(out: Path, names: list[str]) -> str | None:
    """The set of the newest revision under `out`; refused, before anything is written, when it
    is neither this set nor one it was rebased from: its range-diff and numbering would mix
    two proposals."""
    last = last_revision_set(out)
    if last is not None and last not in names:
        raise WrongState(f"{out} holds the revisions of set {last}, which {names[0]} does not come from (its manifest "
                         f"entry has no from = \"{last}\" in its history); pick another --out (nothing was written)")
    return last


def record_revision(ws: Workspace, patch_set: PatchSet, out: Path) -> tuple[int, str]:
    """(revision number, its changelog entry): a new revision when the series differs from the last one.
    The last one may be of a set this one was rebased from (check_revisions): the range-diff is
    then across the rebase."""
    root = out / REVISIONS
    numbers = revision_numbers(root)
    files = snapshot(patch_set)
    if numbers and _read_revision(root / f"v{numbers[-1]}") == files:
        number = numbers[-1]
    else:
        number = (numbers[-1] if numbers else 0) + 1
        target = root / f"v{number}"
        diff = None
        if number > 1:  # before anything is written: a revision without its range-diff would stay so
            previous = next(iter(load_manifest(root / f"v{number - 1}").sets.values()))
            diff = range_diff(ws, previous, patch_set)
        for rel, data in files.items():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            (target / rel).write_bytes(data)
        if diff is not None:
            (target / "range-diff.txt").write_text("".join(f"## {path}\n{text}\n" for path, text in diff), encoding="utf-8")
    digest = hashlib.sha256(b"".join(k.encode() + b"\0" + v for k, v in sorted(files.items()))).hexdigest()[:12]
    return number, _changelog(root, number, digest, patch_set.name)


def _changelog(root: Path, number: int, digest: str, name: str) -> str:
    """The revisions, newest first; one of another set (before a rebase) says which."""
    lines = [f"- v{number} (series {digest}): the revision this draft describes"]
    for n in range(number - 1, 0, -1):
        other = revision_set(root / f"v{n}")
        lines.append(f"- v{n}" + (f" (set {other})" if other and other != name else ""))
    diff_file = root / f"v{number}" / "range-diff.txt"
    if diff_file.exists():
        lines += ["", f"Range-diff from v{number - 1} (`git range-diff`, patch by patch):", "", "```text",
                  diff_file.read_text(encoding="utf-8").rstrip("\n"), "```"]
    return "\n".join(lines)


# --- the draft --------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def prototype_summary(patch_set: PatchSet, revision: int) -> str:
    lines = [f"This proposal comes with a prototype: patch set `{patch_set.name}`, revision v{revision}.", "",
             f"- Upstream base: rustc {patch_set.rustc}, commit `{patch_set.commit}`, LLVM {patch_set.llvm}"]
    if patch_set.enzyme:
        e = patch_set.enzyme
        lines.append(f"- Enzyme: {e.url} at `{e.commit}`, a submodule at `{e.path}`")
    return "\n".join(lines)


def render_proposal(patch_set: PatchSet, cover: Cover, surface: Surface, patches: dict[str, list[Patch]],
                    revision: int, changelog: str) -> str:
    out = []
    for name in COVER_SECTIONS[:-1]:
        out += [f"## {name}", "", cover.sections[name], ""]
    out += ["## Prototype", "", prototype_summary(patch_set, revision), ""]

    out += ["### What users see", ""]
    if surface.options or surface.config_keys or surface.features or surface.macros:
        out += ["| kind | name | details |", "|---|---|---|"]
        for o in surface.options:
            out.append(f"| compiler option | `{o.flag}` | `{o.type}`, {o.tracking.lower()}: {_md_cell(o.doc)} |")
        for f in surface.features:
            out.append(f"| feature gate | `#![feature({f.name})]` | {f.status}, since {f.since}"
                       f"{': ' + _md_cell(f.doc) if f.doc else ''} |")
        for m in surface.macros:
            usage = f"`#[{m.name}]`" if m.kind == "attribute" else f"`{m.name}!`" if m.kind == "function-like" \
                else f"`#[derive({m.name})]`"
            details = [f"builtin {m.kind} macro"]
            if m.feature:
                details.append(f"gated on `#![feature({m.feature})]`")
            if m.options:
                details.append("needs " + ", ".join(f"`{o}`" for o in m.options))
            out.append(f"| builtin macro | {usage} | {', '.join(details)}{': ' + _md_cell(m.doc) if m.doc else ''} |")
        for k in surface.config_keys:
            default = f", default `{k.default}`" if k.default is not None else ""
            out.append(f"| bootstrap config | `{k.key}` | `{k.type}`{default}{': ' + _md_cell(k.doc) if k.doc else ''} |")
    else:
        out.append("The series adds no compiler option and no bootstrap config key.")
    out.append("")

    out += ["### What is gated", ""]
    if surface.gates:
        for cfg, setters in sorted(surface.cfgs_set.items()):
            out.append(f"`--cfg {cfg}` is set by {', '.join(f'`{f}`' for f in setters)}.")
        kinds = sorted({k for counts in surface.gates.values() for k in counts}, key=lambda k: (not k.startswith("cfg!"), k))
        out += ["", "New lines that test a cfg or a new option, per file:", "",
                "| file | " + " | ".join(f"`{k}`" for k in kinds) + " |", "|---|" + "---|" * len(kinds)]
        for path in sorted(surface.gates):
            out.append(f"| `{path}` | " + " | ".join(str(surface.gates[path].get(k, "")) for k in kinds) + " |")
    else:
        out.append("No new line tests a cfg or a new option.")
    out.append("")

    if surface.new_files:
        out += ["### New files", ""] + [f"- `{f}`" for f in surface.new_files] + [""]

    out += ["### Diffstat per crate", "", "| crate or tree | files | + | - |", "|---|---|---|---|"]
    for series in patch_set.all_series():
        for crate, (files, added, removed) in sorted(diffstat(series.path, patches[series.path]).items()):
            out.append(f"| `{crate}` | {files} | {added} | {removed} |")
    out += ["", "### Patches", ""]
    n = 0
    for series in patch_set.apply_order() + ([patch_set.enzyme_series] if patch_set.enzyme_series else []):
        for patch in patches[series.path]:
            n += 1
            stat = diffstat(series.path, [patch])
            files = sum(v[0] for v in stat.values())
            added, removed = sum(v[1] for v in stat.values()), sum(v[2] for v in stat.values())
            where = "" if series.path == SUPERPROJECT else f" ({series.path})"
            out.append(f"{n}. {patch.subject}{where}: {files} file{'s' if files != 1 else ''}, +{added} -{removed}")
    out += ["", "### Changelog", "", changelog]
    return "\n".join(out).rstrip("\n")


def draft(ws: Workspace, set_name: str | None, out: Path | None, template: Path | None, branch: str | None,
          mails: Path | None) -> list[str]:
    """Write the draft (and the branch, the mails); returns one line per thing made."""
    patch_set = ws.inspect(set_name).patch_set if set_name is None else ws.manifest.get(set_name)
    if not patch_set.cover:
        raise BadInput(f"set {patch_set.name} has no cover letter: write one (a '# <title>' line, then sections "
                       f"{', '.join('## ' + s for s in COVER_SECTIONS)}) and name it with cover = \"...\" "
                       f"in {ws.manifest.path}")
    cover_path = patch_set.root / patch_set.cover
    try:
        cover = parse_cover(cover_path.read_text(encoding="utf-8"), str(cover_path))
    except FileNotFoundError:
        raise BadInput(f"{cover_path}: the cover letter named by set {patch_set.name} does not exist") from None
    if template is not None:
        try:
            template_text, template_label = template.read_text(encoding="utf-8"), str(template)
        except OSError as e:
            raise BadInput(f"{template}: cannot read the template ({e.strerror})") from None
    else:
        template_text, template_label = DEFAULT_TEMPLATE, "the built-in template"
    fill_template(template_text, template_label, cover.title, {n: "x" for n in FILLED})  # fail before any work
    check_outputs(ws, patch_set, branch, mails)
    names = lineage(ws.manifest, patch_set)
    out = out or default_out(names)
    last = check_revisions(out, names)
    patches = load_patches(patch_set)
    made = []
    if last and last != patch_set.name:
        made.append(f"{out}: the revisions of {last} go on with {patch_set.name}, which was rebased from it")
    with scratch_clones("mcp") as scratch:
        built = build_prototype(ws, patch_set, patches, scratch)
        sup = built.get(SUPERPROJECT)
        surface = find_surface(patches.get(SUPERPROJECT, []), lambda path: sup.repo.read(sup.head, path) if sup else None)
        out.mkdir(parents=True, exist_ok=True)
        revision, changelog = record_revision(ws, patch_set, out)
        proposal = render_proposal(patch_set, cover, surface, patches, revision, changelog)
        text = fill_template(template_text, template_label, cover.title,
                             {"Proposal": proposal, "Mentors or Reviewers": cover.sections["Mentors or Reviewers"]})
        target = out / DRAFT_NAME
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            made.append(f"wrote {target} (revision v{revision})")
        else:
            made.append(f"{target} is up to date (revision v{revision})")
        if branch:
            made += make_branch(ws, built, branch)
        if mails:
            made += write_mails(built, mails, cover, revision, prototype_summary(patch_set, revision))
    return made


def command(ws: Workspace, args) -> None:
    """`patchmgr mcp`: the draft, and with --branch / --format-patch the prototype and mails."""
    for line in draft(ws, args.set_name, args.out and args.out.resolve(), args.template, args.branch, args.mails):
        say(line)
