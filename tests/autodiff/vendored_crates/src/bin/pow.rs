// `num_traits::pow` (num-traits from crates.io) computes x^3 by repeated squaring; Enzyme
// differentiates it like the program's own code: d/dx x^3 = 3x^2, 12 at 2.
#[allow(improper_ctypes)]
extern "C" {
    fn __enzyme_autodiff(f: fn(f64) -> f64, x: f64) -> f64;
}

fn cube(x: f64) -> f64 {
    num_traits::pow(x, 3)
}

fn main() {
    let dx = unsafe { __enzyme_autodiff(cube, 2.0) };
    println!("cube'(2) = {}", dx);
}
