"""Starting a series of one's own (issue 26 point 6, and point 8's LLVM of a rebased base): a branch
whose commits move the llvm-project gitlink, ranges inside src/llvm-project, and a new set's base
read from the tree instead of --rustc --commit --llvm."""

from __future__ import annotations

import json
import tomllib

from fixture import commit_all, git, write

OPTIONS = "compiler/rustc_session/src/options.rs"
LLVM_BRANCH_GITMODULES = ('[submodule "src/llvm-project"]\n\tpath = src/llvm-project\n'
                          '\turl = https://example.invalid/rust-lang/llvm-project\n\tbranch = rustc/19.1-2024-12-03\n')


def ok(res):
    assert res.returncode == 0, res.stderr
    return res


def commit(world, path: str, text: str, message: str, repo: str = ".") -> str:
    write(world.checkout / repo / path, text)
    return commit_all(world.checkout / repo, message, world.env)


def llvm_change(world, message: str = "[Passes] Register the autodiff pass") -> str:
    """A commit of the user's in src/llvm-project, on a branch there."""
    world.git("checkout", "-q", "-B", "mine", repo="src/llvm-project")
    return commit(world, "llvm/lib/Passes/PassBuilder.cpp", "// pass builder\n// autodiff\n", message, "src/llvm-project")


def branch_with_a_bump(world) -> None:
    """Branch `work`: a superproject patch, the llvm-project move (a commit of its own), another patch."""
    world.git("checkout", "-q", "-b", "work")
    commit(world, OPTIONS, "// options\npub struct Z;\n// -Z autodiff\n", "session: add -Z autodiff")
    llvm_change(world)
    world.git("add", "src/llvm-project")
    world.git("commit", "-q", "-m", "Bump llvm-project")
    commit(world, "docs/autodiff.md", "# Autodiff\n", "docs: autodiff")


def manifest(world) -> dict:
    return tomllib.loads((world.patches / "series.toml").read_text())


def patches_bytes(world) -> dict:
    return {str(p.relative_to(world.patches)): p.read_bytes() for p in sorted(world.patches.rglob("*")) if p.is_file()}


# --- a range with an llvm-project move ------------------------------------------------------------

def test_a_bump_commit_imports_the_submodules_range_as_its_list(world):
    branch_with_a_bump(world)
    world.git("checkout", "-q", "main")
    world.git("submodule", "update", "-q")
    res = ok(world.run("import", f"{world.base}..work", "--set", "mine", "--rustc", "1.63.0", "--llvm", "14"))
    assert "note:" not in res.stderr  # both lists in export's form, on the base and on its llvm-project commit
    bump = world.git("log", "-1", "--format=%h", "work~1").strip()
    assert f"commit {bump} (Bump llvm-project) only moves the src/llvm-project gitlink: not a patch" in res.stderr
    entry = manifest(world)["sets"]["mine"]
    assert entry["repos"]["."]["patches"] == ["0001-session-add-Z-autodiff.patch", "0002-docs-autodiff.patch"]
    assert entry["repos"]["src/llvm-project"] == {"dir": "mine/llvm-project",
                                                  "patches": ["0001-Passes-Register-the-autodiff-pass.patch"]}
    assert "160000" not in "".join(p.read_text() for p in (world.patches / "mine").rglob("*.patch"))
    # the set applies: both repositories get their patches, and apply records the gitlink itself
    ok(world.run("apply", "--no-config", "--set", "mine"))
    assert "// autodiff" in (world.llvm / "llvm/lib/Passes/PassBuilder.cpp").read_text()
    assert (world.checkout / "docs/autodiff.md").is_file()
    assert json.loads(ok(world.run("status", "--json")).stdout)["state"] == "applied"
    assert "nothing changed" in ok(world.run("export")).stderr


def test_a_branch_of_only_llvm_changes_gives_the_set_only_an_llvm_list(world):
    world.git("checkout", "-q", "-b", "work")
    llvm_change(world)
    world.git("add", "src/llvm-project")
    world.git("commit", "-q", "-m", "Bump llvm-project")
    ok(world.run("import", f"{world.base}..work", "--set", "mine", "--rustc", "1.63.0", "--llvm", "14"))
    repos = manifest(world)["sets"]["mine"]["repos"]
    assert repos["."]["patches"] == [] and len(repos["src/llvm-project"]["patches"]) == 1
    world.git("checkout", "-q", "main")
    world.git("submodule", "update", "-q")
    ok(world.run("apply", "--no-config", "--set", "mine"))
    assert "// autodiff" in (world.llvm / "llvm/lib/Passes/PassBuilder.cpp").read_text()


def test_a_bump_mixed_with_other_changes_is_refused_with_how_to_split_it(world):
    world.git("checkout", "-q", "-b", "work")
    llvm_change(world)
    write(world.checkout / "docs/autodiff.md", "# Autodiff\n")
    world.git("add", "src/llvm-project", "docs/autodiff.md")
    world.git("commit", "-q", "-m", "Bump llvm-project and document it")
    before = patches_bytes(world)
    res = world.run("import", f"{world.base}..work", "--set", "mine", "--rustc", "1.63.0", "--llvm", "14")
    assert res.returncode == 3, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "moves the src/llvm-project gitlink and changes other files too" in res.stderr
    assert f"git rebase -i {world.base[:12]}" in res.stderr and "pin submodules" not in res.stderr
    assert patches_bytes(world) == before


def test_a_submodule_added_by_the_branch_is_refused_as_one_a_set_cannot_list(world):
    world.git("checkout", "-q", "-b", "work")
    head = world.git("rev-parse", "HEAD").strip()
    world.git("update-index", "--add", "--cacheinfo", f"160000,{head},vendor/tool")
    world.git("commit", "-q", "-m", "Add the tool as a submodule")
    before = patches_bytes(world)
    res = world.run("import", f"{world.base}..work", "--set", "mine", "--rustc", "1.63.0", "--llvm", "14")
    assert res.returncode == 3, res.stderr
    assert "adds submodule vendor/tool: a set patches the repositories the base already has" in res.stderr
    assert "enzyme table" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert patches_bytes(world) == before


def test_a_gitlink_inside_llvm_project_is_refused_with_the_enzyme_pin(world):
    llvm = world.checkout / "src/llvm-project"
    world.git("checkout", "-q", "-B", "mine", repo="src/llvm-project")
    git(llvm, "update-index", "--add", "--cacheinfo", f"160000,{world.enzyme_pin},enzyme", env=world.env)
    git(llvm, "commit", "-q", "-m", "Add Enzyme", env=world.env)
    world.git("checkout", "-q", "-b", "work")
    world.git("add", "src/llvm-project")
    world.git("commit", "-q", "-m", "Bump llvm-project")
    res = world.run("import", f"{world.base}..work", "--set", "mine", "--rustc", "1.63.0", "--llvm", "14")
    assert res.returncode == 3, res.stderr
    assert "moves the gitlink of enzyme inside src/llvm-project" in res.stderr and "enzyme.commit" in res.stderr


def test_a_mail_that_moves_a_gitlink_is_refused_with_the_way_a_set_carries_it(world):
    branch_with_a_bump(world)
    mails = world.tmp / "mails"
    world.git("format-patch", "-q", "-o", str(mails), "work~2..work~1")  # the bump alone, as a mail
    res = world.run("import", str(mails), "--set", "mine", "--rustc", "1.63.0", "--llvm", "14")
    assert res.returncode == 3, res.stderr
    assert "adds or moves a submodule (mode 160000" in res.stderr and "--repo PATH" in res.stderr
    assert "pin submodules in the manifest instead" not in res.stderr


# --- --repo src/llvm-project ----------------------------------------------------------------------

def test_repo_range_is_looked_up_in_the_submodule_and_a_bad_one_named_there(world):
    llvm_base = world.git("rev-parse", "HEAD", repo="src/llvm-project").strip()
    llvm_change(world)
    res = ok(world.run("import", f"{llvm_base}..mine", "--repo", "src/llvm-project", "--set", "autodiff-1.63.0"))
    assert "imported 1 patches into autodiff-1.63.0 (src/llvm-project)" in res.stderr
    before = patches_bytes(world)
    # a superproject commit is no commit of src/llvm-project: exit 3, one line naming the repository
    res = world.run("import", f"{world.base}..mine", "--repo", "src/llvm-project", "--set", "autodiff-1.63.0")
    assert res.returncode == 3, res.stderr
    assert res.stderr.strip() == (f"patchmgr: error: {world.base}..mine: {world.base!r} is not a commit in "
                                  "src/llvm-project (the repository --repo src/llvm-project names)")
    res = world.run("import", f"{llvm_base}..mine", "--set", "autodiff-1.63.0")
    assert res.returncode == 3 and "is not a commit in the superproject (.; --repo PATH" in res.stderr
    res = world.run("import", "HEAD~1..HEAD", "--repo", "src/nothere", "--set", "autodiff-1.63.0")
    assert res.returncode == 3 and "--repo src/nothere: the checkout" in res.stderr and "has no submodule there" in res.stderr
    world.git("submodule", "deinit", "-q", "-f", "src/llvm-project")
    res = world.run("import", f"{llvm_base}..mine", "--repo", "src/llvm-project", "--set", "autodiff-1.63.0")
    assert res.returncode == 7 and "git submodule update --init src/llvm-project" in res.stderr
    assert patches_bytes(world) == before


def test_import_help_documents_repo_ranges(world):
    text = ok(world.run("import", "--help")).stdout
    assert "--repo src/llvm-project" in text and "looked up in that repository" in " ".join(text.split())


# --- a new set's base read from the tree ----------------------------------------------------------

def upstream_with_facts(world, gitmodules: str | None = LLVM_BRANCH_GITMODULES) -> str:
    """A base commit that says its version in src/version and its LLVM branch in .gitmodules."""
    write(world.checkout / "src/version", "1.63.0\n")
    if gitmodules:
        write(world.checkout / ".gitmodules", gitmodules)
    world.git("add", "src/version", ".gitmodules")
    world.git("commit", "-q", "-m", "Rust 1.63.0, as a checkout says it")
    return world.git("rev-parse", "HEAD").strip()


def test_a_new_sets_base_is_read_from_the_tree_and_said(world):
    base = upstream_with_facts(world)
    world.git("checkout", "-q", "-b", "work")
    commit(world, OPTIONS, "// options\npub struct Z;\n// -Z autodiff\n", "session: add -Z autodiff")
    res = ok(world.run("import", f"{base}..work", "--set", "mine"))
    assert (f"base read from tree {base[:12]}: rustc 1.63.0 (from src/version file), commit {base[:12]} (from the "
            "commit itself), LLVM 19 (from the branch .gitmodules gives src/llvm-project, rustc/19.1-2024-12-03)") in res.stderr
    entry = manifest(world)["sets"]["mine"]
    assert (entry["rustc"], entry["commit"], entry["llvm"]) == ("1.63.0", base, 19)
    # an option wins over the tree, and the line says which was given
    res = ok(world.run("import", f"{base}..work", "--set", "mine2", "--llvm", "17"))
    assert "LLVM 17 (--llvm)" in res.stderr and manifest(world)["sets"]["mine2"]["llvm"] == 17


def test_a_release_trees_files_and_llvm_cmake_give_the_base(tarball_world):
    world = tarball_world
    # llvm-project that states its version (LLVM 18 and later: cmake/Modules/LLVMVersion.cmake)
    world.git("checkout", "-q", "-B", "mine", repo="src/llvm-project")
    commit(world, "cmake/Modules/LLVMVersion.cmake", "set(LLVM_VERSION_MAJOR 18)\n", "LLVM 18", "src/llvm-project")
    world.git("add", "src/llvm-project")
    world.git("commit", "-q", "-m", "llvm-project 18")
    series = world.tmp / "series"
    write(series / "series", "notes.patch\n")
    write(series / "notes.patch", "--- /dev/null\n+++ b/NOTES.txt\n@@ -0,0 +1 @@\n+notes\n")
    res = ok(world.run("import", str(series / "series"), "--set", "mine"))
    assert "rustc 1.63.0 (from version file), commit 4b91a6ea7258 (from git-commit-hash), LLVM 18 (from " \
           "src/llvm-project/cmake/Modules/LLVMVersion.cmake)" in res.stderr
    entry = manifest(world)["sets"]["mine"]
    assert (entry["rustc"], entry["commit"], entry["llvm"]) == ("1.63.0", "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f", 18)


def test_rebase_reads_the_llvm_of_a_stand_in_base_from_gitmodules(world):
    """Point 8: a base whose llvm-project is a stand-in (no version in its CMake) but whose
    .gitmodules tracks rustc/19.1-...: the new set records 19, not the old set's 14."""
    up = world.upstream
    write(up / "src/version", "1.85.0\n")
    write(up / ".gitmodules", LLVM_BRANCH_GITMODULES)
    git(up, "add", "src/version", ".gitmodules", env=world.env)
    git(up, "commit", "-q", "-m", "Rust 1.85.0", env=world.env)
    world.git("fetch", "-q", "origin")
    ok(world.run("rebase", "--onto", "origin/main", "--new-set", "autodiff-1.85.0"))
    entry = manifest(world)["sets"]["autodiff-1.85.0"]
    assert (entry["rustc"], entry["llvm"]) == ("1.85.0", 19)
    report = (world.patches / "autodiff-1.85.0" / "rebase-report.md").read_text()
    assert "LLVM 19" in report and "LLVM major kept" not in report


def test_a_release_tree_without_llvm_project_gets_the_llvm_of_its_release(tmp_path):
    """Debian's rustc-web 1.85 tarball has no src/llvm-project and no .gitmodules branch: the LLVM
    major of the release (19) comes from patchmgr's release table, not from the old set (14)."""
    from fixture import git, hermetic_env, write

    from patchmgr.gitio import Repo
    from patchmgr.releases import RELEASES
    from patchmgr.treefacts import read_tree_facts

    env = hermetic_env(tmp_path)
    tree = tmp_path / "tree"
    tree.mkdir()
    git(tree, "init", "-q", env=env)
    write(tree / "version", "1.85.0 (4d91de4e4 2025-02-17)\n")
    write(tree / "git-commit-hash", RELEASES["1.85.0"][2] + "\n")
    git(tree, "add", "-A", env=env)
    git(tree, "commit", "-q", "-m", "Import rustc 1.85.0", env=env)
    head = git(tree, "rev-parse", "HEAD", env=env).strip()
    facts = read_tree_facts(Repo(tree), head, tree)
    assert (facts.rustc, facts.commit, facts.llvm) == ("1.85.0", RELEASES["1.85.0"][2], 19)
    assert "table of releases" in facts.sources["llvm"]
    # another commit than the release's is not given the release's LLVM
    write(tree / "git-commit-hash", "1" * 40 + "\n")
    git(tree, "commit", "-q", "-am", "not the release", env=env)
    assert read_tree_facts(Repo(tree), git(tree, "rev-parse", "HEAD", env=env).strip(), tree).llvm is None
