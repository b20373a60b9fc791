//! [`Inventory`]: every AIBackend, AIRoute, AITeam and Secret the renderer sees,
//! keyed by (kind, namespace, name).

use std::collections::BTreeMap;
use std::fmt;

use crate::load::{Object, Undecodable};
use crate::problem::{Problem, Problems};
use crate::v1alpha1::{AIBackend, AIRoute, AITeam};

/// The kinds an [`Inventory`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// `AIBackend`.
    Backend,
    /// `AIRoute`.
    Route,
    /// `AITeam`.
    Team,
    /// `v1` Secret.
    Secret,
}

type Key = (String, String);

/// (kind, namespace, name) of one object.
pub type ObjectKey = (ObjectKind, String, String);

impl ObjectKind {
    /// The Kubernetes kind: `AIBackend`, `AIRoute`, `AITeam` or `Secret`.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Backend => "AIBackend",
            ObjectKind::Route => "AIRoute",
            ObjectKind::Team => "AITeam",
            ObjectKind::Secret => "Secret",
        }
    }
}

/// The objects to render. Iteration is always in (namespace, name) order,
/// so rendering does not depend on the order objects were added in.
#[derive(Clone, Default)]
pub struct Inventory {
    backends: BTreeMap<Key, AIBackend>,
    routes: BTreeMap<Key, AIRoute>,
    teams: BTreeMap<Key, AITeam>,
    secrets: BTreeMap<Key, BTreeMap<String, Vec<u8>>>,
    /// AIBackends, AIRoutes and AITeams that did not decode, by kind and key.
    undecodable: BTreeMap<(ObjectKind, Key), Undecodable>,
}

impl Inventory {
    /// Adds objects. An object whose (kind, namespace, name) is already
    /// present is a problem naming both occurrences; the first one is kept
    /// and the rest are still added.
    pub fn extend(&mut self, objects: Vec<Object>) -> Result<(), Problems> {
        let mut problems = Problems::new();
        for object in objects {
            if let Some(existing) = self.get(object.kind_enum(), object.namespace(), object.name())
            {
                let first = existing.source().map(str::to_string);
                let message = match (first.as_deref(), object.source()) {
                    (Some(a), Some(b)) => format!("defined twice: in {a} and in {b}"),
                    (Some(a), None) | (None, Some(a)) => format!("defined twice (one in {a})"),
                    (None, None) => "defined twice".to_string(),
                };
                problems.push(Problem::new(object.describe(), "metadata.name", message));
                continue;
            }
            self.upsert(object);
        }
        problems.into_result(())
    }

    /// Adds or replaces one object; returns whether it replaced one.
    /// An object that did not decode replaces the decoded one of the same
    /// kind and name, and the other way round.
    pub fn upsert(&mut self, object: Object) -> bool {
        let key = (object.namespace().to_string(), object.name().to_string());
        let kind = object.kind_enum();
        let was_undecodable = self.undecodable.remove(&(kind, key.clone())).is_some();
        let replaced = match object {
            Object::Backend(b) => self.backends.insert(key, b).is_some(),
            Object::Route(r) => self.routes.insert(key, r).is_some(),
            Object::Team(t) => self.teams.insert(key, t).is_some(),
            Object::Secret { data, .. } => self.secrets.insert(key, data).is_some(),
            Object::Undecodable(u) => {
                let typed = match kind {
                    ObjectKind::Backend => self.backends.remove(&key).is_some(),
                    ObjectKind::Route => self.routes.remove(&key).is_some(),
                    ObjectKind::Team => self.teams.remove(&key).is_some(),
                    ObjectKind::Secret => self.secrets.remove(&key).is_some(),
                };
                self.undecodable.insert((kind, key), *u);
                typed
            }
        };
        replaced || was_undecodable
    }

    /// Removes one object; returns whether it was present.
    pub fn remove(&mut self, kind: ObjectKind, namespace: &str, name: &str) -> bool {
        let key = (namespace.to_string(), name.to_string());
        let undecodable = self.undecodable.remove(&(kind, key.clone())).is_some();
        let typed = match kind {
            ObjectKind::Backend => self.backends.remove(&key).is_some(),
            ObjectKind::Route => self.routes.remove(&key).is_some(),
            ObjectKind::Team => self.teams.remove(&key).is_some(),
            ObjectKind::Secret => self.secrets.remove(&key).is_some(),
        };
        typed || undecodable
    }

    /// The object of `kind` named `namespace/name`, if present.
    pub fn get(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<Object> {
        let key = (namespace.to_string(), name.to_string());
        if let Some(u) = self.undecodable.get(&(kind, key.clone())) {
            return Some(Object::Undecodable(Box::new(u.clone())));
        }
        match kind {
            ObjectKind::Backend => self.backends.get(&key).cloned().map(Object::Backend),
            ObjectKind::Route => self.routes.get(&key).cloned().map(Object::Route),
            ObjectKind::Team => self.teams.get(&key).cloned().map(Object::Team),
            ObjectKind::Secret => self.secrets.get(&key).map(|data| Object::Secret {
                namespace: namespace.to_string(),
                name: name.to_string(),
                data: data.clone(),
            }),
        }
    }

    /// Every backend with its (namespace, name), sorted.
    pub fn backends(&self) -> impl Iterator<Item = (&str, &str, &AIBackend)> {
        self.backends
            .iter()
            .map(|((ns, n), b)| (ns.as_str(), n.as_str(), b))
    }

    /// Every route with its (namespace, name), sorted.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str, &AIRoute)> {
        self.routes
            .iter()
            .map(|((ns, n), r)| (ns.as_str(), n.as_str(), r))
    }

    /// Every AITeam with its (namespace, name), sorted.
    pub fn teams(&self) -> impl Iterator<Item = (&str, &str, &AITeam)> {
        self.teams
            .iter()
            .map(|((ns, n), t)| (ns.as_str(), n.as_str(), t))
    }

    /// The AITeam `namespace/name`, if present.
    pub fn team(&self, namespace: &str, name: &str) -> Option<&AITeam> {
        self.teams.get(&(namespace.to_string(), name.to_string()))
    }

    /// The backend `namespace/name`, if present.
    pub fn backend(&self, namespace: &str, name: &str) -> Option<&AIBackend> {
        self.backends
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// The route `namespace/name`, if present.
    pub fn route(&self, namespace: &str, name: &str) -> Option<&AIRoute> {
        self.routes.get(&(namespace.to_string(), name.to_string()))
    }

    /// The data of Secret `namespace/name`, if present.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        self.secrets.get(&(namespace.to_string(), name.to_string()))
    }

    /// Every object that did not decode, sorted by kind, namespace and name.
    pub fn undecodable(&self) -> impl Iterator<Item = &Undecodable> {
        self.undecodable.values()
    }

    /// The undecodable object of `kind` named `namespace/name`, if present.
    pub fn undecodable_object(
        &self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
    ) -> Option<&Undecodable> {
        self.undecodable
            .get(&(kind, (namespace.to_string(), name.to_string())))
    }

    /// Whether an AIBackend `namespace/name` exists, decodable or not.
    pub fn backend_exists(&self, namespace: &str, name: &str) -> bool {
        self.backend(namespace, name).is_some()
            || self
                .undecodable_object(ObjectKind::Backend, namespace, name)
                .is_some()
    }

    /// Number of objects of every kind, undecodable ones included.
    pub fn len(&self) -> usize {
        self.backends.len()
            + self.routes.len()
            + self.teams.len()
            + self.secrets.len()
            + self.undecodable.len()
    }

    /// Whether the inventory holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Object {
    /// The object's [`ObjectKind`].
    pub fn kind_enum(&self) -> ObjectKind {
        match self {
            Object::Backend(_) => ObjectKind::Backend,
            Object::Route(_) => ObjectKind::Route,
            Object::Team(_) => ObjectKind::Team,
            Object::Secret { .. } => ObjectKind::Secret,
            Object::Undecodable(u) => u.kind,
        }
    }
}

/// Secret values never reach logs.
impl fmt::Debug for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inventory")
            .field("backends", &self.backends.keys().collect::<Vec<_>>())
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("teams", &self.teams.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("undecodable", &self.undecodable.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse_documents;

    const BACKEND: &str = "apiVersion: switchboard.dev/v1alpha1\nkind: AIBackend\nmetadata: {name: a}\nspec: {provider: Mock}\n";

    #[test]
    fn duplicate_names_both_sources() {
        let mut inv = Inventory::default();
        inv.extend(parse_documents(BACKEND, "one.yaml").unwrap())
            .unwrap();
        let err = inv
            .extend(parse_documents(BACKEND, "two.yaml").unwrap())
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("AIBackend default/a"), "{text}");
        assert!(
            text.contains("one.yaml (document 1)") && text.contains("two.yaml (document 1)"),
            "{text}"
        );
    }

    #[test]
    fn same_name_different_kind_or_namespace_is_fine() {
        let mut inv = Inventory::default();
        let other_ns = BACKEND.replace("{name: a}", "{name: a, namespace: team}");
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {apiKey: x}\n";
        inv.extend(
            parse_documents(&format!("{BACKEND}---\n{other_ns}---\n{secret}"), "f").unwrap(),
        )
        .unwrap();
        assert_eq!(inv.len(), 3);
        assert!(inv.remove(ObjectKind::Backend, "team", "a"));
        assert!(!inv.remove(ObjectKind::Backend, "team", "a"));
        assert_eq!(inv.len(), 2);
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut inv = Inventory::default();
        inv.upsert(Object::Secret {
            namespace: "default".into(),
            name: "s".into(),
            data: BTreeMap::from([("apiKey".into(), b"hunter2".to_vec())]),
        });
        assert!(!format!("{inv:?}").contains("hunter2"));
        let obj = inv.get(ObjectKind::Secret, "default", "s").unwrap();
        assert!(!format!("{obj:?}").contains("hunter2"));
    }
}
