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
    /// The URI of each API format without a query, built once: the
    /// request path clones one (reference counts) instead of building and
    /// re-checking a URI per request.
    uris: [http::Uri; ApiFormat::ALL.len()],
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
        let uri_of = |format: ApiFormat| {
            build_uri(&scheme, &authority, &api_base, format, None)
                .map_err(|e| format!("endpoint {url:?} gives no valid URI: {e}"))
        };
        let mut uris = Vec::with_capacity(ApiFormat::ALL.len());
        for format in ApiFormat::ALL {
            uris.push(uri_of(format)?);
        }
        let uris = uris.try_into().expect("one URI per format");
        Ok(Self {
            scheme,
            authority,
            api_base,
            uris,
        })
    }

    /// The upstream URI for an API format, with an optional query string.
    pub fn uri(&self, format: ApiFormat, query: Option<&str>) -> Result<http::Uri, http::Error> {
        match query.filter(|q| !q.is_empty()) {
            None => Ok(self.uris[format.index()].clone()),
            query => build_uri(&self.scheme, &self.authority, &self.api_base, format, query),
        }
    }
}

/// `scheme://authority{api_base}{format's path}[?query]`.
fn build_uri(
    scheme: &Scheme,
    authority: &Authority,
    api_base: &str,
    format: ApiFormat,
    query: Option<&str>,
) -> Result<http::Uri, http::Error> {
    let suffix = format.path_suffix();
    let mut path =
        String::with_capacity(api_base.len() + suffix.len() + query.map_or(0, |q| 1 + q.len()));
    path.push_str(api_base);
    path.push_str(suffix);
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    http::Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build()
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

    #[test]
    fn the_uris_built_once_are_those_built_per_request() {
        for base in [
            "https://api.openai.com",
            "http://127.0.0.1:11434/v1/",
            "https://gw.example.com/anthropic",
        ] {
            let e = Endpoint::parse(base).unwrap();
            for format in ApiFormat::ALL {
                assert_eq!(ApiFormat::ALL[format.index()], format);
                let built = build_uri(&e.scheme, &e.authority, &e.api_base, format, None).unwrap();
                assert_eq!(e.uri(format, None).unwrap(), built);
                assert_eq!(e.uri(format, Some("")).unwrap(), built);
                assert_eq!(
                    e.uri(format, Some("beta=true")).unwrap().to_string(),
                    format!("{built}?beta=true")
                );
            }
        }
    }
}
