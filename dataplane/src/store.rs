//! The one place the serving configuration lives.
//!
//! One writer (the config source task) swaps whole [`RuntimeConfig`]s in;
//! every request loads the current one once, lock-free, and keeps using that
//! version to its end even if a newer one is applied meanwhile.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::runtime::RuntimeConfig;

/// Holds the current configuration.
#[derive(Default)]
pub struct ConfigStore {
    current: ArcSwapOption<RuntimeConfig>,
}

impl ConfigStore {
    /// The configuration requests should use now, if any was applied.
    pub fn load(&self) -> Option<Arc<RuntimeConfig>> {
        self.current.load_full()
    }

    /// Replaces the configuration atomically.
    pub fn apply(&self, config: RuntimeConfig) {
        self.current.store(Some(Arc::new(config)));
    }

    /// The version being served, if any.
    pub fn version(&self) -> Option<String> {
        self.current.load().as_ref().map(|c| c.version.clone())
    }

    /// True once a configuration has been applied.
    pub fn is_ready(&self) -> bool {
        self.current.load().is_some()
    }
}
