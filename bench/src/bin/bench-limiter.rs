//! `bench-limiter`: the cost of one limiter operation as the counter store
//! fills up (see docs/benchmarks.md, "Limiter").
//!
//! For each store size (1k, then 100k live keys: one party per caller, each
//! with its request, token and budget counters), it times the operations of
//! one request — `admit` (requests per minute, tokens and budget checked),
//! `reserve`, `settle` — over many parties, from several tasks at once, and
//! reports the time per request at each size and the ratio between them. A
//! store whose operations scan its keys shows a ratio near the size ratio
//! (100); a constant-time one stays near 1. `--redis-url` runs the same
//! against Redis (one script per reservation and per settlement).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use switchboard_dataplane::limits::{
    CounterStore, Estimate, FailMode, Limiter, MemoryStore, Party, RedisStore, WallClock, Window,
};

#[derive(Parser)]
#[command(about = "Times limiter operations with 1k and 100k live keys")]
struct Args {
    /// Also (or only, with --skip-memory) measure a Redis store.
    #[arg(long)]
    redis_url: Option<String>,
    /// Skip the in-memory store.
    #[arg(long)]
    skip_memory: bool,
    /// Live parties of the large store.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Requests timed at each size.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent tasks.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
}

fn party(i: usize) -> Party {
    Party {
        key: format!("sb:bench:team:t{i}"),
        requests_per_minute: 1_000_000,
        tokens_per_day: 1_000_000_000,
        budget: Some((1_000_000_000_000, Window::Month)),
    }
}

/// One request's limiter work for party `i`.
async fn request(l: &Limiter, i: usize) -> anyhow::Result<()> {
    let p = party(i);
    l.admit(&p, Some(("10.0.0.1", 0)))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let r = l
        .reserve(
            &p,
            Estimate {
                tokens: 500,
                micro_usd: 1_000,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    l.settle(&p, &r, 300, 700).await?;
    Ok(())
}

/// Time per request with `parties` parties live (filled first, untimed).
async fn per_request(
    l: &Arc<Limiter>,
    parties: usize,
    requests: usize,
    tasks: usize,
) -> anyhow::Result<Duration> {
    for i in 0..parties {
        request(l, i).await?;
    }
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let l = l.clone();
        handles.push(tokio::spawn(async move {
            let mut n = t;
            while n < requests {
                // Spread over every live party.
                request(&l, (n * 7919) % parties).await?;
                n += tasks;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(started.elapsed() / requests as u32)
}

async fn measure(
    name: &str,
    store: impl Fn() -> anyhow::Result<Arc<dyn CounterStore>>,
    args: &Args,
) -> anyhow::Result<()> {
    let clock = WallClock::system();
    let mut times = Vec::new();
    for parties in [1_000, args.keys] {
        let l = Arc::new(Limiter::new(
            store()?,
            clock,
            FailMode::Closed,
            Duration::from_secs(5),
        ));
        times.push((
            parties,
            per_request(&l, parties, args.requests, args.tasks).await?,
        ));
    }
    let (small, large) = (times[0].1, times[1].1);
    println!(
        "| {name} | {:.1} µs | {:.1} µs | {:.2} |",
        small.as_secs_f64() * 1e6,
        large.as_secs_f64() * 1e6,
        large.as_secs_f64() / small.as_secs_f64().max(1e-9)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "| store | per request, 1k parties | per request, {}k parties | ratio |",
        args.keys / 1000
    );
    println!("|---|---|---|---|");
    if !args.skip_memory {
        let clock = WallClock::system();
        measure(
            "memory",
            || Ok(Arc::new(MemoryStore::new(clock)) as Arc<dyn CounterStore>),
            &args,
        )
        .await?;
    }
    if let Some(url) = &args.redis_url {
        measure(
            "redis",
            || {
                Ok(Arc::new(
                    RedisStore::new(url, Duration::from_secs(5))
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                ) as Arc<dyn CounterStore>)
            },
            &args,
        )
        .await?;
    }
    Ok(())
}
