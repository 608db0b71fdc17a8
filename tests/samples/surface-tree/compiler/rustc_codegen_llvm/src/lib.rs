fn codegen() {
    if cfg!(llvm_enzyme) && sess.opts.unstable_opts.autodiff {
        run_enzyme();
    }
}
