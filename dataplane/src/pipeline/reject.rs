//! Answers the gateway gives itself: counted, logged, and shaped in the
//! client's dialect.

use http::Response;

use crate::error::RequestError;
use crate::metrics::RejectionLabels;
use crate::response::{self, ResponseBody};
use crate::state::AppState;
use crate::wire::Dialect;

/// Answers a rejection; `team` is the caller's team once it is known.
pub fn reject(
    state: &AppState,
    dialect: Dialect,
    route: &str,
    team: Option<&str>,
    err: &RequestError,
) -> Response<ResponseBody> {
    record(state, route, team, err);
    response::error(dialect, err)
}

/// Counts and logs a rejection (also for one sent in-band, on a stream
/// whose headers already went out).
pub fn record(state: &AppState, route: &str, team: Option<&str>, err: &RequestError) {
    state
        .metrics
        .rejections
        .get_or_create(&RejectionLabels {
            route: route.into(),
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
}
