// Misuses of #[autodiff], each refused at expansion with an error on its span.
#![feature(autodiff)]

#[autodiff(d_count, Reverse, Active)]
fn count(x: f64) -> f64 {
    x
}

#[autodiff(d_by_ref, Reverse, Active, Active)]
fn by_ref(x: &f64) -> f64 {
    *x
}

#[autodiff(d_by_value, Reverse, Duplicated, Active)]
fn by_value(x: f64) -> f64 {
    x
}

#[autodiff(d_mode, Backward, Active, Active)]
fn mode(x: f64) -> f64 {
    x
}

#[autodiff(d_generic, Reverse, Active, Active)]
fn generic<T>(x: f64) -> f64 {
    x
}

struct S;

impl S {
    #[autodiff(d_method, Reverse, Active, Active)]
    fn method(x: f64) -> f64 {
        x
    }
}

fn main() {}
