//! `bench-function-order`: profiles the gateway under callgrind and writes
//! the function order it is linked with. Started by
//! `bench/run --function-order`, which builds the binaries first; the
//! options are [`Options`]'s.

use clap::Parser;
use switchboard_bench::function_order_run::{self, Options};

fn main() -> anyhow::Result<()> {
    let opts = Options::parse();
    let functions = function_order_run::run(&opts)?;
    eprintln!(
        "bench: {functions} functions ordered in {}",
        opts.output.display()
    );
    Ok(())
}
