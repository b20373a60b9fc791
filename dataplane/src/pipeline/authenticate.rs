//! Stage: authenticate. The caller's credential against the route's auth
//! policy, then the caller's team on routes with teams. Needs no body.

use http::HeaderMap;

use crate::auth::Identity;
use crate::error::RequestError;
use crate::runtime::RouteRuntime;
use crate::state::AppState;
use crate::teams::Membership;

/// Who the caller is and which team it belongs to (`None`: the route has no teams).
pub async fn run(
    state: &AppState,
    route: &RouteRuntime,
    headers: &HeaderMap,
) -> Result<(Identity, Option<Membership>), RequestError> {
    let identity = route.auth.authenticate(headers).await?;
    let membership = crate::teams::membership(state, route, &identity)?;
    Ok((identity, membership))
}
