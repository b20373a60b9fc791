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

/// Checks a provider base URL: http or https, with a host, no query or
/// fragment. Returns it without a trailing slash.
pub(crate) fn endpoint_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("URL {text:?} must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL {text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("URL {text:?} must not have a query or fragment"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// Checks a JWKS URL: https, or http for `localhost` / `127.0.0.1` only.
pub(crate) fn jwks_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if host == "localhost" || host == "127.0.0.1" => Ok(()),
        "http" => Err(format!(
            "jwksUri {text:?} must use https (http only for localhost or 127.0.0.1)"
        )),
        _ => Err(format!("jwksUri {text:?} must be an https URL")),
    }
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
        assert!(jwks_url("https://idp.example.com/jwks").is_ok());
        assert!(jwks_url("http://localhost:8080/jwks").is_ok());
        assert!(jwks_url("http://127.0.0.1/jwks").is_ok());
        assert!(jwks_url("http://idp.example.com/jwks").is_err());
        assert!(jwks_url("file:///etc/jwks").is_err());
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
