//! `switchboard-controller`: not implemented yet (see the controller issue).

use clap::Parser;

/// Command line of the controller.
#[derive(Parser, Debug)]
#[command(name = "switchboard-controller", version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!("switchboard-controller is not implemented yet; run switchboard-dataplane --config for standalone mode")
}
