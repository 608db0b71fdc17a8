options! {
    UnstableOptions, Z_OPTIONS, dbopts, "Z", "unstable",

    assert_incr_state: Option<String> = (None, parse_opt_string, [UNTRACKED],
        "assert that the incremental cache is in given state"),
    autodiff: bool = (false, parse_bool, [TRACKED],
        "differentiate with Enzyme (default: no)"),
}
