pub fn expand(ecx: &mut ExtCtxt<'_>, item: Annotatable) -> Vec<Annotatable> {
    if !ecx.sess.opts.debugging_opts.autodiff {
        ecx.span_err(item.span(), "`#[autodiff]` needs `-Z autodiff`");
    }
    vec![item]
}
