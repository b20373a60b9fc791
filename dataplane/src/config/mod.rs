//! Where configurations come from. Standalone mode reads resource YAML from
//! local files ([`local`]); cluster mode receives snapshots from the
//! controller over gRPC ([`grpc`], secured by [`channel`]) and may persist
//! the last good one ([`cache`]). Every source ends in [`apply_snapshot`].

pub mod cache;
pub mod channel;
pub mod grpc;
pub mod local;

#[cfg(test)]
mod docs_tests;

use std::sync::Arc;

use switchboard_proto as pb;

use crate::runtime::{BuildProblem, RuntimeConfig};
use crate::state::AppState;

/// Builds a runtime configuration from `snapshot` and swaps it in, unless it
/// is the version already served. On failure nothing changes and every
/// problem is returned.
///
/// A snapshot without any route is refused (it would answer 404 to every
/// request while looking healthy) unless the process runs with
/// `--allow-empty-config`.
pub fn apply_snapshot(
    state: &Arc<AppState>,
    snapshot: &pb::Snapshot,
) -> Result<bool, Vec<BuildProblem>> {
    if state.store.version().as_deref() == Some(snapshot.version.as_str()) {
        return Ok(false);
    }
    if snapshot.routes.is_empty() && !state.allow_empty_config {
        state.metrics.config_rejections.inc();
        return Err(vec![BuildProblem {
            resource: "configuration".into(),
            message: format!(
                "has no AIRoute ({} AIBackends): applying it would answer 404 to every request; \
                 refused (start the data plane with --allow-empty-config if this is intended)",
                snapshot.backends.len()
            ),
        }]);
    }
    let env = |name: &str| std::env::var(name).ok();
    match RuntimeConfig::build(snapshot, &state.shared, &env) {
        Ok(config) => {
            swap(state, config);
            state.metrics.config_applies.inc();
            state.metrics.set_snapshot_version(&snapshot.version);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            state.metrics.config_last_apply.set(now);
            Ok(true)
        }
        Err(problems) => {
            state.metrics.config_rejections.inc();
            Err(problems)
        }
    }
}

/// Commits a built configuration: the state it shares with other
/// configurations (circuit breakers) first, then the one atomic swap. Only
/// the configuration source's single writer calls this.
pub fn swap(state: &AppState, config: RuntimeConfig) {
    state.shared.breakers.commit(&config.breakers);
    state.store.apply(config);
}

#[cfg(test)]
mod tests;
