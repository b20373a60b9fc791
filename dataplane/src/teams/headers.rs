//! Rate-limit response headers, from a request's view of its team's limits:
//! OpenAI's `x-ratelimit-*` on every answer, and for Anthropic-dialect
//! clients (`/v1/messages`, `count_tokens`, the Bedrock front door) also
//! Anthropic's `anthropic-ratelimit-*`, whose resets are RFC 3339 instants.
//!
//! The token quota counts input and output tokens together, so Anthropic's
//! `-input-tokens-` and `-output-tokens-` variants are not sent; budgets have
//! no header in either dialect (the refusal's message names them).

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::limits::reset::rfc3339;
use crate::limits::{Admission, Quota};
use crate::wire::Dialect;

/// `Retry-After` above which an agent should stop rather than retry:
/// Claude Code gives up at once above 60 s, and the Stainless SDKs
/// (OpenAI's and Anthropic's) wait at most 60 s whatever the header says.
pub const STOP_RETRYING_AFTER_SECS: u64 = 60;

fn put(h: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

/// One limit's three headers: limit, remaining, and the reset, in
/// seconds (`17s`, OpenAI) or as an instant (Anthropic).
fn quota(h: &mut HeaderMap, q: &Quota, names: [&'static str; 3], instant: bool) {
    put(h, names[0], q.limit.to_string());
    put(h, names[1], q.remaining().to_string());
    let reset = if instant {
        rfc3339(q.reset_at_ms)
    } else {
        format!("{}s", q.reset_secs)
    };
    put(h, names[2], reset);
}

/// Adds the headers for every limit the admission saw (unlimited ones are
/// left out) in `dialect`.
pub fn add_ratelimit_headers(h: &mut HeaderMap, dialect: Dialect, a: &Admission) {
    if let Some(q) = &a.requests {
        quota(
            h,
            q,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
            false,
        );
        if dialect == Dialect::Anthropic {
            quota(
                h,
                q,
                [
                    "anthropic-ratelimit-requests-limit",
                    "anthropic-ratelimit-requests-remaining",
                    "anthropic-ratelimit-requests-reset",
                ],
                true,
            );
        }
    }
    if let Some(q) = &a.tokens {
        quota(
            h,
            q,
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
            false,
        );
        if dialect == Dialect::Anthropic {
            quota(
                h,
                q,
                [
                    "anthropic-ratelimit-tokens-limit",
                    "anthropic-ratelimit-tokens-remaining",
                    "anthropic-ratelimit-tokens-reset",
                ],
                true,
            );
        }
    }
}

/// `Retry-After: secs`, and `x-should-retry: false` when that is longer than
/// an agent should wait ([`STOP_RETRYING_AFTER_SECS`]): a quota or budget
/// that resets at the end of the day or month stops the agent at once.
pub fn add_retry_after(h: &mut HeaderMap, secs: u64) {
    h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    if secs > STOP_RETRYING_AFTER_SECS {
        h.insert("x-should-retry", HeaderValue::from_static("false"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        Admission {
            requests: Some(Quota {
                limit: 20,
                used: 21,
                reset_secs: 7,
                reset_at_ms: 1_796_687_940_000, // 2026-12-07T23:59:00Z
            }),
            tokens: None,
            ..Admission::default()
        }
    }

    #[test]
    fn openai_clients_get_openai_headers_for_limited_quotas_only() {
        let mut h = HeaderMap::new();
        add_ratelimit_headers(&mut h, Dialect::OpenAI, &admission());
        assert_eq!(h["x-ratelimit-limit-requests"], "20");
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(h["x-ratelimit-reset-requests"], "7s");
        assert!(!h.contains_key("x-ratelimit-limit-tokens"));
        assert!(!h.keys().any(|k| k.as_str().starts_with("anthropic-")));
    }

    #[test]
    fn anthropic_clients_also_get_anthropic_headers_with_rfc3339_resets() {
        let mut h = HeaderMap::new();
        add_ratelimit_headers(&mut h, Dialect::Anthropic, &admission());
        assert_eq!(h["x-ratelimit-limit-requests"], "20");
        assert_eq!(h["anthropic-ratelimit-requests-limit"], "20");
        assert_eq!(h["anthropic-ratelimit-requests-remaining"], "0");
        assert_eq!(
            h["anthropic-ratelimit-requests-reset"],
            "2026-12-07T23:59:00Z"
        );
        assert!(!h.contains_key("anthropic-ratelimit-tokens-limit"));
    }

    #[test]
    fn long_waits_tell_agents_not_to_retry() {
        let mut h = HeaderMap::new();
        add_retry_after(&mut h, 60);
        assert_eq!(h["retry-after"], "60");
        assert!(!h.contains_key("x-should-retry"));
        add_retry_after(&mut h, 61);
        assert_eq!(h["retry-after"], "61");
        assert_eq!(h["x-should-retry"], "false");
    }
}
