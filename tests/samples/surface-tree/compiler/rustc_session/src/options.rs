options! {
    UnstableOptions, Z_OPTIONS, dbopts, "Z", "unstable",

    asm_comments: bool = (false, parse_bool, [TRACKED],
        "generate comments into the assembly (may change behavior) (default: no)"),
    autodiff: bool = (false, parse_bool, [TRACKED],
        "differentiate the whole program with Enzyme (default: no)"),
}
