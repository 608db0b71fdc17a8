"""Small real git repositories shaped like a rustc checkout, for the tests.

An upstream superproject with a src/llvm-project submodule, a local Enzyme
stand-in, a user's clone of them, and a patches/ directory made with git
format-patch. Hermetic: a private global git config redirects the manifest's
real-looking URLs to the local repositories through url.<base>.insteadOf.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENZYME_URL = "https://example.invalid/EnzymeAD/Enzyme"
LLVM_URL = "https://example.invalid/rust-lang/llvm-project"
RUST_VERSION = "1.63.0"


def git(cwd: Path, *args: str, env: dict | None = None, check: bool = True) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {res.stderr}")
    return res.stdout


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def commit_all(repo: Path, message: str, env: dict) -> str:
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD", env=env).strip()


def commit_upstream(up: Path, message: str, env: dict) -> str:
    """Commit every change in the upstream superproject but its llvm-project gitlink (no work tree there)."""
    git(up, "add", "-A", "--", ".", ":(exclude)src/llvm-project", env=env)
    git(up, "commit", "-q", "-m", message, env=env)
    return git(up, "rev-parse", "HEAD", env=env).strip()


LIB_RS = "".join(f"pub fn f{i}(x: f64) -> f64 {{\n    x * {i}.0\n}}\n\n" for i in range(12))
CMAKE = "".join(f"set(LLVM_OPTION_{i} OFF)\n" for i in range(12))


@dataclass
class World:
    tmp: Path
    env: dict
    upstream: Path  # bare-ish upstream superproject
    llvm_upstream: Path
    enzyme_upstream: Path
    enzyme_pin: str
    checkout: Path  # the user's tree
    patches: Path
    base: str  # upstream superproject commit

    def run(self, *args: str, cwd: Path | None = None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
        env = dict(self.env, **(env_extra or {}))
        return subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(self.patches), *args],
                              cwd=cwd or self.checkout, env=env, capture_output=True, text=True)

    def git(self, *args: str, repo: str = ".", check: bool = True) -> str:
        return git(self.checkout / repo, *args, env=self.env, check=check)

    @property
    def llvm(self) -> Path:
        return self.checkout / "src/llvm-project"

    def write_manifest(self, body: str) -> None:
        write(self.patches / "series.toml", body)


def hermetic_env(tmp: Path) -> dict:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    config = home / ".gitconfig"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    # the patchmgr under test is this checkout's, whatever copy pip installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                      os.environ.get("PYTHONPATH")]))
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_DATE="2022-08-08T12:00:00+00:00", GIT_COMMITTER_DATE="2022-08-08T12:00:00+00:00")
    for key, value in [("user.name", "Dev Eloper"), ("user.email", "dev@example.invalid"),
                       ("init.defaultBranch", "main"), ("protocol.file.allow", "always"),
                       ("advice.detachedHead", "false"),
                       # no background gc: its gc.log.lock would come and go under the snapshots
                       ("gc.auto", "0"), ("maintenance.auto", "false")]:
        git(tmp, "config", "--file", str(config), key, value)
    return env


def series_as_set(world: World, set_name: str, base: str, commits: list[tuple[str, list[tuple[str, str | None, str]]]],
                  work_name: str) -> None:
    """The set's superproject patches made anew as git format-patch writes them: on upstream's
    `base`, each commit (message, edits) of its edits (path, old text, new text; no old text and no
    file: the commit creates it). The manifest names them; the checkout is reset to `base`."""
    env = world.env
    work = world.tmp / work_name
    git(world.tmp, "clone", "-q", str(world.upstream), str(work), env=env)
    git(work, "checkout", "-q", base, env=env)
    git(work, "submodule", "update", "-q", "--init", env=env)
    for message, edits in commits:
        for path, old, new in edits:
            file = work / path
            if not old and not file.exists():
                write(file, new)
            else:
                assert old and old in file.read_text(), (path, old)
                file.write_text(file.read_text().replace(old, new, 1))
        commit_all(work, message, env)
    rust_dir = world.patches / set_name / "rust"
    shutil.rmtree(rust_dir)
    git(work, "format-patch", "-q", "-o", str(rust_dir), f"{base}..HEAD", env=env)
    llvm = sorted(p.name for p in (world.patches / set_name / "llvm-project").iterdir())
    world.write_manifest(manifest_text(set_name, base, world.enzyme_pin, sorted(p.name for p in rust_dir.iterdir()), llvm))
    world.git("fetch", "-q", "origin")
    world.git("reset", "-q", "--hard", base)


def manifest_text(set_name: str, commit: str, enzyme_pin: str, super_patches: list[str], llvm_patches: list[str],
                  enzyme_url: str = ENZYME_URL, enzyme_path: str | None = None) -> str:
    def quoted(names):
        return ", ".join(f'"{n}"' for n in names)
    path_line = f'path = "{enzyme_path}"\n' if enzyme_path else ""
    return f"""schema = 1

[sets."{set_name}"]
rustc = "{RUST_VERSION}"
commit = "{commit}"
llvm = 14
bootstrap = "{set_name}/config.toml.in"

[sets."{set_name}".enzyme]
url = "{enzyme_url}"
commit = "{enzyme_pin}"
{path_line}
[sets."{set_name}".repos."."]
dir = "{set_name}/rust"
patches = [{quoted(super_patches)}]

[sets."{set_name}".repos."src/llvm-project"]
dir = "{set_name}/llvm-project"
patches = [{quoted(llvm_patches)}]
"""


def build_world(tmp: Path, tarball_style: bool = False) -> World:
    env = hermetic_env(tmp)
    config = Path(env["GIT_CONFIG_GLOBAL"])

    enzyme = tmp / "enzyme-upstream"
    enzyme.mkdir()
    git(enzyme, "init", "-q", env=env)
    write(enzyme / "enzyme/CMakeLists.txt", "project(Enzyme)\n")
    pin = commit_all(enzyme, "Enzyme v0.0.24", env)
    write(enzyme / "enzyme/NEWS", "after the pin\n")
    commit_all(enzyme, "later Enzyme work", env)

    llvm_up = tmp / "llvm-upstream"
    llvm_up.mkdir()
    git(llvm_up, "init", "-q", env=env)
    write(llvm_up / "llvm/CMakeLists.txt", CMAKE)
    write(llvm_up / "llvm/lib/Passes/PassBuilder.cpp", "// pass builder\n")
    llvm_base = commit_all(llvm_up, "llvm 14", env)

    upstream = tmp / "rust-upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", env=env)
    write(upstream / "compiler/rustc_codegen_llvm/src/lib.rs", LIB_RS)
    write(upstream / "compiler/rustc_session/src/options.rs", "// options\npub struct Z;\n")
    write(upstream / "x.py", "#!/usr/bin/env python3\nprint('bootstrap')\n")
    write(upstream / "README.md", "rust\n")
    write(upstream / ".gitmodules", f'[submodule "src/llvm-project"]\n\tpath = src/llvm-project\n\turl = {LLVM_URL}\n')
    git(upstream, "add", "-A", env=env)
    git(upstream, "update-index", "--add", "--cacheinfo", f"160000,{llvm_base},src/llvm-project", env=env)
    git(upstream, "commit", "-q", "-m", "Rust 1.63.0", env=env)
    base = git(upstream, "rev-parse", "HEAD", env=env).strip()
    if tarball_style:
        # a release tree imported from a tarball: the upstream id lives in files
        upstream_id = "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f"
        write(upstream / "version", f"{RUST_VERSION} (4b91a6ea7 2022-08-08)")
        write(upstream / "git-commit-hash", upstream_id)
        git(upstream, "add", "version", "git-commit-hash", env=env)
        git(upstream, "commit", "-q", "-m", "Import rustc-1.63.0-src", env=env)
    for url, path in [(ENZYME_URL, enzyme), (LLVM_URL, llvm_up)]:
        git(tmp, "config", "--file", str(config), f"url.{path}.insteadOf", url)

    checkout = tmp / "rust"
    git(tmp, "clone", "-q", str(upstream), str(checkout), env=env)
    git(checkout, "submodule", "update", "-q", "--init", env=env)

    # the series, written as commits in a scratch clone and exported with format-patch
    work = tmp / "series-work"
    git(tmp, "clone", "-q", str(upstream), str(work), env=env)
    git(work, "submodule", "update", "-q", "--init", env=env)
    lib = work / "compiler/rustc_codegen_llvm/src/lib.rs"
    lib.write_text(lib.read_text().replace("x * 3.0", "x * 3.0 // autodiff: differentiable"))
    commit_all(work, "codegen_llvm: mark f3 differentiable\n\nThe first patch.", env)
    write(work / "compiler/rustc_codegen_ssa/src/traits/autodiff.rs", "pub trait AutoDiffMethods {}\n")
    opts = work / "compiler/rustc_session/src/options.rs"
    opts.write_text(opts.read_text() + "// -Z autodiff\n")
    commit_all(work, "Add the autodiff trait and -Z autodiff", env)
    llvm_work = work / "src/llvm-project"
    cm = llvm_work / "llvm/CMakeLists.txt"
    cm.write_text(cm.read_text().replace("LLVM_OPTION_5 OFF", "LLVM_OPTION_5 ON"))
    commit_all(llvm_work, "Build Enzyme as an external project", env)

    set_name = "autodiff-1.63.0"
    patches = tmp / "patches"
    rust_dir, llvm_dir = patches / set_name / "rust", patches / set_name / "llvm-project"
    git(work, "format-patch", "-q", "--zero-commit", "-o", str(rust_dir), f"{base if not tarball_style else 'HEAD~2'}..HEAD", env=env)
    git(llvm_work, "format-patch", "-q", "--zero-commit", "-o", str(llvm_dir), "HEAD~1..HEAD", env=env)
    # --zero-commit writes 0000...; keep real-looking mbox lines for validation
    # the autodiff set's bootstrap template, as the shipped set names it
    shutil.copy(REPO / "patches" / set_name / "config.toml.in", patches / set_name / "config.toml.in")
    commit = "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f" if tarball_style else base
    world = World(tmp, env, upstream, llvm_up, enzyme, pin, checkout, patches, commit)
    world.write_manifest(manifest_text(set_name, commit, pin, sorted(p.name for p in rust_dir.iterdir()),
                                       sorted(p.name for p in llvm_dir.iterdir())))
    return world


def amend_patch_commit(world: World, line: str) -> None:
    """Edit the last superproject patch commit (below the gitlink commit) as a user would amend it."""
    tip = world.git("rev-parse", "HEAD").strip()
    options = world.checkout / "compiler/rustc_session/src/options.rs"
    world.git("checkout", "-q", "HEAD~1")
    options.write_text(options.read_text() + line)
    world.git("add", "compiler/rustc_session/src/options.rs")
    world.git("commit", "-q", "--amend", "--no-edit")
    world.git("cherry-pick", tip)
    world.git("checkout", "-q", "-B", "patchmgr/autodiff-1.63.0")


ENZYME_PATH = "src/llvm-project/enzyme"
#: what git keeps in a git dir while an operation is stopped (wt-status.c reads the same)
OPERATION_FILES = ("rebase-apply", "rebase-merge", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "sequencer",
                   "BISECT_LOG", "BISECT_START", "AUTO_MERGE")


def snapshot(world) -> dict:
    """Everything 'exactly restored' means: refs, HEADs, index, status and every work-tree byte
    (untracked and ignored files too) of the superproject, src/llvm-project and a checked-out
    Enzyme; each git dir's stopped operation and lock files; and, outside the checkout, the
    upstream repositories and a canary file next to the checkout."""
    submodules = ["src/llvm-project"] + ([ENZYME_PATH] if (world.checkout / ENZYME_PATH / ".git").exists() else [])
    snap = tree_snapshot(world.checkout, submodules, world.env)
    env = dict(world.env, GIT_OPTIONAL_LOCKS="0")
    for name, path in [("upstream", world.upstream), ("llvm-upstream", world.llvm_upstream),
                       ("enzyme-upstream", world.enzyme_upstream)]:
        snap[name] = git(path, "for-each-ref", "--format=%(refname) %(objectname)", env=env) + \
            git(path, "status", "--porcelain", "-uall", "--ignored", env=env)
    outside = world.tmp / "outside"  # where a path escaping the checkout (../outside/...) would land
    if not outside.exists():
        write(outside / "canary.txt", "outside the checkout\n")
    snap["outside"] = sorted((str(p.relative_to(outside)), p.read_bytes() if p.is_file() else b"") for p in outside.rglob("*"))
    return snap


def _git_dir_state(git_dir: Path) -> dict:
    """The stopped operation (its files' bytes), every lock file, and patchmgr's own state files in a git dir."""
    state = {}
    for p in sorted((git_dir / "patchmgr").glob("*")):
        if p.name == "bases.json":
            continue  # patchmgr's memory of where each set was applied, meant to outlive unapply and abort
        state[f"patchmgr/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    for name in OPERATION_FILES:
        p = git_dir / name
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    state[str(f.relative_to(git_dir))] = hashlib.sha256(f.read_bytes()).hexdigest()
        elif p.exists():
            state[name] = hashlib.sha256(p.read_bytes()).hexdigest()
    for lock in sorted(git_dir.rglob("*.lock")):
        if lock.name == "patchmgr.lock":
            continue  # patchmgr's own, left by a killed run and taken over by the next: asserted on its own
        if "objects" not in lock.relative_to(git_dir).parts and "modules" not in lock.relative_to(git_dir).parts:
            state[str(lock.relative_to(git_dir))] = "lock"
    return state


def tree_snapshot(root: Path, submodules: list[str], env: dict) -> dict:
    snap = {}
    env = dict(env, GIT_OPTIONAL_LOCKS="0")
    for label in [".", *submodules]:
        path = root / label
        snap[label] = {
            "refs": git(path, "for-each-ref", "--format=%(refname) %(objectname)", env=env),
            "head": git(path, "rev-parse", "HEAD", env=env),
            "symbolic": git(path, "symbolic-ref", "-q", "HEAD", env=env, check=False),
            "index": git(path, "ls-files", "-s", env=env),
            "status": git(path, "status", "--porcelain=v1", "-uall", "--ignored", env=env),
            "git-dir": _git_dir_state(Path(git(path, "rev-parse", "--absolute-git-dir", env=env).strip())),
        }
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        rel = os.path.relpath(dirpath, root)
        files[rel + "/"] = "dir"
        for name in filenames:
            p = Path(dirpath) / name
            if name == ".git":
                files[os.path.join(rel, name)] = p.read_text() if p.is_file() else "gitdir"
                continue
            if p.is_symlink():
                files[os.path.join(rel, name)] = ("link", os.readlink(p))
                continue
            files[os.path.join(rel, name)] = (oct(p.lstat().st_mode), hashlib.sha256(p.read_bytes()).hexdigest())
    snap["files"] = files
    return snap


def mtimes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.lstat().st_mtime_ns
    return out
