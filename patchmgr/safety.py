"""Checks on paths, URLs, ref names and submodule config that come from patches and manifests.

These strings end up as git arguments, as paths git writes to and as refs, so
they are checked before git ever sees them: a patch series is data from
elsewhere, and a hostile one must not write outside the checkout, into
`.git/`, make git run a command through a remote helper, or name a branch git
itself would refuse halfway through an apply.

Everything here is pure except `git_config_entries`, which asks git's own
config parser (an argument list, no shell, no repository), because a
hand-written parser would disagree with git on exactly the inputs an attacker
picks.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

from patchmgr.scratch import scratch_dir

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9.-]+:(?!//)[^\s]+$")
_URL_SCHEMES = ("https://", "http://", "ssh://", "git://", "git+ssh://", "ssh+git://", "file://")
#: git check-ref-format: control characters, space and ~ ^ : ? * [ \ are never part of a ref
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")

#: NAME_MAX of every file system a rustc checkout lives on (ext4, xfs, btrfs, APFS, NTFS)
MAX_COMPONENT_BYTES = 255
#: Linux's PATH_MAX (4096) less the terminating NUL: git works from the top of the repository,
#: so this is the longest path, relative to it, that git writes; the checkout's own location
#: does not count
MAX_PATH_BYTES = 4095


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def length_problem(path: str) -> str | None:
    """Why `path` is too long for a file system, or None.

    git would fail on such a path halfway through an apply, leaving a
    half-patched tree; refusing up front keeps the tree untouched. The limits
    are the ones git meets: bytes of the path relative to its repository, and
    of each component; anything git writes passes.
    """
    if _nbytes(path) > MAX_PATH_BYTES:
        return f"is {_nbytes(path)} bytes long (git and file systems allow {MAX_PATH_BYTES})"
    for part in path.split("/"):
        if _nbytes(part) > MAX_COMPONENT_BYTES:
            return f"has a component of {_nbytes(part)} bytes (file systems allow {MAX_COMPONENT_BYTES})"
    return None


def path_problem(path: str) -> str | None:
    """Why `path` is unsafe as a repository-relative path, or None when it is fine."""
    if not path:
        return "is empty"
    if _CONTROL.search(path):
        return "contains a control character"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "is absolute"
    parts = path.split("/")
    for part in parts:
        if part == "..":
            return "contains '..'"
        if part in ("", "."):
            return "has an empty or '.' component"
        # `.git`, and the spellings case-insensitive or NTFS-trimming
        # filesystems resolve to it.
        if part.rstrip(". ").lower() == ".git" or part.lower().startswith("git~"):
            return "points into .git/"
    return length_problem(path)


def is_gitmodules(path: str) -> bool:
    """Whether `path` is the top-level `.gitmodules` as git (and case-insensitive or
    NTFS-trimming file systems) would read it."""
    name = path.rstrip(". ").lower()
    # NTFS short names: the truncated one, and the hashed one git also refuses
    return name == ".gitmodules" or name.startswith(("gitmod~", "gi7eba~"))


def url_problem(url: str) -> str | None:
    """Why `url` is unsafe to hand to `git clone`, or None when it is fine.

    `-...` would be read as an option, and `<transport>::<address>` (ext::,
    fd::, ...) runs a remote helper, which for ext:: is an arbitrary command.
    """
    if not url:
        return "is empty"
    if url.startswith("-"):
        return "starts with '-' (git would read it as an option)"
    if "::" in url.split("/", 1)[0]:
        return "uses a remote-helper transport ('<transport>::'), which can run commands"
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        return "contains whitespace or a control character"
    lowered = url.lower()
    for scheme in _URL_SCHEMES:
        if lowered.startswith(scheme):
            rest = url[len(scheme):]
            host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
            if host.startswith("-"):
                return "has a host starting with '-'"
            if scheme != "file://" and not host:
                return "has no host"
            return None
    if url.startswith("/"):
        return None
    if _SCP_LIKE.match(url) and not url.split("@")[-1].startswith("-"):
        return None
    return "is not an absolute URL (https://, ssh://, git://, file://, host:path or /path)"


def ref_name_problem(name: str) -> str | None:
    """Why `name` cannot be a git ref name (or the part of one under refs/heads/...), or None.

    git check-ref-format's rules, checked here so that a set name is refused
    when the manifest is read, not by git after an apply has begun.
    """
    if not name:
        return "is empty"
    if name == "@":
        return "is '@'"
    if _REF_FORBIDDEN.search(name):
        return "contains a character git forbids in ref names (control characters, space, ~ ^ : ? * [ \\)"
    if ".." in name:
        return "contains '..'"
    if "@{" in name:
        return "contains '@{'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "has an empty component ('/' at the start or end, or '//')"
    if name.endswith("."):
        return "ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return f"has a component starting with '.' ({part!r})"
        if part.endswith(".lock"):
            return f"has a component ending in '.lock' ({part!r})"
    return None


def submodule_config_problem(entries: list[tuple[str, str | None]]) -> tuple[str, str | None, str] | None:
    """(key, value, why) for the first unsafe `submodule.*` entry of a parsed .gitmodules, or None.

    `entries` are `git config --list` pairs: section and key names already
    lower-cased by git, the subsection (the submodule's name) as written.
    A url must pass url_problem, a path path_problem, and an update command
    (`!cmd`) is refused: each would make `git submodule update` fetch from or
    write to where the series says, or run what it says.
    """
    for key, value in entries:
        if not key.startswith("submodule.") or key.count(".") < 2:
            continue
        name, _, variable = key[len("submodule."):].rpartition(".")
        if ".." in re.split(r"[/\\]", name):
            return key, value, "names the submodule with a '..' component (git refuses such names)"
        if variable == "url":
            problem = url_problem(value or "")
            if problem:
                return key, value, problem
        elif variable == "path":
            problem = path_problem(value or "")
            if problem:
                return key, value, problem
        elif variable == "update" and (value or "").lstrip().startswith("!"):
            return key, value, "runs a command on submodule update"
    return None


class ConfigParseError(ValueError):
    """git's config parser refused the text; the message is git's own line."""


@functools.lru_cache(maxsize=1)
def _git_reads_config_from_stdin() -> bool:
    """`git config --file -` reads standard input since git 2.0.0 (RelNotes/2.0.0)."""
    from patchmgr.gitio import Repo

    out = Repo(tempfile.gettempdir()).try_run("--version").out  # "git version 2.39.5"
    numbers = re.findall(r"\d+", out)
    return len(numbers) >= 2 and (int(numbers[0]), int(numbers[1])) >= (2, 0)


#: a config run that sees nothing but its input: no system or global file, no
#: -c or GIT_CONFIG_* from the environment, no includes
_CONFIG_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_PARAMETERS": "",
               "GIT_CONFIG_COUNT": "0", "GIT_DIR": "/dev/null", "HOME": "/dev/null"}


def git_config_entries(text: str) -> list[tuple[str, str | None]]:
    """(key, value) of every entry of `text` as git's config parser reads it.

    Runs `git config --no-includes --file - --null --list` with the text on
    stdin (a temporary file on a git too old for that), in an empty
    directory, so the result is exactly what git submodule would read and
    nothing else. A value-less key (`[s] flag`) gives None. Raises
    ConfigParseError with git's message when git refuses the text.
    """
    from patchmgr.gitio import Repo

    with scratch_dir("config") as neutral:
        repo = Repo(neutral, "(.gitmodules check)")
        args = ["config", "--no-includes", "--null", "--list", "--file"]
        if _git_reads_config_from_stdin():
            res = repo.try_run(*args, "-", input=text, env=_CONFIG_ENV, readonly=True, strip=False)
        else:
            source = Path(neutral) / "gitmodules"
            source.write_text(text, encoding="utf-8", errors="surrogateescape")
            res = repo.try_run(*args, str(source), env=_CONFIG_ENV, readonly=True, strip=False)
    if res.status != 0:
        detail = next((line for line in res.err.splitlines() if line.strip()), f"exit {res.status}")
        raise ConfigParseError(detail.removeprefix("fatal: ").removeprefix("error: ").strip())
    entries = []
    for item in res.out.split("\0"):
        if item:
            key, newline, value = item.partition("\n")
            entries.append((key, value if newline else None))
    return entries


def inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether `path`, symlinks resolved, stays inside `root` (symlinks resolved too)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)
