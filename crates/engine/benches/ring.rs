//! Ring benchmark: being written (issue 3).
fn main() {}
