//! Google API errors (`protocols.md` §3.7, §5.7) in the gateway's terms.
//!
//! Gemini and Vertex answer `{"error": {"code", "message", "status",
//! "details"}}`; some paths (a stream without `alt=sse`, the OpenAI shim)
//! wrap it in a one-element array. `status` names the canonical code:
//!
//! | `status` (HTTP) | kind (Anthropic / OpenAI type) |
//! |---|---|
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE` (400) | `InvalidRequest` |
//! | `UNAUTHENTICATED` (401) | `Authentication` |
//! | `PERMISSION_DENIED` (403) | `PermissionDenied` |
//! | `NOT_FOUND` (404) | `NotFound` |
//! | `RESOURCE_EXHAUSTED` (429) | `RateLimited` |
//! | `UNAVAILABLE` (503) | `Overloaded` |
//! | `DEADLINE_EXCEEDED` (504) | `Timeout` |
//! | `INTERNAL` (500), anything else | `Api` |
//!
//! A `google.rpc.RetryInfo` detail (`"retryDelay": "37s"`) says how long a
//! `RESOURCE_EXHAUSTED` caller should wait.

use std::time::Duration;

use serde_json::Value;

use crate::wire::ErrorKind;

/// The parts of a Google error answer the gateway uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoogleError {
    /// The HTTP code in the body (0 when absent).
    pub code: u16,
    /// The canonical status name, e.g. `RESOURCE_EXHAUSTED` (empty when absent).
    pub status: String,
    /// The message.
    pub message: String,
    /// `RetryInfo.retryDelay`, when given.
    pub retry_delay: Option<Duration>,
}

/// A protobuf `Duration` in JSON: `"37s"`, `"1.5s"`.
fn parse_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && (0.0..1e9).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// Reads a Google error body; `None` when it is not one.
pub fn parse(body: &[u8]) -> Option<GoogleError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let v = match v {
        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        other => other,
    };
    let e = v.get("error")?;
    let retry_delay = e
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| {
            d.get("retryDelay")
                .and_then(Value::as_str)
                .and_then(parse_duration)
        });
    Some(GoogleError {
        code: e
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0),
        status: e
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        message: e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        retry_delay,
    })
}

/// The kind of a canonical status name (or, without one, of the HTTP status).
pub fn kind_of(status_name: &str, http_status: u16) -> ErrorKind {
    match status_name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        "UNAUTHENTICATED" => ErrorKind::Authentication,
        "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        "" => match http_status {
            400 | 413 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            408 | 504 => ErrorKind::Timeout,
            _ => ErrorKind::Api,
        },
        _ => ErrorKind::Api,
    }
}

/// The message of a Google error body, else its text (bounded).
pub fn message_of(body: &[u8]) -> String {
    match parse(body) {
        Some(e) if !e.message.is_empty() => e.message,
        _ => String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_errors_with_retry_info_and_wrapped_errors() {
        let body = br#"{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}"#;
        let e = parse(body).unwrap();
        assert_eq!(e.code, 429);
        assert_eq!(e.status, "RESOURCE_EXHAUSTED");
        assert_eq!(e.retry_delay, Some(Duration::from_secs(37)));
        assert_eq!(kind_of(&e.status, 429), ErrorKind::RateLimited);
        let wrapped = br#"[{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}]"#;
        let e = parse(wrapped).unwrap();
        assert_eq!(
            e.message,
            "The model is overloaded. Please try again later."
        );
        assert_eq!(kind_of(&e.status, 503), ErrorKind::Overloaded);
        assert_eq!(parse(b"<html>"), None);
        assert_eq!(message_of(b"<html>"), "<html>");
    }

    #[test]
    fn kinds() {
        for (status, kind) in [
            ("INVALID_ARGUMENT", ErrorKind::InvalidRequest),
            ("FAILED_PRECONDITION", ErrorKind::InvalidRequest),
            ("UNAUTHENTICATED", ErrorKind::Authentication),
            ("PERMISSION_DENIED", ErrorKind::PermissionDenied),
            ("NOT_FOUND", ErrorKind::NotFound),
            ("DEADLINE_EXCEEDED", ErrorKind::Timeout),
            ("INTERNAL", ErrorKind::Api),
            ("BRAND_NEW", ErrorKind::Api),
        ] {
            assert_eq!(kind_of(status, 0), kind, "{status}");
        }
        assert_eq!(kind_of("", 429), ErrorKind::RateLimited);
        assert_eq!(kind_of("", 502), ErrorKind::Api);
    }
}
