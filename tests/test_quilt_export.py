"""export --quilt: a quilt series imported, applied and written back as quilt pushes it (issue 26 point 9)."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

from fixture import git

NEW_SET = ["--commit", "", "--rustc", "1.63.0", "--llvm", "14"]
LIB = "compiler/rustc_codegen_llvm/src/lib.rs"


def git_diff(world, name: str, change) -> str:
    """The diff `change` makes on the patches before it, as a -p1 git diff with full blob ids (the
    form export writes)."""
    work = world.tmp / "diff-work"
    if not work.exists():
        git(world.tmp, "clone", "-q", str(world.upstream), str(work), env=world.env)
    change(work)
    git(work, "add", "-A", env=world.env)
    git(work, "commit", "-q", "-m", name, env=world.env)
    return git(work, "diff-tree", "-p", "--full-index", "--no-renames", "-r", "HEAD^", "HEAD", env=world.env)


def edit(path: str, old: str, new: str):
    def change(work: Path) -> None:
        target = work / path
        target.write_text(target.read_text().replace(old, new))
    return change


def create(path: str, text: str):
    def change(work: Path) -> None:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    return change


def quilt_series(world) -> tuple[Path, dict[str, bytes], str]:
    """A quilt series of several shapes: DEP-3 (trailing blanks, '.' lines, a field given twice), gbp pq's
    From/Date/Subject with a diffstat, a format-patch mail in a subdirectory, a patch without a header,
    a gzip'd patch, and two read with -p0 and -R; comments, blank lines, a disabled patch and a
    comment after the last. Returns the series file, every file's bytes, and the series text."""
    d = world.tmp / "debian" / "patches"
    (d / "upstream").mkdir(parents=True)
    files = {
        "mark-f3.patch": (
            "Description: Mark f3 differentiable\n The first line is the subject; these lines\n .\n"
            " become the message.  \nAuthor: Deb Ian <deb@example.invalid>\nOrigin: vendor\n"
            "Forwarded: not-needed\nForwarded: not-needed\nLast-Update: 2022-08-09\n---\n"
            + git_diff(world, "f3", edit(LIB, "x * 3.0", "x * 3.0 // autodiff"))),
        "d-gbp-style": (
            "From: Angus Lees <gus@example.invalid>\nDate: Thu, 14 Jul 2022 13:17:39 +0200\n"
            "Subject: Hardcode the options path\n\nForwarded: not-needed\n\nDebian installs it elsewhere.\n"
            "---\n compiler/rustc_session/src/options.rs | 1 +\n 1 file changed, 1 insertion(+)\n\n"
            + git_diff(world, "gbp", edit("compiler/rustc_session/src/options.rs", "pub struct Z;\n",
                                          "pub struct Z;\n// /usr/lib\n"))),
        "upstream/fix-f5.patch": (
            "From 72c872147679096c53cbb49ca670662d05d43110 Mon Sep 17 00:00:00 2001\n"
            "From: Lokathor <zefria@example.invalid>\nDate: Tue, 27 Sep 2022 13:22:45 -0600\n"
            "Subject: [PATCH] Update\n macros.rs\n\n---\nhttps://example.invalid/pull/495\n\n"
            " compiler/rustc_codegen_llvm/src/lib.rs | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n\n"
            + git_diff(world, "f5", edit(LIB, "x * 5.0", "x * 5.5"))),
        "add-notes.patch": git_diff(world, "notes", create("NOTES.txt", "patched by quilt\n")),
        "zipped.patch.gz": "Description: a compressed patch\n\n" + git_diff(world, "zip", edit(LIB, "x * 7.0", "x * 7.7")),
        "old-style.diff": ("--- docs/autodiff.md\t1970-01-01 00:00:00.000000000 +0000\n"
                           "+++ docs/autodiff.md\t2022-08-09 10:00:00.000000000 +0000\n@@ -0,0 +1 @@\n+# Autodiff\n"),
        "take-back.patch": ("Description: an upstream change taken back\n"
                            "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-rust, reversed\n+rust\n"),
    }
    series = ("# Patches for upstream\n\nmark-f3.patch\nd-gbp-style   # gbp pq's form\n\n## from upstream\n"
              "upstream/fix-f5.patch -p1\n#disabled.patch\nadd-notes.patch\nzipped.patch.gz\n"
              "old-style.diff -p0\ntake-back.patch -R # reverted\n\n# end of the series\n")
    written = {}
    for name, text in files.items():
        data = gzip.compress(text.encode(), mtime=0) if name.endswith(".gz") else text.encode()
        (d / name).write_bytes(data)
        written[name] = data
    (d / "series").write_text(series)
    (d / "disabled.patch").write_text("not listed\n")
    return d / "series", written, series


def pushed(world, series: Path, where: str) -> dict[str, bytes]:
    """The base with the series applied as `quilt push -a` does: `patch` with each line's options
    (-p1 when none), the patch decompressed as quilt's cat_file does; every file's bytes."""
    tree = world.tmp / where
    git(world.tmp, "clone", "-q", str(world.upstream), str(tree), env=world.env)
    for line in series.read_text().splitlines():
        fields = line.split("#")[0].split()
        if not fields:
            continue
        data = (series.parent / fields[0]).read_bytes()
        data = gzip.decompress(data) if fields[0].endswith(".gz") else data
        options = fields[1:] if any(a.startswith("-p") for a in fields[1:]) else [*fields[1:], "-p1"]
        res = subprocess.run(["patch", *options, "-f", "--no-backup-if-mismatch", "-s"], input=data, cwd=tree,
                             capture_output=True)
        assert res.returncode == 0, (line, res.stdout, res.stderr)
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(tree).parts}


def imported_and_applied(world) -> tuple[Path, dict[str, bytes], str]:
    series, files, text = quilt_series(world)
    res = world.run("import", str(series), "--set", "deb", *(world.base if a == "" else a for a in NEW_SET))
    assert res.returncode == 0, res.stderr
    res = world.run("apply", "--set", "deb", "--no-config")
    assert res.returncode == 0, res.stderr
    return series, files, text


def test_export_quilt_gives_the_series_back(world):
    series, files, text = imported_and_applied(world)
    out = world.tmp / "handed-back"
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 0, res.stderr
    # the series byte for byte, but for the -p0 and -R lines: written as the -p1 forward diffs import made
    assert (out / "series").read_text() == text.replace("old-style.diff -p0", "old-style.diff").replace(
        "take-back.patch -R # reverted", "take-back.patch # reverted")
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {"series", *files}  # the disabled patch is no part of the set
    for name in ("mark-f3.patch", "d-gbp-style", "upstream/fix-f5.patch", "add-notes.patch"):
        assert (out / name).read_bytes() == files[name], name
    assert gzip.decompress((out / "zipped.patch.gz").read_bytes()) == gzip.decompress(files["zipped.patch.gz"])
    # headers as imported above the diffs git wrote
    assert (out / "old-style.diff").read_text().startswith("diff --git a/docs/autodiff.md b/docs/autodiff.md\n")
    assert (out / "take-back.patch").read_text().startswith("Description: an upstream change taken back\ndiff --git")
    # quilt's patch makes the same tree from both series, and from the set
    assert pushed(world, out / "series", "from-export") == pushed(world, series, "from-debian")
    assert pushed(world, out / "series", "again")[LIB] == (world.checkout / LIB).read_bytes()
    # the handed-back directory imports as the same set: same files, same commits
    res = world.run("import", str(out / "series"), "--set", "deb2", *(world.base if a == "" else a for a in NEW_SET))
    assert res.returncode == 0, res.stderr
    first = sorted(p.name for p in (world.patches / "deb" / "rust").iterdir())
    assert sorted(p.name for p in (world.patches / "deb2" / "rust").iterdir()) == first


def test_an_edited_message_is_written_from_the_commit(world):
    imported_and_applied(world)
    out = world.tmp / "out"
    assert world.run("export", "--quilt", str(out)).returncode == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # reword the first patch's commit (the oldest of the branch): its header is no longer the import's
    first = world.git("rev-list", "--reverse", f"{world.base}..HEAD").split()[0]
    world.git("checkout", "-q", "--detach", first)
    message = world.git("log", "-1", "--format=%B").replace("Mark f3 differentiable", "Mark f3 as differentiable", 1)
    world.git("commit", "-q", "--amend", "-m", message)
    world.git("rebase", "-q", "--onto", "HEAD", first, "patchmgr/deb")
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 0, res.stderr
    assert "header written from the commit" in res.stderr and "mark-f3.patch" in res.stderr
    header = (out / "mark-f3.patch").read_text().split("diff --git")[0]
    assert header.startswith("From: Deb Ian <deb@example.invalid>\nDate: Tue, 9 Aug 2022 00:00:00 +0000\n"
                             "Subject: Mark f3 as differentiable\n\n")
    assert "Quilt-" not in header and "Origin: vendor" in header
    changed = [p.name for p, data in before.items() if p.read_bytes() != data]
    assert changed == ["mark-f3.patch"]


def test_export_quilt_writes_only_where_it_may(world):
    imported_and_applied(world)
    # a directory of the user's is refused, untouched
    mine = world.tmp / "mine"
    mine.mkdir()
    (mine / "series").write_text("my-own.patch\n")
    res = world.run("export", "--quilt", str(mine))
    assert res.returncode == 7 and "holds files patchmgr did not write" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert [p.name for p in mine.iterdir()] == ["series"] and (mine / "series").read_text() == "my-own.patch\n"
    # one export --quilt wrote may be written again; a file the user put there is left alone
    out = world.tmp / "out"
    assert world.run("export", "--quilt", str(out)).returncode == 0
    (out / "README.source").write_text("the user's\n")
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 0 and "wrote" not in res.stderr, res.stderr
    assert (out / "README.source").read_text() == "the user's\n"
    # a patch file edited since is the user's: refused, nothing written
    (out / "add-notes.patch").write_text("edited by hand\n")
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 7 and "add-notes.patch is not the file patchmgr wrote" in res.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot
    # a patch the set no longer has is removed, the user's file stays
    (out / "add-notes.patch").unlink()
    world.git("rebase", "-q", "--onto", "HEAD~4", "HEAD~3", "patchmgr/deb")  # drops add-notes.patch
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "README.source").exists() and "add-notes.patch" not in (out / "series").read_text()
    state = json.loads((world.checkout / ".git" / "patchmgr" / "quilt-exports.json").read_text())
    assert sorted(state["dirs"][str(out)]) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                                                     if p.is_file() and p.name != "README.source")


def test_what_quilt_would_apply_otherwise_is_refused(world):
    imported_and_applied(world)
    (world.checkout / "logo.bin").write_bytes(b"\x00\x01binary\x00")
    world.git("add", "logo.bin")
    world.git("commit", "-q", "-m", "Add a logo")
    out = world.tmp / "out"
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 3 and "changes a binary file, which patch cannot apply" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not out.exists()
    # a commit without a change: quilt refuses a patch without a diff
    world.git("reset", "-q", "--hard", "HEAD~1")
    world.git("commit", "-q", "--allow-empty", "-m", "Notes")
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 3 and "changes no file, and quilt refuses a patch without a diff" in res.stderr
    # a message line that quilt would read as the start of the diff
    (world.checkout / "NOTES.txt").write_text("more\n")
    world.git("commit", "-q", "--amend", "-a", "-m", "Notes\n\nIndex: not a diff")
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 3 and "reads as the start of a diff" in res.stderr and not out.exists()


def test_an_export_killed_halfway_is_finished_by_the_next(world):
    imported_and_applied(world)
    out = world.tmp / "out"
    res = world.run("export", "--quilt", str(out), env_extra={"PATCHMGR_TEST_FAULT": "export-quilt:file-written"})
    assert res.returncode == -9
    assert [p.name for p in out.iterdir()] == ["mark-f3.patch"]
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 0, res.stderr
    assert "mark-f3.patch" not in res.stderr and (out / "series").is_file()
    # killed while replacing a file of an earlier export: that directory is still patchmgr's
    (world.checkout / "LAST").write_text("words\n")
    world.git("add", "LAST")
    world.git("commit", "-q", "-m", "Last words")
    res = world.run("export", "--quilt", str(out), env_extra={"PATCHMGR_TEST_FAULT": "export-quilt:file-written"})
    assert res.returncode == -9
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 0, res.stderr
    assert (out / "series").read_text().endswith("take-back.patch # reverted\nLast-words.patch\n\n# end of the series\n")


def test_the_series_comes_back_after_a_rebase(world):
    """The distribution's loop: import the series, rebase it onto a newer upstream, hand it back."""
    series, files, text = quilt_series(world)
    res = world.run("import", str(series), "--set", "deb", *(world.base if a == "" else a for a in NEW_SET))
    assert res.returncode == 0, res.stderr
    (world.upstream / "x.py").write_text("#!/usr/bin/env python3\nprint('bootstrap, later')\n")
    (world.upstream / "src").mkdir()
    (world.upstream / "src/version").write_text("1.64.0\n")
    git(world.upstream, "add", "x.py", "src/version", env=world.env)
    git(world.upstream, "commit", "-qm", "Later upstream work", env=world.env)
    world.git("fetch", "-q", "origin")
    res = world.run("rebase", "--set", "deb", "--onto", "origin/main", "--new-set", "deb-later", "--llvm", "14",
                    "--no-config")
    assert res.returncode == 0, res.stderr
    out = world.tmp / "out"
    res = world.run("export", "--quilt", str(out))
    assert res.returncode == 0 and "header written from the commit" not in res.stderr, res.stderr
    assert (out / "series").read_text() == text.replace(" -p0", "").replace(" -R", "")
    for name in ("mark-f3.patch", "d-gbp-style", "upstream/fix-f5.patch", "add-notes.patch"):
        assert (out / name).read_bytes() == files[name], name
    later = pushed(world, out / "series", "later")
    assert later["x.py"] == b"#!/usr/bin/env python3\nprint('bootstrap, later')\n"
    assert later[LIB] == (world.checkout / LIB).read_bytes() and later["README.md"] == b"rust, reversed\n"
