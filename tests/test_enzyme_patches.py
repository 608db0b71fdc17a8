"""A set that patches Enzyme itself: the manifest's repository at the Enzyme path.

apply clones Enzyme at its pin and applies the set's Enzyme patches on a patch
branch there, and the owner (src/llvm-project) records the patched commit;
status lists those patches as for any repository; an edited Enzyme patch file
is applied in place (only the changed file is rewritten); export, check, mcp,
unapply and rebase handle Enzyme's patches like the others.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fixture import ENZYME_PATH, LLVM_URL, REPO, git, mtimes, snapshot, write

SET = "autodiff-1.63.0"
BRANCH = "patchmgr/" + SET
LABEL = f"{SET}/enzyme/0001-enzyme-report-a-type-conflict-as-an-error.patch"


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def add_enzyme_patch(world, text: str = "project(Enzyme)\nmessage(STATUS \"type conflicts are errors\")\n") -> None:
    """An Enzyme patch made on the pinned commit in a scratch clone, and its repository entry in the manifest."""
    work = world.tmp / "enzyme-work"
    git(world.tmp, "clone", "-q", str(world.enzyme_upstream), str(work), env=world.env)
    git(work, "checkout", "-q", "--detach", world.enzyme_pin, env=world.env)
    write(work / "enzyme/CMakeLists.txt", text)
    git(work, "commit", "-q", "-am", "enzyme: report a type conflict as an error", env=world.env)
    out = world.patches / SET / "enzyme"
    git(work, "format-patch", "-q", "--zero-commit", "-o", str(out), "-1", "HEAD", env=world.env)
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text() + f'\n[sets."{SET}".repos."{ENZYME_PATH}"]\ndir = "{SET}/enzyme"\n'
                        f'patches = ["{LABEL.rsplit("/", 1)[1]}"]\n')


def status(world) -> dict:
    return json.loads(ok(world.run("status", "--json")).stdout)


def test_apply_patches_enzyme_and_unapply_restores_everything(world):
    add_enzyme_patch(world)
    before = snapshot(world)
    ok(world.run("apply", "--no-config"))
    enzyme = world.checkout / ENZYME_PATH
    head = world.git("rev-parse", "HEAD", repo=ENZYME_PATH).strip()
    assert world.git("symbolic-ref", "HEAD", repo=ENZYME_PATH).strip() == "refs/heads/" + BRANCH
    assert world.git("rev-parse", "HEAD~1", repo=ENZYME_PATH).strip() == world.enzyme_pin
    assert f"Patchmgr-Patch: {LABEL}" in world.git("log", "-1", "--format=%B", repo=ENZYME_PATH)
    assert "type conflicts are errors" in (enzyme / "enzyme/CMakeLists.txt").read_text()
    # the owner records the patched commit, in the one commit that adds the submodule
    assert world.git("ls-tree", "HEAD", "enzyme", repo="src/llvm-project").split()[2] == head
    data = status(world)
    assert data["state"] == "applied" and data["enzyme"]["in_place"]
    assert data["enzyme"]["patches"]["applied"] == [LABEL] and data["enzyme"]["patches"]["base"] == world.enzyme_pin
    text = ok(world.run("status")).stdout
    assert f"  applied  {LABEL}" in text.splitlines()
    assert "nothing to do" in ok(world.run("apply", "--no-config")).stderr
    check = ok(world.run("check"))
    assert f"ok   {ENZYME_PATH}: {LABEL}" in check.stdout.splitlines()
    ok(world.run("unapply"))
    after = snapshot(world)
    assert after == before
    # the clone apply keeps in .git/modules serves check, its work tree gone and Enzyme's URL unreachable
    away = world.enzyme_upstream.with_name("enzyme-away")
    world.enzyme_upstream.rename(away)
    try:
        check = ok(world.run("check"))
    finally:
        away.rename(world.enzyme_upstream)
    assert f"ok   {ENZYME_PATH}: {LABEL}" in check.stdout.splitlines()


def test_an_edited_enzyme_patch_is_applied_in_place(world):
    add_enzyme_patch(world)
    ok(world.run("apply", "--no-config"))
    old_head = world.git("rev-parse", "HEAD", repo=ENZYME_PATH).strip()
    patch = world.patches / LABEL
    patch.write_text(patch.read_text().replace("type conflicts are errors", "type conflicts are compiler errors"))
    assert status(world)["enzyme"]["patches"]["drifted"] == [LABEL]
    before = mtimes(world.checkout)
    res = ok(world.run("apply", "--no-config"))
    assert f"1 file changed: {ENZYME_PATH}/enzyme/CMakeLists.txt" in res.stderr
    after = mtimes(world.checkout)
    changed = {p for p, t in after.items() if before.get(p) != t and (world.checkout / p).is_file()}
    assert changed == {f"{ENZYME_PATH}/enzyme/CMakeLists.txt"}  # cmake and cargo go by files' mtimes
    head = world.git("rev-parse", "HEAD", repo=ENZYME_PATH).strip()
    assert head != old_head and world.git("rev-parse", "HEAD~1", repo=ENZYME_PATH).strip() == world.enzyme_pin
    assert world.git("ls-tree", "HEAD", "enzyme", repo="src/llvm-project").split()[2] == head
    data = status(world)
    assert data["state"] == "applied" and data["enzyme"]["in_place"] and not data["enzyme"]["patches"]["drifted"]
    assert not data["stale_gitlinks"]


def test_export_writes_enzyme_commits_back(world):
    add_enzyme_patch(world)
    ok(world.run("apply", "--no-config"))
    ok(world.run("export"))  # the hand-made file in export's form
    enzyme = world.checkout / ENZYME_PATH
    write(enzyme / "enzyme/Enzyme/Errors.cpp", "// errors\n")
    git(enzyme, "add", "-A", env=world.env)
    git(enzyme, "commit", "-q", "-m", "enzyme: an errors file", env=world.env)
    res = ok(world.run("export"))
    assert res.stderr.count("wrote ") == 1
    assert f"wrote {SET}/enzyme/0002-enzyme-an-errors-file.patch" in res.stderr
    manifest = (world.patches / "series.toml").read_text()
    assert '"0002-enzyme-an-errors-file.patch"' in manifest
    assert "Patchmgr-" not in (world.patches / SET / "enzyme/0002-enzyme-an-errors-file.patch").read_text()


def test_check_reports_an_enzyme_patch_that_does_not_apply(world):
    add_enzyme_patch(world)
    patch = world.patches / LABEL
    patch.write_text(patch.read_text().replace(" project(Enzyme)", " project(NotEnzyme)"))
    res = world.run("check")
    assert res.returncode == 10, res.stderr
    assert f"FAIL {ENZYME_PATH}: {LABEL}" in res.stdout.splitlines()


def applied_with_a_commit_of_the_users_in_enzyme(world) -> str:
    """The set applied with its Enzyme patch, then a commit of the user's on Enzyme's patch branch; its id."""
    add_enzyme_patch(world)
    ok(world.run("apply", "--no-config"))
    enzyme = world.checkout / ENZYME_PATH
    write(enzyme / "enzyme/mine.txt", "mine\n")
    git(enzyme, "add", "-A", env=world.env)
    git(enzyme, "commit", "-q", "-m", "my own work", env=world.env)
    return world.git("rev-parse", "HEAD", repo=ENZYME_PATH).strip()


def test_unapply_keeps_a_commit_of_the_users_in_enzyme(world):
    head = applied_with_a_commit_of_the_users_in_enzyme(world)
    enzyme = world.checkout / ENZYME_PATH
    res = world.run("unapply")
    assert res.returncode == 5 and f"{ENZYME_PATH} (checked out at another commit than recorded)" in res.stderr
    assert (enzyme / "enzyme/mine.txt").exists() and world.git("rev-parse", "HEAD", repo=ENZYME_PATH).strip() == head



def test_mcp_lists_the_enzyme_patch(world, tmp_path):
    add_enzyme_patch(world)
    shutil.copy(REPO / "patches" / SET / "cover.md", world.patches / SET / "cover.md")
    manifest = world.patches / "series.toml"
    manifest.write_text(manifest.read_text().replace("llvm = 14\n", f'llvm = 14\ncover = "{SET}/cover.md"\n', 1))
    out = tmp_path / "mcp"
    ok(world.run("mcp", "--set", SET, "--out", str(out)))
    text = (out / "mcp.md").read_text()
    assert f"enzyme: report a type conflict as an error ({ENZYME_PATH}): 1 file, +1 -0" in text


def test_rebase_carries_enzyme_patches_as_they_are(world):
    from test_rebase import move_upstream

    add_enzyme_patch(world)
    move_upstream(world, "exact")
    dry = ok(world.run("rebase", "--dry-run", "--onto", "1.64.0", "--new-set", "ad-next"))
    report = (world.patches / "rebase-dry-run-ad-next.md").read_text()
    assert f"| {LABEL} | clean: Enzyme's own patch: its pin is unchanged, so the file is carried as it is |" in report, \
        dry.stderr
    assert world.run("rebase", "--onto", "1.64.0", "--new-set", "ad-next").returncode == 6  # the rust conflict
    ok(world.run("rebase", "--skip"))
    import tomllib

    entry = tomllib.loads((world.patches / "series.toml").read_text())["sets"]["ad-next"]
    assert entry["repos"][ENZYME_PATH] == {"dir": "ad-next/enzyme", "patches": [LABEL.rsplit("/", 1)[1]]}
    assert (world.patches / "ad-next/enzyme" / LABEL.rsplit("/", 1)[1]).read_bytes() == (world.patches / LABEL).read_bytes()
    # the new set is applied, Enzyme's patch included, on the new set's branch
    data = status(world)
    assert data["set"] == "ad-next" and data["state"] == "applied"
    assert data["enzyme"]["patches"]["applied"] == ["ad-next/enzyme/" + LABEL.rsplit("/", 1)[1]]
    assert world.git("symbolic-ref", "HEAD", repo=ENZYME_PATH).strip() == "refs/heads/patchmgr/ad-next"


def test_one_apply_takes_a_new_enzyme_patch_and_an_edited_rust_patch(world):
    """The in-place path takes the edited rust patch, the steps after it the Enzyme patch new to the set."""
    ok(world.run("apply", "--no-config"))
    add_enzyme_patch(world)
    rust = sorted((world.patches / SET / "rust").iterdir())[-1]
    rust.write_text(rust.read_text().replace("+// -Z autodiff", "+// -Z autodiff (changed)"))
    ok(world.run("apply", "--no-config"))
    data = status(world)
    assert data["state"] == "applied" and data["enzyme"]["in_place"]
    assert data["enzyme"]["patches"]["applied"] == [LABEL]
    assert not any(r["drifted"] for r in data["repos"]) and not data["stale_gitlinks"]
    assert (world.checkout / "compiler/rustc_session/src/options.rs").read_text().endswith("// -Z autodiff (changed)\n")
    assert world.git("ls-tree", "HEAD", "enzyme", repo="src/llvm-project").split()[2] == \
        world.git("rev-parse", "HEAD", repo=ENZYME_PATH).strip()


# --- the clone apply keeps in .git/modules (issue 25, class 3) ------------------------------------

def kept_module(world) -> Path:
    """The Enzyme git dir apply made and unapply keeps: .git/modules/<llvm>/modules/enzyme."""
    return world.checkout / ".git/modules/src/llvm-project/modules/enzyme"


def dir_digest(root: Path) -> dict[str, str]:
    """Every file under `root` (a git dir) with the digest of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_apply_after_unapply_takes_the_edited_enzyme_patch(world):
    add_enzyme_patch(world)
    ok(world.run("apply", "--no-config"))
    ok(world.run("unapply"))
    patch = world.patches / LABEL
    patch.write_text(patch.read_text().replace("type conflicts are errors", "type conflicts are compiler errors"))
    ok(world.run("apply", "--no-config"))
    assert "type conflicts are compiler errors" in (world.checkout / ENZYME_PATH / "enzyme/CMakeLists.txt").read_text()
    data = status(world)
    assert data["state"] == "applied" and data["enzyme"]["in_place"]
    assert not data["enzyme"]["patches"]["drifted"] and not data["enzyme"]["patches"]["edited"]


def test_apply_after_unapply_force_leaves_the_foreign_enzyme_commit_in_its_backup(world):
    mine = applied_with_a_commit_of_the_users_in_enzyme(world)
    enzyme = world.checkout / ENZYME_PATH
    world.git("commit", "-qam", "record my Enzyme work", repo="src/llvm-project")
    world.git("commit", "-qam", "record my llvm-project commit")
    res = ok(world.run("unapply", "--force"))
    assert f"saved {ENZYME_PATH}: refs/patchmgr/backup/" in res.stderr
    ok(world.run("apply", "--no-config"))
    assert not (enzyme / "enzyme/mine.txt").exists()
    assert mine not in world.git("rev-list", "HEAD", repo=ENZYME_PATH).split()
    assert world.git("rev-parse", "HEAD~1", repo=ENZYME_PATH).strip() == world.enzyme_pin
    backups = world.git("for-each-ref", "--format=%(objectname)", "refs/patchmgr/backup/", repo=ENZYME_PATH).split()
    assert backups == [mine]
    data = status(world)
    assert data["state"] == "applied" and data["enzyme"]["patches"]["applied"] == [LABEL]
    assert not data["enzyme"]["patches"]["foreign_commits"]


def _loose_objects(gitdir: Path, env: dict) -> None:
    """Every packed object of the git dir as a loose one, so a test can take one away."""
    for pack in sorted((gitdir / "objects/pack").glob("*.pack")):
        data = pack.read_bytes()
        for f in pack.parent.glob(pack.stem + ".*"):
            f.unlink()
        subprocess.run(["git", "--git-dir", str(gitdir), "unpack-objects", "-q"], input=data, env=env, check=True)


def broken_head(world, gitdir: Path) -> None:
    (gitdir / "HEAD").write_text("not a ref\n")


def missing_object(world, gitdir: Path) -> None:
    _loose_objects(gitdir, world.env)
    blob = git(world.enzyme_upstream, "rev-parse", f"{world.enzyme_pin}:enzyme/CMakeLists.txt", env=world.env).strip()
    (gitdir / "objects" / blob[:2] / blob[2:]).unlink()


def other_repository(world, gitdir: Path) -> None:
    """The git dir replaced by a clone of llvm-project: another repository's history and origin."""
    shutil.rmtree(gitdir)
    git(world.tmp, "clone", "-q", "--no-checkout", "--separate-git-dir", str(gitdir), LLVM_URL,
        str(world.tmp / "llvm-elsewhere"), env=world.env)
    shutil.rmtree(world.tmp / "llvm-elsewhere")


@pytest.mark.parametrize("phase", ["apply:enzyme:started", "apply:enzyme:checked-out"])
@pytest.mark.parametrize("spoil,why", [(broken_head, "its HEAD names no commit"),
                                       (missing_object, "objects of commit"),
                                       (other_repository, "its origin is ")],
                         ids=["broken HEAD", "missing object", "another repository"])
def test_an_unusable_kept_clone_is_moved_aside_and_enzyme_cloned_afresh(world, spoil, why, phase):
    add_enzyme_patch(world)
    ok(world.run("apply", "--no-config"))
    ok(world.run("unapply"))
    gitdir = kept_module(world)
    spoil(world, gitdir)
    spoilt = dir_digest(gitdir)
    before = snapshot(world)
    # a kill in the middle, then --abort: the tree and the spoilt clone exactly as they were
    res = world.run("apply", "--no-config", env_extra={"PATCHMGR_TEST_FAULT": phase})
    assert res.returncode == -9, res.stderr
    ok(world.run("apply", "--abort"))
    assert snapshot(world) == before and dir_digest(gitdir) == spoilt
    assert [p.name for p in gitdir.parent.iterdir()] == ["enzyme"]
    res = ok(world.run("apply", "--no-config"))
    line = next(line for line in res.stderr.splitlines() if "is unusable" in line)
    assert line.startswith(f"patchmgr: the Enzyme clone kept in {gitdir} is unusable ({why}") and "cloning Enzyme afresh" in line
    aside = next(p for p in gitdir.parent.iterdir() if p.name.startswith("enzyme.unusable-"))
    assert str(aside) in line and dir_digest(aside) == spoilt  # nothing of it lost
    assert "type conflicts are errors" in (world.checkout / ENZYME_PATH / "enzyme/CMakeLists.txt").read_text()
    data = status(world)
    assert data["state"] == "applied" and data["enzyme"]["in_place"] and data["enzyme"]["patches"]["applied"] == [LABEL]
