//! The Bedrock flavour of the mock upstream: `POST /model/{id}/{converse, converse-stream,
//! invoke, invoke-with-response-stream}`, answered as Bedrock does (JSON, or binary event-stream
//! framing), after checking what Bedrock checks:
//!
//! 1. authentication: a SigV4 `Authorization` for the mock's region and service `bedrock`
//!    (the signature itself verified when the test gave the mock the secret key), or a bearer
//!    API key; otherwise 403 `MissingAuthenticationTokenException` / `InvalidSignatureException`;
//! 2. the body: what Bedrock refuses (`model`/`stream` in an InvokeModel body, a missing
//!    `anthropic_version`, unknown Converse fields, roles that do not alternate) is a 400
//!    `ValidationException`;
//! 3. then the scripted [`Behaviour`]. Errors carry `x-amzn-ErrorType` and `{"message"}`;
//!    `StreamException` sends an `exception` message mid-stream; `MalformedEvent` a message
//!    whose CRC does not match.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::plan::{Plan, plan, with_headers};
use super::{ChannelBody, MockBody, Shared, StreamEnd, add_request_id, full};
use crate::bedrock_wire::{self as bw, Op};
use crate::behaviour::{Behaviour, DEFAULT_TEXT};
use crate::wire::{self, Flavor, Reply};

/// What the handler read of the request.
pub(super) struct Received<'a> {
    /// The request path.
    pub path: &'a str,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// The body as sent (the signature covers these bytes).
    pub raw: &'a Bytes,
    /// The body as JSON (`Null` when empty).
    pub body: &'a Value,
}

fn error(status: u16, exception: &str, message: &str) -> Response<MockBody> {
    let mut response = Response::new(full(bw::error_body(message).to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )) {
        headers.insert("x-amzn-errortype", v);
    }
    add_request_id(headers, Flavor::Bedrock);
    response
}

/// Why the request is refused before any behaviour, if it is.
fn refuse(shared: &Shared, op: Op, req: &Received<'_>) -> Option<Response<MockBody>> {
    let (region, secret) = {
        let inner = shared.lock();
        (inner.aws_region.clone(), inner.aws_secret.clone())
    };
    let auth = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.starts_with("AWS4-HMAC-SHA256") {
        if let Err(m) = bw::check_sigv4(
            req.headers,
            "POST",
            req.path,
            req.raw,
            &region,
            secret.as_deref(),
        ) {
            return Some(error(403, "InvalidSignatureException", &m));
        }
    } else if !auth.starts_with("Bearer ") {
        return Some(error(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    }
    bw::refuse_body(op, req.body).map(|m| error(400, "ValidationException", &m))
}

/// The model id of the path, percent-decoded.
fn model_id(path: &str) -> String {
    let raw = bw::parse_path(path).map(|(id, _)| id).unwrap_or_default();
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a stream ends.
enum End {
    Complete,
    Cut(usize),
    Stall(usize),
    Corrupt,
    Exception(usize, String, String),
}

fn stream(frames: Vec<Vec<u8>>, end: End, shared: Arc<Shared>) -> Response<MockBody> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let send = |b: Vec<u8>| tx.send(Ok(Frame::data(Bytes::from(b))));
        let limit = match &end {
            End::Cut(n) | End::Stall(n) | End::Exception(n, ..) => (*n).min(frames.len()),
            End::Complete | End::Corrupt => frames.len(),
        };
        for (i, f) in frames.into_iter().take(limit).enumerate() {
            if send(f).await.is_err() {
                return;
            }
            if i == 0 && matches!(end, End::Corrupt) {
                let mut bad = bw::event(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"text": "x"}}),
                );
                let last = bad.len() - 1;
                bad[last] ^= 0xff;
                if send(bad).await.is_err() {
                    return;
                }
            }
        }
        match end {
            End::Complete | End::Corrupt => {}
            End::Exception(_, name, message) => {
                let _ = send(bw::exception(&name, &message)).await;
            }
            End::Cut(_) => {
                let _ = tx
                    .send(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "mock cut",
                    )))
                    .await;
            }
            End::Stall(_) => {
                let mut shutdown = shared.shutdown.subscribe();
                tokio::select! {
                    _ = tx.closed() => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
            }
        }
    });
    let mut response = Response::new(ChannelBody::new(rx).boxed());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(bw::EVENT_STREAM),
    );
    add_request_id(headers, Flavor::Bedrock);
    response
}

/// Answers one Bedrock request.
pub(super) async fn answer(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    op: Op,
    req: Received<'_>,
    behaviour: Behaviour,
) -> Response<MockBody> {
    if let Some(refused) = refuse(&shared, op, &req) {
        return refused;
    }
    let (reply, usage, end) = match plan(behaviour, &shared, &kill).await {
        Plan::Status {
            status,
            body,
            headers,
        } => {
            let message = if body.is_null() {
                format!("mock upstream error {status}")
            } else {
                body.get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| body.to_string(), str::to_string)
            };
            return with_headers(error(status, bw::error_type(status), &message), headers);
        }
        Plan::Answer { reply, usage, end } => {
            let end = match end {
                StreamEnd::Complete => End::Complete,
                StreamEnd::Cut(n) => End::Cut(n),
                // Not released on this flavour: it stalls.
                StreamEnd::Stall(n) | StreamEnd::Held(n, _) => End::Stall(n),
                StreamEnd::Malformed => End::Corrupt,
            };
            (reply, usage, end)
        }
        Plan::Exception {
            after_events,
            exception,
            message,
        } => (
            Reply::Text(DEFAULT_TEXT.to_string()),
            None,
            End::Exception(after_events, exception, message),
        ),
    };
    let usage = usage.unwrap_or_else(|| wire::default_usage(req.body, &reply));
    let model = model_id(req.path);
    if op.streams() {
        let frames = match op {
            Op::ConverseStream => bw::converse_stream(&reply, usage),
            _ => bw::invoke_stream(&model, &reply, usage),
        };
        return stream(frames, end, shared);
    }
    let body = match op {
        Op::Converse => bw::converse_body(&reply, usage),
        _ => bw::invoke_body(&model, &reply, usage),
    };
    let mut response = Response::new(full(body.to_string()));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if op == Op::Invoke {
        headers.insert(
            "x-amzn-bedrock-input-token-count",
            HeaderValue::from(usage.input),
        );
        headers.insert(
            "x-amzn-bedrock-output-token-count",
            HeaderValue::from(usage.output),
        );
        headers.insert(
            "x-amzn-bedrock-invocation-latency",
            HeaderValue::from_static("42"),
        );
    }
    add_request_id(headers, Flavor::Bedrock);
    response
}
