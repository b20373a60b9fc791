//! `bench-instructions`: counts the instructions per request of the bare
//! proxy and the gateway under callgrind. Started by
//! `bench/run --instructions`, which builds the binaries first; the options
//! are [`Options`]'s.

use clap::Parser;
use switchboard_bench::instructions_run::{self, Options};

fn main() -> anyhow::Result<()> {
    let table = instructions_run::run(&Options::parse())?;
    print!("{table}");
    Ok(())
}
