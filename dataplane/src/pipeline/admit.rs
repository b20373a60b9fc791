//! Stage: admit. The route's request guards (blocked patterns, webhook,
//! removed fields), then its AITeam's, and the caller's team limits: counted before the body
//! is read, then, once it is, what the request is expected to use is
//! reserved on the team's token and budget counters (settled to the true
//! usage when the answer ends, released if none comes).

use std::net::IpAddr;
use std::sync::Arc;

use crate::body::RequestJson;
use crate::error::RequestError;
use crate::guards::{RequestSummary, RouteGuards};
use crate::runtime::RouteRuntime;
use crate::state::AppState;
use crate::teams::{Membership, TeamContext};

/// Counts the request against its team's limits (and the client address's).
pub async fn limits(
    state: &AppState,
    route: &RouteRuntime,
    membership: Option<Membership>,
    client_ip: Option<IpAddr>,
) -> Result<Option<Arc<TeamContext>>, RequestError> {
    crate::teams::admit(state, route, membership, client_ip).await
}

/// Runs the route's request guards on the body, then those of the caller's
/// AITeam (`team_guards`); returns the body to send on (fields removed when
/// configured).
pub async fn inspect(
    state: &AppState,
    route: &RouteRuntime,
    team_guards: Option<&RouteGuards>,
    json: RequestJson,
    summary: &RequestSummary<'_>,
) -> Result<RequestJson, RequestError> {
    let mut json = json;
    for guards in std::iter::once(&route.guards).chain(team_guards) {
        if !guards.checks_requests() {
            continue;
        }
        match guards.check_request(state, &json, summary).await {
            Ok(Some(rewritten)) => json = rewritten,
            Ok(None) => {}
            Err(e) => {
                if route.teams.is_some() {
                    let team = summary.team.unwrap_or(crate::teams::UNKNOWN_TEAM);
                    state.metrics.team.reject(&route.id, team, e.metric_label());
                }
                return Err(e);
            }
        }
    }
    Ok(json)
}

/// Reserves what the request is expected to use on its team's counters
/// ([`crate::teams::estimate`]), priced as the routed model.
pub async fn reserve(
    team: &TeamContext,
    json: &RequestJson,
    routed_model: &str,
) -> Result<(), RequestError> {
    let estimate = crate::teams::estimate::estimate(json, team.prices(), routed_model);
    team.reserve(estimate).await
}
