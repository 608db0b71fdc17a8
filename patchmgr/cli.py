"""The `patchmgr` command: argument parsing and error reporting, nothing else."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from patchmgr import __version__
from patchmgr.errors import EXIT_CODES, Conflict, PatchmgrError, UsageError

EPILOG = "exit codes:\n" + "\n".join(f"  {code:>2}  {name}: {meaning}" for code, (name, meaning) in EXIT_CODES.items())


def default_patches_dir() -> Path:
    """--patches, else $PATCHMGR_PATCHES, else the series installed with patchmgr."""
    env = os.environ.get("PATCHMGR_PATCHES")
    if env:
        return Path(env)
    import patchmgr_series

    return Path(patchmgr_series.__file__).parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchmgr", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Carry a versioned patch series on a rustc checkout and its src/llvm-project submodule.")
    parser.add_argument("--version", action="version", version=f"patchmgr {__version__}")
    parser.add_argument("-C", dest="root", type=Path, default=Path.cwd(), metavar="DIR",
                        help="the rustc checkout (default: the one containing the current directory)")
    parser.add_argument("--patches", type=Path, metavar="DIR",
                        help="patches directory with series.toml (default: $PATCHMGR_PATCHES, else the series installed with patchmgr)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        return p

    def with_set(p: argparse.ArgumentParser) -> None:
        p.add_argument("--set", dest="set_name", metavar="NAME",
                       help="use this patch set instead of the one detected from the tree's base")

    def config_options(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("bootstrap config (rendered from config.toml.in, merged into config.toml)")
        g.add_argument("--llvm-config", default="auto", metavar="PATH",
                       help="external LLVM: a path, 'auto' (/usr/lib/llvm-<set's major>/bin/llvm-config or one on "
                            "PATH) or 'none' (build src/llvm-project)")
        g.add_argument("--stage0", default="auto", metavar="WHERE",
                       help="'auto' (a system rustc of the tree's version for local-rebuild, else download), "
                            "'download', or a bin directory with rustc and cargo")
        g.add_argument("--online", action="store_true", help="do not force vendored crates")
        g.add_argument("--profile", help="bootstrap profile (src/bootstrap/defaults)")

    p = command("apply", "apply the patch set for this tree's base onto patch branches (patchmgr/<set>)")
    with_set(p)
    p.add_argument("--no-config", action="store_true", help="do not write the bootstrap config")
    config_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--continue", dest="mode", action="store_const", const="--continue",
                      help="after resolving a conflict (and git add), finish the apply")
    mode.add_argument("--skip", dest="mode", action="store_const", const="--skip", help="drop the conflicting patch and go on")
    mode.add_argument("--abort", dest="mode", action="store_const", const="--abort",
                      help="put every repository back exactly where it was before the apply (also after a kill)")

    p = command("unapply", "remove the patch set: every repository back at its base, Enzyme submodule included")
    with_set(p)
    p.add_argument("--force", action="store_true",
                   help="also when the patch branches hold other commits; they are saved under refs/patchmgr/backup/ first")

    p = command("status", "show the base, the set, and per repository the applied, pending and drifted patches")
    with_set(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("check", "apply the set in scratch clones (never in your tree) and report each patch")
    with_set(p)
    p.add_argument("--keep", action="store_true", help="keep the scratch clones for inspection")

    command("lint", "validate the manifest and every patch of every set, without a tree")

    p = command("export", "write the patch branches back to the set's patch files and manifest, deterministically")
    with_set(p)

    p = command("rebase", "carry the set onto a newer upstream, patch by patch; writes a new set and a report, "
                "then applies it")
    with_set(p)
    p.add_argument("--onto", metavar="REV|VERSION",
                   help="the new base: a revision of the checkout, or a rustc version (tag VERSION, else its "
                        "Debian source package is committed on top of the old base and tagged)")
    p.add_argument("--new-set", metavar="NAME", help="name of the new set (default: the old name with the new version)")
    p.add_argument("--llvm", type=int, metavar="N", help="LLVM major of the new base, when its llvm-project does not say")
    p.add_argument("--no-config", action="store_true", help="do not write the bootstrap config after applying the new set")
    config_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--continue", dest="mode", action="store_const", const="--continue",
                      help="after resolving a conflict (and git add), go on with the next patch")
    mode.add_argument("--skip", dest="mode", action="store_const", const="--skip",
                      help="leave the conflicting patch out of the new set and go on")
    mode.add_argument("--abort", dest="mode", action="store_const", const="--abort",
                      help="put every repository back exactly where it was before the rebase (also after a kill)")
    p.add_argument("--note", metavar="TEXT", help="with --continue or --skip: why, recorded in the rebase report")

    p = command("diff-sets", "show what changed between two patch sets, patch by patch (git range-diff)")
    p.add_argument("first", metavar="A")
    p.add_argument("second", metavar="B")

    p = command("import", "make a set's patch list from a revision range, a directory of .patch files, or a quilt series")
    p.add_argument("source", help="BASE..BRANCH (in the checkout), a directory of format-patch files, or a quilt series file")
    p.add_argument("--set", dest="set_name", required=True, metavar="NAME", help="the set to create or update")
    p.add_argument("--repo", default=".", metavar="PATH", help="the repository the patches are for (default '.')")
    p.add_argument("--rustc", help="upstream version, for a new set")
    p.add_argument("--commit", help="full upstream commit hash, for a new set")
    p.add_argument("--llvm", type=int, help="LLVM major, for a new set")

    p = command("mcp", "write a Major Change Proposal draft from the set's cover letter and the series itself; "
                "optionally a prototype branch and a numbered mail series")
    with_set(p)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where the draft (mcp.md) and its revisions live (default ./mcp-<set>)")
    p.add_argument("--template", type=Path, metavar="FILE",
                   help="the compiler team's MCP issue template; its Proposal and Mentors or Reviewers sections are "
                        "filled, the rest kept as is (default: a built-in skeleton)")
    p.add_argument("--branch", metavar="NAME",
                   help="also create branch NAME (in every patched repository): the series as plain commits on its "
                        "base, for a draft pull request; your work trees are not touched")
    p.add_argument("--format-patch", dest="mails", type=Path, metavar="DIR",
                   help="also write the series as numbered mails to DIR, the cover letter as patch 0")

    p = command("config", "write (or --show) the bootstrap config for this tree, from config.toml.in")
    with_set(p)
    p.add_argument("--show", action="store_true", help="print the merged result and change nothing")
    config_options(p)

    p = command("build", "build the patched compiler with x.py: progress line, full log, first error, smoke test")
    with_set(p)
    p.add_argument("--stage", type=int, default=1, help="stage to build (default 1)")
    p.add_argument("-j", "--jobs", type=int, help="parallel jobs for x.py")
    p.add_argument("--dry-run", action="store_true", help="print the config and the x.py command, run nothing")
    p.add_argument("--log", type=Path, help="log file (default: build/patchmgr-build.log in the tree)")
    p.add_argument("--toolchain", default=None, metavar="NAME",
                   help="rustup toolchain name to link the stage's sysroot as (default patchmgr-<set>-stage<N>)")
    p.add_argument("--no-link", action="store_true", help="do not link a rustup toolchain")
    p.add_argument("paths", nargs="*", default=["library/std"], help="what to build (default library/std)")
    config_options(p)
    return parser


def run(args: argparse.Namespace) -> int:
    from patchmgr.series import load_manifest

    manifest = load_manifest(args.patches or default_patches_dir())
    if args.command == "lint":
        from patchmgr.lint import load_patches

        for patch_set in manifest.sets.values():
            count = sum(len(p) for p in load_patches(patch_set).values())
            print(f"ok {patch_set.name}: {count} patches")
        return 0

    if args.command == "import":
        from patchmgr import importer
        from patchmgr.series import parse_manifest

        source = Path(args.source)
        if source.is_dir():
            mails = importer.mails_from_directory(source)
        elif source.is_file():
            mails = importer.mails_from_quilt(source)
        else:
            from patchmgr.base import find_root
            from patchmgr.gitio import Repo

            root = find_root(args.root.resolve())
            mails = importer.mails_from_range(Repo(root / args.repo, args.repo), args.source)
        meta = {"rustc": args.rustc, "commit": args.commit, "llvm": args.llvm}
        for line in importer.write_set(manifest, args.set_name, args.repo, mails, meta):
            print(f"patchmgr: {line}", file=sys.stderr)
        parse_manifest(manifest.path.read_text(encoding="utf-8"), manifest.path)  # what was written still validates
        return 0

    from patchmgr.workspace import Workspace

    ws = Workspace.open(args.root.resolve(), manifest)
    if args.command == "apply":
        from patchmgr import apply

        if args.mode == "--abort":
            apply.abort(ws)
            return 0
        patch_set = apply.resume(ws, args.mode) if args.mode else apply.apply(ws, args.set_name)
        if not args.no_config:
            _write_config(ws, args, quiet_if_not_rustc=True, remember=True, patch_set=patch_set)
        return 0
    if args.command == "rebase":
        from patchmgr import rebase

        if args.mode == "--abort":
            rebase.abort(ws)
            return 0
        if args.note and args.mode not in ("--continue", "--skip"):
            raise UsageError("--note goes with rebase --continue or --skip")
        if args.mode:
            patch_set = rebase.resume(ws, args.mode, args.note)
        elif not args.onto:
            raise UsageError("rebase needs --onto REV|VERSION (or --continue, --skip, --abort)")
        else:
            patch_set = rebase.start(ws, args.onto, args.set_name, args.new_set, args.llvm)
        if not args.no_config:
            _write_config(ws, args, quiet_if_not_rustc=True, remember=True, patch_set=patch_set)
        return 0
    if args.command == "unapply":
        from patchmgr.unapply import unapply

        record = ws.applied_record()
        unapply(ws, args.set_name, args.force)
        written = record.extra.get("config") if record else None
        if written:
            from xpy_ext.config import revert

            print(f"patchmgr: {revert(Path(written['path']), written['sha256'], written['had_backup'])}",
                  file=sys.stderr)
        return 0
    if args.command == "status":
        from patchmgr import status

        op = ws.op_record()
        if op is not None and op.kind == "rebase":
            from patchmgr.rebase import describe

            shown = {"set": op.set, **{k: op.extra.get(k) for k in ("from", "onto_arg", "ontos", "outcomes", "stopped")}}
            print(json.dumps({"rebase": shown}, indent=2) if args.json else describe(op))
            return 0
        data = status.to_dict(ws.inspect(args.set_name or (op.set if op else None)), f"apply of {op.set}" if op else None)
        print(json.dumps(data, indent=2) if args.json else status.render(data))
        return 0
    if args.command == "check":
        from patchmgr import check

        results = check.check(ws, args.set_name, keep=args.keep)
        text, _ = check.report(results)
        print(text)
        check.require_ok(results)
        return 0
    if args.command == "diff-sets":
        from patchmgr.diffsets import diff_sets

        print(diff_sets(ws, args.first, args.second), end="")
        return 0
    if args.command == "export":
        from patchmgr import export

        export.report(export.export_set(ws, args.set_name))
        return 0
    if args.command == "mcp":
        from patchmgr.mcp import draft

        for line in draft(ws, args.set_name, args.out and args.out.resolve(), args.template, args.branch, args.mails):
            print(f"patchmgr: {line}", file=sys.stderr)
        return 0
    if args.command == "config":
        _write_config(ws, args, show=args.show)
        return 0
    if args.command == "build":
        return _build(ws, args)
    raise AssertionError(args.command)


def _config_params(ws, args, patch_set=None):
    from xpy_ext.config import detect_params

    ps = patch_set or ws.inspect(args.set_name).patch_set
    return ps, detect_params(ws.root, ps.rustc, ps.llvm, args.llvm_config, args.stage0, args.online, args.profile)


def _write_config(ws, args, show: bool = False, quiet_if_not_rustc: bool = False, remember: bool = False,
                  patch_set=None) -> None:
    """Render config.toml.in for the tree and merge it in (or print the result with show).

    With remember, what was written goes into the applied record, so that
    unapply can put the config back as it was.
    """
    from xpy_ext import config
    from xpy_ext.versions import bootstrap_for

    patch_set = patch_set or ws.inspect(args.set_name).patch_set
    row = bootstrap_for(patch_set.rustc)
    if quiet_if_not_rustc and not (ws.root / row.example_file).exists():
        print(f"patchmgr: no {row.example_file} in the tree, so no bootstrap config was written", file=sys.stderr)
        return
    if show:
        _, params = _config_params(ws, args, patch_set)
        rendered, row = config.render_for_tree(ws.root, patch_set.rustc, params)
        path = ws.root / row.config_file
        force = config.forced_keys(args.llvm_config, args.stage0)
        text = config.merge(path.read_text(encoding="utf-8"), rendered, force)[0] if path.exists() else rendered
        print(f"# {path} as patchmgr would write it", file=sys.stderr)
        print(text, end="")
        return
    from patchmgr import state

    path = ws.root / row.config_file
    record = ws.applied_record() if remember else None
    choices = (args.llvm_config, args.stage0, args.online, args.profile)
    key = config.inputs_key(ws.root, patch_set.rustc, choices, patch_set.llvm)
    last = record.extra.get("config_inputs") if record else None
    if last and last["key"] == key and last["result"] == config.digest(path):
        print(f"patchmgr: {path.name} is up to date", file=sys.stderr)
        return
    _, params = _config_params(ws, args, patch_set)
    path_existed = path.exists()
    path, changes, written = config.write_config(ws.root, patch_set.rustc, params,
                                                 config.forced_keys(args.llvm_config, args.stage0))
    for line in changes:
        print(f"patchmgr: {path.name}: {line}", file=sys.stderr)
    if not written:
        print(f"patchmgr: {path.name} is up to date", file=sys.stderr)
    if record is not None:
        if written:
            record.extra["config"] = {"path": str(path), "sha256": config.digest(path), "had_backup": path_existed}
        record.extra["config_inputs"] = {"key": key, "result": config.digest(path)}
        state.save(ws.git_dir, state.APPLIED_FILE, record)


def _build(ws, args) -> int:
    import shlex

    from patchmgr.errors import BuildFailed, WrongState
    from xpy_ext import build, preflight
    from xpy_ext.versions import bootstrap_for

    view = ws.inspect(args.set_name)
    ps, params = _config_params(ws, args, view.patch_set)
    if not view.fully_applied:
        raise WrongState(f"set {ps.name} is not fully applied; run patchmgr apply first")
    row = bootstrap_for(ps.rustc)
    xpy_args = build.command(args.stage, args.jobs, args.paths)
    log = args.log or ws.root / "build" / "patchmgr-build.log"
    if args.dry_run:
        _write_config(ws, args, show=True, patch_set=ps)
        print(f"# then, in {ws.root}:", file=sys.stderr)
        print(shlex.join([sys.executable, "x.py", *xpy_args]))
        return 0
    _write_config(ws, args, patch_set=ps)
    from xpy_ext.config import effective

    used = effective(ws.root, row, params.host)  # what x.py will read, the user's values included
    problems = preflight.check(ws.root, row, ps.rustc, llvm_config=used["llvm_config"],
                               stage0_rustc=used["stage0_rustc"], offline=used["offline"],
                               enzyme=ps.enzyme is not None,
                               stage1_sysroot=build.stage_sysroot(ws.root, params.host, args.stage))
    for problem in problems:
        print(f"patchmgr: preflight: {problem}", file=sys.stderr)
    if problems:
        raise BuildFailed(f"preflight found {len(problems)} problem(s), listed above; fix them and build again")
    print(f"patchmgr: x.py {' '.join(xpy_args)} (full log: {log})", file=sys.stderr)
    result = build.run_build(ws.root, xpy_args, log, enzyme=ps.enzyme is not None, stage=args.stage)
    if result.returncode != 0:
        raise BuildFailed(f"x.py build failed: {result.first_error}; full log: {log}")
    if args.stage >= 1:
        sysroot = build.stage_sysroot(ws.root, params.host, args.stage)
        problems = build.smoke_test(sysroot, enzyme=ps.enzyme is not None)
        if problems:
            raise BuildFailed(f"stage{args.stage} smoke test: {problems[0]}")
        print(f"patchmgr: stage{args.stage} compiler at {sysroot} passed the smoke test", file=sys.stderr)
        if not args.no_link:
            name = args.toolchain or f"patchmgr-{ps.name}-stage{args.stage}"
            print(f"patchmgr: {build.link_toolchain(sysroot, name)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except Conflict as e:
        if e.report:
            print(e.report, file=sys.stderr)
        print(f"patchmgr: error: {e}", file=sys.stderr)
        return e.exit_code
    except PatchmgrError as e:
        print(f"patchmgr: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("patchmgr: interrupted; run patchmgr status, and patchmgr apply --abort if an apply was under way",
              file=sys.stderr)
        return 130
