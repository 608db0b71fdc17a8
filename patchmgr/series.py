"""The manifest: which patch sets exist, and for which upstream base.

Pure parsing and validation. Every error names the manifest file and the key,
because the manifest is edited by hand and a typo must not turn into a
half-applied series.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patchmgr.errors import BadInput, UnknownBase
from patchmgr.safety import path_problem, ref_name_problem, url_problem
from patchmgr.store import read_exactly, write_atomic  # noqa: F401 (the series' readers and writers import them from here)

MANIFEST_NAME = "series.toml"
SCHEMA = 1
DEFAULT_ENZYME_PATH = "src/llvm-project/enzyme"
SUPERPROJECT = "."
#: a ref is a file under .git/refs, and git locks it as <name>.lock
MAX_SET_NAME_BYTES = 250

_FULL_HASH = re.compile(r"^[0-9a-f]{40}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: what set names and rustc versions look like (manifest keys, rebase arguments); a set
#: name is also the branch refs/heads/patchmgr/<name>, so git's ref rules hold too
#: (no '..', no trailing '.', no '.lock' at the end: see safety.ref_name_problem)
SET_NAME = re.compile(r"^(?!.*\.\.)(?!.*\.lock$)[A-Za-z0-9][A-Za-z0-9._-]*(?<!\.)$")
VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?$")
_PATCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.patch$")


@dataclass(frozen=True)
class RepoSeries:
    """The ordered patches for one repository of the checkout."""

    path: str  # "." or a submodule path such as "src/llvm-project"
    dir: str  # relative to the patches directory
    patches: tuple[str, ...]


@dataclass(frozen=True)
class EnzymePin:
    url: str
    commit: str
    path: str
    llvm: tuple[int, ...] = ()  # LLVM majors the pinned commit builds against; empty: not stated


@dataclass(frozen=True)
class PatchSet:
    name: str
    rustc: str
    commit: str
    llvm: int
    repos: tuple[RepoSeries, ...]
    enzyme: EnzymePin | None
    cover: str | None
    root: Path  # the patches directory
    bootstrap: str | None = None  # the bootstrap config template, relative to the patches directory
    #: the patches for the Enzyme checkout itself (the manifest's repos entry at enzyme.path),
    #: applied on the pinned commit after the clone; not in `repos`, which are the upstream
    #: tree's repositories, there before apply
    enzyme_series: RepoSeries | None = None
    #: the manifest's `from`: the set this one was made from by patchmgr rebase, so what follows a
    #: set across rebases (mcp's revisions) knows its history; None for a set made any other way
    from_set: str | None = None

    def bootstrap_template(self) -> Path | None:
        """The template apply renders into the tree's config.toml; None: the set leaves it alone."""
        return self.root / self.bootstrap if self.bootstrap else None

    def repo(self, path: str) -> RepoSeries | None:
        return next((r for r in self.all_series() if r.path == path), None)

    def all_series(self) -> tuple[RepoSeries, ...]:
        """Every repository's patches: the tree's repositories, then Enzyme's if it has any."""
        return self.repos + ((self.enzyme_series,) if self.enzyme_series else ())

    def patch_file(self, repo: RepoSeries, name: str) -> Path:
        return self.root / repo.dir / name

    def patch_label(self, repo: RepoSeries, name: str) -> str:
        """How commits and messages name a patch: its path under patches/."""
        return f"{repo.dir}/{name}"

    def apply_order(self) -> list[RepoSeries]:
        """Submodules before the superproject, deepest first.

        The superproject's last commit records the submodules' new commits,
        so they have to exist first.
        """
        return sorted(self.repos, key=lambda r: (r.path == SUPERPROJECT, -r.path.count("/")))

    def enzyme_owner(self) -> str | None:
        """The repository the Enzyme submodule is added to: the deepest one containing its path."""
        if self.enzyme is None:
            return None
        owners = [r.path for r in self.repos if r.path == SUPERPROJECT or self.enzyme.path.startswith(r.path + "/")]
        return max(owners, key=lambda p: (p != SUPERPROJECT, p.count("/")), default=SUPERPROJECT)


@dataclass(frozen=True)
class Manifest:
    path: Path
    sets: dict[str, PatchSet]

    def get(self, name: str) -> PatchSet:
        if name not in self.sets:
            raise UnknownBase(f"no patch set named {_clip(name, 100)!r} in {self.path}; {self.suggest(name)}")
        return self.sets[name]

    def suggest(self, name: str) -> str:
        """'did you mean ...' with the names close to a mistyped one (difflib), else every set."""
        close = difflib.get_close_matches(name, list(self.sets), n=3, cutoff=0.6)
        if close:
            return f"did you mean {' or '.join(close)}?"
        return f"known sets: {', '.join(sorted(self.sets)) or 'none'}"



class _Where:
    """Carries file name and key path for error messages."""

    def __init__(self, file: Path, key: str = ""):
        self.file, self.key = file, key

    def __truediv__(self, key: str) -> _Where:
        return _Where(self.file, f"{self.key}.{key}" if self.key else key)

    def fail(self, problem: str) -> BadInput:
        # keys are the manifest author's text: escape control characters (a
        # newline would break the one-line error, an escape sequence the terminal)
        key = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", self.key)
        if len(key) > 300:
            key = key[:300] + "..."
        return BadInput(f"{self.file}: key '{key}' {problem}")


def _table(value, where: _Where, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(value, dict):
        raise where.fail("must be a table")
    for key in value:
        if key not in allowed:
            raise (where / key).fail(f"is not a known key (expected one of: {', '.join(sorted(allowed))})")
    for key in sorted(required):
        if key not in value:
            raise (where / key).fail("is missing")
    return value


def _string(value, where: _Where) -> str:
    if not isinstance(value, str):
        raise where.fail("must be a string")
    return value


def _hash(value, where: _Where) -> str:
    value = _string(value, where)
    if not _FULL_HASH.match(value):
        raise where.fail(f"must be a full 40-character lowercase commit hash, not {value!r}")
    return value


def _relpath(value, where: _Where) -> str:
    value = _string(value, where)
    problem = path_problem(value)
    if problem:
        raise where.fail(f"path {_clip(value)!r} {problem}")
    return value


def _clip(text: str, limit: int = 200) -> str:
    """A long value shortened for a one-line message."""
    return text if len(text) <= limit else text[:limit] + "..."


def _integer(value, where: _Where, low: int, high: int, what: str) -> int:
    """A TOML integer, exactly: `true` and `1.0` compare equal to 1 in Python but are not numbers here."""
    if type(value) is not int or not low <= value <= high:
        raise where.fail(f"must be {what}, not {value!r}")
    return value


def set_name_problem(name: str) -> str | None:
    """Why `name` cannot name a set (it becomes the branch refs/heads/patchmgr/<name>), or None."""
    problem = ref_name_problem(name)
    if problem:
        return f"{problem}, which git refuses in the branch name patchmgr/<set>"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_SET_NAME_BYTES:
        return f"is longer than {MAX_SET_NAME_BYTES} bytes, too long for the branch's file name"
    if not SET_NAME.match(name):
        return "must start with a letter or digit and hold only letters, digits, '.', '_', '-'"
    return None


def _parse_repo(path: str, value, where: _Where) -> RepoSeries:
    if path != SUPERPROJECT:
        problem = path_problem(path)
        if problem:
            raise where.fail(f"repository path {_clip(path)!r} {problem}")
    table = _table(value, where, {"dir", "patches"}, {"dir", "patches"})
    directory = _relpath(table["dir"], where / "dir")
    patches = table["patches"]
    if not isinstance(patches, list):
        raise (where / "patches").fail("must be a list of patch file names")
    seen: set[str] = set()
    for name in patches:
        if not isinstance(name, str) or not _PATCH_NAME.match(name):
            raise (where / "patches").fail(f"entry {name!r} must be a plain file name ending in .patch")
        problem = path_problem(f"{directory}/{name}")
        if problem:
            raise (where / "patches").fail(f"entry {_clip(name)!r}: its path {problem}")
        if name in seen:
            raise (where / "patches").fail(f"lists {name!r} twice")
        seen.add(name)
    return RepoSeries(path=path, dir=directory, patches=tuple(patches))


def _parse_set(name: str, value, where: _Where, root: Path) -> PatchSet:
    problem = set_name_problem(name)
    if problem:
        raise where.fail(f"is not a valid set name: it {problem}")
    table = _table(value, where, {"rustc", "commit", "llvm", "repos", "enzyme", "cover", "bootstrap", "from"},
                   {"rustc", "commit", "llvm", "repos"})
    rustc = _string(table["rustc"], where / "rustc")
    if not VERSION.match(rustc):
        raise (where / "rustc").fail(f"must be a version such as 1.63.0, not {rustc!r}")
    llvm = _integer(table["llvm"], where / "llvm", 3, 99, "an LLVM major version number such as 14")
    repos_value = table["repos"]
    repos_table = _table(repos_value, where / "repos", set(repos_value) if isinstance(repos_value, dict) else set(), set())
    if not repos_table:
        raise (where / "repos").fail("must list at least one repository")
    repos = tuple(_parse_repo(path, repo, where / "repos" / f'"{path}"') for path, repo in repos_table.items())
    enzyme = None
    if "enzyme" in table:
        ew = where / "enzyme"
        et = _table(table["enzyme"], ew, {"url", "commit", "path", "llvm"}, {"url", "commit"})
        url = _string(et["url"], ew / "url")
        problem = url_problem(url)
        if problem:
            raise (ew / "url").fail(f"URL {url!r} {problem}")
        enzyme = EnzymePin(url=url, commit=_hash(et["commit"], ew / "commit"),
                           path=_relpath(et.get("path", DEFAULT_ENZYME_PATH), ew / "path"),
                           llvm=_llvm_majors(et.get("llvm", []), ew / "llvm"))
        for repo in repos:
            if repo.path != SUPERPROJECT and repo.path.startswith(enzyme.path + "/"):
                raise (ew / "path").fail(f"{enzyme.path!r} collides with repository {repo.path!r}, which Enzyme's "
                                         "checkout would hold; give Enzyme a path of its own (the default is "
                                         f"{DEFAULT_ENZYME_PATH})")
    # a repository at the Enzyme path is Enzyme's own patches, on the pinned commit
    enzyme_series = next((r for r in repos if enzyme and r.path == enzyme.path), None)
    repos = tuple(r for r in repos if r is not enzyme_series)
    if not repos:
        raise (where / "repos").fail("must list a repository of the tree besides Enzyme's")
    cover = _relpath(table["cover"], where / "cover") if "cover" in table else None
    bootstrap = _relpath(table["bootstrap"], where / "bootstrap") if "bootstrap" in table else None
    return PatchSet(name=name, rustc=rustc, commit=_hash(table["commit"], where / "commit"), llvm=llvm,
                    repos=repos, enzyme=enzyme, cover=cover, root=root, bootstrap=bootstrap,
                    enzyme_series=enzyme_series, from_set=_from_set(table, where))


def _from_set(table: dict, where: _Where) -> str | None:
    """`from = "NAME"`: the set this one was rebased from (it need not be declared any more)."""
    if "from" not in table:
        return None
    name = _string(table["from"], where / "from")
    problem = set_name_problem(name)
    if problem:
        raise (where / "from").fail(f"is not a valid set name: it {problem}")
    return name


def _llvm_majors(value, where: _Where) -> tuple[int, ...]:
    """enzyme.llvm: the LLVM majors the pinned Enzyme builds against, e.g. [13]."""
    if not isinstance(value, list):
        raise where.fail("must be a list of LLVM major version numbers such as [13]")
    majors = tuple(_integer(v, where, 3, 99, "a list of LLVM major version numbers such as [13]") for v in value)
    if len(set(majors)) != len(majors):
        raise where.fail(f"lists an LLVM major twice: {list(majors)}")
    return majors


def parse_manifest(text: str, path: Path, require_sets: bool = True) -> Manifest:
    """Parse and validate manifest text; `path` names the file in errors and anchors patch dirs.
    Without `require_sets`, a manifest with no set yet (what import starts from) is fine."""
    where = _Where(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML: {e}") from None
    _table(data, where, {"schema", "sets"}, {"schema", "sets"})
    if type(data["schema"]) is not int or data["schema"] != SCHEMA:
        raise (where / "schema").fail(f"is {data['schema']!r}; this patchmgr reads schema {SCHEMA} (an integer)")
    sets_where = where / "sets"
    if not isinstance(data["sets"], dict) or (require_sets and not data["sets"]):
        raise sets_where.fail("must hold at least one patch set table")
    sets = {name: _parse_set(name, value, sets_where / name, path.parent) for name, value in data["sets"].items()}
    return Manifest(path=path, sets=sets)


def load_manifest(patches_dir: Path, require_sets: bool = True) -> Manifest:
    path = patches_dir / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no manifest here; pass --patches DIR pointing at a patches/ directory "
                       f"with {MANIFEST_NAME} (patchmgr --patches DIR import ... starts one)") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    return parse_manifest(text, path, require_sets)


@dataclass(frozen=True)
class TreePath:
    """A manifest path that names a place in the checkout, with the key errors name."""

    key: str  # as errors name it: sets.<set>.repos."src/llvm-project", sets.<set>.enzyme.path
    path: str
    kind: str  # "repo" (must be a submodule of the base tree) or "enzyme" (becomes one)


def manifest_tree_paths(patch_set: PatchSet) -> list[TreePath]:
    """The set's paths that must be checked against the base tree before apply writes there:
    every repository but the superproject, and the Enzyme path.

    Pure: the manifest alone cannot say whether `src/llvm-project` is a
    submodule or a symlink out of the checkout in the tree at hand; lint's
    check_manifest_paths asks git about exactly these.
    """
    where = f"sets.{patch_set.name}"
    paths = [TreePath(f'{where}.repos."{r.path}"', r.path, "repo") for r in patch_set.repos if r.path != SUPERPROJECT]
    if patch_set.enzyme:
        paths.append(TreePath(f"{where}.enzyme.path", patch_set.enzyme.path, "enzyme"))
    return paths


def missing_patch_files(patch_set: PatchSet) -> list[str]:
    return [patch_set.patch_label(r, n) for r in patch_set.all_series() for n in r.patches
            if not patch_set.patch_file(r, n).is_file()]


def nearest_sets(manifest: Manifest, version: str | None) -> str:
    """A hint naming the known sets, the nearest version first, for unknown-base errors."""
    def distance(s: PatchSet) -> tuple:
        if not version or not VERSION.match(version):
            return (0,)
        want = [int(x) for x in version.split("-")[0].split(".")]
        have = [int(x) for x in s.rustc.split("-")[0].split(".")]
        return tuple(abs(a - b) for a, b in zip(want, have))
    ordered = sorted(manifest.sets.values(), key=lambda s: (distance(s), s.name))
    listing = ", ".join(f"{s.name} (rustc {s.rustc}, {s.commit[:12]})" for s in ordered)
    return f"nearest: {ordered[0].name}; known sets: {listing}" if ordered else "no sets are known"


def patch_list(names: Sequence[str]):
    """A `patches = [...]` array (tomlkit) as every writer of the manifest spells it: one file
    per line, so a diff of the manifest shows each patch added or removed on its own line."""
    import tomlkit

    array = tomlkit.array()
    array.extend(names)
    array.multiline(bool(names))
    return array


def set_table(patch_set: PatchSet, cover: bool = True):
    """The manifest table of a set (tomlkit), as rebase writes a new set and mcp records a revision."""
    import tomlkit

    table = tomlkit.table()
    table["rustc"], table["commit"], table["llvm"] = patch_set.rustc, patch_set.commit, patch_set.llvm
    if patch_set.from_set:
        table["from"] = patch_set.from_set
    if cover and patch_set.cover:
        table["cover"] = patch_set.cover
    if patch_set.bootstrap:
        table["bootstrap"] = patch_set.bootstrap
    if patch_set.enzyme:
        enzyme = tomlkit.table()
        enzyme["url"], enzyme["commit"], enzyme["path"] = patch_set.enzyme.url, patch_set.enzyme.commit, patch_set.enzyme.path
        if patch_set.enzyme.llvm:
            enzyme["llvm"] = list(patch_set.enzyme.llvm)
        table["enzyme"] = enzyme
    repos = tomlkit.table(is_super_table=True)
    for series in patch_set.all_series():
        entry = tomlkit.table()
        entry["dir"] = series.dir
        entry["patches"] = patch_list(series.patches)
        repos[series.path] = entry
    table["repos"] = repos
    return table
