mod autodiff;
mod cfg_eval;

pub fn register_builtin_macros(resolver: &mut dyn ResolverExpand) {
    register_bang! {
        asm: asm::expand_asm,
    }

    register_attr! {
        autodiff: autodiff::expand,
        bench: test::expand_bench,
        cfg_eval: cfg_eval::expand,
    }
}
