//! One try of one request at one backend: the provider builds the request
//! ([`crate::providers::Provider::request`]), the backend's transport sends
//! it; wait for the response head within the backend's timeout, read a
//! non-streaming answer whole within the same deadlines, decode the answer
//! with the provider's [`crate::providers::Answer`], and classify what came
//! back with the provider's rules.
//!
//! A request with the caller's own provider key (`docs/byok.md`) has it put
//! in place of the backend's credential once the provider built the request;
//! a 401/403 answer to it is then the caller's (returned, no failover, no
//! breaker failure), and the key is redacted from error bodies like the
//! backend's own.
//!
//! Deadlines of one try (the backend's `timeouts`):
//! - response head: `firstByte` for streaming requests, `request` otherwise;
//! - the body of a non-streaming (non-SSE) 2xx answer: read whole before
//!   anything goes to the client, by `request` after the try started and
//!   with at most `streamIdle` between two chunks. A body that stalls or
//!   breaks is a failed try (`timeout` / `reset`), so it is retried or
//!   failed over like a missing head instead of leaving the client hanging.

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

/// Largest non-streaming answer read (a larger one fails the try).
pub const ANSWER_LIMIT: usize = 32 << 20;

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
    /// The provider refused the gateway's own credential or configuration
    /// (not the caller's fault: never passed on as it is).
    pub gateway_fault: bool,
}

/// How a try ended.
pub enum Attempt {
    /// A 2xx event stream whose body has not been read yet.
    Stream(Response<UpstreamBody>),
    /// A whole 2xx answer.
    Whole {
        /// Status and headers.
        parts: http::response::Parts,
        /// The body.
        body: Bytes,
    },
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

/// Sends the prepared request to `backend`: the provider builds it (and
/// decodes its answer), the backend's transport carries it.
pub async fn send(backend: &BackendRuntime, x: &Exchange, prepared: &Prepared) -> Attempt {
    let call = x.call();
    let mut outgoing = match backend.provider.request(&call, prepared).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(backend = %backend.id, error = %e, "no upstream request could be made");
            return failed(AttemptOutcome::ConnectError, "connect_error");
        }
    };
    // The caller's own key replaces the backend's credential (docs/byok.md).
    let caller_key = x.caller_key.as_ref();
    if let Some(key) = caller_key {
        let applied = backend
            .provider
            .caller_key_slot()
            .is_some_and(|slot| crate::byok::apply(outgoing.request.headers_mut(), &slot, key));
        if !applied {
            // The attempt stage skips such backends; never send the gateway's credential instead.
            tracing::warn!(backend = %backend.id, "the caller's provider key cannot be used with this backend");
            return failed(AttemptOutcome::ConnectError, "connect_error");
        }
    }
    let header_timeout = if x.stream {
        backend.timeouts.first_byte
    } else {
        backend.timeouts.request
    };
    let started = tokio::time::Instant::now();
    let deadline = started + header_timeout;
    let answer = outgoing.answer;
    let resp =
        match tokio::time::timeout_at(deadline, backend.transport.send(outgoing.request)).await {
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
    // Compressed despite `accept-encoding: identity`: decoded here, so usage
    // is read and the client gets bytes it can read.
    let resp = match crate::upstream::decode::decoded(resp) {
        Ok(resp) => resp,
        Err(e) => {
            tracing::warn!(backend = %backend.id, error = %e, "upstream answer cannot be decoded");
            return failed(AttemptOutcome::ServerError { status: 502 }, "undecodable");
        }
    };
    if resp.status().is_success() {
        let (parts, body) = resp.into_parts();
        if answer.is_stream(&parts.headers) {
            let body = answer.stream(&parts.headers, body);
            return Attempt::Stream(Response::from_parts(parts, body));
        }
        let end = started + backend.timeouts.request;
        return match read_whole(body, end, backend.timeouts.stream_idle, ANSWER_LIMIT).await {
            Ok(body) => match answer.whole(&parts.headers, body) {
                Ok(body) => Attempt::Whole { parts, body },
                Err(e) => {
                    tracing::warn!(backend = %backend.id, error = %e, "upstream answer could not be decoded");
                    failed(AttemptOutcome::ServerError { status: 502 }, "undecodable")
                }
            },
            Err(WholeError::Timeout) => {
                tracing::debug!(backend = %backend.id, "upstream answer body timed out");
                failed(AttemptOutcome::Timeout, "timeout")
            }
            Err(WholeError::Broken) => failed(AttemptOutcome::Reset, "reset"),
            Err(WholeError::TooLarge) => {
                tracing::warn!(backend = %backend.id, limit = ANSWER_LIMIT, "upstream answer too large");
                failed(AttemptOutcome::Reset, "too_large")
            }
        };
    }
    let (parts, body) = resp.into_parts();
    let read =
        tokio::time::timeout_at(deadline, Limited::new(body, ERROR_BODY_LIMIT).collect()).await;
    let body = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) | Err(_) => Bytes::new(),
    };
    let outcome = match backend
        .provider
        .classify(parts.status.as_u16(), &parts.headers, &body)
    {
        // The caller's own key was refused: the caller's fault, not the
        // backend's (no failover, no breaker), and its answer is theirs to see.
        AttemptOutcome::Unauthorized if caller_key.is_some() => AttemptOutcome::ClientError {
            status: parts.status.as_u16(),
        },
        o => o,
    };
    let label = match parts.status.as_u16() {
        429 => "status_429",
        s if s >= 500 => "status_5xx",
        _ => "status_4xx",
    };
    let (status, headers, body) = backend
        .provider
        .error_answer(parts.status, parts.headers, body);
    Attempt::Failed {
        upstream: Some(UpstreamError {
            dialect: prepared.upstream,
            status,
            headers,
            body: backend
                .error_redaction
                .apply_with(body, caller_key.map(crate::byok::CallerKey::expose)),
            gateway_fault: matches!(outcome, AttemptOutcome::Unauthorized),
        }),
        outcome,
        label,
    }
}

/// An error event that came before any content of a stream: classified
/// like the error answer it stands for (its `error.type` gives the status:
/// `rate_limit_error` a 429, `overloaded_error` a 503 (retried once like a
/// 5xx), `invalid_request_error` about the context length a 400 that goes
/// to the context fallback, anything else a 502), and kept as that answer.
pub fn stream_error(dialect: Dialect, data: Bytes) -> (AttemptOutcome, UpstreamError) {
    let kind = serde_json::from_slice::<serde_json::Value>(&data)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("type")
                .or_else(|| e.get("code"))
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let status = match kind.as_str() {
        "rate_limit_error" | "rate_limit_exceeded" => 429,
        "overloaded_error" => 503,
        "invalid_request_error" => 400,
        _ => 502,
    };
    let headers = HeaderMap::new();
    let outcome = match classify_status_body(status, &data, &headers) {
        // Anything else about the request is the stream's failure, not the client's.
        AttemptOutcome::ClientError { .. } | AttemptOutcome::ContentPolicy => {
            AttemptOutcome::ServerError { status: 502 }
        }
        o => o,
    };
    let status = match outcome {
        AttemptOutcome::ServerError { status } => status,
        _ => status,
    };
    let error = UpstreamError {
        dialect,
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        headers,
        body: data,
        gateway_fault: false,
    };
    (outcome, error)
}

/// Why a whole answer could not be read.
#[derive(Debug, PartialEq, Eq)]
enum WholeError {
    /// The deadline passed, or the body was silent for the idle timeout.
    Timeout,
    /// The body ended with an error (connection broken).
    Broken,
    /// The body is larger than the limit.
    TooLarge,
}

/// Reads a whole body by `end`, with at most `idle` between two chunks.
async fn read_whole(
    mut body: UpstreamBody,
    end: tokio::time::Instant,
    idle: std::time::Duration,
    limit: usize,
) -> Result<Bytes, WholeError> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut size = 0usize;
    loop {
        let wake = (tokio::time::Instant::now() + idle).min(end);
        match tokio::time::timeout_at(wake, body.frame()).await {
            Err(_) => return Err(WholeError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(WholeError::Broken),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    size += data.len();
                    if size > limit {
                        return Err(WholeError::TooLarge);
                    }
                    chunks.push(data);
                }
            }
        }
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut all = Vec::with_capacity(size);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            Bytes::from(all)
        }
    })
}
