//! `bench-bare-proxy`: a passthrough reverse proxy with no parsing, the floor
//! the gateway is compared with.

use std::net::SocketAddr;

use clap::Parser;
use http::uri::Authority;

/// Bare passthrough reverse proxy for benchmarks.
#[derive(Parser, Debug)]
#[command(name = "bench-bare-proxy")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9901")]
    listen: SocketAddr,
    /// Upstream `host:port` (plain HTTP).
    #[arg(long)]
    upstream: Authority,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    switchboard_bench::bare::serve(listener, args.upstream).await?;
    Ok(())
}
