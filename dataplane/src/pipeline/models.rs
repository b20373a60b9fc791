//! `GET /v1/models`: the route's model catalog in the caller's shape (see
//! [`crate::catalog::shapes`]: Codex's metadata list when the query has
//! `client_version`, the Anthropic paginated list when the request carries
//! `anthropic-version`, the OpenAI list otherwise; a provider prefix fixes
//! the shape, see [`Shape::on_surface`]). The caller must be
//! allowed on the route: a route that refuses callers outside its teams
//! refuses them here too.

use http::{HeaderMap, Response, StatusCode};

use crate::auth::Identity;
use crate::catalog::shapes::{Shape, render};
use crate::error::RequestError;
use crate::response::{self, ResponseBody};
use crate::runtime::RouteRuntime;
use crate::state::AppState;

/// Builds the models list response for an authenticated caller.
pub fn list_models(
    state: &AppState,
    route: &RouteRuntime,
    identity: &Identity,
    surface: Option<crate::wire::Dialect>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<ResponseBody>, RequestError> {
    crate::teams::membership(state, route, identity)?;
    let shape = Shape::on_surface(surface, query, headers);
    let body = render(&route.catalog, shape, query)?;
    Ok(response::json(StatusCode::OK, body.to_string()))
}
