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
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from patchmgr import scratch
from patchmgr.errors import GitFailed, WrongState
from patchmgr.output import trace, verbose

#: commits patchmgr makes itself (the Enzyme submodule, gitlinks) carry this
#: identity and the base commit's date, so re-applying gives the same hashes.
TOOL_IDENT = ("patchmgr", "patchmgr@localhost")


#: marker file or directory in a git dir -> the operation it means, as `git status` names them
_OPERATIONS = (("rebase-apply/applying", "a git am"), ("rebase-apply", "a git rebase (or am)"),
               ("rebase-merge", "a git rebase"), ("MERGE_HEAD", "a git merge"),
               ("CHERRY_PICK_HEAD", "a git cherry-pick"), ("REVERT_HEAD", "a git revert"),
               ("sequencer", "a git cherry-pick or revert sequence"), ("BISECT_START", "a git bisect"),
               ("BISECT_LOG", "a git bisect"))
#: lock files a git command holds in a git dir, besides those of refs
GIT_LOCKS = ("index.lock", "HEAD.lock", "packed-refs.lock", "config.lock", "ORIG_HEAD.lock", "REBASE_HEAD.lock",
             "AUTO_MERGE.lock", "MERGE_HEAD.lock", "CHERRY_PICK_HEAD.lock", "FETCH_HEAD.lock", "shallow.lock")


#: the entries of `git ls-files -v -z` whose tag says a flag hides the file from git status: lower
#: case is --assume-unchanged, S (or s, with both) --skip-worktree
_FLAGGED = re.compile(r"(?:^|\0)([a-zS]) ([^\0]+)")
#: one entry of `git ls-files --debug -z`: the path, then the stat data the index keeps for it
_DEBUG_ENTRY = re.compile(r"(?P<path>[^\0]+)\0  ctime: (?P<ctime>\d+):\d+\n  mtime: (?P<mtime>\d+):\d+\n"
                          r"  dev: \d+\tino: (?P<ino>\d+)\n  uid: (?P<uid>\d+)\tgid: (?P<gid>\d+)\n"
                          r"  size: (?P<size>\d+)\tflags: [0-9a-f]+\n")
#: git commands that make, read or compare the series' patches and commits: they run in a
#: known configuration, so a user's diff.noprefix, format.signOff, rerere.enabled or
#: commit.gpgSign cannot change what patchmgr writes or reads
PATCH_COMMANDS = frozenset({"am", "apply", "format-patch", "range-diff", "patch-id", "diff", "diff-tree", "show",
                            "log", "blame", "commit", "commit-tree", "mailinfo", "merge-tree", "merge-file", "grep"})
#: ... that configuration: git's defaults, spelled out where a repository's own config could differ
PATCH_CONFIG = (
    "diff.noprefix=false", "diff.mnemonicPrefix=false", "diff.relative=false", "diff.renames=true",
    "diff.algorithm=myers", "diff.context=3", "diff.interHunkContext=0", "diff.indentHeuristic=true",
    "diff.suppressBlankEmpty=false", "color.ui=false",
    "core.quotePath=true", "core.autocrlf=false", "core.safecrlf=false", "core.commentChar=#",
    "format.signOff=false", "format.signature=", "format.numbered=auto",
    "format.coverLetter=false", "format.useAutoBase=false", "format.forceInBodyFrom=false", "format.thread=false",
    "format.suffix=.patch", "format.encodeEmailHeaders=true", "format.coverFromDescription=message",
    "am.threeWay=false", "am.keepcr=false", "am.messageId=false", "apply.whitespace=warn", "rerere.enabled=false",
    "rerere.autoUpdate=false", "merge.renames=true", "merge.directoryRenames=true", "merge.conflictStyle=merge",
    "grep.patternType=fixed", "grep.fullName=true", "commit.gpgSign=false", "log.showSignature=false", "log.decorate=false",
    "log.mailmap=false", "i18n.commitEncoding=UTF-8", "i18n.logOutputEncoding=UTF-8",
)
#: the flags of every format-patch patchmgr runs: the same bytes whoever runs it. Headers a
#: repository's format.headers/to/cc add are dropped by --no-add-header/--no-to/--no-cc (an empty
#: format.headers= would add an empty header line instead)
FORMAT_PATCH_FLAGS = ("--zero-commit", "--full-index", "--no-signature", "--no-numbered", "--no-add-header",
                      "--no-to", "--no-cc")
#: what of the user's own (system and global) configuration still counts there: who they are,
#: which directories they trust, where their URLs really point, and whether git may gc on its own
#: (a git am or commit can start a background gc: with gc.auto = 0 the user said no)
_PASSED_THROUGH = (r"^(user\.(name|email)|safe\.directory|url\..*\.(insteadof|pushinsteadof)"
                   r"|gc\.(auto|autodetach|autopacklimit)|maintenance\.auto)$")
_passed: list[tuple[str, str]] | None = None

#: file descriptors every git child inherits: the patchmgr lock, so that a git command
#: that outlives a killed patchmgr still holds the checkout until it ends
_held_fds: tuple[int, ...] = ()


def hold_in_children(fd: int | None) -> None:
    """Let every git run from now on inherit `fd` (None: stop)."""
    global _held_fds
    _held_fds = () if fd is None else (fd,)


@dataclass
class Result:
    status: int
    out: str
    err: str


class Repo:
    def __init__(self, path: Path | str, label: str = "."):
        self.path = Path(path)
        self.label = label  # how messages name it: "." or "src/llvm-project"
        self._git_dir: Path | None = None
        self._identity: set[str] | None = None

    def __repr__(self):
        return f"Repo({self.label!r})"

    def _env(self, env: dict | None, readonly: bool) -> dict:
        full = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **(env or {})}
        if readonly:
            full["GIT_OPTIONAL_LOCKS"] = "0"
        return full

    def _known_config(self, env: dict, identity: bool) -> dict:
        """`env` for a patch command: the system and global configuration out of the way, the
        user's identity, trusted directories and URL rewrites passed back in (as command-line
        configuration); with `identity`, one of patchmgr's own where the user has none (CI,
        fresh machines). A read-only command makes no commit, so it skips the identity read."""
        passed = _user_settings(self)
        full = {k: v for k, v in env.items() if not k.startswith("GIT_CONFIG_")}
        full.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_COUNT=str(len(passed)))
        for i, (key, value) in enumerate(passed):
            full[f"GIT_CONFIG_KEY_{i}"], full[f"GIT_CONFIG_VALUE_{i}"] = key, value
        keys = {key for key, _ in passed}
        for key, var, fallback in (("user.name", "GIT_COMMITTER_NAME", TOOL_IDENT[0]),
                                   ("user.email", "GIT_COMMITTER_EMAIL", TOOL_IDENT[1])):
            if identity and key not in keys and key not in self._local_identity():
                full.setdefault(var, fallback)
        return full

    def _local_identity(self) -> set[str]:
        """Which of user.name and user.email this repository's own config sets (read once)."""
        if self._identity is None:
            res = self.try_run("config", "--local", "--get-regexp", r"^user\.(name|email)$", readonly=True)
            self._identity = {line.split(" ", 1)[0] for line in res.out.splitlines()} if res.status == 0 else set()
        return self._identity

    def _spawn(self, args: tuple, pinned: bool = False, **kw) -> subprocess.CompletedProcess:
        """Run git with `args`; `pinned`: PATCH_CONFIG's -c settings go first (left out of -v's
        trace, which shows the command as a user would type it)."""
        _trace_command(self, args, pinned)
        if pinned:
            args = tuple(a for setting in PATCH_CONFIG for a in ("-c", setting)) + args
        try:
            return subprocess.run(["git", *args], cwd=self.path, pass_fds=_held_fds + scratch.held_fds(), **kw)
        except FileNotFoundError as e:
            if e.filename == "git":
                raise GitFailed("git is not installed or not on PATH; install git (apt-get install git)") from None
            raise WrongState(f"{self.path} does not exist; is the checkout complete?") from None

    def try_run(self, *args: str, input: str | bytes | None = None, env: dict | None = None,
                readonly: bool = False, strip: bool = True) -> Result:
        # surrogateescape both ways: output that is not UTF-8 goes back to git as the same bytes
        data = input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input
        full_env = self._env(env, readonly)
        pinned = _subcommand(args) in PATCH_COMMANDS
        if pinned:
            full_env = self._known_config(full_env, identity=not readonly)
        proc = self._spawn(args, pinned, env=full_env, capture_output=True,
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
            command = _subcommand(args)
            raise GitFailed(f"git {command} failed in {self.label}: {first or 'exit ' + str(res.status)}")
        return res.out

    def am(self, mbox: str, *flags: str, env: dict | None = None) -> Result:
        """git am --3way of the mails in `mbox`, each commit dated as its author dated it.

        The mails go in on stdin, so there is no file for a kill to leave
        behind (while stopped, git am keeps its own copy under rebase-apply/).
        --keep-cr: validation lets a CR through only at the end of a diff's
        content line (a file with CRLF endings), and there it is the file's.
        --keep-non-patch: a subject's own bracket prefix (LLVM's `[X86] ...`)
        stays, only format-patch's `[PATCH]` goes, so export writes the same subject.
        """
        return self.try_run("am", "--3way", "--keep-cr", "--keep-non-patch", "--committer-date-is-author-date",
                            *flags, input=mbox, env=env)

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

    def head_and_branch(self) -> tuple[str, str | None]:
        """HEAD's commit and the checked-out branch's full ref (None when detached): one git run
        where head() and branch() take two."""
        res = self.try_run("rev-parse", "HEAD", "--symbolic-full-name", "HEAD", readonly=True)
        lines = res.out.split("\n")
        if res.status != 0 or len(lines) != 2:
            return self.head(), self.branch()  # their errors (no commits yet) say it best
        return lines[0], lines[1] if lines[1].startswith("refs/heads/") else None

    def branch(self) -> str | None:
        """The checked-out branch's full ref, or None when HEAD is detached."""
        res = self.try_run("symbolic-ref", "--quiet", "HEAD", readonly=True)
        return res.out.strip() if res.status == 0 else None

    def git_dir(self) -> Path:
        """The repository's git dir: read from its `.git` (a directory, or a file saying
        `gitdir: <path>` as submodules and worktrees have), else asked of git."""
        if self._git_dir is None:
            dot_git = self.path / ".git"
            if dot_git.is_dir() and (dot_git / "HEAD").exists():
                self._git_dir = dot_git.resolve()
            elif dot_git.is_file() and (text := dot_git.read_text(errors="replace")).startswith("gitdir: "):
                self._git_dir = (self.path / text[len("gitdir: "):].strip()).resolve()
            else:
                self._git_dir = Path(self.run("rev-parse", "--absolute-git-dir", readonly=True).strip())
        return self._git_dir

    def operation_in_progress(self) -> str | None:
        """The git operation stopped in this repository (am, rebase, merge, ...), if any.

        Read from the files git itself uses to know (wt-status.c), so a
        session of the user's is never mistaken for nothing, or for ours.
        """
        git_dir = self.git_dir()
        for name, what in _OPERATIONS:
            if (git_dir / name).exists():
                return what
        return None

    def recommit(self, source: str, parent: str, tree: str | None = None,
                 message: Callable[[str], str] | None = None) -> str:
        """A new commit like `source` (author, committer, dates, message) on `parent`, with `tree`
        (default: source's) and the message passed through `message`; its id."""
        fields = self.run("log", "-1", "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%T%x00%B", source,
                          readonly=True, strip=False).split("\0", 7)
        an, ae, ad, cn, ce, cd, source_tree, text = fields
        env = {"GIT_AUTHOR_NAME": an, "GIT_AUTHOR_EMAIL": ae, "GIT_AUTHOR_DATE": ad,
               "GIT_COMMITTER_NAME": cn, "GIT_COMMITTER_EMAIL": ce, "GIT_COMMITTER_DATE": cd}
        text = message(text) if message else text
        return self.run("commit-tree", tree or source_tree, "-p", parent, "-F", "-", input=text.rstrip("\n") + "\n",
                        env=env).strip()

    def stopped_mail(self) -> str | None:
        """The mail a stopped git am is on, or None when no am is stopped here."""
        apply_dir = self.git_dir() / "rebase-apply"
        try:
            current = int((apply_dir / "next").read_text().strip())
            return (apply_dir / f"{current:04d}").read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            return None

    def lock_files(self) -> list[Path]:
        """Lock files of git's in this repository: a git command is running, or one was killed."""
        git_dir = self.git_dir()
        found = [git_dir / name for name in GIT_LOCKS if (git_dir / name).exists()]
        refs = git_dir / "refs"
        return found + (sorted(refs.rglob("*.lock")) if refs.is_dir() else [])

    def dirty_files(self, own_gitlinks: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Tracked files with uncommitted changes (index or work tree).

        A submodule counts when it is checked out at another commit than the
        one recorded (unless it is one of `own_gitlinks`, whose new commit is
        patchmgr's to record); changes inside it are its own repository's to
        report.
        """
        out = self.run("status", "--porcelain=v2", "-z", "--untracked-files=no", "--ignore-submodules=dirty",
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
            if sub.startswith("S") and (sub[1] != "C" or path in own_gitlinks):
                continue
            files.append(path + (" (checked out at another commit than recorded)" if sub.startswith("S") else ""))
        return files

    def hidden_changes(self) -> list[tuple[str, str, str]]:
        """(path, flag, what) of each tracked file marked `--assume-unchanged` or `--skip-worktree`
        that git would not take as unchanged: `what` is "changed" when its work-tree content
        differs from the index, "touched" when only its file's stat data does.

        git status and git diff never look at such files, so dirty_files misses
        them, while a checkout -f or reset still writes them: the user's edit
        would be overwritten without a word. And read-tree, checkout and git am
        refuse to write a flagged file whose stat data changed ("not uptodate"),
        even with its content unchanged, which would stop a command half way.
        The flags are git's own (`ls-files -v`: a lower-case tag is
        assume-unchanged, S skip-worktree), and the content is compared as git
        would store it (its filters, by path). A skip-worktree file missing from
        the work tree is a sparse checkout's, not a change. Changed files come
        first.
        """
        tags = dict((path, tag) for tag, path in _FLAGGED.findall(self.run("ls-files", "-v", "-z", readonly=True,
                                                                             strip=False)))
        flagged: dict[str, tuple[str, str, str]] = {}  # path -> (flag, mode, blob)
        for chunk in _chunks(list(tags)):  # their index entries
            out = self.run("--literal-pathspecs", "ls-files", "-s", "-z", "--", *chunk, readonly=True, strip=False)
            for entry in filter(None, out.split("\0")):
                meta, _, path = entry.partition("\t")
                mode, blob = meta.split(" ")[:2]
                if mode != "160000" and path in tags:
                    flagged[path] = ("--skip-worktree" if tags[path] in "Ss" else "--assume-unchanged", mode, blob)
        changed, regular = [], []
        for path, (flag, mode, blob) in flagged.items():
            full = self.path / path
            if not os.path.lexists(full):
                if flag == "--assume-unchanged":
                    changed.append(path)
            elif mode == "120000" or full.is_symlink():
                target = os.readlink(full) if full.is_symlink() else None
                if mode != "120000" or target is None or self.run(
                        "hash-object", "--stdin", "--no-filters", input=target, readonly=True).strip() != blob:
                    changed.append(path)
            elif not full.is_file():
                changed.append(path)
            else:
                regular.append(path)
        for chunk in _chunks(regular):
            ids = self.run("hash-object", "--", *chunk, readonly=True).split("\n")
            changed += [path for path, sha in zip(chunk, ids) if sha.strip() != flagged[path][2]]
        touched = self._stat_changed([path for path in regular if path not in changed])
        return ([(path, flagged[path][0], "changed") for path in sorted(changed)]
                + [(path, flagged[path][0], "touched") for path in sorted(touched)])

    def _stat_changed(self, paths: list[str]) -> list[str]:
        """Those of `paths` (regular files) whose stat data differs from what the index recorded, in
        the fields git compares (read.c ce_match_stat_basic, with core.trustctime and
        core.checkStat), each as 32 bits as the index keeps it."""
        if not paths:
            return []
        config = self.try_run("config", "--get", "core.checkStat", readonly=True).out.strip().lower()
        trust_ctime = self.try_run("config", "--type=bool", "--get", "core.trustctime", readonly=True).out.strip()
        minimal = config == "minimal"
        stale = []
        for chunk in _chunks(paths):
            out = self.run("--literal-pathspecs", "ls-files", "--debug", "-z", "--", *chunk, readonly=True,
                           strip=False)
            for m in _DEBUG_ENTRY.finditer(out):
                path = m.group("path")
                st = os.lstat(self.path / path)
                now = {"mtime": int(st.st_mtime), "ctime": int(st.st_ctime), "ino": st.st_ino, "uid": st.st_uid,
                       "gid": st.st_gid, "size": st.st_size}
                fields = ("mtime", "size") if minimal else \
                    ("mtime", "size", "ino", "uid", "gid") + (() if trust_ctime == "false" else ("ctime",))
                if any(int(m.group(f)) != now[f] & 0xFFFFFFFF for f in fields):
                    stale.append(path)
        return stale

    def commits(self, range_: str, newest: int | None = None) -> list[tuple[str, str]]:
        """(sha, full message) for each commit in range, first parent only: all of them oldest
        first, or with `newest` only that many, newest first."""
        order = ["--reverse"] if newest is None else [f"-n{newest}"]
        out = self.run("log", "--first-parent", *order, "--format=%H%x00%B%x00", range_, "--", readonly=True, strip=False)
        items = out.split("\0")
        return [(items[i].strip(), items[i + 1]) for i in range(0, len(items) - 1, 2)]

    def read(self, rev: str, path: str) -> str | None:
        """The file `path` as it is in `rev`, or None where it does not exist there."""
        res = self.try_run("show", f"{rev}:{path}", readonly=True, strip=False)
        return res.out if res.status == 0 else None

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

    def gitlinks(self, commit: str) -> dict[str, str]:
        """Every submodule path `commit`'s tree records, with its commit."""
        out = self.run("ls-tree", "-r", "-z", commit, readonly=True, strip=False)
        links = {}
        for entry in out.split("\0"):
            meta, _, name = entry.partition("\t")
            if meta.startswith("160000 commit "):
                links[name] = meta.split()[2]
        return links

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


class Scratch:
    """A temporary directory of clones that borrow the objects of the user's repositories."""

    def __init__(self, root: Path):
        self.root = root

    def clone(self, repo: Repo, at: str | None = None) -> Repo:
        """A `--shared` clone of `repo` (nothing of the user's is written), detached at `at` if given."""
        clone = Repo(self.root / ("superproject" if repo.label == "." else repo.label.replace("/", "_")), repo.label)
        repo.run("clone", "-q", "--shared", "--no-checkout", "--", str(repo.path), str(clone.path))
        if at is not None:
            clone.run("checkout", "-q", "--detach", at)
        return clone

    def borrow(self, repo: Repo) -> Repo:
        """A bare repository that reads `repo`'s objects (objects/info/alternates, as `clone
        --shared` makes) and writes its own: commits made in it leave nothing in the user's
        repository, and it costs a `git init`, not a clone of the refs or a checkout."""
        objects, shallow = repo.run("rev-parse", "--path-format=absolute", "--git-path", "objects", "--git-path",
                                    "shallow", readonly=True).split("\n")[:2]
        borrowed = self.bare(repo.label, objects)
        if os.path.isfile(shallow):  # a shallow clone's cut: without it a walk would look for the missing parents
            (borrowed.path / "shallow").write_bytes(Path(shallow).read_bytes())
        return borrowed

    def bare(self, label: str, objects: str | Path | None = None) -> Repo:
        """An empty bare repository named for `label` (whose object store reads `objects` too)."""
        name = "superproject" if label == "." else label.replace("/", "_")
        borrowed = Repo(self.root / f"{name}.git", label)
        borrowed.path.mkdir()
        borrowed.run("init", "-q", "--bare")
        if objects is not None:
            (borrowed.path / "objects" / "info" / "alternates").write_text(f"{objects}\n")
        return borrowed


@contextmanager
def scratch_clones(purpose: str, keep: bool = False) -> Iterator[Scratch]:
    """Scratch clones for `purpose` (check, mcp, diff-sets), removed afterwards unless `keep`
    (and after a kill by the next patchmgr that makes scratch directories: patchmgr/scratch.py)."""
    with scratch.scratch_dir(purpose, keep) as root:
        yield Scratch(root)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """`items` in runs of `size`: a bounded command line each."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def _parse_patch_ids(out: str) -> list[tuple[str, str]]:
    """(patch-id, commit) per line of `git patch-id` output, which always prints both."""
    return [(fields[0], fields[1]) for fields in (line.split() for line in out.splitlines() if line.strip())]


_pinned_said = False


def _trace_command(repo: Repo, args: tuple[str, ...], pinned: bool) -> None:
    """-v's line for one git command: as a user would type it (`git -C <repo> ...`, shell-quoted);
    the first patch command is preceded, once, by a line saying which configuration those run in."""
    global _pinned_said
    if not verbose():
        return
    if pinned and not _pinned_said:
        _pinned_said = True
        trace(f"git {', '.join(sorted(PATCH_COMMANDS))} run with {len(PATCH_CONFIG)} settings pinned to git's "
              "defaults (-c diff.noprefix=false, -c format.signOff=false, ...: PATCH_CONFIG in patchmgr/gitio.py) "
              "and, of your system and global git config, only user.*, safe.directory, url.*.insteadOf, gc.auto* "
              "and maintenance.auto")
    where = _typed_dir(repo.path)
    trace(shlex.join(["git", *(["-C", where] if where else []), *args]))


def _typed_dir(path: Path) -> str | None:
    """How `git -C` would name `path` from the current directory: relative inside it, absolute
    elsewhere (a scratch clone), None for the current directory itself."""
    try:
        here = Path.cwd().resolve()
        rel = path.resolve().relative_to(here)
    except (OSError, ValueError):
        return str(path)
    return None if rel == Path(".") else str(rel)


def _subcommand(args: tuple[str, ...]) -> str:
    """The git command in an argument list, past global options such as `-c key=value`."""
    return next((a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "-c")), "")


def _user_settings(repo: Repo) -> list[tuple[str, str]]:
    """The _PASSED_THROUGH settings from the system, global and command-line configuration
    (not the repository's own, which git reads anyway); read once per process."""
    global _passed
    if _passed is None:
        res = repo.try_run("config", "--show-scope", "--null", "--get-regexp", _PASSED_THROUGH, readonly=True)
        fields = res.out.split("\0") if res.status == 0 else []
        _passed = []
        for scope, entry in zip(fields[::2], fields[1::2]):
            key, newline, value = entry.partition("\n")
            if scope in ("system", "global", "command") and newline:
                _passed.append((key, value))
    return _passed


def tool_commit_env(date: str) -> dict[str, str]:
    name, email = TOOL_IDENT
    return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date}
