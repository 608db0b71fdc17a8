pub fn rustflags(cargo: &mut Cargo) {
    cargo.rustflag("--cfg=llvm_enzyme");
}
