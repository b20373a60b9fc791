//! Small validity checks shared by the backend and route renderers.

/// Why `pattern` is not a valid model pattern (an exact name or a glob
/// whose only wildcard is `*`), or `None` when it is valid.
pub fn glob_error(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("empty model pattern".into());
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| matches!(c, '?' | '[' | ']' | '{' | '}' | '\\'))
    {
        return Some(format!(
            "invalid pattern {pattern:?}: {c:?} is not supported, only `*` wildcards are"
        ));
    }
    if pattern.chars().any(char::is_whitespace) {
        return Some(format!(
            "invalid pattern {pattern:?}: whitespace is not allowed"
        ));
    }
    None
}

/// Whether `name` is a valid HTTP header field name (an RFC 9110 token).
pub fn is_valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `name` looks like an environment variable name.
pub(crate) fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `b` may appear in a URL: an RFC 3986 character (twin of
/// `v1alpha1::rules::URL_CHARS_RE`).
pub(crate) fn is_url_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Parses a URL as the CRD's CEL rules see it: written out as
/// `scheme://host...` (the WHATWG parser would also read `https:host` or
/// `HTTPS://host`), in RFC 3986 characters only (the WHATWG parser drops
/// tabs and encodes `<` or non-ASCII, which the data plane's `http::Uri`
/// refuses), with valid percent escapes, and with a host.
fn parse_url(text: &str) -> Result<url::Url, String> {
    if !text.bytes().all(is_url_char) {
        return Err(format!(
            "URL {text:?} may only contain RFC 3986 characters (ASCII letters, digits and -._~:/?#[]@!$&'()*+,;=%)"
        ));
    }
    let bytes = text.as_bytes();
    let bad_escape = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if bad_escape {
        return Err(format!("URL {text:?} has an invalid percent escape"));
    }
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL {text:?} has no host"));
    }
    Ok(url)
}

/// Checks a provider base URL: `http://` or `https://`, with a host, no
/// query or fragment. Returns it without a trailing slash. The CRD's twin:
/// `v1alpha1::rules::http_url`.
pub(crate) fn endpoint_url(text: &str) -> Result<String, String> {
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return Err(format!("URL {text:?} must start with http:// or https://"));
    }
    parse_url(text)?;
    if text.contains(['?', '#']) {
        return Err(format!("URL {text:?} must not have a query or fragment"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// Checks a JWKS URL: `https://`, or `http://` for `localhost` /
/// `127.0.0.1` only. The CRD's twin: `v1alpha1::rules::jwks_url`.
pub(crate) fn jwks_url(text: &str) -> Result<(), String> {
    let loopback = ["http://localhost", "http://127.0.0.1"].iter().any(|p| {
        text.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
    });
    if !text.starts_with("https://") && !loopback {
        return Err(format!(
            "jwksUri {text:?} must be an https:// URL (http:// only for localhost or 127.0.0.1)"
        ));
    }
    let url = parse_url(text)?;
    let host = url.host_str().unwrap_or_default();
    if url.scheme() == "http" && host != "localhost" && host != "127.0.0.1" {
        return Err(format!(
            "jwksUri {text:?} must be an https:// URL (http:// only for localhost or 127.0.0.1)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert_eq!(glob_error("claude-*"), None);
        assert_eq!(glob_error("*"), None);
        assert_eq!(glob_error("gpt-4o"), None);
        assert!(glob_error("").is_some());
        assert!(glob_error("gpt-?").unwrap().contains("only `*`"));
        assert!(glob_error("gpt-[45]").is_some());
        assert!(glob_error("a b").is_some());
    }

    #[test]
    fn urls() {
        assert_eq!(
            endpoint_url("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            endpoint_url("http://10.0.0.1:8000/v1").unwrap(),
            "http://10.0.0.1:8000/v1"
        );
        assert!(endpoint_url("ftp://x").is_err());
        assert!(endpoint_url("not a url").is_err());
        assert!(endpoint_url("https://x/?a=b").is_err());
        assert!(endpoint_url("https://x/?").is_err());
        assert!(endpoint_url("https://x/#").is_err());
        assert!(endpoint_url("https:x.example.com").is_err());
        assert!(endpoint_url("HTTPS://x.example.com").is_err());
        assert!(endpoint_url(" https://x.example.com").is_err());
        assert!(endpoint_url("https://x.exa\tmple.com").is_err());
        assert!(endpoint_url("https://x.example.com/%zz").is_err());
        assert!(endpoint_url("https://x.example.com:65536").is_err());
        assert!(endpoint_url("https://x.example.com:65535/%2F").is_ok());
        assert!(endpoint_url("https://").is_err());
        assert!(jwks_url("https://idp.example.com/jwks").is_ok());
        assert!(jwks_url("http://localhost:8080/jwks").is_ok());
        assert!(jwks_url("http://127.0.0.1/jwks").is_ok());
        assert!(jwks_url("http://idp.example.com/jwks").is_err());
        assert!(jwks_url("file:///etc/jwks").is_err());
        assert!(jwks_url("http://LOCALHOST/jwks").is_err());
        assert!(jwks_url("http://localhost.example.com/jwks").is_err());
        assert!(jwks_url("http://localhost:1@example.com/jwks").is_err());
        assert!(jwks_url("http://localhost").is_ok());
        assert!(jwks_url("https://idp.example.com/jwks?v=1").is_ok());
    }

    #[test]
    fn names() {
        assert!(is_valid_header_name("x-user-id"));
        assert!(!is_valid_header_name("x user"));
        assert!(!is_valid_header_name(""));
        assert!(is_valid_env_name("OPENAI_API_KEY"));
        assert!(!is_valid_env_name("1ABC"));
        assert!(!is_valid_env_name("A-B"));
    }
}
