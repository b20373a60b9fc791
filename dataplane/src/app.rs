//! The process: parse arguments, load the first configuration, start the
//! listeners and the config watcher, and supervise them until a signal.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use tokio::sync::watch;

use crate::auth::{HttpJwksFetcher, JwksStore};
use crate::config::{grpc, local};
use crate::metrics::Metrics;
use crate::proxy::client::ClientCache;
use crate::routing::BreakerRegistry;
use crate::runtime::SharedState;
use crate::state::AppState;
use crate::store::{ConfigSource, ConfigStore};

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Command line of `switchboard-dataplane`.
#[derive(Parser, Debug)]
#[command(
    name = "switchboard-dataplane",
    version,
    about = "Switchboard AI gateway data plane"
)]
pub struct Args {
    /// Standalone mode: a YAML file or folder of AIBackend, AIRoute and
    /// Secret resources, reloaded when it changes. Exactly one of --config
    /// and --controller.
    #[arg(
        long,
        env = "SWITCHBOARD_CONFIG",
        required_unless_present = "controller",
        conflicts_with = "controller"
    )]
    pub config: Option<PathBuf>,
    /// Cluster mode: the controller's gRPC URL, e.g.
    /// `http://switchboard-controller:9978`.
    #[arg(long, env = "SWITCHBOARD_CONTROLLER")]
    pub controller: Option<String>,
    /// Cluster mode: file holding the last good snapshot; served at boot
    /// until the controller answers.
    #[arg(long, env = "SWITCHBOARD_SNAPSHOT_CACHE", requires = "controller")]
    pub snapshot_cache: Option<PathBuf>,
    /// Cluster mode: the id sent to the controller (default: `$POD_NAME`,
    /// else `hostname-pid`).
    #[arg(long, requires = "controller")]
    pub node_id: Option<String>,
    /// Traffic listener address.
    #[arg(long, default_value = "0.0.0.0:8787", env = "SWITCHBOARD_LISTEN")]
    pub listen: SocketAddr,
    /// Admin listener address (/healthz, /readyz, /metrics, /config).
    #[arg(
        long,
        default_value = "0.0.0.0:15021",
        env = "SWITCHBOARD_ADMIN_LISTEN"
    )]
    pub admin_listen: SocketAddr,
    /// How often the configuration files are checked for changes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: Duration,
    /// How long open requests may take to finish after a shutdown signal.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "SWITCHBOARD_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Redis URL (`redis://host:port/db`) for team limits shared by every
    /// replica. Unset: counters live in this process.
    #[arg(long, env = "SWITCHBOARD_REDIS_URL")]
    pub redis_url: Option<String>,
    /// What to do when the counter store fails: admit without limits
    /// (`open`, logged and counted) or refuse with 503 (`closed`).
    #[arg(
        long,
        value_enum,
        default_value = "open",
        env = "SWITCHBOARD_LIMITS_FAIL_MODE"
    )]
    pub limits_fail_mode: LimitsFailMode,
    /// OTLP/gRPC collector to export request traces to (e.g.
    /// `http://otel-collector:4317`). Unset: no traces are exported.
    #[arg(long, env = "SWITCHBOARD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Longest wait for one counter store call.
    #[arg(long, default_value = "250ms", value_parser = parse_duration, env = "SWITCHBOARD_LIMITS_TIMEOUT")]
    pub limits_timeout: Duration,
}

/// Behaviour when the counter store fails.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LimitsFailMode {
    /// Admit requests unchecked.
    Open,
    /// Refuse requests with 503.
    Closed,
}

/// Builds the limiter the arguments ask for.
fn build_limiter(args: &Args) -> anyhow::Result<crate::limits::Limiter> {
    use crate::limits::{CounterStore, FailMode, Limiter, MemoryStore, RedisStore, WallClock};
    let clock = WallClock::system();
    let store: Arc<dyn CounterStore> = match &args.redis_url {
        Some(url) => Arc::new(
            RedisStore::new(url, args.limits_timeout)
                .context("configuring the Redis counter store")?,
        ),
        None => Arc::new(MemoryStore::new(clock)),
    };
    let mode = match args.limits_fail_mode {
        LimitsFailMode::Open => FailMode::Open,
        LimitsFailMode::Closed => FailMode::Closed,
    };
    Ok(Limiter::new(store, clock, mode, args.limits_timeout))
}

/// Parses `500ms`, `10s`, `5m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "invalid duration unit in {s:?} (use ms, s, m or h)"
        )),
    }
}

/// Runs the data plane until SIGINT/SIGTERM. Errors end the process non-zero.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let state = Arc::new(AppState {
        store: ConfigStore::default(),
        metrics: Arc::new(Metrics::new()),
        shared: SharedState {
            clients: ClientCache::default(),
            breakers: BreakerRegistry::default(),
            jwks: JwksStore::new(Arc::new(HttpJwksFetcher::new())),
        },
        limiter: Arc::new(build_limiter(&args)?),
    });

    // The configuration source: local files (loaded now, failing the start
    // when broken) or the controller (the cache, if any, serves meanwhile).
    let source: Pin<Box<dyn Future<Output = ()> + Send>> = match (&args.config, &args.controller) {
        (Some(path), _) => {
            let fingerprint = local::load_and_apply(&state, path)
                .with_context(|| format!("loading configuration from {}", path.display()))?;
            state.store.set_source(ConfigSource::File);
            Box::pin(local::watch(
                state.clone(),
                path.clone(),
                args.reload_interval,
                fingerprint,
            ))
        }
        (None, Some(url)) => {
            if let Some(cache) = &args.snapshot_cache {
                grpc::apply_cache(&state, cache);
            }
            let opts = grpc::ClusterOptions {
                controller: url.clone(),
                node_id: args.node_id.clone().unwrap_or_else(grpc::default_node_id),
                cache: args.snapshot_cache.clone(),
                max_snapshot_bytes: grpc::DEFAULT_MAX_SNAPSHOT_BYTES,
                idle_timeout: Duration::from_secs(60),
                backoff: grpc::Backoff::default(),
            };
            Box::pin(grpc::run(state.clone(), opts))
        }
        (None, None) => anyhow::bail!("give exactly one of --config and --controller"),
    };

    let traffic = crate::server::bind(args.listen)
        .await
        .with_context(|| format!("binding traffic listener {}", args.listen))?;
    let admin = crate::server::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding admin listener {}", args.admin_listen))?;
    tracing::info!(
        traffic = %traffic.local_addr()?,
        admin = %admin.local_addr()?,
        version = %state.store.version().unwrap_or_default(),
        source = state.store.source().map_or("none yet", |s| s.label()),
        "switchboard data plane serving"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut traffic_task = tokio::spawn(crate::server::serve(
        traffic,
        state.clone(),
        crate::server::handle,
        stopped(stop_rx.clone()),
        args.shutdown_grace,
    ));
    let mut admin_task = tokio::spawn(crate::server::serve(
        admin,
        state.clone(),
        crate::server::handle_admin,
        stopped(stop_rx.clone()),
        Duration::from_secs(1),
    ));
    let mut watch_task = tokio::spawn(source);

    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutdown signal received; draining");
        }
        r = &mut traffic_task => anyhow::bail!("traffic listener ended unexpectedly: {r:?}"),
        r = &mut admin_task => anyhow::bail!("admin listener ended unexpectedly: {r:?}"),
        r = &mut watch_task => anyhow::bail!("configuration source ended unexpectedly: {r:?}"),
    }
    watch_task.abort();
    let _ = stop_tx.send(true);
    let _ = traffic_task.await;
    let _ = admin_task.await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
