//! Cluster mode (`--controller URL`): receive snapshots from the controller
//! over one bidirectional gRPC stream, apply each atomically, and ACK or
//! NACK it with per-resource reasons.
//!
//! - On connect the data plane sends a Hello with its id and the version it
//!   serves; the controller answers with its current snapshot.
//! - A snapshot that does not build is NACKed; the last good one keeps
//!   serving. A good one is ACKed and, with `--snapshot-cache`, persisted.
//! - When the stream ends or fails, or nothing (not even a keepalive) arrives
//!   within the idle timeout, the data plane reconnects with jittered
//!   exponential backoff, forever. Serving never stops meanwhile.
//! - The channel is TLS with a bearer token unless plaintext was asked for
//!   by name ([`super::channel`]); the CA and token files are read again
//!   for every connection attempt. The controller ends a stream cleanly when
//!   its token expires, and the reconnect sends the refreshed token.
//! - Every `--usage-report-interval` the usage of the AITeams this process
//!   served ([`crate::teams::UsageBook`]) goes to the controller when it
//!   changed since the last report on this stream (and once per stream).
//! - On shutdown the stream stays open while the listeners drain; then
//!   ([`ClusterOptions::finish`]) the usage goes out one last time, the data
//!   plane closes its side and waits for the controller to close its own, so
//!   the requests that finished since the last report, and during the drain,
//!   are counted too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_proto as pb;
use switchboard_proto::snapshot_service_client::SnapshotServiceClient;
use tokio::sync::{mpsc, watch};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use super::channel::{ChannelError, ControllerTransport};
use crate::runtime::BuildProblem;
use crate::state::AppState;
use crate::store::ConfigSource;

/// Default largest snapshot accepted: 16 MiB (the controller's default limit).
pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024;

/// How to reach the controller.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The controller's gRPC URL, e.g. `https://switchboard-controller:9978`.
    pub controller: String,
    /// TLS and identity.
    pub transport: ControllerTransport,
    /// This data plane's id in its Hello.
    pub node_id: String,
    /// Where the last good snapshot is persisted, if anywhere.
    pub cache: Option<PathBuf>,
    /// Largest snapshot message accepted.
    pub max_snapshot_bytes: usize,
    /// Reconnect when nothing arrives for this long (the controller sends
    /// keepalives every 15 s by default).
    pub idle_timeout: Duration,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// How often the AITeams' usage is reported (when it changed).
    pub usage_report_interval: Duration,
    /// Turns true when the process is about to exit: the usage is reported
    /// one last time, the stream is closed and [`run`] returns.
    pub finish: watch::Receiver<bool>,
}

/// Why one stream ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The URL is not usable.
    #[error("invalid controller URL: {0}")]
    Url(#[source] tonic::transport::Error),
    /// The TLS or token settings cannot be used.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The connection could not be made.
    #[error("cannot connect to the controller: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// The controller ended the stream with an error.
    #[error("stream failed: {0}")]
    Status(#[from] tonic::Status),
    /// Nothing arrived within the idle timeout.
    #[error("no message from the controller for {0:?}")]
    Idle(Duration),
    /// The controller closed the stream (e.g. it is shutting down).
    #[error("the controller closed the stream")]
    Closed,
}

/// Jittered exponential backoff: the n-th delay is drawn uniformly from
/// `[cap/2, cap]` where `cap = min(max, base * 2^n)`.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// First cap.
    pub base: Duration,
    /// Largest cap.
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff starting at `base`, capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next delay, given a uniform random number in `[0, 1)`.
    pub fn next_delay(&mut self, random: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        let cap = self.base.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        cap.mul_f64(0.5 + random.clamp(0.0, 1.0) / 2.0)
    }

    /// Starts over (after a stream delivered a snapshot).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(10))
    }
}

/// The id of this data plane: `$POD_NAME`, else `hostname-pid`.
pub fn default_node_id() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.trim().is_empty()
    {
        return pod.trim().to_string();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "dataplane".to_string());
    format!("{host}-{}", std::process::id())
}

/// Applies the cached snapshot, if there is one. Returns whether it serves.
pub fn apply_cache(state: &Arc<AppState>, path: &std::path::Path) -> bool {
    let snapshot = match super::cache::read(path) {
        Ok(s) => s,
        Err(super::cache::CacheError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            tracing::info!(path = %path.display(), "no snapshot cache yet");
            return false;
        }
        Err(e) => {
            tracing::warn!(error = %e, "snapshot cache ignored");
            return false;
        }
    };
    match super::apply_snapshot(state, &snapshot) {
        Ok(_) => {
            state.store.set_source(ConfigSource::Cache);
            tracing::info!(version = %snapshot.version, path = %path.display(), "serving the cached snapshot until the controller answers");
            true
        }
        Err(problems) => {
            let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            tracing::warn!(?problems, "cached snapshot does not build; ignored");
            false
        }
    }
}

/// Follows the controller: connect, apply, ACK/NACK, reconnect, until
/// [`ClusterOptions::finish`] turns true (after the last usage report, when
/// a stream is open).
pub async fn run(state: Arc<AppState>, mut opts: ClusterOptions) {
    loop {
        if finishing(&opts.finish) {
            return;
        }
        match stream_once(&state, &mut opts).await {
            Err(StreamError::Closed) => {
                tracing::info!("controller closed the stream; reconnecting")
            }
            Err(StreamError::Status(status))
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                tracing::warn!(
                    code = ?status.code(),
                    reason = status.message(),
                    "the controller refused this data plane; check --controller-token-file and the controller's --dataplane-service-account; reconnecting"
                )
            }
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "controller stream ended; reconnecting")
            }
            Ok(()) => {}
        }
        let delay = opts.backoff.next_delay(fastrand::f64());
        tracing::debug!(?delay, "reconnect backoff");
        let mut finish = opts.finish.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = async { drop(finish.wait_for(|f| *f).await) } => return,
        }
    }
}

/// Whether the process asked for the last report (a gone sender counts).
fn finishing(finish: &watch::Receiver<bool>) -> bool {
    *finish.borrow() || finish.has_changed().is_err()
}

/// One stream: connect, Hello, then apply snapshots until it ends.
async fn stream_once(state: &Arc<AppState>, opts: &mut ClusterOptions) -> Result<(), StreamError> {
    let endpoint = tonic::transport::Endpoint::from_shared(opts.controller.clone())
        .map_err(StreamError::Url)?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let (endpoint, authorization) = opts.transport.prepare(endpoint)?;
    let channel = endpoint.connect().await.map_err(StreamError::Connect)?;
    let mut client = SnapshotServiceClient::new(channel)
        .max_decoding_message_size(opts.max_snapshot_bytes + 1024)
        .max_encoding_message_size(4 * 1024 * 1024);
    let (tx, rx) = mpsc::channel(8);
    let hello = pb::Hello {
        node_id: opts.node_id.clone(),
        serving_version: state.store.version().unwrap_or_default(),
    };
    let _ = tx
        .send(message(pb::data_plane_message::Kind::Hello(hello)))
        .await;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value);
    }
    let mut inbound = client.stream(request).await?.into_inner();
    tracing::info!(controller = %opts.controller, node = %opts.node_id, "connected to the controller");
    let mut reports =
        tokio::time::interval(opts.usage_report_interval.max(Duration::from_millis(100)));
    reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The teams of the last report sent on this stream.
    let mut last_report: Option<Vec<pb::TeamUsage>> = None;
    // Reports going out do not count as activity: only what arrives does.
    let mut idle_deadline = tokio::time::Instant::now() + opts.idle_timeout;
    let mut finish = opts.finish.clone();
    loop {
        let next = tokio::select! {
            () = async { drop(finish.wait_for(|f| *f).await) } => {
                return finish_stream(state, tx, inbound, &mut last_report).await;
            }
            next = tokio::time::timeout_at(idle_deadline, inbound.message()) => next,
            _ = reports.tick() => {
                if let Some(report) = usage_report(state, &mut last_report)
                    && tx.send(message(pb::data_plane_message::Kind::Usage(report))).await.is_err()
                {
                    return Err(StreamError::Closed);
                }
                continue;
            }
        };
        let msg = match next {
            Err(_) => return Err(StreamError::Idle(opts.idle_timeout)),
            Ok(Err(status)) => return Err(StreamError::Status(status)),
            Ok(Ok(None)) => return Err(StreamError::Closed),
            Ok(Ok(Some(msg))) => msg,
        };
        idle_deadline = tokio::time::Instant::now() + opts.idle_timeout;
        match msg.kind {
            Some(pb::controller_message::Kind::Snapshot(snapshot)) => {
                opts.backoff.reset();
                let reply = apply(state, opts, &snapshot).await;
                if tx.send(message(reply)).await.is_err() {
                    return Err(StreamError::Closed);
                }
            }
            Some(pb::controller_message::Kind::Keepalive(_)) | None => {}
        }
    }
}

/// The end of a stream at shutdown: the last usage report (when the usage
/// changed since the previous one), then this side closed, then the
/// controller's side awaited: it closes after reading everything sent
/// before, the report included. Ends with [`StreamError::Closed`] when the
/// report could not be sent.
async fn finish_stream(
    state: &AppState,
    tx: mpsc::Sender<pb::DataPlaneMessage>,
    mut inbound: tonic::Streaming<pb::ControllerMessage>,
    last_report: &mut Option<Vec<pb::TeamUsage>>,
) -> Result<(), StreamError> {
    if let Some(report) = usage_report(state, last_report)
        && tx
            .send(message(pb::data_plane_message::Kind::Usage(report)))
            .await
            .is_err()
    {
        return Err(StreamError::Closed);
    }
    drop(tx);
    while let Ok(Some(_)) = inbound.message().await {}
    tracing::info!("last usage report sent; controller stream closed");
    Ok(())
}

/// The usage report to send, if the usage changed since `last` (the teams of
/// the last report sent on this stream; `None`: none sent yet, so one goes
/// out even when empty).
fn usage_report(
    state: &AppState,
    last: &mut Option<Vec<pb::TeamUsage>>,
) -> Option<pb::UsageReport> {
    let report = state.usage.report();
    if last.as_ref() == Some(&report.teams) {
        return None;
    }
    *last = Some(report.teams.clone());
    Some(report)
}

/// `error: cause: cause` (transport errors hide the useful part in their sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn message(kind: pb::data_plane_message::Kind) -> pb::DataPlaneMessage {
    pb::DataPlaneMessage { kind: Some(kind) }
}

/// Applies one snapshot and returns the ACK or NACK to send.
async fn apply(
    state: &Arc<AppState>,
    opts: &ClusterOptions,
    snapshot: &pb::Snapshot,
) -> pb::data_plane_message::Kind {
    let version = snapshot.version.clone();
    match super::apply_snapshot(state, snapshot) {
        Ok(changed) => {
            let from_cache = state.store.source() != Some(ConfigSource::Controller);
            state.store.set_source(ConfigSource::Controller);
            if changed {
                tracing::info!(%version, "snapshot applied");
            }
            if let Some(path) = opts.cache.clone()
                && (changed || from_cache)
            {
                let snapshot = snapshot.clone();
                match tokio::task::spawn_blocking(move || super::cache::write(&path, &snapshot))
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "snapshot cache not written"),
                    Err(e) => tracing::warn!(error = %e, "snapshot cache writer panicked"),
                }
            }
            pb::data_plane_message::Kind::Ack(pb::Ack { version })
        }
        Err(problems) => {
            let reasons: Vec<String> = problems.iter().map(ToString::to_string).collect();
            tracing::error!(%version, problems = ?reasons, "snapshot rejected; the last good configuration keeps serving");
            pb::data_plane_message::Kind::Nack(pb::Nack {
                version,
                errors: resource_errors(&problems),
            })
        }
    }
}

/// Converts build problems into the NACK's per-resource errors.
pub fn resource_errors(problems: &[BuildProblem]) -> Vec<pb::ResourceError> {
    problems
        .iter()
        .map(|p| pb::ResourceError {
            resource: p.resource.clone(),
            message: p.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
        assert_eq!(b.next_delay(0.999_999).as_millis(), 199);
        let d = b.next_delay(0.5);
        assert!(
            d >= Duration::from_millis(200) && d <= Duration::from_millis(400),
            "{d:?}"
        );
        for _ in 0..40 {
            assert!(b.next_delay(1.0) <= Duration::from_secs(1));
        }
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
    }

    #[test]
    fn build_problems_become_resource_errors() {
        let errors = resource_errors(&[BuildProblem {
            resource: "AIBackend/default/a".into(),
            message: "environment variable K is not set".into(),
        }]);
        assert_eq!(errors[0].resource, "AIBackend/default/a");
        assert_eq!(errors[0].message, "environment variable K is not set");
    }

    #[tokio::test]
    async fn usage_goes_out_once_per_stream_then_only_when_it_changed() {
        let h = crate::pipeline::testing::Harness::new(&[]);
        let state = &h.state;
        let mut last = None;
        let first = usage_report(state, &mut last).expect("one report per stream, even empty");
        assert!(first.teams.is_empty());
        assert!(usage_report(state, &mut last).is_none(), "nothing changed");
        state.usage.request("ns/t", crate::limits::Window::Month);
        let r = usage_report(state, &mut last).expect("a change is reported");
        assert_eq!(r.teams[0].requests, 1);
        assert!(r.sequence > first.sequence);
        assert!(usage_report(state, &mut last).is_none());
        // A new stream starts with no report sent.
        assert!(usage_report(state, &mut None).is_some());
    }

    /// Options for a controller that is not there (nothing listens on port 1).
    fn unreachable(finish: watch::Receiver<bool>) -> ClusterOptions {
        ClusterOptions {
            controller: "http://127.0.0.1:1".into(),
            transport: ControllerTransport::InsecurePlaintext,
            node_id: "test".into(),
            cache: None,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            idle_timeout: Duration::from_secs(60),
            backoff: Backoff::new(Duration::from_secs(20), Duration::from_secs(20)),
            usage_report_interval: Duration::from_secs(5),
            finish,
        }
    }

    #[tokio::test]
    async fn a_stopping_data_plane_does_not_wait_out_a_reconnect_backoff() {
        let h = crate::pipeline::testing::Harness::new(&[]);
        let (logs, _guard) = crate::pipeline::testing::capture_logs();
        let (finish_tx, finish) = watch::channel(false);
        let run = tokio::spawn(run(h.state.clone(), unreachable(finish)));
        // The connection is refused; `run` then waits 10–20 s before the next attempt.
        crate::pipeline::testing::eventually("the first attempt failed", || {
            logs.text()
                .contains("controller stream ended; reconnecting")
        })
        .await;
        finish_tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("returns without waiting for the backoff")
            .expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn a_data_plane_that_already_stops_does_not_connect() {
        let h = crate::pipeline::testing::Harness::new(&[]);
        let (finish_tx, finish) = watch::channel(false);
        finish_tx.send_replace(true);
        tokio::time::timeout(
            Duration::from_secs(1),
            run(h.state.clone(), unreachable(finish)),
        )
        .await
        .expect("returns at once");
        drop(finish_tx);
    }

    #[test]
    fn node_id_is_never_empty() {
        assert!(!default_node_id().is_empty());
    }
}
