#!/usr/bin/env python3
"""Prepare an imported rustc 1.63.0 tree for an offline bootstrap, as Debian does.

Debian's source package strips the tarball (submodules, bundled binaries) and
carries a quilt series that makes the stripped tree build with the system
LLVM and without network. This script, on a tree made by import_rustc.py:

1. applies Debian's quilt series (`debian/patches/series`, each `patch -p1`),
2. empties the `files` maps of the vendored crates' `.cargo-checksum.json`
   (the dfsg repack removed files they list), as `debian/prune-checksums` does,
3. lets cargo settle Cargo.lock against the vendored crates, offline (the first x.py
   run would rewrite it otherwise, and patchmgr would find the tree dirty),
4. commits all three on a branch `prepared` (fixed identity and date: the same
   commit everywhere), on top of the imported `upstream` commit.

    scripts/prepare_bootstrap.py TREE

`patchmgr apply` then writes config.toml from config.toml.in: an offline
`local-rebuild` with Debian's rustc/cargo 1.63 as stage0 and the system LLVM.

Debian packages needed for the build itself: rustc (1.63), cargo, llvm-14-dev,
libclang-common-14-dev, cmake, ninja-build.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_rustc import RELEASES, PatchmgrError, cache_dir, cache_lock, download, fixed_env, log, run  # noqa: E402

VERSION = "1.63.0"


def debian_dir() -> Path:
    package, debian_version, _, _ = RELEASES[VERSION]
    dl = download(package, debian_version)
    target = cache_dir() / "debian" / debian_version
    with cache_lock():
        if not (target / "debian" / "patches" / "series").exists():
            target.mkdir(parents=True, exist_ok=True)
            run("tar", "--no-same-owner", "-xf", next(dl.glob("*.debian.tar.*")), "-C", target)
    return target / "debian"


def quilt_series(debian: Path) -> list[Path]:
    names = [line.split()[0] for line in (debian / "patches" / "series").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return [debian / "patches" / name for name in names]


def prune_checksums(tree: Path) -> int:
    count = 0
    for path in sorted((tree / "vendor").glob("*/.cargo-checksum.json")):
        data = json.loads(path.read_text())
        if data.get("files"):
            data["files"] = {}
            path.write_text(json.dumps(data, separators=(",", ":")))
            count += 1
    return count


def resolve_lockfile(tree: Path, cargo: str = "/usr/bin/cargo") -> None:
    """Let cargo settle Cargo.lock against the vendored crates now, in the prepared commit.

    The stripped tree's lockfile still lists crates Debian removed; the first x.py run would
    rewrite it, and the tree would then count as dirty for patchmgr.
    """
    run(cargo, "--config", "source.crates-io.replace-with='vendored-sources'",
        "--config", f"source.vendored-sources.directory='{tree / 'vendor'}'",
        "metadata", "--offline", "--format-version", "1", cwd=tree)


def prepare(tree: Path) -> str:
    _, _, upstream, date = RELEASES[VERSION]
    if (tree / "git-commit-hash").read_text().strip() != upstream:
        raise SystemExit(f"prepare_bootstrap: {tree} is not a rustc {VERSION} tree")
    env = fixed_env(date, "patchmgr prepare", "prepare@patchmgr.invalid")
    if run("git", "status", "--porcelain", "--untracked-files=no", cwd=tree, env=env).strip():
        raise SystemExit(f"prepare_bootstrap: {tree} has uncommitted changes; commit or stash them first")
    debian = debian_dir()
    run("git", "checkout", "-q", "-b", "prepared", "upstream", cwd=tree, env=env)
    patches = quilt_series(debian)
    for patch in patches:
        res = subprocess.run(["patch", "-p1", "-s", "--no-backup-if-mismatch", "-i", str(patch)], cwd=tree,
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"prepare_bootstrap: Debian patch {patch.name} does not apply: {res.stdout[-300:]}")
    pruned = prune_checksums(tree)
    resolve_lockfile(tree)
    run("git", "add", "-A", cwd=tree, env=env)
    run("git", "commit", "-q", "-m", f"Debian {RELEASES[VERSION][1]}: quilt series ({len(patches)} patches), "
        f"pruned checksums ({pruned} crates)", cwd=tree, env=env)
    head = run("git", "rev-parse", "HEAD", cwd=tree, env=env).strip()
    log(f"{tree}: branch prepared at {head[:12]}: {len(patches)} Debian patches, {pruned} checksum files pruned")
    return head


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path)
    args = parser.parse_args()
    try:
        prepare(args.tree.resolve())
    except PatchmgrError as e:
        raise SystemExit(f"prepare_bootstrap: {e}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
