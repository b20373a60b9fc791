//! Upstream connections, pooled per origin by the gateway itself.
//!
//! hyper's connection API (`hyper::client::conn`) under a pool of our own.
//! Each origin (scheme and authority) keeps:
//! - its idle HTTP/1.1 connections, the most recently used first, at most
//!   [`MAX_IDLE_PER_ORIGIN`], each dropped once it waited longer than
//!   [`IDLE_TIMEOUT`];
//! - at most one shared HTTP/2 connection, used for every request while it
//!   is open, when ALPN chose `h2`.
//!
//! A transport resolves its origin once and remembers it (a backend talks to
//! one origin), so a request does no hashing, no `Host` formatting and no
//! per-request bookkeeping allocation; `hyper_util`'s pool did all three
//! twice per request (docs/benchmarks.md).
//!
//! Reuse rules, the same as `hyper_util`'s client:
//! - an HTTP/1.1 connection goes back to its origin when the answer's body
//!   has ended (or at once when hyper already read it whole); an answer
//!   dropped before its end closes the connection;
//! - a request that could not be written on a reused connection (the
//!   server closed it while idle) is sent again on another one; a request
//!   on a fresh connection is never sent twice;
//! - `Host` is set for HTTP/1.1 unless the request has one (SigV4 signs it),
//!   and the request target is sent in origin form.
//!
//! Each connection is driven by its own task, which ends with the
//! connection; its error is logged at debug level.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use super::{BodyError, SendError, UpstreamBody};

/// Idle HTTP/1.1 connections kept per origin.
pub const MAX_IDLE_PER_ORIGIN: usize = 256;

/// How long an idle connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What opens upstream connections: TCP (connect timeout, no delay,
/// keep-alive probes), then TLS with ALPN for `https`.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

type H1 = http1::SendRequest<Full<Bytes>>;
type H2 = http2::SendRequest<Full<Bytes>>;

/// The connections made by one [`Connector`], by origin; shared across
/// configuration snapshots, so a reload keeps warm connections.
pub struct Connections {
    connector: Connector,
    origins: Mutex<HashMap<(Scheme, Authority), Arc<Origin>>>,
}

impl Connections {
    /// No connections yet; new ones are opened by `connector`.
    pub fn new(connector: Connector) -> Self {
        Self {
            connector,
            origins: Mutex::default(),
        }
    }

    /// The pool of `scheme://authority`, created on first use.
    pub fn origin(&self, scheme: &Scheme, authority: &Authority) -> Result<Arc<Origin>, SendError> {
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(origin) = origins.get(&(scheme.clone(), authority.clone())) {
            return Ok(origin.clone());
        }
        let origin = Arc::new(Origin::new(scheme.clone(), authority.clone())?);
        origins.insert((scheme.clone(), authority.clone()), origin.clone());
        Ok(origin)
    }

    /// Sends `req` to `origin` on an idle or shared connection, else on a new
    /// one; resolves when the response head arrived.
    pub async fn send(
        &self,
        origin: &Arc<Origin>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, SendError> {
        loop {
            let (conn, reused) = match origin.checkout().await {
                Some(conn) => (conn, true),
                // Boxed: connecting holds a TLS stream (6.5 KB) that would
                // otherwise sit in every request's future.
                None => (Box::pin(self.connect(origin)).await?, false),
            };
            let shared = matches!(conn, Conn::H2(_));
            match conn.send(origin, req).await {
                Ok(resp) => return Ok(resp),
                // The connection closed before the request went out: the
                // server dropped an idle connection. Only a reused one; it
                // is not handed out again (an idle one was taken off its
                // list, a shared one is forgotten).
                Err(Unsent::Again(back)) if reused => {
                    if shared {
                        origin.forget_shared();
                    }
                    req = *back;
                }
                Err(Unsent::Again(_)) => {
                    return Err(SendError::Failed(
                        "the new connection closed before the request was sent".into(),
                    ));
                }
                Err(Unsent::Failed(e)) => return Err(SendError::Failed(e)),
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Conn, SendError> {
        let io = self
            .connector
            .clone()
            .call(origin.connect_uri.clone())
            .await
            .map_err(|e| SendError::Connect(error_chain(&*e)))?;
        if io.connected().is_negotiated_h2() {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(|e| SendError::Connect(error_chain(&e)))?;
            drive("HTTP/2", conn);
            origin.share(sender.clone());
            Ok(Conn::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io)
                .await
                .map_err(|e| SendError::Connect(error_chain(&e)))?;
            drive("HTTP/1.1", conn);
            Ok(Conn::H1(sender))
        }
    }
}

/// Runs a connection until it closes, on its own task.
fn drive<F, E>(version: &'static str, conn: F)
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::error::Error,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(version, error = %error_chain(&e), "upstream connection ended");
        }
    });
}

/// One upstream origin: its idle HTTP/1.1 connections and its shared
/// HTTP/2 connection.
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// `scheme://authority/`, what the connector is called with.
    connect_uri: Uri,
    /// The `Host` of HTTP/1.1 requests: the host, and the port unless it is
    /// the scheme's default.
    host: HeaderValue,
    idle: Mutex<IdleList<H1>>,
    shared: Mutex<Option<H2>>,
}

impl Origin {
    fn new(scheme: Scheme, authority: Authority) -> Result<Self, SendError> {
        let connect_uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| SendError::Failed(format!("upstream address: {e}")))?;
        let host = host_header(&scheme, &authority).ok_or_else(|| {
            SendError::Failed(format!("upstream host {authority} is not a valid Host"))
        })?;
        Ok(Self {
            scheme,
            authority,
            connect_uri,
            host,
            idle: Mutex::new(IdleList::new(MAX_IDLE_PER_ORIGIN, IDLE_TIMEOUT)),
            shared: Mutex::default(),
        })
    }

    /// Whether `uri` is on this origin.
    pub fn serves(&self, uri: &Uri) -> bool {
        uri.scheme() == Some(&self.scheme) && uri.authority() == Some(&self.authority)
    }

    /// The shared HTTP/2 connection while it is open, else a ready idle
    /// HTTP/1.1 connection; none when a new one must be made.
    async fn checkout(&self) -> Option<Conn> {
        {
            let mut shared = lock(&self.shared);
            match &*shared {
                Some(h2) if !h2.is_closed() => return Some(Conn::H2(h2.clone())),
                Some(_) => *shared = None,
                None => {}
            }
        }
        loop {
            let mut h1 = lock(&self.idle).pop(Instant::now())?;
            if h1.is_closed() {
                continue;
            }
            // A connection given back as its answer's body ended may still
            // be finishing that answer: it gets ready, or closes, at once.
            if h1.is_ready() || h1.ready().await.is_ok() {
                return Some(Conn::H1(h1));
            }
        }
    }

    fn give_back(&self, h1: H1) {
        if !h1.is_closed() {
            lock(&self.idle).push(h1, Instant::now());
        }
    }

    fn forget_shared(&self) {
        *lock(&self.shared) = None;
    }

    fn share(&self, h2: H2) {
        let mut shared = lock(&self.shared);
        if shared.as_ref().is_none_or(|current| current.is_closed()) {
            *shared = Some(h2);
        }
    }

    /// `uri` in absolute form (HTTP/2 needs scheme and authority).
    fn absolute(&self, uri: &Uri) -> Uri {
        if uri.scheme().is_some() {
            return uri.clone();
        }
        let mut parts = uri.clone().into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `Host` for `authority`: without user information, with the port only
/// when it is not the scheme's default (what `hyper_util` sent).
fn host_header(scheme: &Scheme, authority: &Authority) -> Option<HeaderValue> {
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let text = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_owned(),
    };
    HeaderValue::from_str(&text).ok()
}

enum Conn {
    H1(H1),
    H2(H2),
}

/// Why a request got no response head.
enum Unsent {
    /// Not written at all: the request, to send elsewhere.
    Again(Box<Request<Full<Bytes>>>),
    /// Failed after it may have been written.
    Failed(String),
}

impl Conn {
    async fn send(
        self,
        origin: &Arc<Origin>,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Response<UpstreamBody>, Unsent> {
        match self {
            Conn::H2(mut h2) => {
                if req.uri().scheme().is_none() {
                    *req.uri_mut() = origin.absolute(req.uri());
                }
                let resp = h2.try_send_request(req).await.map_err(unsent)?;
                Ok(resp.map(|body| body.map_err(BodyError::new).boxed_unsync()))
            }
            Conn::H1(mut h1) => {
                if !req.headers().contains_key(http::header::HOST) {
                    req.headers_mut()
                        .insert(http::header::HOST, origin.host.clone());
                }
                if req.uri().scheme().is_some() {
                    let target = req
                        .uri()
                        .path_and_query()
                        .cloned()
                        .unwrap_or_else(|| PathAndQuery::from_static("/"));
                    *req.uri_mut() = Uri::from(target);
                }
                let resp = h1.try_send_request(req).await.map_err(unsent)?;
                if h1.is_ready() {
                    // hyper read the whole answer already.
                    origin.give_back(h1);
                    return Ok(resp.map(|body| body.map_err(BodyError::new).boxed_unsync()));
                }
                let origin = origin.clone();
                Ok(resp.map(|body| {
                    GiveBackAtEnd {
                        body,
                        conn: Some((h1, origin)),
                    }
                    .boxed_unsync()
                }))
            }
        }
    }
}

fn unsent(mut e: hyper::client::conn::TrySendError<Request<Full<Bytes>>>) -> Unsent {
    match e.take_message() {
        Some(req) => Unsent::Again(Box::new(req)),
        None => Unsent::Failed(error_chain(&e.into_error())),
    }
}

/// An HTTP/1.1 answer's body that gives its connection back to the origin
/// once it has ended; dropped before that (or failing), the connection goes
/// with it.
struct GiveBackAtEnd {
    body: Incoming,
    conn: Option<(H1, Arc<Origin>)>,
}

impl GiveBackAtEnd {
    fn give_back(&mut self) {
        if let Some((h1, origin)) = self.conn.take() {
            origin.give_back(h1);
        }
    }
}

impl Body for GiveBackAtEnd {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if this.body.is_end_stream() {
                    this.give_back();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                this.conn = None;
                Poll::Ready(Some(Err(BodyError::new(e))))
            }
            None => {
                this.give_back();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Idle connections, the most recently used on top; pure (the caller passes
/// the time), so its rules are tested without sockets or clocks.
#[derive(Debug)]
pub struct IdleList<T> {
    /// Oldest first: each entry went idle no earlier than the one before.
    entries: Vec<(T, Instant)>,
    max: usize,
    timeout: Duration,
}

impl<T> IdleList<T> {
    /// Keeps at most `max` entries, each for at most `timeout`.
    pub fn new(max: usize, timeout: Duration) -> Self {
        Self {
            entries: Vec::new(),
            max,
            timeout,
        }
    }

    /// `item` went idle at `now`. When the list is full the oldest entry is
    /// dropped.
    pub fn push(&mut self, item: T, now: Instant) {
        if self.max == 0 {
            return;
        }
        if self.entries.len() >= self.max {
            self.entries.remove(0);
        }
        self.entries.push((item, now));
    }

    /// The most recently idle entry still within the timeout at `now`;
    /// expired entries (all older than it) are dropped.
    pub fn pop(&mut self, now: Instant) -> Option<T> {
        let (item, since) = self.entries.pop()?;
        if now.saturating_duration_since(since) <= self.timeout {
            return Some(item);
        }
        // Everything below went idle earlier still.
        self.entries.clear();
        None
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An error and its sources on one line (for debug logs and failover reasons).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
