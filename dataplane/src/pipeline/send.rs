//! One try of one request at one HTTP backend: send, wait for the response
//! head within the backend's timeout, and classify what came back.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::pipeline::Exchange;
use crate::providers::Prepared;
use crate::routing::{AttemptOutcome, classify_status_body};
use crate::runtime::BackendRuntime;
use crate::upstream::{SendError, UpstreamBody};
use crate::wire::Dialect;

/// Largest upstream error body read for classification and relaying.
const ERROR_BODY_LIMIT: usize = 1 << 20;

/// A non-2xx upstream answer, kept so it can be returned to the client.
pub struct UpstreamError {
    /// The dialect the upstream speaks (its error body's shape).
    pub dialect: Dialect,
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body (at most [`ERROR_BODY_LIMIT`] bytes).
    pub body: Bytes,
}

/// How a try ended.
pub enum Attempt {
    /// A 2xx answer whose body has not been read yet.
    Answered(Response<UpstreamBody>),
    /// Anything else.
    Failed {
        /// The class of the failure.
        outcome: AttemptOutcome,
        /// The upstream's answer, when it gave one.
        upstream: Option<UpstreamError>,
        /// Metric label of the attempt.
        label: &'static str,
    },
}

fn failed(outcome: AttemptOutcome, label: &'static str) -> Attempt {
    Attempt::Failed {
        outcome,
        upstream: None,
        label,
    }
}

/// Sends the prepared request to `backend`.
pub async fn send(backend: &BackendRuntime, x: &Exchange, prepared: &Prepared) -> Attempt {
    let Some(req) = crate::providers::request(&x.call(), backend, prepared) else {
        return failed(AttemptOutcome::ConnectError, "connect_error");
    };
    let header_timeout = if x.stream {
        backend.timeouts.first_byte
    } else {
        backend.timeouts.request
    };
    let deadline = tokio::time::Instant::now() + header_timeout;
    let resp = match tokio::time::timeout_at(deadline, backend.transport.send(req)).await {
        Err(_) => return failed(AttemptOutcome::Timeout, "timeout"),
        Ok(Err(e)) => {
            tracing::debug!(backend = %backend.id, error = %e, "upstream request failed");
            return match e {
                SendError::Connect(_) => failed(AttemptOutcome::ConnectError, "connect_error"),
                SendError::Failed(_) => failed(AttemptOutcome::Reset, "reset"),
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
