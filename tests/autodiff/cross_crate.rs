// Differentiates a function defined in another crate (the rlib `poly`):
// d/dx (x^3 + 2x) = 3x^2 + 2.
// Enzyme takes the Rust function pointer as it is: no FFI call happens at run time.
#[allow(improper_ctypes)]
extern "C" {
    fn __enzyme_autodiff(f: fn(f64) -> f64, x: f64) -> f64;
}

fn main() {
    let x = 2.0;
    let dx = unsafe { __enzyme_autodiff(poly::cube_plus, x) };
    println!("cube_plus'({}) = {}", x, dx);
}
