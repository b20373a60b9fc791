//! `bench-mock`: the fast mock upstream (OpenAI and Anthropic formats).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use switchboard_bench::mock::{self, MockConfig};

/// Fast mock provider for benchmarks.
#[derive(Parser, Debug)]
#[command(name = "bench-mock")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9900")]
    listen: SocketAddr,
    /// Delay before the response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Text deltas in a streamed answer.
    #[arg(long, default_value_t = 50)]
    chunks: usize,
    /// Pause before each streamed event after the first, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let config = MockConfig {
        latency: Duration::from_millis(args.latency_ms),
        chunks: args.chunks,
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
    };
    mock::serve(listener, config).await?;
    Ok(())
}
