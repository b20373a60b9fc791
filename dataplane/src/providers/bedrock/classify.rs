//! Bedrock failures in the failover loop's classes
//! ([`AttemptOutcome`]), from an error answer (status, `x-amzn-ErrorType`,
//! `{"message"}`) or from an exception message that arrives before the
//! client received anything.
//!
//! | exception (HTTP status) | outcome | what the attempt stage does |
//! |---|---|---|
//! | `ThrottlingException` (429) | `RateLimited` | wait a short `Retry-After` or fail over at once |
//! | `ServiceUnavailableException` (503), `ModelNotReadyException` (429), `ServiceQuotaExceededException` | `RateLimited` | fail over (no breaker count) |
//! | `InternalServerException` (500), `ModelErrorException` / `ModelStreamErrorException` (424), `ModelTimeoutException` (408) | `ServerError` | retry once, then fail over |
//! | `ValidationException` about the context length | `ContextLength` | the rule's context fallback |
//! | `ValidationException` (other) | `ClientError 400` | the client gets the error |
//! | `AccessDeniedException`, `UnrecognizedClientException`, `ExpiredTokenException`, `InvalidSignatureException`, `ResourceNotFoundException` | `Unauthorized` | fail over; when every candidate refused, 503 to the client (the gateway's credential or model id is wrong, not the caller's) |
//!
//! An answer naming no exception is classified by its status like any
//! provider's ([`classify_status_body`]).

use http::HeaderMap;

use crate::routing::{AttemptOutcome, classify_status_body};
use crate::translate::bedrock::errors::{exception_of, message_of};

/// Lowercase markers of Bedrock's context-window errors.
const CONTEXT_MARKERS: &[&str] = &[
    "input is too long",
    "prompt is too long",
    "too many input tokens",
    "exceed context limit",
    "exceeds the context",
    "context window",
    "maximum context length",
    "context length",
];

fn mentions_context(message: &str) -> bool {
    let m = message.to_lowercase();
    CONTEXT_MARKERS.iter().any(|k| m.contains(k))
}

/// The outcome of a Bedrock exception `name` (either case convention) with
/// `message`; `status` is the HTTP status it came with (0 inside a stream).
pub fn classify_exception(
    name: &str,
    message: &str,
    headers: &HeaderMap,
    status: u16,
) -> AttemptOutcome {
    let retry_after = || match classify_status_body(429, b"", headers) {
        AttemptOutcome::RateLimited { retry_after } => retry_after,
        _ => None,
    };
    match name.to_ascii_lowercase().as_str() {
        "throttlingexception"
        | "servicequotaexceededexception"
        | "modelnotreadyexception"
        | "serviceunavailableexception" => AttemptOutcome::RateLimited {
            retry_after: retry_after(),
        },
        "internalserverexception" | "modelerrorexception" | "modelstreamerrorexception" => {
            AttemptOutcome::ServerError {
                status: if status >= 400 { status } else { 500 },
            }
        }
        "modeltimeoutexception" => AttemptOutcome::ServerError { status: 408 },
        "validationexception" if mentions_context(message) => AttemptOutcome::ContextLength,
        "validationexception" => AttemptOutcome::ClientError { status: 400 },
        "accessdeniedexception"
        | "unrecognizedclientexception"
        | "expiredtokenexception"
        | "invalidsignatureexception"
        | "resourcenotfoundexception" => AttemptOutcome::Unauthorized,
        _ if status >= 400 => classify_status_body(status, message.as_bytes(), headers),
        _ => AttemptOutcome::ServerError { status: 500 },
    }
}

/// Classifies a non-2xx Bedrock answer.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptOutcome {
    let header = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok());
    match exception_of(header, body) {
        Some(name) => classify_exception(&name, &message_of(body), headers, status),
        None => classify_status_body(status, body, headers),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    fn answer(status: u16, error_type: &str, message: &str) -> AttemptOutcome {
        let mut h = HeaderMap::new();
        if !error_type.is_empty() {
            h.insert(
                "x-amzn-errortype",
                HeaderValue::from_str(&format!(
                    "{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"
                ))
                .unwrap(),
            );
        }
        classify(
            status,
            &h,
            format!(r#"{{"message":"{message}"}}"#).as_bytes(),
        )
    }

    #[test]
    fn the_issue_table() {
        let rl = AttemptOutcome::RateLimited { retry_after: None };
        assert_eq!(
            answer(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again."
            ),
            rl
        );
        assert_eq!(
            answer(503, "ServiceUnavailableException", "Service unavailable"),
            rl
        );
        assert_eq!(
            answer(429, "ModelNotReadyException", "Model is not ready"),
            rl
        );
        assert_eq!(answer(400, "ServiceQuotaExceededException", "quota"), rl);
        assert_eq!(
            answer(500, "InternalServerException", "x"),
            AttemptOutcome::ServerError { status: 500 }
        );
        assert_eq!(
            answer(424, "ModelErrorException", "x"),
            AttemptOutcome::ServerError { status: 424 }
        );
        assert_eq!(
            answer(408, "ModelTimeoutException", "x"),
            AttemptOutcome::ServerError { status: 408 }
        );
        for m in [
            "Input is too long for requested model.",
            "prompt is too long: 210000 tokens > 200000 maximum",
            "The model returned the following errors: input length and `max_tokens` exceed context limit: 187254 + 20000 > 200000",
        ] {
            assert_eq!(
                answer(400, "ValidationException", m),
                AttemptOutcome::ContextLength,
                "{m}"
            );
        }
        assert_eq!(
            answer(400, "ValidationException", "invalid beta flag"),
            AttemptOutcome::ClientError { status: 400 }
        );
        for name in [
            "AccessDeniedException",
            "UnrecognizedClientException",
            "ExpiredTokenException",
            "ResourceNotFoundException",
        ] {
            assert_eq!(
                answer(403, name, "denied"),
                AttemptOutcome::Unauthorized,
                "{name}"
            );
        }
    }

    #[test]
    fn retry_after_and_bodies_without_the_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ThrottlingException"),
        );
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(
            classify(429, &h, b"{}"),
            AttemptOutcome::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            classify(
                400,
                &HeaderMap::new(),
                br#"{"__type":"com.amazon#ValidationException","message":"Input is too long"}"#
            ),
            AttemptOutcome::ContextLength
        );
        // No exception name: by status, as for any provider.
        assert_eq!(
            classify(502, &HeaderMap::new(), b"<html>"),
            AttemptOutcome::ServerError { status: 502 }
        );
        assert_eq!(
            classify(401, &HeaderMap::new(), b""),
            AttemptOutcome::Unauthorized
        );
    }

    #[test]
    fn exceptions_before_the_first_byte() {
        let h = HeaderMap::new();
        assert_eq!(
            classify_exception("throttlingException", "slow", &h, 0),
            AttemptOutcome::RateLimited { retry_after: None }
        );
        assert_eq!(
            classify_exception("modelStreamErrorException", "x", &h, 0),
            AttemptOutcome::ServerError { status: 500 }
        );
        assert_eq!(
            classify_exception("validationException", "Input is too long", &h, 0),
            AttemptOutcome::ContextLength
        );
        assert_eq!(
            classify_exception("brandNewException", "x", &h, 0),
            AttemptOutcome::ServerError { status: 500 }
        );
    }
}
