//! Classification of a failed upstream attempt into the outcome classes the
//! failover decision works with.
//!
//! | Upstream answer                                         | Outcome              |
//! |---------------------------------------------------------|----------------------|
//! | 429, 529                                                | `RateLimited`        |
//! | 5xx (other than 529), 408                               | `ServerError`        |
//! | 400/413/422 whose body says the context is too long     | `ContextLength`      |
//! | 400 whose body names a content filter / safety policy   | `ContentPolicy`      |
//! | 401, 403                                                | `Unauthorized`       |
//! | any other non-2xx                                       | `ClientError`        |
//!
//! `RateLimited` carries the wait the upstream asked for: `retry-after-ms`
//! (milliseconds, OpenAI) wins over `retry-after` (delay seconds, or an
//! IMF-fixdate HTTP-date measured against the response's `Date` header, or
//! the local clock when there is none). Unparseable values are ignored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::calendar::days_from_civil;

/// How one upstream attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// No connection could be made.
    ConnectError,
    /// The connection broke before response headers arrived.
    Reset,
    /// No response headers within the timeout.
    Timeout,
    /// 429 or 529: the upstream is rate limited or overloaded.
    RateLimited {
        /// How long the upstream asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// 5xx (or 408): the upstream failed.
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// The provider's content policy refused the request.
    ContentPolicy,
    /// 401 or 403: the provider rejected our credential.
    Unauthorized,
    /// Any other 4xx: the request itself is wrong.
    ClientError {
        /// The HTTP status.
        status: u16,
    },
}

impl AttemptOutcome {
    /// Low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptOutcome::ConnectError => "connect_error",
            AttemptOutcome::Reset => "reset",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::RateLimited { .. } => "rate_limited",
            AttemptOutcome::ServerError { .. } => "server_error",
            AttemptOutcome::ContextLength => "context_length",
            AttemptOutcome::ContentPolicy => "content_policy",
            AttemptOutcome::Unauthorized => "unauthorized",
            AttemptOutcome::ClientError { .. } => "client_error",
        }
    }
}

/// Whether an outcome counts against the backend's circuit breaker: the
/// backend is unreachable, broken or misconfigured, not merely busy and not
/// answering a bad request.
pub fn counts_as_breaker_failure(outcome: &AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::ConnectError
        | AttemptOutcome::Reset
        | AttemptOutcome::Timeout
        | AttemptOutcome::ServerError { .. }
        | AttemptOutcome::Unauthorized => true,
        AttemptOutcome::RateLimited { .. }
        | AttemptOutcome::ContextLength
        | AttemptOutcome::ContentPolicy
        | AttemptOutcome::ClientError { .. } => false,
    }
}

/// Classifies a non-2xx upstream answer, reading the local clock only for
/// an HTTP-date `retry-after` without a `Date` header.
pub fn classify_status_body(status: u16, body: &[u8], headers: &HeaderMap) -> AttemptOutcome {
    classify_status_body_at(status, body, headers, SystemTime::now())
}

/// [`classify_status_body`] with the local clock passed in.
pub fn classify_status_body_at(
    status: u16,
    body: &[u8],
    headers: &HeaderMap,
    now: SystemTime,
) -> AttemptOutcome {
    match status {
        429 | 529 => AttemptOutcome::RateLimited {
            retry_after: retry_after(headers, now),
        },
        408 | 500..=599 => AttemptOutcome::ServerError { status },
        401 | 403 => AttemptOutcome::Unauthorized,
        400 | 413 | 422 => {
            let text = body_text(body);
            if mentions_context_length(&text) {
                AttemptOutcome::ContextLength
            } else if status == 400 && mentions_content_policy(&text) {
                AttemptOutcome::ContentPolicy
            } else {
                AttemptOutcome::ClientError { status }
            }
        }
        _ => AttemptOutcome::ClientError { status },
    }
}

/// Largest prefix of an error body searched for markers.
const BODY_SCAN_LIMIT: usize = 64 << 10;

fn body_text(body: &[u8]) -> String {
    let body = &body[..body.len().min(BODY_SCAN_LIMIT)];
    String::from_utf8_lossy(body).to_lowercase()
}

/// Markers of a context-window error, lowercase.
const CONTEXT_MARKERS: &[&str] = &[
    "context_length_exceeded",
    "maximum context length",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "context window",
    "exceeds the maximum number of tokens",
];

/// Markers of a content-policy refusal, lowercase.
const POLICY_MARKERS: &[&str] = &[
    "content_filter",
    "content_policy_violation",
    "content policy",
    "safety",
];

fn mentions_context_length(text: &str) -> bool {
    CONTEXT_MARKERS.iter().any(|m| text.contains(m))
}

fn mentions_content_policy(text: &str) -> bool {
    POLICY_MARKERS.iter().any(|m| text.contains(m))
}

/// The wait a rate-limited answer asks for.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(parse_non_negative) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Some(secs) = parse_non_negative(value) {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(value)?;
    let reference = text("date").and_then(parse_http_date).unwrap_or(now);
    Some(at.duration_since(reference).unwrap_or(Duration::ZERO))
}

/// A finite, non-negative decimal number of reasonable size.
fn parse_non_negative(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (0.0..1e12).contains(&v).then_some(v)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.trim().split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u32 = digits(day, 2)?;
    let month = 1 + MONTHS.iter().position(|m| m == month)? as u32;
    let year: i64 = i64::from(digits(year, 4)?);
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    let (h, m, sec) = (digits(h, 2)?, digits(m, 2)?, digits(sec, 2)?);
    if !(1..=days_in_month(year, month)).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + sec);
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Exactly `len` ASCII digits.
fn digits(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for &(k, v) in pairs {
            h.insert(k, HeaderValue::from_static(v));
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// 1994-11-06T08:49:37Z.
    const RFC_EXAMPLE: u64 = 784_111_777;

    type Case = (
        u16,
        &'static str,
        &'static [(&'static str, &'static str)],
        AttemptOutcome,
    );

    #[test]
    fn classification_table() {
        let none: &[(&str, &str)] = &[];
        let rl = |ms: Option<u64>| AttemptOutcome::RateLimited {
            retry_after: ms.map(Duration::from_millis),
        };
        let cases: Vec<Case> = vec![
            (429, "", none, rl(None)),
            (429, "", &[("retry-after", "7")], rl(Some(7_000))),
            (429, "", &[("retry-after", " 2 ")], rl(Some(2_000))),
            (429, "", &[("retry-after", "1.5")], rl(Some(1_500))),
            (429, "", &[("retry-after-ms", "250")], rl(Some(250))),
            (
                429,
                "",
                &[("retry-after-ms", "250"), ("retry-after", "9")],
                rl(Some(250)),
            ),
            (
                429,
                "",
                &[("retry-after-ms", "soon"), ("retry-after", "9")],
                rl(Some(9_000)),
            ),
            (429, "", &[("retry-after", "-3")], rl(None)),
            (429, "", &[("retry-after", "tomorrow")], rl(None)),
            (
                429,
                "",
                &[
                    ("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT"),
                    ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ],
                rl(Some(3_000)),
            ),
            // No Date header: measured against the local clock (`now` below).
            (
                429,
                "",
                &[("retry-after", "Sun, 06 Nov 1994 08:50:37 GMT")],
                rl(Some(60_000)),
            ),
            // A date in the past means "now".
            (
                429,
                "",
                &[("retry-after", "Sun, 06 Nov 1994 08:49:00 GMT")],
                rl(Some(0)),
            ),
            (
                529,
                r#"{"type":"error","error":{"type":"overloaded_error"}}"#,
                none,
                rl(None),
            ),
            (500, "", none, AttemptOutcome::ServerError { status: 500 }),
            (502, "", none, AttemptOutcome::ServerError { status: 502 }),
            (503, "", none, AttemptOutcome::ServerError { status: 503 }),
            (504, "", none, AttemptOutcome::ServerError { status: 504 }),
            (520, "", none, AttemptOutcome::ServerError { status: 520 }),
            (408, "", none, AttemptOutcome::ServerError { status: 408 }),
            (401, "", none, AttemptOutcome::Unauthorized),
            (403, "forbidden", none, AttemptOutcome::Unauthorized),
            (
                400,
                r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
                none,
                AttemptOutcome::ContextLength,
            ),
            (
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
                none,
                AttemptOutcome::ContextLength,
            ),
            (
                400,
                r#"{"error":{"code":"context_length_exceeded"}}"#,
                none,
                AttemptOutcome::ContextLength,
            ),
            (
                413,
                r#"{"error":"Input is too long for requested model."}"#,
                none,
                AttemptOutcome::ContextLength,
            ),
            (
                422,
                r#"{"detail":"Too many tokens in the request"}"#,
                none,
                AttemptOutcome::ContextLength,
            ),
            (
                413,
                r#"{"error":{"type":"request_too_large"}}"#,
                none,
                AttemptOutcome::ClientError { status: 413 },
            ),
            (
                400,
                r#"{"error":{"code":"content_filter","message":"The response was filtered"}}"#,
                none,
                AttemptOutcome::ContentPolicy,
            ),
            (
                400,
                r#"{"error":{"code":"content_policy_violation"}}"#,
                none,
                AttemptOutcome::ContentPolicy,
            ),
            (
                400,
                r#"{"error":{"message":"Blocked by Safety settings"}}"#,
                none,
                AttemptOutcome::ContentPolicy,
            ),
            // Content policy is recognised on 400 only.
            (
                422,
                r#"{"error":"safety"}"#,
                none,
                AttemptOutcome::ClientError { status: 422 },
            ),
            (
                400,
                r#"{"error":{"message":"max_tokens must be positive"}}"#,
                none,
                AttemptOutcome::ClientError { status: 400 },
            ),
            (
                400,
                "\u{fffd}not json",
                none,
                AttemptOutcome::ClientError { status: 400 },
            ),
            (
                404,
                "model not found",
                none,
                AttemptOutcome::ClientError { status: 404 },
            ),
            (409, "", none, AttemptOutcome::ClientError { status: 409 }),
        ];
        let now = at(RFC_EXAMPLE);
        for (status, body, hs, want) in cases {
            let got = classify_status_body_at(status, body.as_bytes(), &headers(hs), now);
            assert_eq!(got, want, "{status} {body:?} {hs:?}");
        }
        // Non-UTF-8 bytes do not break scanning.
        let body = [b"\xff\xfe prompt is too long".as_slice()].concat();
        assert_eq!(
            classify_status_body(400, &body, &HeaderMap::new()),
            AttemptOutcome::ContextLength
        );
    }

    #[test]
    fn http_date_parsing() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(at(RFC_EXAMPLE))
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(at(0))
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 23:59:59 GMT"),
            Some(at(951_868_799))
        );
        assert_eq!(
            parse_http_date("Fri, 01 Mar 2024 00:00:00 GMT"),
            Some(at(1_709_251_200))
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn breaker_failures_and_labels() {
        let cases = [
            (AttemptOutcome::ConnectError, true, "connect_error"),
            (AttemptOutcome::Reset, true, "reset"),
            (AttemptOutcome::Timeout, true, "timeout"),
            (
                AttemptOutcome::ServerError { status: 503 },
                true,
                "server_error",
            ),
            (AttemptOutcome::Unauthorized, true, "unauthorized"),
            (
                AttemptOutcome::RateLimited { retry_after: None },
                false,
                "rate_limited",
            ),
            (AttemptOutcome::ContextLength, false, "context_length"),
            (AttemptOutcome::ContentPolicy, false, "content_policy"),
            (
                AttemptOutcome::ClientError { status: 400 },
                false,
                "client_error",
            ),
        ];
        for (outcome, counts, label) in cases {
            assert_eq!(counts_as_breaker_failure(&outcome), counts, "{outcome:?}");
            assert_eq!(outcome.label(), label);
        }
    }
}
