//! The values that travel between stages.

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use tokio::time::Instant;

use crate::auth::Identity;
use crate::body::RequestJson;
use crate::error::RequestError;
use crate::providers::ClientCall;
use crate::runtime::{ApiFormat, RouteRuntime, RuntimeConfig};

/// The TCP peer of a request (the server sets it on every request's extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Everything known about a client request once it has been admitted.
pub struct Exchange {
    /// The configuration this request uses from start to end.
    pub cfg: Arc<RuntimeConfig>,
    /// Index of the matched route in `cfg.routes`.
    pub route_index: usize,
    /// Client API.
    pub format: ApiFormat,
    /// The client's request headers.
    pub headers: HeaderMap,
    /// The client's query string.
    pub query: Option<String>,
    /// Who the client is.
    pub identity: Identity,
    /// The request body.
    pub json: RequestJson,
    /// The body's bytes in the process-wide body budget, held as long as the
    /// body is (to the end of the answer when a stream may be continued).
    pub body_reserved: crate::bounds::Reserved,
    /// The model the client asked for.
    pub requested_model: String,
    /// The model after alias resolution.
    pub routed_model: String,
    /// The client asked for a stream.
    pub stream: bool,
    /// When the request arrived.
    pub started: Instant,
    /// The caller's team, when the route has teams.
    pub team: Option<Arc<crate::teams::TeamContext>>,
    /// The request's trace span (disabled without an exporter).
    pub span: tracing::Span,
    /// The agent session the request belongs to, when the client names one.
    pub session: Option<crate::sessions::Session>,
    /// The caller's own provider key, used upstream instead of the
    /// backend's credential (`docs/byok.md`).
    pub caller_key: Option<crate::byok::CallerKey>,
}

impl Exchange {
    /// The matched route.
    pub fn route(&self) -> &RouteRuntime {
        &self.cfg.routes[self.route_index]
    }

    /// The request as the provider layer sees it.
    pub fn call(&self) -> ClientCall<'_> {
        ClientCall {
            format: self.format,
            json: &self.json,
            stream: self.stream,
            query: self.query.as_deref(),
            headers: &self.headers,
            forward: &self.identity.forward_headers,
        }
    }

    /// The client's `x-request-id`, if it sent one.
    pub fn request_id(&self) -> String {
        self.headers
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_default()
    }
}

/// The client's request id header (a constant name: a lookup by `&str`
/// parses the name first).
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A request the gateway answers itself, and the caller's team if it was known by then.
#[derive(Debug)]
pub struct Rejection {
    /// Why.
    pub error: RequestError,
    /// The caller's team (`None` before it was resolved, or without teams).
    pub team: Option<String>,
    /// The team's limits when the request had been admitted (for the
    /// `x-ratelimit-*` headers of errors answered after admission).
    pub admission: Option<crate::limits::Admission>,
}

impl<E: Into<RequestError>> From<E> for Rejection {
    fn from(error: E) -> Self {
        Self {
            error: error.into(),
            team: None,
            admission: None,
        }
    }
}
