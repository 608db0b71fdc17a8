"""The facts a set records about its upstream base, read from the base's own tree.

A set names its base by rustc version, upstream commit and LLVM major. A new set
(import) and a rebased one (rebase) need the same three, so they are read here,
once, the same way for both: a release tree says its version and upstream
commit in `version` and `git-commit-hash`, a git checkout in `src/version`
(or a release tag) and in its own commit id; the LLVM major is in
src/llvm-project's CMake, and where that repository is a stand-in (a release
tarball has none) or not checked out, in the branch `.gitmodules` tracks for it
(`rustc/19.1-2024-12-03`). Each fact keeps where it was read, so the user sees
what was taken from the tree and can override it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from patchmgr import gitmodules
from patchmgr.base import read_tarball_ids
from patchmgr.gitio import Repo
from patchmgr.releases import LLVM_MAJORS, RELEASES
from patchmgr.series import VERSION

LLVM_PROJECT = "src/llvm-project"
#: where LLVM states its major: LLVMVersion.cmake since LLVM 18, llvm/CMakeLists.txt before
LLVM_VERSION_FILES = ("cmake/Modules/LLVMVersion.cmake", "llvm/CMakeLists.txt")
_LLVM_MAJOR = re.compile(r"set\(LLVM_VERSION_MAJOR\s+(\d+)\)")
#: rust-lang/llvm-project's branches: rustc/<major>.<minor>-<date>
_RUSTC_BRANCH = re.compile(r"^rustc/(\d+)\.\d+-")
_FULL_HASH = re.compile(r"^[0-9a-f]{40}$")
#: where a pinned repository (Enzyme) says which LLVM majors it builds against: its CI's build
#: matrices, `llvm: ["7", "8", ..., "14"]` (what follows the `]`, such as `#, "14"`, is a comment)
WORKFLOWS = ".github/workflows"
_MATRIX_LLVM = re.compile(r"^\s*llvm:\s*\[([^\]#]*)\]", re.M)


@dataclass(frozen=True)
class TreeFacts:
    """rustc version, upstream commit and LLVM major of one tree; None where the tree does not
    say. `sources` names where each fact found was read (key: rustc, commit, llvm)."""

    tree: str
    rustc: str | None
    commit: str
    llvm: int | None
    sources: dict[str, str] = field(default_factory=dict)


def read_tree_facts(superproject: Repo, commit: str, root: Path) -> TreeFacts:
    """The facts of superproject commit `commit` in the checkout at `root`."""
    sources: dict[str, str] = {}
    rustc = _rustc_version(superproject, commit, sources)
    upstream = read_tarball_ids(superproject, commit)[1]
    if upstream and _FULL_HASH.match(upstream):
        sources["commit"] = "git-commit-hash"
    else:
        upstream, sources["commit"] = commit, "the commit itself"
    llvm = _llvm_major(superproject, commit, root, sources)
    if llvm is None and rustc in LLVM_MAJORS and RELEASES[rustc][2] == upstream:
        llvm = LLVM_MAJORS[rustc]
        sources["llvm"] = f"patchmgr's table of releases (rustc {rustc}'s release tree has no {LLVM_PROJECT})"
    return TreeFacts(tree=commit, rustc=rustc, commit=upstream, llvm=llvm, sources=sources)


def _rustc_version(repo: Repo, commit: str, sources: dict[str, str]) -> str | None:
    """A release tree's `version` file, a checkout's `src/version`, else a release tag on the commit."""
    candidates = [("version", read_tarball_ids(repo, commit)[0]),
                  ("src/version", (repo.read(commit, "src/version") or "").strip() or None)]
    for name, value in candidates:
        if value and VERSION.match(value):
            sources["rustc"] = f"{name} file"
            return value
    tags = [t for t in repo.run("tag", "--points-at", commit, readonly=True).split() if VERSION.match(t)]
    if len(tags) == 1:
        sources["rustc"] = f"tag {tags[0]}"
        return tags[0]
    return None


def _llvm_major(superproject: Repo, commit: str, root: Path, sources: dict[str, str]) -> int | None:
    """From src/llvm-project's CMake at the commit the tree records for it; where that names no
    version (a stand-in) or cannot be read, from the rustc/<major>.<minor>-<date> branch .gitmodules
    tracks for it."""
    link = superproject.gitlink(commit, LLVM_PROJECT)
    if link is not None and (root / LLVM_PROJECT / ".git").exists():
        llvm = Repo(root / LLVM_PROJECT, LLVM_PROJECT)
        if llvm.rev(link) is not None:
            for name in LLVM_VERSION_FILES:
                found = _LLVM_MAJOR.search(llvm.read(link, name) or "")
                if found:
                    sources["llvm"] = f"{LLVM_PROJECT}/{name}"
                    return int(found.group(1))
    branch = gitmodules_branch(superproject, commit, LLVM_PROJECT)
    found = _RUSTC_BRANCH.match(branch or "")
    if found:
        sources["llvm"] = f"the branch .gitmodules gives {LLVM_PROJECT}, {branch}"
        return int(found.group(1))
    return None


def gitmodules_branch(repo: Repo, commit: str, path: str) -> str | None:
    """The `branch` .gitmodules in `commit` gives the submodule at `path`, read by git's own parser."""
    entry = gitmodules.read(repo, f"{commit}:.gitmodules").get(path)
    return entry.branch if entry else None


def describe(facts: TreeFacts, given: dict[str, object]) -> str:
    """One line: each fact, and whether it was given as an option or where the tree said it."""
    values = {"rustc": facts.rustc, "commit": facts.commit, "llvm": facts.llvm}
    parts = []
    for key, label in (("rustc", "rustc"), ("commit", "commit"), ("llvm", "LLVM")):
        if given.get(key) is not None:
            parts.append(f"{label} {_short(key, given[key])} (--{key})")
        elif values[key] is not None:
            parts.append(f"{label} {_short(key, values[key])} (from {facts.sources[key]})")
        else:
            parts.append(f"{label} unknown")
    return f"base read from tree {facts.tree[:12]}: " + ", ".join(parts)


def _short(key: str, value: object) -> str:
    return str(value)[:12] if key == "commit" else str(value)


def pinned_llvm_majors(repo: Repo, commit: str) -> tuple[tuple[int, ...], str]:
    """The LLVM majors the pinned repository's CI builds commit `commit` against (every `llvm:`
    list of a build matrix in its GitHub workflows, together), with the files that said so;
    ((), "") when none does. Enzyme states its support nowhere else: its CMake takes whatever
    LLVM it is given, and a release note names only what changed."""
    listing = repo.try_run("ls-tree", "--name-only", f"{commit}:{WORKFLOWS}", readonly=True)
    majors: set[int] = set()
    sources = []
    for name in sorted(listing.out.split()) if listing.status == 0 else []:
        found = [int(v) for m in _MATRIX_LLVM.finditer(repo.read(commit, f"{WORKFLOWS}/{name}") or "")
                 for v in re.findall(r"\d+", m.group(1))]
        if found:
            majors.update(found)
            sources.append(f"{WORKFLOWS}/{name}")
    return tuple(sorted(majors)), ", ".join(sources)
