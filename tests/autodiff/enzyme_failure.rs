// Enzyme cannot differentiate integer arithmetic on the bits of a float: flipping the lowest
// mantissa bit goes through `to_bits`/`from_bits`, an `xor` on an integer that Enzyme's type
// analysis says holds a float. rustc stops with a short error that names the function and
// Enzyme's reason (exit code 1); `-Z autodiff-print-ir` adds the IR Enzyme failed on.
#[allow(improper_ctypes)]
extern "C" {
    fn __enzyme_autodiff(f: fn(f64) -> f64, x: f64) -> f64;
}

#[inline(never)]
fn flip_low_bit(x: f64) -> f64 {
    f64::from_bits(x.to_bits() ^ 1) * x
}

fn main() {
    let x = 3.0;
    let dx = unsafe { __enzyme_autodiff(flip_low_bit, x) };
    println!("flip_low_bit'({}) = {}", x, dx);
}
