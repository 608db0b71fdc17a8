"""Commit a mail on a commit in git's object store: the commit `git am` makes, with no work tree.

check, diff-sets, mcp and the rebase's carry all need a series as commits. With
git am each needs a checked-out clone: on rustc's 50,000-file tree the checkout
alone costs tens of seconds, while the patches touch a few dozen files. Here a
private index (GIT_INDEX_FILE in a scratch directory) is read from the parent's
tree, the patch goes in with `git apply --cached` (and `--3way` where a plain
apply fails, as git am --3way falls back), and `commit-tree` records it with the
author, date and message git's own mailinfo and stripspace read from the mail,
as `git am --3way --keep-cr --keep-non-patch --committer-date-is-author-date`
(gitio.Repo.am) reads them. Same tree, author, committer and message: the same
commit id as that git am in the same repository with the same committer.
"""

from __future__ import annotations

from pathlib import Path

from patchmgr.errors import GitFailed
from patchmgr.gitio import Repo
from patchmgr.scratch import ScratchDir


class DoesNotApply(GitFailed):
    """A patch git apply refused on the parent's tree, even 3-way; the message is git's error."""


class MailCommitter:
    """One repository's private index and mailinfo files, in a scratch directory of its own."""

    def __init__(self, repo: Repo, purpose: str = "commit"):
        self.repo = repo
        self._dir = ScratchDir(purpose)
        # index version 4 compresses the paths: a third smaller, so quicker to read and write
        self.env = {"GIT_INDEX_FILE": str(self._dir.path / "index"), "GIT_INDEX_VERSION": "4"}
        self._index_tree: str | None = None  # the tree the private index holds, when known
        self._trees: dict[str, str] = {}  # commit id -> its tree, for the commits made here
        self._made: dict[tuple, str] = {}  # what commit_mail was given -> the commit it made

    def __enter__(self) -> MailCommitter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._dir.cleanup()

    def file(self, name: str) -> Path:
        """A path in the scratch directory, for a file git reads or writes (merge-file, config -f)."""
        return self._dir.path / name

    def tree_of(self, commit: str) -> str:
        known = self._trees.get(commit)
        return known or self.repo.run("rev-parse", f"{commit}^{{tree}}", readonly=True).strip()

    def read_tree(self, tree: str) -> None:
        """The private index set to `tree` (read once: a 50,000-entry index takes a tenth of a second)."""
        if self._index_tree != tree:
            self._index_tree = None
            self.repo.run("read-tree", tree, env=self.env)
            self._index_tree = tree

    def tree_with_work_tree(self, start: str, paths: list[str]) -> str:
        """The tree of `start` with the work tree's content at `paths` (files added, changed or
        deleted): refresh and new, whose input is the uncommitted changes; the real index is not
        touched."""
        self.read_tree(start)
        if paths:
            self._index_tree = None
            self.repo.run("--literal-pathspecs", "add", "-A", "-f", "--", *paths, env=self.env)
        return self.write_tree()

    def write_tree(self) -> str:
        self._index_tree = self.repo.run("write-tree", env=self.env).strip()
        return self._index_tree

    def apply(self, tree: str, diff: str, three_way: bool = True) -> str | None:
        """`diff` applied to `tree`: the new tree, or None where it does not apply. Plainly
        first, then (with `three_way`) by git's 3-way merge of the blobs the patch's index lines
        name, as git am --3way falls back."""
        return self._apply(tree, diff, three_way)[0]

    def _apply(self, tree: str, diff: str, three_way: bool) -> tuple[str | None, str]:
        """(new tree or None, why not: git apply's error, and the 3-way merge's)."""
        self.read_tree(tree)
        res = self.repo.try_run("apply", "--cached", "--whitespace=nowarn", input=diff, env=self.env)
        if res.status == 0:
            return self.write_tree(), ""
        error = _first(res.err or res.out, ("fatal:", "error:")) or f"exit {res.status}"
        if three_way:  # a refused plain apply leaves the index as it was
            self._index_tree = None  # a 3-way apply may leave conflicted entries
            res = self.repo.try_run("apply", "--cached", "--3way", "--whitespace=nowarn", input=diff, env=self.env)
            if res.status == 0:
                return self.write_tree(), ""
            error += "; 3-way: " + (_first(res.err or res.out, ("fatal:", "Applied patch")) or
                                    _first(res.err or res.out, ("error:",)) or f"exit {res.status}")
            self._index_tree = None
        # else the index still holds `tree`: git apply writes it only when the whole patch applied,
        # so the next apply on the same tree (the carry's next patch) needs no read-tree
        return None, error

    def tree_with(self, tree: str, entries: list[str]) -> str:
        """`tree` with index entries ("mode sha\\tpath"; mode 0 removes the path) put in."""
        self.read_tree(tree)
        if entries:
            self._index_tree = None
            self.repo.run("update-index", "--index-info", input="\n".join(entries) + "\n", env=self.env)
        return self.write_tree()

    def read_mail(self, mail: str) -> tuple[dict[str, str], str]:
        """(author environment, message) of a mail, read by git's own mailinfo (-b: a subject's
        own bracket prefix stays, as with --keep-non-patch) and cleaned up by stripspace, as
        git am reads and commits it."""
        msg, patch = str(self.file("msg")), str(self.file("patch"))
        info = self.repo.run("mailinfo", "-b", msg, patch, input=mail, readonly=True)
        fields = dict(line.split(": ", 1) for line in info.splitlines() if ": " in line)
        with open(msg, encoding="utf-8", errors="surrogateescape") as f:
            body = f.read()
        message = self.repo.run("stripspace", input=fields.get("Subject", "") + "\n\n" + body,
                                readonly=True, strip=False)
        author = {"GIT_AUTHOR_NAME": fields.get("Author", ""), "GIT_AUTHOR_EMAIL": fields.get("Email", ""),
                  "GIT_AUTHOR_DATE": fields.get("Date", "")}
        return author, message

    def commit_mail(self, parent: str, mail: str, diff: str, committer: dict[str, str] | None = None,
                    as_author: bool = False) -> str:
        """`mail` (whose diff is `diff`) committed on `parent`; the new commit's id, or DoesNotApply.

        The committer is git's own identity (the environment, the user's config), or
        `committer`'s GIT_COMMITTER_NAME/EMAIL, or with `as_author` the mail's author (the same
        mail gives the same commit whoever runs it); dated as the author dated it.
        """
        key = (parent, mail, diff, tuple(sorted((committer or {}).items())), as_author)
        if key not in self._made:  # two revisions of a series share commits (diff-sets): each made once
            self._made[key] = self._commit_mail(parent, mail, diff, committer, as_author)
        return self._made[key]

    def _commit_mail(self, parent: str, mail: str, diff: str, committer: dict[str, str] | None,
                     as_author: bool) -> str:
        tree, error = self._apply(self.tree_of(parent), diff, three_way=True)
        if tree is None:
            raise DoesNotApply(f"git apply failed in {self.repo.label}: {error}")
        author, message = self.read_mail(mail)
        env = {**self.env, **author, "GIT_COMMITTER_DATE": author["GIT_AUTHOR_DATE"], **(committer or {})}
        if as_author:
            env.update(GIT_COMMITTER_NAME=author["GIT_AUTHOR_NAME"], GIT_COMMITTER_EMAIL=author["GIT_AUTHOR_EMAIL"])
        made = self.repo.run("commit-tree", tree, "-p", parent, "-F", "-", input=message, env=env).strip()
        self._trees[made] = tree
        return made


def _first(output: str, starts: tuple[str, ...]) -> str | None:
    """The first line of git's `output` that starts with one of `starts`."""
    return next((line for line in output.splitlines() if line.startswith(starts)), None)
