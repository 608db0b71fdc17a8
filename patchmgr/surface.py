"""What a patch set adds that users and reviewers see, read from the patches themselves.

Pure functions over parsed patches plus a reader for the patched tree (the
enclosing `options!` table or `define_config!` struct of an added line is
not in the hunk). An MCP lists these facts; typed by hand they go stale the
first time the series changes, read from the diff they cannot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import unidiff

from patchmgr.patchfile import Patch
from patchmgr.series import SUPERPROJECT

OPTIONS_FILE = "compiler/rustc_session/src/options.rs"
#: declare_features! of the language features: active.rs before rustc 1.75, unstable.rs since
FEATURES_FILES = ("compiler/rustc_feature/src/active.rs", "compiler/rustc_feature/src/unstable.rs")
BUILTIN_MACROS_FILE = "compiler/rustc_builtin_macros/src/lib.rs"
CORE_MACROS_FILE = "library/core/src/macros/mod.rs"
EXAMPLE_CONFIGS = ("config.toml.example", "config.example.toml", "bootstrap.example.toml")
#: define_config! struct -> the config table it reads
CONFIG_TABLES = {"Build": "build", "Install": "install", "Llvm": "llvm", "Rust": "rust", "Dist": "dist",
                 "TomlTarget": "target.<triple>", "Gcc": "gcc"}

_OPTION = re.compile(r"^\s*([a-z_][a-z0-9_]*): (.+?) = \(")
CONFIG_FIELD = re.compile(r'^\s*([a-z_][a-z0-9_]*): Option<(.+)> = "([a-z0-9-]+)",\s*$')
_CFG_USE = re.compile(r"cfg!\((\w+)\)|#\[cfg\((\w+)\)\]")
#: cfgs every build has or rustc's own build sets: a patch testing them (`#[cfg(test)]` on its
#: unit tests) gates nothing the series adds
_BUILTIN_CFGS = frozenset({"test", "debug_assertions", "doc", "doctest", "unix", "windows", "miri", "bootstrap"})
_CFG_SET = re.compile(r"--cfg[= ]\"?(\w+)")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FEATURE = re.compile(r'^\s*\((active|unstable|incomplete|internal), ([a-z_][a-z0-9_]*), "([^"]+)", ')
_REGISTER = re.compile(r"^\s*(\w+): (\w+)::\w+,\s*$")
_REGISTER_BLOCK = re.compile(r"^\s*register_(attr|bang|derive)! \{")
MACRO_KINDS = {"attr": "attribute", "bang": "function-like", "derive": "derive"}

Reader = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Option:
    flag: str  # "-Z autodiff"
    name: str  # the field, "autodiff"
    type: str
    tracking: str
    doc: str


@dataclass(frozen=True)
class ConfigKey:
    key: str  # "llvm.enzyme"
    type: str
    default: str | None
    doc: str


@dataclass(frozen=True)
class Feature:
    name: str  # "autodiff": #![feature(autodiff)]
    status: str  # "active", "unstable", "incomplete" or "internal"
    since: str
    doc: str


@dataclass(frozen=True)
class BuiltinMacro:
    name: str  # "autodiff"
    kind: str  # "attribute", "function-like" or "derive"
    feature: str | None  # the feature its declaration in core is unstable under
    options: tuple[str, ...]  # new compiler options its expander reads ("-Z autodiff")
    doc: str


@dataclass(frozen=True)
class Method:
    """A `fn` a patch adds to a trait's definition or to an impl block: what other crates (a
    backend, a driver) see of a trait, where private helper functions are the patch's own."""

    name: str  # "autodiff"
    kind: str  # "trait" (declared in the trait's definition) or "impl"
    owner: str  # the trait it is declared in, or the type the impl is for
    trait: str | None  # the impl's trait (None for a trait's own declaration and an inherent impl)
    supertraits: tuple[str, ...]  # the supertraits of trait `owner`, as the patched file declares them
    path: str
    line: int

    @property
    def label(self) -> str:
        """AutoDiffMethods::autodiff, or LlvmCodegenBackend::autodiff (impl AutoDiffMethods)."""
        return block_label(self.owner, self.trait, self.name)


@dataclass(frozen=True)
class Block:
    """The trait definition or impl block around a line of Rust."""

    kind: str  # "trait" or "impl"
    owner: str  # the trait's name, or the type the impl is for
    trait: str | None  # the impl's trait
    supertraits: tuple[str, ...]
    line: int  # of its header, 1-based


@dataclass
class Surface:
    options: list[Option] = field(default_factory=list)
    config_keys: list[ConfigKey] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    macros: list[BuiltinMacro] = field(default_factory=list)
    cfgs_set: dict[str, list[str]] = field(default_factory=dict)  # cfg name -> files that set it
    gates: dict[str, dict[str, int]] = field(default_factory=dict)  # file -> {"cfg!(x)" or "-Z y": count}
    new_files: list[str] = field(default_factory=list)
    traits: list[str] = field(default_factory=list)  # traits the patches define
    methods: list[Method] = field(default_factory=list)  # in traits, and in impls of types they do not define
    #: new Rust file -> its top-level items ("trait AutoDiffMethods", "fn differentiate", "impl")
    file_items: dict[str, list[str]] = field(default_factory=dict)


def added_lines(patch: Patch) -> list[tuple[str, int, str]]:
    """(path, line number in the patched file, text) of every added line."""
    out = []
    for patched in unidiff.PatchSet(patch.diff):
        for hunk in patched:
            for line in hunk:
                if line.is_added:
                    assert line.target_line_no is not None  # unidiff numbers every added line in the target
                    out.append((patched.path, line.target_line_no, line.value.rstrip("\n")))
    return out


def find_surface(patches: list[Patch], read: Reader) -> Surface:
    """The surface of the superproject's patches; `read` gives a file of the fully patched tree."""
    surface = Surface()
    lines = [item for p in patches for item in added_lines(p)]
    cache: dict[str, list[str]] = {}

    def patched(path: str) -> list[str]:
        if path not in cache:
            cache[path] = (read(path) or "").split("\n")
        return cache[path]

    files = [f for patch in patches for f in unidiff.PatchSet(patch.diff)]
    surface.new_files = [f.path for f in files if f.is_added_file]
    examples = [f.path for f in files if f.path.endswith(EXAMPLE_CONFIGS)]
    for path, lineno, text in lines:
        if path == OPTIONS_FILE and (m := _OPTION.match(text)):
            option = _option(patched(path), m.group(1))
            if option and option not in surface.options:
                surface.options.append(option)
        elif path.startswith("src/bootstrap/") and (m := CONFIG_FIELD.match(text)):
            key = _config_key(patched(path), m, examples, patched)
            if key not in surface.config_keys:
                surface.config_keys.append(key)
        elif path in FEATURES_FILES and (m := _FEATURE.match(text)):
            doc = _doc_above(patched(path), lineno)
            surface.features.append(Feature(name=m.group(2), status=m.group(1), since=m.group(3), doc=doc))
        code = text.split("//")[0] if path.endswith(".rs") else ""  # prose that mentions --cfg sets nothing
        for name in _CFG_SET.findall(code):
            setters = surface.cfgs_set.setdefault(name, [])
            if path not in setters:
                setters.append(path)
    names = {o.name: o.flag for o in surface.options}
    for path, lineno, text in lines:
        if path == BUILTIN_MACROS_FILE and (m := _REGISTER.match(text)):
            found = _builtin_macro(m.group(1), m.group(2), lineno, names, patched)
            if found and found not in surface.macros:
                surface.macros.append(found)
    for path, _, text in lines:
        counts = surface.gates.setdefault(path, {})
        for a, b in _CFG_USE.findall(text):
            if (a or b) in _BUILTIN_CFGS:
                continue
            gate = f"cfg!({a or b})"
            counts[gate] = counts.get(gate, 0) + 1
        for name, flag in names.items():
            if re.search(rf"\.{name}\b", text):
                counts[flag] = counts.get(flag, 0) + 1
    surface.gates = {path: counts for path, counts in surface.gates.items() if counts}
    _read_items(surface, patches, lines, patched)
    return surface


_FN = re.compile(r'^(\s*)(?:pub(?:\([^)]*\))?\s+)?(?:default\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?'
                 r'(?:extern\s+"[^"]*"\s+)?fn\s+(\w+)')
_TRAIT = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?(?:auto\s+)?trait\s+(\w+)")
_IMPL = re.compile(r"^\s*(?:unsafe\s+)?impl\b")
_TYPE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|union|type)\s+(\w+)")
_TOP_ITEM = re.compile(r'^(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s+"[^"]*")\s+)*'
                       r'(fn|struct|enum|union|trait|type|mod|const|static|macro_rules!|macro)\s+(\w+)')


def _read_items(surface: Surface, patches: list[Patch], lines: list[tuple[str, int, str]],
                patched: Callable[[str], list[str]]) -> None:
    """The traits, trait and impl methods, and new files' top-level items the patches add.

    A name the same file also loses (a signature or a trait's bounds rewritten) is changed, not
    added; the methods of a type the patches define themselves go with that type.
    """
    removed: dict[str, set[str]] = {}
    for patched_file in (f for patch in patches for f in unidiff.PatchSet(patch.diff)):
        for line in (x for hunk in patched_file for x in hunk if x.is_removed):
            if m := (_FN.match(line.value) or _TRAIT.match(line.value) or _TYPE.match(line.value)):
                removed.setdefault(patched_file.path, set()).add(m.group(m.lastindex or 0))
    rust = [(path, n, text) for path, n, text in lines if path.endswith(".rs")]
    types = {m.group(1) for path, _, text in rust if (m := _TYPE.match(text)) and m.group(1) not in removed.get(path, ())}
    for path, lineno, text in rust:
        gone = removed.get(path, set())
        if (m := _TRAIT.match(text)) and m.group(1) not in gone and m.group(1) not in surface.traits:
            surface.traits.append(m.group(1))
        if path in surface.new_files and text and not text[0].isspace() and (item := top_item(text)):
            surface.file_items.setdefault(path, []).append(item)
        m = _FN.match(text)
        if not m or not m.group(1) or m.group(2) in gone:
            continue
        source = patched(path)
        index = lineno - 1 if lineno <= len(source) and source[lineno - 1] == text else \
            next((i for i, line in enumerate(source) if line == text), None)  # moved by a later patch
        block = enclosing(source, index) if index is not None else None
        if index is None or block is None or block.owner in types:
            continue
        method = Method(name=m.group(2), kind=block.kind, owner=block.owner, trait=block.trait,
                        supertraits=block.supertraits, path=path, line=index + 1)
        if method not in surface.methods:
            surface.methods.append(method)


def top_item(text: str) -> str | None:
    """A top-level Rust line's item, "fn name" or "trait Name" (or "impl"), or None (a use, a comment)."""
    if _IMPL.match(text):
        return "impl"
    m = _TOP_ITEM.match(text)
    return f"{m.group(1)} {m.group(2)}" if m else None


def block_label(owner: str, trait: str | None, name: str) -> str:
    return f"{owner}::{name}" + (f" (impl {trait})" if trait else "")


def enclosing(lines: list[str], index: int) -> Block | None:
    """The trait or impl block line `index` (0-based) is directly in, read by indentation as
    rustfmt writes it: the nearest line above it that is indented less, past an opening brace or
    a where clause on a line of its own."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    if indent == 0:
        return None
    for j in range(index - 1, -1, -1):
        text = lines[j].strip()
        if not text or text.startswith(("//", "#", "{", "where")) or len(lines[j]) - len(lines[j].lstrip()) >= indent:
            continue
        return _block(lines, j)
    return None


def _block(lines: list[str], at: int) -> Block | None:
    """The block whose header starts at line `at` (0-based), up to its opening brace."""
    header = ""
    for line in lines[at:at + 8]:
        header += " " + line.strip()
        if "{" in line:
            break
    header = header.split("{", 1)[0].strip()
    if m := _TRAIT.match(header):
        rest = _skip_generics(header[m.end():]).strip()
        bounds = re.split(r"\bwhere\b", rest[1:])[0] if rest.startswith(":") else ""
        supers = tuple(name for b in _split_top(bounds, "+") if (name := _last_segment(b)) and not b.strip().startswith("?"))
        return Block("trait", m.group(1), None, supers, at + 1)
    if m := _IMPL.match(header):
        body = re.split(r"\bwhere\b", _skip_generics(header[m.end():]))[0]
        parts = re.split(r"\s+for\s+", body, maxsplit=1)
        trait = _last_segment(parts[0].lstrip(" !")) if len(parts) == 2 else None
        owner = _last_segment(parts[-1])
        return Block("impl", owner, trait, (), at + 1) if owner else None
    return None


def _skip_generics(text: str) -> str:
    """`text` without the generic parameter list it starts with (`<T: Fn() -> U>`)."""
    text = text.lstrip()
    if not text.startswith("<"):
        return text
    depth = 0
    for i, c in enumerate(text):
        if c == "<":
            depth += 1
        elif c == ">" and text[i - 1] != "-":
            depth -= 1
            if depth == 0:
                return text[i + 1:]
    return ""


def _split_top(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside angle brackets and parentheses."""
    parts, depth, current = [], 0, ""
    for i, c in enumerate(text):
        if c in "<(":
            depth += 1
        elif c in ">)" and not (c == ">" and i and text[i - 1] == "-"):
            depth -= 1
        if c == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += c
    return [*parts, current]


def _last_segment(path: str) -> str:
    """The name a type or trait path ends in: `&'a mut rustc_x::Foo<T>` -> Foo; "" for a lifetime."""
    while (shorter := re.sub(r"<[^<>]*>", "", path)) != path:
        path = shorter
    path = re.sub(r"^(?:&\s*(?:'\w+\s+)?|mut\s+|dyn\s+|\?)+", "", path.strip())
    m = re.search(r"(\w+)\s*$", path.split("::")[-1])
    return m.group(1) if m and not path.startswith("'") else ""


def _doc_above(lines: list[str], lineno: int) -> str:
    """The `///` doc comment right above line `lineno` (1-based), joined."""
    doc: list[str] = []
    i = lineno - 2
    while i >= 0 and (lines[i].strip().startswith("///") or lines[i].strip().startswith("#[")):
        if lines[i].strip().startswith("///"):
            doc.insert(0, lines[i].strip()[3:].strip())
        i -= 1
    return " ".join(doc)


def _builtin_macro(name: str, module: str, lineno: int, options: dict[str, str],
                   patched: Callable[[str], list[str]]) -> BuiltinMacro | None:
    """A macro registered in rustc_builtin_macros: its kind, the feature of its declaration in
    core (`#[unstable(feature = ...)]` above `pub macro NAME`), the new options its expander reads."""
    lib = patched(BUILTIN_MACROS_FILE)
    kind = next((MACRO_KINDS[b.group(1)] for line in reversed(lib[:lineno - 1])
                 if (b := _REGISTER_BLOCK.match(line))), None)
    if kind is None:
        return None
    feature, doc = None, ""
    core = patched(CORE_MACROS_FILE)
    at = next((i for i, line in enumerate(core) if re.match(rf"^\s*pub macro {name}\b", line)), None)
    if at is not None:
        attrs: list[str] = []
        i = at - 1
        while i >= 0 and core[i].strip() and not core[i].strip().endswith(("}", ";")):
            attrs.insert(0, core[i])
            i -= 1
        found = re.search(r'#\[unstable\(\s*feature = "(\w+)"', "\n".join(attrs))
        feature = found.group(1) if found else None
        doc = " ".join(a.strip()[3:].strip() for a in attrs if a.strip().startswith("///"))
    source = "\n".join(patched(f"compiler/rustc_builtin_macros/src/{module}.rs")
                       + patched(f"compiler/rustc_builtin_macros/src/{module}/mod.rs"))
    reads = tuple(flag for option, flag in options.items()
                  if re.search(rf"\.(?:debugging_opts|unstable_opts|cg)\.{option}\b", source))
    return BuiltinMacro(name=name, kind=kind, feature=feature, options=reads, doc=doc)


def _option(lines: list[str], name: str) -> Option | None:
    start = next((i for i, line in enumerate(lines) if re.match(rf"^\s*{name}: ", line)), None)
    if start is None:
        return None
    end = start
    while end < len(lines) - 1 and not lines[end].rstrip().endswith("),"):
        end += 1
    entry = re.sub(r"\\\n\s*", "", "\n".join(lines[start:end + 1]))
    m = _OPTION.match(entry)
    strings = _STRING.findall(entry)
    tracking = re.search(r"\[([A-Z_]+)\]", entry)
    prefix = "?"
    for i in range(start, -1, -1):
        if lines[i].startswith("options! {"):
            head = " ".join(lines[i:i + 4])
            found = re.search(r'"([A-Z])"', head)
            prefix = found.group(1) if found else "?"
            break
    return Option(flag=f"-{prefix} {name.replace('_', '-')}", name=name, type=m.group(2) if m else "?",
                  tracking=tracking.group(1) if tracking else "?", doc=strings[-1] if strings else "")


def _config_key(lines: list[str], m: re.Match, examples: list[str], patched: Callable[[str], list[str]]) -> ConfigKey:
    field_name, type_, key = m.groups()
    where = next((i for i, line in enumerate(lines) if line.strip() == m.group(0).strip()), 0)
    struct = next((s.group(1) for line in reversed(lines[:where]) if (s := re.match(r"^\s*struct (\w+) \{", line))), "?")
    table = CONFIG_TABLES.get(struct, struct.lower())
    default, doc = None, ""
    for example in examples:
        default, doc = _example_entry(patched(example), table, key)
        if default is not None:
            break
    return ConfigKey(key=f"{table}.{key}", type=type_, default=default, doc=doc)


def _example_entry(lines: list[str], table: str, key: str) -> tuple[str | None, str]:
    """(default, comment) of `#key = value` in the example config's [table]."""
    section = None
    for i, line in enumerate(lines):
        if s := re.match(r"^\[([^\]]+)\]", line):
            section = s.group(1)
        elif section == table and (k := re.match(rf"^#\s*{re.escape(key)} = (.*)$", line)):
            comment: list[str] = []
            j = i - 1
            while j >= 0 and lines[j].startswith("# "):
                comment.insert(0, lines[j][2:].strip())
                j -= 1
            return k.group(1).strip(), " ".join(comment)
    return None, ""


def crate_of(repo: str, path: str) -> str:
    """Where a changed file belongs, as a reviewer thinks of it: the crate, or the tree it is in."""
    parts = path.split("/")
    if repo != SUPERPROJECT:
        return repo
    if parts[0] in ("compiler", "library") and len(parts) > 2:
        return parts[1]
    if parts[:2] == ["src", "bootstrap"]:
        return "bootstrap"
    if parts[0] == "src" and len(parts) > 2:
        return "/".join(parts[:2])
    return path


def diffstat(repo: str, patches: list[Patch]) -> dict[str, list[int]]:
    """crate -> [files, added, removed]."""
    stats: dict[str, list[int]] = {}
    files: dict[str, set[str]] = {}
    for patch in patches:
        for f in unidiff.PatchSet(patch.diff):
            crate = crate_of(repo, f.path)
            entry = stats.setdefault(crate, [0, 0, 0])
            files.setdefault(crate, set()).add(f.path)
            entry[1] += f.added
            entry[2] += f.removed
    for crate, paths in files.items():
        stats[crate][0] = len(paths)
    return stats
