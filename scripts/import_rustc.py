#!/usr/bin/env python3
"""Build a git checkout of a real rustc release from Debian's source package.

The release tarball has neither .git nor src/llvm-project. This script
downloads Debian's source package through a private apt state (deb-src
entries made at run time from this machine's own apt configuration, so no
registry host is written anywhere), extracts it without owners, commits it on
a branch `upstream` with a fixed identity and date (the same commit hash on
every machine), and adds a small stand-in llvm-project repository as the
src/llvm-project submodule: bootstrap builds against the system LLVM through
llvm-config, and the stand-in only gives the Enzyme submodule a home.

    scripts/import_rustc.py --version 1.63.0 DEST

Downloads are cached (default ~/.cache/patchmgr, or $PATCHMGR_CACHE).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# version -> (source package, Debian version, upstream commit, release date)
RELEASES = {
    "1.63.0": ("rustc", "1.63.0+dfsg1-2", "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f", "2022-08-08T00:00:00+00:00"),
    "1.85.0": ("rustc-web", "1.85.0+dfsg3-1~deb12u3", "4d91de4e48198da2e33413efdcd9cd2cc0c46688", "2025-02-17T00:00:00+00:00"),
}
LLVM_URL = "https://github.com/rust-lang/llvm-project.git"
STANDIN_DATE = "2022-01-01T00:00:00+00:00"


def log(message: str) -> None:
    print(f"import_rustc: {message}", file=sys.stderr, flush=True)


def run(*args: str | Path, cwd: Path | None = None, env: dict | None = None) -> str:
    res = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"import_rustc: {' '.join(map(str, args[:4]))} failed: {(res.stderr or res.stdout).strip()[-400:]}")
    return res.stdout


def cache_dir() -> Path:
    return Path(os.environ.get("PATCHMGR_CACHE") or Path.home() / ".cache" / "patchmgr")


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


def download(package: str, version: str) -> Path:
    """The directory holding the package's .dsc and tarballs, downloaded once."""
    dl = cache_dir() / "sources" / f"{package}_{version}"
    if (dl / ".complete").exists():
        return dl
    state = cache_dir() / "apt"
    for sub in ("parts", "lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    entries = deb_src_entries()
    if not entries:
        raise SystemExit("import_rustc: no apt sources found in /etc/apt to derive deb-src entries from")
    (state / "sources.list").write_text("".join(e + "\n" for kind, e in entries if kind == "list"))
    (state / "parts" / "deb-src.sources").write_text("\n\n".join(e.strip() for kind, e in entries if kind == "sources") + "\n")
    log("apt-get update (private deb-src state)")
    run("apt-get", *apt_options(state), "update")
    dl.mkdir(parents=True, exist_ok=True)
    log(f"apt-get source --download-only {package}={version}")
    run("apt-get", *apt_options(state), "source", "--download-only", f"{package}={version}", cwd=dl)
    (dl / ".complete").write_text("")
    return dl


def fixed_env(date: str, name: str = "patchmgr import", email: str = "import@patchmgr.invalid") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email,
               GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date, GIT_CONFIG_NOSYSTEM="1")
    return env


def llvm_standin() -> tuple[Path, str]:
    """A tiny repository standing in for rust-lang/llvm-project (same commit on every machine)."""
    repo = cache_dir() / "llvm-project-standin.git"
    env = fixed_env(STANDIN_DATE)
    if not (repo / "HEAD").exists():
        work = cache_dir() / "llvm-project-standin.work"
        shutil.rmtree(work, ignore_errors=True)
        (work / "llvm").mkdir(parents=True)
        (work / "README.md").write_text(
            "Stand-in for rust-lang/llvm-project. The real-tree checkout builds against the system LLVM\n"
            "(llvm-config); this repository only gives the Enzyme submodule its place in the tree.\n")
        (work / "llvm" / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.13.4)\nproject(LLVM)\n")
        run("git", "init", "-q", "-b", "main", work, env=env)
        run("git", "add", "-A", cwd=work, env=env)
        run("git", "commit", "-q", "-m", "llvm-project stand-in", cwd=work, env=env)
        run("git", "clone", "-q", "--bare", work, repo, env=env)
        shutil.rmtree(work)
    return repo, run("git", "rev-parse", "HEAD", cwd=repo, env=env).strip()


def extract(dl: Path, dest: Path) -> None:
    orig = next(dl.glob("*.orig.tar.*"))
    log(f"extracting {orig.name}")
    dest.mkdir(parents=True, exist_ok=True)
    run("tar", "--no-same-owner", "--strip-components=1", "-xf", orig, "-C", dest)


def build(version: str, dest: Path) -> str:
    if version not in RELEASES:
        raise SystemExit(f"import_rustc: no recipe for {version}; known: {', '.join(RELEASES)}")
    package, debian_version, upstream, date = RELEASES[version]
    if dest.exists() and any(dest.iterdir()):
        raise SystemExit(f"import_rustc: {dest} exists and is not empty; pick another destination")
    dl = download(package, debian_version)
    extract(dl, dest)
    found = (dest / "git-commit-hash").read_text().strip()
    if found != upstream:
        raise SystemExit(f"import_rustc: {dest}/git-commit-hash is {found}, expected {upstream}")
    standin, standin_commit = llvm_standin()
    env = fixed_env(date)
    log(f"committing {sum(1 for _ in dest.rglob('*'))} paths on branch upstream")
    run("git", "init", "-q", "-b", "upstream", dest, env=env)
    (dest / ".gitmodules").write_text(f'[submodule "src/llvm-project"]\n\tpath = src/llvm-project\n\turl = {LLVM_URL}\n')
    run("git", "add", "-A", cwd=dest, env=env)
    run("git", "update-index", "--add", "--cacheinfo", f"160000,{standin_commit},src/llvm-project", cwd=dest, env=env)
    run("git", "commit", "-q", "-m", f"Import rustc {version} source ({upstream[:12]}) from Debian's {package} {debian_version}",
        cwd=dest, env=env)
    run("git", "-c", f"url.{standin}.insteadOf={LLVM_URL}", "-c", "protocol.file.allow=always",
        "submodule", "update", "-q", "--init", "src/llvm-project", cwd=dest, env=env)
    head = run("git", "rev-parse", "HEAD", cwd=dest, env=env).strip()
    log(f"{dest}: rustc {version} at {head[:12]} (branch upstream), src/llvm-project stand-in {standin_commit[:12]}")
    return head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default="1.63.0", choices=sorted(RELEASES), help="rustc release (default 1.63.0)")
    parser.add_argument("--download-only", action="store_true", help="only fill the download cache")
    parser.add_argument("dest", type=Path, nargs="?", help="directory for the new checkout (must not exist or be empty)")
    args = parser.parse_args(argv)
    if args.download_only:
        package, debian_version, _, _ = RELEASES[args.version]
        print(download(package, debian_version))
        return 0
    if args.dest is None:
        parser.error("give a destination directory")
    build(args.version, args.dest.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
