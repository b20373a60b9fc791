//! Upstream error bodies in the shape a Responses client expects (OpenAI:
//! `{"error":{"message","type","param","code"}}`), whatever the upstream
//! spoke. The status code is kept by the caller.
//!
//! - an OpenAI-shaped body passes unchanged;
//! - an Anthropic body keeps its `error.type` as `type` and `code`;
//! - anything else (HTML from a proxy, plain text, empty) becomes a generic
//!   error whose message names the status, with at most 200 characters of
//!   the text, so nothing large or binary reaches the client.

use bytes::Bytes;
use serde_json::{Value, json};

use super::ResponsesError;

fn type_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// The OpenAI-shaped error body for an upstream error answer.
pub fn openai_error_body(status: u16, upstream: &[u8]) -> Bytes {
    if let Ok(v) = serde_json::from_slice::<Value>(upstream) {
        if v.get("error").is_some_and(|e| e.get("message").is_some()) && v.get("type").is_none() {
            return Bytes::copy_from_slice(upstream);
        }
        if let Some(err) = v.get("error").filter(|e| e.is_object()) {
            let kind = err
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or(type_for_status(status));
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            return Bytes::from(
                json!({"error": {"message": message, "type": kind, "param": null, "code": kind}})
                    .to_string(),
            );
        }
    }
    let text = String::from_utf8_lossy(upstream);
    let snippet: String = text.trim().chars().take(200).collect();
    let message = if snippet.is_empty() {
        format!("upstream answered {status}")
    } else {
        format!("upstream answered {status}: {snippet}")
    };
    Bytes::from(json!({"error": {"message": message, "type": type_for_status(status), "param": null, "code": null}}).to_string())
}

/// The 400 body for a request the gateway cannot translate.
pub fn invalid_request_body(e: &ResponsesError) -> Bytes {
    Bytes::from(
        json!({"error": {"message": e.message, "type": "invalid_request_error", "param": e.param, "code": null}})
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: Bytes) -> Value {
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn shapes() {
        let openai = br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
        assert_eq!(&openai_error_body(400, openai)[..], &openai[..]);
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            parse(openai_error_body(529, anthropic)),
            json!({"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":"overloaded_error"}})
        );
        let html = parse(openai_error_body(502, b"<html>Bad Gateway</html>"));
        assert_eq!(html["error"]["type"], "server_error");
        assert_eq!(
            html["error"]["message"],
            "upstream answered 502: <html>Bad Gateway</html>"
        );
        assert_eq!(
            parse(openai_error_body(429, b""))["error"]["type"],
            "rate_limit_error"
        );
        let e = ResponsesError::new("tools[0].type", "nope");
        assert_eq!(
            parse(invalid_request_body(&e))["error"]["param"],
            "tools[0].type"
        );
    }
}
