"""rebase finds a patch superseded by upstream when the new base has each piece it adds in upstream's
own form: a trait method on a supertrait, an impl's method in an impl of another trait, a feature
gate in the newer feature table, a builtin macro's registration, a new file at its path or as the
same module elsewhere in its crate. Some pieces only: the conflict stop says which (partly upstream).

The series, on a base shaped like rustc's backend and builtin macros:
1. a backend trait AutoDiffMethods (a new file) extending WriteBackendMethods with `fn autodiff`;
2. the #[autodiff] builtin macro: its module (a new file and a submodule), its registration, the
   `autodiff` feature gate;
3. the LLVM backend's impl of AutoDiffMethods, its module back/autodiff.rs and -Z autodiff-print-ir;
4. -Z autodiff, and a method `enzyme_loaded` added to WriteBackendMethods;
5. the LLVM backend's `enzyme_loaded`.
Upstream's new base ("defines") has pieces 1 to 4 its own way (fn autodiff on WriteBackendMethods and
in the LLVM backend's impl of it, builder/autodiff.rs, the macro, the gate in unstable.rs, an
`autodiff` option of another type) but not -Z autodiff-print-ir nor enzyme_loaded; the other new base
("lacks") rewrites the same lines and defines none of it, only names that a looser reading would take
for them (fn autodiff in a trait that is not a supertrait, a builder/autodiff.rs defining nothing the
patch's module does, an autodiff_fallback gate and macro).
"""

from __future__ import annotations

import pytest
from fixture import commit_all, commit_upstream, git, hermetic_env, series_as_set, write

from patchmgr import surface
from patchmgr.patchfile import parse_patch

OLD = "autodiff-1.63.0"
WRITE = "compiler/rustc_codegen_ssa/src/traits/write.rs"
TRAITS_MOD = "compiler/rustc_codegen_ssa/src/traits/mod.rs"
NEW_TRAIT = "compiler/rustc_codegen_ssa/src/traits/autodiff.rs"
LLVM_LIB = "compiler/rustc_codegen_llvm/src/lib.rs"
LLVM_MODULE = "compiler/rustc_codegen_llvm/src/back/autodiff.rs"
UPSTREAM_MODULE = "compiler/rustc_codegen_llvm/src/builder/autodiff.rs"
MACROS = "compiler/rustc_builtin_macros/src/lib.rs"
MACRO_MODULE = "compiler/rustc_builtin_macros/src/autodiff.rs"
MACRO_RULES = "compiler/rustc_builtin_macros/src/autodiff/rules.rs"
ACTIVE = "compiler/rustc_feature/src/active.rs"
UNSTABLE = "compiler/rustc_feature/src/unstable.rs"
OPTIONS = "compiler/rustc_session/src/options.rs"

WRITE_RS = """use crate::back::write::{CodegenContext, ModuleConfig};

pub trait WriteBackendMethods: 'static + Sized + Clone {
    type Module: Send + Sync;
    fn run_link(
        cgcx: &CodegenContext<Self>,
        modules: Vec<ModuleCodegen<Self::Module>>,
    ) -> Result<ModuleCodegen<Self::Module>, FatalError>;
    fn print_pass_timings(&self);
}
"""
TRAITS_MOD_RS = "mod asm;\nmod write;\n\npub use self::asm::AsmMethods;\npub use self::write::WriteBackendMethods;\n"
LLVM_LIB_RS = """mod back {
    pub mod write;
}

impl WriteBackendMethods for LlvmCodegenBackend {
    type Module = ModuleLlvm;
    fn run_link(
        cgcx: &CodegenContext<Self>,
        modules: Vec<ModuleCodegen<Self::Module>>,
    ) -> Result<ModuleCodegen<Self::Module>, FatalError> {
        back::write::link(cgcx, modules)
    }
    fn print_pass_timings(&self) {
        unsafe { llvm::LLVMRustPrintPassTimings() }
    }
}
"""
MACROS_RS = """mod asm;
mod test;

pub fn register_builtin_macros(resolver: &mut dyn ResolverExpand) {
    register_attr! {
        bench: test::expand_bench,
        test: test::expand_test,
    }
}
"""
ACTIVE_RS = """declare_features! (
    /// Allows using the `amdgpu-kernel` ABI.
    (active, abi_amdgpu_kernel, "1.29.0", Some(51575), None),
    (active, abi_ptx, "1.15.0", Some(38788), None),
);
"""
OPTIONS_RS = """options! {
    UnstableOptions, Z_OPTIONS, dbopts, "Z", "unstable",

    asm_comments: bool = (false, parse_bool, [TRACKED],
        "generate comments into the assembly (may change behavior) (default: no)"),
    binary_dep_depinfo: bool = (false, parse_bool, [TRACKED],
        "include artifacts (sysroot, crate dependencies) used during compilation in dep-info"),
}
"""

AUTODIFF_METHOD = """    fn autodiff(
        cgcx: &CodegenContext<Self>,
        module: &ModuleCodegen<Self::Module>,
        config: &ModuleConfig,
    ) -> Result<(), FatalError>;
"""

SERIES = [
    ("rustc_codegen_ssa: add the AutoDiffMethods backend trait", [
        (NEW_TRAIT, None, "use super::WriteBackendMethods;\n\n/// What a backend provides for -Z autodiff.\n"
                          "pub trait AutoDiffMethods: WriteBackendMethods {\n" + AUTODIFF_METHOD + "}\n"),
        (TRAITS_MOD, "mod asm;\n", "mod asm;\nmod autodiff;\n"),
        (TRAITS_MOD, "pub use self::asm::AsmMethods;\n",
         "pub use self::asm::AsmMethods;\npub use self::autodiff::AutoDiffMethods;\n")]),
    ("builtin_macros: add the #[autodiff] attribute behind feature(autodiff)", [
        (MACRO_MODULE, None, "mod rules;\n\npub fn expand(ecx: &mut ExtCtxt<'_>, item: Annotatable) -> Vec<Annotatable> {\n"
                             "    rules::check(ecx, &item);\n    vec![item]\n}\n"),
        (MACRO_RULES, None, "pub(crate) enum Mode {\n    Forward,\n    Reverse,\n}\n\n"
                            "pub(crate) fn check(ecx: &mut ExtCtxt<'_>, item: &Annotatable) {}\n"),
        (MACROS, "mod asm;\n", "mod asm;\nmod autodiff;\n"),
        (MACROS, "        bench: test::expand_bench,\n",
         "        autodiff: autodiff::expand,\n        bench: test::expand_bench,\n"),
        (ACTIVE, "    (active, abi_ptx,", "    /// Allows `#[autodiff]`.\n    (active, autodiff, \"1.63.0\", None, None),\n"
                                        "    (active, abi_ptx,")]),
    ("codegen: differentiate with Enzyme in the LLVM backend", [
        (LLVM_MODULE, None, "use crate::LlvmCodegenBackend;\n\npub(crate) fn enzyme_library() -> PathBuf {\n"
                            "    PathBuf::from(\"LLVMEnzyme-14\")\n}\n\n"
                            "pub(crate) fn differentiate(module: &ModuleLlvm) -> Result<(), FatalError> {\n"
                            "    run_enzyme(module)\n}\n"),
        (LLVM_LIB, "    pub mod write;\n", "    pub mod autodiff;\n    pub mod write;\n"),
        (LLVM_LIB, "        unsafe { llvm::LLVMRustPrintPassTimings() }\n    }\n}\n",
         "        unsafe { llvm::LLVMRustPrintPassTimings() }\n    }\n}\n\nimpl AutoDiffMethods for LlvmCodegenBackend {\n"
         "    fn autodiff(\n        cgcx: &CodegenContext<Self>,\n        module: &ModuleCodegen<Self::Module>,\n"
         "        config: &ModuleConfig,\n    ) -> Result<(), FatalError> {\n"
         "        back::autodiff::differentiate(&module.module_llvm)\n    }\n}\n"),
        (OPTIONS, "    binary_dep_depinfo:", "    autodiff_print_ir: bool = (false, parse_bool, [UNTRACKED],\n"
                                          "        \"print the IR that Enzyme fails on (default: no)\"),\n"
                                          "    binary_dep_depinfo:")]),
    ("rustc_codegen_ssa: -Z autodiff, and a backend hook that tells whether Enzyme is loaded", [
        (OPTIONS, "    autodiff_print_ir:", "    autodiff: bool = (false, parse_bool, [TRACKED],\n"
                                         "        \"differentiate with Enzyme (default: no)\"),\n    autodiff_print_ir:"),
        (WRITE, "    fn print_pass_timings(&self);\n",
         "    fn print_pass_timings(&self);\n    fn enzyme_loaded(&self) -> bool;\n")]),
    ("codegen: the LLVM backend tells whether Enzyme is loaded", [
        (LLVM_LIB, "        unsafe { llvm::LLVMRustPrintPassTimings() }\n    }\n",
         "        unsafe { llvm::LLVMRustPrintPassTimings() }\n    }\n    fn enzyme_loaded(&self) -> bool {\n"
         "        back::autodiff::enzyme_library().exists()\n    }\n")]),
]


def rebuilt_series(world) -> None:
    """The base with the backend's files, and the series above on it as the set's patches."""
    env, up = world.env, world.upstream
    for path, text in [(WRITE, WRITE_RS), (TRAITS_MOD, TRAITS_MOD_RS), (LLVM_LIB, LLVM_LIB_RS), (MACROS, MACROS_RS),
                       (ACTIVE, ACTIVE_RS), (OPTIONS, OPTIONS_RS)]:
        write(up / path, text)
    base = commit_upstream(up, "Rust 1.63.0 with the backend's files", env)
    series_as_set(world, OLD, base, SERIES, "superseded-series")


def new_base(world, defines: bool) -> None:
    """Upstream's next release, in one commit: the lines the series touches rewritten (so that its
    patches conflict), and with `defines` each piece of patches 1 to 4 but -Z autodiff-print-ir and
    enzyme_loaded, in upstream's own form; without, near misses only."""
    up = world.upstream
    write(up / WRITE, WRITE_RS.replace("    fn print_pass_timings(&self);\n",
                                       "    fn print_pass_timings(&self, out: &mut String);\n"
                                       + (AUTODIFF_METHOD if defines else ""))
          + ("" if defines else "\npub trait Differentiate {\n    fn autodiff(&self);\n}\n"))
    write(up / TRAITS_MOD, TRAITS_MOD_RS.replace("mod asm;\n", "mod asm_builder;\n")
          .replace("pub use self::asm::AsmMethods;", "pub use self::asm_builder::{AsmBuilderMethods, AsmMethods};"))
    impl = LLVM_LIB_RS.split("\n\n", 1)[1].replace("LLVMRustPrintPassTimings() }", "LLVMRustPrintPassTimings(out) }")
    if defines:
        impl = impl.replace("    fn print_pass_timings", "    fn autodiff(\n        cgcx: &CodegenContext<Self>,\n"
                            "        module: &ModuleCodegen<Self::Module>,\n        config: &ModuleConfig,\n"
                            "    ) -> Result<(), FatalError> {\n        builder::autodiff::differentiate(module, cgcx)\n"
                            "    }\n    fn print_pass_timings")
        write(up / UPSTREAM_MODULE, "fn generate_enzyme_call() {}\n\npub(crate) fn differentiate<'ll>(\n"
                                    "    module: &'ll ModuleCodegen<ModuleLlvm>,\n) -> Result<(), FatalError> {\n"
                                    "    Ok(())\n}\n")
        write(up / MACRO_MODULE, "mod llvm_enzyme {\n    pub(crate) fn expand(ecx: &mut ExtCtxt<'_>) {}\n}\n"
                                 "pub(crate) use llvm_enzyme::expand;\n")
    else:
        write(up / UPSTREAM_MODULE, "fn generate_enzyme_call() {}\n")
    write(up / LLVM_LIB, "mod back {\n    pub mod lto;\n    pub mod write;\n}\nmod builder;\n\n" + impl)
    registered = "        autodiff: autodiff::expand,\n" if defines else "        autodiff_fallback: autodiff::fallback,\n"
    write(up / MACROS, MACROS_RS.replace("mod asm;\n", "mod alloc_error_handler;\nmod asm;\n" + ("mod autodiff;\n" if defines else ""))
          .replace("        bench: test::expand_bench,\n", "        alloc_error_handler: alloc_error_handler::expand,\n"
                   + registered + "        bench: test::expand,\n"))
    (up / ACTIVE).unlink()
    write(up / UNSTABLE, "declare_features! (\n    (unstable, abi_ptx, \"1.15.0\", Some(38788)),\n"
          + ("    (unstable, autodiff, \"1.85.0\", Some(124509)),\n" if defines else
             "    /// Allows `#[autodiff]` to fall back.\n    (unstable, autodiff_fallback, \"1.85.0\", None),\n")
          + "    (unstable, abi_unadjusted, \"1.16.0\", None),\n);\n")
    option = "    autodiff: Vec<AutoDiff> = (Vec::new(), parse_autodiff, [TRACKED],\n        \"a list of autodiff flags\"),\n"
    write(up / OPTIONS, OPTIONS_RS.replace("(may change behavior) (default: no)", "(may change behavior)")
          .replace("used during compilation in dep-info", "in dep-info (default: no)")
          .replace("    binary_dep_depinfo:", (option if defines else "") + "    binary_dep_depinfo:"))
    write(up / "src/version", "1.85.0\n")
    commit_upstream(up, "Import rustc 1.85.0", world.env)
    world.git("fetch", "-q", "origin")


def line_of(world, path: str, text: str) -> int:
    """The line of upstream's `path` that starts with `text` (where the finding must point)."""
    lines = (world.upstream / path).read_text().split("\n")
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


def label(world, n: int) -> str:
    return f"{OLD}/rust/" + next(p.name for p in (world.patches / OLD / "rust").iterdir() if p.name.startswith(f"{n:04d}-"))


def outcomes(world, *options: str) -> dict[str, str]:
    """label -> outcome cell of the dry run's report."""
    out = world.tmp / "report.md"
    res = world.run("rebase", "--dry-run", *options, "--onto", "origin/main", "--report", str(out))
    assert res.returncode == 0, res.stderr
    return {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in out.read_text().splitlines()
            if line.startswith(f"| {OLD}/rust/")}


@pytest.fixture
def defines(world):
    rebuilt_series(world)
    new_base(world, defines=True)
    return world


def expected_findings(world) -> tuple[str, str, str, str]:
    """The findings of patches 1 to 4 onto the base that defines their pieces, from where upstream has them."""
    method = line_of(world, WRITE, "    fn autodiff(")
    first = (f"superseded by upstream (AutoDiffMethods::autodiff as WriteBackendMethods::autodiff in {WRITE}:{method}; "
             f"new file {NEW_TRAIT} holds only trait AutoDiffMethods, found above)")
    second = (f"superseded by upstream (feature autodiff in {UNSTABLE}:{line_of(world, UNSTABLE, '    (unstable, autodiff,')}; "
              f"builtin macro autodiff in {MACROS}:{line_of(world, MACROS, '        autodiff:')}; "
              f"new file {MACRO_MODULE} exists upstream; "
              f"new file {MACRO_RULES}, a submodule of {MACRO_MODULE}, which upstream has)")
    third = (f"partly upstream (LlvmCodegenBackend::autodiff (impl AutoDiffMethods) as LlvmCodegenBackend::autodiff "
             f"(impl WriteBackendMethods) in {LLVM_LIB}:{line_of(world, LLVM_LIB, '    fn autodiff(')}; "
             f"new file {LLVM_MODULE} as {UPSTREAM_MODULE} (module autodiff, both define differentiate); "
             f"not upstream: -Z autodiff-print-ir)")
    fourth = (f"partly upstream (-Z autodiff in {OPTIONS}:{line_of(world, OPTIONS, '    autodiff:')}; "
              f"not upstream: WriteBackendMethods::enzyme_loaded)")
    return first, second, third, fourth


def test_superseded_where_upstream_defines_every_piece_its_own_way(defines):
    world = defines
    rows = outcomes(world)
    first, second, third, fourth = expected_findings(world)
    assert rows[label(world, 1)].startswith(first + ": the rebase stops here"), rows
    assert rows[label(world, 2)].startswith(second + ": the rebase stops here"), rows
    # some pieces upstream, one not: a plain conflict stop, whose finding lists both
    assert rows[label(world, 3)].startswith(third + ": the rebase stops here: "), rows
    assert "hunk does not apply" in rows[label(world, 3)], rows
    # the option upstream has is not the whole patch: not superseded
    assert rows[label(world, 4)].startswith(fourth + ": the rebase stops here: "), rows
    # a method upstream does not have: nothing found, a plain conflict
    assert rows[label(world, 5)].startswith("conflict: the rebase stops here: "), rows


def test_drop_superseded_drops_only_the_whole_ones(defines):
    world = defines
    rows = outcomes(world, "--drop-superseded")
    first, second, third, fourth = expected_findings(world)
    assert rows[label(world, 1)] == first + ": dropped with --drop-superseded", rows
    assert rows[label(world, 2)] == second + ": dropped with --drop-superseded", rows
    assert rows[label(world, 3)].startswith(third + ": the rebase stops here"), rows
    assert rows[label(world, 4)].startswith(fourth + ": the rebase stops here"), rows


def test_rebase_stops_for_a_decision_then_reports_the_partial_finding_in_the_conflict(defines):
    world = defines
    first, second, third, fourth = expected_findings(world)
    res = world.run("rebase", "--onto", "origin/main", "--no-config")
    assert res.returncode == 6, res.stderr
    assert f"is {first}; 'patchmgr rebase --skip' leaves it out" in res.stderr, res.stderr
    assert first in world.run("status").stdout
    res = world.run("rebase", "--skip", "--no-config")
    assert res.returncode == 6 and f"is {second}" in res.stderr, res.stderr
    res = world.run("rebase", "--skip", "--no-config")
    assert res.returncode == 6, res.stderr
    # patch 3 stops in git am's conflict state; its report names what upstream has of it
    assert f"finding: {third}" in res.stderr, res.stderr
    assert world.git("status", "--porcelain").strip(), "git am left no conflict to resolve"
    status = world.run("status").stdout
    assert f"stopped at {label(world, 3)}, {third}: resolve, git add" in status, status
    res = world.run("rebase", "--skip", "--note", "upstream's own pipeline", "--no-config")
    assert res.returncode == 6 and f"finding: {fourth}" in res.stderr, res.stderr
    res = world.run("rebase", "--skip", "--no-config")
    assert res.returncode == 6 and "finding:" not in res.stderr, res.stderr  # patch 5: nothing upstream
    assert world.run("rebase", "--skip", "--no-config").returncode == 0
    report = (world.patches / "autodiff-1.85.0" / "rebase-report.md").read_text()
    assert f"{third}, skipped by hand: upstream's own pipeline" in report, report


def test_no_finding_where_upstream_defines_none_of_it(world):
    """Near misses are not pieces found: a method of the name in a trait that is not a supertrait, a
    module of the name that defines none of the patch's items, a gate and a macro named alike."""
    rebuilt_series(world)
    new_base(world, defines=False)
    rows = outcomes(world)
    assert len(rows) == 5, rows
    for row in rows.values():
        assert "superseded" not in row and "partly upstream" not in row and " upstream " not in row, rows


BACKEND_RS = """pub trait ExtraBackendMethods:
    CodegenBackend + WriteBackendMethods + Sized + Send + Sync
{
    fn codegen_allocator(&self) -> Self::Module;
}

impl<'a, B: ExtraBackendMethods> rustc_codegen_ssa::traits::WriteBackendMethods for &'a mut Wrapper<B>
where
    B: Clone,
{
    fn print_pass_timings(&self) {}
}

pub struct Helper;

impl fmt::Display for Helper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}
"""


def test_methods_are_read_with_the_trait_or_impl_they_are_in(tmp_path):
    """A trait's bounds over several lines, an impl with generics, a path and a where clause; a
    signature the patch only rewrites is no new method, nor is a method of a type the patch defines."""
    env = hermetic_env(tmp_path)
    git(tmp_path, "init", "-q", env=env)
    path = "compiler/rustc_codegen_ssa/src/traits/backend.rs"
    before = BACKEND_RS.replace("    fn codegen_allocator(&self) -> Self::Module;\n", "").replace(
        "impl fmt::Display for Helper {\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n"
        "        Ok(())\n    }\n}\n", "").replace("pub struct Helper;\n", "").replace(
        "    fn print_pass_timings(&self) {}\n", "    fn print_pass_timings(&self, out: &mut String) {}\n")
    write(tmp_path / path, before)
    commit_all(tmp_path, "base", env)
    write(tmp_path / path, BACKEND_RS)
    commit_all(tmp_path, "the patch", env)
    patch = parse_patch(git(tmp_path, "format-patch", "-1", "--stdout", env=env).encode(), "p")
    found = surface.find_surface([patch], lambda p: (tmp_path / p).read_text())
    assert [(m.label, m.kind, m.supertraits, m.line) for m in found.methods] == [
        ("ExtraBackendMethods::codegen_allocator", "trait",
         ("CodegenBackend", "WriteBackendMethods", "Sized", "Send", "Sync"), 4)]
    assert found.traits == []  # the trait is the base's: its header is context, not added
    lines = BACKEND_RS.split("\n")
    block = surface.enclosing(lines, lines.index("    fn print_pass_timings(&self) {}"))
    assert block == surface.Block("impl", "Wrapper", "WriteBackendMethods", (), 7)
