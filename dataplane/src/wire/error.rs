//! Error bodies and in-stream error events in either dialect.
//!
//! Shapes (see `protocols.md` §1.9, §2.11, §7.2):
//! - OpenAI: `{"error":{"message":…,"type":…,"param":null,"code":…|null}}`;
//!   in a stream, `data: {"error":{…}}\n\n` (no `[DONE]` follows).
//! - Anthropic: `{"type":"error","error":{"type":…,"message":…}}`; in a
//!   stream, `event: error\ndata: {…}\n\n` (no `message_stop` follows).
//!
//! JSON is always built with `serde_json`, so messages are escaped safely.

use bytes::Bytes;
use serde::Serialize;

use super::Dialect;

/// The family of an error, which picks the `type` field in either dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or not acceptable (400).
    InvalidRequest,
    /// The client did not authenticate (401).
    Authentication,
    /// The client is authenticated but not allowed (403).
    PermissionDenied,
    /// The route, endpoint or model does not exist (404).
    NotFound,
    /// The request body is too large (413).
    RequestTooLarge,
    /// The client is over a rate limit or budget (429).
    RateLimited,
    /// No backend can serve the request right now (503).
    Unavailable,
    /// The upstream is overloaded (529 at Anthropic).
    Overloaded,
    /// The upstream did not answer in time (504), or a stream stalled.
    Timeout,
    /// Any other failure on the gateway's or upstream's side (500).
    Api,
}

impl ErrorKind {
    /// The OpenAI `error.type` for this kind.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "invalid_request_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Unavailable => "server_error",
            ErrorKind::Overloaded => "server_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Api => "server_error",
        }
    }

    /// The Anthropic `error.type` for this kind.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::PermissionDenied => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Unavailable => "overloaded_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Api => "api_error",
        }
    }

    /// The `type` field for this kind in `dialect`.
    pub fn type_name(self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::OpenAI => self.openai_type(),
            Dialect::Anthropic => self.anthropic_type(),
        }
    }
}

/// OpenAI error body; field order as the API sends it.
#[derive(Serialize)]
struct OpenAIBody<'a> {
    error: OpenAIError<'a>,
}

#[derive(Serialize)]
struct OpenAIError<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<()>,
    code: Option<&'a str>,
}

/// Anthropic error body; field order as the API sends it.
#[derive(Serialize)]
struct AnthropicBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: AnthropicError<'a>,
}

#[derive(Serialize)]
struct AnthropicError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

fn error_json(
    dialect: Dialect,
    kind: ErrorKind,
    message: &str,
    openai_code: Option<&str>,
) -> String {
    let json = match dialect {
        Dialect::OpenAI => serde_json::to_string(&OpenAIBody {
            error: OpenAIError {
                message,
                kind: kind.openai_type(),
                param: None,
                code: openai_code,
            },
        }),
        Dialect::Anthropic => serde_json::to_string(&AnthropicBody {
            kind: "error",
            error: AnthropicError {
                kind: kind.anthropic_type(),
                message,
            },
        }),
    };
    // Serializing plain strings cannot fail; fall back to a fixed body anyway.
    json.unwrap_or_else(|_| String::from(r#"{"error":{"message":"internal error"}}"#))
}

/// A complete JSON error body in `dialect`. `openai_code` fills OpenAI's
/// `error.code` (null when `None`); Anthropic bodies have no code.
pub fn error_body(
    dialect: Dialect,
    kind: ErrorKind,
    message: &str,
    openai_code: Option<&str>,
) -> Bytes {
    Bytes::from(error_json(dialect, kind, message, openai_code))
}

/// One SSE event reporting an error inside an already started stream:
/// Anthropic `event: error\ndata: {…}\n\n`, OpenAI `data: {"error":{…}}\n\n`.
/// The caller ends the stream after it, without a terminal event.
pub fn stream_error_event(dialect: Dialect, kind: ErrorKind, message: &str) -> Bytes {
    let data = error_json(dialect, kind, message, None);
    let frame = match dialect {
        Dialect::OpenAI => format!("data: {data}\n\n"),
        Dialect::Anthropic => format!("event: error\ndata: {data}\n\n"),
    };
    Bytes::from(frame)
}

/// An error body already in `dialect`'s shape (an upstream error returned
/// as it is) as the in-stream error event of a stream whose headers went
/// out: the same JSON, so the client reads the provider's own type and
/// wording. `None` when the body is not that dialect's error shape.
pub fn body_as_stream_event(dialect: Dialect, body: &[u8]) -> Option<Bytes> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let shaped = match dialect {
        Dialect::Anthropic => v["type"] == "error" && v["error"].is_object(),
        Dialect::OpenAI => v["error"].is_object(),
    };
    if !shaped {
        return None;
    }
    // An SSE data line cannot hold a line break: re-encode such a body compactly.
    let data = if body.iter().any(|&b| b == b'\n' || b == b'\r') {
        v.to_string()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    Some(Bytes::from(match dialect {
        Dialect::OpenAI => format!("data: {data}\n\n"),
        Dialect::Anthropic => format!("event: error\ndata: {data}\n\n"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn an_error_body_of_the_clients_dialect_becomes_its_in_band_event_unchanged() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(
            body_as_stream_event(Dialect::Anthropic, body).unwrap(),
            format!(
                "event: error\ndata: {}\n\n",
                std::str::from_utf8(body).unwrap()
            )
        );
        let pretty = b"{\n  \"error\": {\"message\": \"Rate limit\", \"type\": \"tokens\"}\n}";
        assert_eq!(
            body_as_stream_event(Dialect::OpenAI, pretty).unwrap(),
            "data: {\"error\":{\"message\":\"Rate limit\",\"type\":\"tokens\"}}\n\n"
        );
        assert!(
            body_as_stream_event(Dialect::Anthropic, br#"{"error":{"message":"x"}}"#).is_none()
        );
        assert!(body_as_stream_event(Dialect::OpenAI, b"<html>").is_none());
    }

    fn parse(b: &Bytes) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn openai_body_shape() {
        let v = parse(&error_body(
            Dialect::OpenAI,
            ErrorKind::NotFound,
            "no such model",
            Some("model_not_found"),
        ));
        assert_eq!(
            v,
            json!({"error":{"message":"no such model","type":"not_found_error","param":null,"code":"model_not_found"}})
        );
        let v = parse(&error_body(Dialect::OpenAI, ErrorKind::Api, "x", None));
        assert_eq!(v["error"]["code"], Value::Null);
        assert_eq!(v["error"]["type"], "server_error");
    }

    #[test]
    fn anthropic_body_shape() {
        let v = parse(&error_body(
            Dialect::Anthropic,
            ErrorKind::RequestTooLarge,
            "too big",
            Some("ignored"),
        ));
        assert_eq!(
            v,
            json!({"type":"error","error":{"type":"request_too_large","message":"too big"}})
        );
    }

    #[test]
    fn messages_are_escaped() {
        let msg = "quote \" backslash \\ newline \n </script>";
        for d in [Dialect::OpenAI, Dialect::Anthropic] {
            let v = parse(&error_body(d, ErrorKind::InvalidRequest, msg, None));
            let got = match d {
                Dialect::OpenAI => &v["error"]["message"],
                Dialect::Anthropic => &v["error"]["message"],
            };
            assert_eq!(got, msg);
        }
    }

    #[test]
    fn anthropic_types_cover_documented_set() {
        let kinds = [
            ErrorKind::InvalidRequest,
            ErrorKind::Authentication,
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::RequestTooLarge,
            ErrorKind::RateLimited,
            ErrorKind::Unavailable,
            ErrorKind::Overloaded,
            ErrorKind::Timeout,
            ErrorKind::Api,
        ];
        let documented = [
            "invalid_request_error",
            "authentication_error",
            "permission_error",
            "not_found_error",
            "request_too_large",
            "rate_limit_error",
            "api_error",
            "overloaded_error",
            "timeout_error",
        ];
        for k in kinds {
            assert!(documented.contains(&k.anthropic_type()), "{k:?}");
        }
    }

    #[test]
    fn stream_events_are_framed() {
        let a = stream_error_event(Dialect::Anthropic, ErrorKind::Timeout, "stalled \"x\"");
        let s = std::str::from_utf8(&a).unwrap();
        assert!(s.starts_with(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"timeout_error\""
        ));
        assert!(s.ends_with("}\n\n"));
        let data: Value =
            serde_json::from_str(s.trim_end().strip_prefix("event: error\ndata: ").unwrap())
                .unwrap();
        assert_eq!(
            data,
            json!({"type":"error","error":{"type":"timeout_error","message":"stalled \"x\""}})
        );

        let o = stream_error_event(Dialect::OpenAI, ErrorKind::Api, "boom");
        let s = std::str::from_utf8(&o).unwrap();
        assert!(s.starts_with("data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}"));
        assert!(s.ends_with("}\n\n"));
        assert_eq!(s.matches('\n').count(), 2, "one line plus the blank line");
    }
}
