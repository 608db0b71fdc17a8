"""One `git format-patch` file: parse, validate, and tag for `git am`.

Pure functions on text. Validation runs before git sees a patch, so a hostile
or broken file is refused with its name and the reason, and nothing in any
repository has changed yet.

The file is read the way git am reads it: mailsplit decides where a mail
ends, mailinfo where the message ends and the patch begins, and git apply's
header and hunk parser which files the patch writes, under which names and
modes. Any reading that differs from git's is a bypass (a name checked here
that is not the one git writes), so the parser below follows git's
(apply.c, mailinfo.c, mailsplit.c, quote.c) line by line, and what it
cannot read the way git does it refuses. The one step that is not pure: a
patch that writes `.gitmodules` has that file's new lines read by git's own
config parser (safety.git_config_entries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import unidiff

from patchmgr.errors import BadInput
from patchmgr.safety import ConfigParseError, git_config_entries, is_gitmodules, path_problem, submodule_config_problem

TRAILER_SET = "Patchmgr-Set"
TRAILER_PATCH = "Patchmgr-Patch"

_MBOX_FROM = re.compile(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$")
_HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]?(.*)$")
SIGNATURE_SEPARATOR = "-- "  # format-patch's line before the git version, after the last hunk
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_TRAILER_LINE = re.compile(r"^[A-Za-z0-9-]+: ")

#: git apply's extended header lines (apply.c, parse_git_diff_header's optable);
#: any other line ends the header
_HEADER_OPS = ("@@ -", "--- ", "+++ ", "old mode ", "new mode ", "deleted file mode ", "new file mode ",
               "copy from ", "copy to ", "rename old ", "rename new ", "rename from ", "rename to ",
               "similarity index ", "dissimilarity index ", "index ")
_NEW_SIDE_OPS = ("copy to ", "rename new ", "rename to ")
_OLD_SIDE_OPS = ("copy from ", "rename old ", "rename from ")
#: what libc's strtoul skips, and what git's own isspace() accepts after a mode
_C_SPACE, _GIT_SPACE = " \t\n\v\f\r", " \t\n\r"
_ULONG_MAX = 2 ** 64 - 1
S_IFMT, S_IFDIR, S_IFLNK, S_IFGITLINK = 0o170000, 0o040000, 0o120000, 0o160000
_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}
#: a section every .gitmodules hunk is read under, so that a key whose real
#: section header lies outside the hunk is still judged as a submodule's
GITMODULES_HUNK_SECTION = '[submodule "patchmgr-hunk"]'
_ALLOWED_TRANSFER_ENCODINGS = ("7bit", "8bit", "binary")


@dataclass(frozen=True)
class FileChange:
    """One file of the diff, as git apply reads its header and hunks."""

    old_path: str | None  # the name git reads the file from (None: created)
    new_path: str | None  # the name git writes (None: deleted)
    new_names: tuple[str, ...] = ()  # every name a line gives the written side (git insists they agree)
    names: tuple[str, ...] = ()  # every name any line of the file gives, each checked
    is_new: bool = False
    is_delete: bool = False
    is_rename: bool = False
    is_copy: bool = False
    #: per hunk, (line number in the patch file, text) of each context and added line
    hunks: tuple[tuple[tuple[int, str], ...], ...] = ()


@dataclass(frozen=True)
class Patch:
    label: str  # patches/-relative name, for messages
    text: str
    subject: str
    author: str
    paths: tuple[str, ...]  # every path the diff touches, repository-relative
    diff: str = field(repr=False)
    files: tuple[FileChange, ...] = field(default=(), repr=False, compare=False)


def _fail(label: str, problem: str) -> BadInput:
    return BadInput(f"{label}: {problem}")


def parse_patch(raw: bytes, label: str) -> Patch:
    """Parse one format-patch mbox message and refuse anything git am should not see."""
    text = _decode(raw, label)
    raw_lines = text.split("\n")
    # what follows the last newline is no line to git
    lines = raw_lines[:-1] if raw_lines[-1] == "" else raw_lines
    _check_mbox(lines, label)
    headers, body = _mail_headers(lines, label)
    _check_mime(headers, label)
    fields = dict(headers)
    for required in ("from", "subject"):
        if not fields.get(required, "").strip():
            raise _fail(label, f"has no {required.capitalize()}: header")

    start = next((j for j in range(body, len(lines)) if is_patchbreak(lines[j])), None)
    diff_start = next((j for j in range(body, len(lines)) if lines[j].startswith("diff --git ")), None)
    if start is None or diff_start is None:
        raise _fail(label, "contains no diff (an empty commit); drop it from the series or add its change")
    files = scan_diff(lines, start, label)
    if not files:
        raise _fail(label, "contains no file changes")
    _check_gitmodules(files, label)

    diff_end = len(raw_lines)
    for j in range(len(raw_lines) - 1, diff_start, -1):
        if raw_lines[j] == SIGNATURE_SEPARATOR:
            diff_end = j
            break
    diff = "\n".join(raw_lines[diff_start:diff_end]) + "\n"
    try:
        unidiff.PatchSet(diff)  # what diagnose and surface read later must parse
    except unidiff.UnidiffParseError as e:
        raise _fail(label, f"has a malformed diff: {e}") from None
    paths: list[str] = []
    for change in files:  # every name, also one git would not use: checked against the set and the tree too
        for name in change.names:
            if name not in paths:
                paths.append(name)
    return Patch(label=label, text=text, subject=re.sub(r"^\[PATCH[^\]]*\]\s*", "", fields["subject"]).strip(),
                 author=fields["from"].strip(), paths=tuple(paths), diff=diff, files=tuple(files))


# --- the mail ---------------------------------------------------------------

def _decode(raw: bytes, label: str) -> str:
    if not raw.strip():
        raise _fail(label, "is empty; regenerate it with git format-patch")
    if b"\r" in raw and not _only_content_crs(raw):
        raise _fail(label, "has CRLF line endings, which git am would strip; "
                    "convert it with dos2unix or regenerate it with git format-patch")
    nul = raw.find(b"\0")
    if nul >= 0:
        raise _fail(label, f"contains a NUL byte (byte {nul}), which git reads as the end of a line; "
                    "regenerate it with git format-patch")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(label, f"is not UTF-8 (byte {e.start}); regenerate it with git format-patch") from None


def _only_content_crs(raw: bytes) -> bool:
    """Whether every CR ends a diff content line (' ', '+', '-'): the patch of a file whose own
    lines end in CRLF, which git am applies as it is with --keep-cr. A mail whose headers end
    in CR was mangled on the way, and git am would strip every CR of it."""
    for line in raw.split(b"\n"):
        if b"\r" in line and (line.index(b"\r") != len(line) - 1 or line[:1] not in (b" ", b"+", b"-")
                               or line.startswith((b"--- ", b"+++ "))):
            return False
    return True


def is_mbox_from_line(line: str) -> bool:
    """Whether git mailsplit starts a new mail at `line` (mailsplit.c, is_from_line).

    'From ', then something ending in a time and a year after 1990 is
    enough for git: such a line anywhere in the file splits it.
    """
    if len(line) + 1 < 20 or not line.startswith("From "):
        return False
    colon = next((c for c in range(len(line) - 2, 3, -1) if line[c] == ":"), None)
    if colon is None:
        return False

    def digit(k: int) -> bool:
        return 0 <= k < len(line) and line[k] in "0123456789"

    if not all(digit(colon + d) for d in (-4, -2, -1, 1, 2)):
        return False
    year = re.match(r"[ \t\n\v\f\r]*([+-]?\d+)", line[colon + 3:])
    return year is not None and int(year.group(1)) > 90


def _check_mbox(lines: list[str], label: str) -> None:
    if not _MBOX_FROM.match(lines[0]):
        raise _fail(label, "is not a git format-patch mbox (first line must be 'From <sha> Mon Sep 17 00:00:00 2001')")
    second = next((j for j in range(1, len(lines)) if is_mbox_from_line(lines[j])), None)
    if second is not None:
        what = "more than one patch" if _MBOX_FROM.match(lines[second]) else "a line git am reads as the start of another mail"
        raise _fail(label, f"holds {what} (line {second + 1}); split it into one file per commit")


def _mail_headers(lines: list[str], label: str) -> tuple[list[tuple[str, str]], int]:
    """(lower-cased name, value) of each header, continuation lines joined; and where the body starts."""
    headers: list[tuple[str, str]] = []
    i = 1
    while i < len(lines) and lines[i] != "":
        line = lines[i]
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
        else:
            m = _HEADER.match(line)
            if not m:
                raise _fail(label, f"has a malformed mail header on line {i + 1}: {line[:60]!r}")
            headers.append((m.group(1).lower(), m.group(2)))
        i += 1
    return headers, i


def _check_mime(headers: list[tuple[str, str]], label: str) -> None:
    """Refuse mails git am would decode before applying (quoted-printable, base64, flowed
    text, multipart): the text checked here would not be the diff git applies."""
    for name, value in headers:
        if name == "content-transfer-encoding" and value.strip().lower() not in _ALLOWED_TRANSFER_ENCODINGS:
            raise _fail(label, f"is encoded as {value.strip()!r} (Content-Transfer-Encoding), which git am decodes "
                               "before applying, so what is checked is not what git applies; regenerate it with git format-patch")
        if name == "content-type":
            kind = value.split(";")[0].strip().lower()
            if kind != "text/plain" or re.search(r"format\s*=\s*\"?flowed", value, re.I):
                raise _fail(label, f"has Content-Type {value.strip()!r}; git am rewrites such mails before applying, "
                                   "so only plain text/plain mails are accepted; regenerate it with git format-patch")


def is_patchbreak(line: str) -> bool:
    """Whether git mailinfo ends the commit message at `line` (mailinfo.c, patchbreak):
    everything from there on is handed to git apply, diffstat included."""
    if line.startswith(("diff -", "Index: ")):
        return True
    if len(line) + 1 < 4 or not line.startswith("---"):
        return False
    if line[3:4] == " " and len(line) > 4 and line[4] not in _C_SPACE:
        return True
    return all(c in _C_SPACE for c in line[3:])


# --- the diff, as git apply reads it ----------------------------------------

def scan_diff(lines: list[str], start: int, label: str) -> list[FileChange]:
    """Every file git apply would find in lines[start:] (apply.c, find_header).

    Between files git skips what it does not recognise, but it does apply a
    header-less `---`/`+++`/`@@` diff found there; a format-patch mail never
    has one, so it is refused, as are hunks outside a file and binary diffs.
    """
    files = []
    i = start
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            change, i = _git_file(lines, i, label)
            files.append(change)
            continue
        if _HUNK.match(line):
            raise _fail(label, f"has a hunk outside any file's diff on line {i + 1}; regenerate it with git format-patch")
        if (line.startswith("--- ") and i + 2 < len(lines) and lines[i + 1].startswith("+++ ")
                and lines[i + 2].startswith("@@ -")):
            raise _fail(label, f"has a file diff without a 'diff --git' header on line {i + 1}, which git would "
                               "apply unchecked; regenerate it with git format-patch")
        if line == "GIT binary patch" or (line.startswith(("Binary files ", "Files ")) and line.endswith(" differ")):
            raise _fail(label, "contains a binary diff; patchmgr series carry text changes only")
        i += 1
    return files


class _Header:
    """What the extended header lines of one file say, collected as git does."""

    def __init__(self, def_name: str | None):
        self.def_name = def_name
        self.old: str | None = None
        self.new: str | None = None
        self.new_names: list[str] = []
        self.names: list[str] = []
        self.is_new = self.is_delete = self.is_rename = self.is_copy = False


def _git_file(lines: list[str], i: int, label: str) -> tuple[FileChange, int]:
    """One `diff --git` file: its header lines, then its hunks (apply.c, parse_git_diff_header)."""
    names, def_name = diff_git_names(lines[i][len("diff --git "):], label, i + 1)
    head = _Header(def_name)
    for name in names:
        head.names.append(_check_path(name, label))
    j = i + 1
    while j < len(lines):
        op = next((p for p in _HEADER_OPS if lines[j].startswith(p)), None)
        if op is None or op == "@@ -":
            break
        _header_line(head, op, lines[j][len(op):], label, j + 1)
        j += 1
    if j == i + 1:
        raise _fail(label, f"has a 'diff --git' line with no file header after it (line {i + 1}); "
                           "regenerate it with git format-patch")
    hunks = []
    while j < len(lines) and lines[j].startswith("@@ -"):
        hunk, j = _hunk(lines, j, label)
        hunks.append(hunk)
    if hunks and j < len(lines) and lines[j][:1] in ("+", "-", " ") and lines[j] != SIGNATURE_SEPARATOR \
            and not lines[j].startswith(("--- ", "+++ ")):  # a file header: scan_diff judges what follows
        # git apply skips it as text between files: a line added by hand without fixing the
        # counts would be dropped without a word, and the next export would make that final
        raise _fail(label, f"has a hunk line its @@ header does not count (line {j + 1}: {lines[j][:60]!r}); "
                           "fix the line counts of the hunk above it, or regenerate the patch with git format-patch")
    old, new = head.old, head.new
    if old is None and new is None:
        if def_name is None:
            raise _fail(label, f"has a file header that names no file git can identify (line {i + 1})")
        old = None if head.is_new else def_name
        new = None if head.is_delete else def_name
    if new is not None and new not in head.new_names:
        head.new_names.append(new)
    names = [n for n in (old, new, *head.names) if n is not None]
    return FileChange(old_path=None if head.is_new else old, new_path=None if head.is_delete else new,
                      new_names=tuple(head.new_names), names=tuple(dict.fromkeys(names)), is_new=head.is_new,
                      is_delete=head.is_delete, is_rename=head.is_rename, is_copy=head.is_copy,
                      hunks=tuple(hunks)), j


def _header_line(head: _Header, op: str, value: str, label: str, lineno: int) -> None:
    if op in ("--- ", "+++ "):
        if not is_dev_null(value):
            name = _check_path(_name(value, label, lineno, strip_prefix=True, to_tab=True), label)
            head.names.append(name)
            if op == "--- ":
                head.old = head.old or name
            else:
                head.new = head.new or name
                head.new_names.append(name)
    elif op in _OLD_SIDE_OPS or op in _NEW_SIDE_OPS:
        name = _check_path(_name(value, label, lineno, strip_prefix=False, to_tab=False), label)
        head.names.append(name)
        head.is_rename |= op.startswith("rename")
        head.is_copy |= op.startswith("copy")
        if op in _NEW_SIDE_OPS:
            head.new = name
            head.new_names.append(name)
        else:
            head.old = name
    elif op in ("old mode ", "deleted file mode "):
        _check_mode(value, label, lineno, creates=False)
        if op == "deleted file mode ":
            head.is_delete, head.old = True, head.def_name
    elif op in ("new mode ", "new file mode "):
        _check_mode(value, label, lineno, creates=True)
        if op == "new file mode ":
            head.is_new, head.new = True, head.def_name
            if head.def_name is not None:
                head.new_names.append(head.def_name)
    elif op == "index ":
        mode = index_mode_text(value)
        if mode is not None:
            _check_mode(mode, label, lineno, creates=True)


def _hunk(lines: list[str], j: int, label: str) -> tuple[tuple[tuple[int, str], ...], int]:
    """One hunk, counted as git apply counts it (apply.c, parse_fragment):
    (line number, text) of its context and added lines, and the line after it."""
    m = _HUNK.match(lines[j])
    if not m:
        raise _fail(label, f"has a malformed hunk header on line {j + 1}: {lines[j][:60]!r}")
    old = int(m.group(2)) if m.group(2) is not None else 1
    new = int(m.group(4)) if m.group(4) is not None else 1
    post: list[tuple[int, str]] = []
    changed = False
    k = j + 1
    while old > 0 or new > 0:
        if k >= len(lines):
            raise _fail(label, f"has a hunk that ends before its line counts say (line {j + 1}); "
                        "regenerate it with git format-patch")
        line = lines[k]
        kind = line[:1]
        if kind in ("", " "):  # an empty line is context to git too
            old, new = old - 1, new - 1
            post.append((k + 1, line[1:]))
        elif kind == "-":
            old, changed = old - 1, True
        elif kind == "+":
            new, changed = new - 1, True
            post.append((k + 1, line[1:]))
        elif kind != "\\" or len(line) + 1 < 12 or not line.startswith("\\ "):
            raise _fail(label, f"has a malformed hunk line {k + 1}: {line[:60]!r}")
        if old < 0 or new < 0:
            raise _fail(label, f"has a hunk with more lines than its header counts (line {j + 1})")
        k += 1
    if not changed:
        raise _fail(label, f"has a hunk that changes nothing (line {j + 1})")
    if k < len(lines) and lines[k].startswith("\\ ") and len(lines[k]) + 1 >= 12:
        k += 1  # "\ No newline at end of file" after the last line
    return tuple(post), k


def is_dev_null(value: str) -> bool:
    """git apply's is_dev_null: '/dev/null' followed by whitespace or the end of the line."""
    return value.startswith("/dev/null") and (len(value) == 9 or value[9] in _C_SPACE)


def unquote_c_style(text: str) -> tuple[bytes, str]:
    """git's unquote_c_style (quote.c): the bytes inside the leading "..." of `text`,
    and what follows the closing quote. ValueError where git could not unquote it."""
    data = text.encode("utf-8")
    if not data.startswith(b'"'):
        raise ValueError("does not start with a quote")
    out = bytearray()
    i = 1
    while i < len(data):
        c = data[i]
        if c == 0x22:
            return bytes(out), data[i + 1:].decode("utf-8")
        if c != 0x5C:
            out.append(c)
            i += 1
            continue
        esc = data[i + 1:i + 2].decode("latin-1")
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif re.fullmatch(rb"[0-3][0-7][0-7]", data[i + 1:i + 4]):  # above \377 would not fit a byte
            out.append(int(data[i + 1:i + 4], 8))
            i += 4
        else:
            raise ValueError(f"has an unknown escape \\{esc}" if esc else "ends in a backslash")
    raise ValueError("has no closing quote")


def _unquote(text: str, label: str, lineno: int) -> tuple[str, str]:
    try:
        data, rest = unquote_c_style(text)
        return data.decode("utf-8"), rest
    except UnicodeDecodeError:
        raise _fail(label, f"names a path that is not UTF-8 on line {lineno}: {text[:80]!r}") from None
    except ValueError as e:
        raise _fail(label, f"has a quoted path git cannot read on line {lineno} (it {e}): {text[:80]!r}") from None


def _strip_ab(name: str, label: str, lineno: int) -> str:
    if name[:2] in ("a/", "b/"):
        return name[2:]
    raise _fail(label, f"has a path without the a/ or b/ prefix on line {lineno} ({name[:80]!r}); "
                       "regenerate it with git format-patch")


def _name(value: str, label: str, lineno: int, strip_prefix: bool, to_tab: bool) -> str:
    """A name from a ---/+++ line (to_tab, a/ or b/ stripped) or a rename/copy line (all of
    the rest of the line), C-quoted or not (apply.c, find_name)."""
    if value.startswith('"'):
        name = _unquote(value, label, lineno)[0]
    else:
        name = value.split("\t", 1)[0] if to_tab else value
    return _strip_ab(name, label, lineno) if strip_prefix else name


def diff_git_names(rest: str, label: str, lineno: int = 0) -> tuple[list[str], str | None]:
    """The paths a `diff --git` line names, a/ and b/ stripped, and the one git takes as the
    file's name when both sides agree (apply.c, git_header_name).

    Unquoted names may hold spaces; then only a split into two equal halves
    is unambiguous (a rename's names with spaces come from its rename lines).
    """
    if rest.startswith('"'):
        first, tail = _unquote(rest, label, lineno)
        tail = tail.lstrip(_C_SPACE)
        second = _unquote(tail, label, lineno)[0] if tail.startswith('"') else tail
        if not second:
            raise _fail(label, f"has a 'diff --git' line with one path on line {lineno}: {rest[:80]!r}")
    elif '"' in rest:
        quote = rest.index('"')
        first, second = rest[:quote].rstrip(_C_SPACE), _unquote(rest[quote:], label, lineno)[0]
    else:
        parts = rest.split(" ")
        if len(parts) == 2:
            first, second = parts
        else:
            for cut in (k for k, c in enumerate(rest) if c in " \t"):
                a, b = rest[:cut], rest[cut + 1:]
                if a[:2] in ("a/", "b/") and b[:2] in ("a/", "b/") and a[2:] == b[2:] and a[2:]:
                    return [a[2:]], a[2:]
            return [], None
    names = [_strip_ab(first, label, lineno), _strip_ab(second, label, lineno)]
    return names, names[0] if names[0] == names[1] else None


def _check_path(path: str, label: str) -> str:
    problem = path_problem(path)
    if problem:
        shown = path if len(path) <= 200 else path[:200] + "..."
        raise _fail(label, f"touches {shown!r}, which {problem}; refusing the patch")
    return path


# --- modes ------------------------------------------------------------------

def parse_mode(text: str) -> int | None:
    """A file mode as git apply reads it (apply.c, parse_mode_line): strtoul base 8 (leading
    space, a sign and leading zeros allowed), then whitespace or the end of the line; None
    where git refuses it. `new file mode 0120000` is a symlink to git."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?)([0-7]+)", text)
    if not m or (m.end() < len(text) and text[m.end()] not in _GIT_SPACE):
        return None
    value = int(m.group(2), 8)
    if value > _ULONG_MAX:
        value = _ULONG_MAX
    elif m.group(1) == "-":
        value = -value % (_ULONG_MAX + 1)
    return value & 0xFFFFFFFF  # git keeps it in an unsigned int


def index_mode_text(value: str) -> str | None:
    """The mode part of an `index <old>..<new> <mode>` line as git apply finds it
    (apply.c, gitdiff_index), or None when the line carries none."""
    dot = value.find(".")
    if dot < 0 or value[dot + 1:dot + 2] != "." or dot > 40:
        return None
    after = value[dot + 2:]
    space = after.find(" ")
    if space < 0 or space > 40:
        return None
    return after[space + 1:]


def _check_mode(text: str, label: str, lineno: int, creates: bool) -> None:
    mode = parse_mode(text)
    if mode is None:
        raise _fail(label, f"has an invalid file mode on line {lineno}: {text[:40]!r}")
    kind = mode & S_IFMT
    if kind == S_IFLNK:
        raise _fail(label, f"creates or changes a symlink (mode {mode:o}, line {lineno}); patchmgr series may not carry symlinks")
    if kind == S_IFDIR:
        raise _fail(label, f"has mode {mode:o} on line {lineno}, which git reads as a directory; "
                    "patchmgr series carry regular files only")
    if kind == S_IFGITLINK and creates:
        raise _fail(label, f"adds or moves a submodule (mode {mode:o}, line {lineno}); a patch cannot carry a submodule "
                    "commit: a set lists a submodule's own commits as that repository's patches (patchmgr import "
                    "OLD..NEW --repo PATH, or a range whose commit only moves the gitlink) and pins Enzyme in the "
                    "manifest")


# --- .gitmodules ------------------------------------------------------------

def gitmodules_text(hunks: tuple[tuple[tuple[int, str], ...], ...]) -> tuple[str, list[int]]:
    """The new lines of each hunk as config text, each hunk under GITMODULES_HUNK_SECTION,
    and the patch line each config line came from (0 for the placeholders)."""
    lines, origin = [], []
    for hunk in hunks:
        lines.append(GITMODULES_HUNK_SECTION)
        origin.append(0)
        for lineno, text in hunk:
            lines.append(text)
            origin.append(lineno)
    return "\n".join(lines) + "\n", origin


def _check_gitmodules(files: list[FileChange], label: str) -> None:
    """Judge every written .gitmodules the way git submodule will read it: by git's config parser."""
    for change in files:
        target = next((n for n in change.new_names if is_gitmodules(n)), None)
        if target is None:
            continue
        if change.is_rename or change.is_copy:
            verb = "renames" if change.is_rename else "copies"
            raise _fail(label, f"{verb} {change.old_path!r} to {target!r}; a .gitmodules made from another file cannot "
                               "be checked without the base tree, so write it as a plain edit of .gitmodules")
        if not change.hunks:
            continue
        text, origin = gitmodules_text(change.hunks)
        try:
            entries = git_config_entries(text)
        except ConfigParseError as e:
            at = re.search(r"line (\d+)", str(e))
            where = f" at patch line {origin[min(int(at.group(1)), len(origin)) - 1]}" if at and int(at.group(1)) > 0 else ""
            raise _fail(label, f"its .gitmodules does not parse as git config{where} (git: {e})") from None
        problem = submodule_config_problem(entries)
        if problem:
            key, value, why = problem
            if key.endswith(".url"):
                raise _fail(label, f"adds a submodule URL {value!r} that {why} (.gitmodules key {key})")
            raise _fail(label, f"sets {key} = {value!r} in .gitmodules, which {why}")


def with_trailers(text: str, trailers: list[tuple[str, str]]) -> str:
    """The message with `trailers` appended to its trailer block, ready for git am.

    Commits then name the set and patch file they came from, which is how
    status, unapply and export map commits back to files without extra state.
    """
    lines = text.split("\n")
    header_end = lines.index("")
    diff_start = next(j for j in range(header_end, len(lines)) if lines[j].startswith("diff --git "))
    sep = next((j for j in range(header_end + 1, diff_start) if lines[j] == "---"), diff_start)
    body = lines[header_end + 1:sep]
    while body and body[-1] == "":
        body.pop()
    new = [f"{k}: {v}" for k, v in trailers]
    if body and _TRAILER_LINE.match(body[-1]):
        # extend an existing trailer block (Signed-off-by: ...)
        body += new
    elif body:
        body += [""] + new
    else:
        body = new
    return "\n".join(lines[:header_end + 1] + body + lines[sep:])


def diff_digest(diff: str) -> str:
    """A cheap fingerprint of a patch's diff, to recognise a file unchanged since apply."""
    import hashlib

    return hashlib.sha256(diff.encode("utf-8")).hexdigest()


def parse_trailers(message: str) -> dict[str, str]:
    """The Patchmgr-* trailers of a commit message (last paragraph only)."""
    paragraphs = message.strip().split("\n\n")
    found = {}
    for line in paragraphs[-1].split("\n") if paragraphs else []:
        key, sep, value = line.partition(": ")
        if sep and key in (TRAILER_SET, TRAILER_PATCH):
            found[key] = value.strip()
    return found
