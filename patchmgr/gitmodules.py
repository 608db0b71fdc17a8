"""A repository's .gitmodules, read as `git submodule` reads it: one reader for every caller.

The file is parsed by git's own config parser straight from the object store
(`git config --blob`), never by hand: quoting, includes that `git submodule`
ignores, and a malformed file are git's business. Entries are keyed by the
path they name, since the path is what patchmgr knows (a submodule's name is
often, but not always, its path).
"""

from __future__ import annotations

from dataclasses import dataclass

from patchmgr.gitio import Repo


@dataclass(frozen=True)
class Submodule:
    name: str
    path: str
    url: str | None = None
    branch: str | None = None


def parse_list(listing: str) -> dict[str, Submodule]:
    """`git config -z --list` output of a .gitmodules -> path -> its entry; an entry without a
    path is not a submodule git would check out, and is left out."""
    fields: dict[str, dict[str, str | None]] = {}
    for item in filter(None, listing.split("\0")):
        key, newline, value = item.partition("\n")
        section, _, rest = key.partition(".")
        name, _, variable = rest.rpartition(".")
        if section == "submodule" and name:
            fields.setdefault(name, {})[variable] = value if newline else None
    found = {}
    for name, f in fields.items():
        path = f.get("path")
        if path:
            found[path] = Submodule(name, path, f.get("url"), f.get("branch"))
    return found


def read(repo: Repo, blob: str) -> dict[str, Submodule]:
    """The submodules `blob` (e.g. `HEAD:.gitmodules`, `:.gitmodules` for the index) lists, by
    path; none where there is no such file or git cannot parse it (git submodule sees none then)."""
    res = repo.try_run("config", "-z", "--blob", blob, "--list", readonly=True, strip=False)
    return parse_list(res.out) if res.status == 0 else {}
