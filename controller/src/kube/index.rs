//! [`Index`]: the pure state machine behind the Kubernetes source. It turns
//! watch events into an [`Inventory`] and says whether each event changed
//! anything the renderer reads.
//!
//! Status-only updates (our own status writes) change neither the spec nor
//! `metadata.generation`, labels or annotations: they are stored, so the
//! next pushed inventory carries the fresh status, but they do not count as
//! a change, so they never trigger a new render or status pass.

use std::collections::{BTreeMap, BTreeSet};

use ::kube::runtime::watcher::Event;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use switchboard_api::{AIBackend, AIRoute, Inventory, Object, ObjectKind};

use crate::status::refs::{self, Target};

/// Where one watch looks: one namespace, or all of them (`None`).
pub type Scope = Option<String>;

/// (namespace, name) of a Secret.
pub type SecretKey = (String, String);

/// The objects seen so far and the initial lists in progress.
#[derive(Default)]
pub struct Index {
    inventory: Inventory,
    /// Objects received during a (re-)list, per (kind, scope).
    listing: BTreeMap<(ObjectKind, Scope), Vec<Object>>,
    /// Scopes whose first list is complete.
    listed: BTreeSet<(ObjectKind, Scope)>,
    /// Secrets whose first watch result arrived.
    secrets_seen: BTreeSet<SecretKey>,
}

impl Index {
    /// The current inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Applies one AIBackend watch event for `scope`; returns whether the
    /// inventory changed in a way the renderer sees.
    pub fn backend_event(&mut self, scope: &Scope, event: Event<AIBackend>) -> bool {
        self.event(
            ObjectKind::Backend,
            scope,
            event.modify(|b| trim(&mut b.metadata)),
            Object::Backend,
        )
    }

    /// Applies one AIRoute watch event for `scope`; see [`Index::backend_event`].
    pub fn route_event(&mut self, scope: &Scope, event: Event<AIRoute>) -> bool {
        self.event(
            ObjectKind::Route,
            scope,
            event.modify(|r| trim(&mut r.metadata)),
            Object::Route,
        )
    }

    /// Records the data of Secret `key` (`None`: it does not exist); returns
    /// whether it changed.
    pub fn secret(&mut self, key: &SecretKey, data: Option<BTreeMap<String, Vec<u8>>>) -> bool {
        self.secrets_seen.insert(key.clone());
        let (ns, name) = key;
        let before = self.inventory.secret(ns, name).cloned();
        if before == data {
            return false;
        }
        match data {
            Some(data) => {
                self.inventory.upsert(Object::Secret {
                    namespace: ns.clone(),
                    name: name.clone(),
                    data,
                });
            }
            None => {
                self.inventory.remove(ObjectKind::Secret, ns, name);
            }
        }
        true
    }

    /// Forgets Secret `key` (no longer referenced).
    pub fn forget_secret(&mut self, key: &SecretKey) {
        self.secrets_seen.remove(key);
        self.inventory.remove(ObjectKind::Secret, &key.0, &key.1);
    }

    /// Whether every scope in `scopes` finished its first list for both
    /// kinds and every referenced Secret has been looked up.
    pub fn is_synced(&self, scopes: &[Scope]) -> bool {
        self.is_listed(scopes) && self.secrets_pending() == 0
    }

    /// Whether every scope in `scopes` finished its first list for both kinds.
    pub fn is_listed(&self, scopes: &[Scope]) -> bool {
        scopes.iter().all(|s| {
            self.listed.contains(&(ObjectKind::Backend, s.clone()))
                && self.listed.contains(&(ObjectKind::Route, s.clone()))
        })
    }

    /// How many referenced Secrets have not been looked up yet.
    pub fn secrets_pending(&self) -> usize {
        self.secret_refs()
            .iter()
            .filter(|k| !self.secrets_seen.contains(*k))
            .count()
    }

    /// Every Secret referenced by an AIBackend or AIRoute.
    pub fn secret_refs(&self) -> BTreeSet<SecretKey> {
        let backends = self
            .inventory
            .backends()
            .map(|(ns, _, b)| (ns, refs::backend_refs(&b.spec)));
        let routes = self
            .inventory
            .routes()
            .map(|(ns, _, r)| (ns, refs::route_refs(&r.spec)));
        backends
            .chain(routes)
            .flat_map(|(ns, refs)| {
                refs.into_iter().filter_map(move |r| match r.target {
                    Target::Secret { name, .. } => Some((ns.to_string(), name)),
                    Target::Backend(_) => None,
                })
            })
            .collect()
    }

    fn event<K>(
        &mut self,
        kind: ObjectKind,
        scope: &Scope,
        event: Event<K>,
        wrap: fn(K) -> Object,
    ) -> bool {
        let slot = (kind, scope.clone());
        match event {
            Event::Apply(obj) => self.apply(wrap(obj)),
            Event::Delete(obj) => {
                let obj = wrap(obj);
                self.inventory.remove(kind, obj.namespace(), obj.name())
            }
            Event::Init => {
                self.listing.insert(slot, Vec::new());
                false
            }
            Event::InitApply(obj) => {
                self.listing.entry(slot).or_default().push(wrap(obj));
                false
            }
            Event::InitDone => {
                let objects = self.listing.remove(&slot).unwrap_or_default();
                self.listed.insert(slot);
                self.reset(kind, scope, objects)
            }
        }
    }

    /// Replaces every object of `kind` in `scope` by `objects`.
    fn reset(&mut self, kind: ObjectKind, scope: &Scope, objects: Vec<Object>) -> bool {
        let keep: BTreeSet<(String, String)> = objects
            .iter()
            .map(|o| (o.namespace().to_string(), o.name().to_string()))
            .collect();
        let present: Vec<(String, String)> = match kind {
            ObjectKind::Backend => self
                .inventory
                .backends()
                .map(|(ns, n, _)| (ns.to_string(), n.to_string()))
                .collect(),
            _ => self
                .inventory
                .routes()
                .map(|(ns, n, _)| (ns.to_string(), n.to_string()))
                .collect(),
        };
        let mut changed = false;
        for (ns, name) in present {
            let in_scope = scope.as_ref().is_none_or(|s| *s == ns);
            if in_scope && !keep.contains(&(ns.clone(), name.clone())) {
                changed |= self.inventory.remove(kind, &ns, &name);
            }
        }
        for o in objects {
            changed |= self.apply(o);
        }
        changed
    }

    /// Stores `obj`; returns whether it differs in meaning from what was stored.
    fn apply(&mut self, obj: Object) -> bool {
        let before = self
            .inventory
            .get(obj.kind_enum(), obj.namespace(), obj.name());
        let changed = match (&before, &obj) {
            (Some(Object::Backend(a)), Object::Backend(b)) => {
                !same_meta(&a.metadata, &b.metadata) || a.spec != b.spec
            }
            (Some(Object::Route(a)), Object::Route(b)) => {
                !same_meta(&a.metadata, &b.metadata) || a.spec != b.spec
            }
            _ => true,
        };
        self.inventory.upsert(obj);
        changed
    }
}

/// Metadata that matters: identity, generation, labels and annotations
/// (not resourceVersion, managedFields or status).
fn same_meta(a: &ObjectMeta, b: &ObjectMeta) -> bool {
    a.uid == b.uid
        && a.generation == b.generation
        && a.labels == b.labels
        && a.annotations == b.annotations
}

/// Drops what the controller never reads, to save memory.
fn trim(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The decoded data of a Secret (`stringData` wins over `data`).
pub fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

#[cfg(test)]
mod tests;
