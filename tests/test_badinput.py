"""Bad input: each case gets its exit code, one clear line, and an untouched tree."""

from __future__ import annotations

import re

import pytest
from fixture import ENZYME_URL, git, snapshot

SET = "autodiff-1.63.0"


def patch_text(path: str, extra_headers: str = "", diff: str | None = None, new_mode: str = "100644") -> str:
    if diff is None:
        diff = (f"diff --git a/{path} b/{path}\nnew file mode {new_mode}\nindex 0000000..587be6b\n"
                f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n")
    return ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            "From: Dev Eloper <dev@example.invalid>\nDate: Mon, 8 Aug 2022 12:00:00 +0000\n"
            f"Subject: [PATCH] hostile\n{extra_headers}\n---\n{diff}-- \n2.39.5\n\n")


def first_patch(world):
    return sorted((world.patches / SET / "rust").iterdir())[0]


def set_patch(text: str | bytes):
    def mutate(world):
        target = first_patch(world)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
    return mutate


def edit_manifest(old: str, new: str, count: int = 1):
    def mutate(world):
        path = world.patches / "series.toml"
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, count))
    return mutate


def add_symlink_upstream(world):
    # the user's tree (descending from the base) has a symlink; the patch writes through it
    (world.checkout / "compiler" / "escape").symlink_to("/tmp")
    git(world.checkout, "add", "compiler/escape", env=world.env)
    git(world.checkout, "commit", "-q", "-m", "add a link", env=world.env)
    set_patch(patch_text("compiler/escape/pwned"))(world)


def add_gitlink_upstream(world):
    # the user's tree has a submodule the set does not list; the patch writes into it
    world.git("update-index", "--add", "--cacheinfo", f"160000,{world.base},vendor/sub")
    (world.checkout / "vendor" / "sub").mkdir(parents=True)
    git(world.checkout, "commit", "-q", "-m", "vendor a submodule", env=world.env)
    set_patch(patch_text("vendor/sub/pwned"))(world)


def crlf(world):
    target = first_patch(world)
    target.write_bytes(target.read_bytes().replace(b"\n", b"\r\n"))


def two_in_one(world):
    files = sorted((world.patches / SET / "rust").iterdir())
    files[0].write_text(files[0].read_text() + files[1].read_text())


BINARY_DIFF = ("diff --git a/blob.bin b/blob.bin\nnew file mode 100644\nindex 0000000..1111111\n"
               "GIT binary patch\nliteral 3\nKcmZQzWB>pF00031\n\nliteral 0\nHcmV?d00001\n\n")

CASES = [
    ("malformed mbox", set_patch("this is not a patch\n"), 3, r"is not a git format-patch mbox"),
    ("empty patch", set_patch(""), 3, r"is empty"),
    ("no diff", set_patch(patch_text("x", diff="")), 3, r"contains no diff"),
    ("dotdot path", set_patch(patch_text("../x")), 3, r"touches '\.\./x', which contains '\.\.'"),
    ("absolute path", set_patch(patch_text("/etc/x")), 3, r"touches '/etc/x', which is absolute"),
    ("into .git", set_patch(patch_text(".git/config")), 3, r"points into \.git/"),
    ("into .GIT", set_patch(patch_text("sub/.GIT/hooks/pre-commit")), 3, r"points into \.git/"),
    ("through a symlink", add_symlink_upstream, 3, r"through the symlink 'compiler/escape'"),
    ("creates a symlink", set_patch(patch_text("link", new_mode="120000")), 3, r"symlink"),
    ("binary patch", set_patch(patch_text("blob.bin", diff=BINARY_DIFF)), 3, r"binary diff"),
    ("CRLF file", crlf, 3, r"CRLF line endings"),
    ("not UTF-8", set_patch(patch_text("x").encode() + b"\xff\xfe"), 3, r"is not UTF-8"),
    ("two patches in one file", two_in_one, 3, r"more than one patch"),
    ("bad header", set_patch(patch_text("x", extra_headers="no colon here\n")), 3, r"malformed mail header"),
    ("into nested submodule", set_patch(patch_text("src/llvm-project/llvm/x")), 3, r"inside 'src/llvm-project', another repository"),
    ("gitmodules ext url", set_patch(patch_text(".gitmodules", diff=(
        "diff --git a/.gitmodules b/.gitmodules\nindex 0000000..1111111 100644\n--- a/.gitmodules\n+++ b/.gitmodules\n"
        "@@ -1,3 +1,4 @@\n [submodule \"src/llvm-project\"]\n \tpath = src/llvm-project\n"
        " \turl = https://example.invalid/rust-lang/llvm-project\n+\turl = ext::sh -c touch% /tmp/pwned\n"))),
     3, r"adds a submodule URL 'ext::sh -c touch% /tmp/pwned'"),
    ("manifest not TOML", edit_manifest("schema = 1", "schema = = 1"), 3, r"series\.toml: not valid TOML"),
    ("manifest missing key", edit_manifest("llvm = 14\n", ""), 3, r"key 'sets\.autodiff-1\.63\.0\.llvm' is missing"),
    ("manifest unknown key", edit_manifest("patches = [", "patchs = [", 1), 3, r"repos\.\"\.\"\.patchs' is not a known key"),
    ("manifest schema", edit_manifest("schema = 1", "schema = 2"), 3, r"reads schema 1"),
    ("short hash", lambda w: edit_manifest(w.base, w.base[:12])(w), 3, r"key 'sets\.autodiff-1\.63\.0\.commit' must be a full 40-character"),
    ("duplicate patch", lambda w: edit_manifest('patches = ["0001', f'patches = ["{first_patch(w).name}", "0001')(w), 3, r"lists '0001-.*' twice"),
    ("missing patch file", lambda w: first_patch(w).unlink(), 3, r"patch file listed in the manifest does not exist"),
    ("hostile patch name", edit_manifest('patches = ["0001', 'patches = ["../../etc/passwd.patch", "0001'), 3, r"must be a plain file name"),
    ("hostile patch dir", edit_manifest(f'dir = "{SET}/rust"', 'dir = "../../etc"'), 3, r"key 'sets\..*\.dir' path '\.\./\.\./etc' contains '\.\.'"),
    ("enzyme url -u", edit_manifest(ENZYME_URL, "-uhttps://example.invalid/x"), 3, r"starts with '-'"),
    ("enzyme url ext::", edit_manifest(f'"{ENZYME_URL}"', "'ext::sh -c touch% /tmp/pwned'"), 3, r"remote-helper transport"),
    ("enzyme path escapes", edit_manifest('url = "', 'path = "../enzyme"\nurl = "'), 3, r"enzyme\.path' path '\.\./enzyme' contains '\.\.'"),
    ("symlink mode 0120000", set_patch(patch_text("link", new_mode="0120000")), 3, r"creates or changes a symlink"),
    ("rename to quoted dotdot", set_patch(patch_text("x", diff=(
        'diff --git a/README.md "b/../x"\nsimilarity index 100%\nrename from README.md\nrename to "../x"\n'))),
     3, r"touches '\.\./x', which contains '\.\.'"),
    ("gitmodules URL upper case", set_patch(patch_text(".gitmodules", diff=(
        "diff --git a/.gitmodules b/.gitmodules\nindex 0000000..1111111 100644\n--- a/.gitmodules\n+++ b/.gitmodules\n"
        "@@ -1,3 +1,4 @@\n [submodule \"src/llvm-project\"]\n \tpath = src/llvm-project\n"
        " \turl = https://example.invalid/rust-lang/llvm-project\n+\tURL = ext::sh -c touch% /tmp/pwned\n"))),
     3, r"adds a submodule URL 'ext::sh -c touch% /tmp/pwned'"),
    ("rename to .gitmodules", set_patch(patch_text("x", diff=(
        "diff --git a/README.md b/.gitmodules\nsimilarity index 100%\nrename from README.md\nrename to .gitmodules\n"))),
     3, r"renames 'README\.md' to '\.gitmodules'"),
    ("traditional diff in the diffstat", set_patch(patch_text("x").replace(
        "---\n", "---\n--- a/src/llvm-project/llvm/x\n+++ b/src/llvm-project/llvm/x\n@@ -1 +1 @@\n-a\n+b\n", 1)),
     3, r"file diff without a 'diff --git' header"),
    ("quoted-printable mail", set_patch(patch_text("x", extra_headers="Content-Transfer-Encoding: quoted-printable\n")),
     3, r"Content-Transfer-Encoding"),
    ("into an unlisted submodule", add_gitlink_upstream, 3, r"touches 'vendor/sub/pwned' inside submodule 'vendor/sub'"),
    ("set name .lock", edit_manifest(f'"{SET}"', '"s.lock"', -1), 3, r"key 'sets\.s\.lock' is not a valid set name"),
    ("schema true", edit_manifest("schema = 1", "schema = true"), 3, r"key 'schema' is True"),
    ("unknown set", lambda w: None, 4, r"no patch set named 'nope'"),
    ("unknown base", lambda w: edit_manifest(w.base, "1" * 40)(w), 4, r"no patch set is for this tree's base .*nearest: autodiff-1\.63\.0"),
]


@pytest.mark.parametrize("name,mutate,code,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(world, name, mutate, code, message):
    mutate(world)
    before = snapshot(world)
    args = ["apply", "--set", "nope"] if name == "unknown set" else ["apply"]
    res = world.run(*args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, res.stderr
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("patchmgr: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert snapshot(world) == before
    assert not (world.checkout / ".git" / "patchmgr").exists()


def test_at_least_twenty_cases():
    assert len(CASES) >= 20
