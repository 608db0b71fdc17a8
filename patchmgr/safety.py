"""Checks on paths and URLs that come from patches and manifests.

These strings end up as git arguments and as paths git writes to, so they are
checked before git ever sees them: a patch series is data from elsewhere, and a
hostile one must not write outside the checkout, into `.git/`, or make git run
a command through a remote helper.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9.-]+:(?!//)[^\s]+$")
_URL_SCHEMES = ("https://", "http://", "ssh://", "git://", "git+ssh://", "ssh+git://", "file://")


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
    return None


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
