// Differentiated in the same crate: d/dx x^2 = 2x.
// Enzyme takes the Rust function pointer as it is: no FFI call happens at run time.
#[allow(improper_ctypes)]
extern "C" {
    fn __enzyme_autodiff(f: fn(f64) -> f64, x: f64) -> f64;
}

fn square(x: f64) -> f64 {
    x * x
}

fn main() {
    let x = 3.0;
    let dx = unsafe { __enzyme_autodiff(square, x) };
    println!("square'({}) = {}", x, dx);
}
