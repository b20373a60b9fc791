//! `bench-function-order`: profiles the gateway under callgrind and writes
//! the function order it is linked with. Started by
//! `bench/run --function-order`, which builds the binaries first.

use std::path::PathBuf;

use clap::Parser;
use switchboard_bench::function_order_run::{self, Options};

/// Writes dataplane/link/functions.ld from a callgrind profile.
#[derive(Parser, Debug)]
#[command(name = "bench-function-order")]
struct Args {
    /// Folder with the release binaries (bench-mock, switchboard-dataplane
    /// built with SWITCHBOARD_FUNCTION_ORDER=off).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Repository root.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Folder for the configuration, logs and callgrind's files.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// The linker script to write.
    #[arg(long, default_value = "dataplane/link/functions.ld")]
    output: PathBuf,
    /// Read the callgrind files of the previous run in the work folder
    /// instead of running the gateway again.
    #[arg(long)]
    reuse_profile: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = Options {
        bin_dir: args.bin_dir,
        repo: args.repo,
        work_dir: args.work_dir,
        output: args.output,
        reuse_profile: args.reuse_profile,
    };
    let functions = function_order_run::run(&opts)?;
    eprintln!(
        "bench: {functions} functions ordered in {}",
        opts.output.display()
    );
    Ok(())
}
