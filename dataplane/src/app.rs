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
use crate::config::channel::ControllerTransport;
use crate::config::{grpc, local};
use crate::metrics::Metrics;
use crate::routing::BreakerRegistry;
use crate::runtime::SharedState;
use crate::state::AppState;
use crate::store::{ConfigSource, ConfigStore};
use crate::upstream::Upstreams;

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
    about = "Switchboard AI gateway data plane",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    /// A tool instead of the gateway (`check`, `proxy-ca`).
    #[command(subcommand)]
    pub command: Option<Command>,
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
    /// `https://switchboard-controller:9978`. `http://` needs
    /// --controller-insecure-plaintext.
    #[arg(long, env = "SWITCHBOARD_CONTROLLER")]
    pub controller: Option<String>,
    /// Cluster mode: PEM CA bundle that verifies the controller's
    /// certificate (only these CAs are trusted; read at every connection).
    /// Default: the system's trust roots.
    #[arg(long, value_name = "PATH", requires = "controller")]
    pub controller_ca: Option<PathBuf>,
    /// Cluster mode: file holding the token sent to the controller as
    /// `authorization: Bearer` (read at every connection; missing: no
    /// token). Default: `/var/run/secrets/switchboard/token`.
    #[arg(long, value_name = "PATH", requires = "controller")]
    pub controller_token_file: Option<PathBuf>,
    /// Cluster mode: the name the controller's certificate must carry
    /// (default: the URL's host), e.g. when connecting to an IP address.
    #[arg(long, value_name = "NAME", requires = "controller")]
    pub controller_server_name: Option<String>,
    /// Cluster mode: allow an `http://` controller URL. Snapshots (with
    /// provider keys) then cross the network in plaintext and no token is
    /// sent. For local use only.
    #[arg(long, requires = "controller")]
    pub controller_insecure_plaintext: bool,
    /// Cluster mode: file holding the last good snapshot; served at boot
    /// until the controller answers.
    #[arg(long, env = "SWITCHBOARD_SNAPSHOT_CACHE", requires = "controller")]
    pub snapshot_cache: Option<PathBuf>,
    /// Cluster mode: the id sent to the controller (default: `$POD_NAME`,
    /// else `hostname-pid`).
    #[arg(long, requires = "controller")]
    pub node_id: Option<String>,
    /// Cluster mode: how often the usage of the AITeams this process
    /// served is reported to the controller (when it changed).
    #[arg(long, default_value = "5s", value_parser = parse_duration, requires = "controller")]
    pub usage_report_interval: Duration,
    /// Traffic listener address.
    #[arg(long, default_value = "0.0.0.0:8787", env = "SWITCHBOARD_LISTEN")]
    pub listen: SocketAddr,
    /// Admin listener address (/healthz, /readyz, /metrics, /config, /usage).
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
    /// Longest gap between two chunks of a request body; the request is
    /// answered 408 when exceeded.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub body_idle_timeout: Duration,
    /// Longest time to read a whole request body (408 when exceeded).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// Bytes of request bodies held in memory at once, across all requests
    /// (e.g. `512Mi`); a request that does not fit is refused with 503.
    #[arg(long, default_value = "512Mi", value_parser = parse_size)]
    pub max_buffered_body_bytes: u64,
    /// Open traffic connections at most; more are answered 503 and closed.
    /// 0: derived from the open-files limit (half of it after a reserve for
    /// upstream connections and the admin port, at most 65536).
    #[arg(long, default_value_t = 0, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// A new client connection must send its first byte within this.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub client_first_byte_timeout: Duration,
    /// A client connection with no request in flight for this long is
    /// closed (HTTP/1 keep-alive, HTTP/2 with GOAWAY).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub client_idle_timeout: Duration,
    /// An HTTP/1 request head must arrive within this.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Apply configurations that have no AIRoute (by default such a
    /// configuration is refused and the last good one keeps serving).
    #[arg(long, env = "SWITCHBOARD_ALLOW_EMPTY_CONFIG")]
    pub allow_empty_config: bool,
    /// Longest silence on a streamed answer before the client gets its own
    /// keep-alive (`event: ping` for Messages, an SSE comment for Chat and
    /// Responses); also how long a stream waits for its first token before
    /// its headers go out. `0s`: no keep-alives.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "SWITCHBOARD_STREAM_KEEPALIVE_INTERVAL")]
    pub stream_keepalive_interval: Duration,
    /// Sessions whose usage is kept per route, team and window (the
    /// heaviest stay; served on the admin port at `/sessions`). 0: none.
    #[arg(long, default_value_t = crate::sessions::DEFAULT_CAPACITY, env = "SWITCHBOARD_SESSIONS_PER_TEAM")]
    pub sessions_per_team: usize,
    /// The window per-session usage is counted over (`/sessions` reports
    /// the current and the previous one).
    #[arg(long, default_value = "1h", value_parser = parse_duration, env = "SWITCHBOARD_SESSION_WINDOW")]
    pub session_window: Duration,
    /// Proxy mode (off by default): the address of an HTTP CONNECT proxy
    /// listener that intercepts the model API hosts (docs/proxy-mode.md).
    /// Needs --proxy-ca-cert and --proxy-ca-key.
    #[arg(long, env = "SWITCHBOARD_PROXY_LISTEN", requires_all = ["proxy_ca_cert", "proxy_ca_key"])]
    pub proxy_listen: Option<SocketAddr>,
    /// Proxy mode: the CA certificate (PEM) leaf certificates are minted
    /// with; clients must trust it.
    #[arg(long, env = "SWITCHBOARD_PROXY_CA_CERT", value_name = "PATH")]
    pub proxy_ca_cert: Option<PathBuf>,
    /// Proxy mode: the CA's private key (unencrypted PKCS#8 PEM).
    #[arg(long, env = "SWITCHBOARD_PROXY_CA_KEY", value_name = "PATH")]
    pub proxy_ca_key: Option<PathBuf>,
    /// Proxy mode: hosts whose TLS is terminated and served by the gateway
    /// (comma-separated or repeated; `*.example.com` for subdomains).
    /// Replaces the default list (OpenAI, Anthropic, GitHub Copilot APIs).
    #[arg(
        long,
        env = "SWITCHBOARD_PROXY_INTERCEPT",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub proxy_intercept: Vec<String>,
    /// Proxy mode: what happens to every other CONNECT target.
    #[arg(
        long,
        value_enum,
        default_value = "tunnel",
        env = "SWITCHBOARD_PROXY_OTHER_HOSTS"
    )]
    pub proxy_other_hosts: OtherHostsArg,
    /// Proxy mode: ports tunnels may reach (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "443",
        env = "SWITCHBOARD_PROXY_TUNNEL_PORTS"
    )]
    pub proxy_tunnel_ports: Vec<u16>,
    /// Proxy mode: whether a CONNECT must carry Proxy-Authorization with a
    /// gateway token (`optional`: only for trusted networks; a token that is
    /// sent is still checked).
    #[arg(
        long,
        value_enum,
        default_value = "required",
        env = "SWITCHBOARD_PROXY_AUTH"
    )]
    pub proxy_auth: ProxyAuthArg,
    /// Proxy mode: open proxy connections at most. 0: half of the automatic
    /// cap (the traffic port then gets the other half).
    #[arg(long, default_value_t = 0, env = "SWITCHBOARD_PROXY_MAX_CONNECTIONS")]
    pub proxy_max_connections: usize,
}

/// What `switchboard-dataplane` runs instead of the gateway.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Exercise a route the way each supported agent would (Claude Code,
    /// Codex, OpenCode / OpenAI SDKs, Anthropic SDK) and print a pass/fail
    /// table per agent; exits 0 when every check passed, 1 otherwise.
    Check(crate::check::CheckArgs),
    /// The proxy-mode certificate authority.
    ProxyCa {
        /// What to do.
        #[command(subcommand)]
        action: ProxyCaAction,
    },
}

/// `proxy-ca` actions.
#[derive(clap::Subcommand, Debug)]
pub enum ProxyCaAction {
    /// Creates a CA (ECDSA P-256, 5 years) as `ca.crt` and `ca.key` (0600)
    /// in a folder; existing files are never replaced.
    Create {
        /// Folder to write into.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Switchboard proxy CA")]
        name: String,
    },
}

/// `--proxy-other-hosts`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OtherHostsArg {
    /// Tunnel bytes untouched.
    Tunnel,
    /// Answer 403.
    Refuse,
}

/// `--proxy-auth`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProxyAuthArg {
    /// Every CONNECT needs a gateway token (unless a route is open).
    Required,
    /// A CONNECT may come without one.
    Optional,
}

/// Runs a `proxy-ca` command.
pub fn run_proxy_ca(action: &ProxyCaAction) -> anyhow::Result<()> {
    match action {
        ProxyCaAction::Create { out_dir, name } => {
            crate::proxy::ca::create_files(out_dir, name)?;
            println!(
                "wrote {} (give it to clients) and {} (secret; mode 0600)",
                out_dir.join("ca.crt").display(),
                out_dir.join("ca.key").display()
            );
            Ok(())
        }
    }
}

/// The proxy mode settings the arguments ask for (`None`: off).
fn proxy_options(
    args: &Args,
    limits: crate::server::ConnLimits,
) -> anyhow::Result<Option<crate::proxy::ProxyOptions>> {
    use crate::proxy::{HostList, OtherHosts, ProxyAuth, ProxyOptions};
    if args.proxy_listen.is_none() {
        return Ok(None);
    }
    let intercept = if args.proxy_intercept.is_empty() {
        HostList::defaults()
    } else {
        HostList::parse(&args.proxy_intercept)?
    };
    Ok(Some(ProxyOptions {
        intercept,
        other_hosts: match args.proxy_other_hosts {
            OtherHostsArg::Tunnel => OtherHosts::Tunnel,
            OtherHostsArg::Refuse => OtherHosts::Refuse,
        },
        tunnel_ports: args.proxy_tunnel_ports.clone(),
        auth: match args.proxy_auth {
            ProxyAuthArg::Required => ProxyAuth::Required,
            ProxyAuthArg::Optional => ProxyAuth::Optional,
        },
        limits,
        connect_timeout: crate::proxy::DEFAULT_CONNECT_TIMEOUT,
    }))
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

/// Parses a byte size: `1048576`, `64Ki`, `512Mi`, `2Gi`.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(format!("invalid size unit in {s:?} (use Ki, Mi or Gi)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses `500ms`, `10s`, `5m`, `1h`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
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
    // One TLS configuration (one root store) for providers, webhooks and JWKS.
    let tls = Arc::new(crate::upstream::tls::client_config());
    let state = Arc::new(AppState {
        store: ConfigStore::default(),
        metrics: Arc::new(Metrics::new()),
        shared: SharedState {
            upstreams: Upstreams::new(tls.clone()),
            breakers: BreakerRegistry::default(),
            jwks: JwksStore::new(Arc::new(HttpJwksFetcher::new(tls))),
        },
        limiter: Arc::new(build_limiter(&args)?),
        usage: Arc::new(crate::teams::UsageBook::new(
            crate::limits::WallClock::system(),
        )),
        first_refusals: Default::default(),
        bounds: crate::bounds::Bounds {
            body_idle_timeout: args.body_idle_timeout,
            body_read_timeout: args.body_read_timeout,
            body_budget: crate::bounds::BodyBudget::new(args.max_buffered_body_bytes),
        },
        allow_empty_config: args.allow_empty_config,
        stream_keepalive: args.stream_keepalive_interval,
        sessions: Arc::new(crate::sessions::SessionTable::new(
            args.sessions_per_team,
            args.session_window,
        )),
        cut: Arc::default(),
    });

    // The configuration source: local files (loaded now, failing the start
    // when broken) or the controller (the cache, if any, serves meanwhile).
    // Cluster mode: turns true once the listeners drained, for the last usage report.
    let (finish_tx, finish_rx) = watch::channel(false);
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
            let transport = ControllerTransport::from_flags(
                url,
                args.controller_ca.clone(),
                args.controller_token_file.clone(),
                args.controller_server_name.clone(),
                args.controller_insecure_plaintext,
            )?;
            // A CA bundle that cannot be used now is a configuration error: say so at once
            // (later failures, e.g. during a rotation, are retried).
            if let ControllerTransport::Tls { ca: Some(ca), .. } = &transport {
                crate::config::channel::read_ca(ca)?;
            }
            if transport == ControllerTransport::InsecurePlaintext {
                tracing::warn!(controller = %url, "following the controller in PLAINTEXT (--controller-insecure-plaintext): snapshots and their provider keys are readable on the network; use this on a trusted host only");
            }
            if let Some(cache) = &args.snapshot_cache {
                grpc::apply_cache(&state, cache);
            }
            let opts = grpc::ClusterOptions {
                controller: url.clone(),
                transport,
                node_id: args.node_id.clone().unwrap_or_else(grpc::default_node_id),
                cache: args.snapshot_cache.clone(),
                max_snapshot_bytes: grpc::DEFAULT_MAX_SNAPSHOT_BYTES,
                idle_timeout: Duration::from_secs(60),
                backoff: grpc::Backoff::default(),
                usage_report_interval: args.usage_report_interval,
                finish: finish_rx,
            };
            Box::pin(grpc::run(state.clone(), opts))
        }
        (None, None) => anyhow::bail!("give exactly one of --config and --controller"),
    };

    let nofile = crate::server::fd_limit::raise();
    // With proxy mode on, the automatic cap is shared: half for each listener.
    let auto_cap = crate::server::fd_limit::auto_max_connections(nofile);
    let shares = if args.proxy_listen.is_some() { 2 } else { 1 };
    let max_connections = if args.max_connections == 0 {
        (auto_cap / shares).max(16)
    } else {
        args.max_connections
    };
    let traffic_limits = crate::server::ConnLimits {
        listener: "traffic",
        max_connections,
        first_byte_timeout: args.client_first_byte_timeout,
        idle_timeout: args.client_idle_timeout,
        header_read_timeout: args.header_read_timeout,
    };
    let admin_limits = crate::server::ConnLimits {
        first_byte_timeout: args.client_first_byte_timeout,
        idle_timeout: args.client_idle_timeout,
        header_read_timeout: args.header_read_timeout,
        ..crate::server::ConnLimits::admin()
    };
    let proxy = match proxy_options(
        &args,
        crate::server::ConnLimits {
            listener: "proxy",
            max_connections: if args.proxy_max_connections == 0 {
                (auto_cap / 2).max(16)
            } else {
                args.proxy_max_connections
            },
            ..traffic_limits
        },
    )? {
        None => None,
        Some(options) => {
            let (Some(cert), Some(key)) = (&args.proxy_ca_cert, &args.proxy_ca_key) else {
                anyhow::bail!("--proxy-listen needs --proxy-ca-cert and --proxy-ca-key");
            };
            let ca = crate::proxy::ca::ProxyCa::load(cert, key)?;
            let addr = args.proxy_listen.unwrap_or(args.listen);
            let listener = crate::server::bind(addr)
                .await
                .with_context(|| format!("binding proxy listener {addr}"))?;
            tracing::info!(
                proxy = %listener.local_addr()?,
                intercept = ?options.intercept.describe(),
                ca_sha256 = ca.fingerprint(),
                max_connections = options.limits.max_connections,
                "proxy mode on"
            );
            Some((
                listener,
                Arc::new(crate::proxy::Proxy {
                    state: state.clone(),
                    options,
                    leaves: Arc::new(crate::proxy::LeafCache::new(ca)),
                }),
            ))
        }
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
        max_connections,
        open_files = nofile.unwrap_or_default(),
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
        traffic_limits,
        state.clone(),
        // Boxed: hyper moves the handler's future twice per request, and
        // unboxed it is 5 KB (docs/benchmarks.md).
        |s, r: http::Request<hyper::body::Incoming>, peer| {
            Box::pin(crate::pipeline::handle_from(
                s,
                r.map(crate::pipeline::request_body),
                Some(peer),
            ))
        },
        stopped(stop_rx.clone()),
        args.shutdown_grace,
    ));
    let mut admin_task = tokio::spawn(crate::server::serve(
        admin,
        admin_limits,
        state.clone(),
        |s, r, _peer| crate::server::handle_admin(s, r),
        stopped(stop_rx.clone()),
        Duration::from_secs(1),
    ));
    let mut watch_task = tokio::spawn(source);
    let mut proxy_task = match proxy {
        Some((listener, proxy)) => tokio::spawn(crate::proxy::listener::serve(
            listener,
            proxy,
            stopped(stop_rx.clone()),
            args.shutdown_grace,
        )),
        None => tokio::spawn(std::future::pending::<()>()),
    };

    tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutdown signal received; draining");
        }
        r = &mut traffic_task => anyhow::bail!("traffic listener ended unexpectedly: {r:?}"),
        r = &mut admin_task => anyhow::bail!("admin listener ended unexpectedly: {r:?}"),
        r = &mut watch_task => anyhow::bail!("configuration source ended unexpectedly: {r:?}"),
        r = &mut proxy_task => anyhow::bail!("proxy listener ended unexpectedly: {r:?}"),
    }
    // A data plane following a controller keeps its stream while the
    // listeners drain, so the usage of the requests finishing then is
    // reported; a local configuration source stops at once.
    let follows_controller = args.controller.is_some();
    if !follows_controller {
        watch_task.abort();
    }
    let _ = stop_tx.send(true);
    let mut listeners = vec![traffic_task, admin_task];
    if args.proxy_listen.is_some() {
        listeners.push(proxy_task);
    } else {
        proxy_task.abort();
    }
    let left = drain(listeners, &state.limiter).await;
    if left > 0 {
        tracing::warn!(
            charges = left,
            "usage of requests still running could not be charged before exit"
        );
    }
    if follows_controller {
        let _ = finish_tx.send(true);
        if tokio::time::timeout(FINAL_REPORT_TIMEOUT, &mut watch_task)
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?FINAL_REPORT_TIMEOUT, "the last usage report did not reach the controller in time");
            watch_task.abort();
        }
    }
    Ok(())
}

/// How long a stopping data plane waits for its last usage report to reach
/// the controller (one message and the stream's close) before it exits.
const FINAL_REPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// The end of a shutdown: every listener drains (each within the grace
/// period, all started by the same signal, so they drain side by side), and
/// only then are the usage charges awaited: requests cut at the end of the
/// grace period were charged in the background, and hang-ups just before
/// may still read their upstream (bounded). Returns the charges left.
async fn drain(
    listeners: Vec<tokio::task::JoinHandle<()>>,
    limiter: &crate::limits::Limiter,
) -> usize {
    for listener in listeners {
        let _ = listener.await;
    }
    let within = limiter.timeout() * 2 + crate::pipeline::HANGUP_DRAIN_TIME;
    limiter.flush(within).await
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
    use super::{drain, parse_duration, parse_size};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// A proxied request that finishes late in the grace period is charged
    /// before the process ends: the charge its end starts is awaited, since
    /// the charges are flushed only after every listener drained.
    #[tokio::test(start_paused = true)]
    async fn charges_of_requests_a_listener_finishes_while_draining_are_awaited() {
        use crate::limits::{FailMode, Limiter, MemoryStore, WallClock};
        let clock = WallClock::system();
        let limiter = Arc::new(Limiter::new(
            Arc::new(MemoryStore::new(clock)),
            clock,
            FailMode::Open,
            Duration::from_millis(250),
        ));
        let charged = Arc::new(AtomicBool::new(false));
        // The traffic port drains at once; the proxy's last request ends
        // after 5 s of its grace period and charges in the background.
        let traffic = tokio::spawn(async {});
        let proxy = {
            let limiter = limiter.clone();
            let charged = charged.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let pending = limiter.pending();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    charged.store(true, Ordering::SeqCst);
                    drop(pending);
                });
            })
        };
        let left = drain(vec![traffic, proxy], &limiter).await;
        assert_eq!(left, 0);
        assert!(
            charged.load(Ordering::SeqCst),
            "the proxied request's charge was awaited"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("64Ki").unwrap(), 64 << 10);
        assert_eq!(parse_size("512Mi").unwrap(), 512 << 20);
        assert!(parse_size("5MB").is_err());
        assert!(parse_size("Mi").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
