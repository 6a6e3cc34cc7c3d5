//! `shoal-tui`: the terminal client (its runtime comes next).

fn main() {}
