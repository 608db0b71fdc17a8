"""import: quilt series (DEP-3 or bare), a directory of mails, a revision range."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from fixture import git, write

QUILT_DEP3 = """Description: Mark f3 differentiable
 The first line is the subject; these lines
 become the message.
Author: Deb Ian <deb@example.invalid>
Origin: vendor
Last-Update: 2022-08-09
---
Index: rust/compiler/rustc_codegen_llvm/src/lib.rs
===================================================================
--- rust.orig/compiler/rustc_codegen_llvm/src/lib.rs
+++ rust/compiler/rustc_codegen_llvm/src/lib.rs
@@ -10,7 +10,7 @@
 }}

 pub fn f3(x: f64) -> f64 {{
-    x * 3.0
+    x * 3.0 // autodiff
 }}

 pub fn f4(x: f64) -> f64 {{
"""

QUILT_BARE = """--- /dev/null
+++ b/NOTES.txt
@@ -0,0 +1 @@
+patched by quilt
"""

NEW_SET = ["--rustc", "1.63.0", "--llvm", "14"]


def quilt(world):
    d = world.tmp / "quilt"
    d.mkdir()
    (d / "mark-f3.patch").write_text(QUILT_DEP3.format())
    (d / "add-notes.patch").write_text(QUILT_BARE)
    (d / "series").write_text("# the series\nmark-f3.patch\nadd-notes.patch -p1\n")
    return d / "series"


def test_quilt_series_becomes_an_appliable_set(world):
    res = world.run("import", str(quilt(world)), "--set", "quilted", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    names = sorted(p.name for p in (world.patches / "quilted" / "rust").iterdir())
    assert names == ["0001-Mark-f3-differentiable.patch", "0002-add-notes.patch"]
    assert world.run("lint").returncode == 0
    res = world.run("apply", "--set", "quilted")
    assert res.returncode == 0, res.stderr
    log = world.git("log", "--reverse", "--format=%an <%ae>|%ad|%s|%b%x00", "--date=short", f"{world.base}..HEAD")
    first, second = [entry.strip() for entry in log.split("\0")[:2]]
    assert first.startswith("Deb Ian <deb@example.invalid>|2022-08-09|Mark f3 differentiable|"
                            "The first line is the subject; these lines\nbecome the message.")
    assert "Origin: vendor" in first
    assert second.startswith("Unknown Author <unknown@invalid>|1970-01-01|add-notes|")
    assert (world.checkout / "NOTES.txt").read_text() == "patched by quilt\n"
    assert json.loads(world.run("status", "--json").stdout)["state"] == "applied"


def test_directory_of_mails(world):
    source = world.patches / "autodiff-1.63.0" / "rust"
    res = world.run("import", str(source), "--set", "copy", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    # the same names, messages and changes, in export's form ([PATCH] unnumbered, full index lines, no signature)
    copied = {p.name: p.read_text() for p in (world.patches / "copy" / "rust").iterdir()}
    assert sorted(copied) == sorted(p.name for p in source.iterdir())
    for name, text in copied.items():
        original = re.sub(r"\[PATCH \d+/\d+\]", "[PATCH]", (source / name).read_text())
        assert text.split("\ndiff --git ")[0] == original.split("\ndiff --git ")[0]
        assert "\n-- \n" in original and "\n-- \n" not in text


def test_revision_range(world):
    git(world.checkout, "checkout", "-q", "-b", "work", env=world.env)
    write(world.checkout / "compiler/rustc_codegen_ssa/src/traits/autodiff.rs", "pub trait AutoDiffMethods {}\n")
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "Add the trait", env=world.env)
    res = world.run("import", f"{world.base}..work", "--set", "autodiff-1.63.0")
    assert res.returncode == 0, res.stderr
    text = (world.patches / "autodiff-1.63.0" / "rust" / "0001-Add-the-trait.patch").read_text()
    assert text.startswith("From 0000000000000000000000000000000000000000 ") and "\n-- \n" not in text
    manifest = (world.patches / "series.toml").read_text()
    assert '"0001-Add-the-trait.patch"' in manifest and "codegen_llvm-mark-f3" not in manifest.split("repos.\".\"")[1].split("[")[0]


def test_import_errors(world):
    res = world.run("import", str(quilt(world)), "--set", "fresh")
    assert res.returncode == 3
    # the fixture's tree says no rustc version and no LLVM major; its commit is the tree's own
    assert res.stderr.strip().endswith("src/llvm-project's CMake, no rustc/<major> branch for it in .gitmodules): "
                                       "give --rustc, --llvm"), res.stderr
    assert "set fresh is new and tree " in res.stderr and len(res.stderr.strip().splitlines()) == 1
    crlf = world.tmp / "crlf"
    crlf.mkdir()
    (crlf / "series").write_text("a.patch\n")
    (crlf / "a.patch").write_bytes(QUILT_BARE.replace("\n", "\r\n").encode())
    res = world.run("import", str(crlf / "series"), "--set", "fresh", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3 and "CRLF line endings" in res.stderr
    assert not (world.patches / "fresh").exists()
    res = world.run("import", "not-a-range", "--set", "fresh", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3 and "is not a revision range" in res.stderr


# --- quilt's series options, duplicates, bytes that are not UTF-8, merges -----------------------

#: each (file name, series options, patch text): what quilt hands to `patch` for every line
OPTIONS_SERIES = [
    # -p0: names as they are, here a new file in a new directory
    ("new-doc.patch", "-p0", "--- /dev/null\n+++ docs/autodiff.md\n@@ -0,0 +1,2 @@\n+# Autodiff\n+read -p0\n"),
    # -p2: one directory more than quilt's default
    ("deep.diff", "-p2", "--- a/rust/compiler/rustc_codegen_llvm/src/lib.rs\t2022-08-09 10:00:00.000000000 +0000\n"
                         "+++ b/rust/compiler/rustc_codegen_llvm/src/lib.rs\t2022-08-09 10:00:00.000000000 +0000\n"
                         "@@ -1,3 +1,3 @@\n pub fn f0(x: f64) -> f64 {\n-    x * 0.0\n+    x * 0.0 // deep\n }\n"),
    # -R: the file has the new side; quilt takes it back to the old one, whose last line has no newline
    ("readme.patch", "-R", "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust, reversed\n"
                           "\\ No newline at end of file\n+rust\n"),
    # -R of a patch that creates a file: quilt deletes it
    ("options.patch", "-p1 -R  # the file goes", "--- /dev/null\n+++ b/compiler/rustc_session/src/options.rs\n"
                                                 "@@ -0,0 +1,2 @@\n+// options\n+pub struct Z;\n"),
    # -R of a git diff: a mode change and a hunk taken back, the index line's blobs swapped
    ("git-style.patch", "-R", "diff --git a/x.py b/x.py\nold mode 100755\nnew mode 100644\n"
                              "index 1111111..2222222\n--- a/x.py\n+++ b/x.py\n"
                              "@@ -1,2 +1,2 @@\n #!/usr/bin/env python3\n-print('reversed')\n+print('bootstrap')\n"),
    # an older quilt's creation: no /dev/null, the old side dated the epoch
    ("epoch.patch", "", "--- a/docs/old-style.md\t1970-01-01 00:00:00.000000000 +0000\n"
                        "+++ b/docs/old-style.md\t2022-08-09 10:00:00.000000000 +0000\n@@ -0,0 +1 @@\n+made by an old quilt\n"),
    # -R of a format-patch mail: its header kept, its diff taken back
    ("mail.patch", "-R", "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
                         "From: Deb Ian <deb@example.invalid>\nDate: Tue, 9 Aug 2022 10:00:00 +0000\n"
                         "Subject: [PATCH] Take f5 back\n\n---\n compiler/rustc_codegen_llvm/src/lib.rs | 2 +-\n\n"
                         "diff --git a/compiler/rustc_codegen_llvm/src/lib.rs b/compiler/rustc_codegen_llvm/src/lib.rs\n"
                         "--- a/compiler/rustc_codegen_llvm/src/lib.rs\n+++ b/compiler/rustc_codegen_llvm/src/lib.rs\n"
                         "@@ -21,3 +21,3 @@\n pub fn f5(x: f64) -> f64 {\n-    x * 5.5\n+    x * 5.0\n }\n-- \n2.39.5\n\n"),
]


def write_series(world, entries, name="opts") -> Path:
    d = world.tmp / name
    d.mkdir()
    for file_name, _, text in entries:
        (d / file_name).write_bytes(text.encode() if isinstance(text, str) else text)
    (d / "series").write_text("".join(f"{file_name} {options}\n" for file_name, options, _ in entries))
    return d / "series"


def tree_files(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file under root (git's own directories and the submodule left out): bytes and exec bit."""
    files = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if ".git" in path.relative_to(root).parts or rel.startswith("src/llvm-project") or not path.is_file():
            continue
        files[rel] = (path.read_bytes(), os.access(path, os.X_OK))
    return files


def quilt_push_tree(world, series: Path) -> dict[str, tuple[bytes, bool]]:
    """The base with the series applied as `quilt push -a` does: `patch` with the series line's
    options (-p1 when it gives none), one patch after the other."""
    tree = world.tmp / "quilt-tree"
    git(world.tmp, "clone", "-q", str(world.upstream), str(tree), env=world.env)
    git(tree, "checkout", "-q", world.base, env=world.env)
    for line in series.read_text().splitlines():
        fields = line.split("#")[0].split()
        args = fields[1:] if any(a.startswith("-p") for a in fields[1:]) else [*fields[1:], "-p1"]
        res = subprocess.run(["patch", *args, "-f", "--no-backup-if-mismatch", "-s", "-i", str(series.parent / fields[0])],
                             cwd=tree, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
    return tree_files(tree)


def test_quilt_options_are_honoured_as_quilt_applies_them(world):
    series = write_series(world, OPTIONS_SERIES)
    expected = quilt_push_tree(world, series)
    res = world.run("import", str(series), "--set", "opts", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    res = world.run("apply", "--set", "opts")
    assert res.returncode == 0, res.stderr
    assert tree_files(world.checkout) == expected
    assert expected["README.md"] == (b"rust, reversed", False) and "compiler/rustc_session/src/options.rs" not in expected
    # plain git am of the written files gives the same tree
    plain = world.tmp / "plain"
    git(world.tmp, "clone", "-q", str(world.upstream), str(plain), env=world.env)
    git(plain, "checkout", "-q", "-b", "plain", world.base, env=world.env)
    mails = sorted((world.patches / "opts" / "rust").iterdir())
    git(plain, "am", "-q", "--keep-cr", *map(str, mails), env=world.env)
    assert tree_files(plain) == expected


def test_quilt_series_lines_import_cannot_reproduce_are_refused(world):
    manifest = (world.patches / "series.toml").read_bytes()
    cases = [
        ("--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust\n+rust!\n", "a.patch -l", "series line 1: a.patch: "
         "option -l is not one import can reproduce"),
        ("--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust\n+rust!\n", "a.patch --fuzz=3", "option --fuzz=3"),
        ("--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust\n+rust!\n", "a.patch -p1 -p0", "gives -p twice"),
        ("--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust\n+rust!\n", "a.patch -p3", "a/README.md has fewer than 3"),
        # patch picks whichever of two different names exists: import does not guess
        ("--- README.md.orig\n+++ README.md\n@@ -1 +1 @@\n-rust\n+rust!\n", "a.patch -p0", "names README.md.orig and README.md"),
        # a context diff: patch applies it, git cannot
        ("*** a/README.md\n--- b/README.md\n***************\n*** 1 ****\n! rust\n--- 1 ----\n! rust!\n", "a.patch",
         "context diff"),
        # a copy cannot be taken back exactly
        ("diff --git a/README.md b/COPY.md\nsimilarity index 100%\ncopy from README.md\ncopy to COPY.md\n", "a.patch -R",
         "copy"),
    ]
    for number, (text, line, message) in enumerate(cases):
        d = world.tmp / f"bad{number}"
        d.mkdir()
        (d / "a.patch").write_text(text)
        (d / "series").write_text(line + "\n")
        res = world.run("import", str(d / "series"), "--set", "bad", "--commit", world.base, *NEW_SET)
        assert res.returncode == 3 and message in res.stderr, (line, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not (world.patches / "bad").exists() and (world.patches / "series.toml").read_bytes() == manifest


def test_quilt_series_listing_a_patch_twice_is_refused(world):
    d = world.tmp / "dup"
    d.mkdir()
    (d / "a.patch").write_text(QUILT_BARE)
    (d / "b.patch").write_text("--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust\n+rust!\n")
    (d / "series").write_text("a.patch\n# a comment\nb.patch\na.patch -p1\n")
    res = world.run("import", str(d / "series"), "--set", "dup", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3, res.stderr
    assert "lists a.patch twice (lines 1 and 4)" in res.stderr
    assert not (world.patches / "dup").exists()


LATIN1_HEADER = ("Description: Caf\xe9 support\nAuthor: Jos\xe9 <jose@example.invalid>\n---\n"
                 "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust\n+rust!\n").encode("latin-1")
LATIN1_CONTENT = "--- /dev/null\n+++ b/NOTES.txt\n@@ -0,0 +1 @@\n+na\xefve\n".encode("latin-1")


def test_bytes_that_are_not_utf8_are_refused_not_replaced(world):
    manifest = (world.patches / "series.toml").read_bytes()
    for number, (data, where) in enumerate([(LATIN1_HEADER, "(line 1 of"), (LATIN1_CONTENT, "(line 4 of")]):
        d = world.tmp / f"latin{number}"
        d.mkdir()
        (d / "a.patch").write_bytes(data)
        (d / "series").write_text("a.patch\n")
        res = world.run("import", str(d / "series"), "--set", "latin", "--commit", world.base, *NEW_SET)
        assert res.returncode == 3, res.stderr
        assert "a.patch is not UTF-8" in res.stderr and where in res.stderr, res.stderr
        assert not (world.patches / "latin").exists() and (world.patches / "series.toml").read_bytes() == manifest
    # a directory of mails: the same bytes, the same refusal
    mails = world.tmp / "mails"
    mails.mkdir()
    mail = sorted((world.patches / "autodiff-1.63.0" / "rust").iterdir())[0].read_bytes()
    assert b"+    x * 3.0" in mail
    (mails / "0001-x.patch").write_bytes(mail.replace(b"+    x * 3.0", b"+    x * 3.0 // caf\xe9"))
    res = world.run("import", str(mails), "--set", "latin", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3 and "0001-x.patch is not UTF-8" in res.stderr, res.stderr
    assert not (world.patches / "latin").exists()


def test_range_whose_content_is_not_utf8_is_refused(world):
    git(world.checkout, "checkout", "-q", "-b", "work", env=world.env)
    (world.checkout / "NOTES.txt").write_bytes(b"na\xefve\n")
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "Add notes", env=world.env)
    res = world.run("import", f"{world.base}..work", "--set", "latin", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3, res.stderr
    assert "is not UTF-8" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (world.patches / "latin").exists()


def test_range_with_a_merge_is_refused(world):
    git(world.checkout, "checkout", "-q", "-b", "side", env=world.env)
    write(world.checkout / "side.txt", "side\n")
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "Side work", env=world.env)
    git(world.checkout, "checkout", "-q", "-b", "work", world.base, env=world.env)
    write(world.checkout / "work.txt", "work\n")
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "Main work", env=world.env)
    git(world.checkout, "merge", "-q", "--no-ff", "--no-commit", "side", env=world.env)
    write(world.checkout / "merge-only.txt", "made by the merge itself\n")  # the merge's own change
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "Merge side", env=world.env)
    merge = git(world.checkout, "rev-parse", "--short", "HEAD", env=world.env).strip()
    manifest = (world.patches / "series.toml").read_bytes()
    res = world.run("import", f"{world.base}..work", "--set", "merged", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3, res.stderr
    assert f"merge commit {merge} (Merge side)" in res.stderr and "git rebase" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (world.patches / "merged").exists() and (world.patches / "series.toml").read_bytes() == manifest


# --- import writes export's form; a [tag] subject prefix is kept ---------------------------------

ROUND_TRIP_SERIES = [
    # DEP-3 with a message, a date from Last-Update, an Index: line and timestamps
    ("mark-f3.patch", "", QUILT_DEP3.format()),
    # no header at all: the subject from the file name, a body-less commit
    ("add-notes.patch", "", QUILT_BARE),
    # LLVM's habit: a [tag] before the subject, which git am would strip
    ("tagged.patch", "", "Description: [X86] Keep the tag\nAuthor: Ll Vm <llvm@example.invalid>\n---\n"
                         "--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n rust\n+tagged\n"),
    # a format-patch mail as another tool wrote it: abbreviated index, a signature, trailing blanks in the body
    ("mail.patch", "", "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
                       "From: Deb Ian <deb@example.invalid>\nDate: Tue, 9 Aug 2022 10:00:00 +0000\n"
                       "Subject: [PATCH] Touch options\n\nWhy, with a trailing blank   \n\n\nand two blank lines.\n"
                       "---\n compiler/rustc_session/src/options.rs | 1 +\n 1 file changed, 1 insertion(+)\n\n"
                       "diff --git a/compiler/rustc_session/src/options.rs b/compiler/rustc_session/src/options.rs\n"
                       "index 1111111..2222222 100644\n--- a/compiler/rustc_session/src/options.rs\n"
                       "+++ b/compiler/rustc_session/src/options.rs\n@@ -1,2 +1,3 @@\n // options\n pub struct Z;\n"
                       "+pub struct Y;\n-- \n2.30.2\n\n"),
]


def applied_then_exported(world, set_name):
    """The set's files as import wrote them, and export's answer after apply."""
    directory = world.patches / set_name / "rust"
    imported = {p.name: p.read_bytes() for p in directory.iterdir()}
    res = world.run("apply", "--set", set_name)
    assert res.returncode == 0, res.stderr
    res = world.run("export")
    assert res.returncode == 0, res.stderr
    return imported, {p.name: p.read_bytes() for p in directory.iterdir()}, res.stderr


def test_quilt_import_then_export_is_byte_identical(world):
    series = write_series(world, ROUND_TRIP_SERIES, name="round")
    res = world.run("import", str(series), "--set", "round", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    imported, exported, said = applied_then_exported(world, "round")
    assert "nothing changed" in said and exported == imported
    assert world.git("log", "-1", "--skip=1", "--format=%s") == "[X86] Keep the tag\n"
    assert sorted(imported) == ["0001-Mark-f3-differentiable.patch", "0002-add-notes.patch",
                                "0003-X86-Keep-the-tag.patch", "0004-Touch-options.patch"]


def test_directory_and_range_imports_then_export_are_byte_identical(world):
    # the fixture's mails came from plain format-patch (abbreviated index lines, a signature)
    source = world.patches / "autodiff-1.63.0" / "rust"
    res = world.run("import", str(source), "--set", "copy", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    imported, exported, said = applied_then_exported(world, "copy")
    assert "nothing changed" in said and exported == imported
    assert world.run("unapply").returncode == 0
    git(world.checkout, "checkout", "-q", "-b", "work", env=world.env)
    write(world.checkout / "NOTES.txt", "notes\n")
    git(world.checkout, "add", "-A", env=world.env)
    git(world.checkout, "commit", "-qm", "[docs] Add notes", env=world.env)
    git(world.checkout, "checkout", "-q", "-", env=world.env)
    res = world.run("import", f"{world.base}..work", "--set", "ranged", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    imported, exported, said = applied_then_exported(world, "ranged")
    assert "nothing changed" in said and exported == imported
    assert list(imported) == ["0001-docs-Add-notes.patch"]


def test_subject_tag_is_kept_through_rebase(world):
    """rebase commits the set's patches with git's mailinfo as git am does: the [X86] stays."""
    d = world.tmp / "tagged"
    d.mkdir()
    (d / "tagged.patch").write_text(ROUND_TRIP_SERIES[2][2])
    (d / "series").write_text("tagged.patch\n")
    res = world.run("import", str(d / "series"), "--set", "tagged", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    write(world.upstream / "x.py", "#!/usr/bin/env python3\nprint('bootstrap, later')\n")
    write(world.upstream / "src/version", "1.64.0\n")
    git(world.upstream, "add", "x.py", "src/version", env=world.env)
    git(world.upstream, "commit", "-qm", "Later upstream work", env=world.env)
    world.git("fetch", "-q", "origin")
    res = world.run("rebase", "--set", "tagged", "--onto", "origin/main", "--new-set", "tagged-later", "--llvm", "14")
    assert res.returncode == 0, res.stderr
    files = {p.name: p.read_text() for p in (world.patches / "tagged-later" / "rust").iterdir()}
    assert list(files) == ["0001-X86-Keep-the-tag.patch"]
    assert "\nSubject: [PATCH] [X86] Keep the tag\n" in files["0001-X86-Keep-the-tag.patch"]


def test_import_without_its_base_says_the_files_keep_imports_form(world):
    """A base the checkout does not have: the set is still imported, with a note that the first
    export will rewrite the files (nothing changes without a word)."""
    res = world.run("import", str(quilt(world)), "--set", "elsewhere", "--commit", "a" * 40, *NEW_SET)
    assert res.returncode == 0, res.stderr
    assert f"note: the files are in import's form, not export's, so the first export rewrites them: the set's " \
           f"commit {'a' * 12} is not in" in res.stderr
    assert sorted(p.name for p in (world.patches / "elsewhere" / "rust").iterdir()) == \
        ["0001-Mark-f3-differentiable.patch", "0002-add-notes.patch"]


def test_compressed_quilt_patches_are_read_as_quilt_reads_them(world):
    """quilt's cat_file decompresses .gz, .bz2 and .xz patches; import does the same, and refuses
    the formats it has no reader for by name."""
    import bz2
    import gzip
    import lzma

    d = world.tmp / "packed"
    d.mkdir()
    (d / "notes.patch.gz").write_bytes(gzip.compress(QUILT_BARE.encode()))
    (d / "readme.diff.bz2").write_bytes(bz2.compress(b"--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust\n+rust!\n"))
    (d / "x.patch.xz").write_bytes(lzma.compress(b"--- a/x.py\n+++ b/x.py\n@@ -2 +2 @@\n-print('bootstrap')\n+print('xz')\n"))
    (d / "series").write_text("notes.patch.gz\nreadme.diff.bz2\nx.patch.xz\n")
    res = world.run("import", str(d / "series"), "--set", "packed", "--commit", world.base, *NEW_SET)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (world.patches / "packed" / "rust").iterdir()) == \
        ["0001-notes.patch", "0002-readme.patch", "0003-x.patch"]
    assert world.run("apply", "--set", "packed").returncode == 0
    assert (world.checkout / "README.md").read_text() == "rust!\n" and "print('xz')" in (world.checkout / "x.py").read_text()
    (d / "z.patch.zst").write_bytes(b"(zstd)")
    (d / "series").write_text("z.patch.zst\n")
    res = world.run("import", str(d / "series"), "--set", "zst", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3 and "z.patch.zst: is compressed with zstd, which import does not read" in res.stderr
