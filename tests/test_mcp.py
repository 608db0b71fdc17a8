"""mcp: the proposal draft, its revisions, the prototype branch and the mail series.

A fixture series shaped like the real one (an options! table per prefix, a
define_config! struct, an example config, cfg-gated code) is imported from a
branch, so the expected surface is known exactly.
"""

from __future__ import annotations

import re

import pytest
import tomlkit
from fixture import ENZYME_URL, commit_all, snapshot, write

SET = "mcp-demo"
OPTIONS = "compiler/rustc_session/src/options.rs"

OPTIONS_RS = '''options! {
    CodegenOptions, CG_OPTIONS, cgopts, "C", "codegen",

    ar: String = (String::new(), parse_string, [UNTRACKED],
        "this option is deprecated and does nothing"),
}

options! {
    UnstableOptions, Z_OPTIONS, dbopts, "Z", "unstable",

    assert_incr_state: Option<String> = (None, parse_opt_string, [UNTRACKED],
        "assert that the incremental cache is in given state"),
    binary_dep_depinfo: bool = (false, parse_bool, [TRACKED],
        "include artifacts in dep-info (default: no)"),
}
'''
CONFIG_RS = '''define_config! {
    struct Llvm {
        polly: Option<bool> = "polly",
        clang: Option<bool> = "clang",
    }
}
'''
EXAMPLE = "[llvm]\n\n# Whether to include the Polly optimizer.\n#polly = false\n\n# Whether to build clang.\n#clang = false\n"

COVER = """# Enzyme autodiff behind -Z autodiff

## Motivation

Differentiate Rust functions.

## Design

Run Enzyme on the merged module.

## Alternatives

A proc macro.

## Open questions

Which LLVM versions.

## Mentors or Reviewers

- (none yet)
"""


def demo_set(world, cover: str | None = COVER) -> str:
    """Upstream gets realistic files; a branch adds -Z autodiff, -C enzyme-path, llvm.enzyme and gated code."""
    env = world.env
    co = world.checkout
    write(co / OPTIONS, OPTIONS_RS)
    write(co / "src/bootstrap/config.rs", CONFIG_RS)
    write(co / "config.toml.example", EXAMPLE)
    base = commit_all(co, "upstream: option tables", env)
    world.git("checkout", "-q", "-b", "demo")
    opts = co / OPTIONS
    opts.write_text(opts.read_text()
                    .replace('    ar: String', '    enzyme_path: Option<String> = (None, parse_opt_string, [UNTRACKED],\n'
                             '        "where the Enzyme library is"),\n    ar: String')
                    .replace('    binary_dep_depinfo', '    autodiff: bool = (false, parse_bool, [TRACKED],\n'
                             '        "differentiate with Enzyme \\\n        (default: no)"),\n    binary_dep_depinfo'))
    commit_all(co, "session: add -Z autodiff and -C enzyme-path", env)
    cfg = co / "src/bootstrap/config.rs"
    cfg.write_text(cfg.read_text().replace('        clang:', '        enzyme: Option<bool> = "enzyme",\n        clang:'))
    ex = co / "config.toml.example"
    ex.write_text(ex.read_text() + "\n# Whether to build Enzyme.\n#enzyme = false\n")
    write(co / "src/bootstrap/compile.rs", 'fn f(cargo: &mut Cargo) {\n    cargo.rustflag("--cfg=llvm_enzyme");\n}\n')
    commit_all(co, "bootstrap: llvm.enzyme", env)
    write(co / "compiler/rustc_codegen_llvm/src/back/autodiff.rs",
          "pub fn run(cgcx: &Cx) {\n    if cfg!(llvm_enzyme) && cgcx.opts.unstable_opts.autodiff {\n        enzyme();\n    }\n}\n"
          "#[cfg(llvm_enzyme)]\nfn enzyme() {}\n")
    commit_all(co, "codegen_llvm: run Enzyme", env)
    res = world.run("import", f"{base}..demo", "--set", SET, "--rustc", "1.63.0", "--commit", base, "--llvm", "14")
    assert res.returncode == 0, res.stderr
    world.git("checkout", "-q", "main")
    manifest = world.patches / "series.toml"
    doc = tomlkit.parse(manifest.read_text())
    entry = doc["sets"][SET]
    entry["enzyme"] = {"url": ENZYME_URL, "commit": world.enzyme_pin}
    entry["repos"]["src/llvm-project"] = {"dir": f"{SET}/llvm-project", "patches": []}
    if cover is not None:
        write(world.patches / SET / "cover.md", cover)
        entry["cover"] = f"{SET}/cover.md"
    manifest.write_text(tomlkit.dumps(doc))
    return base


def mcp(world, *args):
    return world.run("mcp", "--set", SET, *args)


def test_surface_lists_exactly_what_the_series_adds(world, tmp_path):
    base = demo_set(world)
    before = snapshot(world)
    res = mcp(world, "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "out" / "mcp.md").read_text()
    assert text.startswith('---\ntitle: "Enzyme autodiff behind -Z autodiff"\n')
    for heading in ("# Proposal", "# Mentors or Reviewers", "# Process", "# Comments", "## Motivation",
                    "## Design", "## Alternatives", "## Open questions", "### Changelog"):
        assert f"\n{heading}\n" in text, heading
    rows = re.findall(r"^\| (compiler option|bootstrap config) \| `([^`]+)` \| (.*) \|$", text, re.M)
    assert [(kind, name) for kind, name, _ in rows] == [
        ("compiler option", "-C enzyme-path"), ("compiler option", "-Z autodiff"), ("bootstrap config", "llvm.enzyme")]
    assert rows[1][2] == "`bool`, tracked: differentiate with Enzyme (default: no)"
    assert rows[2][2] == "`bool`, default `false`: Whether to build Enzyme."
    assert "`--cfg llvm_enzyme` is set by `src/bootstrap/compile.rs`." in text
    assert "| `compiler/rustc_codegen_llvm/src/back/autodiff.rs` | 2 | 1 |" in text  # two cfg gates, one flag check
    assert "- `compiler/rustc_codegen_llvm/src/back/autodiff.rs`" in text and "- `src/bootstrap/compile.rs`" in text
    assert "| `rustc_session` | 1 | 5 | 0 |" in text and "| `bootstrap` | 2 | 4 | 0 |" in text
    assert f"- Upstream base: rustc 1.63.0, commit `{base}`, LLVM 14" in text
    assert "1. session: add -Z autodiff and -C enzyme-path: 1 file, +5 -0" in text
    assert "\n- (none yet)\n" in text.split("# Mentors or Reviewers")[1]
    assert snapshot(world) == before  # only scratch clones were used


def test_draft_is_deterministic_and_revisions_follow_the_series(world, tmp_path):
    demo_set(world)
    out, again = tmp_path / "a", tmp_path / "b"
    assert mcp(world, "--out", str(out)).returncode == 0
    assert mcp(world, "--out", str(again)).returncode == 0
    first = (out / "mcp.md").read_bytes()
    assert first == (again / "mcp.md").read_bytes()
    assert "- v1 (series " in first.decode() and "Range-diff" not in first.decode()
    res = mcp(world, "--out", str(out))
    assert "is up to date (revision v1)" in res.stderr and (out / "mcp.md").read_bytes() == first
    assert sorted(p.name for p in (out / "revisions").iterdir()) == ["v1"]

    patch = next((world.patches / SET / "rust").glob("0001-*.patch"))
    patch.write_text(patch.read_text().replace("where the Enzyme library is", "where to load Enzyme from"))
    res = mcp(world, "--out", str(out))
    assert res.returncode == 0 and "(revision v2)" in res.stderr, res.stderr
    text = (out / "mcp.md").read_text()
    assert "- v2 (series " in text and "\n- v1\n" in text and "Range-diff from v1" in text
    assert re.search(r"1: +[0-9a-f]{12} ! +1: +[0-9a-f]{12} session: add -Z autodiff", text)
    assert "-+        \"where the Enzyme library is\")," in text and "++        \"where to load Enzyme from\")," in text
    assert "| compiler option | `-C enzyme-path` | `Option<String>`, untracked: where to load Enzyme from |" in text
    assert mcp(world, "--out", str(again)).returncode == 0  # the other directory is at v1: it records v2 too
    assert (again / "mcp.md").read_bytes() == (out / "mcp.md").read_bytes()


def test_branch_and_mail_series(world, tmp_path):
    demo_set(world)
    before = snapshot(world)
    res = mcp(world, "--out", str(tmp_path / "out"), "--branch", "autodiff-mcp", "--format-patch", str(tmp_path / "mails"))
    assert res.returncode == 0, res.stderr
    log = world.git("log", "--format=%s%n%b", "main..autodiff-mcp")
    assert "Patchmgr-" not in log
    subjects = world.git("log", "--reverse", "--format=%s", "main..autodiff-mcp").splitlines()
    assert subjects == ["session: add -Z autodiff and -C enzyme-path", "bootstrap: llvm.enzyme",
                        "codegen_llvm: run Enzyme", "Update src/llvm-project for mcp-demo"]
    assert world.git("log", "-1", "--format=%s", "autodiff-mcp", repo="src/llvm-project").startswith("Add Enzyme as submodule")
    after = snapshot(world)
    for repo in (".", "src/llvm-project"):
        assert {k: v for k, v in after[repo].items() if k != "refs"} == {k: v for k, v in before[repo].items() if k != "refs"}
    assert after["files"] == before["files"]
    mails = sorted(p.name for p in (tmp_path / "mails").glob("*.patch"))
    assert mails[0] == "0000-cover-letter.patch" and len(mails) == 5
    letter = (tmp_path / "mails" / mails[0]).read_text()
    assert "Subject: [PATCH 0/4] Enzyme autodiff behind -Z autodiff" in letter and "## Motivation" in letter
    assert (tmp_path / "mails" / "src/llvm-project" / "0001-Add-Enzyme-as-submodule-enzyme.patch").exists()
    res = mcp(world, "--out", str(tmp_path / "out"), "--branch", "autodiff-mcp")
    assert res.returncode == 7 and "branch autodiff-mcp already exists in ." in res.stderr, res.stderr


def test_template_sections_are_filled_and_the_rest_kept(world, tmp_path):
    demo_set(world)
    template = tmp_path / "major_change.md"
    template.write_text('---\nname: Major change proposal (MCP)\ntitle: "(My major change proposal)"\nlabels: major-change\n'
                        '---\n\n# Proposal\n\n*Insert your proposal here.*\n\n# Mentors or Reviewers\n\n*Names.*\n\n'
                        '# Process\n\n* [x] File an issue.\n* [ ] Second.\n\n# Comments\n\n**Procedural only.**\n')
    assert mcp(world, "--out", str(tmp_path / "out"), "--template", str(template)).returncode == 0
    text = (tmp_path / "out" / "mcp.md").read_text()
    assert text.startswith('---\nname: Major change proposal (MCP)\ntitle: "Enzyme autodiff behind -Z autodiff"\n')
    assert "*Insert your proposal here.*" not in text and "*Names.*" not in text
    assert text.endswith("# Process\n\n* [x] File an issue.\n* [ ] Second.\n\n# Comments\n\n**Procedural only.**\n")


@pytest.mark.parametrize("case, code, message", [
    ("no-cover", 3, "set mcp-demo has no cover letter"),
    ("missing-section", 3, "cover.md: no '## Alternatives' section"),
    ("no-title", 3, "cover.md: the first line must be the proposal's title"),
    ("bad-template", 3, "the template has no '# Proposal' section"),
    ("does-not-apply", 10, "does not apply to the base of mcp-demo"),
])
def test_errors_are_clear_and_write_nothing(world, tmp_path, case, code, message):
    cover = {"no-cover": None, "missing-section": COVER.replace("## Alternatives\n\nA proc macro.\n", ""),
             "no-title": COVER.split("\n", 1)[1]}.get(case, COVER)
    demo_set(world, cover)
    args = ["--out", str(tmp_path / "out")]
    if case == "bad-template":
        (tmp_path / "t.md").write_text("# TL;DR\n\n# Mentors or Reviewers\n")
        args += ["--template", str(tmp_path / "t.md")]
    if case == "does-not-apply":
        patch = next((world.patches / SET / "rust").glob("0002-*.patch"))
        patch.write_text(patch.read_text().replace("         clang: Option<bool>", "         clang: Option<u8>"))
    res = mcp(world, *args)
    assert res.returncode == code and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "mcp.md").exists()


def test_revisions_follow_the_set_across_a_rebase(world, tmp_path):
    """issue 26 point 4: the rebased set's manifest entry says `from = "<old set>"`, and mcp goes
    on with the old set's revisions (its --out, or by default ./mcp-<old set>), the range-diff
    across the rebase; a directory of an unrelated set is refused before anything is written."""
    import tomllib

    demo_set(world)
    out = tmp_path / f"mcp-{SET}"
    assert mcp(world, "--out", str(out)).returncode == 0
    world.git("checkout", "-q", "-b", "next")
    write(world.checkout / "README.md", "rust, next release\n")
    write(world.checkout / "src/version", "1.64.0\n")
    onto = commit_all(world.checkout, "Rust 1.64.0", world.env)
    world.git("checkout", "-q", "main")
    new = f"{SET}-next"
    res = world.run("rebase", "--set", SET, "--onto", onto, "--new-set", new, "--llvm", "14", "--no-config")
    assert res.returncode == 0, res.stderr
    entry = tomllib.loads((world.patches / "series.toml").read_text())["sets"][new]
    assert entry["from"] == SET

    res = world.run("-C", str(world.checkout), "mcp", "--set", new, cwd=tmp_path)  # no --out: ./mcp-<old set>
    assert res.returncode == 0, res.stderr
    assert f"the revisions of {SET} go on with {new}" in res.stderr and "(revision v2)" in res.stderr
    assert not (tmp_path / f"mcp-{new}").exists()
    text = (out / "mcp.md").read_text()
    assert "- v2 (series " in text and f"\n- v1 (set {SET})\n" in text and "Range-diff from v1" in text
    assert f"patch set `{new}`, revision v2" in text
    assert sorted(p.name for p in (out / "revisions").iterdir()) == ["v1", "v2"]

    other = tmp_path / "other"
    assert world.run("mcp", "--set", new, "--out", str(other)).returncode == 0
    before = sorted((p, p.read_bytes()) for p in other.rglob("*") if p.is_file())
    res = mcp(world, "--out", str(other))  # the old set is not rebased from the new one
    assert res.returncode == 7 and f"holds the revisions of set {new}, which {SET} does not come from" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert sorted((p, p.read_bytes()) for p in other.rglob("*") if p.is_file()) == before
