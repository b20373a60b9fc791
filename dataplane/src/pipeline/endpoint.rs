//! Which route and which API a request is for: host and path against the
//! configuration's routes, then the method and path below the route prefix.
//! Query strings (Claude Code's `?beta=true`) are ignored here.
//!
//! Below the route prefix, an optional **provider prefix** names one
//! surface, for tools configured for gateways that lay their APIs out per
//! provider (`docs/operations.md`, "Provider-prefixed base URLs"):
//!
//! | path below the route prefix | serves |
//! |---|---|
//! | `/v1/...` | every endpoint |
//! | `/openai/v1/...` | the OpenAI surface: chat completions, responses, models (OpenAI or Codex shape) |
//! | `/anthropic/v1/...` | the Anthropic surface: messages, count_tokens, models (Anthropic shape) |
//!
//! The route prefix is stripped first (`{pathPrefix}/openai/v1/...`), so a
//! route whose own prefix is `/openai` owns `/openai/v1/...` as plain
//! `/v1/...` paths.

use http::{HeaderMap, Method, Uri};

use crate::error::RequestError;
use crate::runtime::{ApiFormat, RuntimeConfig};
use crate::wire::Dialect;

/// What a request path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A model API.
    Api(ApiFormat),
    /// `GET /v1/models`; the dialect a provider prefix fixed, if any.
    Models(Option<Dialect>),
}

/// A matched route and endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Matched {
    /// Index of the route in the configuration.
    pub route_index: usize,
    /// The endpoint below the route prefix.
    pub endpoint: Endpoint,
}

/// The provider prefixes: the path segment and the surface it names.
const PROVIDER_PREFIXES: [(&str, Dialect); 2] = [
    ("/openai", Dialect::OpenAI),
    ("/anthropic", Dialect::Anthropic),
];

/// Splits a provider prefix off a path below the route prefix:
/// `/openai/v1/x` → (`Some(OpenAI)`, `/v1/x`); `/v1/x` → (`None`, `/v1/x`).
fn split_provider_prefix(path: &str) -> (Option<Dialect>, &str) {
    for (prefix, dialect) in PROVIDER_PREFIXES {
        if let Some(rest) = path.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return (Some(dialect), rest);
        }
    }
    (None, path)
}

fn endpoint(method: &Method, path: &str) -> Option<Endpoint> {
    let (surface, path) = split_provider_prefix(path);
    let path = path.trim_end_matches('/');
    let found = match (method, path) {
        (&Method::POST, "/v1/chat/completions") => Endpoint::Api(ApiFormat::ChatCompletions),
        (&Method::POST, "/v1/messages") => Endpoint::Api(ApiFormat::Messages),
        (&Method::POST, "/v1/messages/count_tokens") => Endpoint::Api(ApiFormat::CountTokens),
        (&Method::POST, "/v1/responses") => Endpoint::Api(ApiFormat::Responses),
        (&Method::GET, "/v1/models") => Endpoint::Models(surface),
        // The Bedrock front door: served as Messages (see `super::front`).
        (&Method::POST, p)
            if surface.is_none()
                && p.starts_with("/model/")
                && crate::translate::bedrock::parse_front_path(p).is_some() =>
        {
            Endpoint::Api(ApiFormat::Messages)
        }
        // The Vertex front door: served as Messages or count_tokens (see `super::vertex_front`).
        (&Method::POST, p) if surface.is_none() && p.starts_with("/v1/projects/") => {
            Endpoint::Api(super::vertex_front::parse_path(p)?.op.format())
        }
        _ => return None,
    };
    match (surface, found) {
        (Some(surface), Endpoint::Api(format)) if format.dialect() != surface => None,
        _ => Some(found),
    }
}

/// The dialect to answer in before the endpoint is known: the surface a
/// provider prefix names (`/openai/v1/`, `/anthropic/v1/` anywhere in the
/// path, as route prefixes come first), else Anthropic for Messages,
/// Bedrock and Vertex Claude paths (the Bedrock front door re-shapes
/// Anthropic errors; Vertex answers Claude errors in Anthropic's shape) or
/// when the client sent `anthropic-version`, else OpenAI.
pub fn guess_dialect(path: &str, headers: &HeaderMap) -> Dialect {
    for (prefix, dialect) in PROVIDER_PREFIXES {
        let names_it = segment_starts(path, prefix).any(|at| {
            let rest = &path[at + prefix.len()..];
            rest.is_empty() || rest.starts_with('/')
        });
        if names_it {
            return dialect;
        }
    }
    let has = |segment| segment_starts(path, segment).next().is_some();
    if has("/messages")
        || has("/model/")
        || has("/publishers/anthropic/")
        || headers.contains_key(ANTHROPIC_VERSION)
    {
        Dialect::Anthropic
    } else {
        Dialect::OpenAI
    }
}

/// Where `segment` (text that starts with `/`) occurs in `path`, first to
/// last, overlapping occurrences included.
///
/// Request paths are short and have few slashes, so comparing at each slash
/// is cheaper than `str::find`/`match_indices`, which set up a general
/// substring searcher on every call (about 400 instructions each, four per
/// request before this).
pub fn segment_starts<'a>(path: &'a str, segment: &'a str) -> impl Iterator<Item = usize> + 'a {
    debug_assert!(segment.starts_with('/'), "{segment} is not a path segment");
    let (bytes, wanted) = (path.as_bytes(), segment.as_bytes());
    bytes
        .iter()
        .enumerate()
        .filter(move |&(at, &b)| b == b'/' && bytes[at..].starts_with(wanted))
        .map(|(at, _)| at)
}

/// The header that marks an Anthropic client.
const ANTHROPIC_VERSION: http::HeaderName = http::HeaderName::from_static("anthropic-version");

/// Matches the route, then the endpoint. The error names the route id once
/// a route matched (for metrics).
pub fn resolve(
    cfg: &RuntimeConfig,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Matched, (Option<usize>, RequestError)> {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.host());
    let path = uri.path();
    let Some((route, api_path)) = cfg.match_route(host, path) else {
        return Err((
            None,
            RequestError::RouteNotFound {
                path: path.to_owned(),
            },
        ));
    };
    let route_index = cfg
        .routes
        .iter()
        .position(|r| std::ptr::eq(r, route))
        .unwrap_or_default();
    match endpoint(method, api_path) {
        Some(endpoint) => Ok(Matched {
            route_index,
            endpoint,
        }),
        None => Err((
            Some(route_index),
            RequestError::EndpointNotFound {
                method: method.to_string(),
                path: api_path.to_owned(),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_prefixes_name_a_surface() {
        let post = Method::POST;
        assert_eq!(
            endpoint(&post, "/openai/v1/chat/completions"),
            Some(Endpoint::Api(ApiFormat::ChatCompletions))
        );
        assert_eq!(
            endpoint(&post, "/anthropic/v1/messages/count_tokens/"),
            Some(Endpoint::Api(ApiFormat::CountTokens))
        );
        assert_eq!(endpoint(&post, "/openai/v1/messages"), None);
        assert_eq!(endpoint(&post, "/anthropic/v1/responses"), None);
        assert_eq!(endpoint(&post, "/openaiv1/chat/completions"), None);
        assert_eq!(
            endpoint(&Method::GET, "/anthropic/v1/models"),
            Some(Endpoint::Models(Some(Dialect::Anthropic)))
        );
        assert_eq!(
            endpoint(&Method::GET, "/v1/models"),
            Some(Endpoint::Models(None))
        );
    }

    #[test]
    fn the_dialect_guess_follows_a_provider_prefix() {
        let none = HeaderMap::new();
        assert_eq!(
            guess_dialect("/team/openai/v1/messages", &none),
            Dialect::OpenAI
        );
        assert_eq!(
            guess_dialect("/anthropic/v1/chat/completions", &none),
            Dialect::Anthropic
        );
        assert_eq!(
            guess_dialect("/openaix/v1/messages", &none),
            Dialect::Anthropic
        );
    }

    #[test]
    fn segments_are_found_wherever_they_start() {
        let all = |path, segment| segment_starts(path, segment).collect::<Vec<_>>();
        assert_eq!(all("/v1/messages", "/messages"), [3]);
        assert_eq!(all("/a/model/x/model/y", "/model/"), [2, 10]);
        // Overlapping occurrences are each reported.
        assert_eq!(all("/x/x/x", "/x/x"), [0, 2]);
        assert_eq!(all("/v1/messagesx", "/messages"), [3]);
        assert_eq!(all("/v1/message", "/messages"), Vec::<usize>::new());
        assert_eq!(all("", "/messages"), Vec::<usize>::new());
        assert_eq!(all("/é/messages", "/messages"), [3]);
    }

    #[test]
    fn the_dialect_guess_reads_anthropic_paths_and_headers() {
        let none = HeaderMap::new();
        assert_eq!(guess_dialect("/v1/messages", &none), Dialect::Anthropic);
        assert_eq!(
            guess_dialect("/model/claude/invoke", &none),
            Dialect::Anthropic
        );
        assert_eq!(
            guess_dialect(
                "/v1/projects/p/locations/l/publishers/anthropic/models/m:rawPredict",
                &none
            ),
            Dialect::Anthropic
        );
        assert_eq!(
            guess_dialect("/v1/chat/completions", &none),
            Dialect::OpenAI
        );
        let mut anthropic = HeaderMap::new();
        anthropic.insert("anthropic-version", "2023-06-01".parse().unwrap());
        assert_eq!(
            guess_dialect("/v1/chat/completions", &anthropic),
            Dialect::Anthropic
        );
    }
}
