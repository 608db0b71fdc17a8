"""diff-sets: two revisions of a series compared as git range-diff shows them."""

from __future__ import annotations

import re
import shutil

from fixture import snapshot

SET = "autodiff-1.63.0"


def second_revision(world):
    """v2 of the series: patch 1 dropped, patch 2 changed, in a set of its own."""
    shutil.copytree(world.patches / SET, world.patches / "v2")
    rust = world.patches / "v2" / "rust"
    first, second = sorted(rust.iterdir())
    first.unlink()
    second.write_text(second.read_text().replace("+// -Z autodiff", "+// -Z autodiff (v2)"))
    manifest = world.patches / "series.toml"
    text = manifest.read_text()
    block = text[text.index(f'[sets."{SET}"]'):]
    v2 = block.replace(f'"{SET}"', '"v2"').replace(f'{SET}/', "v2/").replace(f'"{first.name}", ', "")
    manifest.write_text(text + "\n" + v2)


def test_diff_sets_shows_dropped_and_changed_patches(world):
    second_revision(world)
    before = snapshot(world)
    res = world.run("diff-sets", SET, "v2")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith(f"# {SET} -> v2\n## .\n")
    assert re.search(r"1: +[0-9a-f]+ < +-: +-+ codegen_llvm: mark f3 differentiable", out)
    assert re.search(r"2: +[0-9a-f]+ ! +1: +[0-9a-f]+ Add the autodiff trait and -Z autodiff", out)
    assert "++// -Z autodiff (v2)" in out and "-+// -Z autodiff\n" in out
    assert "## src/llvm-project" in out and re.search(r"1: +[0-9a-f]+ = +1: +[0-9a-f]+ Build Enzyme", out)
    assert snapshot(world) == before  # only scratch clones were touched


def test_diff_sets_unknown_set(world):
    res = world.run("diff-sets", SET, "nope")
    assert res.returncode == 4 and "no patch set named 'nope'" in res.stderr
