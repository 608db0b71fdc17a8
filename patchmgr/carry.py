"""Carry one repository's patches onto a new base, in git's object store only.

The replay rebase and `rebase --dry-run` share. It never touches a work tree
or an index of the user's (a private index file does the work), so the same
code runs in the user's repository and in a scratch clone.

First the set is materialized as commits on its old base, so that every
preimage blob a 3-way merge needs exists whatever the clone's history was (as
git rebase carries commits, not mails). Then each commit is carried onto the
tip, trying in order:
- clean: the patch applies as it is (git apply, offsets allowed);
- merged: git's 3-way merge of the commit against its parent (merge-tree,
  renames and directory moves followed; a path that changed is a relocation);
- relocated: each hunk whose file is gone or whose context is not where the
  patch says is looked for by the file's new path (same name, directory moved,
  vendored crate at another version) and then by a search of the new tree for
  its most distinctive lines; the preimage must match exactly, or once
  reindented, or (in rustc's tests/) with compiletest directives as `//@`, and
  with --fuzz N up to N outer context lines may differ where the hunk has one
  place only (hunks.place). Every hunk not placed exactly is reported.
A created file whose directory (or a directory above it) the new base no
longer has follows that directory to where its files went; when that cannot
be told, the file stays at its path and a finding says so (`Carried.findings`),
as git apply would silently bring the old directory back.
A result equal to the tip is an empty carry (the change is already there).
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from patchmgr.gitio import Repo, tool_commit_env
from patchmgr.hunks import (
    FileDiff,
    Hunk,
    Placement,
    already_there,
    distinctive,
    find_block,
    parse_section,
    place,
    sections,
    split_lines,
)
from patchmgr.mailcommit import MailCommitter
from patchmgr.patchfile import Patch

CLEAN, MERGED, RELOCATED, EMPTY, FAILED = "clean", "merged", "relocated", "empty", "failed"
#: a vendored crate's directory: name-1.2.3 (or name-0.1.0+wasi..., name-1.0.0-beta)
_CRATE_DIR = re.compile(r"^(.+?)-\d+\.\d+\.\d+(?:[-+][\w.+-]*)?$")
_GREP_FILES = 25  # files a distinctive line may be in and still say where a hunk belongs
_OVER_AT_MOST = 5000  # changed files up to which a view is made over another (TreeView)


@dataclass(frozen=True)
class Unplaced:
    """A hunk the carry could not place, for a proposal (patchmgr/proposal.py): its file's
    diff, its index there, and the files its file is or may have become (the file itself when
    it still exists, else `Replay._candidates`)."""

    diff: FileDiff
    index: int
    candidates: tuple[str, ...]


@dataclass
class Carried:
    """What carrying one patch gave: the word, the new tree, and what a reviewer should check."""

    word: str
    tree: str | None = None
    relocations: list[str] = field(default_factory=list)  # "old:line -> new:line (why)"
    failures: list[str] = field(default_factory=list)  # hunks that could not be placed, with why
    gone: bool = False  # every file the patch changes is gone and its context is nowhere
    already: int = 0  # hunks whose change the tip already has
    #: created files whose directory is gone upstream to no place that can be told: the tree has
    #: them at their old path, which a reviewer must decide on
    findings: list[str] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)  # the hunks behind `failures`


class TreeView:
    """One tree of one repository, read lazily and at most once per path.

    A view made `over` another (a full view of a tree this one differs from in
    a few files: the new base under the patches carried so far, the old base
    under the set's commits) reads only those files itself and takes the rest
    from the other: on rustc's tree a listing costs a second and a search of
    every file several, while the trees of one carry differ in a few dozen
    files.
    """

    def __init__(self, repo: Repo, tree: str, over: TreeView | None = None,
                 changes: dict[str, str | None] | None = None):
        self.repo, self.tree = repo, tree
        self.over = over
        self.changes = changes or {}  # path -> mode (None: deleted), against `over`
        self._paths: dict[str, str] | None = None  # path -> mode
        self._texts: dict[str, str | None] = {}
        self._found: dict[str, set[str]] = {}  # line -> every file holding it
        self._names: dict[str, list[str]] | None = None
        #: the lines the first search of the tree looks up too (see Replay.expect)
        self.expected: Callable[[], list[str]] | None = None

    @property
    def paths(self) -> dict[str, str]:
        if self._paths is None:
            if self.over is not None:
                self._paths = dict(self.over.paths)
                for path, mode in self.changes.items():
                    if mode is None:
                        self._paths.pop(path, None)
                    else:
                        self._paths[path] = mode
            else:
                out = self.repo.run("ls-tree", "-r", "-z", "--full-tree", self.tree, readonly=True, strip=False)
                self._paths = {}
                for entry in out.split("\0"):
                    meta, _, path = entry.partition("\t")
                    if path:
                        self._paths[path] = meta.split(" ", 1)[0]
        return self._paths

    def by_name(self) -> dict[str, list[str]]:
        """File name -> paths; a module's x/mod.rs is also found under x.rs."""
        if self._names is None:
            if self.over is not None:
                names = dict(self.over.by_name())
                for path in self.changes:
                    name = _file_name(module_key(path))
                    names[name] = [p for p in names.get(name, []) if p != path]
                    if path in self.paths:
                        names[name].append(path)
                self._names = collections.defaultdict(list, names)
            else:
                self._names = collections.defaultdict(list)
                for path in self.paths:
                    self._names[_file_name(module_key(path))].append(path)
        return self._names

    def has_dir(self, directory: str) -> bool:
        prefix = directory.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.paths)

    def text(self, path: str) -> str | None:
        if self.over is not None and path not in self.changes:
            return self.over.text(path)
        if path not in self._texts:
            self._texts[path] = self.repo.read(self.tree, path) if path in self.paths else None
        return self._texts[path]

    def grep(self, line: str) -> list[str]:
        """Files of the tree containing `line` (fixed string); more than a few say nothing."""
        self.grep_all([line])
        found = self._found.get(line, set())
        return sorted(found) if len(found) <= _GREP_FILES else []

    def grep_all(self, lines: list[str]) -> None:
        """Look up every line not looked up yet in one `git grep` of the tree (one pass over a
        large tree costs about what one line does), so that `grep` answers them from memory.
        A view over another takes the other's answer for the files they share and reads its own
        changed files itself.

        `-o` prints each match with its file; a line that is part of a longer one matched at
        the same place is counted in that file too.
        """
        todo = [line for line in dict.fromkeys(lines) if line not in self._found and line and "\n" not in line]
        if not todo:
            return
        if self.over is not None:
            self.over.grep_all(todo)
            own = [path for path, mode in self.changes.items() if mode is not None and _searchable(self.text(path))]
            for line in todo:
                self._found[line] = {p for p in self.over._found[line] if p not in self.changes} | \
                    {p for p in own if line in (self.text(p) or "")}
            return
        if self.expected is not None:
            expected, self.expected = self.expected(), None
            todo += [line for line in dict.fromkeys(expected) if line not in self._found and line and "\n" not in line
                     and line not in todo]
        res = self.repo.try_run("grep", "-F", "-o", "-z", "-I", "-f", "-", self.tree, "--", readonly=True,
                                strip=False, input="".join(line + "\n" for line in todo))
        found: dict[str, set[str]] = {line: set() for line in todo}
        within = {line: [other for other in todo if other != line and other in line] for line in todo}
        if res.status == 0:
            prefix = self.tree + ":"
            for record in res.out.split("\n"):
                name, sep, match = record.partition("\0")
                if not sep or not name.startswith(prefix):
                    continue
                path = name[len(prefix):]
                for line in [match, *within[match]] if match in within else []:
                    found[line].add(path)
        self._found.update(found)


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _searchable(text: str | None) -> bool:
    """What `git grep -I` searches: a file with no NUL in its first 8000 bytes (git's binary test)."""
    return text is not None and "\0" not in text[:8000]


def gone_directory(path: str, old: TreeView, tip: TreeView) -> str | None:
    """The directory above `path` that the old tree had and the new one has not (the nearest
    the old tree had: a created file may start a new directory inside a moved one), or None
    when the file's place still exists (or never did)."""
    for parent in PurePosixPath(path).parents:
        directory = str(parent)
        if directory == "." or tip.has_dir(directory):
            return None
        if old.has_dir(directory):
            return directory
    return None


def module_key(path: str) -> str:
    """x/mod.rs as x.rs: a module that became a directory is the same module."""
    return path[:-len("/mod.rs")] + ".rs" if path.endswith("/mod.rs") else path


def compiletest(path: str) -> bool:
    """A test of rustc's compiletest suites (tests/, src/test/ before 1.69), whose header
    directives upstream rewrote from `// only-x86_64` to `//@ only-x86_64`."""
    return path.endswith(".rs") and path.startswith(("tests/", "src/test/"))


def current(contents: dict[str, list[str] | None], tip: TreeView, path: str) -> list[str]:
    """A file's lines as the carry has them so far (an earlier hunk may have changed it)."""
    lines = contents.get(path)
    return lines if lines is not None else split_lines(tip.text(path) or "")


def crate_name(component: str) -> str:
    m = _CRATE_DIR.match(component)
    return m.group(1) if m else component


def tail_score(old: str, new: str) -> int:
    """How many trailing path components agree, a vendored crate's version aside."""
    a = [crate_name(c) for c in module_key(old).split("/")]
    b = [crate_name(c) for c in module_key(new).split("/")]
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def why_moved(old: str, new: str) -> str:
    """How a reviewer should read old -> new: a crate followed by name, or a directory that moved."""
    a, b = old.split("/"), new.split("/")
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and crate_name(x) == crate_name(y):
            return f"vendored crate {crate_name(x)} followed by name: {x} -> {y}"
    if a[-1] != b[-1]:
        return f"file moved: {old} -> {new}"
    common = tail_score(old, new)
    old_dir, new_dir = "/".join(a[:len(a) - common]), "/".join(b[:len(b) - common])
    return f"directory moved: {old_dir or '.'}/ -> {new_dir or '.'}/"


class Replay(MailCommitter):
    """One repository's carry: a private index, the materialized commits, the views of trees."""

    def __init__(self, repo: Repo, fuzz: int = 0):
        super().__init__(repo, "carry")
        self.fuzz = fuzz
        self._views: dict[str, TreeView] = {}
        self._candidates_of: dict[tuple[str, str], list[str]] = {}
        #: the full views the others are made over: the first tip carried onto, the first old tree
        self._roots: dict[str, TreeView] = {}
        self._expected: list[Patch] = []  # see expect

    def view(self, tree: str, family: str | None = None) -> TreeView:
        """The view of `tree`; with `family` ("tip": the new base and the trees carried onto it,
        "old": the old base and the set's commits), made over the family's first view when the
        two differ in few files (one `diff-tree`, where a full view lists the whole tree)."""
        if tree in self._views:
            return self._views[tree]
        root = self._roots.get(family) if family else None
        if root is not None and root.tree == tree:
            made = root
        else:
            made = self._view_over(root, tree) if root is not None else TreeView(self.repo, tree)
            if family and root is None:
                self._roots[family] = made
                if family == "tip":
                    made.expected = lambda: self._likely_searched(made)
        self._views = {tree: made} | dict(list(self._views.items())[-3:])
        return made

    def _view_over(self, root: TreeView, tree: str) -> TreeView:
        """A view of `tree` over `root`, or a full one when they differ in many files."""
        out = self.repo.run("diff-tree", "-r", "-z", "--no-renames", root.tree, tree, readonly=True, strip=False)
        fields = out.split("\0")
        changes: dict[str, str | None] = {}
        for meta, path in zip(fields[::2], fields[1::2]):
            parts = meta.split(" ")
            changes[path] = None if parts[-1] == "D" else parts[1]
            if len(changes) > _OVER_AT_MOST:
                return TreeView(self.repo, tree)
        return TreeView(self.repo, tree, root, changes)

    def expect(self, patches: list[Patch]) -> None:
        """`patches` are to be carried: the first search of the new tree also looks up the lines
        of every hunk of theirs that is likely to need one (`_likely_searched`), so that the
        whole carry makes one pass over the tree (each costs seconds on rustc's) where it would
        make one per patch. A line not looked up then is looked up when it is needed."""
        self._expected = list(patches)

    def _likely_searched(self, tip: TreeView) -> list[str]:
        """The distinctive lines of each expected hunk that does not apply, on its own, where its
        file is on the new base or where that file went (as `_relocate_hunks` first tries): those
        the carry looks for in the whole tree. Each line costs the search a pass of its own
        (git grep matches the patterns one by one), so the hunks that will apply are left out."""
        lines: list[str] = []
        texts: dict[str, list[str]] = {}
        for patch in self._expected:
            for fd in self.file_diffs(patch):
                if fd.old_path is None or fd.new_path is None or fd.binary:
                    continue  # created, deleted or binary: never searched for
                targets = [fd.old_path] if fd.old_path in tip.paths else self._candidates(fd.old_path, tip)
                for hunk in fd.hunks:
                    if not any(place(texts.setdefault(t, split_lines(tip.text(t) or "")), (hunk,), self.fuzz,
                                     compiletest(t))[1] for t in targets):
                        lines += distinctive(hunk)
        return lines

    # --- the set as commits on its old base -----------------------------------
    def materialize(self, base: str, patches: list[Patch], mails: list[str]) -> list[str]:
        """Commit each patch on the one before, from `base`, as apply's git am would; `mails` are
        the tagged texts (messages). The committer is the author, so the ids depend on the mails only."""
        self.expect(patches)
        parent, out = base, []
        for patch, mail in zip(patches, mails):
            parent = self.commit_mail(parent, mail, patch.diff, as_author=True)
            out.append(parent)
        return out

    # --- one patch --------------------------------------------------------------
    def carry(self, tip: str, commit: str, patch: Patch, relocate: bool = True) -> Carried:
        """`commit` (a materialized patch) carried onto `tip`, without touching any work tree."""
        tip_tree = self.tree_of(tip)
        self.view(tip_tree, "tip")
        parent = self.repo.run("rev-parse", f"{commit}^", readonly=True).strip()
        diffs = self.file_diffs(patch)
        moved_dirs = self._vanished_dirs(diffs, parent, tip_tree)
        if not moved_dirs:
            tree = self.apply(tip_tree, patch.diff, three_way=False)
            if tree is not None:
                return Carried(EMPTY if tree == tip_tree else CLEAN, tree)
        merged, conflicted = self._merge(parent, tip, commit)
        if not conflicted and not moved_dirs:
            if merged == tip_tree:
                return Carried(EMPTY, merged)
            moves = self._moves(diffs, tip_tree, merged)
            return Carried(RELOCATED if moves else MERGED, merged, moves)
        if not relocate:
            return Carried(FAILED, failures=[f"{path}: conflict" for path in conflicted])
        return self._relocate(diffs, parent, commit, tip_tree, merged, conflicted)

    def file_diffs(self, patch: Patch) -> list[FileDiff]:
        return [parse_section(text, fc.old_path, fc.new_path) for text, fc in zip(sections(patch.diff), patch.files)]

    def _vanished_dirs(self, diffs: list[FileDiff], parent: str, tip_tree: str) -> list[str]:
        """Directories above a created file that existed on the old base and are gone now: git
        apply would create the file there and bring the old directory back, so the file must
        follow the directory's move instead (see `_new_file_path`)."""
        old, tip = self.view(self.tree_of(parent), "old"), self.view(tip_tree, "tip")
        return [gone for fd in diffs if fd.old_path is None and fd.new_path
                and (gone := gone_directory(fd.new_path, old, tip)) is not None]

    def _merge(self, parent: str, tip: str, commit: str) -> tuple[str, list[str]]:
        """git's 3-way merge of parent..commit into tip: (tree, conflicted paths).

        merge-tree (git 2.38) takes two commits and finds their base itself, so
        the base is made theirs: two new root-based commits over the parent's tree.
        """
        repo = self.repo
        base = repo.run("commit-tree", self.tree_of(parent), "-m", "base", env=_FIXED).strip()
        ours = repo.run("commit-tree", self.tree_of(tip), "-p", base, "-m", "ours", env=_FIXED).strip()
        theirs = repo.run("commit-tree", self.tree_of(commit), "-p", base, "-m", "theirs", env=_FIXED).strip()
        res = repo.try_run("merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs, readonly=True)
        lines = res.out.splitlines()
        if res.status not in (0, 1) or not lines:
            return "", ["(git merge-tree failed: " + (res.err.strip() or f"exit {res.status}") + ")"]
        return lines[0], [line for line in lines[1:] if line]

    def _moves(self, diffs: list[FileDiff], tip_tree: str, result: str) -> list[str]:
        """Relocations a merge made: a file the patch changes that the result changes under another name."""
        changed = self.repo.run("diff-tree", "-r", "--name-only", "--no-renames", "-z", tip_tree, result,
                                readonly=True, strip=False).split("\0")
        changed_set = {p for p in changed if p}
        named = {fd.new_path or fd.old_path for fd in diffs}
        moves = []
        for fd in diffs:
            path = fd.new_path or fd.old_path
            if path in changed_set or path is None:
                continue
            others = sorted(changed_set - named, key=lambda p: -tail_score(path, p))
            if not others:
                continue
            new = others[0]
            text = split_lines(self.repo.read(result, new) or "")
            for hunk in fd.hunks:
                at = _find_after(text, hunk)
                moves.append(f"{path}:{hunk.old_start} -> {new}:{at if at else '?'} ({why_moved(path, new)}, by git's "
                             "rename detection)")
        return moves

    def _relocate(self, diffs: list[FileDiff], parent: str, commit: str, tip_tree: str, merged: str,
                  conflicted: list[str]) -> Carried:
        tip = self.view(tip_tree, "tip")
        old = self.view(self.tree_of(parent), "old")
        sides = (old, self.view(self.tree_of(commit), "old"))
        result = Carried(RELOCATED)
        contents: dict[str, list[str] | None] = {}  # path -> new lines (None: delete)
        modes: dict[str, str] = {}
        nowhere = 0
        deferred: list[tuple[FileDiff, list[int], list[str]]] = []  # hunks left for a search of the tree
        for fd in diffs:
            if fd.binary:
                result.failures.append(f"{fd.new_path or fd.old_path}: binary change, cannot be relocated")
                continue
            if fd.new_path is None:  # deleted
                if fd.old_path in tip.paths:
                    contents[fd.old_path] = None
                continue
            if fd.old_path is None:  # created
                target, finding = self._new_file_path(fd.new_path, old, tip)
                if finding:
                    result.findings.append(finding)
                existing = tip.text(target)
                body = [line for h in fd.hunks for line in h.after]
                if existing is not None and split_lines(existing) != body:
                    result.failures.append(f"{fd.new_path}: created by the patch, but {target} exists upstream")
                    continue
                if existing is None:
                    contents[target], modes[target] = body, fd.new_mode or "100644"
                if target != fd.new_path:
                    result.relocations.append(f"{fd.new_path} (new file) -> {target} ({why_moved(fd.new_path, target)})")
                continue
            left = self._relocate_hunks(fd, tip, sides, merged, conflicted, contents, modes, result)
            if left is not None:
                deferred.append((fd, *left))
            if fd.old_path not in tip.paths and not self._candidates(fd.old_path, tip):
                nowhere += 1
        # the hunks no candidate file took are looked for in the whole tree: one git grep for all of them
        tip.grep_all([word for fd, hunks, _ in deferred for k in hunks for word in distinctive(fd.hunks[k])])
        for fd, hunks, candidates in deferred:
            self._search_hunks(fd, hunks, candidates, tip, contents, modes, result)
        result.gone = bool(diffs) and nowhere == len(diffs) and bool(result.failures) and \
            all("found nowhere" in f for f in result.failures)
        if result.failures:
            result.word = FAILED
            return result
        result.tree = self._write_tree(tip_tree, contents, modes)
        if result.tree == tip_tree:
            result.word = EMPTY
        elif not result.relocations:
            result.word = MERGED
        return result

    def _relocate_hunks(self, fd: FileDiff, tip: TreeView, sides: tuple[TreeView, TreeView], merged: str,
                        conflicted: list[str], contents: dict[str, list[str] | None], modes: dict[str, str],
                        result: Carried) -> tuple[list[int], list[str]] | None:
        """Place the file's hunks in the file or where it moved; (hunks left, candidate files), or
        None when nothing is left (all placed, or a 3-way merge of the file stands).

        A file that moved and changed upstream is merged 3-way at its new path
        (old file as the base, the patched file as theirs), as git would had
        its rename detection paired the two.
        """
        assert fd.old_path is not None and fd.new_path is not None
        path = fd.old_path
        candidates = [path] if path in tip.paths else self._candidates(path, tip)
        pending = list(range(len(fd.hunks)))
        for target in candidates:
            lines = current(contents, tip, target)
            subset = tuple(fd.hunks[k] for k in pending)
            new_lines, placements, missing = place(lines, subset, self.fuzz, compiletest(target))
            if not placements:
                continue
            contents[target] = new_lines
            modes.setdefault(target, tip.paths[target])
            for p in placements:
                self._record(result, path, target, p, fd.hunks[pending[p.hunk]], "")
            pending = [pending[k] for k in missing]
            break
        if pending and path not in tip.paths:
            for target in candidates:
                text = self._merge_file(sides[0].text(path), current(contents, tip, target), sides[1].text(fd.new_path))
                if text is None:
                    continue
                merged_lines = contents[target] = split_lines(text)
                modes.setdefault(target, tip.paths[target])
                for k in pending:
                    at = _find_after(merged_lines, fd.hunks[k])
                    result.relocations.append(f"{path}:{fd.hunks[k].old_start} -> {target}:{at or '?'} "
                                              f"({why_moved(path, target)}, merged 3-way)")
                return None
        if pending and path in tip.paths and path not in conflicted and merged:
            # git's 3-way merge took this file without a conflict: its result stands
            text = self.repo.read(merged, path)
            if text is not None and text != tip.text(path):
                contents[path] = split_lines(text)
                modes.setdefault(path, tip.paths[path])
                return None
        return (pending, candidates) if pending else None

    def _search_hunks(self, fd: FileDiff, pending: list[int], candidates: list[str], tip: TreeView,
                      contents: dict[str, list[str] | None], modes: dict[str, str], result: Carried) -> None:
        """Each hunk left, placed where a search of the tree finds its whole preimage, or a failure."""
        assert fd.old_path is not None
        path = fd.old_path
        for k in pending:
            hunk = fd.hunks[k]
            searched = self._search(hunk, path, tip, contents)
            if searched is None or isinstance(searched, str):
                if candidates and already_there(current(contents, tip, candidates[0]), hunk,
                                                compiletest(candidates[0])):
                    result.already += 1
                    continue
                where = candidates[0] if candidates else "no file of that name or directory upstream"
                words = distinctive(hunk)
                found = searched or ("context found nowhere in the new tree" if not any(tip.grep(w) for w in words)
                                     else "context not found as a whole (changed upstream)")
                result.failures.append(f"{path}:{hunk.old_start}: hunk does not apply ({where}); {found}")
                result.unplaced.append(Unplaced(fd, k, tuple(candidates)))
                continue
            target, placement = searched
            modes.setdefault(target, tip.paths[target])
            self._record(result, path, target, Placement(k, placement.old_line, placement.new_line, placement.fuzz,
                                                         placement.how), hunk, "context found by a search of the new tree")

    def _record(self, result: Carried, path: str, target: str, p: Placement, hunk: Hunk, how: str) -> None:
        if target == path and p.fuzz == 0 and not how and not p.how:
            return
        why = how or (why_moved(path, target) if target != path else "")
        extra = ", ".join(filter(None, [p.how, f"fuzz {p.fuzz}" if p.fuzz else ""]))
        note = f" ({', '.join(filter(None, [why, extra]))})" if why or extra else ""
        result.relocations.append(f"{path}:{hunk.old_start} -> {target}:{p.new_line}{note}")

    def _search(self, hunk: Hunk, path: str, tip: TreeView, contents: dict[str, list[str] | None]
                ) -> tuple[str, Placement] | str | None:
        """Place the hunk in the file of the tree that holds its whole preimage: (file, placement),
        or why not when several files hold it and none is nearer the patch's path than the others."""
        found: dict[str, tuple[list[str], Placement]] = {}
        for word in distinctive(hunk):
            for target in tip.grep(word):
                if target in found:
                    continue
                new_lines, placements, _ = place(current(contents, tip, target), (hunk,), self.fuzz,
                                                 compiletest(target))
                if placements:
                    found[target] = (new_lines, placements[0])
        if not found:
            return None
        ranked = sorted(found, key=lambda t: -tail_score(path, t))
        if len(ranked) > 1 and tail_score(path, ranked[0]) == tail_score(path, ranked[1]):
            return f"its context is in several files ({', '.join(ranked[:3])}), none nearer the old path"
        target = ranked[0]
        contents[target] = found[target][0]
        return target, found[target][1]

    def _candidates(self, path: str, tip: TreeView) -> list[str]:
        """Where a file that is gone may live now: the same name (a module file x.rs counts as
        x/mod.rs) with the most trailing path components in common; at least the directory
        above it, unless the new tree has only that one file of the name; with none of the name,
        a module renamed into a directory named after one of its words."""
        if (tip.tree, path) in self._candidates_of:
            return self._candidates_of[tip.tree, path]
        names = tip.by_name()
        key = module_key(path)
        found = [p for p in names.get(_file_name(key), []) if p != path]
        scored = [(tail_score(key, module_key(p)), p) for p in found]
        if not (len(scored) == 1 and scored[0][0] >= 1):
            scored = [(s, p) for s, p in scored if s >= 2]
        best = max((s for s, _ in scored), default=0)
        found = sorted(p for s, p in scored if s == best) or self._renamed_module(path, tip)
        self._candidates_of[tip.tree, path] = found
        return found

    def _renamed_module(self, path: str, tip: TreeView) -> list[str]:
        """A module file gone with no file of its name left, found under its old directory by the
        words of its name: x/windows_gnu_base.rs as x/base/windows_gnu.rs (rustc's target specs
        moved so in 1.74), when exactly one file there is spelled with the same words."""
        directory, name = os.path.split(path)
        stem, ext = os.path.splitext(name)
        words = sorted(stem.split("_"))
        if len(words) < 2 or not ext:
            return []
        prefix = directory + "/" if directory else ""
        found = []
        for other in tip.paths:
            if not other.startswith(prefix) or not other.endswith(ext) or other == path:
                continue
            rel = module_key(other[len(prefix):])[:-len(ext)]
            if rel.count("/") <= 1 and sorted(rel.replace("/", "_").split("_")) == words:
                found.append(other)
        return found if len(found) == 1 else []

    def _new_file_path(self, path: str, old: TreeView, tip: TreeView) -> tuple[str, str]:
        """A created file's path, with its gone directory followed to where upstream moved it (by
        where that directory's files went): (path, "") or, when the move cannot be told (its files
        are nowhere, or went to several places as often), (path unchanged, the finding)."""
        gone = gone_directory(path, old, tip)
        if gone is None:
            return path, ""
        votes = self._where_files_went(gone, old, tip)
        ranked = votes.most_common(3)
        if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
            return ranked[0][0] + path[len(gone):], ""
        went = "its files went to: " + ", ".join(f"{d}/ ({n})" for d, n in ranked) if ranked else \
            "none of its files is in the new tree by name"
        return path, f"{path}: created in {gone}/, which is gone upstream; {went}"

    def _where_files_went(self, directory: str, old: TreeView, tip: TreeView) -> collections.Counter[str]:
        """New directory -> how many of the old directory's files (the first 20) are found there
        under the same relative path, by the file's new path as `_candidates` finds it."""
        votes: collections.Counter[str] = collections.Counter()
        siblings = [p for p in old.paths if p.startswith(directory + "/")][:20]
        for sibling in siblings:
            rel = sibling[len(directory) + 1:]
            for moved in self._candidates(sibling, tip)[:1]:
                if moved.endswith("/" + rel):
                    votes[moved[:-len(rel) - 1]] += 1
        return votes

    def _merge_file(self, base: str | None, ours: list[str], theirs: str | None) -> str | None:
        """git merge-file of the three texts: the merged text, or None on a conflict."""
        if base is None or theirs is None:
            return None
        names = []
        for name, text in (("ours", "".join(ours)), ("base", base), ("theirs", theirs)):
            path = str(self.file(name))
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)
            names.append(path)
        res = self.repo.try_run("merge-file", "-p", "--quiet", *names, readonly=True, strip=False)
        return res.out if res.status == 0 else None

    def _write_tree(self, tip_tree: str, contents: dict[str, list[str] | None], modes: dict[str, str]) -> str:
        entries = []
        for path, lines in sorted(contents.items()):
            if lines is None:
                entries.append(f"0 {'0' * 40}\t{path}")
                continue
            blob = self.repo.run("hash-object", "-w", "--stdin", input="".join(lines)).strip()
            entries.append(f"{modes.get(path, '100644')} {blob}\t{path}")
        return self.tree_with(tip_tree, entries)


#: the throwaway commits merge-tree is given: fixed, so the same carry makes the same objects
_FIXED = tool_commit_env("@0 +0000")


def _find_after(lines: list[str], hunk: Hunk) -> int | None:
    """Where the hunk's result starts in `lines` (1-based): its whole result, else its changed
    lines alone (a 3-way merge may have changed the context around them)."""
    core = hunk.after[hunk.lead:len(hunk.after) - hunk.trail]
    at = find_block(lines, hunk.after, max(hunk.old_start - 1, 0))
    if at is None and core:
        found = find_block(lines, core, max(hunk.old_start - 1, 0) + hunk.lead)
        return found - hunk.lead + 1 if found is not None else None
    return at + 1 if at is not None else None
