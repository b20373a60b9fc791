//! Where an HTTP provider lives: scheme, authority and the `/v1` base path.

use http::uri::{Authority, Scheme};

use crate::runtime::ApiFormat;

/// Where a backend lives: scheme, authority and the `/v1` base path.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// Path up to and including the API version, e.g. `/v1` or `/proxy/v1`.
    pub api_base: String,
}

impl Endpoint {
    /// Parses a base URL. A path already ending in `/v1` is kept; otherwise
    /// `/v1` is appended (`https://api.openai.com` and
    /// `http://localhost:11434/v1` both work).
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid endpoint {url:?}: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("endpoint {url:?} has no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!("endpoint {url:?} must be http or https"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("endpoint {url:?} has no host"))?;
        let path = uri.path().trim_end_matches('/');
        let api_base = if path.ends_with("/v1") {
            path.to_string()
        } else {
            format!("{path}/v1")
        };
        Ok(Self {
            scheme,
            authority,
            api_base,
        })
    }

    /// The upstream URI for an API format, with an optional query string.
    pub fn uri(&self, format: ApiFormat, query: Option<&str>) -> Result<http::Uri, http::Error> {
        let suffix = format.path_suffix();
        let query = query.filter(|q| !q.is_empty());
        let mut path = String::with_capacity(
            self.api_base.len() + suffix.len() + query.map_or(0, |q| 1 + q.len()),
        );
        path.push_str(&self.api_base);
        path.push_str(suffix);
        if let Some(q) = query {
            path.push('?');
            path.push_str(q);
        }
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_v1_unless_present() {
        let e = Endpoint::parse("https://api.openai.com").unwrap();
        assert_eq!(
            e.uri(ApiFormat::ChatCompletions, None).unwrap().to_string(),
            "https://api.openai.com/v1/chat/completions"
        );
        let e = Endpoint::parse("http://127.0.0.1:11434/v1/").unwrap();
        assert_eq!(
            e.uri(ApiFormat::Messages, Some("beta=true"))
                .unwrap()
                .to_string(),
            "http://127.0.0.1:11434/v1/messages?beta=true"
        );
        let e = Endpoint::parse("https://gw.example.com/anthropic").unwrap();
        assert_eq!(
            e.uri(ApiFormat::CountTokens, None).unwrap().to_string(),
            "https://gw.example.com/anthropic/v1/messages/count_tokens"
        );
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }
}
