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
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from patchmgr.errors import PatchmgrError  # noqa: E402
from patchmgr.releases import RELEASES, cache_dir, cache_lock, commit_message, download, extract, fixed_env, run  # noqa: E402,F401

LLVM_URL = "https://github.com/rust-lang/llvm-project.git"
STANDIN_DATE = "2022-01-01T00:00:00+00:00"


def log(message: str) -> None:
    print(f"import_rustc: {message}", file=sys.stderr, flush=True)


def llvm_standin() -> tuple[Path, str]:
    """A tiny repository standing in for rust-lang/llvm-project (same commit on every machine)."""
    repo = cache_dir() / "llvm-project-standin.git"
    env = fixed_env(STANDIN_DATE)
    with cache_lock():
        if not (repo / "HEAD").exists():
            _make_standin(repo, env)
    return repo, run("git", "rev-parse", "HEAD", cwd=repo, env=env).strip()


def _make_standin(repo: Path, env: dict) -> None:
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


def build(version: str, dest: Path) -> str:
    try:
        return _build(version, dest)
    except PatchmgrError as e:
        raise SystemExit(f"import_rustc: {e}") from None


def _build(version: str, dest: Path) -> str:
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
    run("git", "commit", "-q", "-m", commit_message(version), cwd=dest, env=env)
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
