//! The gRPC snapshot server (`SnapshotService`, port 9978).
//!
//! Per stream: the data plane's first message must be a Hello naming it
//! (within [`GrpcOptions::hello_timeout`]); the server then sends the current
//! snapshot, then every new version (never the same version twice on one
//! stream), and a Keepalive every [`GrpcOptions::keepalive`]. ACKs and NACKs
//! are recorded in the [`Fleet`]. HTTP/2 PINGs keep the connection itself
//! checked in both directions.
//!
//! Message sizes are limited deliberately: snapshots up to
//! [`GrpcOptions::max_snapshot_bytes`] (16 MiB by default) are sent; a larger
//! one is not sent at all, logged as an error naming both sizes and counted
//! as `switchboard_controller_snapshot_pushes_total{result="too_large"}`, and
//! data planes keep the version they run. Messages from data planes are
//! limited to [`GrpcOptions::max_inbound_bytes`].
//!
//! Every replica serves. On shutdown every stream ends cleanly (OK status),
//! so data planes reconnect to another replica at once.
//!
//! Security: with [`tls::ServerTls`] the port speaks TLS only (the
//! certificate reloads when its files change); every stream is
//! authenticated by the server's [`auth::Authenticator`] before anything is
//! read or sent, so a refused peer neither receives a snapshot nor reaches
//! the [`Fleet`] (status, Events) with its ACKs and NACKs. A stream ends
//! cleanly when its token expires; the data plane reconnects with the
//! refreshed token.

pub mod auth;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message as _;
use switchboard_proto::snapshot_service_server::{SnapshotService, SnapshotServiceServer};
use switchboard_proto::{
    ControllerMessage, DataPlaneMessage, Keepalive, Snapshot, controller_message,
    data_plane_message,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::fleet::{Fleet, Registration};
use crate::metrics::{AuthLabels, Metrics, PushLabels};
use crate::pipeline::Rendered;
use auth::{Authenticator, Identity};
use tls::ServerTls;

/// Default largest snapshot message: 16 MiB.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: usize = 16 * 1024 * 1024;

/// Limits and intervals of the snapshot server.
#[derive(Clone, Debug)]
pub struct GrpcOptions {
    /// Largest encoded snapshot message sent.
    pub max_snapshot_bytes: usize,
    /// Largest message accepted from a data plane.
    pub max_inbound_bytes: usize,
    /// Interval of Keepalive messages and HTTP/2 PINGs.
    pub keepalive: Duration,
    /// How long a new stream may take to send its Hello.
    pub hello_timeout: Duration,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        Self {
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            max_inbound_bytes: 4 * 1024 * 1024,
            keepalive: Duration::from_secs(15),
            hello_timeout: Duration::from_secs(10),
        }
    }
}

/// What every stream needs.
#[derive(Clone)]
pub struct SnapshotServer {
    /// The pipeline's output.
    pub rendered: watch::Receiver<Arc<Rendered>>,
    /// Connected data planes.
    pub fleet: Fleet,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Becomes `true` on shutdown; every stream then ends.
    pub shutdown: watch::Receiver<bool>,
    /// Limits and intervals.
    pub options: GrpcOptions,
    /// Who may open a stream.
    pub auth: Arc<Authenticator>,
}

type OutMessage = Result<ControllerMessage, Status>;

#[tonic::async_trait]
impl SnapshotService for SnapshotServer {
    type StreamStream = ReceiverStream<OutMessage>;

    async fn stream(
        &self,
        request: Request<Streaming<DataPlaneMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let peer = request.remote_addr();
        // Before anything is read or sent: a refused peer never gets a
        // snapshot and never reaches the fleet.
        let identity = match self.auth.authenticate(request.metadata()).await {
            Ok(identity) => identity,
            Err(denied) => {
                self.metrics
                    .dataplane_auth
                    .get_or_create(&AuthLabels {
                        result: denied.metric_label(),
                    })
                    .inc();
                tracing::warn!(?peer, code = ?denied.kind, reason = %denied.reason, "snapshot stream refused");
                return Err(denied.status());
            }
        };
        let (tx, rx) = mpsc::channel(4);
        let server = self.clone();
        tokio::spawn(async move {
            tracing::debug!(?peer, subject = %identity.subject, "snapshot stream opened");
            serve_stream(request.into_inner(), tx, server, identity).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Serves the snapshot service on `listener` (over TLS when `tls` is given,
/// else plaintext) until `shutdown` resolves (set the server's `shutdown`
/// watch first so streams end), then waits for the connections to close.
pub async fn serve(
    listener: TcpListener,
    server: SnapshotServer,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let opts = server.options.clone();
    let metrics = server.metrics.clone();
    let service = SnapshotServiceServer::new(server)
        .max_decoding_message_size(opts.max_inbound_bytes)
        .max_encoding_message_size(opts.max_snapshot_bytes + 1024);
    let builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(opts.keepalive))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    let Some(tls) = tls else {
        builder
            .serve_with_incoming_shutdown(
                service,
                tonic::transport::server::TcpIncoming::from(listener),
                shutdown,
            )
            .await?;
        return Ok(());
    };
    let (accepted_tx, accepted_rx) = mpsc::channel(16);
    let accept = tls::accept_loop(listener, tls, metrics, accepted_tx);
    let serve =
        builder.serve_with_incoming_shutdown(service, ReceiverStream::new(accepted_rx), shutdown);
    tokio::pin!(serve);
    tokio::select! {
        biased;
        r = &mut serve => return Ok(r?),
        // The acceptor ends only once the server dropped its side of the
        // channel, which it does when it stops taking connections at
        // shutdown: the server then drains its open connections, and
        // dropping it here would cut them (data planes would see a broken
        // connection instead of the end of their stream).
        () = accept => {}
    }
    serve.await?;
    Ok(())
}

/// What a stream last sent.
struct Sent {
    version: String,
    at: Instant,
    answered: bool,
}

/// Runs one authenticated data plane's stream: Hello, snapshots, ACK/NACK,
/// keepalives, until it ends or `identity`'s token expires.
pub async fn serve_stream<S>(
    mut inbound: S,
    out: mpsc::Sender<OutMessage>,
    server: SnapshotServer,
    identity: Identity,
) where
    S: Stream<Item = Result<DataPlaneMessage, Status>> + Unpin,
{
    let hello = match tokio::time::timeout(server.options.hello_timeout, inbound.next()).await {
        Ok(Some(Ok(DataPlaneMessage {
            kind: Some(data_plane_message::Kind::Hello(h)),
        }))) if !h.node_id.is_empty() => h,
        Ok(Some(Ok(_))) => {
            let status =
                Status::invalid_argument("the first message must be a Hello with a node_id");
            let _ = out.send(Err(status)).await;
            return;
        }
        Ok(Some(Err(status))) => {
            tracing::debug!(%status, "stream failed before Hello");
            return;
        }
        Ok(None) => return,
        Err(_) => {
            let _ = out
                .send(Err(Status::deadline_exceeded("no Hello received in time")))
                .await;
            return;
        }
    };
    if let Err(denied) = identity.check_node_id(&hello.node_id) {
        server
            .metrics
            .dataplane_auth
            .get_or_create(&AuthLabels {
                result: denied.metric_label(),
            })
            .inc();
        tracing::warn!(subject = %identity.subject, reason = %denied.reason, "snapshot stream refused");
        let _ = out.send(Err(denied.status())).await;
        return;
    }
    server
        .metrics
        .dataplane_auth
        .get_or_create(&AuthLabels { result: "allowed" })
        .inc();
    let reg = server.fleet.connect(&hello.node_id, &hello.serving_version);
    server
        .metrics
        .connected_dataplanes
        .set(server.fleet.len() as i64);
    tracing::info!(node = %hello.node_id, serving = %hello.serving_version, subject = %identity.subject, "data plane connected");
    let reason = session(&mut inbound, &out, &server, &reg, identity.expires_at).await;
    tracing::info!(node = %hello.node_id, reason, "data plane stream ended");
    server.fleet.disconnect(reg);
    server
        .metrics
        .connected_dataplanes
        .set(server.fleet.len() as i64);
}

/// The tokio instant at which a token valid until `expires_at` expires.
fn expiry_instant(expires_at: Option<SystemTime>) -> Option<Instant> {
    let at = expires_at?;
    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
    Some(Instant::now() + left)
}

async fn session<S>(
    inbound: &mut S,
    out: &mpsc::Sender<OutMessage>,
    server: &SnapshotServer,
    reg: &Registration,
    expires_at: Option<SystemTime>,
) -> &'static str
where
    S: Stream<Item = Result<DataPlaneMessage, Status>> + Unpin,
{
    let expiry = expiry_instant(expires_at);
    let token_expired = async {
        match expiry {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(token_expired);
    let mut rendered = server.rendered.clone();
    let mut shutdown = server.shutdown.clone();
    let mut sent: Option<Sent> = None;
    let mut keepalive = tokio::time::interval_at(
        Instant::now() + server.options.keepalive,
        server.options.keepalive,
    );
    let current = rendered.borrow_and_update().snapshot.clone();
    if let Some(s) = current
        && !push(out, &s, server, reg, &mut sent).await
    {
        return "data plane gone";
    }
    loop {
        tokio::select! {
            biased;
            _ = async { shutdown.wait_for(|s| *s).await.map(|_| ()) } => {
                return "controller shutting down";
            }
            // Ends cleanly: the data plane reconnects with its refreshed token.
            () = &mut token_expired => {
                return "token expired";
            }
            msg = inbound.next() => match msg {
                None => return "closed by the data plane",
                Some(Err(status)) => {
                    tracing::debug!(node = reg.id(), %status, "stream error");
                    return "stream error";
                }
                Some(Ok(m)) => handle(m, server, reg, &mut sent),
            },
            r = rendered.changed() => {
                if r.is_err() {
                    return "renderer gone";
                }
                let current = rendered.borrow_and_update().snapshot.clone();
                if let Some(s) = current
                    && sent.as_ref().map(|x| x.version.as_str()) != Some(s.version.as_str())
                    && !push(out, &s, server, reg, &mut sent).await
                {
                    return "data plane gone";
                }
            }
            _ = keepalive.tick() => {
                let msg = ControllerMessage { kind: Some(controller_message::Kind::Keepalive(Keepalive {})) };
                if out.send(Ok(msg)).await.is_err() {
                    return "data plane gone";
                }
            }
        }
    }
}

/// Sends `snapshot` unless it exceeds the size limit; returns false when the
/// stream is gone.
async fn push(
    out: &mpsc::Sender<OutMessage>,
    snapshot: &Arc<Snapshot>,
    server: &SnapshotServer,
    reg: &Registration,
    sent: &mut Option<Sent>,
) -> bool {
    let msg = ControllerMessage {
        kind: Some(controller_message::Kind::Snapshot(Snapshot::clone(
            snapshot,
        ))),
    };
    let size = msg.encoded_len();
    *sent = Some(Sent {
        version: snapshot.version.clone(),
        at: Instant::now(),
        answered: false,
    });
    if size > server.options.max_snapshot_bytes {
        server
            .metrics
            .pushes
            .get_or_create(&PushLabels {
                result: "too_large",
            })
            .inc();
        tracing::error!(
            node = reg.id(),
            version = %snapshot.version,
            size,
            limit = server.options.max_snapshot_bytes,
            "snapshot exceeds the gRPC message size limit and is not sent; the data plane keeps its current version"
        );
        return true;
    }
    server
        .metrics
        .pushes
        .get_or_create(&PushLabels { result: "sent" })
        .inc();
    tracing::debug!(node = reg.id(), version = %snapshot.version, size, "snapshot sent");
    out.send(Ok(msg)).await.is_ok()
}

fn handle(
    msg: DataPlaneMessage,
    server: &SnapshotServer,
    reg: &Registration,
    sent: &mut Option<Sent>,
) {
    let mut observe = |version: &str| {
        if let Some(s) = sent.as_mut()
            && s.version == version
            && !s.answered
        {
            s.answered = true;
            server
                .metrics
                .push_latency
                .observe(s.at.elapsed().as_secs_f64());
        }
    };
    match msg.kind {
        Some(data_plane_message::Kind::Ack(ack)) => {
            observe(&ack.version);
            server.metrics.acks.inc();
            tracing::debug!(node = reg.id(), version = %ack.version, "ACK");
            server.fleet.ack(reg, &ack.version);
        }
        Some(data_plane_message::Kind::Nack(nack)) => {
            observe(&nack.version);
            server.metrics.nacks.inc();
            let reasons: Vec<String> = nack
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.resource, e.message))
                .collect();
            tracing::warn!(node = reg.id(), version = %nack.version, errors = ?reasons, "NACK: the data plane keeps its last good snapshot");
            server.fleet.nack(reg, &nack.version, nack.errors);
        }
        Some(data_plane_message::Kind::Usage(report)) => {
            tracing::trace!(node = reg.id(), teams = report.teams.len(), "usage report");
            server.fleet.report_usage(reg, report);
        }
        Some(data_plane_message::Kind::Hello(_)) => {
            tracing::debug!(node = reg.id(), "repeated Hello ignored");
        }
        None => {}
    }
}

#[cfg(test)]
mod tests;
