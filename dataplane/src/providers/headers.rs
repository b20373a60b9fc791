//! Which client headers reach the provider, and which provider headers reach
//! the client.
//!
//! Upstream requests carry an allowlist of client headers (content
//! negotiation, SDK telemetry, Anthropic version and betas) plus what the
//! gateway adds (provider credential, forwarded claims). Everything else a
//! client sends — its own credential first of all, cookies, session ids,
//! agent metadata — stays at the gateway.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::runtime::{BackendRuntime, ProviderKind};

/// Client headers copied to the provider as they are.
const FORWARDED: &[&str] = &["accept", "user-agent", "openai-beta", "idempotency-key"];

/// Prefixes of client headers copied to the provider.
const FORWARDED_PREFIXES: &[&str] = &["x-stainless-"];

/// Provider response headers copied to the client.
const RETURNED: &[&str] = &[
    "content-type",
    "retry-after",
    "retry-after-ms",
    "request-id",
    "x-request-id",
    "openai-processing-ms",
    "x-should-retry",
];

/// Builds the upstream request headers for `backend` from the client's.
pub fn upstream_headers(
    client: &HeaderMap,
    backend: &BackendRuntime,
    forward: &[(HeaderName, HeaderValue)],
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(16);
    for (name, value) in client {
        let n = name.as_str();
        // OpenAI-only headers stay away from Anthropic (and Anthropic ones
        // are only added below, for Anthropic).
        if n == "openai-beta" && backend.provider == ProviderKind::Anthropic {
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
    match backend.provider {
        ProviderKind::Anthropic => {
            let version = client
                .get("anthropic-version")
                .cloned()
                .unwrap_or_else(|| backend.anthropic_version.clone());
            out.insert(HeaderName::from_static("anthropic-version"), version);
            if let Some(betas) = anthropic_betas(client, backend) {
                out.insert(HeaderName::from_static("anthropic-beta"), betas);
            }
            if let Some(key) = &backend.credential {
                out.insert(HeaderName::from_static("x-api-key"), key.clone());
            }
        }
        ProviderKind::OpenAI | ProviderKind::OpenAICompatible => {
            if let Some(key) = &backend.credential {
                out.insert(header::AUTHORIZATION, key.clone());
            }
            if let Some(org) = &backend.openai_organization {
                out.insert(HeaderName::from_static("openai-organization"), org.clone());
            }
        }
        ProviderKind::Mock => {}
    }
    out
}

/// The `anthropic-beta` value to send: every flag the client sent (the
/// header may repeat and is comma-separated), filtered by the backend's
/// allowlist when it has one.
fn anthropic_betas(client: &HeaderMap, backend: &BackendRuntime) -> Option<HeaderValue> {
    let mut flags: Vec<&str> = Vec::new();
    for value in client.get_all("anthropic-beta") {
        let Ok(text) = value.to_str() else { continue };
        for flag in text.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let allowed = backend
                .allowed_betas
                .as_ref()
                .is_none_or(|a| a.contains(flag));
            if allowed && !flags.contains(&flag) {
                flags.push(flag);
            }
        }
    }
    if flags.is_empty() {
        return None;
    }
    HeaderValue::from_str(&flags.join(",")).ok()
}

/// Whether the `anthropic-beta` flag `flag` reaches `backend`: the client
/// sent it and the backend's allowlist lets it through.
pub fn forwards_beta(client: &HeaderMap, backend: &BackendRuntime, flag: &str) -> bool {
    backend.provider == ProviderKind::Anthropic
        && anthropic_betas(client, backend)
            .and_then(|v| v.to_str().ok().map(|s| s.split(',').any(|f| f == flag)))
            .unwrap_or(false)
}

/// Copies the provider response headers the client may see.
pub fn client_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(8);
    for name in RETURNED {
        for value in upstream.get_all(*name) {
            out.append(HeaderName::from_static(name), value.clone());
        }
    }
    out
}
