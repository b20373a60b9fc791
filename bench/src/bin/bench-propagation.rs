//! `bench-propagation`: measures how long a configuration change takes to
//! reach 1, 10 and 100 connected data planes and prints a markdown table.
//! Normally started by `bench/run --propagation`, which builds first.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use switchboard_bench::propagation::{self, Options};

/// Propagation benchmark: config write → every data plane has it.
#[derive(Parser, Debug)]
#[command(name = "bench-propagation")]
struct Args {
    /// Folder with the release binaries (switchboard-controller, switchboard-dataplane).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Repository root.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Folder for config folders, logs and propagation.md.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
    /// Numbers of simulated data planes, one row each.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    connections: Vec<usize>,
    /// Measured rounds per row.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
    /// Unmeasured rounds before them.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// The controller's poll interval, in milliseconds.
    #[arg(long, default_value_t = 50)]
    poll_interval_ms: u64,
    /// Skip the row with one real data-plane process.
    #[arg(long)]
    no_real_dataplane: bool,
    /// Keep the normal scheduling priority.
    #[arg(long)]
    no_priority: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let opts = Options {
        bin_dir: args.bin_dir,
        repo: args.repo,
        work_dir: args.work_dir,
        connections: args.connections,
        rounds: args.rounds,
        warmup: args.warmup,
        poll_interval: Duration::from_millis(args.poll_interval_ms),
        real_dataplane: !args.no_real_dataplane,
        priority: !args.no_priority,
    };
    let report = propagation::run(&opts)?;
    let file = opts.work_dir.join("propagation.md");
    std::fs::write(&file, &report)?;
    println!("{report}");
    eprintln!("bench: report written to {}", file.display());
    Ok(())
}
