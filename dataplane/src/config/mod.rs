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
pub fn apply_snapshot(
    state: &Arc<AppState>,
    snapshot: &pb::Snapshot,
) -> Result<bool, Vec<BuildProblem>> {
    if state.store.version().as_deref() == Some(snapshot.version.as_str()) {
        return Ok(false);
    }
    let env = |name: &str| std::env::var(name).ok();
    match RuntimeConfig::build(snapshot, &state.shared, &env) {
        Ok(config) => {
            state.store.apply(config);
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
