//! The HTTP(S) client used to reach providers.
//!
//! One pooled client per connect timeout, shared by every backend that uses
//! that timeout and kept across configuration reloads, so a reload never
//! drops warm upstream connections. TLS is rustls with the `ring` provider;
//! trust roots are the system's, falling back to the bundled Mozilla roots
//! when the system has none. HTTP/2 is negotiated by ALPN.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled upstream client.
pub type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Clients keyed by connect timeout, shared across snapshots.
#[derive(Clone, Default)]
pub struct ClientCache {
    clients: Arc<Mutex<HashMap<Duration, UpstreamClient>>>,
    tls: Arc<std::sync::OnceLock<Arc<rustls::ClientConfig>>>,
}

impl ClientCache {
    /// The client for `connect_timeout`, created on first use.
    pub fn get(&self, connect_timeout: Duration) -> UpstreamClient {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(connect_timeout)
            .or_insert_with(|| build_client(connect_timeout, self.tls_config()))
            .clone()
    }

    fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls.get_or_init(|| Arc::new(tls_config())).clone()
    }
}

/// The trust roots: the system's, or the bundled Mozilla roots when the
/// system has none. (The controller channel uses them too when no
/// `--controller-ca` is given.)
pub fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// Builds the rustls client configuration with the `ring` provider.
pub fn tls_config() -> rustls::ClientConfig {
    let roots = system_roots();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| {
            // The ring provider supports the default versions; this branch is unreachable in practice.
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3 is supported by ring")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        })
}

fn build_client(connect_timeout: Duration, tls: Arc<rustls::ClientConfig>) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(https)
}
