// Differentiates through code from the standard library: an iterator sum
// over a slice (core's Iterator::sum, linked in from std's bitcode) and f64::sin.
// d/dx (x + 2x + 3x + sin x) = 6 + cos x.
// Enzyme takes the Rust function pointer as it is: no FFI call happens at run time.
#[allow(improper_ctypes)]
extern "C" {
    fn __enzyme_autodiff(f: fn(f64) -> f64, x: f64) -> f64;
}

#[inline(never)]
fn weighted(x: f64) -> f64 {
    let terms = [x, 2.0 * x, 3.0 * x];
    terms.iter().sum::<f64>() + x.sin()
}

fn main() {
    let x = 0.0;
    let dx = unsafe { __enzyme_autodiff(weighted, x) };
    println!("weighted'({}) = {}", x, dx);
}
