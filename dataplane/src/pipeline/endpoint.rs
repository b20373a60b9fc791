//! Which route and which API a request is for: host and path against the
//! configuration's routes, then the method and path below the route prefix.
//! Query strings (Claude Code's `?beta=true`) are ignored here.

use http::{HeaderMap, Method, Uri};

use crate::error::RequestError;
use crate::runtime::{ApiFormat, RuntimeConfig};
use crate::wire::Dialect;

/// What a request path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A model API.
    Api(ApiFormat),
    /// `GET /v1/models`.
    Models,
}

/// A matched route and endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Matched {
    /// Index of the route in the configuration.
    pub route_index: usize,
    /// The endpoint below the route prefix.
    pub endpoint: Endpoint,
}

fn endpoint(method: &Method, path: &str) -> Option<Endpoint> {
    let path = path.trim_end_matches('/');
    match (method, path) {
        (&Method::POST, "/v1/chat/completions") => Some(Endpoint::Api(ApiFormat::ChatCompletions)),
        (&Method::POST, "/v1/messages") => Some(Endpoint::Api(ApiFormat::Messages)),
        (&Method::POST, "/v1/messages/count_tokens") => Some(Endpoint::Api(ApiFormat::CountTokens)),
        (&Method::POST, "/v1/responses") => Some(Endpoint::Api(ApiFormat::Responses)),
        (&Method::GET, "/v1/models") => Some(Endpoint::Models),
        // The Bedrock front door: served as Messages (see `super::front`).
        (&Method::POST, p)
            if p.starts_with("/model/")
                && crate::translate::bedrock::parse_front_path(p).is_some() =>
        {
            Some(Endpoint::Api(ApiFormat::Messages))
        }
        _ => None,
    }
}

/// The dialect to answer in before the endpoint is known: Anthropic for
/// Messages and Bedrock paths (the front door re-shapes Anthropic errors)
/// or when the client sent `anthropic-version`, else OpenAI.
pub fn guess_dialect(path: &str, headers: &HeaderMap) -> Dialect {
    if path.contains("/messages")
        || path.contains("/model/")
        || headers.contains_key("anthropic-version")
    {
        Dialect::Anthropic
    } else {
        Dialect::OpenAI
    }
}

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
