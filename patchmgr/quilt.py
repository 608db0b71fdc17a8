"""quilt's series file and patches, read the way quilt and GNU patch read them.

`quilt push` runs `patch` with the options its series line gives after the
name (-p1 when none is a -p). import turns each patch into a git diff that git
am applies to the same tree: what quilt does differently from git am (another
strip level, a patch applied in reverse) is reproduced here, and what cannot be
reproduced exactly (another option of patch's, a name patch would pick by which
file exists, a context diff) is refused with the series line and the reason.
Nothing is guessed: a guess would import a change quilt never makes.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
from dataclasses import dataclass, field
from pathlib import Path

from patchmgr.errors import BadInput

#: quilt's own comment rule (patchfns, patch_args): '#' at the start of a line or after a blank
_COMMENT = re.compile(r"(^|[ \t]+)#.*")
_STRIP = re.compile(r"^-p(\d+)$")
_HUNK = re.compile(r"^@@ -(\d+(?:,\d+)?) \+(\d+(?:,\d+)?) @@(.*)$")
_NORMAL_DIFF = re.compile(r"^\d+(,\d+)?[acd]\d+(,\d+)?$")
_EPOCH = re.compile(r"^(1970-01-01 00:00:00(\.0+)? \+0000|Thu Jan  1 00:00:00 1970)$")
_SYMMETRIC = re.compile(r"^diff --git a/(.+) b/\1$")
#: git's order of the extended header lines, which a reversed patch keeps
_EXT_ORDER = ("old mode ", "new mode ", "deleted file mode ", "new file mode ", "similarity index ",
              "dissimilarity index ", "rename from ", "rename to ", "index ")
_SWAPPED = {"old mode ": "new mode ", "new mode ": "old mode ", "new file mode ": "deleted file mode ",
            "deleted file mode ": "new file mode ", "rename from ": "rename to ", "rename to ": "rename from "}
#: what quilt's cat_file decompresses by the file name, and with what
_DECOMPRESS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress, ".lzma": lzma.decompress}


@dataclass(frozen=True)
class SeriesEntry:
    """One patch of a series file, with the options quilt hands to patch for it."""

    name: str
    line: int
    strip: int = 1
    reverse: bool = False

    def where(self, series: Path) -> str:
        """The series line, for messages."""
        return f"{series} line {self.line}: {self.name}"


@dataclass
class _Section:
    """One file of a diff in git's form: names after stripping (None: /dev/null), the
    extended header lines, whether it has ---/+++ lines, and its hunks (header first)."""

    old: str | None
    new: str | None
    ext: list[str] = field(default_factory=list)
    file_lines: bool = True
    hunks: list[list[str]] = field(default_factory=list)


def read_series(series: Path, text: str) -> list[SeriesEntry]:
    """The series' entries in order. A name listed twice is refused, as quilt refuses to push
    such a series ("already applied")."""
    entries: list[SeriesEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        fields = _COMMENT.sub("", raw, count=1).split()
        if not fields:
            continue
        name = fields[0]
        if name in seen:
            raise BadInput(f"{series} lists {name} twice (lines {seen[name]} and {number}); "
                           "quilt refuses to push such a series: remove one of them")
        seen[name] = number
        entries.append(_entry(series, number, name, fields[1:]))
    if not entries:
        raise BadInput(f"{series} lists no patches")
    return entries


def _entry(series: Path, number: int, name: str, options: list[str]) -> SeriesEntry:
    """The options of one series line: -pN and -R, each at most once; any other option of
    patch's changes what patch does in a way git am cannot repeat, so it is refused."""
    where = f"{series} line {number}: {name}"
    strip: int | None = None
    reverse = False
    for option in options:
        m = _STRIP.match(option)
        if m and strip is None:
            strip = int(m.group(1))
        elif option == "-R" and not reverse:
            reverse = True
        elif m or option == "-R":
            raise BadInput(f"{where}: gives {option[:2]} twice; keep one")
        else:
            raise BadInput(f"{where}: option {option} is not one import can reproduce (only -pN and -R are); "
                           "apply that patch by hand and import the result as a range")
    return SeriesEntry(name, number, 1 if strip is None else strip, reverse)


def read_patch_bytes(path: Path, where: str) -> bytes:
    """The patch as quilt reads it: decompressed by its file name's suffix, as cat_file does."""
    raw = path.read_bytes()
    suffix = path.suffix
    if suffix in (".lz", ".zst"):
        raise BadInput(f"{where}: is compressed with {'lzip' if suffix == '.lz' else 'zstd'}, which import does "
                       "not read; decompress it and list the plain file in the series")
    if suffix in _DECOMPRESS:
        try:
            return _DECOMPRESS[suffix](raw)
        except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
            raise BadInput(f"{where}: cannot be decompressed ({e})") from None
    return raw


def patch_stem(name: str) -> str:
    """The file name without directories, compression suffix and .patch/.diff: a fallback subject."""
    stem = Path(name).name
    for suffix in (*_DECOMPRESS, ".lz", ".zst"):
        stem = stem.removesuffix(suffix)
    return Path(stem).stem


def diff_start(lines: list[str]) -> int:
    """Where the diff begins and the patch's header ends, by quilt's own rule (patchfns,
    patch_header): an Index: or diff line, or a ---/+++ (or context diff's ***/---) pair."""
    def pair(i: int, first: str, second: str) -> bool:
        return bool(re.match(first, lines[i])) and i + 1 < len(lines) and bool(re.match(second, lines[i + 1]))

    return next((i for i, line in enumerate(lines)
                 if re.match(r"^Index:[ \t][^ \t]|^diff -", line)
                 or pair(i, r"^---[ \t][^ \t]", r"^\+\+\+[ \t][^ \t]") or pair(i, r"^\*\*\*[ \t][^ \t]", r"^---[ \t][^ \t]")),
                len(lines))


def git_diff(diff: str, entry: SeriesEntry, where: str) -> str:
    """The diff part of a quilt patch as git diffs that do what `patch -pN [-R]` does.

    A patch that already is a git diff, read with -p1 and forwards, is kept as it is."""
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    is_git = any(line.startswith("diff --git ") for line in lines)
    if is_git and entry.strip == 1 and not entry.reverse:
        return diff
    if is_git and entry.strip != 1:
        raise BadInput(f"{where}: -p{entry.strip} on a git diff: git reads its a/ and b/ names as -p1, patch "
                       f"would not; refresh the patch with -p1 or drop the option")
    sections = _sections(lines, entry.strip, where)
    if not sections:
        raise BadInput(f"{where}: holds no unified diff")
    if entry.reverse:
        sections = [_reverse(section, where) for section in sections]
    return "\n".join(line for section in sections for line in _emit(section)) + "\n"


# --- reading ----------------------------------------------------------------

def _sections(lines: list[str], strip: int, where: str) -> list[_Section]:
    """The file sections of a diff, git's or patch's traditional one. Lines outside a section
    are what patch skips as leading text (Index:, ====, diff command lines)."""
    sections: list[_Section] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.startswith("diff --git "):
            section, i = _git_section(lines, i, where)
        elif line.startswith("--- ") and nxt.startswith("+++ "):
            section, i = _traditional_section(lines, i, strip, where)
        elif line.startswith("*** ") and nxt.startswith("--- "):
            raise BadInput(f"{where}: holds a context diff (line {i + 1}), which patch applies and git cannot; "
                           "convert it to a unified diff (filterdiff --format=unified)")
        elif _NORMAL_DIFF.match(line):
            raise BadInput(f"{where}: holds a normal diff (line {i + 1}: {line}), which patch applies and git "
                           "cannot; convert it to a unified diff")
        else:
            i += 1
            continue
        sections.append(section)
    return sections


def _traditional_section(lines: list[str], i: int, strip: int, where: str) -> tuple[_Section, int]:
    old_name, old_time = _name_and_time(lines[i][4:], strip, where)
    new_name, new_time = _name_and_time(lines[i + 1][4:], strip, where)
    hunks, end = _hunks(lines, i + 2, where)
    # patch creates (deletes) a file whose old (new) side is dated the epoch and empty
    if old_name is not None and _EPOCH.match(old_time) and all(h[0].startswith("@@ -0,0 ") for h in hunks):
        old_name = None
    if new_name is not None and _EPOCH.match(new_time) and all(re.match(r"^@@ -\S+ \+0,0 ", h[0]) for h in hunks):
        new_name = None
    if old_name is not None and new_name is not None and old_name != new_name:
        raise BadInput(f"{where}: a diff names {old_name} and {new_name} (line {i + 1}, read with -p{strip}); patch "
                       "patches whichever exists, which import does not guess: refresh the patch so both agree")
    if not hunks:
        raise BadInput(f"{where}: the diff of {new_name or old_name} (line {i + 1}) has no hunks; what patch does "
                       "with it is not what git does: drop it from the patch")
    if old_name is None and new_name is None:
        raise BadInput(f"{where}: a diff from /dev/null to /dev/null (line {i + 1})")
    ext = ["new file mode 100644"] if old_name is None else ["deleted file mode 100644"] if new_name is None else []
    return _Section(old_name, new_name, ext, True, hunks), end


def _name_and_time(text: str, strip: int, where: str) -> tuple[str | None, str]:
    """A ---/+++ line's file name as patch reads it (up to a blank, -pN components stripped,
    a run of slashes counting as one) and its timestamp."""
    if text.startswith('"'):
        raise BadInput(f"{where}: a quoted file name ({text.split(chr(9))[0]}) is not read by import; "
                       "refresh the patch with plain names")
    m = re.match(r"([^ \t\r\n\v\f]*)\s*(.*)$", text)
    name, stamp = (m.group(1), m.group(2).strip()) if m else (text, "")
    if name == "/dev/null":
        return None, stamp
    rest = name
    for _ in range(strip):
        step = re.match(r"[^/]*/+", rest)
        if not step:
            raise BadInput(f"{where}: {name} has fewer than {strip} directories to strip (-p{strip})")
        rest = rest[step.end():]
    while rest.startswith("./"):
        rest = rest[2:].lstrip("/")
    return rest, stamp


def _git_section(lines: list[str], i: int, where: str) -> tuple[_Section, int]:
    header = lines[i]
    ext: list[str] = []
    old: str | None = ""
    new: str | None = ""
    file_lines = False
    i += 1
    while i < len(lines) and lines[i].startswith(_EXT_ORDER + ("copy ", "GIT binary patch", "Binary files ")):
        if lines[i].startswith(("copy ", "GIT binary patch", "Binary files ")):
            raise BadInput(f"{where}: line {i + 1} ({lines[i][:40]}) cannot be reversed exactly; apply the patch "
                           "by hand and import the result as a range")
        ext.append(lines[i])
        i += 1
    if i + 1 < len(lines) and lines[i].startswith("--- ") and lines[i + 1].startswith("+++ "):
        old, _ = _name_and_time(lines[i][4:], 1, where)
        new, _ = _name_and_time(lines[i + 1][4:], 1, where)
        file_lines = True
        i += 2
    renames = {line.split(" ", 2)[1]: line.split(" ", 2)[2] for line in ext if line.startswith("rename ")}
    symmetric = _SYMMETRIC.match(header)
    if old == "" or new == "":
        if renames:
            old, new = renames.get("from", ""), renames.get("to", "")
        elif symmetric and not header.startswith('"'):
            old = new = symmetric.group(1)
        else:
            raise BadInput(f"{where}: cannot tell the file names of line {i} ({header[:60]})")
    if any(line.startswith("new file mode ") for line in ext):
        old = None
    if any(line.startswith("deleted file mode ") for line in ext):
        new = None
    hunks, end = _hunks(lines, i, where)
    return _Section(old, new, ext, file_lines, hunks), end


def _hunks(lines: list[str], i: int, where: str) -> tuple[list[list[str]], int]:
    """The hunks from line i on, each read by its own line counts as patch and git read them
    (so a removed line starting with '-- ' is not taken for a file header)."""
    hunks: list[list[str]] = []
    while i < len(lines):
        m = _HUNK.match(lines[i])
        if not m:
            break
        old_left, new_left = (_count(r) for r in m.group(1, 2))
        hunk = [lines[i]]
        i += 1
        while old_left > 0 or new_left > 0:
            if i >= len(lines) or lines[i][:1] not in ("", " ", "-", "+", "\\"):
                raise BadInput(f"{where}: the hunk at line {len(lines) if i >= len(lines) else i + 1} ends before "
                               "its line counts say; fix the @@ line")
            kind = lines[i][:1]
            old_left -= kind in ("", " ", "-")
            new_left -= kind in ("", " ", "+")
            hunk.append(lines[i])
            i += 1
        if i < len(lines) and lines[i].startswith("\\"):
            hunk.append(lines[i])
            i += 1
        hunks.append(hunk)
    return hunks, i


def _count(spec: str) -> int:
    return int(spec.split(",")[1]) if "," in spec else 1


# --- reversing and writing ----------------------------------------------------

def _reverse(section: _Section, where: str) -> _Section:
    """The section as `patch -R` applies it: sides, modes and index blobs swapped, each hunk's
    removed and added lines exchanged (a change block's removed lines first, as diff writes them,
    each '\\ No newline' marker staying with its line)."""
    ext = []
    for line in section.ext:
        prefix = next(p for p in _EXT_ORDER if line.startswith(p))
        rest = line[len(prefix):]
        if prefix == "index ":
            m = re.match(r"^([0-9a-f]+)\.\.([0-9a-f]+)(.*)$", rest)
            if not m:
                raise BadInput(f"{where}: an index line that cannot be reversed ({line})")
            rest = f"{m.group(2)}..{m.group(1)}{m.group(3)}"
        ext.append(_SWAPPED.get(prefix, prefix) + rest)
    ext.sort(key=lambda line: next(k for k, p in enumerate(_EXT_ORDER) if line.startswith(p)))
    return _Section(section.new, section.old, ext, section.file_lines, [_reverse_hunk(h) for h in section.hunks])


def _reverse_hunk(hunk: list[str]) -> list[str]:
    m = _HUNK.match(hunk[0])
    assert m is not None  # _hunks read it
    out = [f"@@ -{m.group(2)} +{m.group(1)} @@{m.group(3)}"]
    items: list[list[str]] = []
    for line in hunk[1:]:
        if line.startswith("\\") and items:
            items[-1].append(line)
        else:
            items.append([line])
    removed: list[list[str]] = []
    added: list[list[str]] = []
    for item in items + [[" "]]:  # a context line at the end flushes the last block
        kind = item[0][:1]
        if kind == "-":
            added.append(["+" + item[0][1:], *item[1:]])
        elif kind == "+":
            removed.append(["-" + item[0][1:], *item[1:]])
        else:
            out.extend(line for block in removed + added for line in block)
            removed, added = [], []
            out.extend(item)
    return out[:-1]


def _emit(section: _Section) -> list[str]:
    name_a = section.old if section.old is not None else section.new
    name_b = section.new if section.new is not None else section.old
    out = [f"diff --git a/{name_a} b/{name_b}", *section.ext]
    if section.file_lines:
        out.append("--- " + (f"a/{section.old}" if section.old is not None else "/dev/null"))
        out.append("+++ " + (f"b/{section.new}" if section.new is not None else "/dev/null"))
    return out + [line for hunk in section.hunks for line in hunk]


# --- what import keeps for export --quilt --------------------------------------
#
# A commit imported from a quilt series carries, as trailers at the end of its message, what
# `patchmgr export --quilt` needs to write the patch back as it was: its file name, the series
# lines up to and including its own (comments, blank lines), and the header text quilt keeps
# above the diff, byte for byte. Multi-line values are one JSON string per line, each further
# line indented: git keeps them as they are (no trailing blanks for git am to strip, no line
# that git or patch could take for the start of a diff).

TRAILER_NAME = "Quilt-Patch"
TRAILER_SERIES = "Quilt-Series"
TRAILER_END = "Quilt-Series-End"
TRAILER_HEADER = "Quilt-Header"


@dataclass(frozen=True)
class Kept:
    """What a commit's Quilt-* trailers say; `message` is the commit message above them."""

    name: str
    series: list[str]
    header: list[str]
    end: list[str] | None
    message: str


def kept_trailers(name: str, series: list[str], header: list[str], end: list[str] | None) -> list[str]:
    """The Quilt-* trailer lines that keep one patch's name, series lines and header."""
    out = [f"{TRAILER_NAME}: {name}"]
    for key, lines in ((TRAILER_SERIES, series), (TRAILER_HEADER, header), (TRAILER_END, end or [])):
        if lines:
            out += [f"{key}: {_quoted(lines[0])}", *(f" {_quoted(line)}" for line in lines[1:])]
    return out


def _quoted(line: str) -> str:
    return json.dumps(line, ensure_ascii=False)


def read_kept(message: str, where: str) -> Kept | None:
    """The Quilt-* trailers of a commit message (None when it has none: a patch not imported
    from a quilt series). Malformed ones are refused, never half read."""
    start = message.rfind(f"\n{TRAILER_NAME}: ")
    if start < 0:
        return None
    values: dict[str, list[str]] = {}
    key = ""
    try:
        for line in message[start + 1:].rstrip("\n").split("\n"):
            if line.startswith(" ") and key:
                values[key].append(json.loads(line[1:]))
                continue
            key, sep, value = line.partition(": ")
            if not sep or key not in (TRAILER_NAME, TRAILER_SERIES, TRAILER_END, TRAILER_HEADER) or key in values:
                raise ValueError(f"unexpected line {line[:60]!r}")
            values[key] = [value] if key == TRAILER_NAME else [json.loads(value)]
    except ValueError as e:
        raise BadInput(f"{where}: its {TRAILER_NAME} trailers cannot be read ({e}); fix or remove them "
                       "(git commit --amend), then export again") from None
    if any(not isinstance(v, str) for lines in values.values() for v in lines):
        raise BadInput(f"{where}: its Quilt-* trailers hold something other than lines of text")
    return Kept(values[TRAILER_NAME][0], values.get(TRAILER_SERIES, []), values.get(TRAILER_HEADER, []),
                values.get(TRAILER_END), message[:start + 1])


def series_lines(text: str, entries: list[SeriesEntry]) -> tuple[list[list[str]], list[str] | None]:
    """Per entry, the series lines since the previous entry and its own; and the lines after
    the last one (None when the file just ends after it). An entry whose -pN or -R import
    turned into a -p1 forward diff gets its line without them (its comment kept)."""
    lines = text.split("\n")
    out = []
    previous = 0
    for entry in entries:
        own = lines[entry.line - 1]
        if entry.strip != 1 or entry.reverse:
            comment = _COMMENT.search(own)
            own = entry.name + (comment.group(0) if comment else "")
        out.append(lines[previous:entry.line - 1] + [own])
        previous = entry.line
    end = lines[previous:]
    return out, None if end == [""] else end
