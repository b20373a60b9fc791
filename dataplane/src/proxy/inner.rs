//! A decrypted request of an intercepted connection, made into a traffic-port
//! request before it enters the pipeline:
//!
//! - its `Host` is the CONNECT host (whatever the client wrote inside the
//!   tunnel), so routes bound to `hostnames` see the provider's name;
//! - GitHub Copilot's unversioned paths (`/chat/completions`, `/responses`,
//!   `/models`) get the `/v1` the gateway's endpoints have;
//! - **who the caller is** (precedence): a gateway credential inside the
//!   request (`Authorization: Bearer`, `x-api-key`, the route's token header)
//!   that the matched route (one that checks credentials) accepts wins, and
//!   the request goes on as it is; otherwise the request's credential
//!   headers hold the tool's own provider credential (e.g. a Copilot or
//!   Anthropic key): they are removed, and when the CONNECT carried a
//!   `Proxy-Authorization` token, that token takes their place (without
//!   one, the route answers 401 if it needs a credential);
//! - **the tool's own credential** is the caller's bring-your-own key
//!   (`docs/byok.md`) when the matched route allows one (`byok: Optional`
//!   or `Required`) and the request has no `x-switchboard-provider-key`
//!   of its own: it moves into that header (`x-api-key` first, else the
//!   `Authorization: Bearer` token). On a route with `byok: Off` it is
//!   dropped and never reaches the pipeline or the upstream.

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::byok::PROVIDER_KEY_HEADER;
use crate::runtime::RuntimeConfig;

/// Paths tools send without `/v1` (GitHub Copilot's API layout) that the
/// gateway serves below `/v1`.
const UNVERSIONED: [&str; 3] = ["/chat/completions", "/responses", "/models"];

/// The path (and query) with `/v1` added to Copilot's unversioned paths;
/// `None` when unchanged.
pub fn versioned(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let bare = path.trim_end_matches('/');
    if !UNVERSIONED.contains(&bare) {
        return None;
    }
    let with = match uri.query() {
        Some(q) => format!("/v1{path}?{q}"),
        None => format!("/v1{path}"),
    };
    with.parse().ok()
}

/// Sets the CONNECT host as the request's `Host` and adds `/v1` where
/// Copilot leaves it out.
pub fn retarget(parts: &mut http::request::Parts, host: &str) {
    if let Ok(v) = HeaderValue::from_str(host) {
        parts.headers.insert(HOST, v);
    }
    if let Some(uri) = versioned(&parts.uri) {
        parts.uri = uri;
    }
}

/// Which credential identifies the caller, and whether the tool's own
/// credential is the caller's provider key (see the module docs): leaves a
/// request whose own credential the matched route accepts untouched, else
/// moves the tool's credential aside and puts `token` (the CONNECT's
/// `Proxy-Authorization`) in its place.
pub async fn identify(cfg: &RuntimeConfig, parts: &mut http::request::Parts, token: Option<&str>) {
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let route = cfg
        .match_route(host.as_deref(), parts.uri.path())
        .map(|(r, _)| r);
    if let Some(route) = route
        && !route.auth.is_open()
        && has_credential(&parts.headers)
        && route.auth.authenticate(&parts.headers).await.is_ok()
    {
        return;
    }
    let own = take_credential(&mut parts.headers);
    let byok = route.is_some_and(|r| r.byok.allows_keys());
    if byok
        && let Some(own) = own
        && !parts.headers.contains_key(PROVIDER_KEY_HEADER)
    {
        parts
            .headers
            .insert(HeaderName::from_static(PROVIDER_KEY_HEADER), own);
    }
    if let Some(token) = token {
        replace_credential(&mut parts.headers, token);
    }
}

/// True when the request carries any credential header the gateway reads.
fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION) || headers.contains_key("x-api-key")
}

/// Removes the request's credential headers; returns the credential they
/// held (`x-api-key` first, else the `Authorization: Bearer` token), as a
/// sensitive header value.
fn take_credential(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let api_key = headers.remove("x-api-key");
    let authorization = headers.remove(AUTHORIZATION);
    let mut own = api_key.or_else(|| {
        let text = authorization?.to_str().ok()?.trim().to_owned();
        let (scheme, token) = text.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        HeaderValue::from_str(token.trim()).ok()
    })?;
    own.set_sensitive(true);
    Some(own)
}

/// Removes the request's credential headers and sets `Authorization:
/// Bearer token`.
pub fn replace_credential(headers: &mut HeaderMap, token: &str) {
    headers.remove("x-api-key");
    match HeaderValue::from_str(&format!("Bearer {token}")) {
        Ok(mut v) => {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        Err(_) => {
            headers.remove(AUTHORIZATION);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copilot_paths_get_v1() {
        let uri: Uri = "/chat/completions?x=1".parse().unwrap();
        assert_eq!(versioned(&uri).unwrap(), "/v1/chat/completions?x=1");
        let uri: Uri = "/models".parse().unwrap();
        assert_eq!(versioned(&uri).unwrap(), "/v1/models");
        for same in ["/v1/chat/completions", "/v1/messages", "/agents", "/"] {
            assert!(versioned(&same.parse().unwrap()).is_none(), "{same}");
        }
    }

    #[test]
    fn replacing_removes_every_credential_header() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "sk-ant-own".parse().unwrap());
        headers.insert(AUTHORIZATION, "Bearer ghu_own".parse().unwrap());
        replace_credential(&mut headers, "gateway-token");
        assert_eq!(headers[AUTHORIZATION], "Bearer gateway-token");
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(headers.get("x-api-key").is_none());
    }
}
