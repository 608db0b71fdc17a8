define_config! {
    struct Llvm {
        optimize: Option<bool> = "optimize",
        enzyme: Option<bool> = "enzyme",
    }
}
