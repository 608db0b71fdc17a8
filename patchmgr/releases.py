"""rustc release trees from Debian's source packages, as git commits.

A release tarball has no history, so `rebase --onto 1.85.0` needs the tree
brought in as a commit first: the tarball is extracted into a scratch
directory and committed, through a private index, as a child of the old
base, so `git log old..new` and blame see one upstream step. Nothing in the
user's work tree or index is touched, and the commit is the same on every
machine (fixed identity and date). Downloads go through a private apt state
whose deb-src entries are made at run time from this machine's own apt
configuration: no registry host is written anywhere. scripts/import_rustc.py
uses the same pieces to make a whole checkout.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from patchmgr.errors import BadInput, GitFailed, ReleaseFailed
from patchmgr.gitio import Repo
from patchmgr.output import say
from patchmgr.scratch import scratch_dir

# version -> (source package, Debian version, upstream commit, release date)
RELEASES = {
    "1.63.0": ("rustc", "1.63.0+dfsg1-2", "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f", "2022-08-08T00:00:00+00:00"),
    "1.85.0": ("rustc-web", "1.85.0+dfsg3-1~deb12u3", "4d91de4e48198da2e33413efdcd9cd2cc0c46688", "2025-02-17T00:00:00+00:00"),
}

#: version -> the LLVM major of that release's own src/llvm-project (rust-lang/rust at its tag): the
#: release tarball leaves the submodule out, so the tree itself cannot say it
LLVM_MAJORS = {"1.63.0": 14, "1.85.0": 19}


def run(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> str:
    """apt-get and tar (git goes through gitio), failing as ReleaseFailed."""
    res = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise ReleaseFailed(f"{' '.join(map(str, args[:4]))} failed: {(res.stderr or res.stdout).strip()[-400:]}")
    return res.stdout


def cache_dir() -> Path:
    return Path(os.environ.get("PATCHMGR_CACHE") or Path.home() / ".cache" / "patchmgr")


def recipe(version: str) -> tuple[str, str, str, str]:
    if version not in RELEASES:
        raise BadInput(f"no Debian source recipe for rustc {version}; known: {', '.join(RELEASES)} "
                       "(or commit that tree yourself and pass --onto <revision>)")
    return RELEASES[version]


def deb_src_entries() -> list[tuple[str, str]]:
    """deb-src versions of this machine's enabled apt sources (deb822 and one-line forms)."""
    parts = []
    apt_dir = Path("/etc/apt")
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            for line in path.read_text().splitlines():
                if re.match(r"^\s*deb\s", line):
                    parts.append(("list", re.sub(r"^\s*deb\s", "deb-src ", line)))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            if re.search(r"^Types:.*\bdeb\b", stanza, re.M) and not re.search(r"^Enabled:\s*no", stanza, re.M | re.I):
                parts.append(("sources", re.sub(r"^Types:.*$", "Types: deb-src", stanza, flags=re.M)))
    return parts


def apt_options(state: Path) -> list[str]:
    return ["-o", f"Dir::Etc::sourcelist={state / 'sources.list'}", "-o", f"Dir::Etc::sourceparts={state / 'parts'}",
            "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state / 'cache'}",
            "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]


@contextmanager
def cache_lock() -> Iterator[None]:
    """One process at a time fills the download cache (two imports at once, parallel test workers)."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def download(package: str, version: str) -> Path:
    """The directory holding the package's .dsc and tarballs, downloaded once."""
    dl = cache_dir() / "sources" / f"{package}_{version}"
    if (dl / ".complete").exists():
        return dl
    with cache_lock():
        if not (dl / ".complete").exists():
            _download(package, version, dl)
    return dl


def _download(package: str, version: str, dl: Path) -> None:
    state = cache_dir() / "apt"
    for sub in ("parts", "lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    entries = deb_src_entries()
    if not entries:
        raise ReleaseFailed("no apt sources found in /etc/apt to derive deb-src entries from")
    (state / "sources.list").write_text("".join(e + "\n" for kind, e in entries if kind == "list"))
    (state / "parts" / "deb-src.sources").write_text("\n\n".join(e.strip() for kind, e in entries if kind == "sources") + "\n")
    say("apt-get update (private deb-src state)")
    run("apt-get", *apt_options(state), "update")
    dl.mkdir(parents=True, exist_ok=True)
    say(f"apt-get source --download-only {package}={version}")
    run("apt-get", *apt_options(state), "source", "--download-only", f"{package}={version}", cwd=dl)
    (dl / ".complete").write_text("")


def fixed_env(date: str, name: str = "patchmgr import", email: str = "import@patchmgr.invalid") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email,
               GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date, GIT_CONFIG_NOSYSTEM="1")
    return env


def extract(dl: Path, dest: Path) -> None:
    orig = next(dl.glob("*.orig.tar.*"))
    say(f"extracting {orig.name}")
    dest.mkdir(parents=True, exist_ok=True)
    run("tar", "--no-same-owner", "--strip-components=1", "-xf", orig, "-C", dest)


def commit_message(version: str) -> str:
    package, debian_version, upstream, _ = recipe(version)
    return f"Import rustc {version} source ({upstream[:12]}) from Debian's {package} {debian_version}"


def commit_release(repo_path: Path, version: str, parent: str, gitlinks: dict[str, str]) -> str:
    """Commit the release tree as a child of `parent`, without touching the work tree or index.

    `gitlinks` (path -> commit) are the submodules the tarball lacks, carried
    over from the parent, with its .gitmodules.
    """
    package, debian_version, upstream, date = recipe(version)
    dl = download(package, debian_version)
    env = fixed_env(date)
    with scratch_dir("release") as tmp:
        tree = Path(tmp) / "tree"
        extract(dl, tree)
        found = (tree / "git-commit-hash").read_text().strip() if (tree / "git-commit-hash").exists() else None
        if found != upstream:
            raise ReleaseFailed(f"the {package} tarball's git-commit-hash is {found}, expected {upstream}")
        repo = Repo(repo_path)
        modules = (repo.read(parent, ".gitmodules") or "") if gitlinks else ""
        (tree / ".gitmodules").write_text(modules)
        git_env = dict(env, GIT_INDEX_FILE=str(Path(tmp) / "index"), GIT_WORK_TREE=str(tree))
        say(f"committing the rustc {version} tree on top of {parent[:12]}")
        try:
            repo.run("add", "-A", "--", ".", env=git_env)
            for path, commit in gitlinks.items():
                repo.run("update-index", "--add", "--cacheinfo", f"160000,{commit},{path}", env=git_env)
            tree_id = repo.run("write-tree", env=git_env).strip()
            return repo.run("commit-tree", tree_id, "-p", parent, "-m", commit_message(version), env=env).strip()
        except GitFailed as e:
            raise ReleaseFailed(f"committing the rustc {version} tree failed: {e}") from None
