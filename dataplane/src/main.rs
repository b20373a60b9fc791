//! `switchboard-dataplane` binary.

fn main() {}
