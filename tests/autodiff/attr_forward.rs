// #[autodiff] in forward mode, in the same crate: g(x, k) = k x^3, dg/dx = 3k x^2;
// at x = 2, k = 1 with tangent 1: (8, 12).
#![feature(autodiff)]

#[autodiff(fwd_g, Forward, Dual, Const, Dual)]
fn g(x: f64, k: f64) -> f64 {
    k * x * x * x
}

fn main() {
    // A Dual input takes its tangent right after it; a Dual output gives (primal, tangent).
    let (value, tangent) = fwd_g(2.0, 1.0, 1.0);
    println!("g(2) = {}, g'(2) = {}", value, tangent);
}
