// An rlib with #[autodiff]: the derivatives are generated here and called from attr_main.rs.
// This crate is compiled with -Z autodiff too, but as an rlib it only keeps its bitcode; Enzyme
// runs when the binary is linked.
#![feature(autodiff)]

/// cube(x) = x^3 + x, cube'(x) = 3x^2 + 1.
#[autodiff(d_cube, Reverse, Active, Active)]
#[autodiff(t_cube, Forward, Dual, Dual)]
pub fn cube(x: f64) -> f64 {
    x * x * x + x
}
