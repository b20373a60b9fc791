//! Tiny HTTP/1 client helpers for tests (hyper-util legacy client over plain TCP) and an SSE parser.
//!
//! The panicking helpers (`get`, `post_json`, `post_stream`) are for the happy path of a test; the
//! `try_*` and `*_partial` variants expose transport errors and partial streams.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Upper bound for a whole non-streaming exchange: a hang guard, not a speed assertion, so it is
/// generous (a debug gateway translating a 30 MiB body on a loaded 2-core machine takes tens of
/// seconds).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Default idle bound between two stream frames in [`post_stream`].
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One parsed server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if present.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// The data parsed as JSON (`None` for `[DONE]` or malformed data).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// The text of a Chat Completions stream: every chunk's `choices[0].delta.content`, joined.
pub fn chat_stream_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter_map(SseEvent::json)
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// The outcome of reading a streaming response to its end, an error, or an idle timeout.
#[derive(Debug, Clone)]
pub struct StreamResult {
    /// Response status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Complete events received (a trailing event without its blank line is dropped).
    pub events: Vec<SseEvent>,
    /// The raw body received.
    pub raw: String,
    /// Set when the body ended with a transport error (e.g. the server cut the connection).
    pub error: Option<String>,
    /// Set when no frame arrived within the idle timeout.
    pub timed_out: bool,
}

/// Parses complete SSE events from `text` (accepts `\n`, `\r\n` and `\r` line ends; skips comments).
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut events = Vec::new();
    let mut event: Option<String> = None;
    let mut data: Vec<String> = Vec::new();
    let mut lines: Vec<&str> = normalized.split('\n').collect();
    // The last element is whatever followed the final newline: incomplete, drop it.
    lines.pop();
    for line in lines {
        if line.is_empty() {
            if event.is_some() || !data.is_empty() {
                events.push(SseEvent {
                    event: event.take(),
                    data: data.join("\n"),
                });
                data.clear();
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            _ => {}
        }
    }
    events
}

fn build_request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body)).context("building request")
}

/// Sends a request and returns the response head with its unread body.
pub async fn try_send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> anyhow::Result<(StatusCode, HeaderMap, Incoming)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = build_request(method, url, headers, body)?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .map_err(|_| anyhow!("no response head from {url} within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("request to {url}"))?;
    let (parts, body) = response.into_parts();
    Ok((parts.status, parts.headers, body))
}

/// Sends a request and reads the whole body.
pub async fn try_request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    let (status, headers, body) = try_send(method, url, headers, body).await?;
    let bytes = tokio::time::timeout(REQUEST_TIMEOUT, body.collect())
        .await
        .map_err(|_| anyhow!("body from {url} not complete within {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("reading body from {url}"))?
        .to_bytes();
    Ok((status, headers, bytes))
}

/// `GET url`; panics on transport errors.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
    try_request(Method::GET, url, headers, Bytes::new())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e:#}"))
}

/// `GET url` answered 200 with JSON: the JSON (panics otherwise, with the status and body).
pub async fn get_json(url: &str) -> Value {
    let (status, _, body) = get(url, &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "GET {url}: {}",
        String::from_utf8_lossy(&body)
    );
    json_body(&body)
}

/// `POST url` with a JSON body (adds `content-type: application/json`); panics on transport errors.
pub async fn post_json(
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (StatusCode, HeaderMap, Bytes) {
    post_raw(url, headers, Bytes::from(body.to_string())).await
}

/// `POST url` with raw bytes as a JSON body (for malformed or oversized bodies); panics on transport errors.
pub async fn post_raw(
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut all: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    try_request(Method::POST, url, &all, body)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:#}"))
}

/// `POST url` with a JSON body and read the SSE response until it ends, fails or idles for `idle`.
/// Only a failure to get the response head is an `Err`.
pub async fn post_stream_partial(
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
    idle: Duration,
) -> anyhow::Result<StreamResult> {
    let mut all: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
    ];
    all.extend_from_slice(headers);
    let (status, headers, mut incoming) =
        try_send(Method::POST, url, &all, Bytes::from(body.to_string())).await?;
    let mut raw = Vec::new();
    let mut error = None;
    let mut timed_out = false;
    loop {
        match tokio::time::timeout(idle, incoming.frame()).await {
            Err(_) => {
                timed_out = true;
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                error = Some(e.to_string());
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    raw.extend_from_slice(data);
                }
            }
        }
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    Ok(StreamResult {
        status,
        headers,
        events: parse_sse(&raw),
        raw,
        error,
        timed_out,
    })
}

/// `POST url` and collect the full SSE body; panics on transport errors, cuts or idle timeouts.
pub async fn post_stream(
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (StatusCode, HeaderMap, Vec<SseEvent>) {
    let result = post_stream_partial(url, headers, body, STREAM_IDLE_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("POST (stream) {url}: {e:#}"));
    assert!(
        result.error.is_none(),
        "stream from {url} failed: {:?}; received so far: {}",
        result.error,
        result.raw
    );
    assert!(
        !result.timed_out,
        "stream from {url} idle for {STREAM_IDLE_TIMEOUT:?}; received so far: {}",
        result.raw
    );
    (result.status, result.headers, result.events)
}

/// Parses a body as JSON, panicking with the body text when it is not JSON.
pub fn json_body(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_comments_and_crlf() {
        let text = ": keepalive\r\nevent: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\ndata: a\ndata: b\n\ndata: [DONE]\n\ndata: partial";
        let events = parse_sse(text);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("ping".into()),
                    data: "{\"type\":\"ping\"}".into()
                },
                SseEvent {
                    event: None,
                    data: "a\nb".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }
}
