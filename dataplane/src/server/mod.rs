//! Stage: accept. The listeners (traffic and admin), with every
//! connection-level bound in one place ([`ConnLimits`], defaults in
//! `docs/operations.md`):
//!
//! - a connection cap per listener: a connection beyond it gets a 503 with
//!   `Retry-After` and is closed, so a flood of idle connections cannot take
//!   the process's file descriptors; the admin listener has its own small
//!   cap, drawn from descriptors the traffic cap leaves free, so health
//!   checks and metrics keep answering while traffic is saturated;
//! - a first-byte timeout and an idle timeout on every protocol (HTTP/1
//!   before the first byte and between requests, the protocol-detection
//!   step, HTTP/2 with no stream open), see [`conn`];
//! - the HTTP/1 header read timeout; HTTP/2 stream limits and keep-alive
//!   pings.
//!
//! Both listeners accept HTTP/1.1 and cleartext HTTP/2 on one socket. On
//! shutdown the listener stops accepting and open connections are drained
//! (in-flight requests and streams finish) up to the grace period. What
//! still runs then is cut: [`AppState::cut`] is set and every connection is
//! closed, so each cut stream is recorded (outcome `shutdown`) and charged
//! with the usage seen, before `serve` returns.

mod admin;
pub mod conn;
pub mod fd_limit;
mod on_wake;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};

pub use admin::handle as handle_admin;

use crate::metrics::{ConnClosedLabels, ListenerLabels};
use crate::response::ResponseBody;
use crate::state::AppState;
use conn::{Activity, CLOSE_GRACE, TrackedBody, TrackedIo};
use on_wake::{PollOnWake, WakeSignal};

/// What ends or changes a connection besides its own traffic.
enum Control {
    /// The grace period is over: close now.
    Cut,
    /// The drain flag changed (to set, or the listener is gone: `true`).
    Drain(bool),
    /// The timeout check is due (or the close grace ran out).
    Timer,
}

/// Default cap on a new connection's wait for its first byte.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default idle time after which a connection with no request is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default longest time to receive an HTTP/1 request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections of the admin listener.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;
/// Concurrent HTTP/2 streams per connection.
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 256;
/// Refused connections answered at once (each gets its 503 and up to
/// [`CLOSE_GRACE`] to read it); beyond this they are closed without one.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// The bounds of one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// `traffic` or `admin` (metric label).
    pub listener: &'static str,
    /// Open connections at most; more are refused with 503.
    pub max_connections: usize,
    /// A new connection must send its first byte within this.
    pub first_byte_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// An HTTP/1 request head must arrive within this.
    pub header_read_timeout: Duration,
}

impl ConnLimits {
    /// The traffic listener's limits with the given cap and default timeouts.
    pub fn traffic(max_connections: usize) -> Self {
        Self {
            listener: "traffic",
            max_connections,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }

    /// The admin listener's limits.
    pub fn admin() -> Self {
        Self {
            listener: "admin",
            max_connections: ADMIN_MAX_CONNECTIONS,
            ..Self::traffic(ADMIN_MAX_CONNECTIONS)
        }
    }
}

/// Open connections of a listener; `wait_zero` resolves when none is left.
#[derive(Default)]
struct Live {
    count: AtomicUsize,
    zero: Notify,
}

impl Live {
    async fn wait_zero(&self) {
        loop {
            let notified = self.zero.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Serves `handler` on `listener` until `shutdown` resolves, then drains
/// open connections for at most `grace`. `handler` gets each request with
/// the address of the connection's peer.
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: ConnLimits,
    state: Arc<AppState>,
    handler: H,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    H: Fn(Arc<AppState>, Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let live = Arc::new(Live::default());
    let (drain_tx, drain_rx) = watch::channel(false);
    let (cut_tx, cut_rx) = watch::channel(false);
    let labels = ListenerLabels {
        listener: limits.listener,
    };
    let open = state
        .metrics
        .connections_open
        .get_or_create(&labels)
        .clone();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors (or similar): the pending
                    // connection stays queued; try again shortly.
                    tracing::warn!(listener = limits.listener, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            state
                .metrics
                .connections_refused
                .get_or_create(&labels)
                .inc();
            refuse(stream, &refusals);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let service = {
            let state = state.clone();
            let handler = handler.clone();
            let activity = activity.clone();
            service_fn(move |req: Request<Incoming>| {
                let in_flight = activity.request_started();
                let fut = handler(state.clone(), req, peer);
                async move {
                    let resp = fut.await;
                    Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, in_flight)))
                }
            })
        };
        let io = TokioIo::new(TrackedIo::new(stream, activity.clone()));
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let live = live.clone();
        let mut drain = drain_rx.clone();
        let mut cut = cut_rx.clone();
        let metrics = state.metrics.clone();
        let open = open.clone();
        live.count.fetch_add(1, Ordering::SeqCst);
        open.inc();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(conn);
            let mut closing_until: Option<tokio::time::Instant> = None;
            let mut check_at = tokio::time::Instant::now();
            // The rare events are polled only when they woke the task, not
            // on each of the connection's own wake-ups (`on_wake`).
            let (signal, signal_waker) = WakeSignal::new();
            loop {
                let wake = closing_until.unwrap_or(check_at);
                let draining = closing_until.is_some();
                let control = std::pin::pin!(async {
                    tokio::select! {
                        _ = cut.wait_for(|c| *c) => Control::Cut,
                        changed = drain.changed(), if !draining => {
                            Control::Drain(changed.is_err() || *drain.borrow())
                        }
                        () = tokio::time::sleep_until(wake) => Control::Timer,
                    }
                });
                let mut control = PollOnWake::new(control, &signal, &signal_waker);
                let event = std::future::poll_fn(|cx| {
                    if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                        return Poll::Ready(Err(result));
                    }
                    Pin::new(&mut control).poll(cx).map(Ok)
                })
                .await;
                match event {
                    Err(result) => {
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    Ok(Control::Cut) => break, // the grace period is over
                    Ok(Control::Drain(false)) => {}
                    Ok(Control::Drain(true)) => {
                        conn.as_mut().graceful_shutdown();
                        // The listener's grace period bounds the drain.
                        closing_until =
                            Some(tokio::time::Instant::now() + Duration::from_secs(86_400));
                    }
                    Ok(Control::Timer) => {
                        if closing_until.is_some() {
                            break; // did not close in time
                        }
                        let now = tokio::time::Instant::now();
                        match activity.check(now, limits.first_byte_timeout, limits.idle_timeout) {
                            Ok(next) => check_at = next,
                            Err(expiry) => {
                                metrics
                                    .connections_closed
                                    .get_or_create(&ConnClosedLabels {
                                        listener: limits.listener,
                                        reason: expiry.label(),
                                    })
                                    .inc();
                                conn.as_mut().graceful_shutdown();
                                closing_until = Some(now + CLOSE_GRACE);
                            }
                        }
                    }
                }
            }
            open.dec();
            if live.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                live.zero.notify_waiters();
            }
        });
    }
    drop(listener);
    let _ = drain_tx.send(true);
    tokio::select! {
        () = live.wait_zero() => {
            tracing::info!(listener = limits.listener, "all connections drained");
            return;
        }
        () = tokio::time::sleep(grace) => tracing::warn!(listener = limits.listener, ?grace, "grace period over; cutting remaining connections"),
    }
    // Dropping a connection drops its requests and streams, which record
    // (and charge) themselves as cut.
    // (The admin listener serves no model requests: its cut says nothing
    // about theirs.)
    if limits.listener != ConnLimits::admin().listener {
        state.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let _ = cut_tx.send(true);
    if tokio::time::timeout(CUT_WAIT, live.wait_zero())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = limits.listener,
            "connections still open after the cut"
        );
    }
}

/// Longest wait for connections to close once cut.
const CUT_WAIT: Duration = Duration::from_secs(2);

/// The answer to a connection beyond the cap, in a shape both OpenAI and
/// Anthropic clients read (`error.message`; `type: error` with an
/// `overloaded_error`).
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 118\r\n\
\r\n\
{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"the gateway is at its connection limit; retry shortly\"}}";

/// Answers a connection beyond the cap with [`REFUSAL`] and closes it. The
/// client's request is read and discarded (briefly) first, so closing does
/// not reset the connection before the client saw the answer.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return; // too many refusals in progress: just close
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        let answer = async {
            stream.write_all(REFUSAL).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut left: usize = 64 << 10;
            while left > 0 {
                let n = stream.read(&mut sink).await?;
                if n == 0 {
                    break;
                }
                left = left.saturating_sub(n);
            }
            Ok::<_, std::io::Error>(())
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, answer).await;
    });
}

/// Binds a listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests;
