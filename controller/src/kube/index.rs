//! [`Index`]: the pure state machine behind the Kubernetes source. It turns
//! watch events into an [`Inventory`], says whether each event changed
//! anything the renderer reads, and decides what may be published when.
//!
//! - **Each object is decoded on its own** ([`decode`]): the watches carry
//!   untyped objects, so one that does not decode into its type (a value
//!   the schema allows but this version does not know) becomes an
//!   [`Object::Undecodable`] with the error, and nothing else is affected.
//! - **Status-only updates** (our own status writes) change neither the spec
//!   nor `metadata.generation`, labels or annotations: they are stored, so
//!   the next published inventory carries the fresh status, but they do not
//!   count as a change, so they never trigger a new render or status pass.
//! - **Secrets**: every Secret referenced by a current spec, by a last
//!   accepted spec (`status.lastAccepted`) or by an object as last published
//!   is wanted ([`Index::wanted_secrets`]). The first publication waits until
//!   every scope is listed and every wanted Secret has been looked up
//!   ([`Index::ready_for_first_publish`]). Later, an object whose spec
//!   references a Secret not looked up yet is published as it was before
//!   (or not at all, if new) for at most [`SECRET_WAIT`] from the moment the
//!   reference appeared ([`Index::publishable`]); other objects are not held.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ::kube::api::DynamicObject;
use ::kube::runtime::watcher::Event;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use switchboard_api::render::{Accepted, AcceptedSpec};
use switchboard_api::v1alpha1::ResourceStatus;
use switchboard_api::{
    AIBackend, AIRoute, AITeam, Inventory, Object, ObjectKind, Problem, Undecodable,
};
use tokio::time::Instant;

use crate::status::refs::{self, Ref, Target};

/// How long an object referencing a newly referenced Secret is held back
/// while that Secret is looked up.
pub const SECRET_WAIT: Duration = Duration::from_secs(5);

/// The kinds watched in every scope.
pub const WATCHED_KINDS: [ObjectKind; 3] =
    [ObjectKind::Backend, ObjectKind::Route, ObjectKind::Team];

/// Where one watch looks: one namespace, or all of them (`None`).
pub type Scope = Option<String>;

/// (namespace, name) of a Secret.
pub type SecretKey = (String, String);

/// The objects seen so far, the initial lists in progress, and what was
/// last published.
#[derive(Default)]
pub struct Index {
    inventory: Inventory,
    /// Objects received during a (re-)list, per (kind, scope).
    listing: BTreeMap<(ObjectKind, Scope), Vec<Object>>,
    /// Scopes whose first list is complete.
    listed: BTreeSet<(ObjectKind, Scope)>,
    /// Secrets whose first watch result arrived.
    secrets_seen: BTreeSet<SecretKey>,
    /// When each wanted Secret became wanted.
    wanted_since: BTreeMap<SecretKey, Instant>,
    /// The inventory last published (`None` before the first publication).
    published: Option<Inventory>,
    /// When it was published.
    published_at: Option<Instant>,
}

/// Decodes one watched object of `kind` (AIBackend, AIRoute or AITeam); one that
/// does not decode is kept as [`Object::Undecodable`] with the error.
pub fn decode(kind: ObjectKind, obj: DynamicObject) -> Object {
    let mut meta = obj.metadata.clone();
    trim(&mut meta);
    let value = match serde_json::to_value(&obj) {
        Ok(v) => v,
        Err(e) => return undecodable(kind, meta, &obj, String::new(), e.to_string()),
    };
    let result = match kind {
        ObjectKind::Backend => {
            serde_path_to_error::deserialize::<_, AIBackend>(value).map(|mut b| {
                b.metadata = meta.clone();
                Object::Backend(b)
            })
        }
        ObjectKind::Team => serde_path_to_error::deserialize::<_, AITeam>(value).map(|mut t| {
            t.metadata = meta.clone();
            Object::Team(t)
        }),
        _ => serde_path_to_error::deserialize::<_, AIRoute>(value).map(|mut r| {
            r.metadata = meta.clone();
            Object::Route(r)
        }),
    };
    match result {
        Ok(o) => o,
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            undecodable(kind, meta, &obj, path, e.into_inner().to_string())
        }
    }
}

fn undecodable(
    kind: ObjectKind,
    metadata: ObjectMeta,
    obj: &DynamicObject,
    path: String,
    message: String,
) -> Object {
    let resource = format!(
        "{} {}/{}",
        kind.name(),
        metadata.namespace.as_deref().unwrap_or_default(),
        metadata.name.as_deref().unwrap_or_default()
    );
    let status = obj
        .data
        .get("status")
        .and_then(|s| serde_json::from_value::<ResourceStatus>(s.clone()).ok());
    Object::Undecodable(Box::new(Undecodable {
        kind,
        metadata,
        error: Problem::new(resource, path, message),
        status,
    }))
}

impl Index {
    /// The current inventory (everything seen).
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Applies one watch event of `kind` (AIBackend, AIRoute or AITeam) for
    /// `scope`; returns whether the inventory changed in a way the renderer
    /// sees.
    pub fn event(&mut self, kind: ObjectKind, scope: &Scope, event: Event<DynamicObject>) -> bool {
        let slot = (kind, scope.clone());
        match event {
            Event::Apply(obj) => self.apply(decode(kind, obj)),
            Event::Delete(obj) => {
                let obj = decode(kind, obj);
                self.inventory.remove(kind, obj.namespace(), obj.name())
            }
            Event::Init => {
                self.listing.insert(slot, Vec::new());
                false
            }
            Event::InitApply(obj) => {
                self.listing
                    .entry(slot)
                    .or_default()
                    .push(decode(kind, obj));
                false
            }
            Event::InitDone => {
                let objects = self.listing.remove(&slot).unwrap_or_default();
                self.listed.insert(slot);
                self.reset(kind, scope, objects)
            }
        }
    }

    /// Records the data of Secret `key` (`None`: it does not exist); returns
    /// whether it changed.
    pub fn secret(&mut self, key: &SecretKey, data: Option<BTreeMap<String, Vec<u8>>>) -> bool {
        let first = self.secrets_seen.insert(key.clone());
        let (ns, name) = key;
        let before = self.inventory.secret(ns, name).cloned();
        if before == data {
            // The first lookup of a missing Secret is news: held objects may go.
            return first;
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

    /// Forgets Secret `key` (no longer wanted).
    pub fn forget_secret(&mut self, key: &SecretKey) {
        self.secrets_seen.remove(key);
        self.wanted_since.remove(key);
        self.inventory.remove(ObjectKind::Secret, &key.0, &key.1);
    }

    /// Whether every scope in `scopes` finished its first list for every
    /// watched kind.
    pub fn is_listed(&self, scopes: &[Scope]) -> bool {
        scopes.iter().all(|s| {
            WATCHED_KINDS
                .iter()
                .all(|k| self.listed.contains(&(*k, s.clone())))
        })
    }

    /// Whether every scope is listed and every wanted Secret looked up.
    pub fn is_synced(&self, scopes: &[Scope]) -> bool {
        self.is_listed(scopes) && self.unseen_secrets().is_empty()
    }

    /// Whether the first inventory may be published: before it, nothing is
    /// published at all (see the module docs).
    pub fn ready_for_first_publish(&self, scopes: &[Scope]) -> bool {
        self.is_synced(scopes)
    }

    /// Whether an inventory was published already.
    pub fn published_once(&self) -> bool {
        self.published.is_some()
    }

    /// The wanted Secrets (as of the last [`Index::note_wanted`]) not looked
    /// up yet.
    pub fn unseen_secrets(&self) -> Vec<SecretKey> {
        self.wanted_since
            .keys()
            .filter(|k| !self.secrets_seen.contains(*k))
            .cloned()
            .collect()
    }

    /// Every Secret referenced by a current spec, a last accepted spec or
    /// an object as last published.
    pub fn wanted_secrets(&self) -> BTreeSet<SecretKey> {
        let mut out = secret_refs(&self.inventory);
        if let Some(p) = &self.published {
            out.extend(secret_refs(p));
        }
        out
    }

    /// Notes which Secrets are wanted, and when each became wanted (call
    /// after every change, with the time of the change; the checks of the
    /// hot path read what this noted instead of decoding every spec again).
    pub fn note_wanted(&mut self, now: Instant) {
        let wanted = self.wanted_secrets();
        self.wanted_since.retain(|k, _| wanted.contains(k));
        for k in wanted {
            self.wanted_since.entry(k).or_insert(now);
        }
    }

    /// Wanted Secrets not looked up yet whose wait has not run out at `now`.
    fn waiting_for(&self, now: Instant) -> BTreeSet<SecretKey> {
        self.unseen_secrets()
            .into_iter()
            .filter(|k| {
                self.wanted_since
                    .get(k)
                    .is_none_or(|since| now < *since + SECRET_WAIT)
            })
            .collect()
    }

    /// When the wait for a Secret not looked up yet runs out, if that is
    /// after the last publication (a publication is due then).
    pub fn next_wait_deadline(&self) -> Option<Instant> {
        let unseen: BTreeSet<SecretKey> = self.unseen_secrets().into_iter().collect();
        self.wanted_since
            .iter()
            .filter(|(k, _)| unseen.contains(*k))
            .map(|(_, since)| *since + SECRET_WAIT)
            .filter(|deadline| self.published_at.is_none_or(|p| *deadline > p))
            .min()
    }

    /// The inventory to publish at `now`: everything as seen, except that an
    /// AIBackend, AIRoute or AITeam whose current spec references a Secret still
    /// being looked up (within its wait) stays as last published, or is left
    /// out if it was never published.
    pub fn publishable(&self, now: Instant) -> Inventory {
        let waiting = self.waiting_for(now);
        let mut out = self.inventory.clone();
        if !waiting.is_empty() {
            self.hold(&mut out, &waiting);
        }
        // Secrets nothing published needs any more are not published.
        let needed = secret_refs(&out);
        let unneeded: Vec<SecretKey> = self
            .secrets_seen
            .iter()
            .filter(|k| !needed.contains(*k))
            .cloned()
            .collect();
        for (ns, name) in unneeded {
            out.remove(ObjectKind::Secret, &ns, &name);
        }
        out
    }

    /// Puts the objects of `out` that need a Secret in `waiting` back as
    /// last published (or removes them).
    fn hold(&self, out: &mut Inventory, waiting: &BTreeSet<SecretKey>) {
        let held: Vec<(ObjectKind, String, String)> = self
            .inventory
            .backends()
            .filter(|(ns, _, b)| needs(ns, &refs::backend_refs(&b.spec), waiting))
            .map(|(ns, n, _)| (ObjectKind::Backend, ns.to_string(), n.to_string()))
            .chain(
                self.inventory
                    .routes()
                    .filter(|(ns, _, r)| needs(ns, &refs::route_refs(ns, &r.spec), waiting))
                    .map(|(ns, n, _)| (ObjectKind::Route, ns.to_string(), n.to_string())),
            )
            .chain(
                self.inventory
                    .teams()
                    .filter(|(ns, _, t)| needs(ns, &refs::team_refs(&t.spec), waiting))
                    .map(|(ns, n, _)| (ObjectKind::Team, ns.to_string(), n.to_string())),
            )
            .collect();
        for (kind, ns, name) in held {
            match self
                .published
                .as_ref()
                .and_then(|p| p.get(kind, &ns, &name))
            {
                Some(before) => {
                    out.upsert(before);
                }
                None => {
                    out.remove(kind, &ns, &name);
                }
            }
        }
    }

    /// Records that `inventory` was published at `at`.
    pub fn mark_published(&mut self, inventory: Inventory, at: Instant) {
        self.published = Some(inventory);
        self.published_at = Some(at);
    }

    /// Replaces every object of `kind` in `scope` by `objects`.
    fn reset(&mut self, kind: ObjectKind, scope: &Scope, objects: Vec<Object>) -> bool {
        let keep: BTreeSet<(String, String)> = objects
            .iter()
            .map(|o| (o.namespace().to_string(), o.name().to_string()))
            .collect();
        let mut present: Vec<(String, String)> = match kind {
            ObjectKind::Backend => self
                .inventory
                .backends()
                .map(|(ns, n, _)| (ns.to_string(), n.to_string()))
                .collect(),
            ObjectKind::Team => self
                .inventory
                .teams()
                .map(|(ns, n, _)| (ns.to_string(), n.to_string()))
                .collect(),
            _ => self
                .inventory
                .routes()
                .map(|(ns, n, _)| (ns.to_string(), n.to_string()))
                .collect(),
        };
        present.extend(
            self.inventory
                .undecodable()
                .filter(|u| u.kind == kind)
                .map(|u| {
                    (
                        u.metadata.namespace.clone().unwrap_or_default(),
                        u.metadata.name.clone().unwrap_or_default(),
                    )
                }),
        );
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
            (Some(Object::Team(a)), Object::Team(b)) => {
                !same_meta(&a.metadata, &b.metadata) || a.spec != b.spec
            }
            (Some(Object::Undecodable(a)), Object::Undecodable(b)) => {
                !same_meta(&a.metadata, &b.metadata) || a.error != b.error
            }
            _ => true,
        };
        self.inventory.upsert(obj);
        changed
    }
}

/// Whether references `refs` of an object in `ns` include a Secret in `waiting`.
fn needs(ns: &str, refs: &[Ref], waiting: &BTreeSet<SecretKey>) -> bool {
    refs.iter().any(|r| match &r.target {
        Target::Secret { name, .. } => waiting.contains(&(ns.to_string(), name.clone())),
        Target::Backend(_) | Target::Team(..) => false,
    })
}

/// Every Secret referenced by an AIBackend, AIRoute or AITeam of `inv`, by its
/// current spec or by its last accepted spec (`status.lastAccepted`).
pub fn secret_refs(inv: &Inventory) -> BTreeSet<SecretKey> {
    let mut specs: Vec<(String, Vec<Ref>)> = Vec::new();
    for (ns, _, b) in inv.backends() {
        specs.push((ns.to_string(), refs::backend_refs(&b.spec)));
        if let Some(a) = Accepted::from_status(ObjectKind::Backend, b.status.as_ref()) {
            specs.push((ns.to_string(), accepted_refs(ns, &a)));
        }
    }
    for (ns, _, r) in inv.routes() {
        specs.push((ns.to_string(), refs::route_refs(ns, &r.spec)));
        if let Some(a) = Accepted::from_status(ObjectKind::Route, r.status.as_ref()) {
            specs.push((ns.to_string(), accepted_refs(ns, &a)));
        }
    }
    for (ns, _, t) in inv.teams() {
        specs.push((ns.to_string(), refs::team_refs(&t.spec)));
        let status = t.status.as_ref().map(|s| &s.resource);
        if let Some(a) = Accepted::from_status(ObjectKind::Team, status) {
            specs.push((ns.to_string(), accepted_refs(ns, &a)));
        }
    }
    for u in inv.undecodable() {
        if let Some(a) = Accepted::from_status(u.kind, u.status.as_ref()) {
            let ns = u.metadata.namespace.clone().unwrap_or_default();
            let refs = accepted_refs(&ns, &a);
            specs.push((ns, refs));
        }
    }
    specs
        .into_iter()
        .flat_map(|(ns, refs)| {
            refs.into_iter().filter_map(move |r| match r.target {
                Target::Secret { name, .. } => Some((ns.clone(), name)),
                Target::Backend(_) | Target::Team(..) => None,
            })
        })
        .collect()
}

fn accepted_refs(ns: &str, a: &Accepted) -> Vec<Ref> {
    match &a.spec {
        AcceptedSpec::Backend(s) => refs::backend_refs(s),
        AcceptedSpec::Route(s) => refs::route_refs(ns, s),
        AcceptedSpec::Team(s) => refs::team_refs(s),
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
