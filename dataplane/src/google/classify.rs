//! Google (Gemini API, Vertex AI) failures in the failover loop's classes
//! ([`AttemptOutcome`]) and as the client's error.
//!
//! | error (`status`, HTTP) | outcome | what the attempt stage does |
//! |---|---|---|
//! | `RESOURCE_EXHAUSTED` (429) | `RateLimited` (the `RetryInfo` delay, else `Retry-After`) | wait a short delay or fail over at once |
//! | `UNAVAILABLE` (503, "the model is overloaded") | `RateLimited` | fail over (capacity, not a broken backend: no breaker count) |
//! | `INTERNAL` (500), `DEADLINE_EXCEEDED` (504) | `ServerError` | retry once, then fail over |
//! | `INVALID_ARGUMENT` about the context length ("input token count … exceeds the maximum") | `ContextLength` | the rule's context fallback |
//! | `INVALID_ARGUMENT` naming a safety / content policy | `ContentPolicy` | the client gets the error |
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION` (other) | `ClientError 400` | the client gets the error |
//! | `UNAUTHENTICATED`, `PERMISSION_DENIED`, `NOT_FOUND` | `Unauthorized` | fail over; when every candidate refused, 503 to the client (the gateway's credential, project or model id is wrong, not the caller's) |
//!
//! An answer that is not a Google error (a proxy's HTML page) is classified
//! by its status like any provider's ([`classify_status_body`]). Claude on
//! Vertex answers Anthropic-shaped errors (`{"type":"error",…}`), sometimes
//! inside a Google error; both are read here.
//!
//! A safety block is not an error: a 200 whose candidate finished with
//! `SAFETY` (or whose prompt was blocked) is translated to the client's
//! refusal shape by [`crate::translate::gemini`].

use http::{HeaderMap, StatusCode};

use crate::routing::{AttemptOutcome, classify_status_body};
use crate::translate::gemini::errors::{kind_of, message_of, parse};
use crate::wire::{Dialect, error_body};

/// Lowercase markers of a context-window error in a Google message.
const CONTEXT_MARKERS: &[&str] = &[
    "input token count",
    "exceeds the maximum number of tokens",
    "context window",
    "prompt is too long",
    "too many tokens",
];

/// Lowercase markers of a content-policy refusal.
const POLICY_MARKERS: &[&str] = &["safety", "prohibited content", "blocked"];

/// Classifies a non-2xx Google answer.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptOutcome {
    let Some(e) = parse(body) else {
        return classify_status_body(status, body, headers);
    };
    let message = e.message.to_lowercase();
    match e.status.as_str() {
        "RESOURCE_EXHAUSTED" | "UNAVAILABLE" => AttemptOutcome::RateLimited {
            retry_after: e
                .retry_delay
                .or(match classify_status_body(429, b"", headers) {
                    AttemptOutcome::RateLimited { retry_after } => retry_after,
                    _ => None,
                }),
        },
        "INTERNAL" | "UNKNOWN" => AttemptOutcome::ServerError {
            status: if status >= 500 { status } else { 500 },
        },
        "DEADLINE_EXCEEDED" => AttemptOutcome::ServerError { status: 504 },
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            if CONTEXT_MARKERS.iter().any(|m| message.contains(m)) {
                AttemptOutcome::ContextLength
            } else if POLICY_MARKERS.iter().any(|m| message.contains(m)) {
                AttemptOutcome::ContentPolicy
            } else {
                AttemptOutcome::ClientError { status: 400 }
            }
        }
        "UNAUTHENTICATED" | "PERMISSION_DENIED" | "NOT_FOUND" => AttemptOutcome::Unauthorized,
        _ => classify_status_body(status, body, headers),
    }
}

/// A Google error answer as the client's error: the status kept, the body
/// in the client's dialect with the kind of the Google status and Google's
/// message.
pub fn client_error(dialect: Dialect, status: u16, body: &[u8]) -> (StatusCode, bytes::Bytes) {
    let name = parse(body).map(|e| e.status).unwrap_or_default();
    let kind = kind_of(&name, status);
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    (status, error_body(dialect, kind, &message_of(body), None))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    fn google(code: u16, status: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "status": status, "message": message}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn the_table() {
        let h = HeaderMap::new();
        let rl = AttemptOutcome::RateLimited { retry_after: None };
        assert_eq!(
            classify(
                429,
                &h,
                &google(429, "RESOURCE_EXHAUSTED", "Quota exceeded")
            ),
            rl
        );
        assert_eq!(
            classify(
                503,
                &h,
                &google(
                    503,
                    "UNAVAILABLE",
                    "The model is overloaded. Please try again later."
                )
            ),
            rl
        );
        assert_eq!(
            classify(
                500,
                &h,
                &google(500, "INTERNAL", "An internal error has occurred.")
            ),
            AttemptOutcome::ServerError { status: 500 }
        );
        assert_eq!(
            classify(
                504,
                &h,
                &google(504, "DEADLINE_EXCEEDED", "Deadline exceeded")
            ),
            AttemptOutcome::ServerError { status: 504 }
        );
        assert_eq!(
            classify(
                400,
                &h,
                &google(
                    400,
                    "INVALID_ARGUMENT",
                    "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
                )
            ),
            AttemptOutcome::ContextLength
        );
        assert_eq!(
            classify(
                400,
                &h,
                &google(
                    400,
                    "INVALID_ARGUMENT",
                    "Request contains an invalid argument."
                )
            ),
            AttemptOutcome::ClientError { status: 400 }
        );
        assert_eq!(
            classify(
                400,
                &h,
                &google(
                    400,
                    "FAILED_PRECONDITION",
                    "User location is not supported for the API use."
                )
            ),
            AttemptOutcome::ClientError { status: 400 }
        );
        for (code, status) in [
            (401, "UNAUTHENTICATED"),
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
        ] {
            assert_eq!(
                classify(code, &h, &google(code, status, "x")),
                AttemptOutcome::Unauthorized,
                "{status}"
            );
        }
        // Not a Google error: by status.
        assert_eq!(
            classify(502, &h, b"<html>bad gateway</html>"),
            AttemptOutcome::ServerError { status: 502 }
        );
    }

    #[test]
    fn retry_delays() {
        let body = br#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}}"#;
        assert_eq!(
            classify(429, &HeaderMap::new(), body),
            AttemptOutcome::RateLimited {
                retry_after: Some(Duration::from_millis(2500))
            }
        );
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(
            classify(429, &h, &google(429, "RESOURCE_EXHAUSTED", "quota")),
            AttemptOutcome::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn client_errors_in_both_dialects() {
        let body = google(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com",
        );
        let (status, out) = client_error(Dialect::Anthropic, 429, &body);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(
            v["error"]["message"],
            "Quota exceeded for aiplatform.googleapis.com"
        );
        let (status, out) = client_error(
            Dialect::OpenAI,
            400,
            &google(400, "INVALID_ARGUMENT", "bad"),
        );
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["message"], "bad");
    }
}
