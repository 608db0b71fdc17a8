"""Is a patch's change already in the new upstream, in the same form or in upstream's own?

Each finding names where, so a reviewer can check it: the upstream commit
with the same patch-id, the definitions of what the patch adds (options,
config keys, feature gates, builtin macros, trait and impl methods, new
files, each as upstream has it in its own form), the commit an `Upstream:`
trailer names, or the earlier patch whose hand-made resolution already took
this change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from patchmgr.carry import TreeView, module_key, tail_score
from patchmgr.gitio import Repo
from patchmgr.hunks import FileDiff
from patchmgr.patchfile import Patch
from patchmgr.surface import (
    BUILTIN_MACROS_FILE,
    CONFIG_FIELD,
    OPTIONS_FILE,
    Block,
    Method,
    Surface,
    block_label,
    enclosing,
    find_surface,
    top_item,
)

_UPSTREAM = re.compile(r"(?mi)^Upstream:[ \t]*(\S.*?)\s*$")
_SHA = re.compile(r"(?:^|/commit/|\b)([0-9a-f]{7,40})\b")
_PR = re.compile(r"/pull/(\d+)|^#?(\d+)$")


def upstream_twin(repo: Repo, patch: Patch, old_base: str, onto: str) -> str | None:
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


PARTLY = "partly upstream"


@dataclass
class Pieces:
    """What a patch adds, split by whether the new base defines it; each found piece says where,
    and which part of the patch the upstream definition stands for."""

    found: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, what: str, where: str | None) -> None:
        if where:
            self.found.append(where)
        else:
            self.missing.append(what)

    @property
    def superseded(self) -> bool:
        return bool(self.found) and not self.missing

    def partly(self) -> str:
        """'partly upstream (...; not upstream: ...)' when some pieces are found and some not, else ''."""
        if not (self.found and self.missing):
            return ""
        return f"{PARTLY} ({'; '.join(self.found)}; not upstream: {', '.join(self.missing)})"


def upstream_pieces(patch: Patch, read_patched, tip: TreeView) -> Pieces:
    """Where the new base defines each option, config key, feature gate, builtin macro, trait
    method and new file the patch adds (or None for those it does not).

    `read_patched` reads a file as the patch leaves it (for the enclosing
    options table, config struct, trait or impl of an added line). The
    Rust definitions are looked up in one `git grep` of the new base.
    """
    surface = find_surface([patch], read_patched)
    pieces = Pieces()
    for option in surface.options:
        pieces.add(option.flag, _located(option.flag, tip, OPTIONS_FILE, rf"^\s*{re.escape(option.name)}: "))
    for key in surface.config_keys:
        leaf = key.key.rsplit(".", 1)[-1]
        files = [p for p in tip.grep(f'"{leaf}"') if p.startswith("src/bootstrap/")]
        pieces.add(key.key, next((loc for path in files
                                  if (loc := _located(key.key, tip, path, CONFIG_FIELD.pattern, leaf))), None))
    defs = _Definitions(tip, surface)
    for feature in surface.features:
        pieces.add(f"feature {feature.name}", defs.feature(feature.name))
    for macro in surface.macros:
        pieces.add(f"builtin macro {macro.name}", defs.macro(macro.name))
    for method in surface.methods:
        pieces.add(method.label, defs.method(method))
    covered = {trait for trait in surface.traits if _trait_covered(trait, surface, pieces, defs)}
    for trait in surface.traits:
        if not any(m.owner == trait and m.kind == "trait" for m in surface.methods):  # a marker trait
            pieces.add(f"trait {trait}", defs.trait(trait))
    upstream_files: set[str] = set()
    for path in sorted(surface.new_files, key=lambda p: p.count("/")):  # a module before its submodules
        where = _new_file_upstream(path, surface, tip, upstream_files)
        if where:
            upstream_files.add(path)
        elif (items := surface.file_items.get(path)) and all(i.startswith("trait ") and i[6:] in covered for i in items):
            where = f"new file {path} holds only {', '.join(items)}, found above"
        pieces.add(f"new file {path}", where)
    return pieces


def _trait_covered(trait: str, surface: Surface, pieces: Pieces, defs: _Definitions) -> bool:
    """A trait the patch defines is upstream when each of its methods is (on it or a supertrait),
    or upstream defines a trait of its name."""
    own = [m for m in surface.methods if m.owner == trait and m.kind == "trait"]
    if own:
        return all(m.label not in pieces.missing for m in own)
    return defs.trait(trait) is not None


def _new_file_upstream(path: str, surface: Surface, tip: TreeView, upstream_files: set[str]) -> str | None:
    """Where the new base has a file the patch creates: at its path; as the same module of the same
    crate (or of a directory that moved, by carry's rule of trailing path components), which
    defines one of the file's items too; or as part of a new module of the patch that upstream has."""
    if path in tip.paths:
        return f"new file {path} exists upstream"
    if (moved := _module_upstream(path, surface.file_items.get(path, []), tip)) is not None:
        return moved
    key = module_key(path)
    parent = str(PurePosixPath(key).parent)
    for module in (parent + ".rs", parent + "/mod.rs"):
        if module in upstream_files and key.endswith(".rs"):
            return f"new file {path}, a submodule of {module}, which upstream has"
    return None


def _module_upstream(path: str, items: list[str], tip: TreeView) -> str | None:
    """The one file upstream of the module's name in the same crate (or, by carry's rule, nearest the
    path), when it defines one of the items the patch's file defines."""
    name = PurePosixPath(module_key(path)).name
    if not name.endswith(".rs") or name in ("lib.rs", "main.rs", "mod.rs") or "/src/" not in path:
        return None
    crate = path[:path.index("/src/") + len("/src/")]
    same = [p for p in tip.by_name().get(name, []) if p.startswith(crate)]
    if len(same) != 1:
        scored = sorted(((tail_score(path, p), p) for p in tip.by_name().get(name, [])), reverse=True)
        same = [scored[0][1]] if scored and scored[0][0] >= 2 and (len(scored) == 1 or scored[1][0] < scored[0][0]) else []
    if not same:
        return None
    ours = {i.split(" ", 1)[1] for i in items if " " in i and i != "mod tests"}
    theirs = {i.split(" ", 1)[1] for line in (tip.text(same[0]) or "").split("\n")
              if line and not line[0].isspace() and (i := top_item(line)) and " " in i}
    shared = sorted(ours & theirs)
    if not shared:
        return None
    return f"new file {path} as {same[0]} (module {name[:-3]}, both define {', '.join(shared[:3])})"


class _Definitions:
    """The new base's Rust lines that may define the names a patch adds, from one `git grep`."""

    def __init__(self, tip: TreeView, surface: Surface):
        self.tip = tip
        needles = [f"feature = \"{f.name}\"" for f in surface.features] + [f", {f.name}," for f in surface.features]
        needles += [f"{m.name}: " for m in surface.macros] + [f"trait {t}" for t in surface.traits]
        for m in surface.methods:
            needles += [f"fn {m.name}", *_owner_needles(m)]
        self.lines: dict[str, list[tuple[int, str]]] = {}
        if not needles:
            return
        res = tip.repo.try_run("grep", "-n", "-z", "-I", "-F", "-f", "-", tip.tree, "--", "*.rs", readonly=True,
                               strip=False, input="".join(n + "\n" for n in dict.fromkeys(needles)))
        prefix = tip.tree + ":"
        for record in res.out.split("\n") if res.status == 0 else []:
            name, _, rest = record.partition("\0")
            number, _, text = rest.partition("\0")
            if name.startswith(prefix) and number.isdigit():
                self.lines.setdefault(name[len(prefix):], []).append((int(number), text))

    def _first(self, pattern: str, paths: tuple[str, ...]) -> tuple[str, int] | None:
        """(path, line) of the first line matching `pattern` in a file under one of `paths`."""
        found = re.compile(pattern)
        for path in sorted(self.lines):
            if path.startswith(paths):
                for n, text in self.lines[path]:
                    if found.search(text):
                        return path, n
        return None

    def feature(self, name: str) -> str | None:
        """A language feature's declare_features! entry, or a library feature's #[unstable] attribute."""
        if at := self._first(rf"^\s*\((?:active|unstable|incomplete|internal)\s*,\s*{name}\s*,", ("compiler/rustc_feature/",)):
            return f"feature {name} in {at[0]}:{at[1]}"
        if at := self._first(rf'#\[unstable\(.*\bfeature\s*=\s*"{name}"', ("library/",)):
            return f"feature {name} as a library feature in {at[0]}:{at[1]}"
        return None

    def macro(self, name: str) -> str | None:
        at = self._first(rf"^\s*{name}: \w+::\w+,\s*$", (BUILTIN_MACROS_FILE,))
        return f"builtin macro {name} in {at[0]}:{at[1]}" if at else None

    def trait(self, name: str) -> str | None:
        at = self._first(rf"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?trait\s+{name}\b", ("",))
        return f"trait {name} in {at[0]}:{at[1]}" if at else None

    def method(self, method: Method) -> str | None:
        """A trait's method declared in a trait of its name or in one of its supertraits; an
        impl's, in an impl block for the same type (of whichever trait)."""
        fn = re.compile(rf"\bfn\s+{method.name}\b")
        owners = _owner_needles(method)
        for path in sorted(self.lines):
            hits = [n for n, text in self.lines[path] if fn.search(text)]
            if not hits or not any(o in text for _, text in self.lines[path] for o in owners):
                continue  # only a file that also names the trait or type is read
            lines = (self.tip.text(path) or "").split("\n")
            for n in hits:
                block = enclosing(lines, n - 1) if n <= len(lines) else None
                if block is None or not _same_owner(method, block):
                    continue
                theirs = block_label(block.owner, block.trait, method.name)
                return f"{method.label}{f' as {theirs}' if theirs != method.label else ''} in {path}:{n}"
        return None


def _owner_needles(method: Method) -> list[str]:
    """What the header of a block that may hold the method has: `trait X` of the trait or a
    supertrait, `impl T`, `impl<...> T` or `for T` of the type."""
    if method.kind == "trait":
        return [f"trait {t}" for t in (method.owner, *method.supertraits)]
    return [f"for {method.owner}", f"impl {method.owner}", f"> {method.owner}"]


def _same_owner(method: Method, block: Block) -> bool:
    """Does upstream's `block` stand for the patch's: its trait or a supertrait of it, or an impl
    for the same type (of whichever trait: upstream may have put the method on another one)?"""
    if method.kind == "trait":
        return block.kind == "trait" and block.owner in (method.owner, *method.supertraits)
    return block.kind == "impl" and block.owner == method.owner


def _located(what: str, tip: TreeView, path: str, pattern: str, value: str | None = None) -> str | None:
    """'what in path:line' for the first line of the file matching `pattern` (and naming `value`)."""
    for n, line in enumerate((tip.text(path) or "").split("\n"), 1):
        m = re.match(pattern, line)
        if m and (value is None or value in m.groups()):
            return f"{what} in {path}:{n}"
    return None


def upstream_trailer(patch: Patch) -> str | None:
    """The patch's `Upstream:` trailer (a rust-lang/rust commit or PR), if it has one."""
    message = patch.text[:patch.text.find("\ndiff --git ")]
    m = _UPSTREAM.search(message)
    return m.group(1) if m else None


def trailer_in_base(repo: Repo, trailer: str, onto: str) -> str | None:
    """Where the new base's history shows the change an `Upstream:` trailer names, or None.

    A tree imported from a release has no upstream history; there the carry
    itself (every hunk already there) is the answer.
    """
    sha = _SHA.search(trailer)
    if sha and (full := repo.rev(sha.group(1) + "^{commit}")):
        ancestor = repo.try_run("merge-base", "--is-ancestor", full, onto, readonly=True).status == 0
        return f"upstream commit {full[:12]} is in the new base" if ancestor else None
    pr = _PR.search(trailer)
    if pr:
        number = pr.group(1) or pr.group(2)
        merged = repo.run("log", "-1", "--format=%h %s", "--fixed-strings", f"--grep=Auto merge of #{number} ", onto,
                          readonly=True).strip()
        return f"PR #{number} merged upstream as {merged}" if merged else None
    return None


def absorbed_by(repo: Repo, diffs: list[FileDiff], resolved: list[tuple[str, str]]) -> str | None:
    """The earlier patch (label) whose resolution by hand already added every line this patch adds.

    `resolved` is (label, commit) of each patch resolved by hand in this
    replay, oldest first: a conflict resolved by taking a later patch's lines
    too leaves that later patch nothing to do.
    """
    added = {line.strip() for fd in diffs for h in fd.hunks for line in h.after if line not in h.before and line.strip()}
    if not added:
        return None
    for label, commit in resolved:
        text = repo.run("show", "--format=", "--no-color", commit, readonly=True, strip=False)
        theirs = {line[1:].strip() for line in text.split("\n") if line.startswith("+") and not line.startswith("+++")}
        if added <= theirs:
            return label
    return None
