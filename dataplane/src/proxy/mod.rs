//! Serving an API request: authenticate, read and check the body, resolve the
//! model, then try the backend chain (see [`failover`]).

mod accounting;
mod attempt;
pub mod client;
mod failover;
pub mod headers;
mod models;
pub mod response;
mod translation;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::auth::Identity;
use crate::body::RequestJson;
use crate::error::RequestError;
use crate::runtime::{ApiFormat, RouteRuntime, RuntimeConfig};
use crate::state::AppState;
use crate::wire::Dialect;

pub use models::list_models;
pub use response::{BoxError, ResponseBody};

/// Everything known about a client request once it has been admitted.
pub(crate) struct Exchange {
    /// The configuration this request uses from start to end.
    pub cfg: Arc<RuntimeConfig>,
    /// Index of the matched route in `cfg.routes`.
    pub route_index: usize,
    /// Client API.
    pub format: ApiFormat,
    /// The client's request headers.
    pub headers: HeaderMap,
    /// The client's query string.
    pub query: Option<String>,
    /// Who the client is.
    pub identity: Identity,
    /// The request body.
    pub json: RequestJson,
    /// The model the client asked for.
    pub requested_model: String,
    /// The model after alias resolution.
    pub routed_model: String,
    /// The client asked for a stream.
    pub stream: bool,
    /// When the request arrived.
    pub started: Instant,
    /// The caller's team, when the route has teams.
    pub team: Option<Arc<crate::teams::TeamContext>>,
    /// The request's trace span (disabled without an exporter).
    pub span: tracing::Span,
}

impl Exchange {
    /// The matched route.
    pub fn route(&self) -> &RouteRuntime {
        &self.cfg.routes[self.route_index]
    }
}

/// The dialect of a client API.
pub fn dialect_of(format: ApiFormat) -> Dialect {
    match format {
        ApiFormat::ChatCompletions | ApiFormat::Responses => Dialect::OpenAI,
        ApiFormat::Messages | ApiFormat::CountTokens => Dialect::Anthropic,
    }
}

/// A request the gateway answers itself, and the caller's team if it was known by then.
#[derive(Debug)]
pub struct Rejection {
    /// Why.
    pub error: RequestError,
    /// The caller's team (`None` before it was resolved, or without teams).
    pub team: Option<String>,
    /// The team's limits when the request had been admitted (for the
    /// `x-ratelimit-*` headers of errors answered after admission).
    pub admission: Option<crate::limits::Admission>,
}

impl<E: Into<RequestError>> From<E> for Rejection {
    fn from(error: E) -> Self {
        Self {
            error: error.into(),
            team: None,
            admission: None,
        }
    }
}

/// Serves one completion-style request on a matched route.
pub async fn serve(
    state: &Arc<AppState>,
    cfg: Arc<RuntimeConfig>,
    route_index: usize,
    format: ApiFormat,
    req: Request<Incoming>,
    started: Instant,
) -> Result<Response<ResponseBody>, Rejection> {
    use tracing::Instrument as _;
    let route = &cfg.routes[route_index];
    let (parts, body) = req.into_parts();
    let identity = route.auth.authenticate(&parts.headers).await?;
    let membership = crate::teams::membership(state, route, &identity)?;
    let team_label = membership.as_ref().map(|m| m.label.clone());
    let client_ip = parts
        .extensions
        .get::<crate::server::ClientAddr>()
        .map(|a| a.0.ip());

    let limit = route.max_body_bytes;
    if let Some(len) = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(RequestError::BodyTooLarge { limit }.into());
    }
    let bytes: Bytes = match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(RequestError::BodyTooLarge { limit }.into());
        }
        Err(e) => return Err(RequestError::BodyRead(e.to_string()).into()),
    };
    let mut json = RequestJson::parse(bytes)?;
    let requested_model = json.required_str("model")?;
    let stream = match format {
        ApiFormat::CountTokens => false,
        _ => json.optional_bool("stream")?.unwrap_or(false),
    };
    let routed_model = route.aliases.resolve(&requested_model).into_owned();

    // The trace span starts once the model is known (span names cannot change later).
    let operation = if format == ApiFormat::CountTokens {
        "count_tokens"
    } else {
        "chat"
    };
    let span = crate::telemetry::request_span(operation, &route.id, &requested_model);
    if let Some(m) = &membership {
        span.record("switchboard.team", m.label.as_str());
    }
    let mut admitted = None;
    let result = async {
        if route.guards.checks_requests() {
            let summary = crate::guards::RequestSummary {
                route: &route.id,
                team: membership.as_ref().map(|m| m.label.as_str()),
                subject: &identity.subject,
                model: &requested_model,
                api: format.label(),
                stream,
            };
            match route.guards.check_request(state, &json, &summary).await {
                Ok(Some(rewritten)) => json = rewritten,
                Ok(None) => {}
                Err(e) => {
                    let team = membership
                        .as_ref()
                        .map_or(crate::teams::UNKNOWN_TEAM, |m| m.label.as_str());
                    if route.teams.is_some() {
                        state.metrics.team.reject(&route.id, team, e.metric_label());
                    }
                    return Err(e);
                }
            }
        }
        let team = crate::teams::admit(state, route, membership, client_ip).await?;
        admitted = team.as_ref().map(|t| t.admission.clone());
        let exchange = Exchange {
            cfg: cfg.clone(),
            route_index,
            format,
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            identity,
            json,
            requested_model,
            routed_model,
            stream,
            started,
            team: team.clone(),
            span: span.clone(),
        };
        let mut resp = failover::run(state, exchange).await?;
        if let Some(team) = &team {
            crate::teams::headers::add_ratelimit_headers(resp.headers_mut(), &team.admission);
        }
        Ok(route.guards.mask_response(resp, dialect_of(format)))
    }
    .instrument(span.clone())
    .await;
    if let Err(e) = &result {
        span.record("http.response.status_code", i64::from(e.status().as_u16()));
        span.record("error.type", e.metric_label());
    }
    result.map_err(|error| Rejection {
        error,
        team: team_label,
        admission: admitted,
    })
}
