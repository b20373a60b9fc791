//! The upstream side of the data plane: how requests reach providers.
//!
//! - [`Transport`]: sends one prepared HTTP request and returns the response
//!   head with a boxed body. The production transport is [`http::HttpTransport`]
//!   (hyper connections in a pool of our own, [`pool`]; rustls); tests script a [`fake::FakeUpstream`]
//!   instead, so the whole request pipeline runs in-process without sockets.
//! - [`Upstreams`]: the transports and the one TLS client configuration, kept
//!   across configuration reloads. The JWKS fetcher uses the same TLS roots
//!   ([`tls`]), so an operator-added CA works for both.

pub mod decode;
pub mod http;
pub mod pool;
pub mod tls;

#[cfg(test)]
pub mod fake;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use http_body_util::combinators::UnsyncBoxBody;

/// The body of an upstream response.
pub type UpstreamBody = UnsyncBoxBody<Bytes, BodyError>;

pub use crate::response::BodyError;

/// What a [`Transport`] returns: the response or why none came.
pub type SendResult = Result<::http::Response<UpstreamBody>, SendError>;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why no response head came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No connection could be made (refused, DNS, TLS, connect timeout).
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connection failed after it was made (reset, closed early).
    #[error("request failed: {0}")]
    Failed(String),
}

/// Sends one upstream request.
pub trait Transport: Send + Sync {
    /// Sends `req`; resolves when the response head arrived (or failed).
    fn send(&self, req: ::http::Request<Full<Bytes>>) -> BoxFuture<SendResult>;
}

/// Upstream transports by connect timeout, shared across snapshots.
#[derive(Clone)]
pub struct Upstreams {
    http: http::ClientCache,
    /// Replaces every backend transport (in-process tests).
    fixed: Option<Arc<dyn Transport>>,
}

impl Upstreams {
    /// Real HTTP(S) transports trusting `tls`'s roots.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            http: http::ClientCache::new(tls),
            fixed: None,
        }
    }

    /// Every backend uses `transport` (tests).
    pub fn fixed(transport: Arc<dyn Transport>) -> Self {
        Self {
            http: http::ClientCache::new(Arc::new(tls::client_config())),
            fixed: Some(transport),
        }
    }

    /// The transport of a backend with this connect timeout.
    pub fn transport(&self, connect_timeout: Duration) -> Arc<dyn Transport> {
        match &self.fixed {
            Some(t) => t.clone(),
            None => Arc::new(http::HttpTransport::new(
                self.http.connections(connect_timeout),
            )),
        }
    }

    /// A plain pooled HTTP(S) client (webhooks).
    pub fn http_client(&self, connect_timeout: Duration) -> http::HttpClient {
        self.http.get(connect_timeout)
    }

    /// The TLS client configuration every outgoing call uses.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.http.tls()
    }
}
