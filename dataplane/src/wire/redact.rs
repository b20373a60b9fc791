//! What must never reach a client from an upstream error body: the
//! gateway's provider credential and internal URLs (issue 16, defect 4).
//!
//! Upstream errors are otherwise returned as they are (clients such as
//! Claude Code match on their wording), so redaction is surgical: only the
//! offending text is replaced, the rest of the body keeps its bytes.
//!
//! - Every occurrence of a secret (the provider key, and the caller's own
//!   key on bring-your-own-key requests) becomes `[redacted]`.
//! - A URL (`http://` or `https://`, also JSON-escaped as `http:\/\/`)
//!   whose host is internal becomes `[redacted-url]`, up to the first
//!   character that cannot be part of it (whitespace, quotes, `<>()[]{}`,
//!   a comma, a backslash that does not escape a `/`). Internal: the
//!   backend's own host, `localhost` and names of one label, names under
//!   `.local`, `.internal`, `.svc`, `.cluster.local`, `.lan`,
//!   `.home.arpa`, and loopback, private, link-local, CGNAT or unique-local
//!   IP addresses. Public URLs (documentation links) stay.
//! - The backend's own `host:port` also goes when it appears without a
//!   scheme.
//!
//! A body with nothing to redact is returned as the same [`Bytes`].

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;

/// What stands in for a secret.
pub const SECRET: &str = "[redacted]";
/// What stands in for an internal URL.
pub const URL: &str = "[redacted-url]";

/// Secrets shorter than this are not searched for (they would match
/// ordinary text; real provider keys are far longer).
const MIN_SECRET_LEN: usize = 8;

/// Name suffixes of hosts that only resolve inside a network.
const INTERNAL_SUFFIXES: &[&str] = &[
    ".local",
    ".internal",
    ".svc",
    ".cluster.local",
    ".lan",
    ".home.arpa",
    ".localdomain",
];

/// What to take out of one backend's error bodies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redaction<'a> {
    /// Secret values (the provider key as sent, without `Bearer `).
    pub secrets: &'a [&'a str],
    /// The backend's host (without port), e.g. `vllm.ml.svc`.
    pub host: Option<&'a str>,
    /// The backend's authority, e.g. `vllm.ml.svc:8000`.
    pub authority: Option<&'a str>,
}

/// A backend's [`Redaction`] in owned form, built with its runtime (the
/// provider key from the snapshot, the host of its endpoint).
#[derive(Clone, Default)]
pub struct BackendRedaction {
    secrets: Vec<String>,
    host: Option<String>,
    authority: Option<String>,
}

impl std::fmt::Debug for BackendRedaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendRedaction")
            .field("secrets", &self.secrets.len())
            .field("host", &self.host)
            .finish()
    }
}

impl BackendRedaction {
    /// What to take out of the error bodies of a backend whose key is
    /// `secret` (as configured, without `Bearer `) and whose base URL is
    /// `endpoint` (empty: the provider's public default).
    pub fn new(secret: Option<&str>, endpoint: &str) -> Self {
        let uri = endpoint.parse::<http::Uri>().ok();
        let authority = uri.as_ref().and_then(|u| u.authority());
        Self {
            secrets: secret.map(str::to_owned).into_iter().collect(),
            host: authority.map(|a| a.host().to_owned()),
            authority: authority.map(|a| a.as_str().to_owned()),
        }
    }

    /// `body` without the backend's secret and internal URLs.
    pub fn apply(&self, body: Bytes) -> Bytes {
        self.apply_with(body, None)
    }

    /// [`Self::apply`], also taking out `extra` (the caller's own provider
    /// key when the request carried one).
    pub fn apply_with(&self, body: Bytes, extra: Option<&str>) -> Bytes {
        let secrets: Vec<&str> = self
            .secrets
            .iter()
            .map(String::as_str)
            .chain(extra)
            .collect();
        error_body(
            body,
            &Redaction {
                secrets: &secrets,
                host: self.host.as_deref(),
                authority: self.authority.as_deref(),
            },
        )
    }
}

/// `body` without secrets and internal URLs (see the module docs).
pub fn error_body(body: Bytes, r: &Redaction<'_>) -> Bytes {
    let text = String::from_utf8_lossy(&body);
    let mut out = text.clone().into_owned();
    for secret in r.secrets.iter().filter(|s| s.len() >= MIN_SECRET_LEN) {
        if out.contains(secret) {
            out = out.replace(secret, SECRET);
        }
    }
    out = redact_urls(&out, r.host);
    if let Some(authority) = r.authority.filter(|a| a.contains(':') || a.contains('.'))
        && out.contains(authority)
    {
        out = out.replace(authority, URL);
    }
    if out == text { body } else { Bytes::from(out) }
}

/// `text` with every internal URL replaced.
fn redact_urls(text: &str, own_host: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_scheme(rest) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let (len, host) = url_extent(from);
        if is_internal(&host, own_host) {
            out.push_str(URL);
        } else {
            out.push_str(&from[..len]);
        }
        rest = &from[len..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of the next `http://`/`https://` (plain or JSON-escaped).
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("http") {
        let at = from + i;
        let tail = &lower[at..];
        if ["http://", "https://", "http:\\/\\/", "https:\\/\\/"]
            .iter()
            .any(|p| tail.starts_with(p))
        {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// The length of the URL starting `text`, and its host (lowercase).
fn url_extent(text: &str) -> (usize, String) {
    let bytes = text.as_bytes();
    // Past `scheme:` and the slashes (escaped or not).
    let mut i = text.find(':').map_or(0, |c| c + 1);
    while i < bytes.len()
        && (bytes[i] == b'/' || (bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'/')))
    {
        i += 1;
    }
    let host_start = i;
    let mut host_end = None;
    // An IPv6 literal's brackets belong to the host.
    let in_v6 = |i: usize, end: Option<usize>| {
        end.is_none() && bytes.get(host_start) == Some(&b'[') && !text[host_start..i].contains(']')
    };
    while i < bytes.len() {
        let c = bytes[i];
        let bracket = (c == b'[' && i == host_start) || (c == b']' && in_v6(i, host_end));
        let delimiter = matches!(
            c,
            b'"' | b'\'' | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b'`'
        );
        if c.is_ascii_whitespace() || c.is_ascii_control() || (delimiter && !bracket) {
            break;
        }
        if c == b'\\' {
            if bytes.get(i + 1) == Some(&b'/') {
                host_end.get_or_insert(i);
                i += 2;
                continue;
            }
            break;
        }
        if host_end.is_none() && matches!(c, b'/' | b'?' | b'#') {
            host_end = Some(i);
        }
        i += 1;
    }
    let authority = &text[host_start..host_end.unwrap_or(i).min(i)];
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    (i, host.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether a URL with this host must not reach a client.
fn is_internal(host: &str, own_host: Option<&str>) -> bool {
    if host.is_empty() {
        return false;
    }
    if own_host.is_some_and(|own| own.eq_ignore_ascii_case(host.trim_matches(['[', ']']))) {
        return true;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return internal_ip(ip);
    }
    host == "localhost"
        || !host.contains('.')
        || INTERNAL_SUFFIXES.iter().any(|s| host.ends_with(s))
}

fn internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || (a == 100 && (64..128).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, r: &Redaction<'_>) -> String {
        String::from_utf8(error_body(Bytes::from(body.to_owned()), r).to_vec()).unwrap()
    }

    #[test]
    fn a_body_without_anything_to_redact_is_the_same_bytes() {
        let body = Bytes::from_static(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded, see https://docs.anthropic.com/en/api/errors"}}"#,
        );
        let r = Redaction {
            secrets: &["sk-ant-secret-value"],
            host: Some("api.anthropic.com"),
            authority: Some("api.anthropic.com"),
        };
        let out = error_body(body.clone(), &r);
        assert_eq!(out.as_ptr(), body.as_ptr(), "not copied");
    }

    #[test]
    fn secrets_and_internal_urls_go_public_urls_stay() {
        let r = Redaction {
            secrets: &["sk-upstream-secret-1"],
            host: Some("10.0.3.7"),
            authority: Some("10.0.3.7:8000"),
        };
        let body = r#"{"error":{"message":"POST http://10.0.3.7:8000/v1/chat/completions with key sk-upstream-secret-1 failed; see http://vllm:8000/metrics, (http://api.svc.cluster.local/x) and https://docs.vllm.ai/en/latest/ from 10.0.3.7:8000"}}"#;
        assert_eq!(
            run(body, &r),
            r#"{"error":{"message":"POST [redacted-url] with key [redacted] failed; see [redacted-url], ([redacted-url]) and https://docs.vllm.ai/en/latest/ from [redacted-url]"}}"#
        );
    }

    #[test]
    fn escaped_urls_user_info_and_ip_literals() {
        let r = Redaction::default();
        assert_eq!(
            run(r#"{"m":"at http:\/\/user:pw@192.168.1.2:80\/v1 ok"}"#, &r),
            r#"{"m":"at [redacted-url] ok"}"#
        );
        assert_eq!(run("x https://[::1]:8080/a y", &r), "x [redacted-url] y");
        assert_eq!(run("x https://[fd00::1]/a y", &r), "x [redacted-url] y");
        assert_eq!(run("x HTTPS://LOCALHOST/a y", &r), "x [redacted-url] y");
        assert_eq!(
            run("x https://100.64.0.1/a, https://8.8.8.8/b y", &r),
            "x [redacted-url], https://8.8.8.8/b y"
        );
        assert_eq!(
            run("see https://platform.openai.com/account/api-keys.", &r),
            "see https://platform.openai.com/account/api-keys."
        );
        assert_eq!(
            run("no scheme httpx here http", &r),
            "no scheme httpx here http"
        );
    }

    #[test]
    fn the_backends_own_host_is_internal_even_when_public() {
        let r = Redaction {
            secrets: &[],
            host: Some("myco.openai.azure.com"),
            authority: Some("myco.openai.azure.com"),
        };
        assert_eq!(
            run(
                "resource https://myco.openai.azure.com/openai/deployments/x not found on myco.openai.azure.com",
                &r
            ),
            "resource [redacted-url] not found on [redacted-url]"
        );
    }

    #[test]
    fn short_secrets_are_not_searched_for() {
        let r = Redaction {
            secrets: &["abc"],
            ..Redaction::default()
        };
        assert_eq!(run("abc abc", &r), "abc abc");
        assert!(internal_ip(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)));
    }
}
