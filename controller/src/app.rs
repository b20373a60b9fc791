//! The process: parse arguments, start the source, the renderer, the gRPC
//! server and the admin port, and supervise them until a signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use switchboard_api::render::{ClaimPolicy, ClaimRule};
use switchboard_api::{Inventory, Problems};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{self, AdminState};
use crate::error::Error;
use crate::fleet::Fleet;
use crate::grpc::auth::{Authenticator, DEFAULT_AUDIENCE, ServiceAccountRef, TokenReviewer};
use crate::grpc::tls::ServerTls;
use crate::grpc::{self, DEFAULT_MAX_SNAPSHOT_BYTES, GrpcOptions, SnapshotServer};
use crate::kube::holders as kube_holders;
use crate::kube::lease::{self as kube_lease, LeaseConfig};
use crate::kube::views::{self as kube_views, ViewConfig};
use crate::metrics::Metrics;
use crate::pipeline::{self, RenderMode, Rendered};
use crate::source::{self, SourceSpec};
use crate::status::writer::{self as status_writer, StatusWriter};
use ::kube::runtime::events::Reporter;

mod security;
pub use security::{DataPlaneAuth, GrpcSecurity, grpc_security};

/// How long a stopping replica waits for its Lease to be released and its
/// data-plane view withdrawn (two or three API requests) before it exits
/// anyway.
const KUBE_RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Command line of `switchboard-controller`.
#[derive(Parser, Debug)]
#[command(
    name = "switchboard-controller",
    version,
    about = "Switchboard controller: renders AIBackend/AIRoute/AITeam into snapshots and pushes them to data planes"
)]
pub struct Args {
    /// Where objects come from: `kube` (the Kubernetes API) or `dir:PATH`
    /// (a folder of YAML, watched for changes).
    #[arg(long, default_value = "kube", env = "SWITCHBOARD_SOURCE")]
    pub source: SourceSpec,
    /// gRPC snapshot service address.
    #[arg(long, default_value = "0.0.0.0:9978", env = "SWITCHBOARD_GRPC_LISTEN")]
    pub grpc_listen: SocketAddr,
    /// PEM certificate chain (leaf first) of the gRPC port. With
    /// `--grpc-tls-key`, the port speaks TLS only; both files are re-read
    /// when they change (a rotated Secret takes effect without a restart).
    #[arg(long, value_name = "PATH", requires = "grpc_tls_key")]
    pub grpc_tls_cert: Option<PathBuf>,
    /// PEM private key of `--grpc-tls-cert`.
    #[arg(long, value_name = "PATH", requires = "grpc_tls_cert")]
    pub grpc_tls_key: Option<PathBuf>,
    /// Serve gRPC in plaintext, without authenticating data planes: anyone
    /// who reaches the port receives every provider key. Directory mode
    /// only, for local use.
    #[arg(long, conflicts_with_all = ["grpc_tls_cert", "grpc_tls_key"])]
    pub grpc_insecure_plaintext: bool,
    /// Audience data-plane tokens must carry (`kube` mode).
    #[arg(long, default_value = DEFAULT_AUDIENCE, value_name = "AUDIENCE")]
    pub dataplane_audience: String,
    /// ServiceAccount (`NAMESPACE/NAME`) whose tokens may receive snapshots;
    /// repeat for several. `kube` mode requires at least one.
    #[arg(long = "dataplane-service-account", value_name = "NAMESPACE/NAME")]
    pub dataplane_service_accounts: Vec<ServiceAccountRef>,
    /// Directory mode: a file holding a shared bearer token that data planes
    /// must send (re-read for every stream). Needs TLS.
    #[arg(long, value_name = "PATH")]
    pub dataplane_token_file: Option<PathBuf>,
    /// Admin address (/healthz, /readyz, /metrics, /usage).
    #[arg(long, default_value = "0.0.0.0:9090", env = "SWITCHBOARD_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// How often a `dir:` source is checked for changes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Interval of keepalive messages and HTTP/2 pings on snapshot streams.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub keepalive: Duration,
    /// Largest snapshot message sent to data planes, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_SNAPSHOT_BYTES)]
    pub max_snapshot_bytes: usize,
    /// How long streams and connections may take to close after a signal.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Namespace to watch in `kube` mode; repeat for several. Unset: all
    /// namespaces.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Namespace of the leader-election Lease (`kube` mode).
    #[arg(long, default_value = "default", env = "POD_NAMESPACE")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease (`kube` mode).
    #[arg(long, default_value = "switchboard-controller")]
    pub lease_name: String,
    /// This replica's identity in the Lease and in Events. Defaults to
    /// `switchboard-controller-<pid>`; set it to the pod name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long the Lease stays valid after a renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops writing status.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub lease_renew_deadline: Duration,
    /// How often the Lease is renewed (or retried by the others).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,
    /// How often the Lease holder writes the AITeams' `status.usage` (each
    /// team only when its usage changed).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub usage_status_interval: Duration,
    /// Which namespaces may claim which host names and path prefixes, as
    /// `NAMESPACE=HOST[/PREFIX]` (`*` for any namespace; HOST `*`,
    /// `*.example.com` or `api.example.com`; PREFIX default `/`); repeat for
    /// several. Unset: every namespace may claim anything.
    #[arg(long = "route-claim", value_name = "NAMESPACE=HOST[/PREFIX]")]
    pub route_claims: Vec<ClaimRule>,
    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "SWITCHBOARD_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
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

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Runs the controller until SIGINT/SIGTERM or until a task it needs ends.
pub async fn run(args: Args) -> Result<(), Error> {
    let security = grpc_security(&args)?;
    let tls = match &security.tls {
        Some((cert, key)) => Some(ServerTls::load(cert, key)?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let fleet = Fleet::new();
    let (inventory_tx, inventory_rx) = watch::channel(Arc::new(Inventory::default()));
    let (problems_tx, problems_rx) = watch::channel(Problems::new());
    let (rendered_tx, rendered_rx) = watch::channel(Arc::new(Rendered::default()));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let grpc_listener = bind(args.grpc_listen).await?;
    let admin_listener = bind(args.admin_listen).await?;
    tracing::info!(
        source = ?args.source,
        grpc = %args.grpc_listen,
        admin = %args.admin_listen,
        "switchboard controller starting"
    );

    let mode = match &args.source {
        SourceSpec::Kube => RenderMode::Kubernetes,
        SourceSpec::Dir(_) => RenderMode::Directory,
    };
    let kube_client = match &args.source {
        SourceSpec::Kube => Some(
            ::kube::Client::try_default()
                .await
                .map_err(Error::KubeClient)?,
        ),
        SourceSpec::Dir(_) => None,
    };
    let auth = match security.auth {
        DataPlaneAuth::Open => Authenticator::Open,
        DataPlaneAuth::SharedToken(path) => Authenticator::SharedToken(path),
        DataPlaneAuth::Kubernetes(policy) => {
            let client = kube_client.clone().ok_or(Error::TaskEnded("kube client"))?;
            Authenticator::Kubernetes(Box::new(TokenReviewer::new(client, policy)))
        }
    };
    match (&security.tls, &auth) {
        (None, _) => tracing::warn!(
            "gRPC snapshots are served in PLAINTEXT to anyone who connects (--grpc-insecure-plaintext): every provider key is readable on the network; use this on a trusted host only"
        ),
        (Some((cert, _)), Authenticator::Open) => tracing::warn!(
            cert = %cert.display(),
            "gRPC snapshots are served over TLS, but data planes are not authenticated (no --dataplane-token-file)"
        ),
        (Some((cert, _)), auth) => tracing::info!(
            cert = %cert.display(),
            auth = %auth.describe(),
            "gRPC snapshots are served over TLS to authenticated data planes"
        ),
    }
    if let Some(client) = &kube_client {
        let missing =
            crate::kube::rbac::check(client, &args.namespaces, &args.lease_namespace).await;
        if !missing.is_empty() {
            return Err(Error::Rbac(
                missing.iter().map(ToString::to_string).collect(),
            ));
        }
    }
    let mut source_task = match args.source.clone() {
        SourceSpec::Dir(path) => tokio::spawn(source::dir::run(
            path,
            args.poll_interval,
            inventory_tx,
            problems_tx,
        )),
        SourceSpec::Kube => {
            drop(problems_tx);
            let client = kube_client.clone().ok_or(Error::TaskEnded("kube client"))?;
            tokio::spawn(source::kube::run(
                client,
                args.namespaces.clone(),
                inventory_tx,
            ))
        }
    };
    // Kubernetes mode: the Lease and the status writer (leader only).
    let mut kube_tasks = tokio::task::JoinSet::new();
    if let Some(client) = kube_client {
        kube_tasks.spawn(spawn_status(
            client,
            &args,
            rendered_rx.clone(),
            &fleet,
            shutdown_rx.clone(),
            metrics.clone(),
        ));
    }
    let mut render_task = tokio::spawn(pipeline::run_renderer(
        inventory_rx,
        problems_rx,
        mode,
        ClaimPolicy::new(args.route_claims.clone()),
        rendered_tx,
        metrics.clone(),
    ));

    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = SnapshotServer {
        rendered: rendered_rx.clone(),
        fleet: fleet.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown_rx.clone(),
        options: GrpcOptions {
            max_snapshot_bytes: args.max_snapshot_bytes,
            keepalive: args.keepalive,
            ..GrpcOptions::default()
        },
        auth: Arc::new(auth),
    };
    let mut grpc_task = tokio::spawn(grpc::serve(
        grpc_listener,
        server,
        tls,
        stopped(shutdown_rx.clone()),
    ));
    let admin_state = AdminState {
        rendered: rendered_rx,
        fleet,
        metrics,
    };
    let mut admin_task = tokio::spawn(admin::serve(
        admin_listener,
        admin_state,
        stopped(shutdown_rx),
    ));

    let outcome = tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutdown signal received; closing snapshot streams");
            Ok(())
        }
        r = &mut source_task => match r {
            Ok(Err(e)) => Err(e),
            _ => Err(Error::TaskEnded("source")),
        },
        _ = &mut render_task => Err(Error::TaskEnded("renderer")),
        r = &mut grpc_task => match r {
            Ok(Err(e)) => Err(e),
            _ => Err(Error::TaskEnded("gRPC server")),
        },
        _ = &mut admin_task => Err(Error::TaskEnded("admin server")),
        Some(_) = kube_tasks.join_next(), if !kube_tasks.is_empty() => Err(Error::TaskEnded("lease or status writer")),
    };
    // Streams end on the shutdown signal (reason: shutting down) before the
    // renderer goes away.
    let _ = shutdown_tx.send(true);
    // The Lease holder gives the Lease up, so another replica leads at once,
    // and every replica withdraws its data-plane view.
    if tokio::time::timeout(KUBE_RELEASE_TIMEOUT, async {
        while kube_tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            timeout = ?KUBE_RELEASE_TIMEOUT,
            "the Lease and the data-plane view were not given up in time; they expire on their own"
        );
    }
    kube_tasks.abort_all();
    source_task.abort();
    render_task.abort();
    if tokio::time::timeout(args.shutdown_grace, &mut grpc_task)
        .await
        .is_err()
    {
        tracing::warn!(grace = ?args.shutdown_grace, "gRPC connections still open after the grace period; closing");
        grpc_task.abort();
    }
    let _ = admin_task.await;
    outcome
}

/// The Lease and the status writer of `kube` mode, as one task.
fn spawn_status(
    client: ::kube::Client,
    args: &Args,
    rendered: watch::Receiver<Arc<Rendered>>,
    fleet_handle: &crate::fleet::Fleet,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let fleet = fleet_handle.subscribe();
    let ledger = fleet_handle.usage().clone();
    let usage_interval = args.usage_status_interval;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("switchboard-controller-{}", std::process::id()));
    let mut lease = LeaseConfig::new(&args.lease_namespace, &args.lease_name, &identity);
    lease.lease_duration = args.lease_duration;
    lease.renew_deadline = args.lease_renew_deadline;
    lease.retry_period = args.lease_retry_period;
    let reporter = Reporter {
        controller: "switchboard-controller".into(),
        instance: Some(identity),
    };
    let writer = StatusWriter::new(client.clone(), reporter).with_metrics(metrics);
    let namespaces = args.namespaces.clone();
    let views = ViewConfig {
        namespace: lease.namespace.clone(),
        group: lease.name.clone(),
        identity: lease.identity.clone(),
        duration: lease.lease_duration,
    };
    async move {
        let (leader_tx, leader_rx) = watch::channel(false);
        let (merged_tx, merged_rx) = watch::channel(crate::fleet::FleetView::default());
        // The Lease and this replica's view are given up (after any write in
        // flight) however the workers end: see `kube::holders`.
        let holders = |stop: watch::Receiver<bool>| {
            let lease = kube_lease::run(client.clone(), lease, leader_tx, stop.clone());
            let view = kube_views::publish(
                client.clone(),
                views.clone(),
                fleet.clone(),
                ledger.clone(),
                stop,
            );
            async move {
                tokio::join!(lease, view);
            }
        };
        let workers = async {
            tokio::select! {
                () = status_writer::run(writer, namespaces, rendered.clone(), merged_rx, leader_rx.clone()) => {}
                () = crate::usage::writer::run(client.clone(), ledger.clone(), views.clone(), rendered, leader_rx.clone(), usage_interval) => {}
                () = kube_views::merge(client.clone(), views.clone(), fleet.clone(), leader_rx, merged_tx) => {}
            }
        };
        kube_holders::run(shutdown, holders, workers).await;
    }
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
    use super::*;

    #[test]
    fn parses_the_command_line() {
        let args =
            Args::try_parse_from(["switchboard-controller", "--source", "dir:/cfg"]).unwrap();
        assert_eq!(args.source, SourceSpec::Dir("/cfg".into()));
        assert_eq!(args.grpc_listen.port(), 9978);
        assert_eq!(args.admin_listen.port(), 9090);
        assert!(Args::try_parse_from(["switchboard-controller", "--source", "nope"]).is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }
}
