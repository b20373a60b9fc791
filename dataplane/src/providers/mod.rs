//! Provider knowledge: what a backend's upstream request looks like.
//!
//! - [`prepare`]: the body for a candidate (passed through or translated by
//!   [`crate::translate::plan`]) and how its answer must be read;
//! - [`headers`]: which client headers reach the provider, the provider's
//!   credential, and which provider headers reach the client;
//! - [`request`]: the whole upstream HTTP request (URI, query, headers, body).
//!
//! The pipeline's attempt stage calls only these functions for provider
//! behaviour; a provider interface with one module per provider (issue 14)
//! replaces their insides without changing the stage.

pub mod headers;
pub mod prepare;

pub use prepare::{ClientCall, Prepared, plan_for, prepare};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;

use crate::runtime::{BackendRuntime, ProviderKind};

/// The upstream HTTP request of one attempt; `None` when the backend has no
/// usable endpoint (reported as a connect error).
pub fn request(
    call: &ClientCall<'_>,
    backend: &BackendRuntime,
    prepared: &Prepared,
) -> Option<Request<Full<Bytes>>> {
    let endpoint = backend.endpoint.as_ref()?;
    // Anthropic accepts `?beta=true` and friends; OpenAI-style APIs take no query.
    let query = match backend.provider {
        ProviderKind::Anthropic => call.query,
        _ => None,
    };
    let uri = endpoint.uri(prepared.path, query).ok()?;
    let mut req = Request::new(Full::new(prepared.body.clone()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers::upstream_headers(call.headers, backend, call.forward);
    Some(req)
}
