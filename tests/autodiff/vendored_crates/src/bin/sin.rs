// libm's `sin` (libm from crates.io) reduces its argument by computing on the bits of the f64
// as integers, which Enzyme's type analysis cannot follow: the build stops with a short error
// that names the function, instead of printing the whole program's IR and aborting.
#[allow(improper_ctypes)]
extern "C" {
    fn __enzyme_autodiff(f: fn(f64) -> f64, x: f64) -> f64;
}

fn sine(x: f64) -> f64 {
    libm::sin(x)
}

fn main() {
    let dx = unsafe { __enzyme_autodiff(sine, 0.5) };
    println!("sin'(0.5) = {}", dx);
}
