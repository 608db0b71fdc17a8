"""The `patchmgr` command: argument parsing and error reporting, nothing else."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from patchmgr import __version__
from patchmgr.errors import EXIT_CODES, Conflict, PatchmgrError

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

    p = command("apply", "apply the patch set for this tree's base onto patch branches (patchmgr/<set>)")
    with_set(p)
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

    from patchmgr.workspace import Workspace

    ws = Workspace.open(args.root.resolve(), manifest)
    if args.command == "apply":
        from patchmgr import apply

        if args.mode == "--abort":
            apply.abort(ws)
        elif args.mode:
            apply.resume(ws, args.mode)
        else:
            apply.apply(ws, args.set_name)
        return 0
    if args.command == "unapply":
        from patchmgr.unapply import unapply

        unapply(ws, args.set_name, args.force)
        return 0
    if args.command == "status":
        from patchmgr import status

        op = ws.op_record()
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
    raise AssertionError(args.command)


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
