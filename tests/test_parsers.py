"""The pure parsers, in-process, against sample files and tables of hostile input.

Modelled on b4's sample mboxes with expected results and gbp's table tests of
pure helpers: no patchmgr subprocess and no fixture world, so the hundreds of
cases below run in about a second. The samples in tests/samples/ are real
`git format-patch` output (good-*) and the bypasses a hostile review found
(bad-*). Hostile input must raise BadInput whose message is one line that
names the patch or manifest and says what is wrong. (A patch that writes
.gitmodules is read by git's own config parser, the one subprocess here.)
The last tests build a tiny real repository for the checks against a base tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from patchmgr import diagnose, surface
from patchmgr.errors import BadInput
from patchmgr.gitio import Repo
from patchmgr.importer import quilt_to_mail
from patchmgr.lint import (
    MODE_GITLINK,
    MODE_SYMLINK,
    MODE_TREE,
    base_path_problem,
    check_against_base,
    check_manifest_paths,
    manifest_path_problem,
)
from patchmgr.patchfile import (
    diff_git_names,
    gitmodules_text,
    index_mode_text,
    is_mbox_from_line,
    is_patchbreak,
    parse_mode,
    parse_patch,
    unquote_c_style,
)
from patchmgr.safety import is_gitmodules, path_problem, ref_name_problem, url_problem
from patchmgr.series import SET_NAME, TreePath, manifest_tree_paths, parse_manifest

SAMPLES = Path(__file__).parent / "samples"
LABEL = "autodiff-1.63.0/rust/0001-hostile.patch"
MANIFEST = Path("/srv/patches/series.toml")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(error: BadInput, prefix: str) -> str:
    """The refusal is one printable line that starts by naming the file."""
    message = str(error)
    assert message.startswith(prefix + ": "), message
    assert "\n" not in message and not CONTROL.search(message), message
    return message


# --- building mails -----------------------------------------------------------

HEAD = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
AUTHOR = "From: Dev Eloper <dev@example.invalid>\nDate: Mon, 8 Aug 2022 12:00:00 +0000\n"


def mail(diff: str, headers: str = "", body: str = "", stat: str = "", subject: str = "[PATCH] hostile") -> str:
    return f"{HEAD}{AUTHOR}Subject: {subject}\n{headers}\n{body}---\n{stat}\n{diff}-- \n2.39.5\n\n"


def sides(name: str) -> tuple[str, str]:
    """a/ and b/ spellings of a name; a name given with quotes stays C-quoted."""
    if name.startswith('"'):
        return '"a/' + name[1:], '"b/' + name[1:]
    return "a/" + name, "b/" + name


def new_file(name: str, mode: str = "100644") -> str:
    a, b = sides(name)
    return f"diff --git {a} {b}\nnew file mode {mode}\nindex 0000000..587be6b\n--- /dev/null\n+++ {b}\n@@ -0,0 +1 @@\n+x\n"


def modify(name: str = "README.md", index: str = "index 1111111..2222222 100644", hunk: str = "@@ -1 +1 @@\n-x\n+y\n",
           minus: str | None = None, plus: str | None = None) -> str:
    a, b = sides(name)
    return f"diff --git {a} {b}\n{index}\n--- {minus or a}\n+++ {plus or b}\n{hunk}"


def header(lines: str, name: str = "x") -> str:
    """A diff --git with only extended header lines (mode changes, renames)."""
    return f"diff --git a/{name} b/{name}\n{lines}"


def gitmodules(added: list[str], name: str = ".gitmodules", new: bool = False) -> str:
    plus = "".join(f"+{line}\n" for line in added)
    if new:
        return (f"diff --git a/{name} b/{name}\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n"
                f"+++ b/{name}\n@@ -0,0 +1,{len(added)} @@\n{plus}")
    return (f"diff --git a/{name} b/{name}\nindex 1111111..2222222 100644\n--- a/{name}\n+++ b/{name}\n"
            f"@@ -1,3 +1,{3 + len(added)} @@\n [submodule \"src/llvm-project\"]\n \tpath = src/llvm-project\n"
            f" \turl = https://github.com/rust-lang/llvm-project.git\n{plus}")


OK_DIFF = modify()
LONG = "x" * 256
EXT = "ext::sh -c touch% /tmp/pwned"

# --- hostile patches: (id, raw, message fragment) ---------------------------------

HOSTILE_PATCHES = [
    # the mail, as mailsplit and mailinfo read it
    ("empty", "", r"is empty"),
    ("blank", "\n\n  \n", r"is empty"),
    ("crlf", mail(OK_DIFF).replace("\n", "\r\n"), r"CRLF line endings"),
    ("cr inside a content line", mail(OK_DIFF).replace("+y\n", "+y\rz\n"), r"CRLF line endings"),
    ("cr ending a header line", mail(OK_DIFF).replace("\nSubject:", "\r\nSubject:", 1), r"CRLF line endings"),
    ("nul byte", mail(OK_DIFF).replace("+y", "+y\0"), r"contains a NUL byte"),
    ("latin-1", mail(OK_DIFF).encode() + b"\xe9\n", r"is not UTF-8 \(byte \d+\)"),
    ("not a mail", "this is not a patch\n", r"is not a git format-patch mbox"),
    ("short mbox sha", mail(OK_DIFF).replace("From " + "0" * 40, "From 0000000"), r"is not a git format-patch mbox"),
    ("other mbox date", mail(OK_DIFF).replace("Mon Sep 17", "Tue Sep 18"), r"is not a git format-patch mbox"),
    ("two mails", mail(OK_DIFF) + mail(new_file("../x")), r"holds more than one patch \(line \d+\)"),
    ("mailsplit line in message", mail(OK_DIFF, body="From mallory Sat Jan  1 12:34:56 2022\n\n"),
     r"a line git am reads as the start of another mail"),
    ("mailsplit line after diff", mail(OK_DIFF) + "From x 10:00:00 1999\n", r"start of another mail"),
    ("malformed header", mail(OK_DIFF, headers="no colon here\n"), r"malformed mail header on line 5"),
    ("header with space in name", mail(OK_DIFF, headers="X Bad: 1\n"), r"malformed mail header"),
    ("no from", mail(OK_DIFF).replace("From: Dev Eloper <dev@example.invalid>\n", ""), r"has no From: header"),
    ("empty from", mail(OK_DIFF).replace("From: Dev Eloper <dev@example.invalid>", "From:  "), r"has no From: header"),
    ("no subject", mail(OK_DIFF).replace("Subject: [PATCH] hostile\n", ""), r"has no Subject: header"),
    ("empty subject", mail(OK_DIFF, subject=""), r"has no Subject: header"),
    ("quoted-printable", mail(OK_DIFF, headers="Content-Transfer-Encoding: quoted-printable\n"),
     r"encoded as 'quoted-printable' \(Content-Transfer-Encoding\)"),
    ("base64", mail(OK_DIFF, headers="Content-Transfer-Encoding: base64\n"), r"encoded as 'base64'"),
    ("encoding given twice", mail(OK_DIFF, headers="Content-Transfer-Encoding: 8bit\nContent-Transfer-Encoding: QP\n"),
     r"encoded as 'QP'"),
    ("folded encoding header", mail(OK_DIFF, headers="Content-Transfer-Encoding:\n quoted-printable\n"),
     r"Content-Transfer-Encoding"),
    ("multipart", mail(OK_DIFF, headers='Content-Type: multipart/mixed; boundary="b"\n'), r"has Content-Type 'multipart/mixed"),
    ("format=flowed", mail(OK_DIFF, headers="Content-Type: text/plain; format=flowed; delsp=yes\n"), r"has Content-Type"),
    ("html", mail(OK_DIFF, headers="Content-Type: text/html\n"), r"has Content-Type 'text/html'"),
    ("no diff", mail(""), r"contains no diff \(an empty commit\)"),
    ("diffstat only", mail("", stat=" README.md | 2 +-\n 1 file changed\n"), r"contains no diff"),
    # the diff, as git apply finds files in it
    ("traditional diff in the diffstat", mail(OK_DIFF, stat="--- a/src/x\n+++ b/src/x\n@@ -1 +1 @@\n-a\n+b\n"),
     r"file diff without a 'diff --git' header on line \d+"),
    ("traditional diff after the files", mail(OK_DIFF + "--- a/src/x\n+++ b/src/x\n@@ -1 +1 @@\n-a\n+b\n"),
     r"without a 'diff --git' header"),
    ("traditional diff in the message", mail(OK_DIFF, body="--- a/src/x\n+++ b/src/x\n@@ -1 +1 @@\n-a\n+b\n\n"),
     r"without a 'diff --git' header"),
    ("hunk outside a file", mail(OK_DIFF + "\n@@ -1 +1 @@\n-a\n+b\n"), r"hunk outside any file's diff"),
    ("hunk in the diffstat", mail(OK_DIFF, stat="@@ -1,2 +1,2 @@\n"), r"hunk outside any file's diff"),
    ("bare diff --git line", mail("diff --git a/x b/x\n" + OK_DIFF), r"'diff --git' line with no file header"),
    ("diff --git straight into a hunk", mail("diff --git a/x b/x\n@@ -1 +1 @@\n-a\n+b\n"), r"no file header after it"),
    ("GIT binary patch", mail(header("new file mode 100644\nindex 0000000..1111111\nGIT binary patch\nliteral 3\nKcmZQzWB>pF00031\n\n")),
     r"contains a binary diff"),
    ("Binary files differ", mail(header("index 1111111..2222222 100644\nBinary files a/x and b/x differ\n")), r"binary diff"),
    ("Files differ", mail(header("index 1111111..2222222 100644\nFiles a/x and b/x differ\n")), r"binary diff"),
    ("truncated hunk", mail(modify(hunk="@@ -1,3 +1,3 @@\n x\n-y\n+z\n")).split("-- \n")[0],
     r"hunk that ends before its line counts say"),
    ("truncated hunk eats the signature", mail(modify(hunk="@@ -1,3 +1,3 @@\n x\n-y\n+z\n")), r"malformed hunk line \d+: '2\.39\.5'"),
    ("hunk line without prefix", mail(modify(hunk="@@ -1,2 +1,2 @@\n-x\n+y\nz\n")), r"malformed hunk line \d+: 'z'"),
    ("hunk that changes nothing", mail(modify(hunk="@@ -1 +1 @@\n x\n")), r"hunk that changes nothing"),
    ("hunk longer than counted", mail(modify(hunk="@@ -1 +1 @@\n-x\n-y\n+z\n")), r"more lines than its header counts"),
    ("short no-newline marker", mail(modify(hunk="@@ -1,2 +1,2 @@\n-x\n\\ x\n+y\n z\n")), r"malformed hunk line"),
    ("no a/ prefix", mail("diff --git x/README.md y/README.md\nindex 1..2 100644\n--- x/README.md\n+++ y/README.md\n@@ -1 +1 @@\n-x\n+y\n"),
     r"path without the a/ or b/ prefix on line \d+ \('x/README.md'\)"),
    ("no b/ prefix on +++", mail(modify(plus="README.md")), r"without the a/ or b/ prefix"),
    ("quoted diff --git with one path", mail('diff --git "a/x"\nindex 1..2 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-x\n+y\n'),
     r"'diff --git' line with one path"),
    ("header with no name", mail("diff --git a/x y b/z w\nsimilarity index 100%\n"), r"names no file git can identify"),
    # paths: plain, quoted, and on every kind of line
    ("dotdot", mail(new_file("../x")), r"touches '\.\./x', which contains '\.\.'"),
    ("dotdot inside", mail(new_file("src/../../x")), r"contains '\.\.'"),
    ("absolute", mail(new_file("/etc/passwd")), r"touches '/etc/passwd', which is absolute"),
    ("drive letter", mail(new_file("C:/x")), r"is absolute"),
    ("into .git", mail(new_file(".git/config")), r"points into \.git/"),
    ("into .GIT", mail(new_file("sub/.GIT/hooks/pre-commit")), r"points into \.git/"),
    ("into .git. (NTFS)", mail(new_file(".git./hooks/x")), r"points into \.git/"),
    ("into git~1 (8.3 name)", mail(new_file("GIT~1/config")), r"points into \.git/"),
    ("backslash", mail(new_file("a\\b")), r"contains a backslash"),
    ("empty component", mail(new_file("a//b")), r"has an empty or '\.' component"),
    ("dot component", mail(new_file("./x")), r"has an empty or '\.' component"),
    ("long component", mail(new_file(LONG)), r"has a component of 256 bytes \(file systems allow 255\)"),
    ("long multibyte component", mail(new_file("é" * 128)), r"component of 256 bytes"),
    ("long path", mail(new_file("/".join(["d" * 200] * 21))), r"is 4220 bytes long \(git and file systems allow 4095\)"),
    ("quoted dotdot", mail(new_file('"../x"')), r"touches '\.\./x', which contains '\.\.'"),
    ("octal dotdot", mail(new_file('"\\056\\056/x"')), r"touches '\.\./x', which contains '\.\.'"),
    ("octal slash dotdot", mail(new_file('"..\\057x"')), r"contains '\.\.'"),
    ("octal .git", mail(new_file('"\\056git/config"')), r"points into \.git/"),
    ("quoted tab", mail(new_file('"a\\tb"')), r"contains a control character"),
    ("quoted newline", mail(new_file('"a\\nb"')), r"contains a control character"),
    ("quoted NUL", mail(new_file('"a\\000b"')), r"contains a control character"),
    ("quoted escape char", mail(new_file('"\\033[2Jx"')), r"contains a control character"),
    ("quoted not UTF-8", mail(new_file('"caf\\351"')), r"names a path that is not UTF-8 on line \d+"),
    ("quoted unknown escape", mail(new_file('"a\\qb"')), r"quoted path git cannot read on line \d+ \(it has an unknown escape"),
    ("quoted unterminated", mail(new_file('"abc')), r"quoted path git cannot read .*no closing quote"),
    ("quoted octal over 255", mail(new_file('"\\400"')), r"quoted path git cannot read"),
    ("quoted short octal", mail(new_file('"\\05"')), r"quoted path git cannot read"),
    ("unquoted names with spaces", mail(new_file("a b/../c")), r"touches 'a b/\.\./c', which contains '\.\.'"),
    ("rename to dotdot", mail(header("similarity index 100%\nrename from x\nrename to ../x\n")), r"touches '\.\./x'"),
    ("rename to quoted dotdot", mail(header('similarity index 100%\nrename from x\nrename to "../x"\n')),
     r"touches '\.\./x', which contains '\.\.'"),
    ("rename to octal dotdot", mail(header('rename from x\nrename to "\\056\\056/x"\n')), r"contains '\.\.'"),
    ("rename from dotdot", mail(header("rename from ../../etc/passwd\nrename to x\n")), r"touches '\.\./\.\./etc/passwd'"),
    ("rename from .git", mail(header("rename from .git/config\nrename to x\n")), r"points into \.git/"),
    ("rename new (old spelling)", mail(header("rename old x\nrename new ../x\n")), r"contains '\.\.'"),
    ("rename old (old spelling)", mail(header("rename old /etc/shadow\nrename new x\n")), r"is absolute"),
    ("copy to dotdot", mail(header("copy from x\ncopy to ../x\n")), r"contains '\.\.'"),
    ("copy from .git", mail(header("copy from .git/config\ncopy to leak\n")), r"points into \.git/"),
    ("rename to with a tab", mail(header("rename from x\nrename to y\t\n")), r"touches 'y\\t', which contains a control character"),
    ("rename to a quoted bad escape", mail(header('rename from x\nrename to "\\x"\n')), r"quoted path git cannot read"),
    ("+++ disagrees with diff --git", mail(modify(plus="b/../escape")), r"touches '\.\./escape'"),
    ("--- names .git", mail(modify(minus="a/.git/index")), r"points into \.git/"),
    ("+++ quoted .git", mail(modify(plus='"b/.git/hooks/post-checkout"')), r"points into \.git/"),
    ("+++ quoted control", mail(modify(plus='"b/x\\ry"')), r"control character"),
    ("rename in a legit-looking diff", mail(modify() + header("similarity index 90%\nrename from y\nrename to y/../../z\n")),
     r"contains '\.\.'"),
    ("second file long", mail(OK_DIFF + new_file("a/" + LONG)), r"component of 256 bytes"),
    # modes, read as git apply reads them
    ("symlink", mail(new_file("link", mode="120000")), r"creates or changes a symlink \(mode 120000, line \d+\)"),
    ("symlink, leading zero", mail(new_file("link", mode="0120000")), r"creates or changes a symlink"),
    ("symlink, leading space and plus", mail(new_file("link", mode="  +120000")), r"creates or changes a symlink"),
    ("symlink, extra high bits", mail(new_file("link", mode="2120000")), r"symlink \(mode 2120000"),
    ("symlink, text after a space", mail(new_file("link", mode="120000 junk")), r"creates or changes a symlink"),
    ("new mode symlink, trailing space", mail(header("old mode 100644\nnew mode 120000 \n")), r"symlink"),
    ("new mode symlink, trailing tab", mail(header("old mode 100644\nnew mode 0120000\t\n")), r"symlink"),
    ("old mode symlink", mail(header("old mode 120000\nnew mode 100644\n")), r"symlink"),
    ("deleted symlink", mail(header("deleted file mode 120000\nindex 1111111..0000000\n")), r"symlink"),
    ("index symlink", mail(modify(index="index 1111111..2222222 120000")), r"symlink \(mode 120000"),
    ("index symlink, leading zero", mail(modify(index="index 1111111..2222222 0120000")), r"symlink"),
    ("index symlink, trailing space", mail(modify(index="index 1111111..2222222 120000 ")), r"symlink"),
    ("index symlink, no hex", mail(modify(index="index zz..yy 120000")), r"symlink"),
    ("gitlink", mail(new_file("vendor/x", mode="160000")), r"adds or moves a submodule \(mode 160000"),
    ("gitlink, leading zeros", mail(new_file("vendor/x", mode="000160000")), r"adds or moves a submodule"),
    ("gitlink, extra high bits", mail(new_file("vendor/x", mode="1160000")), r"adds or moves a submodule"),
    ("new mode gitlink", mail(header("old mode 100644\nnew mode 160000\n")), r"adds or moves a submodule"),
    ("index gitlink", mail(modify(index="index 1111111..2222222 160000")), r"adds or moves a submodule"),
    ("index gitlink, leading zero", mail(modify(index="index 1111111..2222222 0160000")), r"adds or moves a submodule"),
    ("directory mode", mail(new_file("d", mode="40000")), r"has mode 40000 on line \d+, which git reads as a directory"),
    ("directory mode, old side", mail(header("old mode 040000\nnew mode 100644\n")), r"reads as a directory"),
    ("mode with junk", mail(new_file("x", mode="100644junk")), r"invalid file mode on line \d+: '100644junk'"),
    ("mode not octal", mail(new_file("x", mode="8")), r"invalid file mode"),
    ("mode empty", mail(new_file("x", mode="")), r"invalid file mode"),
    ("index mode with junk", mail(modify(index="index 1111111..2222222 100644x")), r"invalid file mode"),
    # .gitmodules, judged by git's config parser
    ("gitmodules ext url", mail(gitmodules([f"\turl = {EXT}"])), r"adds a submodule URL 'ext::sh -c touch% /tmp/pwned' that uses a remote-helper"),
    ("gitmodules URL upper case", mail(gitmodules([f"\tURL = {EXT}"])), r"submodule URL 'ext::.*key submodule\.src/llvm-project\.url"),
    ("gitmodules key on the section line", mail(gitmodules([f'[submodule "e"] url = {EXT}'])), r"key submodule\.e\.url\)"),
    ("gitmodules quoted value", mail(gitmodules(['[submodule "e"]', f'\turl = "{EXT}"'])), r"submodule URL 'ext::"),
    ("gitmodules escaped quotes", mail(gitmodules(['[submodule "e"]', '\turl = "ext\\"\\"::x"'])), r"remote-helper"),
    ("gitmodules continued line", mail(gitmodules(['[submodule "e"]', "\turl = ext:\\", ":sh"])), r"submodule URL 'ext::sh'"),
    ("gitmodules section case", mail(gitmodules(['[SUBMODULE "e"]', f"\tUrl={EXT}"])), r"remote-helper"),
    ("gitmodules old section syntax", mail(gitmodules(["[submodule.e]", f"\turl = {EXT}"])), r"key submodule\.e\.url"),
    ("gitmodules option url", mail(gitmodules(['[submodule "e"]', "\turl = -uhttps://x/y"])), r"starts with '-'"),
    ("gitmodules space in url", mail(gitmodules(['[submodule "e"]', "\turl = https://x/ y"])), r"whitespace"),
    ("gitmodules empty url", mail(gitmodules(['[submodule "e"]', "\turl"])), r"submodule URL None that is empty"),
    ("gitmodules new file", mail(gitmodules(['[submodule "e"]', f"\turl = {EXT}"], new=True)), r"remote-helper"),
    ("gitmodules upper-case name", mail(gitmodules(['[submodule "e"]', f"\turl = {EXT}"], name=".GITMODULES", new=True)),
     r"remote-helper"),
    ("gitmodules NTFS name", mail(gitmodules(['[submodule "e"]', f"\turl = {EXT}"], name=".gitmodules.", new=True)),
     r"remote-helper"),
    ("gitmodules orphan key", mail(gitmodules([f"url = {EXT}"])), r"remote-helper"),
    ("gitmodules does not parse", mail(gitmodules(['[submodule "e"'])), r"its \.gitmodules does not parse as git config at patch line \d+"),
    ("gitmodules path escapes", mail(gitmodules(['[submodule "e"]', "\tpath = ../../e"])), r"sets submodule\.e\.path = '\.\./\.\./e'"),
    ("gitmodules update command", mail(gitmodules(['[submodule "e"]', "\tupdate = !sh -c x"])), r"runs a command on submodule update"),
    ("gitmodules dotdot name", mail(gitmodules(['[submodule "../../hooks"]', "\turl = https://x/y"])), r"'\.\.' component"),
    ("rename to .gitmodules", mail(header("similarity index 100%\nrename from notes\nrename to .gitmodules\n", "notes")),
     r"renames 'notes' to '\.gitmodules'; .* cannot be checked without the base tree"),
    ("copy to .gitmodules", mail(header("similarity index 100%\ncopy from notes\ncopy to .gitmodules\n", "notes")),
     r"copies 'notes' to '\.gitmodules'"),
    ("rename to quoted .Gitmodules", mail(header('rename from notes\nrename to ".Gitmodules"\n', "notes")), r"renames"),
]


@pytest.mark.parametrize("raw,fragment", [c[1:] for c in HOSTILE_PATCHES], ids=[c[0] for c in HOSTILE_PATCHES])
def test_hostile_patch(raw, fragment):
    with pytest.raises(BadInput, match=fragment) as info:
        parse_patch(raw if isinstance(raw, bytes) else raw.encode(), LABEL)
    one_line(info.value, LABEL)


BAD_SAMPLES = {
    "bad-mode-0120000.patch": r"creates or changes a symlink \(mode 120000, line 9\)",
    "bad-mode-trailing-space.patch": r"creates or changes a symlink \(mode 120000, line 10\)",
    "bad-index-gitlink.patch": r"adds or moves a submodule \(mode 160000, line 9\)",
    "bad-rename-to-quoted-dotdot.patch": r"touches '\.\./guide\.md', which contains '\.\.'",
    "bad-gitmodules-URL-uppercase.patch": r"adds a submodule URL 'ext::sh -c touch% /tmp/pwned'",
    "bad-gitmodules-key-on-section-line.patch": r"submodule URL 'ext::.*key submodule\.enzyme\.url",
    "bad-gitmodules-quoted-value.patch": r"submodule URL 'ext::sh -c touch% /tmp/pwned'",
    "bad-rename-to-gitmodules.patch": r"renames 'mirrors\.txt' to '\.gitmodules'",
    "bad-quoted-printable.patch": r"encoded as 'quoted-printable'",
    "bad-mbox-split.patch": r"a line git am reads as the start of another mail \(line 8\)",
    "bad-traditional-in-diffstat.patch": r"file diff without a 'diff --git' header on line 8",
}


def test_every_bad_sample_has_an_expectation():
    assert sorted(p.name for p in SAMPLES.glob("bad-*.patch")) == sorted(BAD_SAMPLES)


@pytest.mark.parametrize("name", sorted(BAD_SAMPLES))
def test_bad_sample(name):
    with pytest.raises(BadInput, match=BAD_SAMPLES[name]) as info:
        parse_patch((SAMPLES / name).read_bytes(), name)
    one_line(info.value, name)


# --- good patches -----------------------------------------------------------------

GOOD_SAMPLES = [
    ("good-plain.patch", "rustc_session: add -Z autodiff",
     ("compiler/rustc_codegen_ssa/src/traits/autodiff.rs", "compiler/rustc_session/src/options.rs"),
     [(None, "compiler/rustc_codegen_ssa/src/traits/autodiff.rs", "new"),
      ("compiler/rustc_session/src/options.rs", "compiler/rustc_session/src/options.rs", "")]),
    ("good-rename.patch", "docs: rename the guide",
     ("release notes.txt", "release notes 1.63.txt", "src/doc/guide.md", "src/doc/autodiff-guide.md"),
     [("release notes.txt", "release notes 1.63.txt", "rename"), ("src/doc/guide.md", "src/doc/autodiff-guide.md", "rename")]),
    ("good-quoted.patch", "docs: touch files with quoted names",
     ("café.md", 'say "hi".txt', 'say "hello".txt'),
     [("café.md", "café.md", ""), ('say "hi".txt', 'say "hello".txt', "rename")]),
    ("good-space.patch", "notes: a line", ("release notes 1.63.txt",),
     [("release notes 1.63.txt", "release notes 1.63.txt", "")]),
    ("good-gitmodules.patch", "gitmodules: describe Enzyme", (".gitmodules",), [(".gitmodules", ".gitmodules", "")]),
    ("quilt-dep3.mail", "Build against the system LLVM", ("src/bootstrap/native.rs", "debian/llvm-note.txt"),
     [("src/bootstrap/native.rs", "src/bootstrap/native.rs", ""), (None, "debian/llvm-note.txt", "new")]),
]


@pytest.mark.parametrize("name,subject,paths,files", GOOD_SAMPLES, ids=[g[0] for g in GOOD_SAMPLES])
def test_good_sample(name, subject, paths, files):
    patch = parse_patch((SAMPLES / name).read_bytes(), name)
    assert patch.subject == subject
    assert patch.paths == paths
    kinds = [(f.old_path, f.new_path, "rename" if f.is_rename else "new" if f.is_new else "") for f in patch.files]
    assert kinds == files
    assert patch.diff.startswith("diff --git ") and not patch.diff.endswith("-- \n")


def test_good_plain_details():
    patch = parse_patch((SAMPLES / "good-plain.patch").read_bytes(), "x")
    assert patch.author == "Dev Eloper <dev@example.invalid>"
    new, changed = patch.files
    assert new.hunks == (((19, "pub trait AutoDiffMethods {}"),),)
    assert [text for _, text in changed.hunks[0]] == ["// options", "pub struct Z;", "// -Z autodiff"]


GOOD_INLINE = [
    ("mode change", mail(header("old mode 100644\nnew mode 100755\n")), ("x",)),
    ("mode 644 is a file to git", mail(new_file("x", mode="644")), ("x",)),
    ("deleted gitlink", mail(header("deleted file mode 160000\nindex 1111111..0000000\n--- a/x\n+++ /dev/null\n"
                                    "@@ -1 +0,0 @@\n-Subproject commit 1111111111111111111111111111111111111111\n")), ("x",)),
    ("no newline at end", mail(modify(hunk="@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+y\n\\ No newline at end of file\n")),
     ("README.md",)),
    ("empty context line", mail(modify(hunk="@@ -1,3 +1,3 @@\n a\n\n-x\n+y\n")), ("README.md",)),
    ("a signature-like removed line", mail(modify(hunk="@@ -1,2 +1 @@\n-- \n-x\n+y\n")), ("README.md",)),
    ("unicode name unquoted", mail(new_file("doc/café.md")), ("doc/café.md",)),
    ("octal unicode name", mail(new_file('"doc/caf\\303\\251.md"')), ("doc/café.md",)),
    ("dotfile", mail(new_file(".github/workflows/ci.yml")), (".github/workflows/ci.yml",)),
    ("gitmodules in a subdirectory", mail(gitmodules([f"\turl = {EXT}"], name="tests/.gitmodules")), ("tests/.gitmodules",)),
    ("gitmodules https url", mail(gitmodules(['[submodule "e"]', "\turl = https://github.com/EnzymeAD/Enzyme"])), (".gitmodules",)),
    ("gitmodules removed url", mail(gitmodules([]).replace("@@ -1,3 +1,3 @@", "@@ -1,3 +1,2 @@")
                                    .replace(" \turl = https", "-\turl = https")), (".gitmodules",)),
    ("gitmodules deleted", mail("diff --git a/.gitmodules b/.gitmodules\ndeleted file mode 100644\nindex 1111111..0000000\n"
                                "--- a/.gitmodules\n+++ /dev/null\n@@ -1 +0,0 @@\n-[submodule \"x\"]\n"), (".gitmodules",)),
    ("rename away from .gitmodules", mail(header("rename from .gitmodules\nrename to notes\n", ".gitmodules")),
     (".gitmodules", "notes")),
    ("From line in a hunk", mail(modify(hunk="@@ -1 +1 @@\n-x\n+From me 12:34:56 2022\n")), ("README.md",)),
    ("component of 255 bytes", mail(new_file("x" * 255)), ("x" * 255,)),
]


@pytest.mark.parametrize("raw,paths", [g[1:] for g in GOOD_INLINE], ids=[g[0] for g in GOOD_INLINE])
def test_good_inline(raw, paths):
    assert parse_patch(raw.encode(), LABEL).paths == paths


def test_quilt_dep3_becomes_the_expected_mail():
    text = (SAMPLES / "quilt-dep3.patch").read_text()
    assert quilt_to_mail(text, "system-llvm") == (SAMPLES / "quilt-dep3.mail").read_text()


def test_quilt_without_header_takes_the_file_name():
    mail_text = quilt_to_mail("--- a/x.rs\n+++ b/x.rs\n@@ -1 +1 @@\n-a\n+b\n", "fix-x")
    patch = parse_patch(mail_text.encode(), "q")
    assert (patch.subject, patch.author, patch.paths) == ("fix-x", "Unknown Author <unknown@invalid>", ("x.rs",))


def test_quilt_hostile_path_is_refused_after_conversion():
    with pytest.raises(BadInput, match=r"q: touches '\.\./x\.rs', which contains '\.\.'"):
        parse_patch(quilt_to_mail("--- a/../x.rs\n+++ b/../x.rs\n@@ -1 +1 @@\n-a\n+b\n", "evil").encode(), "q")


# --- the pieces of git's reading --------------------------------------------------

@pytest.mark.parametrize("text,mode", [
    ("100644", 0o100644), ("100755", 0o100755), ("0120000", 0o120000), ("120000 ", 0o120000), ("  +160000", 0o160000),
    ("000160000", 0o160000), ("644", 0o644), ("-1", 0xFFFFFFFF), ("7" * 30, 0xFFFFFFFF), ("100644\t", 0o100644),
    ("100644junk", None), ("", None), ("8", None), ("+", None), ("0x1ff", None),
])
def test_parse_mode(text, mode):
    assert parse_mode(text) == mode


@pytest.mark.parametrize("value,mode", [
    ("1111111..2222222 100644", "100644"), ("1111111..2222222", None), ("zz..yy 120000", "120000"),
    ("1111111.2222222 120000", None), ("1" * 41 + "..2 120000", None),
])
def test_index_mode_text(value, mode):
    assert index_mode_text(value) == mode


@pytest.mark.parametrize("text,name,rest", [
    ('"a/foo\\"bar" tail', b'a/foo"bar', " tail"), ('"caf\\303\\251"', "café".encode(), ""),
    ('"\\t\\n\\\\\\a\\b\\f\\r\\v"', b"\t\n\\\a\b\f\r\v", ""), ('"x\\000y"', b"x\0y", ""), ('""', b"", ""),
])
def test_unquote_c_style(text, name, rest):
    assert unquote_c_style(text) == (name, rest)


@pytest.mark.parametrize("text", ['"abc', '"a\\q"', '"\\400"', '"\\08"', 'abc', '"\\'])
def test_unquote_c_style_refuses(text):
    with pytest.raises(ValueError):
        unquote_c_style(text)


@pytest.mark.parametrize("rest,names,default", [
    ("a/x b/x", ["x", "x"], "x"), ("a/x b/y", ["x", "y"], None), ("a/with space b/with space", ["with space"], "with space"),
    ("a/a b b/c d", [], None), ('"a/q\\"x" "b/q\\"x"', ['q"x', 'q"x'], 'q"x'), ('a/x "b/y"', ["x", "y"], None),
])
def test_diff_git_names(rest, names, default):
    assert diff_git_names(rest, "label") == (names, default)


@pytest.mark.parametrize("line,split", [
    ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001", True),
    ("From mallory Sat Jan  1 12:34:56 2022", True), ("From x 10:00:00 1999", True), ("From x 10:00:00 90", False),
    ("From me to you", False), ("From: Dev <d@e>", False), (">From x 10:00:00 1999", False), ("From 12:34", False),
])
def test_is_mbox_from_line(line, split):
    assert is_mbox_from_line(line) is split


@pytest.mark.parametrize("line,brk", [
    ("---", True), ("--- ", True), ("---  \t", True), ("--- a/x", True), ("diff --git a/x b/x", True), ("diff -u x y", True),
    ("Index: x", True), ("----", False), ("---x", False), ("-- ", False), ("--", False), ("--- \tx", False),
])
def test_is_patchbreak(line, brk):
    assert is_patchbreak(line) is brk


@pytest.mark.parametrize("path,yes", [
    (".gitmodules", True), (".GitModules", True), (".gitmodules. ", True), ("GITMOD~1", True),
    ("a/.gitmodules", False), (".gitmodules2", False), ("gitmodules", False),
])
def test_is_gitmodules(path, yes):
    assert is_gitmodules(path) is yes


def test_gitmodules_text_puts_each_hunk_under_a_section():
    text, origin = gitmodules_text((((10, "\turl = a"),), ((20, "[submodule \"x\"]"), (21, "\tpath = x"))))
    assert text == '[submodule "patchmgr-hunk"]\n\turl = a\n[submodule "patchmgr-hunk"]\n[submodule "x"]\n\tpath = x\n'
    assert origin == [0, 10, 0, 20, 21]


# --- safety: paths, URLs, ref names ---------------------------------------------

@pytest.mark.parametrize("path", ["src/llvm-project", "a b/c", "café", ".github/x", "x" * 255, "/".join(["d" * 99] * 40),
                                  "git", ".gitignore", "a.git/b", ":(glob)x"])
def test_path_ok(path):
    assert path_problem(path) is None


@pytest.mark.parametrize("url", ["https://github.com/EnzymeAD/Enzyme", "ssh://git@host/x", "git@github.com:x/y.git",
                                 "/srv/git/enzyme", "file:///srv/enzyme", "git://host/x"])
def test_url_ok(url):
    assert url_problem(url) is None


@pytest.mark.parametrize("name", ["autodiff-1.63.0", "a", "A_b-c.d", "x/y", "héllo", "a.lockx"])
def test_ref_name_ok(name):
    assert ref_name_problem(name) is None


@pytest.mark.parametrize("name", ["autodiff-1.63.0", "autodiff-1.85.0-rc1", "x", "a.b_c-d"])
def test_set_name_pattern_ok(name):
    assert SET_NAME.match(name)


@pytest.mark.parametrize("name", ["s.lock", "a..b", "a.", ".a", "-a", "a/b", "a b", ""])
def test_set_name_pattern_refuses(name):
    """rebase checks --new-set with SET_NAME alone, so the pattern holds git's rules too."""
    assert not SET_NAME.match(name)


# --- hostile manifests ------------------------------------------------------------

VALID = """schema = 1

[sets."autodiff-1.63.0"]
rustc = "1.63.0"
commit = "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f"
llvm = 14
cover = "autodiff-1.63.0/cover.md"

[sets."autodiff-1.63.0".enzyme]
url = "https://github.com/EnzymeAD/Enzyme"
commit = "eac6409a8aa25d7440eeeb477c93acbbe635e9fd"
path = "src/llvm-project/enzyme"

[sets."autodiff-1.63.0".repos."."]
dir = "autodiff-1.63.0/rust"
patches = ["0001-a.patch", "0002-b.patch"]

[sets."autodiff-1.63.0".repos."src/llvm-project"]
dir = "autodiff-1.63.0/llvm-project"
patches = []
"""
SET = "sets.autodiff-1.63.0"


def edit(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def named(name: str) -> str:
    return VALID.replace('"autodiff-1.63.0"', json.dumps(name))


HOSTILE_MANIFESTS = [
    ("not TOML", edit("schema = 1", "schema = = 1"), r"not valid TOML"),
    ("schema true", edit("schema = 1", "schema = true"), r"key 'schema' is True; this patchmgr reads schema 1 \(an integer\)"),
    ("schema 1.0", edit("schema = 1", "schema = 1.0"), r"key 'schema' is 1\.0; this patchmgr reads schema 1"),
    ("schema string", edit("schema = 1", 'schema = "1"'), r"key 'schema' is '1'"),
    ("schema 2", edit("schema = 1", "schema = 2"), r"key 'schema' is 2"),
    ("schema missing", edit("schema = 1\n", ""), r"key 'schema' is missing"),
    ("unknown top key", "extra = 1\n" + VALID, r"key 'extra' is not a known key"),
    ("sets not a table", "schema = 1\nsets = 1\n", r"key 'sets' must hold at least one patch set table"),
    ("set not a table", 'schema = 1\nsets = { x = 1 }\n', r"key 'sets\.x' must be a table"),
    ("set name .lock", named("s.lock"), r"key 'sets\.s\.lock' is not a valid set name: it has a component ending in '\.lock'"),
    ("set name ..", named("a..b"), r"is not a valid set name: it contains '\.\.'"),
    ("set name ending in .", named("a."), r"it ends with '\.'"),
    ("set name starting with .", named(".a"), r"has a component starting with '\.'"),
    ("set name @{", named("a@{1}"), r"it contains '@\{'"),
    ("set name @", named("@"), r"it is '@'"),
    ("set name empty", named(""), r"key 'sets\.' is not a valid set name: it is empty"),
    ("set name space", named("a b"), r"forbids in ref names"),
    ("set name tilde", named("a~1"), r"forbids in ref names"),
    ("set name caret", named("a^"), r"forbids in ref names"),
    ("set name colon", named("a:b"), r"forbids in ref names"),
    ("set name question mark", named("a?"), r"forbids in ref names"),
    ("set name star", named("a*"), r"forbids in ref names"),
    ("set name bracket", named("a[0]"), r"forbids in ref names"),
    ("set name backslash", named("a\\b"), r"forbids in ref names"),
    ("set name newline", named("a\nb"), r"key 'sets\.a\\x0ab' is not a valid set name"),
    ("set name escape sequence", named("\x1b[2Jx"), r"key 'sets\.\\x1b\[2Jx'"),
    ("set name slash", named("a/b"), r"must start with a letter or digit"),
    ("set name dash", named("-x"), r"must start with a letter or digit"),
    ("set name too long", named("a" * 251), r"is longer than 250 bytes"),
    ("llvm true", edit("llvm = 14", "llvm = true"), r"key 'sets\.autodiff-1\.63\.0\.llvm' must be an LLVM major version number such as 14, not True"),
    ("llvm 14.0", edit("llvm = 14", "llvm = 14.0"), r"\.llvm' must be an LLVM major .*not 14\.0"),
    ("llvm string", edit("llvm = 14", 'llvm = "14"'), r"\.llvm' must be an LLVM major"),
    ("llvm out of range", edit("llvm = 14", "llvm = 1000"), r"\.llvm' must be an LLVM major"),
    ("llvm missing", edit("llvm = 14\n", ""), r"\.llvm' is missing"),
    ("rustc float", edit('rustc = "1.63.0"', "rustc = 1.63"), r"\.rustc' must be a string"),
    ("rustc not a version", edit('rustc = "1.63.0"', 'rustc = "latest"'), r"\.rustc' must be a version"),
    ("short commit", edit('commit = "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f"', 'commit = "4b91a6ea7258"'),
     r"key 'sets\.autodiff-1\.63\.0\.commit' must be a full 40-character"),
    ("upper-case commit", edit("4b91a6ea7258a947e59c6522cd5898e7c0a6a88f", "4B91A6EA7258A947E59C6522CD5898E7C0A6A88F"),
     r"\.commit' must be a full 40-character lowercase"),
    ("unknown set key", edit("llvm = 14\n", "llvm = 14\nllvmm = 15\n"), r"\.llvmm' is not a known key"),
    ("enzyme url ext", edit('url = "https://github.com/EnzymeAD/Enzyme"', f'url = "{EXT}"'),
     r"key 'sets\.autodiff-1\.63\.0\.enzyme\.url' URL 'ext::.*remote-helper"),
    ("enzyme url option", edit('url = "https://github.com/EnzymeAD/Enzyme"', 'url = "-uhttps://x/y"'), r"starts with '-'"),
    ("enzyme url relative", edit('url = "https://github.com/EnzymeAD/Enzyme"', 'url = "../Enzyme"'), r"is not an absolute URL"),
    ("enzyme url empty", edit('url = "https://github.com/EnzymeAD/Enzyme"', 'url = ""'), r"enzyme\.url' URL '' is empty"),
    ("enzyme url host option", edit('url = "https://github.com/EnzymeAD/Enzyme"', 'url = "ssh://-oProxyCommand=x/y"'),
     r"has a host starting with '-'"),
    ("enzyme url newline", edit('url = "https://github.com/EnzymeAD/Enzyme"', 'url = "https://x/y\\nz"'), r"whitespace or a control"),
    ("enzyme url fd::", edit('url = "https://github.com/EnzymeAD/Enzyme"', 'url = "fd::3"'), r"remote-helper"),
    ("enzyme commit short", edit('commit = "eac6409a8aa25d7440eeeb477c93acbbe635e9fd"', 'commit = "eac6409"'),
     r"enzyme\.commit' must be a full 40-character"),
    ("enzyme path dotdot", edit('path = "src/llvm-project/enzyme"', 'path = "../enzyme"'),
     r"key 'sets\.autodiff-1\.63\.0\.enzyme\.path' path '\.\./enzyme' contains '\.\.'"),
    ("enzyme path .git", edit('path = "src/llvm-project/enzyme"', 'path = ".git/modules/x"'), r"enzyme\.path' path .* points into \.git/"),
    ("enzyme path long component", edit('path = "src/llvm-project/enzyme"', f'path = "src/{LONG}"'),
     r"enzyme\.path' path .* has a component of 256 bytes"),
    ("enzyme path collides", edit('path = "src/llvm-project/enzyme"', 'path = "src"'), r"enzyme\.path' 'src' collides with repository"),
    ("enzyme path number", edit('path = "src/llvm-project/enzyme"', "path = 1"), r"enzyme\.path' must be a string"),
    ("repos key dotdot", edit('repos."src/llvm-project"]', 'repos."../x"]'), r"repository path '\.\./x' contains '\.\.'"),
    ("repos key .git", edit('repos."src/llvm-project"]', 'repos.".git"]'), r"repository path '\.git' points into \.git/"),
    ("repos key empty", edit('repos."src/llvm-project"]', 'repos.""]'), r"repository path '' is empty"),
    ("repos key absolute", edit('repos."src/llvm-project"]', 'repos."/srv/x"]'), r"is absolute"),
    ("repos key long", edit('repos."src/llvm-project"]', f'repos."src/{LONG}"]'), r"repository path .* component of 256 bytes"),
    ("repos key too long", edit('repos."src/llvm-project"]', 'repos."' + "/".join(["d" * 250] * 17) + '"]'),
     r"repository path .* is 4266 bytes long"),
    ("repos empty", VALID.split('[sets."autodiff-1.63.0".repos."."]')[0] + '[sets."autodiff-1.63.0".repos]\n',
     r"key 'sets\.autodiff-1\.63\.0\.repos' must list at least one repository"),
    ("dir dotdot", edit('dir = "autodiff-1.63.0/rust"', 'dir = "../../etc"'), r"\.dir' path '\.\./\.\./etc' contains '\.\.'"),
    ("dir absolute", edit('dir = "autodiff-1.63.0/rust"', 'dir = "/etc"'), r"\.dir' path '/etc' is absolute"),
    ("dir too long", edit('dir = "autodiff-1.63.0/rust"', 'dir = "' + "/".join(["d" * 250] * 17) + '"'), r"\.dir' path .* bytes long"),
    ("dir missing", edit('dir = "autodiff-1.63.0/rust"\n', ""), r"repos\.\"\.\"\.dir' is missing"),
    ("patches not a list", edit('patches = ["0001-a.patch", "0002-b.patch"]', 'patches = "0001-a.patch"'),
     r"\.patches' must be a list of patch file names"),
    ("patch name dotdot", edit('"0001-a.patch"', '"../../etc/passwd.patch"'), r"entry '\.\./\.\./etc/passwd\.patch' must be a plain file name"),
    ("patch name not .patch", edit('"0001-a.patch"', '"0001-a.diff"'), r"must be a plain file name ending in \.patch"),
    ("patch name number", edit('"0001-a.patch"', "1"), r"entry 1 must be a plain file name"),
    ("patch name too long", edit('"0001-a.patch"', '"' + "a" * 250 + '.patch"'), r"entry 'a{200}\.\.\.': its path has a component of 256 bytes"),
    ("patch listed twice", edit('"0002-b.patch"', '"0001-a.patch"'), r"lists '0001-a\.patch' twice"),
    ("cover dotdot", edit('cover = "autodiff-1.63.0/cover.md"', 'cover = "../../home/x/.ssh/id_rsa"'), r"\.cover' path .* contains '\.\.'"),
    ("cover too long", edit('cover = "autodiff-1.63.0/cover.md"', f'cover = "{LONG}.md"'), r"\.cover' path .* component of 259 bytes"),
    ("cover not a string", edit('cover = "autodiff-1.63.0/cover.md"', "cover = true"), r"\.cover' must be a string"),
]


@pytest.mark.parametrize("text,fragment", [c[1:] for c in HOSTILE_MANIFESTS], ids=[c[0] for c in HOSTILE_MANIFESTS])
def test_hostile_manifest(text, fragment):
    with pytest.raises(BadInput, match=fragment) as info:
        parse_manifest(text, MANIFEST)
    one_line(info.value, str(MANIFEST))


def test_at_least_120_hostile_cases():
    assert len(HOSTILE_PATCHES) + len(HOSTILE_MANIFESTS) + len(BAD_SAMPLES) >= 120


def test_valid_manifest():
    manifest = parse_manifest(VALID, MANIFEST)
    patch_set = manifest.get("autodiff-1.63.0")
    assert (patch_set.rustc, patch_set.llvm, patch_set.cover) == ("1.63.0", 14, "autodiff-1.63.0/cover.md")
    assert [r.path for r in patch_set.apply_order()] == ["src/llvm-project", "."]
    assert patch_set.enzyme_owner() == "src/llvm-project"
    assert manifest_tree_paths(patch_set) == [
        TreePath('sets.autodiff-1.63.0.repos."src/llvm-project"', "src/llvm-project", "repo"),
        TreePath("sets.autodiff-1.63.0.enzyme.path", "src/llvm-project/enzyme", "enzyme")]


def test_shipped_manifest_and_patches_parse():
    root = Path(__file__).resolve().parent.parent / "patches"
    manifest = parse_manifest((root / "series.toml").read_text(), root / "series.toml")
    for patch_set in manifest.sets.values():
        for series in patch_set.repos:
            for name in series.patches:
                patch = parse_patch(patch_set.patch_file(series, name).read_bytes(), name)
                assert patch.paths and all(path_problem(p) is None for p in patch.paths)


# --- diagnose and surface ---------------------------------------------------------

def test_failing_hunks_reports_what_the_tree_has():
    patch = parse_patch((SAMPLES / "good-surface.patch").read_bytes(), "s")
    tree = {"compiler/rustc_codegen_llvm/src/lib.rs": "fn other() {\n}\n",
            "compiler/rustc_session/src/options.rs": (SAMPLES / "surface-tree/compiler/rustc_session/src/options.rs").read_text(),
            "config.toml.example": "[llvm]\n\n# Whether to optimize LLVM\n#optimize = true\n",
            "src/bootstrap/compile.rs": "exists already\n"}
    failures = diagnose.failing_hunks(patch.diff, tree.get)
    summary = [(f.path, f.header, f.missing_file) for f in failures]
    assert summary == [("compiler/rustc_codegen_llvm/src/lib.rs", "@@ -1,2 +1,5 @@", False),
                       ("compiler/rustc_session/src/options.rs", "@@ -3,4 +3,6 @@ options! {", False),
                       ("src/bootstrap/compile.rs", "new file", False),
                       ("src/bootstrap/config.rs", "whole file", True)]
    # neither `fn codegen() {` nor a telling line of its context is in the file: no place is shown
    assert failures[0].expected == ["fn codegen() {", "}"] and failures[0].found == [] and failures[0].line is None
    lines = diagnose.render(failures)
    assert "  src/bootstrap/config.rs: the file does not exist in the tree" in lines
    assert ("    the tree has no one place where these lines match, even with the hunk's outer context lines set aside"
            in lines), lines
    assert "      | fn other() {" not in lines


STEPS = "".join(f"fn step_{i}() -> u32 {{\n    compute_the_step_number({i})\n}}\n\n" for i in range(8))
STEP_PATCH = "\n".join(["diff --git a/src/steps.rs b/src/steps.rs", "--- a/src/steps.rs", "+++ b/src/steps.rs",
                        "@@ -17,6 +17,7 @@", " fn step_4() -> u32 {", "     compute_the_step_number(4)", " }",
                        "+// step 4 is differentiable", " ", " fn step_5() -> u32 {",
                        "     compute_the_step_number(5)", ""])


def test_failing_hunks_shows_the_tree_where_the_hunks_lines_are_now():
    """Upstream inserted 40 lines above the hunk and edited one of its context lines: the tree's
    lines are shown where the hunk's lines are now, with that line number and how they match,
    not the 40 new lines at the patch's line 17."""
    inserted = "".join(f"// upstream's new line {i}\n" for i in range(40))
    tree = {"src/steps.rs": inserted + STEPS.replace("compute_the_step_number(5)", "compute_the_step_number(5, ctx)")}
    [failure] = diagnose.failing_hunks(STEP_PATCH, tree.get)
    assert failure.line == 57 and failure.how == "1 of its 6 context lines differ", failure
    assert failure.found == ["fn step_4() -> u32 {", "    compute_the_step_number(4)", "}", "", "fn step_5() -> u32 {",
                             "    compute_the_step_number(5, ctx)"], failure
    lines = diagnose.render([failure])
    assert "    the tree has at line 57 (1 of its 6 context lines differ):" in lines, lines
    assert not any("upstream's new line" in line for line in lines), lines


def test_failing_hunks_finds_the_hunk_by_its_context_when_its_lines_changed():
    """Lines inserted above, and the hunk's own lines (here all but its leading context) changed:
    the leading context, found once in the file, says where; nothing telling of it: no place."""
    patch = STEP_PATCH.replace("@@ -17,6 +17,7 @@", "@@ -17,6 +17,6 @@").replace(
        " }\n+// step 4 is differentiable\n", "-}\n+} // step 4 is differentiable\n")
    inserted = "".join(f"// upstream's new line {i}\n" for i in range(40))
    edited = STEPS.replace("fn step_5() -> u32 {", "pub fn step_5() -> u32 {").replace("(4)\n}", "(4)\n};")
    [failure] = diagnose.failing_hunks(patch, {"src/steps.rs": inserted + edited}.get)
    assert failure.line == 57 and failure.how == "only its leading context matches there", failure
    assert failure.found[:3] == ["fn step_4() -> u32 {", "    compute_the_step_number(4)", "};"], failure
    [failure] = diagnose.failing_hunks(patch, {"src/steps.rs": inserted + edited.replace("(4)", "(4, ctx)")}.get)
    assert failure.line is None and failure.found == [], failure


def test_surface_read_from_the_patch():
    patch = parse_patch((SAMPLES / "good-surface.patch").read_bytes(), "s")
    root = SAMPLES / "surface-tree"
    found = surface.find_surface([patch], lambda p: (root / p).read_text() if (root / p).is_file() else None)
    assert found.options == [surface.Option(flag="-Z autodiff", name="autodiff", type="bool", tracking="TRACKED",
                                            doc="differentiate the whole program with Enzyme (default: no)")]
    assert found.config_keys == [surface.ConfigKey(key="llvm.enzyme", type="bool", default="false",
                                                   doc="Build Enzyme and pass --cfg llvm_enzyme to the compiler crates")]
    assert found.cfgs_set == {"llvm_enzyme": ["src/bootstrap/compile.rs"]}
    assert found.gates == {"compiler/rustc_codegen_llvm/src/lib.rs": {"cfg!(llvm_enzyme)": 1, "-Z autodiff": 1}}
    assert found.new_files == ["src/bootstrap/compile.rs"]
    assert surface.diffstat(".", [patch]) == {"rustc_codegen_llvm": [1, 3, 0], "rustc_session": [1, 2, 0],
                                              "config.toml.example": [1, 3, 0], "bootstrap": [2, 4, 0]}


def test_surface_lists_a_builtin_attribute_and_its_feature_gate():
    patch = parse_patch((SAMPLES / "good-surface-macro.patch").read_bytes(), "s")
    root = SAMPLES / "surface-macro-tree"
    found = surface.find_surface([patch], lambda p: (root / p).read_text() if (root / p).is_file() else None)
    assert found.features == [surface.Feature(name="autodiff", status="active", since="1.63.0",
                                              doc="Allows `#[autodiff]`, the derivative of a function generated by Enzyme.")]
    assert found.macros == [surface.BuiltinMacro(name="autodiff", kind="attribute", feature="autodiff",
                                                 options=("-Z autodiff",),
                                                 doc="Generates the derivative of a function with Enzyme.")]
    assert [o.flag for o in found.options] == ["-Z autodiff"]
    # Nothing else registered or gated is taken for a new macro or feature.
    assert found.new_files == ["compiler/rustc_builtin_macros/src/autodiff.rs"]


@pytest.mark.parametrize("repo,path,crate", [
    (".", "compiler/rustc_session/src/options.rs", "rustc_session"), (".", "library/std/src/lib.rs", "std"),
    (".", "src/bootstrap/native.rs", "bootstrap"), (".", "src/tools/x/y.rs", "src/tools"), (".", "x.py", "x.py"),
    ("src/llvm-project", "llvm/lib/x.cpp", "src/llvm-project"),
])
def test_crate_of(repo, path, crate):
    assert surface.crate_of(repo, path) == crate


# --- against a base tree: pure decisions, then a real repository ------------------

MODES = {"src": MODE_TREE, "src/llvm-project": MODE_GITLINK, "vendor": MODE_TREE, "vendor/sub": MODE_GITLINK,
         "link": MODE_SYMLINK, "docs": MODE_TREE, "docs/file": "100644"}


@pytest.mark.parametrize("path,label,fragment", [
    ("link/x", ".", r"through the symlink 'link' in \."),
    ("link", ".", r"through the symlink 'link'"),
    ("vendor/sub/x", ".", r"touches 'vendor/sub/x' inside submodule 'vendor/sub' \(in \.\), which the set does not patch"),
    ("vendor/sub", ".", r"touches 'vendor/sub', a submodule in \.'s base tree"),
])
def test_base_path_problem(path, label, fragment):
    assert re.search(fragment, base_path_problem(path, MODES, label))


@pytest.mark.parametrize("path", ["docs/new.md", "src/x.rs", "new/dir/file"])
def test_base_path_fine(path):
    assert base_path_problem(path, MODES, ".") is None


@pytest.mark.parametrize("entry,fragment", [
    (TreePath("k", "docs", "repo"), r"is not a submodule in the base tree \(it is a directory\)"),
    (TreePath("k", "missing/repo", "repo"), r"is not in the base tree \('missing' does not exist\)"),
    (TreePath("k", "link/repo", "repo"), r"runs through the symlink 'link'"),
    (TreePath("k", "docs/file/x", "repo"), r"runs through 'docs/file', which is a file"),
    (TreePath("k", "vendor/sub/x", "enzyme"), r"lies inside submodule 'vendor/sub', which the set does not list"),
    (TreePath("k", "docs/file", "enzyme"), r"cannot hold the Enzyme submodule \(it is a file"),
    (TreePath("k", "link", "enzyme"), r"cannot hold the Enzyme submodule \(it is a symlink"),
    (TreePath("k", "src", "repo"), r"is not a submodule"),
])
def test_manifest_path_problem(entry, fragment):
    assert re.search(fragment, manifest_path_problem(entry, MODES, {"src/llvm-project"}))


@pytest.mark.parametrize("entry", [
    TreePath("k", "src/llvm-project", "repo"), TreePath("k", "src/llvm-project/enzyme", "enzyme"),
    TreePath("k", "src/tools/enzyme", "enzyme"), TreePath("k", "docs/enzyme", "enzyme"), TreePath("k", "vendor/sub", "enzyme"),
])
def test_manifest_path_fine(entry):
    assert manifest_path_problem(entry, MODES, {"src/llvm-project"}) is None


def _git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def base_repo(tmp_path):
    """A superproject with a listed submodule, an unlisted one, a symlink and a pathspec-magic-named link."""
    root = tmp_path / "rust"
    (root / "docs").mkdir(parents=True)
    (root / "docs/file").write_text("doc\n")
    (root / "link").symlink_to("/tmp")
    (root / ":(glob)magic").symlink_to("/tmp")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    for path in ("src/llvm-project", "vendor/sub"):
        _git(root, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{path}")
    _git(root, "commit", "-q", "-m", "base")
    return root, _git(root, "rev-parse", "HEAD")


def _patches(*paths: str):
    return [parse_patch(mail(new_file(p)).encode(), f"set/rust/{i:04d}.patch") for i, p in enumerate(paths, 1)]


@pytest.mark.parametrize("path,fragment", [
    ("link/x", r"set/rust/0001\.patch: touches 'link/x' through the symlink 'link' in \."),
    ("vendor/sub/x", r"touches 'vendor/sub/x' inside submodule 'vendor/sub'"),
    (":(glob)magic/x", r"through the symlink ':\(glob\)magic'"),
])
def test_check_against_base_refuses(base_repo, path, fragment):
    root, base = base_repo
    with pytest.raises(BadInput, match=fragment) as info:
        check_against_base(Repo(root), base, _patches(path))
    one_line(info.value, "set/rust/0001.patch")


def test_check_against_base_passes(base_repo):
    root, base = base_repo
    check_against_base(Repo(root), base, _patches("docs/new.md", "src/x.rs", "docs/file"))


def _set_with(tmp_path: Path, old: str, new: str):
    text = VALID.replace(old, new, 1) if old else VALID
    return parse_manifest(text, tmp_path / "patches" / "series.toml").get("autodiff-1.63.0")


@pytest.mark.parametrize("old,new,fragment", [
    ('repos."src/llvm-project"]', 'repos."docs"]', r"key 'sets\.autodiff-1\.63\.0\.repos\.\"docs\"' path 'docs' is not a submodule"),
    ('repos."src/llvm-project"]', 'repos."link/llvm"]', r"repos\.\"link/llvm\"' path 'link/llvm' runs through the symlink 'link'"),
    ('path = "src/llvm-project/enzyme"', 'path = "vendor/sub/enzyme"', r"enzyme\.path' path 'vendor/sub/enzyme' lies inside submodule 'vendor/sub'"),
    ('path = "src/llvm-project/enzyme"', 'path = "docs/file"', r"enzyme\.path' path 'docs/file' cannot hold the Enzyme submodule"),
    ('path = "src/llvm-project/enzyme"', 'path = "outside/enzyme"', r"enzyme\.path' path 'outside/enzyme' leads outside the checkout"),
])
def test_check_manifest_paths_refuses(base_repo, tmp_path, old, new, fragment):
    root, base = base_repo
    (root / "outside").symlink_to(tmp_path)  # in the work tree only, not in the base tree
    patch_set = _set_with(tmp_path, old, new)
    with pytest.raises(BadInput, match=fragment) as info:
        check_manifest_paths(Repo(root), base, patch_set, root)
    one_line(info.value, str(tmp_path / "patches" / "series.toml"))


def test_check_manifest_paths_passes(base_repo, tmp_path):
    root, base = base_repo
    check_manifest_paths(Repo(root), base, _set_with(tmp_path, "", ""), root)
    check_manifest_paths(Repo(root), base, _set_with(tmp_path, 'path = "src/llvm-project/enzyme"', 'path = "src/tools/enzyme"'), root)


def test_surface_leaves_out_cfgs_every_build_has():
    """`#[cfg(test)]` on a patch's unit tests gates nothing the series adds; its own cfg does."""
    body = "#[cfg(test)]\nmod tests {}\nfn f() -> bool {\n    cfg!(llvm_enzyme) && cfg!(debug_assertions)\n}\n"
    lines = body.splitlines()
    mail = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            "From: A <a@example.invalid>\nDate: Mon, 8 Aug 2022 12:00:00 +0000\nSubject: [PATCH] rules\n\n---\n"
            "diff --git a/compiler/x/src/rules.rs b/compiler/x/src/rules.rs\nnew file mode 100644\n"
            "index 0000000..1111111\n--- /dev/null\n+++ b/compiler/x/src/rules.rs\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines) + "-- \n2.39.2\n\n")
    patch = parse_patch(mail.encode(), "s")
    found = surface.find_surface([patch], lambda p: None)
    assert found.gates == {"compiler/x/src/rules.rs": {"cfg!(llvm_enzyme)": 1}}
