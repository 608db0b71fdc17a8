"""Is a patch's change already in the new upstream, in the same form or in upstream's own?

Each finding names where, so a reviewer can check it: the upstream commit
with the same patch-id, the definitions of the options and config keys the
patch adds, the commit an `Upstream:` trailer names, or the earlier patch
whose hand-made resolution already took this change.
"""

from __future__ import annotations

import re

from patchmgr.carry import TreeView
from patchmgr.gitio import Repo
from patchmgr.hunks import FileDiff
from patchmgr.patchfile import Patch
from patchmgr.surface import CONFIG_FIELD, OPTIONS_FILE, find_surface

_UPSTREAM = re.compile(r"(?mi)^Upstream:[ \t]*(\S.*?)\s*$")
_SHA = re.compile(r"(?:^|/commit/|\b)([0-9a-f]{7,40})\b")
_PR = re.compile(r"/pull/(\d+)|^#?(\d+)$")


def upstream_twin(repo: Repo, patch: Patch, old_base: str, onto: str) -> str | None:
    """An upstream commit between the bases with this patch's patch-id, as 'sha subject'.

    Only commits touching exactly the patch's files can carry the same change,
    so only those are diffed (a release import touching everything is not).
    """
    touching = repo.run("log", "--format=%H", f"{old_base}..{onto}", "--", *patch.paths, readonly=True).split()
    if not touching:
        return None
    # every file of each such commit, in one process: git diff-tree prints the id, then its files
    listing = repo.run("diff-tree", "--stdin", "-r", "--root", "--name-only", "--no-renames",
                       input="".join(sha + "\n" for sha in touching), readonly=True)
    files: dict[str, set[str]] = {}
    current, listed = None, set(touching)
    for line in listing.splitlines():
        if line in listed:
            current = files.setdefault(line, set())
        elif current is not None and line:
            current.add(line)
    candidates = [sha for sha in touching if files.get(sha) == set(patch.paths)]
    if not candidates:
        return None
    ids = repo.patch_ids(candidates)
    mine = repo.patch_ids_of_diffs([patch.diff])[0]
    for sha in candidates:
        if ids.get(sha) == mine:
            return repo.run("log", "-1", "--format=%h %s", sha, readonly=True).strip()
    return None


def superseded_by(patch: Patch, read_patched, tip: TreeView) -> list[str]:
    """Where the new base defines every option, config key and new file the patch adds; [] unless all are.

    `read_patched` reads a file as the patch leaves it (for the enclosing
    options table or config struct of an added line).
    """
    surface = find_surface([patch], read_patched)
    found: list[str | None] = []
    for option in surface.options:
        found.append(_located(option.flag, tip, OPTIONS_FILE, rf"^\s*{re.escape(option.name)}: "))
    for key in surface.config_keys:
        leaf = key.key.rsplit(".", 1)[-1]
        files = [p for p in tip.grep(f'"{leaf}"') if p.startswith("src/bootstrap/")]
        found.append(next((loc for path in files
                           if (loc := _located(key.key, tip, path, CONFIG_FIELD.pattern, leaf))), None))
    for path in surface.new_files:
        found.append(f"new file {path} exists upstream" if path in tip.paths else None)
    if not found or None in found:
        return []
    return [f for f in found if f]


def _located(what: str, tip: TreeView, path: str, pattern: str, value: str | None = None) -> str | None:
    """'what in path:line' for the first line of the file matching `pattern` (and naming `value`)."""
    for n, line in enumerate((tip.text(path) or "").split("\n"), 1):
        m = re.match(pattern, line)
        if m and (value is None or value in m.groups()):
            return f"{what} in {path}:{n}"
    return None


def upstream_trailer(patch: Patch) -> str | None:
    """The patch's `Upstream:` trailer (a rust-lang/rust commit or PR), if it has one."""
    message = patch.text[:patch.text.find("\ndiff --git ")]
    m = _UPSTREAM.search(message)
    return m.group(1) if m else None


def trailer_in_base(repo: Repo, trailer: str, onto: str) -> str | None:
    """Where the new base's history shows the change an `Upstream:` trailer names, or None.

    A tree imported from a release has no upstream history; there the carry
    itself (every hunk already there) is the answer.
    """
    sha = _SHA.search(trailer)
    if sha and (full := repo.rev(sha.group(1) + "^{commit}")):
        ancestor = repo.try_run("merge-base", "--is-ancestor", full, onto, readonly=True).status == 0
        return f"upstream commit {full[:12]} is in the new base" if ancestor else None
    pr = _PR.search(trailer)
    if pr:
        number = pr.group(1) or pr.group(2)
        merged = repo.run("log", "-1", "--format=%h %s", "--fixed-strings", f"--grep=Auto merge of #{number} ", onto,
                          readonly=True).strip()
        return f"PR #{number} merged upstream as {merged}" if merged else None
    return None


def absorbed_by(repo: Repo, diffs: list[FileDiff], resolved: list[tuple[str, str]]) -> str | None:
    """The earlier patch (label) whose resolution by hand already added every line this patch adds.

    `resolved` is (label, commit) of each patch resolved by hand in this
    replay, oldest first: a conflict resolved by taking a later patch's lines
    too leaves that later patch nothing to do.
    """
    added = {line.strip() for fd in diffs for h in fd.hunks for line in h.after if line not in h.before and line.strip()}
    if not added:
        return None
    for label, commit in resolved:
        text = repo.run("show", "--format=", "--no-color", commit, readonly=True, strip=False)
        theirs = {line[1:].strip() for line in text.split("\n") if line.startswith("+") and not line.startswith("+++")}
        if added <= theirs:
            return label
    return None
