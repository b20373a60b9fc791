//! Which client headers reach the provider, and which provider headers reach
//! the client.
//!
//! Upstream requests of the HTTP providers carry an allowlist of client
//! headers (content negotiation, SDK telemetry) plus what the gateway adds
//! (forwarded claims here; the provider credential, Anthropic version and
//! betas in the provider's module). Everything else a client sends — its
//! own credential first of all, cookies, session ids, agent metadata —
//! stays at the gateway.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use std::collections::HashSet;

/// Client headers copied to the provider as they are.
const FORWARDED: &[&str] = &["accept", "user-agent", "openai-beta", "idempotency-key"];

/// Prefixes of client headers copied to the provider.
const FORWARDED_PREFIXES: &[&str] = &["x-stainless-"];

/// Provider response headers copied to the client.
static RETURNED: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::RETRY_AFTER,
    HeaderName::from_static("retry-after-ms"),
    HeaderName::from_static("request-id"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("openai-processing-ms"),
    HeaderName::from_static("x-should-retry"),
];

/// The upstream request headers every HTTP provider starts from: the
/// client's allowlisted headers (`openai-beta` only when `openai_beta`),
/// JSON content type, no compression (usage is read from the answers) and
/// the forwarded-claim headers. The provider adds its own credential and
/// version headers.
pub fn base(
    client: &HeaderMap,
    openai_beta: bool,
    forward: &[(HeaderName, HeaderValue)],
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(16);
    for (name, value) in client {
        let n = name.as_str();
        if n == "openai-beta" && !openai_beta {
            continue;
        }
        if FORWARDED.contains(&n) || FORWARDED_PREFIXES.iter().any(|p| n.starts_with(p)) {
            out.append(name.clone(), value.clone());
        }
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Usage is read from responses; compressed bodies would hide it.
    out.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    for (name, value) in forward {
        out.insert(name.clone(), value.clone());
    }
    out
}

/// Every `anthropic-beta` flag the client sent (the header may repeat and
/// is comma-separated), in order and once each, filtered by `allowed` when
/// there is an allowlist.
pub fn anthropic_betas(client: &HeaderMap, allowed: Option<&HashSet<String>>) -> Vec<String> {
    let mut flags: Vec<String> = Vec::new();
    for value in client.get_all(HeaderName::from_static("anthropic-beta")) {
        let Ok(text) = value.to_str() else { continue };
        for flag in text.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let allowed = allowed.is_none_or(|a| a.contains(flag));
            if allowed && !flags.iter().any(|f| f == flag) {
                flags.push(flag.to_string());
            }
        }
    }
    flags
}

/// Copies the provider response headers the client may see, in the
/// provider's order (one pass over its headers, no lookups by name).
pub fn client_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(8);
    for (name, value) in upstream {
        if RETURNED.contains(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_headers_keep_the_returned_ones_with_every_value_in_the_providers_order() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("set-cookie", "session=1"),
            ("x-request-id", "first"),
            ("content-type", "application/json"),
            ("server", "provider/1.0"),
            ("content-length", "42"),
            ("x-request-id", "second"),
            ("retry-after", "3"),
            ("openai-organization", "org-123"),
        ] {
            upstream.append(name, HeaderValue::from_static(value));
        }
        let kept: Vec<(String, String)> = client_headers(&upstream)
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let expected = [
            ("x-request-id", "first"),
            ("x-request-id", "second"),
            ("content-type", "application/json"),
            ("retry-after", "3"),
        ];
        assert_eq!(
            kept,
            expected.map(|(n, v)| (n.to_owned(), v.to_owned())),
            "values of one name stay together, names in the provider's order"
        );
    }
}
