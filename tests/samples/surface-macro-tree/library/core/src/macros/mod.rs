pub(crate) mod builtin {
    /// Generates the derivative of a function with Enzyme.
    #[unstable(feature = "autodiff", issue = "none")]
    #[rustc_builtin_macro]
    pub macro autodiff($item:item) {
        /* compiler built-in */
    }

    /// Expands all `#[cfg]` and `#[cfg_attr]` attributes in the code fragment it's applied to.
    #[unstable(feature = "cfg_eval", issue = "82679")]
    #[rustc_builtin_macro]
    pub macro cfg_eval($($tt:tt)*) {
        /* compiler built-in */
    }
}
