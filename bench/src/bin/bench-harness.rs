//! `bench-harness`: runs every benchmark scenario and prints the markdown
//! report. Normally started by `bench/run`, which builds and installs first.

use std::path::PathBuf;

use clap::Parser;
use switchboard_bench::harness::{self, Options};

/// Benchmark runner: direct vs bare proxy vs gateway.
#[derive(Parser, Debug)]
#[command(name = "bench-harness")]
struct Args {
    /// Short run for development (about two minutes).
    #[arg(long)]
    quick: bool,
    /// Folder with the release binaries (bench-mock, bench-bare-proxy, switchboard-dataplane).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Repository root.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Folder for generated configs, scripts, logs and results.md.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Do not pin processes to CPUs even where taskset is available.
    #[arg(long)]
    no_pin: bool,
    /// Keep the normal scheduling priority (by default the run raises it, when
    /// root, so builds elsewhere on the machine disturb the numbers less).
    #[arg(long)]
    no_priority: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = Options {
        quick: args.quick,
        pin: !args.no_pin && switchboard_bench::procs::can_pin(),
        priority: !args.no_priority,
        bin_dir: args.bin_dir,
        repo: args.repo,
        work_dir: args.work_dir,
    };
    let report = harness::run(&opts)?;
    let file = opts.work_dir.join("results.md");
    std::fs::write(&file, &report)?;
    println!("{report}");
    eprintln!("bench: report written to {}", file.display());
    Ok(())
}
