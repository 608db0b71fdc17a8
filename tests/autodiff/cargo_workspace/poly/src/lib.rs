// An rlib that uses the proc macro: f(x) = 3x^2 + x.
pub fn f(x: f64) -> f64 {
    macros::coefficient!() * x * x + x
}
