//! The proxy listener: accepts connections within its cap, reads each
//! CONNECT head within the first-byte and header timeouts, checks the
//! proxy credential, then intercepts, tunnels or refuses. One task per
//! connection holds the connection's slot until the tunnel or the
//! intercepted connection ends. At shutdown the listener stops accepting,
//! intercepted connections close gracefully and tunnels run on, all within
//! the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};

use super::connect::{self, ConnectRequest, HeadError, ProxyCredential};
use super::io::Rewind;
use super::{OtherHosts, Proxy, ProxyAuth};
use crate::metrics::{ConnClosedLabels, ListenerLabels};
use crate::runtime::RuntimeConfig;
use crate::server::conn::CLOSE_GRACE;

/// Refused connections answered at once; beyond this they are just closed.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// Open connections; `wait_zero` resolves when none is left.
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

/// Serves the proxy on `listener` until `shutdown` resolves, then drains
/// open connections for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let limits = proxy.options.limits;
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let live = Arc::new(Live::default());
    let (drain_tx, drain_rx) = watch::channel(false);
    let labels = ListenerLabels {
        listener: limits.listener,
    };
    let metrics = proxy.state.metrics.clone();
    let open = metrics.connections_open.get_or_create(&labels).clone();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(listener = limits.listener, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.connections_refused.get_or_create(&labels).inc();
            refuse_at_cap(stream, &refusals);
            continue;
        };
        let _ = stream.set_nodelay(true);
        live.count.fetch_add(1, Ordering::SeqCst);
        open.inc();
        let proxy = proxy.clone();
        let live = live.clone();
        let open = open.clone();
        let drain = drain_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            connection(proxy, stream, peer, drain).await;
            open.dec();
            if live.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                live.zero.notify_waiters();
            }
        });
    }
    drop(listener);
    let _ = drain_tx.send(true);
    tokio::select! {
        () = live.wait_zero() => tracing::info!(listener = limits.listener, "all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!(listener = limits.listener, ?grace, "grace period over; closing remaining connections"),
    }
}

/// Answers a connection beyond the cap with 503 and closes it.
fn refuse_at_cap(mut stream: TcpStream, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let answer = connect::refusal(
            503,
            "the gateway proxy is at its connection limit; retry shortly",
        );
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            stream.write_all(&answer).await?;
            stream.shutdown().await
        })
        .await;
    });
}

/// Why a head could not be read.
enum ReadHead {
    /// The connection closed or failed before a whole head.
    Gone,
    /// No byte within the first-byte timeout, or no whole head within the header timeout.
    TimedOut(&'static str),
    /// The head is refused.
    Bad(HeadError),
}

/// Reads the CONNECT head; returns it and the bytes read past it.
async fn read_head(
    stream: &mut TcpStream,
    first_byte: Duration,
    header: Duration,
) -> Result<(ConnectRequest, Bytes), ReadHead> {
    let started = tokio::time::Instant::now();
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let deadline = if buf.is_empty() {
            started + first_byte.min(header)
        } else {
            started + header
        };
        let reason = if buf.is_empty() {
            "first_byte_timeout"
        } else {
            "header_timeout"
        };
        let n = match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_) => return Err(ReadHead::TimedOut(reason)),
            Ok(Err(_) | Ok(0)) => return Err(ReadHead::Gone),
            Ok(Ok(n)) => n,
        };
        debug_assert!(n > 0);
        match connect::parse_head(&buf) {
            Ok(Some((req, len))) => {
                let rest = buf.split_off(len).freeze();
                return Ok((req, rest));
            }
            Ok(None) => {}
            Err(e) => return Err(ReadHead::Bad(e)),
        }
    }
}

/// Writes a refusal and closes, counting the outcome.
async fn refuse(
    proxy: &Proxy,
    mut stream: TcpStream,
    status: u16,
    reason: &str,
    outcome: &'static str,
) {
    proxy.state.metrics.proxy.connect(outcome);
    let answer = connect::refusal(status, reason);
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// One proxy connection, from its CONNECT head to its end.
async fn connection(
    proxy: Arc<Proxy>,
    mut stream: TcpStream,
    peer: SocketAddr,
    drain: watch::Receiver<bool>,
) {
    let limits = proxy.options.limits;
    let (req, rest) = match read_head(
        &mut stream,
        limits.first_byte_timeout,
        limits.header_read_timeout,
    )
    .await
    {
        Ok(head) => head,
        Err(ReadHead::Gone) => return,
        Err(ReadHead::TimedOut(reason)) => {
            proxy
                .state
                .metrics
                .connections_closed
                .get_or_create(&ConnClosedLabels {
                    listener: limits.listener,
                    reason,
                })
                .inc();
            return;
        }
        Err(ReadHead::Bad(e)) => {
            let status = match e {
                HeadError::TooLarge => 431,
                HeadError::NotConnect(_) => 405,
                HeadError::Malformed(_) | HeadError::BadTarget(_) => 400,
            };
            return refuse(&proxy, stream, status, &e.to_string(), "bad_request").await;
        }
    };
    let Some(cfg) = proxy.state.store.load() else {
        return refuse(
            &proxy,
            stream,
            503,
            "the gateway has no configuration yet",
            "not_ready",
        )
        .await;
    };
    let intercept = proxy.options.intercept.contains(&req.host);
    let scope = intercept.then_some(req.host.as_str());
    let token: Option<Arc<str>> = match &req.credential {
        Some(ProxyCredential::Malformed) => {
            return refuse(
                &proxy,
                stream,
                407,
                "Proxy-Authorization must be Bearer <token> or Basic with the token as password",
                "unauthenticated",
            )
            .await;
        }
        Some(ProxyCredential::Token(t)) => {
            if !accepted(&cfg, scope, Some(t)).await {
                return refuse(
                    &proxy,
                    stream,
                    407,
                    "the proxy credential is not accepted",
                    "unauthenticated",
                )
                .await;
            }
            Some(Arc::from(t.as_str()))
        }
        None => {
            if proxy.options.auth == ProxyAuth::Required && !accepted(&cfg, scope, None).await {
                return refuse(
                    &proxy,
                    stream,
                    407,
                    "proxy authentication required: send Proxy-Authorization with a gateway token",
                    "unauthenticated",
                )
                .await;
            }
            None
        }
    };
    drop(cfg);
    if intercept {
        proxy.state.metrics.proxy.connect("intercepted");
        if stream.write_all(connect::ESTABLISHED).await.is_err() {
            return;
        }
        tracing::debug!(%peer, host = %req.host, "proxy: intercepting");
        let io = Rewind::new(rest, stream);
        super::intercept::serve(proxy.clone(), io, req.host, peer, token, drain).await;
        return;
    }
    if proxy.options.other_hosts == OtherHosts::Refuse {
        return refuse(
            &proxy,
            stream,
            403,
            "this proxy only serves the gateway's model API hosts",
            "refused",
        )
        .await;
    }
    if !proxy.options.tunnel_ports.contains(&req.port) {
        return refuse(
            &proxy,
            stream,
            403,
            "tunnels to this port are not allowed",
            "refused",
        )
        .await;
    }
    let upstream = match super::tunnel::connect(&req.host, req.port, proxy.options.connect_timeout)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, host = %req.host, port = req.port, error = %e, "proxy: tunnel target unreachable");
            return refuse(
                &proxy,
                stream,
                502,
                "the tunnel target cannot be reached",
                "upstream_unreachable",
            )
            .await;
        }
    };
    proxy.state.metrics.proxy.connect("tunnelled");
    if stream.write_all(connect::ESTABLISHED).await.is_err() {
        return;
    }
    let client = Rewind::new(rest, stream);
    let end = super::tunnel::relay(client, upstream, limits.idle_timeout).await;
    if end == super::tunnel::TunnelEnd::Idle {
        proxy
            .state
            .metrics
            .connections_closed
            .get_or_create(&ConnClosedLabels {
                listener: limits.listener,
                reason: "idle_timeout",
            })
            .inc();
    }
}

/// True when some route that could serve `scope` (a host; `None`: any
/// route) accepts `token` (or, without one, is open).
async fn accepted(cfg: &RuntimeConfig, scope: Option<&str>, token: Option<&str>) -> bool {
    let mut headers = HeaderMap::new();
    if let Some(t) = token {
        super::inner::replace_credential(&mut headers, t);
    }
    for route in cfg.routes.iter().filter(|r| r.unavailable.is_none()) {
        if let Some(host) = scope
            && !route.hostnames.is_empty()
            && !route.hostnames.iter().any(|n| n.eq_ignore_ascii_case(host))
        {
            continue;
        }
        if route.auth.authenticate(&headers).await.is_ok() {
            return true;
        }
    }
    false
}
