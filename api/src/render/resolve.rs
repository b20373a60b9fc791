//! Fail-closed rendering, one object at a time ([`resolve`]).
//!
//! Every AIBackend, AITeam and AIRoute is rendered on its own (backends and
//! teams first: routes use what is served of them). What the snapshot holds
//! for each ([`Served`]):
//!
//! 1. Its **current** spec, when that renders cleanly (with the current
//!    Secrets and, for a route, the backends that are served) and, for a
//!    route, every (hostname, path prefix) it claims is allowed by the
//!    [`ClaimPolicy`]. It becomes the object's last accepted spec. AITeam
//!    references that cannot be used do not refuse a route: they are left
//!    out and reported as soft problems ([`Outcome::degraded`]).
//! 2. Otherwise its **last accepted** spec ([`LastAccepted`]), rendered with
//!    the current Secrets and backends, when that renders cleanly. So routes
//!    using a backend whose new generation is broken keep working on the
//!    backend's last accepted version.
//! 3. Otherwise, for a route that was accepted before, an **unavailable**
//!    placeholder on the hostnames and path prefix of its last accepted spec:
//!    the data plane answers 503 there, so traffic never falls through to a
//!    less specific route. A backend in this state is left out (the routes
//!    using it become placeholders in turn); so is a team (the routes using
//!    it are served without it).
//! 4. Otherwise (never accepted) **nothing**.
//!
//! Then conflicting claims are resolved among the routes served so far
//! ([`super::claims::resolve_conflicts`]): a route serves only the claims it
//! holds; one that lost every claim is not served. A deleted object is gone.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_proto::{self as pb, Snapshot};

use super::aiteam::{ServedTeams, SoftProblem};
use super::claims::{Claim, ClaimPolicy, Contender, LostClaim, claims, resolve_conflicts};
use super::{
    RenderOptions, content_version, render_backend_spec, render_route_spec, render_team_spec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::inventory::{Inventory, ObjectKey, ObjectKind};
use crate::problem::{Problem, Problems};
use crate::v1alpha1::{AIBackendSpec, AIRouteSpec, AITeamSpec, LastAcceptedStatus, ResourceStatus};

/// An accepted spec.
#[allow(clippy::large_enum_variant)] // one per object; never moved in bulk
#[derive(Clone, Debug, PartialEq)]
pub enum AcceptedSpec {
    /// Of an AIBackend.
    Backend(AIBackendSpec),
    /// Of an AIRoute.
    Route(AIRouteSpec),
    /// Of an AITeam.
    Team(AITeamSpec),
}

/// The last accepted generation of an object and its spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    /// Its `metadata.generation` (`None` outside Kubernetes).
    pub generation: Option<i64>,
    /// Its spec.
    pub spec: AcceptedSpec,
}

impl Accepted {
    /// `status.lastAccepted` for this.
    pub fn to_status(&self) -> LastAcceptedStatus {
        let spec = match &self.spec {
            AcceptedSpec::Backend(s) => serde_json::to_value(s),
            AcceptedSpec::Route(s) => serde_json::to_value(s),
            AcceptedSpec::Team(s) => serde_json::to_value(s),
        };
        LastAcceptedStatus {
            generation: self.generation.unwrap_or(0),
            // Serializing a spec (plain data) cannot fail.
            spec: spec.unwrap_or_default(),
        }
    }

    /// Reads `status.lastAccepted` of an object of `kind`; `None` when it is
    /// absent or no longer decodes.
    pub fn from_status(kind: ObjectKind, status: Option<&ResourceStatus>) -> Option<Self> {
        let last = status?.last_accepted.as_ref()?;
        let spec = match kind {
            ObjectKind::Backend => {
                AcceptedSpec::Backend(serde_json::from_value(last.spec.clone()).ok()?)
            }
            ObjectKind::Route => {
                AcceptedSpec::Route(serde_json::from_value(last.spec.clone()).ok()?)
            }
            ObjectKind::Team => AcceptedSpec::Team(serde_json::from_value(last.spec.clone()).ok()?),
            ObjectKind::Secret => return None,
        };
        Some(Self {
            generation: Some(last.generation),
            spec,
        })
    }
}

/// The last accepted spec of every object that has one.
pub type LastAccepted = BTreeMap<ObjectKey, Accepted>;

/// The last accepted specs recorded in the objects' statuses
/// (`status.lastAccepted`, Kubernetes mode).
pub fn last_accepted_from_status(inv: &Inventory) -> LastAccepted {
    let backends = inv.backends().map(|(ns, n, b)| {
        (
            (ObjectKind::Backend, ns.to_string(), n.to_string()),
            b.status.as_ref(),
        )
    });
    let routes = inv.routes().map(|(ns, n, r)| {
        (
            (ObjectKind::Route, ns.to_string(), n.to_string()),
            r.status.as_ref(),
        )
    });
    let teams = inv.teams().map(|(ns, n, t)| {
        (
            (ObjectKind::Team, ns.to_string(), n.to_string()),
            t.status.as_ref().map(|s| &s.resource),
        )
    });
    let undecodable = inv.undecodable().map(|u| {
        (
            (
                u.kind,
                u.metadata.namespace.clone().unwrap_or_default(),
                u.metadata.name.clone().unwrap_or_default(),
            ),
            u.status.as_ref(),
        )
    });
    backends
        .chain(routes)
        .chain(teams)
        .chain(undecodable)
        .filter_map(|(key, status)| Some((key.clone(), Accepted::from_status(key.0, status)?)))
        .collect()
}

/// What the snapshot holds for one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Its current generation.
    Current {
        /// The generation.
        generation: Option<i64>,
    },
    /// Its last accepted generation (the current one is refused).
    LastAccepted {
        /// The generation.
        generation: Option<i64>,
    },
    /// A route placeholder answering 503 on the claims of its last accepted
    /// generation, which can no longer be rendered.
    Unavailable {
        /// The last accepted generation.
        generation: Option<i64>,
    },
    /// Nothing.
    NotServed,
}

/// How one object was resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The current `metadata.generation`.
    pub generation: Option<i64>,
    /// Problems of the current generation (the decode error of an object
    /// that does not decode).
    pub problems: Vec<Problem>,
    /// Whether the object did not decode.
    pub undecodable: bool,
    /// Claims of the current generation the claim policy does not allow.
    pub not_allowed: Vec<Problem>,
    /// Claims lost to routes that hold them.
    pub lost: Vec<LostClaim>,
    /// Why the last accepted generation could not be rendered either, when
    /// it was tried and failed.
    pub last_accepted_problems: Vec<Problem>,
    /// What the snapshot holds.
    pub served: Served,
    /// The object's last accepted spec after this render: the current one
    /// when it was accepted, else the previous one.
    pub accepted: Option<Accepted>,
    /// Problems that do not stop it from being served: for a route, the
    /// AITeam references it serves without; for an AITeam, what the routes
    /// referencing it could not use of it.
    pub degraded: Vec<SoftProblem>,
    /// For an AITeam: the ids (`namespace/name`) of the routes in the
    /// snapshot that serve it, sorted.
    pub used_by: Vec<String>,
}

impl Outcome {
    /// Whether the current generation is accepted (and so is served).
    pub fn is_accepted(&self) -> bool {
        matches!(self.served, Served::Current { .. })
            && self.not_allowed.is_empty()
            && self.lost.is_empty()
    }
}

/// The result of [`resolve`].
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    /// The snapshot; see the module docs for what it holds.
    pub snapshot: Snapshot,
    /// How every AIBackend, AITeam and AIRoute was resolved.
    pub outcomes: BTreeMap<ObjectKey, Outcome>,
    /// Every problem of a current generation (spec, references, decoding,
    /// claim policy, conflicts), backends first.
    pub problems: Problems,
}

/// Resolves every object of `inv` (see the module docs).
pub fn resolve(
    inv: &Inventory,
    last: &LastAccepted,
    policy: &ClaimPolicy,
    opts: &RenderOptions<'_>,
) -> Resolution {
    let mut outcomes = BTreeMap::new();
    let mut backends = Vec::new();
    let no_unserved = BTreeSet::new();

    let typed = inv
        .backends()
        .map(|(ns, n, b)| (ns, n, &b.metadata, &b.spec));
    for (key, generation, current, problem) in objects(inv, ObjectKind::Backend, typed) {
        let (ns, name) = (&key.1, &key.2);
        let rendered = current.map(|s| render_backend_spec(inv, ns, name, s, opts, &no_unserved));
        let mut outcome = Outcome::new(generation, problem);
        match rendered {
            Some(Ok(b)) => {
                backends.push(b);
                outcome.served = Served::Current { generation };
                outcome.accepted = current.map(|s| Accepted {
                    generation,
                    spec: AcceptedSpec::Backend(s.clone()),
                });
            }
            other => {
                if let Some(Err(p)) = other {
                    outcome.problems = p;
                }
                let prev = last.get(&key);
                outcome.accepted = prev.cloned();
                if let Some(Accepted {
                    generation: g,
                    spec: AcceptedSpec::Backend(spec),
                }) = prev
                {
                    if current == Some(spec) {
                        // Same spec: it fails the same way.
                        outcome.last_accepted_problems = outcome.problems.clone();
                    } else {
                        match render_backend_spec(inv, ns, name, spec, opts, &no_unserved) {
                            Ok(b) => {
                                backends.push(b);
                                outcome.served = Served::LastAccepted { generation: *g };
                            }
                            Err(p) => outcome.last_accepted_problems = p,
                        }
                    }
                }
            }
        }
        outcomes.insert(key, outcome);
    }

    let unserved: BTreeSet<(String, String)> = outcomes
        .iter()
        .filter(|(_, o)| o.served == Served::NotServed)
        .map(|((_, ns, n), _)| (ns.clone(), n.clone()))
        .collect();

    // AITeams, each on its own: current spec, else the last accepted one.
    let mut teams = ServedTeams::new();
    let typed = inv.teams().map(|(ns, n, t)| (ns, n, &t.metadata, &t.spec));
    for (key, generation, current, problem) in objects(inv, ObjectKind::Team, typed) {
        let (ns, name) = (&key.1, &key.2);
        let mut outcome = Outcome::new(generation, problem);
        match current.map(|s| render_team_spec(inv, ns, name, s, opts)) {
            Some(Ok(t)) => {
                teams.insert((ns.clone(), name.clone()), t);
                outcome.served = Served::Current { generation };
                outcome.accepted = current.map(|s| Accepted {
                    generation,
                    spec: AcceptedSpec::Team(s.clone()),
                });
            }
            other => {
                if let Some(Err(p)) = other {
                    outcome.problems = p;
                }
                let prev = last.get(&key);
                outcome.accepted = prev.cloned();
                if let Some(Accepted {
                    generation: g,
                    spec: AcceptedSpec::Team(spec),
                }) = prev
                {
                    if current == Some(spec) {
                        outcome.last_accepted_problems = outcome.problems.clone();
                    } else {
                        match render_team_spec(inv, ns, name, spec, opts) {
                            Ok(t) => {
                                teams.insert((ns.clone(), name.clone()), t);
                                outcome.served = Served::LastAccepted { generation: *g };
                            }
                            Err(p) => outcome.last_accepted_problems = p,
                        }
                    }
                }
            }
        }
        outcomes.insert(key, outcome);
    }

    // Routes: the candidate rendering of each, before conflicts.
    let mut candidates: BTreeMap<ObjectKey, (pb::Route, Vec<Claim>)> = BTreeMap::new();
    let typed = inv.routes().map(|(ns, n, r)| (ns, n, &r.metadata, &r.spec));
    for (key, generation, current, problem) in objects(inv, ObjectKind::Route, typed) {
        let (ns, name) = (&key.1, &key.2);
        let mut outcome = Outcome::new(generation, problem);
        let mut rendered = None;
        if let Some(spec) = current {
            outcome.not_allowed = not_allowed(ns, name, spec, policy);
            match render_route_spec(inv, ns, name, spec, opts, &unserved, &teams) {
                Ok((r, soft)) if outcome.not_allowed.is_empty() => {
                    outcome.degraded = soft;
                    rendered = Some(r);
                }
                Ok(_) => {}
                Err(p) => outcome.problems = p,
            }
        }
        if let (Some(r), Some(spec)) = (rendered, current) {
            outcome.served = Served::Current { generation };
            outcome.accepted = Some(Accepted {
                generation,
                spec: AcceptedSpec::Route(spec.clone()),
            });
            candidates.insert(key.clone(), (r, claims(spec)));
        } else {
            let prev = last.get(&key);
            outcome.accepted = prev.cloned();
            if let Some(Accepted {
                generation: g,
                spec: AcceptedSpec::Route(spec),
            }) = prev
            {
                let allowed: Vec<Claim> = claims(spec)
                    .into_iter()
                    .filter(|c| policy.allows(ns, c))
                    .collect();
                let attempt = if current == Some(spec) && outcome.not_allowed.is_empty() {
                    Err(outcome.problems.clone())
                } else {
                    render_route_spec(inv, ns, name, spec, opts, &unserved, &teams)
                };
                let route = match attempt {
                    Ok((r, soft)) => {
                        outcome.served = Served::LastAccepted { generation: *g };
                        outcome.degraded = soft;
                        r
                    }
                    Err(p) => {
                        outcome.last_accepted_problems = p;
                        outcome.served = Served::Unavailable { generation: *g };
                        placeholder(ns, name, spec)
                    }
                };
                if allowed.is_empty() {
                    outcome.served = Served::NotServed;
                } else {
                    candidates.insert(key.clone(), (route, allowed));
                }
            }
        }
        outcomes.insert(key, outcome);
    }

    // Conflicts among the routes served so far.
    let contenders: Vec<Contender> = candidates
        .iter()
        .map(|(key, (_, claims))| Contender {
            key: (key.1.clone(), key.2.clone()),
            created: created(inv, key),
            claims: claims.clone(),
        })
        .collect();
    let lost = resolve_conflicts(&contenders);
    let mut routes = Vec::new();
    for (key, (route, claims)) in candidates {
        let lost_here = lost
            .get(&(key.1.clone(), key.2.clone()))
            .cloned()
            .unwrap_or_default();
        let kept: Vec<Claim> = claims
            .into_iter()
            .filter(|c| !lost_here.iter().any(|l| &l.claim == c))
            .collect();
        if let Some(o) = outcomes.get_mut(&key) {
            if !lost_here.is_empty() && matches!(o.served, Served::Current { .. }) {
                // Not accepted: keep the previous last accepted spec.
                o.accepted = last.get(&key).cloned();
            }
            if kept.is_empty() {
                o.served = Served::NotServed;
            }
            o.lost = lost_here;
        }
        if let Some(r) = narrow(route, &kept) {
            routes.push(r);
        }
    }

    // Which routes serve each AITeam, and what they could not use of it.
    let mut team_notes: BTreeMap<ObjectKey, (Vec<String>, Vec<SoftProblem>)> = BTreeMap::new();
    for r in &routes {
        for t in r.teams.iter().flat_map(|p| &p.teams) {
            if let Some((ns, name)) = t.resource.split_once('/') {
                let key = (ObjectKind::Team, ns.to_string(), name.to_string());
                team_notes.entry(key).or_default().0.push(r.id.clone());
            }
        }
    }
    let served_routes: BTreeSet<&str> = routes.iter().map(|r| r.id.as_str()).collect();
    for ((kind, ns, name), o) in &outcomes {
        if *kind != ObjectKind::Route || !served_routes.contains(format!("{ns}/{name}").as_str()) {
            continue;
        }
        for soft in &o.degraded {
            if let Some((tns, tname)) = &soft.team {
                let key = (ObjectKind::Team, tns.clone(), tname.clone());
                team_notes.entry(key).or_default().1.push(soft.clone());
            }
        }
    }
    for (key, (used_by, degraded)) in team_notes {
        if let Some(o) = outcomes.get_mut(&key) {
            o.used_by = used_by;
            o.used_by.sort();
            o.used_by.dedup();
            o.degraded = degraded;
        }
    }

    let mut problems = Problems::new();
    for ((kind, ns, name), o) in &outcomes {
        let resource = format!("{} {ns}/{name}", kind.name());
        problems.extend(o.problems.iter().cloned());
        problems.extend(o.not_allowed.iter().cloned());
        for l in &o.lost {
            problems.push(Problem::new(
                resource.clone(),
                claim_path(&l.claim),
                conflict_message(l),
            ));
        }
    }
    backends.sort_by(|a, b| a.id.cmp(&b.id));
    routes.sort_by(|a, b| a.id.cmp(&b.id));
    let mut snapshot = Snapshot {
        version: String::new(),
        backends,
        routes,
    };
    snapshot.version = content_version(&snapshot);
    Resolution {
        snapshot,
        outcomes,
        problems,
    }
}

/// The message of a lost claim.
pub fn conflict_message(l: &LostClaim) -> String {
    format!(
        "{} is already claimed by AIRoute {}/{}, which takes precedence (oldest creationTimestamp first, then namespace/name)",
        l.claim, l.winner.0, l.winner.1
    )
}

fn claim_path(claim: &Claim) -> &'static str {
    if claim.host.is_some() {
        "spec.hostnames"
    } else {
        "spec.pathPrefix"
    }
}

impl Outcome {
    fn new(generation: Option<i64>, problem: Option<Problem>) -> Self {
        Self {
            generation,
            undecodable: problem.is_some(),
            problems: problem.into_iter().collect(),
            not_allowed: Vec::new(),
            lost: Vec::new(),
            last_accepted_problems: Vec::new(),
            served: Served::NotServed,
            accepted: None,
            degraded: Vec::new(),
            used_by: Vec::new(),
        }
    }
}

/// Every object of `kind` (its decoded ones are `typed`), decodable or
/// not, in (namespace, name) order: key, generation, spec (`None` when it
/// did not decode) and decode error.
#[allow(clippy::type_complexity)]
fn objects<'a, S: 'a>(
    inv: &'a Inventory,
    kind: ObjectKind,
    typed: impl Iterator<Item = (&'a str, &'a str, &'a ObjectMeta, &'a S)>,
) -> Vec<(ObjectKey, Option<i64>, Option<&'a S>, Option<Problem>)> {
    let mut out: Vec<_> = typed
        .map(|(ns, n, meta, spec)| {
            (
                (kind, ns.to_string(), n.to_string()),
                meta.generation,
                Some(spec),
                None,
            )
        })
        .collect();
    out.extend(inv.undecodable().filter(|u| u.kind == kind).map(|u| {
        (
            (
                kind,
                u.metadata.namespace.clone().unwrap_or_default(),
                u.metadata.name.clone().unwrap_or_default(),
            ),
            u.metadata.generation,
            None,
            Some(u.error.clone()),
        )
    }));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn created(
    inv: &Inventory,
    key: &ObjectKey,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    match inv.route(&key.1, &key.2) {
        Some(r) => r.metadata.creation_timestamp.clone(),
        None => inv
            .undecodable_object(key.0, &key.1, &key.2)
            .and_then(|u| u.metadata.creation_timestamp.clone()),
    }
}

/// The claims of `spec` the policy refuses, as problems.
fn not_allowed(ns: &str, name: &str, spec: &AIRouteSpec, policy: &ClaimPolicy) -> Vec<Problem> {
    claims(spec)
        .into_iter()
        .filter(|c| !policy.allows(ns, c))
        .map(|c| {
            let rules = policy.rules_for(ns);
            let allowed = if rules.is_empty() {
                "no --route-claim rule names this namespace".to_string()
            } else {
                format!("allowed: {}", rules.join(", "))
            };
            Problem::new(
                format!("AIRoute {ns}/{name}"),
                claim_path(&c),
                format!("namespace {ns:?} may not claim {c} ({allowed})"),
            )
        })
        .collect()
}

/// The 503 placeholder of a route whose last accepted spec cannot be served.
fn placeholder(ns: &str, name: &str, spec: &AIRouteSpec) -> pb::Route {
    pb::Route {
        id: format!("{ns}/{name}"),
        path_prefix: spec.path_prefix.clone(),
        hostnames: spec.hostnames.clone(),
        unavailable: format!(
            "the route {ns}/{name} is unavailable: its configuration cannot be served right now (see the AIRoute's status)"
        ),
        ..Default::default()
    }
}

/// `route` serving only the claims in `kept` (`None` when there are none).
fn narrow(mut route: pb::Route, kept: &[Claim]) -> Option<pb::Route> {
    if kept.is_empty() {
        return None;
    }
    if !route.hostnames.is_empty() {
        let prefix = route.path_prefix.clone();
        route
            .hostnames
            .retain(|h| kept.contains(&Claim::new(Some(h), &prefix)));
    }
    Some(route)
}

#[cfg(test)]
mod tests;
