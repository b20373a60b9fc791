//! The request path of the traffic port, as a sequence of stages with one
//! job each (`docs/operations.md` lists every bound and its default):
//!
//! | stage | module | job |
//! |---|---|---|
//! | accept | [`crate::server`] | connection caps, first-byte and idle timeouts, header timeout |
//! | endpoint | [`endpoint`] | route by host and path prefix, API by method and path |
//! | authenticate | [`authenticate`] | the caller's credential, then its team |
//! | byok | [`byok`] | the caller's own provider key, when the route allows one |
//! | admit | [`admit`] | team and client-address limits; request guards on the body |
//! | read body | [`body`] | bounded read of the body, parsed into top-level members |
//! | route | [`route`] | requested model, stream flag, alias resolution |
//! | attempt | [`attempt`] | the backend chain with classified failover ([`send`] is one try) |
//! | respond | [`respond`] | relay or translate the answer, account usage ([`accounting`]) |
//!
//! Bedrock-format clients (`/model/{id}/…`) are served as Messages requests
//! between the two edges of [`front`]: their body is converted after it is
//! read, and every answer is re-shaped for Bedrock on its way out. Vertex
//! clients (`/v1/projects/…/publishers/anthropic/models/{model}:rawPredict`)
//! are served the same way by [`vertex_front`], whose answers need no
//! re-shaping (Vertex answers Claude requests in Anthropic's format).
//!
//! Errors of any stage are [`RequestError`]s answered by [`reject`] in the
//! client's dialect. The stages are generic over the request body, so tests
//! drive the whole path in-process (see `tests/`) with a scripted
//! [`crate::upstream::fake::FakeUpstream`] in place of the network.

pub mod access_line;
mod accounting;
mod admit;
mod attempt;
mod authenticate;
mod body;
mod byok;
mod coalesce;
mod continuation;
mod endpoint;
mod exchange;
mod front;
mod hold;
pub mod keepalive;
pub mod models;
mod reject;
mod respond;
mod route;
mod send;
mod stream;
mod vertex_front;

#[cfg(test)]
mod accounting_tests;
#[cfg(test)]
mod bedrock_tests;
#[cfg(test)]
mod body_tests;
#[cfg(test)]
mod byok_tests;
#[cfg(test)]
mod failure_classes;
#[cfg(test)]
mod front_tests;
#[cfg(test)]
mod google_tests;
#[cfg(test)]
mod keepalive_tests;
#[cfg(test)]
mod prefix_tests;
#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod translation_tests;
#[cfg(test)]
mod vertex_front_tests;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tokio::time::Instant;

use crate::error::RequestError;
use crate::response::{self, BodyError, BoxError, ResponseBody};
use crate::runtime::{ApiFormat, RuntimeConfig};
use crate::state::AppState;

pub use endpoint::Endpoint;
pub use exchange::{ClientAddr, Exchange, Rejection};
pub use respond::HANGUP_DRAIN_TIME;

/// The body of a client request, boxed once at the server edge so every
/// stage (and every in-process test) uses one concrete type.
pub type RequestBody = UnsyncBoxBody<Bytes, BodyError>;

/// Boxes any request body into a [`RequestBody`].
pub fn request_body<B>(body: B) -> RequestBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(BodyError::new).boxed_unsync()
}

/// Handles one request on the traffic port; the client's address, if
/// known, is read from the request's [`ClientAddr`] extension.
pub async fn handle(state: Arc<AppState>, req: Request<RequestBody>) -> Response<ResponseBody> {
    let client = req.extensions().get::<ClientAddr>().map(|a| a.0);
    handle_from(state, req, client).await
}

/// Handles one request from `client` on the traffic port (what the server
/// calls: the address is passed along, not stored in the request).
pub async fn handle_from(
    state: Arc<AppState>,
    req: Request<RequestBody>,
    client: Option<std::net::SocketAddr>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let mut body = Some(body);
    // A Bedrock-format client is answered in Bedrock's shape (see `front`).
    let front = (parts.method == Method::POST)
        .then(|| FrontDoor::detect(parts.uri.path()))
        .flatten();
    let mut resp = dispatch(
        &state,
        &mut parts,
        &mut body,
        started,
        front.as_ref(),
        client,
    )
    .await;
    if let Some(FrontDoor::Bedrock(f)) = &front {
        resp = front::encode(f.op, resp).await;
    }
    // HTTP/1: a request answered before its body was read must leave the
    // connection usable or say that it closes (see `body::drain`).
    if parts.version <= http::Version::HTTP_11 {
        let close = match body {
            Some(unread) => body::drain(&parts.headers, unread).await,
            None => resp.extensions().get::<BodyLeftUnread>().is_some(),
        };
        if close {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
    }
    resp
}

/// A request in another provider's shape, served as an Anthropic request
/// between the edges of its front door.
#[derive(Debug)]
enum FrontDoor {
    /// Bedrock's InvokeModel / Converse ([`front`]).
    Bedrock(front::FrontDoor),
    /// Claude on Vertex AI ([`vertex_front`]).
    Vertex(vertex_front::VertexCall),
}

impl FrontDoor {
    fn detect(path: &str) -> Option<Self> {
        vertex_front::detect(path)
            .map(Self::Vertex)
            .or_else(|| front::detect(path).map(Self::Bedrock))
    }
}

/// Marks an answer given while the request body was partly read.
#[derive(Clone, Copy, Debug)]
struct BodyLeftUnread;

/// Matches the endpoint and runs its stages; `body` is taken once it is read.
async fn dispatch(
    state: &Arc<AppState>,
    parts: &mut http::request::Parts,
    body: &mut Option<RequestBody>,
    started: Instant,
    front: Option<&FrontDoor>,
    client: Option<std::net::SocketAddr>,
) -> Response<ResponseBody> {
    if parts.uri.path() == "/" && (parts.method == Method::GET || parts.method == Method::HEAD) {
        return response::text(StatusCode::OK, "ok\n");
    }
    let dialect = endpoint::guess_dialect(parts.uri.path(), &parts.headers);
    let Some(cfg) = state.store.load() else {
        return reject::reject(state, dialect, "none", None, &RequestError::NotReady);
    };
    let resolved = endpoint::resolve(&cfg, &parts.method, &parts.uri, &parts.headers);
    // A fail-closed placeholder answers everything under its prefix, known endpoint or not.
    let route_index = match &resolved {
        Ok(m) => Some(m.route_index),
        Err((route_index, _)) => *route_index,
    };
    if let Some(route) = route_index.map(|i| &cfg.routes[i])
        && let Some(message) = &route.unavailable
    {
        let err = RequestError::RouteUnavailable {
            message: message.clone(),
        };
        return reject::reject(state, dialect, &route.id, None, &err);
    }
    let matched = match resolved {
        Ok(m) => m,
        Err((route_index, err)) => {
            let route = route_index.map_or("none", |i| cfg.routes[i].id.as_str());
            return reject::reject(state, dialect, route, None, &err);
        }
    };
    let route = &cfg.routes[matched.route_index];
    match matched.endpoint {
        Endpoint::Models(surface) => {
            let listed = match route.auth.authenticate(&parts.headers).await {
                Ok(identity) => models::list_models(
                    state,
                    route,
                    &identity,
                    surface,
                    parts.uri.query(),
                    &parts.headers,
                ),
                Err(e) => Err(RequestError::Unauthenticated(e)),
            };
            listed.unwrap_or_else(|e| reject::reject(state, dialect, &route.id, None, &e))
        }
        Endpoint::Api(format) => {
            let dialect = format.dialect();
            let route_id = route.id.clone();
            let result = serve_api(
                state,
                cfg.clone(),
                matched.route_index,
                format,
                parts,
                body,
                started,
                front,
                client,
            )
            .await;
            match result {
                Ok(resp) => resp,
                Err(r) => {
                    let mut resp =
                        reject::reject(state, dialect, &route_id, r.team.as_deref(), &r.error);
                    // The limits as admission saw them, the refused one as
                    // the refusal saw it.
                    let mut limits = r.admission.clone();
                    if let RequestError::LimitExceeded(refusal) = &r.error {
                        let seen = refusal.limits();
                        let a = limits.get_or_insert_with(Default::default);
                        a.requests = seen.requests.or(a.requests);
                        a.tokens = seen.tokens.or(a.tokens);
                        a.budget = seen.budget.or(a.budget);
                    }
                    if let Some(a) = &limits {
                        crate::teams::headers::add_ratelimit_headers(
                            resp.headers_mut(),
                            dialect,
                            a,
                        );
                    }
                    if r.error.leaves_body_unread() {
                        resp.extensions_mut().insert(BodyLeftUnread);
                    }
                    resp
                }
            }
        }
    }
}

/// Serves one model API request on a matched route: the stages in order.
#[allow(clippy::too_many_arguments)] // the request's parts, each used by one stage
async fn serve_api(
    state: &Arc<AppState>,
    cfg: Arc<RuntimeConfig>,
    route_index: usize,
    format: ApiFormat,
    parts: &mut http::request::Parts,
    body: &mut Option<RequestBody>,
    started: Instant,
    front: Option<&FrontDoor>,
    client: Option<std::net::SocketAddr>,
) -> Result<Response<ResponseBody>, Rejection> {
    use tracing::Instrument as _;
    let route = &cfg.routes[route_index];
    let (identity, membership) = authenticate::run(state, route, &parts.headers).await?;
    let team_label = membership.as_ref().map(|m| m.label.clone());
    let with_team = |error: RequestError, admitted: Option<&Arc<crate::teams::TeamContext>>| {
        if let Some(m) = &membership {
            state.first_refusals.note(&route.id, m, &error);
        }
        Rejection {
            error,
            team: team_label.clone(),
            admission: admitted.map(|t| t.admission.clone()),
        }
    };
    // The caller's own provider key leaves the headers here, whatever the route's mode.
    let caller_key = byok::run(route, &mut parts.headers)
        .await
        .map_err(|e| with_team(e, None))?;
    let client_ip = client.map(|a| a.ip());
    // Limits before the body: a refused caller costs no buffering.
    let team = admit::limits(state, route, membership.clone(), client_ip)
        .await
        .map_err(|e| with_team(e, None))?;
    let Some(unread) = body.take() else {
        return Err(with_team(
            RequestError::Internal("request body taken twice".into()),
            team.as_ref(),
        ));
    };
    // Taken with the body: `handle_from` reads the headers only to drain a
    // body left unread. Moved, not copied, into the exchange.
    let mut headers = std::mem::take(&mut parts.headers);
    let mut read = body::read(route, &state.bounds, &headers, unread)
        .await
        .map_err(|e| with_team(e, team.as_ref()))?;
    match front {
        Some(FrontDoor::Bedrock(f)) => {
            read.json = front::to_messages(f, read.json, &mut headers)
                .map_err(|e| with_team(e, team.as_ref()))?;
        }
        Some(FrontDoor::Vertex(v)) => {
            read.json = vertex_front::to_anthropic(v, route, read.json, &mut headers)
                .map_err(|e| with_team(e, team.as_ref()))?;
        }
        None => {}
    }
    let routed =
        route::resolve(route, format, &read.json).map_err(|e| with_team(e, team.as_ref()))?;

    // The trace span starts once the model is known (span names cannot change later).
    let operation = if format == ApiFormat::CountTokens {
        "count_tokens"
    } else {
        "chat"
    };
    let span = crate::telemetry::request_span(operation, &route.id, &routed.requested_model);
    if let Some(m) = &membership {
        span.record("switchboard.team", m.label.as_str());
    }
    let session = crate::sessions::Session::from_headers(&headers, &state.sessions);
    if let Some(s) = &session {
        span.record("switchboard.session", &*s.id);
    }
    let result: Result<Response<ResponseBody>, RequestError> = async {
        let summary = crate::guards::RequestSummary {
            route: &route.id,
            team: membership.as_ref().map(|m| m.label.as_str()),
            subject: &identity.subject,
            model: &routed.requested_model,
            api: format.label(),
            stream: routed.stream,
        };
        let team_guards = membership.as_ref().and_then(|m| m.guards.as_deref());
        let json = admit::inspect(state, route, team_guards, read.json, &summary).await?;
        if let Some(team) = &team
            && format != ApiFormat::CountTokens
        {
            admit::reserve(team, &json, &routed.routed_model).await?;
        }
        let exchange = Exchange {
            cfg: cfg.clone(),
            route_index,
            format,
            query: parts.uri.query().map(str::to_owned),
            headers,
            identity,
            json,
            body_reserved: read.reserved,
            requested_model: routed.requested_model,
            routed_model: routed.routed_model,
            stream: routed.stream,
            started,
            team: team.clone(),
            span: span.clone(),
            session,
            caller_key,
        };
        let mut resp = attempt::run(state, exchange).await?;
        if let Some(team) = &team {
            crate::teams::headers::add_ratelimit_headers(
                resp.headers_mut(),
                format.dialect(),
                &team.admission,
            );
        }
        let resp = route.guards.mask_response(resp, format.dialect());
        Ok(match team_guards {
            Some(g) => g.mask_response(resp, format.dialect()),
            None => resp,
        })
    }
    .instrument(span.clone())
    .await;
    if let Err(e) = &result {
        span.record("http.response.status_code", i64::from(e.status().as_u16()));
        span.record("error.type", e.metric_label());
    }
    result.map_err(|error| with_team(error, team.as_ref()))
}
