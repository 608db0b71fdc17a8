"""The thin layer that runs git.

Every git call in patchmgr goes through `Repo.run`: an argument list for
subprocess, never a shell, so strings from patches or manifests can only ever
be single arguments. Git runs in the C locale, because rebase reads what git am
says. Read-only calls run with optional locks off, so that looking at a tree
(status, no-op apply) never rewrites its index. (No git library: importing one
cost every command a tenth of a second, and an argument list is all it gave.)
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchmgr.errors import GitFailed, WrongState

#: commits patchmgr makes itself (the Enzyme submodule, gitlinks) carry this
#: identity and the base commit's date, so re-applying gives the same hashes.
TOOL_IDENT = ("patchmgr", "patchmgr@localhost")


@dataclass
class Result:
    status: int
    out: str
    err: str


class Repo:
    def __init__(self, path: Path | str, label: str = "."):
        self.path = Path(path)
        self.label = label  # how messages name it: "." or "src/llvm-project"

    def __repr__(self):
        return f"Repo({self.label!r})"

    def _env(self, env: dict | None, readonly: bool) -> dict:
        full = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **(env or {})}
        if readonly:
            full["GIT_OPTIONAL_LOCKS"] = "0"
        return full

    def _spawn(self, args: tuple, **kw) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["git", *args], cwd=self.path, **kw)
        except FileNotFoundError as e:
            if e.filename == "git":
                raise GitFailed("git is not installed or not on PATH; install git (apt-get install git)") from None
            raise WrongState(f"{self.path} does not exist; is the checkout complete?") from None

    def try_run(self, *args: str, input: str | bytes | None = None, env: dict | None = None,
                readonly: bool = False, strip: bool = True) -> Result:
        # surrogateescape both ways: output that is not UTF-8 goes back to git as the same bytes
        data = input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input
        proc = self._spawn(args, env=self._env(env, readonly), capture_output=True,
                           **({"input": data} if data is not None else {"stdin": subprocess.DEVNULL}))
        out = proc.stdout.decode("utf-8", "surrogateescape")
        if strip and out.endswith("\n"):
            out = out[:-1]
        return Result(proc.returncode, out, proc.stderr.decode("utf-8", "surrogateescape"))

    def run(self, *args: str, **kw) -> str:
        res = self.try_run(*args, **kw)
        if res.status != 0:
            detail = (res.err or res.out).strip().splitlines()
            first = next((line for line in detail if line.startswith(("fatal:", "error:"))), detail[-1] if detail else None)
            command = next((a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "-c")), "")
            raise GitFailed(f"git {command} failed in {self.label}: {first or 'exit ' + str(res.status)}")
        return res.out

    def stream(self, *args: str, env: dict | None = None) -> int:
        """Run with git's stderr (progress) going straight to ours."""
        return self._spawn(args, env=self._env(env, False), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL).returncode

    # --- queries --------------------------------------------------------
    def rev(self, rev: str) -> str | None:
        res = self.try_run("rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}", readonly=True)
        return res.out.strip() if res.status == 0 else None

    def head(self) -> str:
        sha = self.rev("HEAD")
        if sha is None:
            raise WrongState(f"{self.label} has no commits; patchmgr needs a checkout with history")
        return sha

    def branch(self) -> str | None:
        """The checked-out branch's full ref, or None when HEAD is detached."""
        res = self.try_run("symbolic-ref", "--quiet", "HEAD", readonly=True)
        return res.out.strip() if res.status == 0 else None

    def git_dir(self) -> Path:
        return Path(self.run("rev-parse", "--absolute-git-dir", readonly=True).strip())

    def dirty_files(self) -> list[str]:
        """Tracked files with uncommitted changes (index or work tree).

        A submodule counts when it is checked out at another commit than the
        one recorded; changes inside it are its own repository's to report.
        """
        out = self.run("status", "--porcelain=v2", "-z", "--untracked-files=no", "--ignore-submodules=none",
                       readonly=True, strip=False)
        files = []
        entries = iter(out.split("\0"))
        for entry in entries:
            if not entry:
                continue
            kind, fields = entry[0], entry.split(" ")
            if kind == "1":
                sub, path = fields[2], entry.split(" ", 8)[8]
            elif kind == "2":
                sub, path = fields[2], entry.split(" ", 9)[9]
                next(entries, None)  # the rename's source path
            elif kind == "u":
                sub, path = fields[2], entry.split(" ", 10)[10]
            else:
                continue
            if sub.startswith("S") and sub[1] != "C":
                continue
            files.append(path + (" (checked out at another commit than recorded)" if sub.startswith("S") else ""))
        return files

    def commits(self, range_: str, newest: int | None = None) -> list[tuple[str, str]]:
        """(sha, full message) for each commit in range, first parent only: all of them oldest
        first, or with `newest` only that many, newest first."""
        order = ["--reverse"] if newest is None else [f"-n{newest}"]
        out = self.run("log", "--first-parent", *order, "--format=%H%x00%B%x00", range_, "--", readonly=True, strip=False)
        items = out.split("\0")
        return [(items[i].strip(), items[i + 1]) for i in range(0, len(items) - 1, 2)]

    def ref_exists(self, ref: str) -> bool:
        return self.try_run("show-ref", "--verify", "--quiet", ref, readonly=True).status == 0

    def gitlink(self, commit: str, path: str) -> str | None:
        """The commit a submodule path records in `commit`'s tree."""
        out = self.run("ls-tree", "-z", commit, "--", path, readonly=True, strip=False)
        for entry in out.split("\0"):
            meta, _, name = entry.partition("\t")
            if name == path and meta.startswith("160000 commit "):
                return meta.split()[2]
        return None

    def patch_ids(self, commits: list[str]) -> dict[str, str]:
        """commit -> stable patch-id, in one `git patch-id` run."""
        if not commits:
            return {}
        diffs = self.run("show", "--format=commit %H", "--no-color", "--no-ext-diff", "-p", *commits,
                         readonly=True, strip=False)
        return {c: p for p, c in _parse_patch_ids(self.run("patch-id", "--stable", input=diffs, readonly=True))}

    def patch_ids_of_diffs(self, diffs: list[str]) -> list[str | None]:
        """Stable patch-id of each diff text, in one `git patch-id` run."""
        if not diffs:
            return []
        text = "".join(f"commit {i + 1:040x}\n{d}" for i, d in enumerate(diffs))
        by_index = {int(c, 16) - 1: p for p, c in _parse_patch_ids(self.run("patch-id", "--stable", input=text, readonly=True))}
        return [by_index.get(i) for i in range(len(diffs))]


def _parse_patch_ids(out: str) -> list[tuple[str, str]]:
    return [tuple(line.split()[:2]) for line in out.splitlines() if line.strip()]


def identity_env(repo: Repo) -> dict[str, str]:
    """Committer identity for git am when the user has none configured (CI, fresh machines)."""
    env = {}
    if repo.try_run("config", "user.name", readonly=True).status != 0 and "GIT_COMMITTER_NAME" not in os.environ:
        env["GIT_COMMITTER_NAME"] = TOOL_IDENT[0]
    if repo.try_run("config", "user.email", readonly=True).status != 0 and "GIT_COMMITTER_EMAIL" not in os.environ:
        env["GIT_COMMITTER_EMAIL"] = TOOL_IDENT[1]
    return env


def tool_commit_env(date: str) -> dict[str, str]:
    name, email = TOOL_IDENT
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date}
