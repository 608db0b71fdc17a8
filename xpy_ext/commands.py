"""The patchmgr commands that drive x.py: `config`, `build`, and the config step of apply and rebase.

These join the workspace (which set, which tree, the applied record) with
the x.py side (rendering, preflight, the build); the pieces themselves live
in config, preflight and build.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from patchmgr import state
from patchmgr.errors import BadInput, BuildFailed, WrongState
from patchmgr.output import aside, say, show
from patchmgr.series import PatchSet
from patchmgr.workspace import Workspace
from xpy_ext import build, config, preflight
from xpy_ext.versions import bootstrap_for


def build_llvm(patch_set: PatchSet) -> int:
    """The LLVM major the build uses by default: one the pinned Enzyme builds against (the
    newest of those installed, else the newest it names), else the set's own."""
    supported = patch_set.enzyme.llvm if patch_set.enzyme else ()
    if not supported:
        return patch_set.llvm
    installed = [m for m in supported if Path(f"/usr/lib/llvm-{m}/bin/llvm-config").exists()]
    return max(installed or supported)


def _params(ws: Workspace, args, patch_set: PatchSet) -> config.Params:
    return config.detect_params(ws.root, patch_set.rustc, build_llvm(patch_set), args.llvm_config, args.stage0,
                                args.online, args.profile)


def _template(patch_set: PatchSet) -> Path:
    template = patch_set.bootstrap_template()
    if template is None:
        raise BadInput(f"set {patch_set.name} names no bootstrap template (key 'bootstrap' in the manifest), "
                       "so patchmgr does not write config.toml for it")
    return template


def write_for_set(ws: Workspace, args, patch_set: PatchSet) -> None:
    """After apply or rebase: render the set's bootstrap template for the tree and merge it in,
    remembering in the applied record what was written (unapply puts it back) and from what
    inputs (a no-op apply with the same inputs renders nothing). A set without a template
    leaves the config alone."""
    if patch_set.bootstrap is None:
        return
    row = bootstrap_for(patch_set.rustc)
    if not (ws.root / row.example_file).exists():
        say(f"no {row.example_file} in the tree, so no bootstrap config was written")
        return
    _write(ws, args, patch_set, remember=True)


def _write(ws: Workspace, args, patch_set: PatchSet, remember: bool) -> None:
    row = bootstrap_for(patch_set.rustc)
    path = ws.root / row.config_file
    template = _template(patch_set)
    record = ws.applied_record() if remember else None
    choices = (args.llvm_config, args.stage0, args.online, args.profile)
    key = config.inputs_key(ws.root, patch_set.rustc, choices, build_llvm(patch_set), template)
    last = record.config_inputs if record else None
    if last and last.key == key and last.result == config.digest(path):
        say(f"{path.name} is up to date")
        return
    path_existed = path.exists()
    path, changes, written = config.write_config(ws.root, patch_set.rustc, _params(ws, args, patch_set), template,
                                                 config.forced_keys(args.llvm_config, args.stage0))
    for line in changes:
        say(f"{path.name}: {line}")
    if not written:
        say(f"{path.name} is up to date")
    if record is not None:
        if written:
            record.config = state.ConfigWritten(str(path), config.digest(path) or "", path_existed)
        record.config_inputs = state.ConfigInputs(key, config.digest(path))
        state.save_applied(ws.git_dir, record)


def _show(ws: Workspace, args, patch_set: PatchSet) -> None:
    """Print the config as patchmgr would write it, changing nothing."""
    rendered, row = config.render_for_tree(ws.root, patch_set.rustc, _params(ws, args, patch_set), _template(patch_set))
    path = ws.root / row.config_file
    force = config.forced_keys(args.llvm_config, args.stage0)
    text = config.merge(path.read_text(encoding="utf-8"), rendered, force)[0] if path.exists() else rendered
    aside(f"# {path} as patchmgr would write it")
    show(text, end="")


def config_command(ws: Workspace, args) -> None:
    """`patchmgr config [--show]`."""
    patch_set = ws.inspect(args.set_name).patch_set
    if args.show:
        _show(ws, args, patch_set)
    else:
        _write(ws, args, patch_set, remember=False)


def _no_template_warning(ws: Workspace, patch_set: PatchSet, config_file: str) -> str:
    """What x.py will read when the set has no bootstrap template: build writes no config, so
    the tree's own file as it is, or, where there is none, x.py's defaults (no Enzyme)."""
    what = (f"x.py reads the tree's own {config_file} as it is" if (ws.root / config_file).exists()
            else f"no {config_file} will exist and x.py builds with its defaults")
    return (f"warning: set {patch_set.name} names no bootstrap template (key 'bootstrap' in the manifest), "
            f"so patchmgr writes no config: {what}")


def build_command(ws: Workspace, args) -> None:
    """`patchmgr build`: config, preflight, x.py with progress, the smoke test, the toolchain link."""
    view = ws.inspect(args.set_name)
    ps = view.patch_set
    if not view.fully_applied:
        raise WrongState(f"set {ps.name} is not fully applied; run patchmgr apply first")
    params = _params(ws, args, ps)
    row = bootstrap_for(ps.rustc)
    xpy_args = build.xpy_arguments(args.stage, args.jobs, args.paths)
    log = args.log or ws.root / "build" / "patchmgr-build.log"
    if ps.bootstrap is None:
        say(_no_template_warning(ws, ps, row.config_file))
    if args.dry_run:
        if ps.bootstrap is not None:
            _show(ws, args, ps)
        aside(f"# then, in {ws.root}:")
        show(shlex.join([sys.executable, "x.py", *xpy_args]))
        return
    if ps.bootstrap is not None:
        _write(ws, args, ps, remember=False)
    used = config.effective(ws.root, row, params.host)  # what x.py will read, the user's values included
    problems = preflight.check(ws.root, row, ps.rustc, llvm_config=used["llvm_config"],
                               stage0_rustc=used["stage0_rustc"], offline=used["offline"],
                               enzyme=ps.enzyme is not None, enzyme_llvm=ps.enzyme.llvm if ps.enzyme else (),
                               stage1_sysroot=build.stage_sysroot(ws.root, params.host, args.stage))
    for problem in problems:
        say(f"preflight: {problem}")
    if problems:
        raise BuildFailed(f"preflight found {len(problems)} problem(s), listed above; fix them and build again")
    say(f"x.py {' '.join(xpy_args)} (full log: {log})")
    result = build.run_build(ws.root, xpy_args, log, enzyme=ps.enzyme is not None, stage=args.stage)
    if result.returncode != 0:
        raise BuildFailed(f"x.py build failed: {result.first_error}; full log: {log}")
    if args.stage >= 1:
        sysroot = build.stage_sysroot(ws.root, params.host, args.stage)
        failures = build.smoke_test(sysroot, enzyme=ps.enzyme is not None)
        if failures:
            raise BuildFailed(f"stage{args.stage} smoke test: {failures[0]}")
        say(f"stage{args.stage} compiler at {sysroot} passed the smoke test")
        if not args.no_link:
            say(build.link_toolchain(sysroot, args.toolchain or f"patchmgr-{ps.name}-stage{args.stage}"))
