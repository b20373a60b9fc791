//! Serving an API request: authenticate, read and check the body, resolve the
//! model, then try the backend chain (see [`failover`]).

pub mod client;
mod accounting;
mod attempt;
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

/// Serves one completion-style request on a matched route.
pub async fn serve(
    state: &Arc<AppState>,
    cfg: Arc<RuntimeConfig>,
    route_index: usize,
    format: ApiFormat,
    req: Request<Incoming>,
    started: Instant,
) -> Result<Response<ResponseBody>, RequestError> {
    let route = &cfg.routes[route_index];
    let (parts, body) = req.into_parts();
    let identity = route.auth.authenticate(&parts.headers).await?;

    let limit = route.max_body_bytes;
    if let Some(len) = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(RequestError::BodyTooLarge { limit });
        }
    }
    let bytes: Bytes = match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(RequestError::BodyTooLarge { limit });
        }
        Err(e) => return Err(RequestError::BodyRead(e.to_string())),
    };
    let json = RequestJson::parse(bytes)?;
    let requested_model = json.required_str("model")?;
    let stream = match format {
        ApiFormat::CountTokens => false,
        _ => json.optional_bool("stream")?.unwrap_or(false),
    };
    let routed_model = route.aliases.resolve(&requested_model).into_owned();
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
    };
    failover::run(state, exchange).await
}
