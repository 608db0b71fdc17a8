"""rebase across a big upstream jump: moved directories, a split file, a vendored crate at a new
version, an option upstream added itself, a tool upstream deleted, an `Upstream:` trailer.

The upstream here reorganizes in one commit (as a release import does: no
history that would let git follow the moves), after a commit that fixes
README.md its own way (the change a patch's `Upstream:` trailer names).
"""

from __future__ import annotations

import shutil
import tomllib

import pytest
from fixture import commit_all, commit_upstream, git, manifest_text, snapshot, write

OLD, NEW = "autodiff-1.63.0", "autodiff-1.64.0"
OPTIONS = "compiler/rustc_session/src/options.rs"
OPTIONS_RS = """options! {
    UnstableOptions, Z_OPTIONS, dbopts, "Z", "unstable",

    allow_features: Option<Vec<String>> = (None, parse_opt_comma_list, [TRACKED],
        "only allow the listed language features to be enabled in code (space separated)"),
    asm_comments: bool = (false, parse_bool, [TRACKED],
        "generate comments into the assembly (may change behavior) (default: no)"),
}
"""
BASIC_RS = "".join(f"    let value_{i} = compute_the_value_of_step({i});\n" for i in range(10))
BUILDER_RS = """impl Builder {
    pub fn new(build: &Build) -> Builder {
""" + "".join(f"        let step_{i} = build.prepare_the_builder_step({i});\n" for i in range(20)) + """        Builder { build, stack: RefCell::new(Vec::new()) }
    }

    pub fn cargo(&self, compiler: Compiler, mode: Mode, target: TargetSelection) -> Cargo {
        let mut rustflags = Rustflags::new(target);
        rustflags.arg("-Zunstable-options");
        rustflags.arg("-Zmacro-backtrace");
        if self.config.rust_new_symbol_mangling {
            rustflags.arg("-Csymbol-mangling-version=v0");
        }
        Cargo { command: cargo, rustflags }
    }
}
"""
CC_RS = "".join(f"fn flag_{i}() -> &'static str {{ \"-fflag-number-{i}\" }}\n" for i in range(8))
TOOL_RS = "fn main() {\n    println!(\"the old tool that upstream removed later\");\n    run_the_old_tool_now();\n}\n"


def reorganized(world) -> dict:
    """A new base with the files the patches change, the patches, and upstream's reorganization."""
    env, up = world.env, world.upstream
    write(up / OPTIONS, OPTIONS_RS)
    write(up / "src/test/ui/autodiff/basic.rs", "fn main() {\n" + BASIC_RS + "}\n")
    write(up / "src/test/ui/autodiff/forward.rs", "fn main() {}\n")
    write(up / "src/bootstrap/builder.rs", BUILDER_RS)
    write(up / "vendor/cc/src/lib.rs", CC_RS)
    write(up / "vendor/cc/Cargo.toml", "[package]\nname = \"cc\"\nversion = \"1.0.73\"\n")
    write(up / "src/tools/old-tool/main.rs", TOOL_RS)
    base = commit_upstream(up, "Rust 1.63.0 with more files", env)

    (up / "README.md").write_text("rust (the language)\n")
    fix = commit_upstream(up, "Auto merge of #4242 - describe rust in README", env)

    work = world.tmp / "carry-series"
    git(world.tmp, "clone", "-q", str(up), str(work), env=env)
    git(work, "checkout", "-q", base, env=env)
    git(work, "submodule", "update", "-q", "--init", env=env)
    edits = [
        ("src/test/ui/autodiff/basic.rs", "compute_the_value_of_step(5)", "compute_the_gradient_of_step(5)",
         "ui test: take the gradient at step 5"),
        ("src/bootstrap/builder.rs", '        rustflags.arg("-Zmacro-backtrace");\n',
         '        rustflags.arg("-Zmacro-backtrace");\n        rustflags.arg("-Zautodiff");\n',
         "bootstrap: pass -Zautodiff to every crate"),
        ("vendor/cc/src/lib.rs", '"-fflag-number-3"', '"-fflag-number-3-autodiff"', "cc: mark flag 3"),
        (OPTIONS, "    asm_comments:", '    autodiff: bool = (false, parse_bool, [TRACKED],\n'
                                       '        "differentiate functions with Enzyme (default: no)"),\n    asm_comments:',
         "rustc_session: add -Z autodiff"),
        ("src/tools/old-tool/main.rs", "run_the_old_tool_now();", "run_the_old_tool_now_with_autodiff();",
         "old-tool: differentiate"),
        ("README.md", "rust\n", "rust, the language\n",
         f"README: describe rust\n\nUpstream: https://github.com/rust-lang/rust/commit/{fix}"),
    ]
    for path, old, new, message in edits:
        file = work / path
        file.write_text(file.read_text().replace(old, new, 1))
        commit_all(work, message, env)
        if path.startswith("src/test/"):  # the second patch: a new ui test next to it
            write(work / "src/test/ui/autodiff/reverse.rs", "fn main() {\n    reverse_mode_test_body();\n}\n")
            commit_all(work, "ui test: reverse mode", env)
    rust_dir = world.patches / OLD / "rust"
    shutil.rmtree(rust_dir)
    git(work, "format-patch", "-q", "-o", str(rust_dir), f"{base}..HEAD", env=env)
    llvm = sorted(p.name for p in (world.patches / OLD / "llvm-project").iterdir())
    world.write_manifest(manifest_text(OLD, base, world.enzyme_pin, sorted(p.name for p in rust_dir.iterdir()), llvm))

    # upstream's reorganization, in one commit
    tests = up / "tests/ui/autodiff"
    tests.mkdir(parents=True)
    preamble = "".join(f"// upstream's new header line {i}\n" for i in range(30))
    (tests / "basic.rs").write_text(preamble + "fn main() {\n" + BASIC_RS + "}\n")
    (tests / "forward.rs").write_text("fn main() {}\n")
    shutil.rmtree(up / "src/test")
    new_fn, cargo_fn = BUILDER_RS.split("\n\n    pub fn cargo")
    write(up / "src/bootstrap/src/core/builder/mod.rs", new_fn + "\n}\n" + "// the builder's new home\n" * 20)
    write(up / "src/bootstrap/src/core/builder/cargo.rs", "impl Builder {\n    pub fn cargo" + cargo_fn)
    (up / "src/bootstrap/builder.rs").unlink()
    shutil.rmtree(up / "vendor/cc")
    write(up / "vendor/cc-1.2.3/src/lib.rs", "".join(f"fn extra_{i}() {{}}\n" for i in range(20)) + CC_RS)
    write(up / "vendor/cc-1.2.3/Cargo.toml", "[package]\nname = \"cc\"\nversion = \"1.2.3\"\n")
    opts = up / OPTIONS
    opts.write_text(opts.read_text().replace(
        "    allow_features:", '    autodiff: Vec<String> = (Vec::new(), parse_list, [TRACKED],\n'
                              '        "upstream\'s own autodiff settings"),\n    allow_features:'))
    shutil.rmtree(up / "src/tools/old-tool")
    write(up / "src/version", "1.64.0\n")
    onto = commit_upstream(up, "Import rustc 1.64.0", env)
    world.git("fetch", "-q", "origin")
    world.git("reset", "-q", "--hard", base)
    return {"base": base, "fix": fix, "onto": onto}


def label(n: int) -> str:
    return next(p.name for p in (label.world.patches / OLD / "rust").iterdir() if p.name.startswith(f"{n:04d}-"))


@pytest.fixture
def moved(world):
    facts = reorganized(world)
    label.world = world
    return world, facts


def test_dry_run_reports_every_kind_and_touches_nothing(moved):
    world, facts = moved
    before = snapshot(world)
    res = world.run("rebase", "--dry-run", "--onto", "origin/main")
    assert res.returncode == 0, res.stderr
    assert snapshot(world) == before
    report_file = world.patches / f"rebase-dry-run-{NEW}.md"
    report = report_file.read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in report.splitlines()
            if line.startswith(f"| {OLD}/")}
    rust = f"{OLD}/rust/"
    assert rows[rust + label(1)].startswith("relocated: "), report
    assert rows[rust + label(2)].startswith("relocated: "), report
    assert rows[rust + label(3)].startswith("relocated: "), report
    assert rows[rust + label(4)].startswith("relocated: "), report
    assert rows[rust + label(5)].startswith(f"superseded by upstream (-Z autodiff in {OPTIONS}:4)"), report
    assert "the rebase stops here" in rows[rust + label(5)]
    assert rows[rust + label(6)].startswith("gone (src/tools/old-tool/main.rs:"), report
    assert rows[rust + label(7)].startswith(f"dropped as upstream: Upstream: https://github.com/rust-lang/rust/commit/"
                                            f"{facts['fix']}; upstream commit {facts['fix'][:12]} is in the new base"), report
    # every relocation, hunk by hunk: old place -> new place, and why
    assert ("src/test/ui/autodiff/basic.rs:4 -> tests/ui/autodiff/basic.rs:34 "
            "(directory moved: src/test/ -> tests/)") in report, report
    assert ("src/test/ui/autodiff/reverse.rs (new file) -> tests/ui/autodiff/reverse.rs "
            "(directory moved: src/test/ -> tests/)") in report, report
    assert ("src/bootstrap/builder.rs:27 -> src/bootstrap/src/core/builder/cargo.rs:3 "
            "(context found by a search of the new tree)") in report, report
    assert ("vendor/cc/src/lib.rs:1 -> vendor/cc-1.2.3/src/lib.rs:21 (vendored crate cc followed by name: "
            "cc -> cc-1.2.3") in report, report


def test_rebase_carries_relocated_patches_and_stops_on_findings(moved):
    world, facts = moved
    res = world.run("rebase", "--onto", "origin/main", "--no-config")
    assert res.returncode == 6, res.stderr
    assert f"is superseded by upstream (-Z autodiff in {OPTIONS}:4)" in res.stderr
    status = world.run("status").stdout
    assert f"{label(5)}, superseded by upstream (-Z autodiff in {OPTIONS}:4): patchmgr rebase --skip leaves it out" \
        in status, status
    assert world.run("rebase", "--skip", "--note", "upstream has its own -Z autodiff", "--no-config").returncode == 6
    res = world.run("rebase", "--skip", "--no-config")
    assert res.returncode == 0, res.stderr
    report = (world.patches / NEW / "rebase-report.md").read_text()
    assert f"superseded by upstream (-Z autodiff in {OPTIONS}:4), skipped by hand: upstream has its own" in report
    assert "| gone (src/tools/old-tool/main.rs:" in report and "skipped by hand: skipped with --skip" in report
    entry = tomllib.loads((world.patches / "series.toml").read_text())["sets"][NEW]
    carried = entry["repos"]["."]["patches"]
    assert len(carried) == 4, carried
    texts = "".join((world.patches / NEW / "rust" / name).read_text() for name in carried)
    # the new patch files name the new paths
    for path in ("tests/ui/autodiff/basic.rs", "tests/ui/autodiff/reverse.rs",
                 "src/bootstrap/src/core/builder/cargo.rs", "vendor/cc-1.2.3/src/lib.rs"):
        assert f"+++ b/{path}" in texts, path
    assert "src/test/" not in texts and "+++ b/src/bootstrap/builder.rs" not in texts
    assert 'rustflags.arg("-Zautodiff");' in (world.checkout / "src/bootstrap/src/core/builder/cargo.rs").read_text()


def test_drop_superseded_leaves_it_out_without_stopping(moved):
    world, _ = moved
    res = world.run("rebase", "--dry-run", "--drop-superseded", "--onto", "origin/main")
    assert res.returncode == 0, res.stderr
    assert f"superseded by upstream (-Z autodiff in {OPTIONS}:4): dropped with --drop-superseded" in res.stdout


def test_outcomes_do_not_depend_on_the_clone_history(moved, tmp_path):
    """A clone where the set was applied once has every preimage; a fresh one has none: same report."""
    world, _ = moved
    fresh = tmp_path / "fresh"
    git(world.tmp, "clone", "-q", str(world.checkout), str(fresh), env=world.env)
    git(fresh, "submodule", "update", "-q", "--init", env=world.env)
    git(fresh, "fetch", "-q", str(world.checkout), "refs/remotes/origin/main:refs/remotes/origin/main", env=world.env)
    assert world.run("apply", "--no-config").returncode == 0
    assert world.run("unapply").returncode == 0
    reports = []
    for tree in (world.checkout, fresh):
        out = tmp_path / f"report-{len(reports)}.md"
        res = world.run("rebase", "--dry-run", "--onto", "origin/main", "--report", str(out), cwd=tree)
        assert res.returncode == 0, res.stderr
        reports.append(out.read_text())
    assert reports[0] == reports[1]


def upstream_edits(world, path: str, old: str, new: str) -> None:
    """One more upstream commit that replaces `old` by `new` in `path`, fetched into the checkout."""
    file = world.upstream / path
    file.write_text(file.read_text().replace(old, new))
    commit_upstream(world.upstream, f"upstream edits {path}", world.env)
    world.git("fetch", "-q", "origin")


def dry_run_report(world, *options: str) -> str:
    out = world.tmp / "report.md"
    res = world.run("rebase", "--dry-run", *options, "--onto", "origin/main", "--report", str(out))
    assert res.returncode == 0, res.stderr
    return out.read_text()


def test_fuzz_places_a_searched_hunk_whose_outer_context_changed(moved):
    """Upstream also edited the first context line of the bootstrap hunk in its new file (no 3-way base
    there: the file was split): exact is refused, --fuzz 1 places it."""
    world, _ = moved
    upstream_edits(world, "src/bootstrap/src/core/builder/cargo.rs", "Rustflags::new(target);",
                   "Rustflags::new(target, mode);")
    row = next(line for line in dry_run_report(world).splitlines() if label(3) in line)
    assert "the rebase stops here" in row and "src/bootstrap/builder.rs:27: hunk does not apply" in row, row
    assert ("src/bootstrap/builder.rs:27 -> src/bootstrap/src/core/builder/cargo.rs:3 (context found by a search of "
            "the new tree, fuzz 1)") in dry_run_report(world, "--fuzz", "1")


def test_a_moved_file_that_changed_upstream_is_merged_3way_at_its_new_path(moved):
    """Upstream edited the moved ui test near the patch's hunk: no exact preimage, but a 3-way merge."""
    world, _ = moved
    upstream_edits(world, "tests/ui/autodiff/basic.rs", "compute_the_value_of_step(2)", "compute_the_value_of_step(2, 0)")
    assert ("src/test/ui/autodiff/basic.rs:4 -> tests/ui/autodiff/basic.rs:34 (directory moved: src/test/ -> tests/, "
            "merged 3-way)") in dry_run_report(world)
