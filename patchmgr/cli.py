"""The `patchmgr` command: argument parsing, dispatch and error reporting, nothing else.

Each subcommand declares, once, the handler that does its work ('module:function',
imported only when that command runs, so start-up stays small), what the
handler needs (the patches directory, the manifest, or the checkout) and
whether it changes the checkout (then it runs under the checkout's lock).
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Callable
from pathlib import Path

from patchmgr import __version__, output
from patchmgr.errors import EXIT_CODES, EXIT_OS, Conflict, PatchmgrError, UsageError

EPILOG = "exit codes:\n" + "\n".join(f"  {code:>2}  {name}: {meaning}" for code, (name, meaning) in EXIT_CODES.items())
#: the end of every command's --help: the exit codes are the same for all, so they are listed once
SEE_MAIN_HELP = "exit codes: patchmgr --help lists them (the same for every command)"
#: commands for which --set means nothing (diff-sets names its two sets as arguments)
NO_SET = frozenset({"diff-sets"})

#: a few typical command lines per command, shown by its --help
EXAMPLES: dict[str, tuple[str, ...]] = {
    "apply": ("patchmgr apply", "patchmgr -C ~/src/rust --patches ~/my-series apply --no-config"),
    "unapply": ("patchmgr unapply", "patchmgr unapply --force   # keep edited commits under refs/patchmgr/backup/"),
    "status": ("patchmgr status", "patchmgr status --json | jq .state"),
    "check": ("patchmgr check", "patchmgr check --set autodiff-1.63.0 --keep"),
    "lint": ("patchmgr --patches ~/my-series lint", "patchmgr lint --set autodiff-1.63.0"),
    "export": ("patchmgr export --patches ~/src/patchmgr/patches", "patchmgr export --quilt ../debian-patches"),
    "refresh": ("patchmgr refresh", "patchmgr refresh 0002-Add-the-autodiff-trait.patch"),
    "new": ("patchmgr new 'docs: the autodiff page'",
            "patchmgr new 'codegen: the Enzyme glue' -- compiler/rustc_codegen_llvm/src/back/enzyme.rs"),
    "rebase": ("patchmgr rebase --onto 1.64.0", "patchmgr rebase --dry-run --onto upstream/master --new-set ad-next",
               "patchmgr rebase --pin src/llvm-project/enzyme=v0.0.30"),
    "diff-sets": ("patchmgr diff-sets autodiff-1.63.0 autodiff-1.64.0",),
    "init": ("patchmgr init ~/my-series",),
    "import": ("patchmgr --patches ~/my-series import upstream/master..my-branch --set mine-1.63.0",
               "patchmgr import 4b91a6ea..my-llvm --repo src/llvm-project --set mine-1.63.0",
               "patchmgr import debian/patches/series --set deb-1.63.0 --llvm 14   # a stand-in llvm-project says no LLVM"),
    "mcp": ("patchmgr mcp --out mcp-autodiff", "patchmgr mcp --branch autodiff-draft --format-patch mails/"),
    "config": ("patchmgr config --show", "patchmgr config --llvm-config none"),
    "build": ("patchmgr build --dry-run", "patchmgr build --stage 1 -j 8 library/std"),
}


def global_options(parser: argparse.ArgumentParser, after_command: bool) -> None:
    """-C, --patches, --set, -q, -v: on the main parser and again on every command's, so they work
    before or after the command name. After it their default is SUPPRESS: argparse copies a
    command's defaults over the main parser's values, which would undo one given before."""
    def default(value):
        return argparse.SUPPRESS if after_command else value
    g = parser.add_argument_group("global options (before or after the command name)")
    g.add_argument("-C", dest="root", type=Path, default=default(Path.cwd()), metavar="DIR",
                   help="the rustc checkout (default: the one containing the current directory)")
    g.add_argument("--patches", type=Path, metavar="DIR", default=default(None),
                   help="patches directory with series.toml (default: $PATCHMGR_PATCHES, else the one "
                        "patchmgr init recorded for the checkout, else the series installed with patchmgr)")
    g.add_argument("--set", dest="set_name", metavar="NAME", default=default(None),
                   help="the patch set to use instead of the one detected from the tree's base "
                        "(import: the set to create or update)")
    verbosity = g.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", default=default(False),
                           help="print only results and errors, no progress")
    verbosity.add_argument("-v", "--verbose", action="store_true", default=default(False),
                           help="also print each git command patchmgr runs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchmgr", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Carry a versioned patch series on a rustc checkout and its src/llvm-project submodule.")
    parser.add_argument("--version", action="version", version=f"patchmgr {__version__}")
    global_options(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, handler: str, needs: str = "tree", changes_tree: bool = False,
                writes_patches: bool | Callable[[argparse.Namespace], bool] = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=command_epilog(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler, needs=needs, changes_tree=changes_tree, writes_patches=writes_patches)
        global_options(p, after_command=True)
        return p

    def config_options(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group("bootstrap config (the set's template, rendered and merged into config.toml)")
        g.add_argument("--llvm-config", default="auto", metavar="PATH",
                       help="external LLVM: a path, 'auto' (/usr/lib/llvm-<N>/bin/llvm-config for an LLVM the pinned "
                            "Enzyme builds against, else the set's; or one on PATH) or 'none' (build src/llvm-project)")
        g.add_argument("--stage0", default="auto", metavar="WHERE",
                       help="'auto' (a system rustc of the tree's version for local-rebuild, else download), "
                            "'download', or a bin directory with rustc and cargo")
        g.add_argument("--online", action="store_true", help="do not force vendored crates")
        g.add_argument("--profile", help="bootstrap profile (src/bootstrap/defaults)")

    p = command("init", "remember the patches directory this checkout works with (in its .git/config), "
                "so no command needs --patches", "patchmgr.patchesdir:init_command", needs="checkout")
    p.add_argument("directory", type=Path, metavar="DIR",
                   help="your patches directory: one with series.toml, or a new or empty one that patchmgr import fills")

    p = command("apply", "apply the patch set for this tree's base onto patch branches (patchmgr/<set>)",
                "patchmgr.apply:command", changes_tree=True)
    p.add_argument("--no-config", action="store_true", help="do not write the bootstrap config")
    config_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--continue", dest="mode", action="store_const", const="--continue",
                      help="after resolving a conflict (and git add), finish the apply")
    mode.add_argument("--skip", dest="mode", action="store_const", const="--skip", help="drop the conflicting patch and go on")
    mode.add_argument("--abort", dest="mode", action="store_const", const="--abort",
                      help="put every repository back exactly where it was before the apply (also after a kill)")

    p = command("unapply", "remove the patch set: every repository back where apply found it, Enzyme submodule included",
                "patchmgr.unapply:command", changes_tree=True)
    p.add_argument("--force", action="store_true",
                   help="also when the patch branches hold other commits; they are saved under refs/patchmgr/backup/ first")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--continue", dest="mode", action="store_const", const="--continue",
                      help="finish an unapply that was interrupted")
    mode.add_argument("--abort", dest="mode", action="store_const", const="--abort",
                      help="undo an interrupted unapply: the set applied again, exactly as before")

    p = command("status", "show the base, the set, and per repository the applied, pending and drifted patches",
                "patchmgr.status:command")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = command("check", "apply the set in scratch repositories (never in your tree) and report each patch",
                "patchmgr.check:command")
    p.add_argument("--keep", action="store_true", help="keep the scratch repositories (bare, HEAD at the series) for inspection")

    command("lint", "validate the manifest and every patch of every set (or of --set NAME), without a tree",
            "patchmgr.lint:command", needs="manifest")

    p = command("export", "write the patch branches back to the set's patch files and manifest, deterministically",
                "patchmgr.export:command", changes_tree=True,
                writes_patches=lambda args: not args.quilt)  # --quilt writes only its DIR
    p.add_argument("--quilt", type=Path, metavar="DIR",
                   help="instead, write one repository's patch branch as a quilt series (series and one patch per "
                        "commit, headers as imported) into DIR: new, empty, or one export --quilt wrote")
    p.add_argument("--repo", default=".", metavar="PATH", help="with --quilt: the repository (default '.')")

    p = command("refresh", "fold the uncommitted changes of tracked files into the applied patch that touched "
                "them (or PATCH), rewriting the later commits, and write the patch files",
                "patchmgr.refresh:refresh_command", changes_tree=True, writes_patches=True)
    p.add_argument("patch", nargs="?", metavar="PATCH",
                   help="the patch to fold into: its file name or its path under the patches directory "
                        "(default: the one patch that touched the changed files)")

    p = command("new", "make the uncommitted changes of tracked files (or the files named) a new patch at the end "
                "of the set, and write its file", "patchmgr.refresh:new_command", changes_tree=True,
                writes_patches=True)
    p.add_argument("name", metavar="NAME", help="the new patch's commit subject (its file is named from it)")
    p.add_argument("-m", "--message", metavar="TEXT", help="the whole commit message instead of NAME")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="after --: exactly these files (untracked ones too; untracked files are never taken "
                        "unless named); default: every tracked file with changes")

    p = command("rebase", "carry the set onto a newer upstream, patch by patch; writes a new set and a report, "
                "then applies it (or, with --pin, move the set's pinned Enzyme and carry its patches)",
                "patchmgr.rebase:command", changes_tree=True, writes_patches=True)
    p.add_argument("--onto", metavar="REV|VERSION",
                   help="the new base: a revision of the checkout, or a rustc version (tag VERSION, else its "
                        "Debian source package is committed on top of the old base and tagged)")
    p.add_argument("--new-set", metavar="NAME", help="name of the new set (default: the old name with the new version)")
    p.add_argument("--llvm", type=int, metavar="N", help="LLVM major of the new base, when its llvm-project does not say")
    p.add_argument("--pin", metavar="PATH=COMMIT",
                   help="instead of --onto: move the set's pinned repository at PATH (src/llvm-project/enzyme) to "
                        "COMMIT (an id, full or abbreviated, or a tag of its URL) and carry its patches onto it; "
                        "rewrites the same set in place, with a report (docs/rebase.md, Moving a pin)")
    p.add_argument("--pin-url", metavar="URL", help="with --pin: the URL the new commit comes from (default: the pin's)")
    p.add_argument("--pin-llvm", metavar="N[,N]",
                   help="with --pin: the LLVM majors the new commit builds against, when its CI workflows do not say")
    p.add_argument("--no-config", action="store_true", help="do not write the bootstrap config after applying the new set")
    p.add_argument("--dry-run", action="store_true",
                   help="replay in scratch clones only, never stopping, and write the report (your tree, branches "
                        "and patches stay as they are; the set may be applied)")
    p.add_argument("--report", metavar="FILE", help="with --dry-run: where the report goes "
                                                    "(default: rebase-dry-run-<new set>.md in the patches directory)")
    p.add_argument("--proposals", action="store_true",
                   help="with --dry-run: also a proposal (likely place and candidate) for each hunk that would stop, "
                        "as a real stop writes one; slower, minutes on a large series")
    p.add_argument("--fuzz", type=int, default=0, metavar="N",
                   help="a hunk may be placed with up to N outer context lines changed upstream, where its removed "
                        "lines match at one place only (default 0: exact)")
    p.add_argument("--verify", action="store_true",
                   help="once the new set is applied, x.py check the crates its patches touch (Enzyme off, and "
                        "--cfg llvm_enzyme for a set that pins Enzyme); a patch that does not compile is named "
                        "in the report")
    p.add_argument("--drop-superseded", action="store_true",
                   help="leave out, without stopping, a patch whose options, config keys and new files upstream "
                        "already defines")
    config_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--continue", dest="mode", action="store_const", const="--continue",
                      help="after resolving a conflict (and git add), go on with the next patch")
    mode.add_argument("--skip", dest="mode", action="store_const", const="--skip",
                      help="leave the conflicting patch out of the new set and go on")
    mode.add_argument("--abort", dest="mode", action="store_const", const="--abort",
                      help="put every repository back exactly where it was before the rebase (also after a kill)")
    p.add_argument("--note", metavar="TEXT", help="with --continue or --skip: why, recorded in the rebase report")

    p = command("diff-sets", "show what changed between two patch sets, patch by patch (git range-diff)",
                "patchmgr.diffsets:command")
    p.add_argument("first", metavar="A")
    p.add_argument("second", metavar="B")

    p = command("import", "make a set's patch list from a revision range, a directory of .patch files, or a quilt series",
                "patchmgr.importer:command", needs="patches", writes_patches=True)
    p.add_argument("source", help="BASE..BRANCH (in the checkout; a commit that only moves a submodule's gitlink "
                                  "imports that submodule's commits as its own list), a directory of format-patch "
                                  "files, or a quilt series file")
    p.add_argument("--repo", default=".", metavar="PATH",
                   help="the repository the patches are for (default '.'); a BASE..BRANCH range is looked up in "
                        "that repository: --repo src/llvm-project imports a range of llvm-project's own commits")
    g = p.add_argument_group("a new set's base", "default: read from the tree the set starts from (version or "
                             "src/version,\ngit-commit-hash or the commit, src/llvm-project's CMake or .gitmodules);\n"
                             "an option given wins")
    g.add_argument("--rustc", metavar="VERSION", help="upstream rustc version")
    g.add_argument("--commit", metavar="HASH", help="full upstream commit hash")
    g.add_argument("--llvm", type=int, metavar="N", help="LLVM major")

    p = command("mcp", "write a Major Change Proposal draft from the set's cover letter and the series itself; "
                "optionally a prototype branch and a numbered mail series", "patchmgr.mcp:command", changes_tree=True)
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

    p = command("config", "write (or --show) the bootstrap config for this tree, from the set's template",
                "xpy_ext.commands:config_command", changes_tree=True)
    p.add_argument("--show", action="store_true", help="print the merged result and change nothing")
    config_options(p)

    p = command("build", "build the patched compiler with x.py: progress line, full log, first error, smoke test",
                "xpy_ext.commands:build_command", changes_tree=True)
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


def command_epilog(name: str) -> str:
    """A command's --help ends with its examples and where the exit codes are."""
    examples = "\n".join(f"  {line}" for line in EXAMPLES.get(name, ()))
    return (f"examples:\n{examples}\n\n" if examples else "") + SEE_MAIN_HELP


def check_set_option(args: argparse.Namespace) -> None:
    """Refuse --set where it means nothing, and require it where the command needs it; a
    usage error, like argparse's own, before anything is read."""
    if args.set_name is not None and args.command in NO_SET:
        raise UsageError(f"{args.command} takes its sets as arguments, not --set; "
                         f"see patchmgr {args.command} --help")
    if args.set_name is None and args.command == "import":
        raise UsageError("import needs --set NAME, the set to create or update")


def run(args: argparse.Namespace) -> int:
    """Load what the command needs (the manifest; the checkout, locked for commands that
    change it) and call its handler, named in the parser as 'module:function'."""
    import importlib

    from patchmgr.base import find_root
    from patchmgr.patchesdir import locate, refuse_installed
    from patchmgr.series import load_manifest

    check_set_option(args)
    module, _, name = args.handler.partition(":")
    handler = getattr(importlib.import_module(module), name)
    env = os.environ.get("PATCHMGR_PATCHES")
    root = None
    if args.needs in ("tree", "checkout"):
        root = find_root(args.root.resolve())
    elif not (args.patches or env):
        try:
            root = find_root(args.root.resolve())  # a checkout may remember its patches directory
        except PatchmgrError:
            pass
    if args.needs == "checkout":
        return handler(root, args) or 0
    located = locate(args.patches, env, root)
    args.patches_from = located.how
    if args.writes_patches(args) if callable(args.writes_patches) else args.writes_patches:
        refuse_installed(located, args.command)
    patches = located.path
    if args.needs == "patches":
        return handler(patches, args) or 0
    manifest = load_manifest(patches)
    if args.set_name is not None:
        manifest.get(args.set_name)  # a typo is answered here, with the close names, whatever is applied
    if args.needs == "manifest":
        return handler(manifest, args) or 0
    from patchmgr.workspace import Workspace

    assert root is not None
    ws = Workspace(root, manifest)
    if not args.changes_tree:
        return handler(ws, args) or 0
    with ws.lock(args.command):
        return handler(ws, args) or 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output.set_level(output.QUIET if args.quiet else output.VERBOSE if args.verbose else output.NORMAL)
    try:
        return run(args)
    except PatchmgrError as e:
        if isinstance(e, Conflict) and e.report:
            output.report(e.report)
        output.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        output.error("interrupted; run patchmgr status, then the --continue or --abort of the command that was running")
        return 130
    except BrokenPipeError:
        # a write that does not go through output (x.py's progress line) to a reader that is gone:
        # quiet, with the status a shell shows for git ended by SIGPIPE
        output.silence_all()
        return 128 + signal.SIGPIPE
    except OSError as e:
        # the file system refused (permissions, no space, a directory where a file goes): one line
        # naming the path, not a traceback
        where = f": {e.filename}" if e.filename else ""
        output.error(f"{e.strerror or e}{where}; fix that, then run the command again (patchmgr status shows "
                     "where the tree stands)")
        return EXIT_OS
