//! Upstream error bodies in the client's dialect (§3.7).
//!
//! The status is kept. A JSON error from the other dialect is re-shaped
//! with its message and the matching type; a body that is not JSON (an HTML
//! page from a proxy, plain text) becomes a well-formed error whose message
//! is a short, printable excerpt of it.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::wire::Dialect;

/// Longest excerpt of a non-JSON upstream body put into a message.
const EXCERPT: usize = 300;

/// The Anthropic error type for an HTTP status.
pub fn anthropic_type_for_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ if status < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The OpenAI error type for an HTTP status.
pub fn openai_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        _ if status < 500 => "invalid_request_error",
        _ => "server_error",
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        "upstream error with an empty body".to_string()
    } else {
        clean.to_string()
    }
}

/// (type, message, code) of an upstream error in either dialect.
fn parts(status: u16, body: &[u8]) -> (Option<String>, String, Option<Value>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (
            None,
            format!("upstream returned HTTP {status}: {}", excerpt(body)),
            None,
        );
    };
    let err = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
    let message = err
        .get("message")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    let kind = err.get("type").and_then(Value::as_str).map(str::to_owned);
    let code = err.get("code").filter(|c| !c.is_null()).cloned();
    (kind, message, code)
}

/// Anthropic types that exist in the Anthropic error set.
const ANTHROPIC_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "conflict_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

/// An upstream error body (any dialect, or not JSON) as a `client` error body.
pub fn to_client(client: Dialect, status: u16, body: &[u8]) -> Bytes {
    let (kind, message, code) = parts(status, body);
    let v = match client {
        Dialect::OpenAI => json!({"error": {
            "message": message,
            "type": kind.unwrap_or_else(|| openai_type_for_status(status).to_string()),
            "param": null,
            "code": code
        }}),
        Dialect::Anthropic => {
            // An Anthropic-shaped body keeps its type; any other body (OpenAI
            // types such as `invalid_request_error` on a 404) is typed by status.
            let anthropic_shaped =
                serde_json::from_slice::<Value>(body).is_ok_and(|v| v["type"] == "error");
            let kind = kind
                .filter(|k| anthropic_shaped && ANTHROPIC_TYPES.contains(&k.as_str()))
                .unwrap_or_else(|| anthropic_type_for_status(status).to_string());
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
    };
    Bytes::from(v.to_string())
}

/// An in-stream upstream error event's data (any dialect) as a client SSE
/// error event: Anthropic `event: error`, OpenAI `data: {"error":…}`.
pub fn stream_event(client: Dialect, data: &str) -> Vec<u8> {
    let (kind, message, code) = parts(500, data.as_bytes());
    let body = match client {
        Dialect::OpenAI => json!({"error": {
            "message": message, "type": kind.unwrap_or_else(|| "server_error".into()), "param": null, "code": code
        }}),
        Dialect::Anthropic => {
            let kind = kind
                .map(|k| match k.as_str() {
                    "server_error" => "api_error".to_string(),
                    "tokens" | "requests" => "rate_limit_error".to_string(),
                    _ => k,
                })
                .filter(|k| ANTHROPIC_TYPES.contains(&k.as_str()))
                .unwrap_or_else(|| "api_error".into());
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
    };
    match client {
        Dialect::OpenAI => format!("data: {body}\n\n").into_bytes(),
        Dialect::Anthropic => format!("event: error\ndata: {body}\n\n").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(b: &Bytes) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn openai_error_becomes_anthropic_with_status_type() {
        let body = br#"{"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}"#;
        let v = j(&to_client(Dialect::Anthropic, 429, body));
        assert_eq!(
            v,
            json!({"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}})
        );
    }

    #[test]
    fn openai_404_is_typed_by_status_for_anthropic_clients() {
        let body = br#"{"error":{"message":"The model does not exist","type":"invalid_request_error","code":"model_not_found"}}"#;
        let v = j(&to_client(Dialect::Anthropic, 404, body));
        assert_eq!(v["error"]["type"], "not_found_error");
    }

    #[test]
    fn anthropic_error_becomes_openai_with_real_type() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        let v = j(&to_client(Dialect::OpenAI, 529, body));
        assert_eq!(
            v,
            json!({"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}})
        );
    }

    #[test]
    fn non_json_upstream_errors_are_passed_on_safely() {
        let body = b"<html><body>502 Bad Gateway\x00\n</body></html>";
        for d in [Dialect::OpenAI, Dialect::Anthropic] {
            let v = j(&to_client(d, 502, body));
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("502 Bad Gateway") && !msg.contains('\0'),
                "{msg}"
            );
        }
        assert_eq!(
            j(&to_client(Dialect::Anthropic, 502, b""))["error"]["type"],
            "api_error"
        );
    }
}
