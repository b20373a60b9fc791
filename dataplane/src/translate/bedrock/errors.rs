//! Bedrock errors in the gateway's terms, both ways (`protocols.md` §3.7,
//! §4.6, §4.9).
//!
//! Upstream: an error answer names its exception in the `x-amzn-ErrorType`
//! header (`ThrottlingException:http://…`; the text before `:`) and carries
//! `{"message": …}` (sometimes `Message`); a stream reports one as an
//! `exception` message whose `:exception-type` is lowerCamel
//! (`throttlingException`). Both map to the gateway's [`ErrorKind`]:
//!
//! | exception | kind (Anthropic type) | HTTP |
//! |---|---|---|
//! | `ThrottlingException` | `RateLimited` (rate_limit_error) | 429 |
//! | `ModelNotReadyException`, `ServiceUnavailableException` | `Overloaded` (overloaded_error) | 429 / 503 |
//! | `InternalServerException`, `ModelStreamErrorException`, `ModelErrorException` | `Api` (api_error) | 500 / 424 |
//! | `ModelTimeoutException` | `Timeout` (timeout_error) | 408 |
//! | `ValidationException`, `ServiceQuotaExceededException` | `InvalidRequest` | 400 |
//! | `AccessDeniedException`, `UnrecognizedClientException` | `PermissionDenied` | 403 |
//! | `ResourceNotFoundException` | `NotFound` | 404 |
//!
//! The front door answers a Bedrock-format client in Bedrock's own shape:
//! the status, `x-amzn-ErrorType: <Name>` and `{"message": …}` ([`front_error`]),
//! or an exception message inside a started stream ([`exception_for`]).

use serde_json::Value;

use crate::wire::ErrorKind;

/// The exception name of an `x-amzn-ErrorType` value or a `__type` field:
/// the text before `:`, after the last `#` (`com.amazon…#ThrottlingException`).
pub fn exception_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name).trim()
}

/// The kind of a Bedrock exception, by name in either case convention
/// (`ThrottlingException` or `throttlingException`).
pub fn kind_of(exception: &str) -> ErrorKind {
    let lower = exception.to_ascii_lowercase();
    match lower.as_str() {
        "throttlingexception" => ErrorKind::RateLimited,
        "modelnotreadyexception" | "serviceunavailableexception" => ErrorKind::Overloaded,
        "modeltimeoutexception" => ErrorKind::Timeout,
        "validationexception" | "servicequotaexceededexception" => ErrorKind::InvalidRequest,
        "accessdeniedexception" | "unrecognizedclientexception" => ErrorKind::PermissionDenied,
        "resourcenotfoundexception" => ErrorKind::NotFound,
        // internalServer, modelStreamError, modelError and anything new
        _ => ErrorKind::Api,
    }
}

/// `message` (or `Message`) of a Bedrock error payload, else the raw text.
pub fn message_of(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("Message")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned())
}

/// The exception named by an error answer: `x-amzn-ErrorType`, else the
/// body's `__type` or `code`.
pub fn exception_of(error_type_header: Option<&str>, body: &[u8]) -> Option<String> {
    if let Some(h) = error_type_header.filter(|h| !h.trim().is_empty()) {
        return Some(exception_name(h).to_string());
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let raw = v.get("__type").or_else(|| v.get("code"))?.as_str()?;
    Some(exception_name(raw).to_string())
}

/// An Anthropic `event: error` for a Bedrock stream exception.
pub fn anthropic_error_event(kind: ErrorKind, message: &str, out: &mut Vec<u8>) {
    let data = serde_json::json!({
        "type": "error",
        "error": {"type": kind.anthropic_type(), "message": message}
    });
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The Bedrock answer for a gateway error: status, exception name (the
/// `x-amzn-ErrorType` value) and body.
pub fn front_error(kind: ErrorKind, message: &str) -> (u16, &'static str, Vec<u8>) {
    let (status, name) = match kind {
        ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => (400, "ValidationException"),
        ErrorKind::Authentication => (401, "UnrecognizedClientException"),
        ErrorKind::PermissionDenied => (403, "AccessDeniedException"),
        ErrorKind::NotFound => (404, "ResourceNotFoundException"),
        ErrorKind::RateLimited => (429, "ThrottlingException"),
        ErrorKind::Unavailable | ErrorKind::Overloaded => (503, "ServiceUnavailableException"),
        ErrorKind::Timeout => (408, "ModelTimeoutException"),
        ErrorKind::Api => (500, "InternalServerException"),
    };
    let body = serde_json::json!({ "message": message })
        .to_string()
        .into_bytes();
    (status, name, body)
}

/// The lowerCamel `:exception-type` for a gateway error inside a stream.
pub fn exception_for(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "validationException",
        ErrorKind::Authentication | ErrorKind::PermissionDenied => "accessDeniedException",
        ErrorKind::NotFound => "resourceNotFoundException",
        ErrorKind::RateLimited => "throttlingException",
        ErrorKind::Unavailable | ErrorKind::Overloaded => "serviceUnavailableException",
        ErrorKind::Timeout => "modelTimeoutException",
        ErrorKind::Api => "internalServerException",
    }
}

/// The [`ErrorKind`] of an Anthropic `error.type` (front door: an upstream
/// Anthropic stream error becomes a Bedrock exception).
pub fn kind_of_anthropic(error_type: &str) -> ErrorKind {
    match error_type {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::RequestTooLarge,
        "rate_limit_error" => ErrorKind::RateLimited,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        _ => ErrorKind::Api,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_headers_and_bodies() {
        assert_eq!(
            exception_name(
                "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            ),
            "ThrottlingException"
        );
        assert_eq!(
            exception_of(
                None,
                br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"x"}"#
            ),
            Some("ValidationException".into())
        );
        assert_eq!(exception_of(Some(""), b"{}"), None);
        assert_eq!(
            message_of(br#"{"Message":"Too many tokens"}"#),
            "Too many tokens"
        );
        assert_eq!(
            message_of(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }

    #[test]
    fn kinds_both_case_conventions() {
        for (name, kind) in [
            ("ThrottlingException", ErrorKind::RateLimited),
            ("throttlingException", ErrorKind::RateLimited),
            ("modelNotReadyException", ErrorKind::Overloaded),
            ("ServiceUnavailableException", ErrorKind::Overloaded),
            ("internalServerException", ErrorKind::Api),
            ("modelStreamErrorException", ErrorKind::Api),
            ("ModelTimeoutException", ErrorKind::Timeout),
            ("validationException", ErrorKind::InvalidRequest),
            ("AccessDeniedException", ErrorKind::PermissionDenied),
            ("ResourceNotFoundException", ErrorKind::NotFound),
            ("SomethingNewException", ErrorKind::Api),
        ] {
            assert_eq!(kind_of(name), kind, "{name}");
        }
    }

    #[test]
    fn front_door_errors_round_trip_through_the_upstream_mapping() {
        for kind in [
            ErrorKind::InvalidRequest,
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::RateLimited,
            ErrorKind::Overloaded,
            ErrorKind::Timeout,
            ErrorKind::Api,
        ] {
            let (_, name, body) = front_error(kind, "m");
            assert_eq!(kind_of(name), kind, "{name}");
            assert_eq!(kind_of(exception_for(kind)), kind);
            assert_eq!(message_of(&body), "m");
            assert_eq!(kind_of_anthropic(kind.anthropic_type()), kind, "{kind:?}");
        }
        assert_eq!(front_error(ErrorKind::RateLimited, "x").0, 429);
    }
}
