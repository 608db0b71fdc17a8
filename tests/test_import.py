"""import: quilt series (DEP-3 or bare), a directory of mails, a revision range."""

from __future__ import annotations

import json

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
    assert sorted(p.read_bytes() for p in (world.patches / "copy" / "rust").iterdir()) == \
        sorted(p.read_bytes() for p in source.iterdir())


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
    assert res.stderr.strip().endswith("set fresh is new: give its upstream base with --rustc, --commit, --llvm")
    crlf = world.tmp / "crlf"
    crlf.mkdir()
    (crlf / "series").write_text("a.patch\n")
    (crlf / "a.patch").write_bytes(QUILT_BARE.replace("\n", "\r\n").encode())
    res = world.run("import", str(crlf / "series"), "--set", "fresh", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3 and "CRLF line endings" in res.stderr
    assert not (world.patches / "fresh").exists()
    res = world.run("import", "not-a-range", "--set", "fresh", "--commit", world.base, *NEW_SET)
    assert res.returncode == 3 and "is not a revision range" in res.stderr
