//! The HTTP(S) clients used to reach providers and webhooks.
//!
//! Per connect timeout, one set of pooled provider connections
//! ([`super::pool::Connections`]) and one `hyper_util` client for webhooks,
//! each shared by every backend that uses that timeout and kept across
//! configuration reloads, so a reload never drops warm upstream connections.
//! TLS is rustls with the `ring` provider and the roots of [`super::tls`];
//! HTTP/2 is negotiated by ALPN.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::pool::{self, Connections, Origin};
use super::{BoxFuture, SendError, SendResult, Transport};

/// A pooled upstream client.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Clients keyed by connect timeout, shared across snapshots.
#[derive(Clone)]
pub struct ClientCache {
    clients: Arc<Mutex<HashMap<Duration, HttpClient>>>,
    connections: Arc<Mutex<HashMap<Duration, Arc<Connections>>>>,
    tls: Arc<rustls::ClientConfig>,
}

impl ClientCache {
    /// An empty cache whose clients trust `tls`'s roots.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            clients: Arc::default(),
            connections: Arc::default(),
            tls,
        }
    }

    /// The provider connections for `connect_timeout`, created on first use.
    pub fn connections(&self, connect_timeout: Duration) -> Arc<Connections> {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections
            .entry(connect_timeout)
            .or_insert_with(|| Arc::new(Connections::new(connector(connect_timeout, &self.tls))))
            .clone()
    }

    /// The client for `connect_timeout`, created on first use.
    pub fn get(&self, connect_timeout: Duration) -> HttpClient {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(connect_timeout)
            .or_insert_with(|| build_client(connect_timeout, &self.tls))
            .clone()
    }

    /// The TLS configuration of every client.
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }
}

/// TCP with `connect_timeout`, no delay and keep-alive probes, then TLS
/// (ALPN offering HTTP/2 and HTTP/1.1) for `https`.
fn connector(connect_timeout: Duration, tls: &rustls::ClientConfig) -> pool::Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

fn build_client(connect_timeout: Duration, tls: &rustls::ClientConfig) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(pool::IDLE_TIMEOUT)
        .pool_max_idle_per_host(pool::MAX_IDLE_PER_ORIGIN)
        .build(connector(connect_timeout, tls))
}

/// The production [`Transport`]: the pooled connections of one connect
/// timeout. It remembers the origin it sent to last (a backend has one), so
/// a request finds its pool without a lookup.
pub struct HttpTransport {
    connections: Arc<Connections>,
    last: ArcSwapOption<Origin>,
}

impl HttpTransport {
    /// Sends over `connections`.
    pub fn new(connections: Arc<Connections>) -> Self {
        Self {
            connections,
            last: ArcSwapOption::empty(),
        }
    }

    fn origin(&self, uri: &http::Uri) -> Result<Arc<Origin>, SendError> {
        if let Some(origin) = &*self.last.load()
            && origin.serves(uri)
        {
            return Ok(origin.clone());
        }
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(SendError::Failed(format!(
                "upstream URI {uri} has no scheme or host"
            )));
        };
        let origin = self.connections.origin(scheme, authority)?;
        self.last.store(Some(origin.clone()));
        Ok(origin)
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: http::Request<Full<Bytes>>) -> BoxFuture<SendResult> {
        let origin = self.origin(req.uri());
        let connections = self.connections.clone();
        Box::pin(async move { connections.send(&origin?, req).await })
    }
}
