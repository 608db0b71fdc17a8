// An rlib: the function differentiated by another crate.
pub fn cube_plus(x: f64) -> f64 {
    x * x * x + 2.0 * x
}
