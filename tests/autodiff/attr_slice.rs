// #[autodiff] with a Duplicated slice: the gradient of sum(x_i^2) is 2x,
// added into the shadow slice; for x = [1, 2, 3]: [2, 4, 6].
#![feature(autodiff)]

#[autodiff(d_sum_sq, Reverse, Duplicated, Active)]
fn sum_sq(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum()
}

fn main() {
    let x = [1.0, 2.0, 3.0];
    let mut dx = [0.0; 3];
    // No Active input: the primal alone is returned; the gradient lands in dx.
    let value = d_sum_sq(&x, &mut dx, 1.0);
    println!("sum_sq = {}, gradient = {:?}", value, dx);
}
