//! Pure status computation: the `Accepted`, `ResolvedRefs` and `Programmed`
//! conditions of every AIBackend and AIRoute, from the inventory, the
//! renderer's problems, the version history and the fleet of data planes.
//!
//! - `Accepted`: False/`Invalid` when the renderer reports a problem with the
//!   object that is not about a reference; the message names each field.
//! - `ResolvedRefs`: False/`BackendNotFound` or `SecretNotFound` when a
//!   problem sits at a reference's field path.
//! - `Programmed`: Unknown/`NoDataPlanes` with no data plane connected;
//!   False/`Rejected` when a data plane NACKed a version containing the
//!   object's current generation; True/`Programmed` when every connected data
//!   plane runs such a version; otherwise False/`Pending` (or `Invalid` when
//!   the object's own problems keep it out of the snapshot).
//!
//! `lastTransitionTime` only moves when a condition's status changes, and
//! statuses are compared without timestamps ([`same_ignoring_time`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use switchboard_api::conditions::{self, reason, status};
use switchboard_api::v1alpha1::ResourceStatus;
use switchboard_api::{ObjectKind, Problem};

use super::history::{ObjectKey, VersionHistory};
use super::inputs::StatusInputs;
use super::refs::{self, Ref, Target};

/// At most this many problems are spelled out in one message.
const MAX_LISTED: usize = 10;

/// One condition without its timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// `Accepted`, `ResolvedRefs` or `Programmed`.
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// A CamelCase reason from [`switchboard_api::conditions::reason`].
    pub reason: &'static str,
    /// What a human needs to know, naming the field at fault.
    pub message: String,
}

/// The kind name used in problems and events.
pub fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Backend => "AIBackend",
        ObjectKind::Route => "AIRoute",
        ObjectKind::Secret => "Secret",
    }
}

/// The three conditions of object `key` at `generation` whose references are `refs`.
pub fn desired_conditions(
    key: &ObjectKey,
    generation: i64,
    refs: &[Ref],
    inputs: &StatusInputs,
    history: &VersionHistory,
) -> [Desired; 3] {
    let (kind, ns, name) = key;
    let resource = format!("{} {ns}/{name}", kind_name(*kind));
    let own: Vec<&Problem> = inputs
        .problems
        .iter()
        .filter(|p| p.resource == resource)
        .collect();
    let (ref_problems, spec_problems): (Vec<&Problem>, Vec<&Problem>) = own
        .iter()
        .partition(|p| refs.iter().any(|r| refs::covers(&r.path, &p.path)));

    let accepted = if spec_problems.is_empty() {
        desired(
            conditions::ACCEPTED,
            status::TRUE,
            reason::VALID,
            "the spec is valid".to_string(),
        )
    } else {
        desired(
            conditions::ACCEPTED,
            status::FALSE,
            reason::INVALID,
            list(&spec_problems),
        )
    };

    let backend_missing = ref_problems.iter().any(|p| {
        refs.iter()
            .any(|r| matches!(r.target, Target::Backend(_)) && refs::covers(&r.path, &p.path))
    });
    let resolved = if ref_problems.is_empty() {
        desired(
            conditions::RESOLVED_REFS,
            status::TRUE,
            reason::RESOLVED,
            format!("all {} references resolved", refs.len()),
        )
    } else {
        let why = if backend_missing {
            reason::BACKEND_NOT_FOUND
        } else {
            reason::SECRET_NOT_FOUND
        };
        // A backend that exists but was left out for its own problems is
        // "not found" to the renderer; say what really happened.
        let explained: Vec<Problem> = ref_problems
            .iter()
            .map(|p| {
                let invalid_backend = refs.iter().find_map(|r| match &r.target {
                    Target::Backend(b)
                        if r.path == p.path && inputs.inventory.backend(ns, b).is_some() =>
                    {
                        Some(b)
                    }
                    _ => None,
                });
                match invalid_backend {
                    Some(b) => Problem::new(
                        p.resource.clone(),
                        p.path.clone(),
                        format!("AIBackend {b:?} exists but is not accepted (see its status)"),
                    ),
                    None => (*p).clone(),
                }
            })
            .collect();
        desired(
            conditions::RESOLVED_REFS,
            status::FALSE,
            why,
            list(&explained.iter().collect::<Vec<_>>()),
        )
    };

    let programmed = programmed(key, generation, !own.is_empty(), inputs, history);
    [accepted, resolved, programmed]
}

fn programmed(
    key: &ObjectKey,
    generation: i64,
    has_problems: bool,
    inputs: &StatusInputs,
    history: &VersionHistory,
) -> Desired {
    let d = |s, r, m| desired(conditions::PROGRAMMED, s, r, m);
    let connected = inputs.dataplanes.len();
    if connected == 0 {
        return d(
            status::UNKNOWN,
            reason::NO_DATA_PLANES,
            "no data plane is connected".to_string(),
        );
    }
    let (kind, ns, name) = key;
    let nack_resource = format!("{}/{ns}/{name}", kind_name(*kind));
    let mut rejections = Vec::new();
    for (id, dp) in &inputs.dataplanes {
        let Some(nack) = &dp.nack else { continue };
        if dp.acked_version.as_deref() == Some(nack.version.as_str())
            || !history.contains(&nack.version, key, generation)
        {
            continue;
        }
        let mine: Vec<&str> = nack
            .errors
            .iter()
            .filter(|e| e.resource == nack_resource)
            .map(|e| e.message.as_str())
            .collect();
        let why = if mine.is_empty() {
            let others: Vec<String> = nack
                .errors
                .iter()
                .map(|e| {
                    if e.resource.is_empty() {
                        e.message.clone()
                    } else {
                        format!("{}: {}", e.resource, e.message)
                    }
                })
                .collect();
            format!("because of other resources: {}", others.join("; "))
        } else {
            mine.join("; ")
        };
        rejections.push(format!(
            "data plane {id} rejected version {}: {why}",
            nack.version
        ));
    }
    if !rejections.is_empty() {
        return d(status::FALSE, reason::REJECTED, rejections.join("; "));
    }
    let mut versions: Vec<&str> = Vec::new();
    let mut running = 0;
    for dp in inputs.dataplanes.values() {
        if let Some(v) = dp
            .acked_version
            .as_deref()
            .filter(|v| history.contains(v, key, generation))
        {
            running += 1;
            if !versions.contains(&v) {
                versions.push(v);
            }
        }
    }
    let count =
        format!("{running} of {connected} connected data planes run generation {generation}");
    if running == connected {
        return d(
            status::TRUE,
            reason::PROGRAMMED,
            format!("{count} (version {})", versions.join(", ")),
        );
    }
    if has_problems {
        return d(
            status::FALSE,
            reason::INVALID,
            format!(
                "{count}: fix the problems in Accepted/ResolvedRefs; data planes keep their last good snapshot"
            ),
        );
    }
    if inputs.rendered_version.is_none() {
        let mut blocking: Vec<&str> = inputs
            .problems
            .iter()
            .map(|p| p.resource.as_str())
            .collect();
        blocking.dedup();
        return d(
            status::FALSE,
            reason::PENDING,
            format!(
                "{count}: no snapshot can be rendered until other resources are fixed: {}",
                blocking.join(", ")
            ),
        );
    }
    d(
        status::FALSE,
        reason::PENDING,
        format!("{count}; waiting for the others to acknowledge"),
    )
}

fn desired(
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: String,
) -> Desired {
    Desired {
        type_,
        status,
        reason,
        message,
    }
}

/// `path: message; path: message` for at most [`MAX_LISTED`] problems.
fn list(problems: &[&Problem]) -> String {
    let mut parts: Vec<String> = problems
        .iter()
        .take(MAX_LISTED)
        .map(|p| {
            if p.path.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.path, p.message)
            }
        })
        .collect();
    if problems.len() > MAX_LISTED {
        parts.push(format!("and {} more", problems.len() - MAX_LISTED));
    }
    parts.join("; ")
}

/// The status for `desired` at `generation`, keeping each condition's
/// `lastTransitionTime` from `previous` when its status did not change.
pub fn status_for(
    desired: &[Desired],
    generation: i64,
    previous: Option<&ResourceStatus>,
    now: &Time,
) -> ResourceStatus {
    let conditions = desired
        .iter()
        .map(|d| {
            let before = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == d.type_));
            let last_transition_time = match before {
                Some(c) if c.status == d.status => c.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: d.type_.to_string(),
                status: d.status.to_string(),
                reason: d.reason.to_string(),
                message: d.message.clone(),
                observed_generation: Some(generation),
                last_transition_time,
            }
        })
        .collect();
    ResourceStatus {
        conditions,
        observed_generation: Some(generation),
    }
}

/// Whether `a` and `b` say the same thing, ignoring `lastTransitionTime`
/// and the order of conditions.
pub fn same_ignoring_time(a: &ResourceStatus, b: &ResourceStatus) -> bool {
    let key = |s: &ResourceStatus| {
        let mut v: Vec<(String, String, String, String, Option<i64>)> = s
            .conditions
            .iter()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                    c.observed_generation,
                )
            })
            .collect();
        v.sort();
        (v, s.observed_generation)
    };
    key(a) == key(b)
}

/// The status every AIBackend and AIRoute of `inputs.inventory` should
/// have; `previous` gives the last known status of an object.
pub fn compute_all<'a>(
    inputs: &StatusInputs,
    history: &VersionHistory,
    previous: impl Fn(&ObjectKey) -> Option<&'a ResourceStatus>,
    now: &Time,
) -> BTreeMap<ObjectKey, ResourceStatus> {
    let inv = &inputs.inventory;
    let backends = inv.backends().map(|(ns, n, b)| {
        (
            (ObjectKind::Backend, ns.to_string(), n.to_string()),
            b.metadata.generation,
            refs::backend_refs(&b.spec),
        )
    });
    let routes = inv.routes().map(|(ns, n, r)| {
        (
            (ObjectKind::Route, ns.to_string(), n.to_string()),
            r.metadata.generation,
            refs::route_refs(&r.spec),
        )
    });
    backends
        .chain(routes)
        .map(|(key, generation, refs)| {
            let generation = generation.unwrap_or(0);
            let desired = desired_conditions(&key, generation, &refs, inputs, history);
            let status = status_for(&desired, generation, previous(&key), now);
            (key, status)
        })
        .collect()
}

#[cfg(test)]
mod tests;
