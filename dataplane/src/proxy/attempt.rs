//! One try of one request at one HTTP backend.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::proxy::Exchange;
use crate::proxy::headers::upstream_headers;
use crate::proxy::translation::Prepared;
use crate::routing::{AttemptOutcome, classify_status_body};
use crate::runtime::{BackendRuntime, ProviderKind};
use crate::wire::Dialect;

/// Largest upstream error body read for classification and relaying.
const ERROR_BODY_LIMIT: usize = 1 << 20;

/// A non-2xx upstream answer, kept so it can be returned to the client.
pub(crate) struct UpstreamError {
    /// The dialect the upstream speaks (its error body's shape).
    pub dialect: Dialect,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How a try ended.
pub(crate) enum Attempt {
    /// A 2xx answer whose body has not been read yet.
    Answered(Response<Incoming>),
    /// Anything else.
    Failed {
        outcome: AttemptOutcome,
        upstream: Option<UpstreamError>,
        label: &'static str,
    },
}

/// Sends the prepared request to `backend`.
pub(crate) async fn send(backend: &BackendRuntime, x: &Exchange, prepared: &Prepared) -> Attempt {
    let Some(endpoint) = backend.endpoint.as_ref() else {
        return Attempt::Failed {
            outcome: AttemptOutcome::ConnectError,
            upstream: None,
            label: "connect_error",
        };
    };
    // Anthropic accepts `?beta=true` and friends; OpenAI-style APIs take no query.
    let query = match backend.provider {
        ProviderKind::Anthropic => x.query.as_deref(),
        _ => None,
    };
    let uri = match endpoint.uri(prepared.path, query) {
        Ok(uri) => uri,
        Err(_) => {
            return Attempt::Failed {
                outcome: AttemptOutcome::ConnectError,
                upstream: None,
                label: "connect_error",
            };
        }
    };
    let mut req = Request::new(Full::new(prepared.body.clone()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    *req.headers_mut() = upstream_headers(&x.headers, backend, &x.identity.forward_headers);

    let header_timeout = if x.stream {
        backend.timeouts.first_byte
    } else {
        backend.timeouts.request
    };
    let deadline = tokio::time::Instant::now() + header_timeout;
    let resp = match tokio::time::timeout_at(deadline, backend.client.request(req)).await {
        Err(_) => {
            return Attempt::Failed {
                outcome: AttemptOutcome::Timeout,
                upstream: None,
                label: "timeout",
            };
        }
        Ok(Err(e)) => {
            tracing::debug!(backend = %backend.id, error = %e, "upstream request failed");
            let (outcome, label) = if e.is_connect() {
                (AttemptOutcome::ConnectError, "connect_error")
            } else {
                (AttemptOutcome::Reset, "reset")
            };
            return Attempt::Failed {
                outcome,
                upstream: None,
                label,
            };
        }
        Ok(Ok(resp)) => resp,
    };
    if resp.status().is_success() {
        return Attempt::Answered(resp);
    }
    let (parts, body) = resp.into_parts();
    let read =
        tokio::time::timeout_at(deadline, Limited::new(body, ERROR_BODY_LIMIT).collect()).await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) | Err(_) => Bytes::new(),
    };
    let outcome = classify_status_body(parts.status.as_u16(), &body, &parts.headers);
    let label = match parts.status.as_u16() {
        429 => "status_429",
        s if s >= 500 => "status_5xx",
        _ => "status_4xx",
    };
    Attempt::Failed {
        outcome,
        upstream: Some(UpstreamError {
            dialect: prepared.upstream,
            status: parts.status,
            headers: parts.headers,
            body,
        }),
        label,
    }
}
