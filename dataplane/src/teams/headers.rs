//! The `x-ratelimit-*` response headers (OpenAI's names), from a request's
//! view of its team's limits.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::limits::{Admission, Quota};

fn put(h: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn quota(h: &mut HeaderMap, q: &Quota, names: [&'static str; 3]) {
    put(h, names[0], q.limit.to_string());
    put(h, names[1], q.remaining().to_string());
    put(h, names[2], format!("{}s", q.reset_secs));
}

/// Adds the headers for every limit the admission saw (unlimited ones are left out).
pub fn add_ratelimit_headers(h: &mut HeaderMap, a: &Admission) {
    if let Some(q) = &a.requests {
        quota(
            h,
            q,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
        );
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
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_for_limited_quotas_only() {
        let mut h = HeaderMap::new();
        let a = Admission {
            requests: Some(Quota {
                limit: 20,
                used: 21,
                reset_secs: 7,
            }),
            tokens: None,
            ..Admission::default()
        };
        add_ratelimit_headers(&mut h, &a);
        assert_eq!(h["x-ratelimit-limit-requests"], "20");
        assert_eq!(h["x-ratelimit-remaining-requests"], "0");
        assert_eq!(h["x-ratelimit-reset-requests"], "7s");
        assert!(!h.contains_key("x-ratelimit-limit-tokens"));
    }
}
