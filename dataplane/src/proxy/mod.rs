//! Proxy mode: an HTTP `CONNECT` forward proxy on its own listener (off by
//! default, `--proxy-listen`), for tools that cannot be given a base URL but
//! honour `HTTPS_PROXY` and a custom CA (`docs/proxy-mode.md`).
//!
//! | CONNECT target | what the proxy does |
//! |---|---|
//! | on the intercept list ([`hosts`]; defaults: OpenAI, Anthropic, GitHub Copilot APIs) | terminates TLS with a leaf minted by the gateway's CA ([`ca`], [`leaves`]) and serves the decrypted requests through the normal pipeline ([`intercept`], [`inner`]) |
//! | any other host | tunnels bytes untouched ([`tunnel`]) to an allowed port, or refuses (403) when the operator says so |
//!
//! `Proxy-Authorization` (`Bearer <gateway token>`, or `Basic` with the
//! token as password) is checked at CONNECT: with `--proxy-auth required`
//! (the default) a CONNECT without a token some route accepts is answered
//! 407; a token that no route accepts is 407 in every mode. Inside an
//! intercepted tunnel the request's own gateway credential wins over the
//! proxy token ([`inner`] explains the precedence).
//!
//! The listener has the traffic port's bounds ([`listener`]): a connection
//! cap, first-byte, header and idle timeouts, and a drain at shutdown.

pub mod ca;
pub mod connect;
pub mod hosts;
pub mod inner;
mod intercept;
mod io;
pub mod leaves;
pub mod listener;
pub mod tunnel;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::server::ConnLimits;
use crate::state::AppState;

pub use hosts::HostList;
pub use leaves::LeafCache;

/// Errors of proxy mode's configuration and certificates.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A host name of the intercept list is malformed.
    #[error("invalid host name {0:?} in the intercept list (use a DNS name or *.suffix)")]
    HostName(String),
    /// A CA file cannot be read or written.
    #[error("{path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The CA cannot be used.
    #[error("proxy CA: {0}")]
    Ca(String),
    /// A leaf certificate could not be minted.
    #[error("cannot mint a leaf certificate for {0}")]
    Mint(String),
}

/// What happens to CONNECT targets that are not intercepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherHosts {
    /// Tunnel bytes untouched (to an allowed port).
    Tunnel,
    /// Answer 403.
    Refuse,
}

/// Whether a CONNECT must carry `Proxy-Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAuth {
    /// Yes, unless a route that could serve the target is open (no client auth).
    Required,
    /// No; a token that is sent must still be valid.
    Optional,
}

/// Proxy mode's settings.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Hosts whose TLS is terminated and served by the pipeline.
    pub intercept: HostList,
    /// The fate of every other host.
    pub other_hosts: OtherHosts,
    /// Ports tunnels may reach.
    pub tunnel_ports: Vec<u16>,
    /// Whether CONNECTs must authenticate.
    pub auth: ProxyAuth,
    /// Connection bounds of the listener (`listener: "proxy"`).
    pub limits: ConnLimits,
    /// Longest wait for a tunnel's upstream connection.
    pub connect_timeout: Duration,
}

/// Default ports tunnels may reach.
pub const DEFAULT_TUNNEL_PORTS: &[u16] = &[443];
/// Default wait for a tunnel's upstream connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything one proxy listener shares across its connections.
pub struct Proxy {
    /// The data plane's state (the pipeline serves intercepted requests).
    pub state: Arc<AppState>,
    /// Settings.
    pub options: ProxyOptions,
    /// Leaf certificates minted by the gateway's CA.
    pub leaves: Arc<LeafCache>,
}

/// Labels of CONNECT outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectLabels {
    /// `intercepted`, `tunnelled`, `refused` (policy or port), `unauthenticated`
    /// (407), `bad_request`, `not_ready`, `upstream_unreachable`.
    pub outcome: &'static str,
}

/// Proxy mode's metric families.
#[derive(Clone)]
pub struct ProxyMetrics {
    /// CONNECT requests by outcome.
    pub connects: Family<ConnectLabels, Counter>,
}

impl ProxyMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let connects = Family::<ConnectLabels, Counter>::default();
        registry.register(
            "proxy_connects",
            "CONNECT requests on the proxy listener by outcome",
            connects.clone(),
        );
        Self { connects }
    }

    /// Counts one CONNECT outcome.
    pub fn connect(&self, outcome: &'static str) {
        self.connects
            .get_or_create(&ConnectLabels { outcome })
            .inc();
    }
}
