//! The proxy's side of HTTP `CONNECT` (RFC 9110 §9.3.6): parsing the
//! request head a client sends before its tunnel, and the answers the proxy
//! writes back. Pure: bytes in, values out.

use base64::Engine as _;

/// Largest accepted CONNECT request head.
pub const MAX_HEAD_BYTES: usize = 16 << 10;
/// Most header lines read from a CONNECT request head.
const MAX_HEADERS: usize = 64;

/// A parsed `CONNECT host:port HTTP/1.1` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Target host, lowercase, without brackets for IPv6 literals.
    pub host: String,
    /// Target port.
    pub port: u16,
    /// The token of `Proxy-Authorization`, if one was sent.
    pub credential: Option<ProxyCredential>,
}

/// What `Proxy-Authorization` carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyCredential {
    /// A gateway token (from `Bearer`, or the password of `Basic`, or its
    /// user name when the password is empty).
    Token(String),
    /// A header that is neither `Basic` nor `Bearer`, or does not decode.
    Malformed,
}

/// Why a request head is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head exceeds [`MAX_HEAD_BYTES`].
    #[error("the request head is too large")]
    TooLarge,
    /// Not HTTP/1.x syntax.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// A method other than CONNECT.
    #[error("this proxy only tunnels with CONNECT (got {0})")]
    NotConnect(String),
    /// The CONNECT target is not `host:port`.
    #[error("the CONNECT target must be host:port (got {0:?})")]
    BadTarget(String),
}

/// Parses a request head from the start of `buf`: `Ok(None)` when more
/// bytes are needed, else the request and the head's length (bytes after it
/// belong to the tunnel).
pub fn parse_head(buf: &[u8]) -> Result<Option<(ConnectRequest, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD_BYTES {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let method = req.method.unwrap_or_default();
    if !method.eq_ignore_ascii_case("CONNECT") {
        return Err(HeadError::NotConnect(method.chars().take(16).collect()));
    }
    let target = req.path.unwrap_or_default();
    let (host, port) = split_authority(target)
        .ok_or_else(|| HeadError::BadTarget(target.chars().take(256).collect()))?;
    let credential = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|h| parse_credential(h.value));
    Ok(Some((
        ConnectRequest {
            host,
            port,
            credential,
        },
        len,
    )))
}

/// `host:port` or `[v6]:port` → (lowercase host, port).
fn split_authority(target: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = super::hosts::normalize(host);
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    valid.then_some((host, port))
}

/// Reads `Proxy-Authorization: Bearer <token>` or `Basic base64(user:password)`.
pub fn parse_credential(value: &[u8]) -> ProxyCredential {
    let Ok(value) = std::str::from_utf8(value) else {
        return ProxyCredential::Malformed;
    };
    let value = value.trim();
    let Some((scheme, rest)) = value.split_once(' ') else {
        return ProxyCredential::Malformed;
    };
    let rest = rest.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.to_owned())
    } else if scheme.eq_ignore_ascii_case("basic") {
        base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .map(|pair| match pair.split_once(':') {
                Some((user, "")) => user.to_owned(),
                Some((_, password)) => password.to_owned(),
                None => pair,
            })
    } else {
        None
    };
    match token {
        Some(t) if !t.is_empty() && !t.chars().any(char::is_whitespace) => {
            ProxyCredential::Token(t)
        }
        _ => ProxyCredential::Malformed,
    }
}

/// The answer that opens a tunnel.
pub const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// A complete answer that refuses the CONNECT and closes the connection.
/// `reason` must be safe to show (no credential).
pub fn refusal(status: u16, reason: &str) -> Vec<u8> {
    let phrase = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let body = format!("{reason}\n");
    let mut head = format!(
        "HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    match status {
        407 => head.push_str("proxy-authenticate: Basic realm=\"switchboard\"\r\nproxy-authenticate: Bearer realm=\"switchboard\"\r\n"),
        405 => head.push_str("allow: CONNECT\r\n"),
        503 => head.push_str("retry-after: 1\r\n"),
        _ => {}
    }
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<(ConnectRequest, usize)>, HeadError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn a_connect_head_with_trailing_tunnel_bytes() {
        let text = "CONNECT API.OpenAI.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: Bearer tok\r\n\r\n\x16\x03\x01";
        let (req, len) = parse(text).unwrap().unwrap();
        assert_eq!(req.host, "api.openai.com");
        assert_eq!(req.port, 443);
        assert_eq!(req.credential, Some(ProxyCredential::Token("tok".into())));
        assert_eq!(&text.as_bytes()[len..], b"\x16\x03\x01");
    }

    #[test]
    fn partial_heads_wait_and_oversized_ones_are_refused() {
        assert_eq!(parse("CONNECT a:443 HTTP/1.1\r\nHost: a").unwrap(), None);
        let huge = format!(
            "CONNECT a:443 HTTP/1.1\r\nx: {}",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(parse(&huge), Err(HeadError::TooLarge));
    }

    #[test]
    fn targets() {
        let (req, _) = parse("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((req.host.as_str(), req.port), ("::1", 8443));
        for bad in ["a", "a:0", "a:x", ":443", "/path:443", "::1:443"] {
            let text = format!("CONNECT {bad} HTTP/1.1\r\n\r\n");
            assert!(
                matches!(parse(&text), Err(HeadError::BadTarget(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse("GET http://a/ HTTP/1.1\r\n\r\n"),
            Err(HeadError::NotConnect(m)) if m == "GET"
        ));
    }

    #[test]
    fn proxy_credentials() {
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let token = |s: &str| ProxyCredential::Token(s.into());
        assert_eq!(parse_credential(b"Bearer abc"), token("abc"));
        assert_eq!(parse_credential(b"bearer  abc "), token("abc"));
        assert_eq!(parse_credential(basic("user:abc").as_bytes()), token("abc"));
        assert_eq!(parse_credential(basic("abc:").as_bytes()), token("abc"));
        assert_eq!(parse_credential(basic("abc").as_bytes()), token("abc"));
        for bad in ["Digest x", "Bearer", "Basic !!!", "Bearer a b"] {
            assert_eq!(
                parse_credential(bad.as_bytes()),
                ProxyCredential::Malformed,
                "{bad}"
            );
        }
        assert_eq!(
            parse_credential(basic(":").as_bytes()),
            ProxyCredential::Malformed
        );
    }

    #[test]
    fn refusals_close_and_ask_for_credentials() {
        let text = String::from_utf8(refusal(407, "proxy authentication required")).unwrap();
        assert!(text.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"));
        assert!(text.contains("proxy-authenticate: Basic realm=\"switchboard\"\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nproxy authentication required\n"));
    }
}
