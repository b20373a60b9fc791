//! [`VersionHistory`]: which generation of each object every recent
//! snapshot version was rendered from, so `Programmed` can tell whether a
//! data plane's version contains an object's current generation.

use std::collections::{BTreeMap, VecDeque};

use switchboard_api::{Inventory, ObjectKind};

/// (kind, namespace, name) of an AIBackend or AIRoute.
pub type ObjectKey = (ObjectKind, String, String);

/// How many versions are remembered by default.
pub const DEFAULT_CAPACITY: usize = 64;

/// Generations by object, for the most recent versions (oldest dropped first).
#[derive(Clone, Debug)]
pub struct VersionHistory {
    capacity: usize,
    order: VecDeque<String>,
    versions: BTreeMap<String, BTreeMap<ObjectKey, i64>>,
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

    /// Records that `version` was rendered from these object generations
    /// (see [`generations`]). The same content rendered again from newer
    /// generations replaces the entry.
    pub fn record(&mut self, version: &str, generations: BTreeMap<ObjectKey, i64>) {
        if self
            .versions
            .insert(version.to_string(), generations)
            .is_some()
        {
            self.order.retain(|v| v != version);
        }
        self.order.push_back(version.to_string());
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.versions.remove(&old);
            }
        }
    }

    /// Whether `version` was rendered from generation `generation` of `key`.
    pub fn contains(&self, version: &str, key: &ObjectKey, generation: i64) -> bool {
        self.versions.get(version).and_then(|g| g.get(key)) == Some(&generation)
    }
}

/// The generation of every AIBackend and AIRoute (0 when unset, as in
/// directory mode).
pub fn generations(inventory: &Inventory) -> BTreeMap<ObjectKey, i64> {
    let backends = inventory.backends().map(|(ns, n, b)| {
        (
            (ObjectKind::Backend, ns.to_string(), n.to_string()),
            b.metadata.generation.unwrap_or(0),
        )
    });
    let routes = inventory.routes().map(|(ns, n, r)| {
        (
            (ObjectKind::Route, ns.to_string(), n.to_string()),
            r.metadata.generation.unwrap_or(0),
        )
    });
    backends.chain(routes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_api::{AIBackend, Object};

    fn inv(generation: i64) -> Inventory {
        let mut b: AIBackend = serde_json::from_value(serde_json::json!({
            "apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
            "metadata": {"name": "a", "namespace": "ns", "generation": generation},
            "spec": {"provider": "Mock"}
        }))
        .unwrap();
        b.metadata.generation = Some(generation);
        let mut inv = Inventory::default();
        inv.upsert(Object::Backend(b));
        inv
    }

    #[test]
    fn same_version_from_newer_generation_replaces_and_old_versions_expire() {
        let key = (ObjectKind::Backend, "ns".to_string(), "a".to_string());
        let mut h = VersionHistory::with_capacity(2);
        h.record("v1", generations(&inv(1)));
        assert!(h.contains("v1", &key, 1));
        h.record("v1", generations(&inv(2)));
        assert!(h.contains("v1", &key, 2) && !h.contains("v1", &key, 1));
        h.record("v2", generations(&inv(3)));
        h.record("v3", generations(&inv(4)));
        assert!(!h.contains("v1", &key, 2), "v1 expired");
        assert!(h.contains("v2", &key, 3) && h.contains("v3", &key, 4));
    }
}
