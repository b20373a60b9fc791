//! The one place the serving configuration lives.
//!
//! One writer (the config source task) swaps whole [`RuntimeConfig`]s in;
//! every request loads the current one once, lock-free, and keeps using that
//! version to its end even if a newer one is applied meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use arc_swap::ArcSwapOption;

use crate::runtime::RuntimeConfig;

/// Where the serving configuration came from (reported by `/readyz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// Local YAML files (standalone mode).
    File,
    /// The controller's snapshot stream (cluster mode).
    Controller,
    /// The on-disk snapshot cache (cluster mode, controller not reached yet).
    Cache,
}

impl ConfigSource {
    /// `file`, `controller` or `cache`.
    pub fn label(self) -> &'static str {
        match self {
            ConfigSource::File => "file",
            ConfigSource::Controller => "controller",
            ConfigSource::Cache => "cache",
        }
    }

    fn code(self) -> u8 {
        match self {
            ConfigSource::File => 1,
            ConfigSource::Controller => 2,
            ConfigSource::Cache => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(ConfigSource::File),
            2 => Some(ConfigSource::Controller),
            3 => Some(ConfigSource::Cache),
            _ => None,
        }
    }
}

/// Holds the current configuration.
#[derive(Default)]
pub struct ConfigStore {
    current: ArcSwapOption<RuntimeConfig>,
    source: AtomicU8,
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

    /// Records where the serving configuration came from.
    pub fn set_source(&self, source: ConfigSource) {
        self.source.store(source.code(), Ordering::Relaxed);
    }

    /// Where the serving configuration came from, once one was applied.
    pub fn source(&self) -> Option<ConfigSource> {
        ConfigSource::from_code(self.source.load(Ordering::Relaxed))
    }

    /// True once a configuration has been applied.
    pub fn is_ready(&self) -> bool {
        self.current.load().is_some()
    }
}
