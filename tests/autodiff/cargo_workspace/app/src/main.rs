// Differentiates poly::f, whose crate uses a proc macro: f'(x) = 6x + 1, so f'(2) = 13.
#[allow(improper_ctypes)]
extern "C" {
    fn __enzyme_autodiff(f: fn(f64) -> f64, x: f64) -> f64;
}

fn main() {
    let x = 2.0;
    let dx = unsafe { __enzyme_autodiff(poly::f, x) };
    println!("f'({}) = {}", x, dx);
}
