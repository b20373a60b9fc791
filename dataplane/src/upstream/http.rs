//! The HTTP(S) client used to reach providers and webhooks.
//!
//! One pooled client per connect timeout, shared by every backend that uses
//! that timeout and kept across configuration reloads, so a reload never
//! drops warm upstream connections. TLS is rustls with the `ring` provider
//! and the roots of [`super::tls`]; HTTP/2 is negotiated by ALPN.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{BodyError, BoxFuture, SendError, SendResult, Transport};

/// A pooled upstream client.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Clients keyed by connect timeout, shared across snapshots.
#[derive(Clone)]
pub struct ClientCache {
    clients: Arc<Mutex<HashMap<Duration, HttpClient>>>,
    tls: Arc<rustls::ClientConfig>,
}

impl ClientCache {
    /// An empty cache whose clients trust `tls`'s roots.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            clients: Arc::default(),
            tls,
        }
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

fn build_client(connect_timeout: Duration, tls: &rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https)
}

/// The production [`Transport`]: one pooled hyper client.
pub struct HttpTransport {
    client: HttpClient,
}

impl HttpTransport {
    /// Sends through `client`.
    pub fn new(client: HttpClient) -> Self {
        Self { client }
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: http::Request<Full<Bytes>>) -> BoxFuture<SendResult> {
        let fut = self.client.request(req);
        Box::pin(async move {
            match fut.await {
                Ok(resp) => Ok(resp.map(|b| b.map_err(BodyError::new).boxed_unsync())),
                Err(e) if e.is_connect() => Err(SendError::Connect(error_chain(&e))),
                Err(e) => Err(SendError::Failed(error_chain(&e))),
            }
        })
    }
}

/// An error and its sources on one line (for debug logs).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
