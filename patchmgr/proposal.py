"""A proposal for each hunk a rebase stops on: where it most likely belongs now, and a candidate.

A hunk stops because upstream rewrote the lines it removes (or moved them):
no exact, reindented or fuzzed place exists, so the carry will not guess.
A maintainer refreshing it by hand first looks for where those lines went,
then re-expresses the hunk's change there. A proposal does both steps for
them, as a suggestion that is never counted as carried:

- the place: among the hunk's file, the files it may have moved to (the
  carry's own candidates: moved, renamed vendored crate, module renamed) and
  the files a search of the tree finds the hunk's distinctive lines in (a
  split file), the line range whose tokens are most similar to the hunk's
  preimage (difflib's ratio over word and punctuation tokens, so indentation
  and line breaks do not count), with that figure; the next-best place too
  when it is within `CLOSE` of the best. Below `LIKELY` there is no likely
  place and the proposal says so instead of guessing.
- the candidate: a 3-way merge with the hunk's preimage as the base, its
  postimage as ours and the new lines as theirs, line by line, and where
  lines conflict word by word (as wiggle does); when that still conflicts,
  no candidate, and the old and new text are shown side by side.

Pure functions, but for `propose`, which reads the new tree through the
carry's TreeView (git through gitio), and `rewriting_commits` (git blame).
"""

from __future__ import annotations

import collections
import difflib
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from patchmgr import state
from patchmgr.carry import Replay, Unplaced
from patchmgr.gitio import Repo
from patchmgr.hunks import Hunk, distinctive, find_block, split_lines

#: below this similarity there is no likely place: a window of unrelated Rust code of the same
#: size scores 0.3 to 0.5 on shared keywords and punctuation alone (measured on rustc 1.85's
#: compiler/ files, see docs/rebase.md)
LIKELY = 0.6
#: the next-best place is shown when it is this close to the best
CLOSE = 0.05
#: a token found on more lines than this says nothing about where a hunk is (`self`, `(`, `let`)
_COMMON = 40
#: places looked at closely per file: the best starts by token votes
_STARTS = 6
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+|\s+|[^\w\s]")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
MARK_OURS, MARK_BASE, MARK_SEP, MARK_THEIRS = "<" * 7, "|" * 7, "=" * 7, ">" * 7
#: the first marker line of every block a proposal writes: what --continue looks for
MARK_PROPOSAL = MARK_OURS + " proposal"


def tokens(text: str) -> list[str]:
    """Words and punctuation: what two versions of a line have in common when upstream
    renamed a variable, reindented, or broke the line in two."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class Window:
    """A line range of a file: 0-based start, end exclusive, and its similarity to the preimage."""

    path: str
    start: int
    end: int
    similarity: float

    def overlaps(self, other: Window) -> bool:
        return self.path == other.path and self.start < other.end and other.start < self.end

    def named(self) -> str:
        return f"{self.path}:{self.start + 1}-{self.end}"


class FileIndex:
    """One file's lines, their tokens, and which lines hold each rare token."""

    def __init__(self, path: str, lines: list[str]):
        self.path, self.lines = path, lines
        self.line_tokens = [tokens(line) for line in lines]
        postings: dict[str, list[int]] = collections.defaultdict(list)
        for i, toks in enumerate(self.line_tokens):
            for tok in set(toks):
                postings[tok].append(i)
        self.postings = {tok: found for tok, found in postings.items() if len(found) <= _COMMON}

    def window_tokens(self, start: int, end: int) -> list[str]:
        return [tok for toks in self.line_tokens[start:end] for tok in toks]


def similarity(a: list[str], b: list[str]) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def locate(index: FileIndex, before: Sequence[str]) -> list[Window]:
    """The places of the file most like `before`, best first, none overlapping another.

    Each rare token a preimage line shares with a file line votes for the
    window that would align the two (weighted by how rare it is), so a
    place is found in one pass over the hunk's tokens, whatever the file's
    size; the few best-voted starts are then measured (start and end moved
    by a few lines) by their similarity.
    """
    n = len(before)
    if not n or not index.lines:
        return []
    votes: dict[int, float] = collections.defaultdict(float)
    for i, line in enumerate(before):
        for tok in set(tokens(line)):
            found = index.postings.get(tok)
            if found:
                weight = 1.0 / len(found)
                for j in found:
                    votes[j - i] += weight
    want = tokens("".join(before))
    places: list[Window] = []
    for start in sorted(votes, key=lambda k: -votes[k])[:_STARTS * 4]:
        if any(abs(start - p.start) < max(n // 2, 1) for p in places):
            continue
        places.append(_refine(index, want, start, n))
        if len(places) >= _STARTS:
            break
    places.sort(key=lambda w: -w.similarity)
    kept: list[Window] = []
    for place in places:
        if not any(place.overlaps(k) for k in kept):
            kept.append(place)
    return kept


def _refine(index: FileIndex, want: list[str], start: int, n: int) -> Window:
    """The window near [start, start + n) most similar to `want`: its start, then its end,
    moved by up to a few lines (upstream added or removed lines in it)."""
    size = len(index.lines)
    slack = 3 + n // 4

    def score(a: int, b: int) -> float:
        return similarity(want, index.window_tokens(a, b))

    clamp = lambda x: max(0, min(x, size))  # noqa: E731
    best_start, best_end = clamp(start), clamp(start + n)
    best = score(best_start, best_end)
    for a in range(clamp(start - slack), clamp(start + slack) + 1):
        b = clamp(a + n)
        if a < b and (s := score(a, b)) > best:
            best, best_start, best_end = s, a, b
    for b in range(clamp(best_start + n - slack), clamp(best_start + n + slack) + 1):
        if b > best_start and (s := score(best_start, b)) > best:
            best, best_end = s, b
    return Window(index.path, best_start, best_end, best)


# --- the candidate ------------------------------------------------------------

def _sync_regions(base: Sequence[Hashable], a: Sequence[Hashable], b: Sequence[Hashable]
                  ) -> list[tuple[int, int, int, int, int, int]]:
    """Runs of `base` that both `a` and `b` kept, as (base start, end, a start, end, b start, end),
    ending with an empty run at the three ends (diff3's stable regions)."""
    ma = difflib.SequenceMatcher(None, base, a, autojunk=False).get_matching_blocks()
    mb = difflib.SequenceMatcher(None, base, b, autojunk=False).get_matching_blocks()
    regions = []
    ia = ib = 0
    while ia < len(ma) and ib < len(mb):
        abase, amatch, alen = ma[ia]
        bbase, bmatch, blen = mb[ib]
        lo, hi = max(abase, bbase), min(abase + alen, bbase + blen)
        if lo < hi:
            regions.append((lo, hi, amatch + lo - abase, amatch + hi - abase, bmatch + lo - bbase, bmatch + hi - bbase))
        if abase + alen < bbase + blen:
            ia += 1
        else:
            ib += 1
    regions.append((len(base), len(base), len(a), len(a), len(b), len(b)))
    return regions


Clash = tuple[list[str], list[str], list[str]]


def merge3(base: Sequence[str], ours: Sequence[str], theirs: Sequence[str]) -> list[str | Clash]:
    """diff3 of the three sequences: merged items, with each conflict as a tuple
    (base part, ours part, theirs part) in its place."""
    out: list[str | Clash] = []
    iz = ia = ib = 0
    for zs, ze, as_, ae, bs, be in _sync_regions(base, ours, theirs):
        z, x, y = list(base[iz:zs]), list(ours[ia:as_]), list(theirs[ib:bs])
        if x == y or x == z:
            out += y
        elif y == z:
            out += x
        else:
            out.append((z, x, y))
        out += base[zs:ze]
        iz, ia, ib = ze, ae, be
    return out


def merge_lines(base: Sequence[str], ours: Sequence[str], theirs: Sequence[str]) -> list[str] | None:
    """The hunk's change (base -> ours) made on `theirs`: a line-level 3-way merge whose
    conflicting parts are merged again word by word; None when a part still conflicts."""
    merged: list[str] = []
    for item in merge3(base, ours, theirs):
        if isinstance(item, str):
            merged.append(item)
            continue
        z, x, y = (_WORD.findall("".join(part)) for part in item)
        words = merge3(z, x, y)
        clean = [w for w in words if isinstance(w, str)]
        if len(clean) != len(words):
            return None
        merged += split_lines("".join(clean))
    renames = renamed(base, theirs)
    if renames:
        kept_lines = set(theirs)
        merged = [line if line in kept_lines else _WORD.sub(lambda m: renames.get(m.group(0), m.group(0)), line)
                  for line in merged]
    return split_lines("".join(merged))


def renamed(base: Sequence[str], theirs: Sequence[str]) -> dict[str, str]:
    """Identifiers upstream renamed throughout the lines (`debugging_opts` -> `unstable_opts`):
    each old name replaced by the same new one wherever the two differ by it, and gone from
    the new lines. The lines the patch adds take the new names, as a maintainer would write them."""
    a, b = _WORD.findall("".join(base)), _WORD.findall("".join(theirs))
    pairs: dict[str, set[str]] = collections.defaultdict(set)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "replace" and i2 - i1 == j2 - j1:
            for old, new in zip(a[i1:i2], b[j1:j2]):
                if old != new and _IDENT.match(old) and _IDENT.match(new):
                    pairs[old].add(new)
    gone = set(b)
    return {old: next(iter(new)) for old, new in pairs.items() if len(new) == 1 and old not in gone}


def block(label: str, hunk_path: str, hunk: Hunk, window: list[str], candidate: list[str] | None,
          similarity_of: float) -> list[str]:
    """The conflict block written at the proposed place, diff3 style: the candidate (or, when
    no merge makes one, the patch's own new lines), the patch's old lines, upstream's lines."""
    def ended(lines: Sequence[str]) -> list[str]:
        return [line if line.endswith("\n") else line + "\n" for line in lines]

    ours = candidate if candidate is not None else list(hunk.after)
    what = "the patch's change merged onto upstream's lines" if candidate is not None else \
        "the patch's new lines as they were (no merge made a candidate)"
    return [f"{MARK_PROPOSAL} for {label}, hunk {hunk_path}:{hunk.old_start}: {what}\n", *ended(ours),
            f"{MARK_BASE} the lines the patch expected\n", *ended(hunk.before),
            f"{MARK_SEP}\n", *ended(window),
            f"{MARK_THEIRS} upstream's lines now (similarity {similarity_of:.2f})\n"]


# --- a stopped patch ------------------------------------------------------------

@dataclass
class Found:
    """One hunk's proposal, and what writing it into a work tree needs."""

    record: state.Proposal
    hunk: Hunk
    window: list[str]  # upstream's lines at the place


class Proposer:
    """Proposals on one new tree; file indexes built once per file."""

    def __init__(self, replay: Replay, tree: str):
        self.replay, self.view = replay, replay.view(tree)
        self._indexes: dict[str, FileIndex | None] = {}

    def index(self, path: str) -> FileIndex | None:
        if path not in self._indexes:
            text = self.view.text(path)
            self._indexes[path] = FileIndex(path, split_lines(text)) if text is not None else None
        return self._indexes[path]

    def files(self, item: Unplaced) -> list[str]:
        """Where the hunk's lines may be: its file, the files its file may have become (the
        carry's candidates), and the files holding its distinctive lines (a split file)."""
        hunk = item.diff.hunks[item.index]
        grepped = [f for word in distinctive(hunk) for f in self.view.grep(word)]
        return list(dict.fromkeys([*item.candidates, *grepped]))

    def propose(self, item: Unplaced) -> Found:
        """The best place for one hunk (or none) and its candidate there."""
        hunk = item.diff.hunks[item.index]
        path = item.diff.old_path or ""
        places: list[Window] = []
        for target in self.files(item):
            index = self.index(target)
            if index is not None:
                places += locate(index, hunk.before)
        places.sort(key=lambda w: -w.similarity)
        record = state.Proposal(path=path, line=hunk.old_start)
        if not places or places[0].similarity < LIKELY:
            record.similarity = round(places[0].similarity, 2) if places else 0.0
            return Found(record, hunk, [])
        best = places[0]
        runner = next((w for w in places[1:] if not w.overlaps(best)), None)
        index = self.index(best.path)
        assert index is not None
        window = index.lines[best.start:best.end]
        record.target, record.start, record.end = best.path, best.start + 1, best.end
        record.similarity = round(best.similarity, 2)
        if runner is not None and best.similarity - runner.similarity <= CLOSE:
            record.runner_up = f"{runner.named()} ({runner.similarity:.2f})"
        record.candidate = merge_lines(hunk.before, hunk.after, window)
        if record.candidate == window:
            record.candidate = None  # the merge dropped the change: nothing to propose but the sides
        return Found(record, hunk, window)


def propose_all(replay: Replay, tree: str, unplaced: Sequence[Unplaced]) -> list[Found]:
    proposer = Proposer(replay, tree)
    return [proposer.propose(item) for item in unplaced]


def describe(p: state.Proposal) -> str:
    """One line for a report: the hunk, where it most likely goes, how sure, the candidate."""
    if not p.target:
        return (f"{p.path}:{p.line}: no likely place (best similarity {p.similarity:.2f}, "
                f"below {LIKELY:.2f})")
    near = f"; next best {p.runner_up}" if p.runner_up else ""
    what = "candidate merged onto upstream's lines" if p.candidate is not None else \
        "no merge: old and new lines side by side"
    text = f"{p.path}:{p.line} -> {p.target}:{p.start}-{p.end} (similarity {p.similarity:.2f}{near}); {what}"
    if p.commits:
        text += "; rewritten upstream by " + ", ".join(p.commits)
    if p.written:
        text += f"; {p.written}"
    return text


# --- git: who rewrote the lines, and the work tree -----------------------------------

def rewriting_commits(repo: Repo, path: str, ranges: list[tuple[int, int]], old_base: str, onto: str) -> list[str]:
    """Full ids of the commits in old_base..onto that changed or removed the lines `ranges`
    ((1-based start, count) in the old file) of `path`, oldest first.

    `git blame --reverse` gives, per line of the old file, the last commit
    that still had it; the first commit after that one to touch the file is
    the one that changed it (or moved the file away).
    """
    found: list[str] = []
    args = [f"-L{max(start, 1)},+{max(count, 1)}" for start, count in ranges]
    res = repo.try_run("blame", "--reverse", f"{old_base}..{onto}", "--porcelain", *args, "--", path, readonly=True)
    if res.status != 0:
        return []
    last_seen: list[str] = []
    for line in res.out.splitlines():
        m = re.match(r"^([0-9a-f]{40}) \d+ \d+", line)
        if m and m.group(1) not in last_seen:
            last_seen.append(m.group(1))
    for sha in last_seen:
        if sha == onto:
            continue
        after = repo.run("rev-list", "--reverse", "--ancestry-path", f"{sha}..{onto}", "--", path,
                         readonly=True).split()
        if after and after[0] not in found:
            found.append(after[0])
    return found


def subjects(repo: Repo, shas: list[str]) -> list[str]:
    return [repo.run("log", "-1", "--format=%h %s", sha, readonly=True).strip() for sha in shas]


def with_commits(repo: Repo, found: list[Found], old_base: str, onto: str) -> None:
    """Each proposal's `commits`: the upstream commits that rewrote its hunk's old lines
    (one blame per file, for all its hunks)."""
    by_path: dict[str, list[Found]] = collections.defaultdict(list)
    for f in found:
        by_path[f.record.path].append(f)
    for path, items in by_path.items():
        for f in items:
            hunk = f.hunk
            f.record.commits = subjects(repo, rewriting_commits(repo, path, [(hunk.old_start, len(hunk.before))],
                                                                old_base, onto))


def resolve_to_ours(lines: list[str]) -> list[str]:
    """`lines` with every conflict block git left resolved to its first side (HEAD: upstream's
    lines, which is what a proposal's place is measured on)."""
    out: list[str] = []
    side = None
    for line in lines:
        if line.startswith(MARK_OURS + " ") or line.rstrip("\n") == MARK_OURS:
            side = "ours"
        elif side and (line.startswith(MARK_BASE) or line.rstrip("\n") == MARK_SEP):
            side = "other"
        elif side and line.startswith(MARK_THEIRS):
            side = None
        elif side in (None, "ours"):
            out.append(line)
    return out


def write_into(lines: list[str], f: Found, label: str) -> tuple[list[str], str]:
    """`lines` (a work tree file) with the proposal's block in place of upstream's lines at the
    proposed place: (new lines, where it was written, or why not)."""
    record = f.record
    if record.target is None:
        return lines, ""
    clean = resolve_to_ours(lines) if any(line.startswith(MARK_OURS) for line in lines) else lines
    at = find_block(clean, tuple(f.window), record.start - 1)
    if at is None:
        return lines, "not written: the work tree's lines there differ from upstream's"
    if clean is not lines:
        # git's own conflict blocks are replaced by their upstream side only where ours goes
        return _write_over_conflicts(lines, f, label)
    out = lines[:at] + block(label, record.path, f.hunk, f.window, record.candidate, record.similarity) + \
        lines[at + len(f.window):]
    return out, f"written at {record.target}:{at + 1} with conflict markers"


def _write_over_conflicts(lines: list[str], f: Found, label: str) -> tuple[list[str], str]:
    """write_into for a file git left conflict blocks in: the blocks that overlap the place are
    resolved to upstream's side (the proposal shows both sides there), the others stay."""
    blocks: list[tuple[int, int, list[str]]] = []  # (first line, end, upstream's side)
    i = 0
    while i < len(lines):
        if lines[i].startswith(MARK_OURS):
            j, ours, side = i + 1, [], True
            while j < len(lines) and not lines[j].startswith(MARK_THEIRS):
                if lines[j].startswith(MARK_BASE) or lines[j].rstrip("\n") == MARK_SEP:
                    side = False
                elif side:
                    ours.append(lines[j])
                j += 1
            blocks.append((i, j + 1, ours))
            i = j + 1
        else:
            i += 1
    # the file as lines of upstream, each mapped back to where it is in `lines`
    flat: list[str] = []
    origin: list[tuple[int, int]] = []  # per flat line: the span of `lines` it stands for
    k = 0
    for start, end, ours in [*blocks, (len(lines), len(lines), [])]:
        for n in range(k, start):
            flat.append(lines[n])
            origin.append((n, n + 1))
        for line in ours:
            flat.append(line)
            origin.append((start, end))
        k = end
    at = find_block(flat, tuple(f.window), f.record.start - 1)
    assert at is not None  # write_into found it in the same lines
    stop = at + len(f.window)
    first, last = origin[at][0], origin[stop - 1][1]
    # whole git blocks go; their upstream lines outside the place stay, around the proposal
    head = [flat[m] for m in range(at) if origin[m][0] >= first]
    tail = [flat[m] for m in range(stop, len(flat)) if origin[m][1] <= last]
    record = f.record
    out = lines[:first] + head + block(label, record.path, f.hunk, f.window, record.candidate, record.similarity) + \
        tail + lines[last:]
    return out, f"written at {record.target}:{first + len(head) + 1} with conflict markers (git's conflict there replaced)"


def kept(text: str | None, record: state.Proposal) -> bool:
    """Whether a resolved file keeps the proposal's candidate (resolved from the proposal)."""
    return text is not None and record.candidate is not None and \
        find_block(split_lines(text), tuple(record.candidate), max(record.start - 1, 0)) is not None
