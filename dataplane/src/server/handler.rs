//! The traffic port's request dispatch: load the configuration once, match
//! the route, pick the endpoint, and turn every [`RequestError`] into a
//! response in the client's dialect.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::error::RequestError;
use crate::metrics::RejectionLabels;
use crate::proxy::{self, ResponseBody, response};
use crate::runtime::ApiFormat;
use crate::state::AppState;
use crate::wire::Dialect;

/// What a request path asks for.
enum Endpoint {
    Api(ApiFormat),
    Models,
}

fn endpoint(method: &Method, path: &str) -> Option<Endpoint> {
    let path = path.trim_end_matches('/');
    match (method, path) {
        (&Method::POST, "/v1/chat/completions") => Some(Endpoint::Api(ApiFormat::ChatCompletions)),
        (&Method::POST, "/v1/messages") => Some(Endpoint::Api(ApiFormat::Messages)),
        (&Method::POST, "/v1/messages/count_tokens") => Some(Endpoint::Api(ApiFormat::CountTokens)),
        (&Method::POST, "/v1/responses") => Some(Endpoint::Api(ApiFormat::Responses)),
        (&Method::GET, "/v1/models") => Some(Endpoint::Models),
        _ => None,
    }
}

/// The dialect to answer in before the endpoint is known: Anthropic for
/// Messages paths or when the client sent `anthropic-version`, else OpenAI.
fn guess_dialect(path: &str, headers: &http::HeaderMap) -> Dialect {
    if path.contains("/messages") || headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAI
    }
}

/// Handles one request on the traffic port.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<ResponseBody> {
    let started = Instant::now();
    if req.uri().path() == "/" && (req.method() == Method::GET || req.method() == Method::HEAD) {
        return response::text(StatusCode::OK, "ok\n");
    }
    let dialect = guess_dialect(req.uri().path(), req.headers());
    let Some(cfg) = state.store.load() else {
        return reject(&state, dialect, "none", &RequestError::NotReady);
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .map(str::to_owned);
    let path = req.uri().path().to_owned();
    let Some((route, api_path)) = cfg.match_route(host.as_deref(), &path) else {
        return reject(
            &state,
            dialect,
            "none",
            &RequestError::RouteNotFound { path },
        );
    };
    let route_index = cfg
        .routes
        .iter()
        .position(|r| std::ptr::eq(r, route))
        .unwrap_or_default();
    let route_id = route.id.clone();
    let Some(endpoint) = endpoint(req.method(), api_path) else {
        let err = RequestError::EndpointNotFound {
            method: req.method().to_string(),
            path: api_path.to_owned(),
        };
        return reject(&state, dialect, &route_id, &err);
    };
    match endpoint {
        Endpoint::Models => {
            let listed = match route.auth.authenticate(req.headers()).await {
                Ok(identity) => {
                    proxy::list_models(&state, route, &identity, req.uri().query(), req.headers())
                }
                Err(e) => Err(RequestError::Unauthenticated(e)),
            };
            listed.unwrap_or_else(|e| reject(&state, dialect, &route_id, &e))
        }
        Endpoint::Api(format) => {
            let dialect = proxy::dialect_of(format);
            match proxy::serve(&state, cfg.clone(), route_index, format, req, started).await {
                Ok(resp) => resp,
                Err(r) => {
                    let mut resp =
                        reject_as(&state, dialect, &route_id, r.team.as_deref(), &r.error);
                    if let Some(a) = &r.admission {
                        crate::teams::headers::add_ratelimit_headers(resp.headers_mut(), a);
                    }
                    resp
                }
            }
        }
    }
}

fn reject(
    state: &AppState,
    dialect: Dialect,
    route: &str,
    err: &RequestError,
) -> Response<ResponseBody> {
    reject_as(state, dialect, route, None, err)
}

/// Answers a rejection; `team` is the caller's team once it is known.
fn reject_as(
    state: &AppState,
    dialect: Dialect,
    route: &str,
    team: Option<&str>,
    err: &RequestError,
) -> Response<ResponseBody> {
    state
        .metrics
        .rejections
        .get_or_create(&RejectionLabels {
            route: route.to_owned(),
            reason: err.metric_label(),
        })
        .inc();
    if let RequestError::Internal(detail) = err {
        tracing::error!(route, detail = %detail, "internal error");
    } else {
        tracing::info!(
            target: "switchboard::access",
            route,
            team = team.unwrap_or(""),
            status = err.status().as_u16(),
            outcome = err.metric_label(),
            "request rejected"
        );
    }
    response::error(dialect, err)
}
