"""export: branches back to patch files, deterministic; the trailer round trip."""

from __future__ import annotations

import json

import pytest
from fixture import amend_patch_commit, mtimes, write

from patchmgr.export import strip_trailers
from patchmgr.patchfile import with_trailers

SET = "autodiff-1.63.0"

MAIL = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: A <a@b.c>\nDate: Mon, 8 Aug 2022 12:00:00 +0000\nSubject: [PATCH] x\n\n{body}---\n"
        " f | 1 +\n\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1,2 @@\n a\n+b\n")


@pytest.mark.parametrize("body", ["", "Why.\n", "Why.\n\nSigned-off-by: A <a@b.c>\n"],
                         ids=["no-body", "body", "trailer-block"])
def test_trailers_round_trip(body):
    mail = MAIL.format(body=body)
    tagged = with_trailers(mail, [("Patchmgr-Set", SET), ("Patchmgr-Patch", f"{SET}/rust/0001-x.patch")])
    assert "Patchmgr-Patch: " in tagged
    assert strip_trailers(tagged) == mail


def export(world):
    res = world.run("export")
    assert res.returncode == 0, res.stderr
    return res.stderr


def series_files(world):
    return {p.name: p.read_bytes() for p in (world.patches / SET).rglob("*.patch")}


def test_export_is_deterministic_and_stable_across_reapply(world):
    assert world.run("apply").returncode == 0
    export(world)  # the fixture's files came from plain format-patch: normalized once
    first = series_files(world)
    times = mtimes(world.patches)
    assert "nothing changed" in export(world)
    assert series_files(world) == first and mtimes(world.patches) == times
    assert world.run("unapply").returncode == 0
    assert world.run("apply").returncode == 0
    assert "nothing changed" in export(world)
    assert series_files(world) == first
    for text in first.values():
        assert b"Patchmgr-" not in text and b"\n-- \n" not in text
        assert b"From 0000000000000000000000000000000000000000 " in text


def test_export_takes_an_edited_commit_and_a_new_one(world):
    assert world.run("apply").returncode == 0
    # a fix amended into the last superproject patch and a new commit on top
    amend_patch_commit(world, "// fixed\n")
    write(world.checkout / "compiler/rustc_codegen_ssa/src/back/autodiff.rs", "// glue\n")
    world.git("add", "-A")
    world.git("commit", "-qm", "Add the back-end glue")
    assert json.loads(world.run("status", "--json").stdout)["repos"][0]["edited"]

    out = export(world)
    assert "wrote autodiff-1.63.0/rust/0003-Add-the-back-end-glue.patch" in out
    assert "updated the patch lists" in out
    text = (world.patches / SET / "rust" / "0002-Add-the-autodiff-trait-and-Z-autodiff.patch").read_text()
    assert "+// fixed" in text
    manifest = (world.patches / "series.toml").read_text()
    assert '"0003-Add-the-back-end-glue.patch"' in manifest
    data = json.loads(world.run("status", "--json").stdout)
    assert data["repos"][0]["drifted"] == [] and data["repos"][0]["edited"] == []


def test_export_refuses_an_unapplied_tree(world):
    res = world.run("export")
    assert res.returncode == 7 and "nothing to export" in res.stderr


def patches_tree(world) -> dict[str, bytes | None]:
    """Every path under the patches directory with its bytes (None for a directory)."""
    return {str(p.relative_to(world.patches)): None if p.is_dir() else p.read_bytes()
            for p in sorted(world.patches.rglob("*"))}


def test_a_directory_where_export_writes_is_refused_before_any_file(world):
    """Issue 25, class 7: export validates every target before it writes the first."""
    assert world.run("apply", "--no-config").returncode == 0
    amend_patch_commit(world, "// fixed\n")  # the second superproject patch changes ...
    write(world.checkout / "compiler/rustc_codegen_ssa/src/back/autodiff.rs", "// glue\n")
    world.git("add", "-A")
    world.git("commit", "-qm", "Add the back-end glue")  # ... and a third one is new, where a directory stands
    in_the_way = world.patches / SET / "rust" / "0003-Add-the-back-end-glue.patch"
    write(in_the_way / "notes.txt", "mine\n")
    before = patches_tree(world)
    res = world.run("export")
    assert res.returncode == 7, res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"{in_the_way} is a directory" in line and "nothing was written" in line
    assert patches_tree(world) == before
    # moved away, the same export writes both files
    (in_the_way / "notes.txt").unlink()
    in_the_way.rmdir()
    out = export(world)
    assert "wrote autodiff-1.63.0/rust/0003-Add-the-back-end-glue.patch" in out
    assert "wrote autodiff-1.63.0/rust/0002-Add-the-autodiff-trait-and-Z-autodiff.patch" in out
