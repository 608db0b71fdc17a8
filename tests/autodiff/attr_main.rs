// Calls derivatives that #[autodiff] generated in another crate (attr_lib):
// cube'(2) = 13 in reverse and in forward mode.
fn main() {
    let (value, dx) = attr_lib::d_cube(2.0, 1.0);
    println!("reverse: cube(2) = {}, cube'(2) = {}", value, dx);
    let (value, tangent) = attr_lib::t_cube(2.0, 1.0);
    println!("forward: cube(2) = {}, cube'(2) = {}", value, tangent);
}
