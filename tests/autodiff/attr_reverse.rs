// #[autodiff] in reverse mode, in the same crate: f(x, y) = x^2 y + 3y,
// df/dx = 2xy, df/dy = x^2 + 3; at (3, 2): f = 24, df/dx = 12, df/dy = 12.
#![feature(autodiff)]

#[autodiff(d_f, Reverse, Active, Active, Active)]
fn f(x: f64, y: f64) -> f64 {
    x * x * y + 3.0 * y
}

fn main() {
    // Active inputs: their adjoints are returned after the primal; Active output: the seed.
    let (value, dx, dy) = d_f(3.0, 2.0, 1.0);
    println!("f(3, 2) = {}, df/dx = {}, df/dy = {}", value, dx, dy);
}
