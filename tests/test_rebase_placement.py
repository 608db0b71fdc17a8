"""rebase: hunks whose context upstream rewrote around them, the way rustc 1.63 -> 1.85 did.

Each fixture upstream changes the files the patches touch in one commit (as a
release import does: no history to follow): reindented (tabs to spaces), tests
moved to tests/ with their compiletest directives written as `//@`, a file
split with the lines next to a hunk edited. The reindented and the `//@` ones
are carried by default; the edited context only with --fuzz N, and only where
the hunk has one place (an ambiguous one still stops). Every such hunk is
listed under "Relocated hunks" with how it was placed.
"""

from __future__ import annotations

import tomllib

import pytest
from fixture import commit_upstream, series_as_set, write
from test_speed import git_command_counts

OLD, NEW = "autodiff-1.63.0", "autodiff-1.64.0"

INSTALL_SH = (
    "install_components() {\n"
    "\twhile read _directive; do\n"
    "\t\tcase \"$_command\" in\n"
    "\t\t    file )\n"
    "\t\t    maybe_backup_path \"$_file_install_path\"\n"
    "\n"
    "\t\t    if echo \"$_file\" | grep \"^bin/\" > /dev/null\n"
    "\t\t    then\n"
    "\t\t\trun cp \"$_src_dir/$_component/$_file\" \"$_file_install_path\"\n"
    "\t\t\trun chmod 755 \"$_file_install_path\"\n"
    "\t\t    fi\n"
    "\t\t    ;;\n"
    "\t\tesac\n"
    "\tdone\n"
    "}\n"
)
AVX_RS = """// build-pass (FIXME(55996): should be run on targets supporting avx)
// only-x86_64
// no-prefer-dynamic
// compile-flags: -Ctarget-feature=+avx -Clto

fn main() {}
"""
DOCS_STEP = """impl Step for {step} {{
    fn run(self, builder: &Builder<'_>) -> Option<GeneratedTarball> {{
        let mut tarball = Tarball::new(builder, "{name}", &host.triple);
        tarball.set_product_name("{product}");
        tarball.add_bulk_dir({amp}builder.doc_out(host), dest);
        tarball.add_file({amp}builder.src.join("src/doc/robots.txt"), dest, 0o644);
        Some(tarball.generate())
    }}
}}
"""
DIST_RS = DOCS_STEP.format(step="Docs", name="rust-docs", product="Rust Documentation", amp="&")
FILLER = "".join(f"// the build step's helper number {i}\nfn helper_{i}() {{}}\n" for i in range(30))


def series_onto(world, files: dict[str, str], edits: list[tuple[str, str, str, str]],
                new_files: dict[str, str | None]) -> None:
    """Upstream's old base with `files`, the set made of `edits` (path, old, new, message) on it,
    and upstream's next release (`new_files`: path -> text, None deletes) fetched into the checkout."""
    env, up = world.env, world.upstream
    for path, text in files.items():
        write(up / path, text)
    base = commit_upstream(up, "Rust 1.63.0 with more files", env)
    series_as_set(world, OLD, base, [(message, [(path, old, new)]) for path, old, new, message in edits],
                  "placement-series")
    for path, text in new_files.items():
        if text is None:
            (up / path).unlink()
        else:
            write(up / path, text)
    write(up / "src/version", "1.64.0\n")
    commit_upstream(up, "Import rustc 1.64.0", env)
    world.git("fetch", "-q", "origin")


def report_of(world, *options: str) -> tuple[str, str]:
    """The dry run's report: (the outcome row of the one patch, the whole report)."""
    out = world.tmp / "report.md"
    res = world.run("rebase", "--dry-run", *options, "--onto", "origin/main", "--report", str(out))
    assert res.returncode == 0, res.stderr
    report = out.read_text()
    rows = [line for line in report.splitlines() if line.startswith(f"| {OLD}/rust/")]
    assert len(rows) == 1, report
    return rows[0], report


def test_a_hunk_upstream_reindented_is_carried_with_the_files_indentation(world):
    """Upstream turned the script's tabs into spaces: the preimage matches once indentation is
    ignored, the added lines take the spaces their tab indentation maps to."""
    sh = "src/tools/rust-installer/install-template.sh"
    reindented = INSTALL_SH.replace("\t\t    ", " " * 12).replace("\t\t\t", " " * 12).replace("\t\t", " " * 8) \
        .replace("\t", " " * 4)
    series_onto(world, {sh: INSTALL_SH},
                [(sh, '\t\t    if echo "$_file" | grep "^bin/" > /dev/null\n',
                  '\t\t    if [ -h "$_src_dir/$_component/$_file" ]\n\t\t    then\n'
                  '\t\t\trun cp -d "$_src_dir/$_component/$_file" "$_file_install_path"\n'
                  '\t\t    elif echo "$_file" | grep "^bin/" > /dev/null\n', "installer: copy symlinks as they are")],
                {sh: "# upstream's new first line\n" + reindented})
    row, report = report_of(world)
    assert row.split(" | ")[1].startswith("relocated"), report
    assert f"{sh}:4 -> {sh}:5 (reindented as the file now is)" in report, report

    res = world.run("rebase", "--onto", "origin/main", "--no-config")
    assert res.returncode == 0, res.stderr
    text = (world.checkout / sh).read_text()
    assert ' ' * 12 + 'if [ -h "$_src_dir/$_component/$_file" ]\n' + ' ' * 12 + 'then\n' + ' ' * 12 + \
        'run cp -d "$_src_dir/$_component/$_file" "$_file_install_path"\n' + ' ' * 12 + \
        'elif echo "$_file" | grep "^bin/" > /dev/null\n' in text, text
    assert "\t" not in text
    entry = tomllib.loads((world.patches / "series.toml").read_text())["sets"][NEW]
    carried = (world.patches / NEW / "rust" / entry["repos"]["."]["patches"][0]).read_text()
    assert "+" + " " * 12 + "then\n" in carried, carried


def test_a_test_moved_to_tests_gets_its_directives_written_as_upstream_writes_them(world):
    """src/test/ui/x.rs became tests/ui/x.rs and `// only-x86_64` became `//@ only-x86_64`:
    the patch's header lines are matched, and written, in the new form."""
    old, new = "src/test/ui/issues/issue-44056.rs", "tests/ui/issues/issue-44056.rs"
    series_onto(world, {old: AVX_RS}, [(old, "// only-x86_64\n", "// ignore-test\n", "test: ignore the avx test")],
                {old: None, new: AVX_RS.replace("// ", "//@ ") + "// a new comment, not a directive\n"})
    row, report = report_of(world)
    assert row.split(" | ")[1].startswith("relocated"), report
    assert (f"{old}:1 -> {new}:1 (directory moved: src/test/ -> tests/, compiletest directives written as //@)"
            in report), report
    res = world.run("rebase", "--onto", "origin/main", "--no-config")
    assert res.returncode == 0, res.stderr
    assert (world.checkout / new).read_text().startswith(
        "//@ build-pass (FIXME(55996): should be run on targets supporting avx)\n//@ ignore-test\n"
        "//@ no-prefer-dynamic\n")


def split_dist(second_product: str) -> dict:
    """Upstream's new home of src/bootstrap/dist.rs, its lines next to the hunk edited (`&` dropped),
    with a second step after it named `second_product`."""
    moved = (FILLER + DOCS_STEP.format(step="Docs", name="rust-docs", product="Rust Documentation", amp="")
             + DOCS_STEP.format(step="JsonDocs", name="rust-docs-json", product=second_product, amp=""))
    return {"src/bootstrap/dist.rs": None, "src/bootstrap/src/core/build_steps/dist.rs": moved}


PERMIT = ("src/bootstrap/dist.rs", "        Some(tarball.generate())\n",
          "        tarball.permit_symlinks(true);\n        Some(tarball.generate())\n", "dist: permit symlinks in docs")


def test_fuzz_places_a_hunk_whose_context_upstream_edited_where_it_has_one_place(world):
    """Two of the hunk's three leading context lines changed upstream and the file moved (no
    3-way base): exact stops; --fuzz 2 places it, since only one place in the file keeps the
    rest of its context (the other step's product name differs)."""
    new = "src/bootstrap/src/core/build_steps/dist.rs"
    series_onto(world, {"src/bootstrap/dist.rs": DIST_RS}, [PERMIT], split_dist("Rust Documentation In JSON"))
    row, _ = report_of(world)
    assert "the rebase stops here" in row and "src/bootstrap/dist.rs:4: hunk does not apply" in row, row
    row, report = report_of(world, "--fuzz", "2")
    assert row.split(" | ")[1].startswith("relocated"), report
    assert f"src/bootstrap/dist.rs:4 -> {new}:64 (" in report and ", fuzz 2)" in report, report
    res = world.run("rebase", "--onto", "origin/main", "--no-config", "--fuzz", "2")
    assert res.returncode == 0, res.stderr
    text = (world.checkout / new).read_text()
    assert text.count("tarball.permit_symlinks(true);") == 1
    assert ('tarball.add_file(builder.src.join("src/doc/robots.txt"), dest, 0o644);\n'
            '        tarball.permit_symlinks(true);\n        Some(tarball.generate())\n') in text.split("JsonDocs")[0]


def test_fuzz_does_not_place_a_hunk_that_has_two_places(world):
    """The same, but both steps now read alike within the hunk's context: the hunk could go in
    either, so --fuzz 2 (and 3) still stops and says it does not apply."""
    series_onto(world, {"src/bootstrap/dist.rs": DIST_RS}, [PERMIT], split_dist("Rust Documentation"))
    for fuzz in ("2", "3"):
        row, report = report_of(world, "--fuzz", fuzz)
        assert "the rebase stops here" in row and "src/bootstrap/dist.rs:4: hunk does not apply" in row, row
        assert "Relocated hunks" not in report or "permit" not in report.split("Relocated hunks")[1], report


def test_a_module_renamed_into_a_directory_named_after_one_of_its_words_is_followed(world):
    """rustc 1.74 moved spec/windows_gnu_base.rs to spec/base/windows_gnu.rs: no file of the old name
    is left, the one file under the old directory spelled with the same words is where the hunk goes."""
    old, new = "compiler/rustc_target/src/spec/windows_gnu_base.rs", "compiler/rustc_target/src/spec/base/windows_gnu.rs"
    spec = ("pub fn opts() -> TargetOptions {\n    let mingw_libs = &[\n        \"-lmsvcrt\",\n        \"-luser32\",\n"
            "        \"-lkernel32\",\n    ];\n    TargetOptions::link_args(mingw_libs)\n}\n")
    series_onto(world, {old: spec, "compiler/rustc_target/src/spec/windows_gnu_extra.rs": "// another module\n"},
                [(old, '        "-lkernel32",\n', '        "-lkernel32",\n        "-lssp",\n', "windows: link libssp")],
                {old: None, new: FILLER + spec.replace("pub fn", "pub(crate) fn")})  # too new for git's rename detection
    row, report = report_of(world)
    assert row.split(" | ")[1].startswith("relocated"), report
    assert f"{old}:3 -> {new}:63 (file moved: {old} -> {new})" in report, report


UI_TESTS = {f"src/test/ui/{group}/{name}.rs": f"// {group}: {name}\nfn main() {{ assert_eq!({n}, {n}); }}\n"
            for n, (group, name) in enumerate([("issues", "issue-44056"), ("issues", "issue-71798"),
                                               ("lint", "lint-unused-mut"), ("parser", "parser-recovery")])}
NEW_TEST = ("src/test/ui/my-flag/my-flag-works.rs", "",
            "// check-pass\n// compile-flags: -Z my-flag\nfn main() {}\n", "ui test: -Z my-flag")


TYPECK = {f"compiler/rustc_typeck/src/check/{name}.rs": f"// {name}\npub fn {name}_of_the_item() {{}}\n"
          for name in ("wfcheck", "intrinsic", "dropck", "compare_method")}


@pytest.mark.parametrize("files,created,old_root,new_root", [
    (UI_TESTS, NEW_TEST[0], "src/test", "tests"),
    (TYPECK, "compiler/rustc_typeck/src/check/autodiff/enzyme.rs", "compiler/rustc_typeck", "compiler/rustc_hir_analysis"),
], ids=["src-test-to-tests", "typeck-to-hir-analysis"])
def test_a_file_created_in_a_new_directory_of_a_moved_one_follows_the_move(world, files, created, old_root, new_root):
    """1.63's src/test/ui is 1.85's tests/ui (and rustc_typeck's sources rustc_hir_analysis's): a
    patch that starts a new directory in the old one is carried to the same place in the new one,
    reported as a relocation with why, and the old directory does not come back."""
    moved = {path: None for path in files} | {new_root + path[len(old_root):]: text for path, text in files.items()}
    new, gone, why = new_root + created[len(old_root):], old_root, f"{old_root}/ -> {new_root}/"
    series_onto(world, files, [(created, "", NEW_TEST[2], "a new file in a new directory")], moved)
    row, report = report_of(world)
    assert row.split(" | ")[1].startswith("relocated"), report
    assert f"{created} (new file) -> {new} (directory moved: {why})" in report, report
    res = world.run("rebase", "--onto", "origin/main", "--no-config")
    assert res.returncode == 0, res.stderr
    assert (world.checkout / new).read_text() == NEW_TEST[2]
    assert not (world.checkout / gone).exists()
    entry = tomllib.loads((world.patches / "series.toml").read_text())["sets"][NEW]
    carried = (world.patches / NEW / "rust" / entry["repos"]["."]["patches"][0]).read_text()
    assert f"+++ b/{new}" in carried and gone + "/" not in carried, carried


def split_ui_tests() -> dict:
    """src/test/ui's files, half moved to tests/ui, half to tests/ui-fulldeps."""
    split: dict[str, str | None] = {path: None for path in UI_TESTS}
    for n, (path, text) in enumerate(UI_TESTS.items()):
        split[("tests/ui/" if n % 2 else "tests/ui-fulldeps/") + path[len("src/test/ui/"):]] = text
    return split


@pytest.mark.parametrize("new_files,where", [
    (split_ui_tests(), "its files went to: tests/ui-fulldeps/ (2), tests/ui/ (2)"),
    ({path: None for path in UI_TESTS}, "none of its files is in the new tree by name"),
], ids=["split-in-two", "deleted"])
def test_a_file_created_in_a_directory_gone_to_no_one_place_stops_with_a_finding(world, new_files, where):
    """src/test/ui's files went half to tests/ui, half to tests/ui-fulldeps, or nowhere: where the
    new test goes cannot be told, so the rebase stops and says the directory is gone and where its
    files went; --continue keeps the file where the patch put it."""
    series_onto(world, UI_TESTS, [NEW_TEST], new_files)
    finding = ("directory gone upstream (src/test/ui/my-flag/my-flag-works.rs: created in src/test/ui/, which is "
               f"gone upstream; {where})")
    row, report = report_of(world)
    assert row.split(" | ")[1] == finding + ": the rebase stops here", report
    res = world.run("rebase", "--onto", "origin/main", "--no-config")
    assert res.returncode == 6 and finding in res.stderr, res.stderr
    assert not (world.checkout / "src/test").exists()
    res = world.run("rebase", "--continue", "--no-config")
    assert res.returncode == 0, res.stderr
    report = (world.patches / NEW / "rebase-report.md").read_text()
    assert finding + ", resolved by hand" in report, report
    assert (world.checkout / NEW_TEST[0]).read_text() == NEW_TEST[2]


def rule_file(prefix: str) -> str:
    """A module of functions whose every line is distinctive (a search of the tree finds them)."""
    return "".join(f"pub fn {prefix}_rule_{i}(input: &str) -> usize {{\n    input.len() * {i} + {prefix.upper()}_BIAS\n}}\n"
                   for i in range(6))


def test_hunks_found_by_a_search_of_the_tree_cost_one_search_for_the_whole_series(world, tmp_path):
    """Upstream merged two modules into one file of another name in another directory: each of two
    patches has its hunk found there by a search of the new tree, the second in the file the first
    patch just changed. rustc's tree costs seconds per search and per listing, so the carry
    searches the new base once for every hunk of the series and lists each side's tree once; the
    later trees are read as the few files they change."""
    lexer, parser = "compiler/rustc_lex/src/lexer_rules.rs", "compiler/rustc_lex/src/parser_table.rs"
    merged = "compiler/rustc_grammar/src/grammar.rs"
    filler = "".join(f"// upstream's grammar note {i}, unrelated to the rules\n" for i in range(80))
    series_onto(world, {lexer: rule_file("lexer"), parser: rule_file("parser")},
                [(lexer, "input.len() * 3 + LEXER_BIAS", "input.len() * 3 + LEXER_BIAS + 1", "lexer: one more"),
                 (parser, "input.len() * 4 + PARSER_BIAS", "input.len() * 4 - PARSER_BIAS", "parser: less bias")],
                {lexer: None, parser: None, merged: filler + rule_file("lexer") + rule_file("parser")})
    out, trace = tmp_path / "report.md", tmp_path / "trace"
    res = world.run("rebase", "--dry-run", "--onto", "origin/main", "--report", str(out),
                    env_extra={"GIT_TRACE": str(trace)})
    assert res.returncode == 0, res.stderr
    report = out.read_text()
    rows = [line.split(" | ")[1] for line in report.splitlines() if line.startswith(f"| {OLD}/rust/")]
    assert rows == ["relocated: 1 hunk placed elsewhere, see below"] * 2, report
    assert f"{lexer}:8 -> {merged}:88 (context found by a search of the new tree)" in report, report
    assert f"{parser}:11 -> {merged}:109 (context found by a search of the new tree)" in report, report
    assert git_command_counts(trace)["grep"] == 1, trace.read_text()
    # the new base listed whole once; the tree carrying the first patch is read as its changes
    listings = [line for line in trace.read_text().splitlines() if " ls-tree -r -z --full-tree " in line]
    assert len(listings) == 1, listings
