//! An intercepted CONNECT: TLS is terminated with a leaf minted for the
//! CONNECT host, and the decrypted requests (HTTP/1.1, or HTTP/2 by ALPN)
//! are served by the normal request pipeline, after [`super::inner`] made
//! them traffic-port requests. The connection has the traffic port's
//! bounds: the TLS handshake must finish within the header timeout, then
//! the first-byte and idle timeouts apply as on the traffic port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::Proxy;
use super::leaves::ConnectionResolver;
use crate::metrics::ConnClosedLabels;
use crate::server::conn::{Activity, CLOSE_GRACE, TrackedBody, TrackedIo};

/// The rustls server configuration for one intercepted host.
fn tls_config(proxy: &Proxy, host: &str) -> Option<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ConnectionResolver {
            leaves: proxy.leaves.clone(),
            host: host.to_owned(),
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Some(Arc::new(config))
}

/// Terminates TLS on `io` for `host` and serves its requests until the
/// client closes, the connection idles out, or `drain` turns true.
pub async fn serve<S>(
    proxy: Arc<Proxy>,
    io: S,
    host: String,
    peer: SocketAddr,
    token: Option<Arc<str>>,
    mut drain: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = proxy.options.limits;
    let Some(config) = tls_config(&proxy, &host) else {
        tracing::warn!("proxy: no TLS server configuration could be built");
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, %host, error = %e, "proxy: TLS handshake failed (does the client trust the gateway CA?)");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, %host, "proxy: TLS handshake timed out");
            return;
        }
    };
    let activity = Activity::new();
    let service = {
        let activity = activity.clone();
        let state = proxy.state.clone();
        service_fn(move |req: Request<Incoming>| {
            let in_flight = activity.request_started();
            let state = state.clone();
            let host = host.clone();
            let token = token.clone();
            async move {
                let (mut parts, body) = req.into_parts();
                super::inner::retarget(&mut parts, &host);
                if let Some(cfg) = state.store.load() {
                    super::inner::identify(&cfg, &mut parts, token.as_deref()).await;
                }
                let req = Request::from_parts(parts, crate::pipeline::request_body(body));
                let resp = crate::pipeline::handle_from(state, req, Some(peer)).await;
                Ok::<_, Infallible>(resp.map(|b| TrackedBody::new(b, in_flight)))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(crate::server::H2_MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn =
        builder.serve_connection(TokioIo::new(TrackedIo::new(tls, activity.clone())), service);
    tokio::pin!(conn);
    let metrics = proxy.state.metrics.clone();
    let mut closing_until: Option<tokio::time::Instant> = None;
    let mut check_at = tokio::time::Instant::now();
    loop {
        let wake = closing_until.unwrap_or(check_at);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "proxy: intercepted connection ended with an error");
                }
                break;
            }
            changed = drain.changed(), if closing_until.is_none() => {
                if changed.is_err() || *drain.borrow() {
                    conn.as_mut().graceful_shutdown();
                    // The listener's grace period bounds the drain.
                    closing_until = Some(tokio::time::Instant::now() + Duration::from_secs(86_400));
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if closing_until.is_some() {
                    break;
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
}
