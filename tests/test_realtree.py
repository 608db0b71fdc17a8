"""apply / re-apply / unapply on the real rustc 1.63.0 source tree (marked realtree)."""

from __future__ import annotations

import json
import sys

import pytest
from fixture import mtimes, tree_snapshot
from realtree import REAL_SET, RealTree

pytestmark = pytest.mark.realtree


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    return RealTree(tmp_path_factory.mktemp("real"))


def test_real_tree_round_trip(real):
    before = tree_snapshot(real.root, ["src/llvm-project"], real.env)
    status = json.loads(real.run("status", "--json").stdout)
    assert status["set"] == REAL_SET and status["detected_by"] == "git-commit-hash file of a release tree"

    res = real.run("apply")
    assert res.returncode == 0, res.stderr
    status = json.loads(real.run("status", "--json").stdout)
    assert status["state"] == "applied" and status["enzyme"]["in_place"]
    assert (real.root / "compiler/rustc_codegen_ssa/src/traits/autodiff.rs").is_file()
    assert (real.root / "src/llvm-project/enzyme/enzyme/CMakeLists.txt").is_file()
    assert real.git("submodule", "status", "--recursive").startswith(" ")

    times = mtimes(real.root)
    res = real.run("apply")
    assert res.returncode == 0 and "already applied" in res.stderr
    assert mtimes(real.root) == times

    res = real.run("unapply")
    assert res.returncode == 0, res.stderr
    assert tree_snapshot(real.root, ["src/llvm-project"], real.env) == before


def test_real_series_applies_with_plain_git_am(real):
    """The patch files are plain format-patch mails: git am alone takes them."""
    scratch = real.tmp / "plain-am"
    real.git("worktree", "add", "-q", "--detach", str(scratch), "HEAD")
    try:
        from fixture import git

        patches = sorted((real.patches / REAL_SET / "rust").glob("*.patch"))
        git(scratch, "am", "-q", *map(str, patches), env=real.env)
        assert git(scratch, "rev-list", "--count", "HEAD~1..HEAD", env=real.env).strip() == "1"
    finally:
        real.git("worktree", "remove", "--force", str(scratch))


def test_real_check(real):
    res = real.run("check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok   .: autodiff-1.63.0/rust/0001" in res.stdout


def test_committed_mcp_draft_is_current(real, tmp_path):
    """docs/mcp/ is what `patchmgr mcp` makes from the shipped series and cover letter, byte for byte."""
    import shutil
    import subprocess
    import sys

    from realtree import REPO

    committed = REPO / "docs" / "mcp" / REAL_SET
    out = tmp_path / "mcp"
    shutil.copytree(committed, out)
    res = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(REPO / "patches"), "mcp",
                          "--set", REAL_SET, "--out", str(out)], cwd=real.root, env=real.env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert files(out) == files(committed), (
        "docs/mcp is stale; regenerate it: patchmgr --patches patches -C <rustc 1.63.0 tree> mcp "
        f"--set {REAL_SET} --out docs/mcp/{REAL_SET}")


def test_real_rebase_onto_debian_patched_release(real):
    """The shipped set replays onto 1.63.0 plus Debian's 37 patches: outcomes, new set applied, exact unapply."""
    import shutil
    import tomllib

    from bench_rebase import debian_upstream

    base = real.git("rev-parse", "HEAD").strip()
    manifest = (real.patches / "series.toml").read_bytes()
    onto = debian_upstream(real.root, real.env, real.tmp)
    try:
        res = real.run("rebase", "--onto", onto, "--new-set", "rebased", "--no-config")
        assert res.returncode == 0, res.stderr
        report = (real.patches / "rebased" / "rebase-report.md").read_text()
        carried = report.count("| clean |") + report.count("| merged 3-way |")
        assert carried == len(tomllib.loads(manifest.decode())["sets"][REAL_SET]["repos"]["."]["patches"]), report
        entry = tomllib.loads((real.patches / "series.toml").read_text())["sets"]["rebased"]
        assert (entry["rustc"], entry["commit"]) == ("1.63.0", "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f")
        status = json.loads(real.run("status", "--json", "--set", "rebased").stdout)
        assert status["state"] == "applied" and not any(r["drifted"] for r in status["repos"]), status
        assert real.git("merge-base", "--is-ancestor", onto, "HEAD") == ""
        assert real.run("unapply").returncode == 0
        assert real.git("rev-parse", "HEAD").strip() == onto
    finally:
        real.git("checkout", "-q", "upstream")
        real.git("branch", "-q", "-D", "bench-onto")
        (real.patches / "series.toml").write_bytes(manifest)
        shutil.rmtree(real.patches / "rebased", ignore_errors=True)
    assert real.git("rev-parse", "HEAD").strip() == base


def test_debians_quilt_series_imports_and_applies_as_quilt_does(real):
    """Debian's own 37 patches for rustc 1.63 (one of them of a file with CRLF endings): imported
    into a new manifest, applied by patchmgr, the tree equals `quilt push -a`; unapply is exact."""
    import shutil
    import subprocess

    import prepare_bootstrap
    from fixture import git

    if shutil.which("quilt") is None:
        from realtree import unavailable

        unavailable("quilt is needed to compare with Debian's own application; run scripts/install_deps.sh as root")
    debian = prepare_bootstrap.debian_dir()
    patches = real.tmp / "debian-patches"
    res = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(patches), "import",
                          str(debian / "patches" / "series"), "--set", "debian-1.63.0", "--rustc", "1.63.0",
                          "--commit", "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f", "--llvm", "14"],
                         cwd=real.root, env=real.env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "imported 37 patches into debian-1.63.0" in res.stderr

    before = tree_snapshot(real.root, ["src/llvm-project"], real.env)
    base = real.git("rev-parse", "HEAD").strip()
    applied = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(patches), "apply"],
                             cwd=real.root, env=real.env, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert "config" not in applied.stderr  # the set names no bootstrap template: config.toml is left alone
    patched_tree = real.git("rev-parse", "HEAD^{tree}").strip()

    quilted = real.tmp / "quilted"
    real.git("worktree", "add", "-q", "--detach", str(quilted), base)
    try:
        env = dict(real.env, QUILT_PATCHES=str(debian / "patches"), QUILT_PC=str(real.tmp / "quilt-pc"))
        pushed = subprocess.run(["quilt", "push", "-a", "-q"], cwd=quilted, env=env, capture_output=True, text=True)
        assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-2000:]
        shutil.rmtree(quilted / ".pc", ignore_errors=True)
        index = dict(env, GIT_INDEX_FILE=str(real.tmp / "quilt.index"))
        git(quilted, "read-tree", base, env=index)
        git(quilted, "add", "-A", "--", ".", env=index)
        assert git(quilted, "write-tree", env=index).strip() == patched_tree
    finally:
        real.git("worktree", "remove", "--force", str(quilted))

    unapplied = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(patches), "unapply"],
                               cwd=real.root, env=real.env, capture_output=True, text=True)
    assert unapplied.returncode == 0, unapplied.stderr
    assert tree_snapshot(real.root, ["src/llvm-project"], real.env) == before


def test_debians_series_round_trips_through_export_quilt(real):
    """Debian's 37 patches for rustc 1.63 imported, applied and written back with `export --quilt`
    (issue 26 point 9): `patch -p1` of the written series in its order, as quilt push runs it, gives
    the tree patchmgr applied (which is quilt push -a's of Debian's own series, see the test above);
    the series file and every patch's header are Debian's, byte for byte."""
    import shutil
    import subprocess

    import prepare_bootstrap
    from fixture import git

    from patchmgr.quilt import diff_start

    debian = prepare_bootstrap.debian_dir() / "patches"
    patches, out = real.tmp / "round-trip-patches", real.tmp / "debian-patches-out"

    def patchmgr(*args):
        res = subprocess.run([sys.executable, "-m", "patchmgr", "--patches", str(patches), *args],
                             cwd=real.root, env=real.env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res

    patchmgr("import", str(debian / "series"), "--set", "debian-rt", "--rustc", "1.63.0",
             "--commit", "4b91a6ea7258a947e59c6522cd5898e7c0a6a88f", "--llvm", "14")
    base = real.git("rev-parse", "HEAD").strip()
    patchmgr("apply", "--set", "debian-rt")
    try:
        patched_tree = real.git("rev-parse", "HEAD^{tree}").strip()
        said = patchmgr("export", "--quilt", str(out)).stderr
        assert "header written from the commit" not in said
        assert (out / "series").read_bytes() == (debian / "series").read_bytes()
        names = [line.split()[0] for line in (out / "series").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
        assert len(names) == 37 and sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == sorted(["series", *names])
        for name in names:
            ours, theirs = (d.joinpath(name).read_text().split("\n") for d in (out, debian))
            assert ours[:diff_start(ours)] == theirs[:diff_start(theirs)], name
        pushed = real.tmp / "pushed"
        real.git("worktree", "add", "-q", "--detach", str(pushed), base)
        try:
            for name in names:
                res = subprocess.run(["patch", "-p1", "-f", "--no-backup-if-mismatch", "-s", "-i", str(out / name)],
                                     cwd=pushed, capture_output=True, text=True)
                assert res.returncode == 0, (name, res.stdout[-2000:], res.stderr[-2000:])
            index = dict(real.env, GIT_INDEX_FILE=str(real.tmp / "pushed.index"))
            git(pushed, "read-tree", base, env=index)
            git(pushed, "add", "-A", "--", ".", env=index)
            assert git(pushed, "write-tree", env=index).strip() == patched_tree
        finally:
            real.git("worktree", "remove", "--force", str(pushed))
    finally:
        patchmgr("unapply")
        shutil.rmtree(out, ignore_errors=True)
