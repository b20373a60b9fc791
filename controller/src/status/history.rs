//! [`VersionHistory`]: what every recent snapshot version held for each
//! object (its current generation, its last accepted one, or a 503
//! placeholder), so `Programmed` can tell whether a data plane's version
//! serves what the object should serve now.

use std::collections::{BTreeMap, VecDeque};

use switchboard_api::ObjectKey;
use switchboard_api::render::Served;

/// How many versions are remembered by default.
pub const DEFAULT_CAPACITY: usize = 64;

/// What each version served, for the most recent versions (oldest dropped first).
#[derive(Clone, Debug)]
pub struct VersionHistory {
    capacity: usize,
    order: VecDeque<String>,
    versions: BTreeMap<String, BTreeMap<ObjectKey, Served>>,
}

impl Default for VersionHistory {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl VersionHistory {
    /// An empty history remembering at most `capacity` versions (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            versions: BTreeMap::new(),
        }
    }

    /// Records what `version` serves for each object. The same content
    /// rendered again from newer generations replaces the entry.
    pub fn record(&mut self, version: &str, served: BTreeMap<ObjectKey, Served>) {
        if self.versions.insert(version.to_string(), served).is_some() {
            self.order.retain(|v| v != version);
        }
        self.order.push_back(version.to_string());
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.versions.remove(&old);
            }
        }
    }

    /// Whether `version` serves `served` for `key`.
    pub fn contains(&self, version: &str, key: &ObjectKey, served: &Served) -> bool {
        self.versions.get(version).and_then(|g| g.get(key)) == Some(served)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_api::ObjectKind;

    fn served(generation: i64) -> BTreeMap<ObjectKey, Served> {
        BTreeMap::from([(
            key(),
            Served::Current {
                generation: Some(generation),
            },
        )])
    }

    fn key() -> ObjectKey {
        (ObjectKind::Backend, "ns".to_string(), "a".to_string())
    }

    fn current(generation: i64) -> Served {
        Served::Current {
            generation: Some(generation),
        }
    }

    #[test]
    fn same_version_from_newer_generation_replaces_and_old_versions_expire() {
        let mut h = VersionHistory::with_capacity(2);
        h.record("v1", served(1));
        assert!(h.contains("v1", &key(), &current(1)));
        h.record("v1", served(2));
        assert!(h.contains("v1", &key(), &current(2)) && !h.contains("v1", &key(), &current(1)));
        h.record("v2", served(3));
        h.record("v3", served(4));
        assert!(!h.contains("v1", &key(), &current(2)), "v1 expired");
        assert!(h.contains("v2", &key(), &current(3)) && h.contains("v3", &key(), &current(4)));
        let last = Served::LastAccepted {
            generation: Some(4),
        };
        assert!(
            !h.contains("v3", &key(), &last),
            "serving a generation as the last accepted is not the same"
        );
    }
}
