//! Pure status computation: the `Accepted`, `ResolvedRefs` and `Programmed`
//! conditions and `lastAccepted` of every AIBackend, AIRoute and AITeam,
//! from the renderer's per-object outcomes, the version history and the
//! data planes.
//!
//! - `Accepted`: False/`Invalid` when the current generation has problems
//!   that are not about a reference (or does not decode), `NotAllowed` when
//!   it claims what the `--route-claim` policy refuses, `Conflicted` when an
//!   older route holds one of its claims.
//! - `ResolvedRefs`: False/`BackendNotFound` or `SecretNotFound` when a
//!   problem sits at a reference's field path (Unknown/`Invalid` when the
//!   spec does not decode). For a route served without some of its AITeams
//!   (soft problems): False/`TeamNotFound` or `InvalidTeamRef`.
//! - `Programmed`, by what the snapshot holds for the object: its current
//!   generation (True/`Programmed` once every connected data plane runs it,
//!   else False/`Pending`), its last accepted generation
//!   (False/`ServingLastAccepted`), a 503 placeholder (False/`Unavailable`)
//!   or nothing (False/`Invalid`, `NotAllowed` or `Conflicted`);
//!   False/`Rejected` when a data plane NACKed a version holding it;
//!   Unknown/`NoDataPlanes` with no data plane connected. An AITeam no
//!   served route uses is False/`NotReferenced`; the message of a used one
//!   names the routes serving it and what they could not use of it.
//!
//! Messages never carry the snapshot version, so an object's status only
//! changes when its meaning does. `lastTransitionTime` only moves when a
//! condition's status changes; statuses are compared without timestamps
//! ([`same_ignoring_time`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use switchboard_api::conditions::{self, reason, status};
use switchboard_api::render::{Accepted, Outcome, Served};
use switchboard_api::v1alpha1::{LastAcceptedStatus, ResourceStatus};
use switchboard_api::{ObjectKey, ObjectKind, Problem};

use super::history::VersionHistory;
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
    kind.name()
}

fn gen_text(generation: Option<i64>) -> String {
    generation.map_or_else(
        || "the current version".to_string(),
        |g| format!("generation {g}"),
    )
}

/// What the object serves instead of its current generation, for messages.
fn fallback_note(o: &Outcome) -> String {
    match &o.served {
        Served::Current { .. } => String::new(),
        Served::LastAccepted { generation } => format!(
            "; data planes keep serving {}, the last accepted",
            gen_text(*generation)
        ),
        Served::Unavailable { generation } => format!(
            "; {} (the last accepted) cannot be served either, so requests to its hostnames and path prefix are answered 503",
            gen_text(*generation)
        ),
        Served::NotServed if o.accepted.is_some() && !o.last_accepted_problems.is_empty() => {
            format!(
                "; its last accepted version cannot be served either ({}), so it is not served",
                list(&o.last_accepted_problems.iter().collect::<Vec<_>>())
            )
        }
        Served::NotServed => "; it is not served".to_string(),
    }
}

/// The three conditions of object `key` from its outcome `o` and its
/// references `refs` (empty when it did not decode).
pub fn desired_conditions(
    key: &ObjectKey,
    o: &Outcome,
    refs: &[Ref],
    inputs: &StatusInputs,
    history: &VersionHistory,
) -> [Desired; 3] {
    let (ref_problems, spec_problems): (Vec<&Problem>, Vec<&Problem>) = o
        .problems
        .iter()
        .partition(|p| refs.iter().any(|r| refs::covers(&r.path, &p.path)));
    let note = fallback_note(o);

    let accepted = if o.undecodable {
        desired(
            conditions::ACCEPTED,
            status::FALSE,
            reason::INVALID,
            format!(
                "the object cannot be decoded: {}{note}",
                list(&spec_problems)
            ),
        )
    } else if !spec_problems.is_empty() {
        desired(
            conditions::ACCEPTED,
            status::FALSE,
            reason::INVALID,
            format!("{}{note}", list(&spec_problems)),
        )
    } else if !o.not_allowed.is_empty() {
        desired(
            conditions::ACCEPTED,
            status::FALSE,
            reason::NOT_ALLOWED,
            format!("{}{note}", list(&o.not_allowed.iter().collect::<Vec<_>>())),
        )
    } else if !o.lost.is_empty() {
        let lost: Vec<String> = o
            .lost
            .iter()
            .map(switchboard_api::render::resolve::conflict_message)
            .collect();
        desired(
            conditions::ACCEPTED,
            status::FALSE,
            reason::CONFLICTED,
            lost.join("; "),
        )
    } else if !ref_problems.is_empty() {
        desired(
            conditions::ACCEPTED,
            status::TRUE,
            reason::VALID,
            format!(
                "the spec is valid, but its references do not resolve (see ResolvedRefs){note}"
            ),
        )
    } else {
        desired(
            conditions::ACCEPTED,
            status::TRUE,
            reason::VALID,
            format!("the spec is valid{}", unmapped_note(key, inputs)),
        )
    };

    let backend_missing = ref_problems.iter().any(|p| {
        refs.iter()
            .any(|r| matches!(r.target, Target::Backend(_)) && refs::covers(&r.path, &p.path))
    });
    let resolved = if o.undecodable {
        desired(
            conditions::RESOLVED_REFS,
            status::UNKNOWN,
            reason::INVALID,
            "the spec cannot be decoded".to_string(),
        )
    } else if ref_problems.is_empty() && key.0 == ObjectKind::Route && !o.degraded.is_empty() {
        let why = if o
            .degraded
            .iter()
            .any(|d| d.reason == reason::TEAM_NOT_FOUND)
        {
            reason::TEAM_NOT_FOUND
        } else {
            reason::INVALID_TEAM_REF
        };
        let problems: Vec<&Problem> = o.degraded.iter().map(|d| &d.problem).collect();
        desired(
            conditions::RESOLVED_REFS,
            status::FALSE,
            why,
            format!(
                "{}; the route is served without what these name",
                list(&problems)
            ),
        )
    } else if ref_problems.is_empty() {
        let message = match refs.len() {
            0 => "the spec references no AIBackend, AITeam or Secret".to_string(),
            1 => "its one reference resolved".to_string(),
            n => format!("all {n} references resolved"),
        };
        desired(
            conditions::RESOLVED_REFS,
            status::TRUE,
            reason::RESOLVED,
            message,
        )
    } else {
        let why = if backend_missing {
            reason::BACKEND_NOT_FOUND
        } else {
            reason::SECRET_NOT_FOUND
        };
        desired(
            conditions::RESOLVED_REFS,
            status::FALSE,
            why,
            list(&ref_problems),
        )
    };

    let mut programmed = programmed(key, o, inputs, history);
    if key.0 == ObjectKind::Team {
        programmed = team_programmed(programmed, o);
    }
    [accepted, resolved, programmed]
}

fn programmed(
    key: &ObjectKey,
    o: &Outcome,
    inputs: &StatusInputs,
    history: &VersionHistory,
) -> Desired {
    let d = |s, r, m| desired(conditions::PROGRAMMED, s, r, m);
    let current = gen_text(o.generation);
    if o.served == Served::NotServed {
        let (why, text) = if !o.lost.is_empty() {
            (
                reason::CONFLICTED,
                "not served: every (hostname, path prefix) it claims is held by another route (see Accepted)".to_string(),
            )
        } else if !o.not_allowed.is_empty() {
            (
                reason::NOT_ALLOWED,
                "not served: its claims are not allowed (see Accepted)".to_string(),
            )
        } else {
            (
                reason::INVALID,
                format!(
                    "not served: {current} is refused (see Accepted/ResolvedRefs){}",
                    if o.accepted.is_none() {
                        " and no generation of it was ever accepted"
                    } else {
                        " and its last accepted version cannot be served either"
                    }
                ),
            )
        };
        return d(status::FALSE, why, text);
    }
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
            || !history.contains(&nack.version, key, &o.served)
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
            "data plane {id} rejected a version holding it: {why}"
        ));
    }
    if !rejections.is_empty() {
        return d(status::FALSE, reason::REJECTED, rejections.join("; "));
    }
    let running = inputs
        .dataplanes
        .values()
        .filter(|dp| {
            dp.acked_version
                .as_deref()
                .is_some_and(|v| history.contains(v, key, &o.served))
        })
        .count();
    match &o.served {
        Served::Current { .. } if running == connected => d(
            status::TRUE,
            reason::PROGRAMMED,
            format!("{running} of {connected} connected data planes run {current}"),
        ),
        Served::Current { .. } => d(
            status::FALSE,
            reason::PENDING,
            format!(
                "{running} of {connected} connected data planes run {current}; waiting for the others to acknowledge"
            ),
        ),
        Served::LastAccepted { generation } => d(
            status::FALSE,
            reason::SERVING_LAST_ACCEPTED,
            format!(
                "{current} is refused (see Accepted/ResolvedRefs); {running} of {connected} connected data planes serve {}, the last accepted",
                gen_text(*generation)
            ),
        ),
        Served::Unavailable { generation } => d(
            status::FALSE,
            reason::UNAVAILABLE,
            format!(
                "{current} is refused and {} (the last accepted) cannot be served: {}; {running} of {connected} connected data planes answer its requests with 503",
                gen_text(*generation),
                list(&o.last_accepted_problems.iter().collect::<Vec<_>>())
            ),
        ),
        Served::NotServed => d(status::FALSE, reason::INVALID, "not served".to_string()),
    }
}

/// An AITeam's `Programmed`: as any object's, except that a team no served
/// route uses is False/`NotReferenced`; the message names the routes that
/// serve it and what routes could not use of it.
fn team_programmed(mut d: Desired, o: &Outcome) -> Desired {
    let notes: Vec<String> = o
        .degraded
        .iter()
        .map(|s| format!("{}: {}", s.problem.resource, s.problem.message))
        .collect();
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    if o.served == Served::NotServed {
        return d;
    }
    if o.used_by.is_empty() {
        return desired(
            conditions::PROGRAMMED,
            status::FALSE,
            reason::NOT_REFERENCED,
            format!("no served AIRoute uses it (spec.teams.teamRefs){notes}"),
        );
    }
    let routes: Vec<String> = o.used_by.iter().map(|r| format!("AIRoute {r}")).collect();
    d.message = format!("{}; served by {}{notes}", d.message, routes.join(", "));
    d
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

/// For an AIRoute with teams, how it treats callers that map to no team
/// (`; callers that map to no team get the default tier sandbox (...)`), so
/// the default tier is explicit in its status.
fn unmapped_note(key: &ObjectKey, inputs: &StatusInputs) -> String {
    let (kind, ns, name) = key;
    if *kind != ObjectKind::Route {
        return String::new();
    }
    inputs
        .inventory
        .route(ns, name)
        .and_then(|r| switchboard_api::render::unmapped_callers(&r.spec))
        .map(|u| format!("; {u}"))
        .unwrap_or_default()
}

/// The status for `desired` at `generation` with `last_accepted`, keeping
/// each condition's `lastTransitionTime` from `previous` when its status
/// did not change.
pub fn status_for(
    desired: &[Desired],
    generation: i64,
    last_accepted: Option<LastAcceptedStatus>,
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
        last_accepted,
    }
}

/// Whether `a` and `b` (statuses of an object of `kind`) say the same
/// thing, ignoring `lastTransitionTime`, the order of conditions and how
/// the API server re-encoded the last accepted spec (e.g. `3.0` as `3`).
pub fn same_ignoring_time(kind: ObjectKind, a: &ResourceStatus, b: &ResourceStatus) -> bool {
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
    let last_same = a.last_accepted == b.last_accepted
        || (a.last_accepted.is_some()
            && Accepted::from_status(kind, Some(a)) == Accepted::from_status(kind, Some(b)));
    key(a) == key(b) && last_same
}

/// The status every AIBackend, AIRoute and AITeam of `inputs` should have;
/// `previous` gives the last known status of an object.
pub fn compute_all<'a>(
    inputs: &StatusInputs,
    history: &VersionHistory,
    previous: impl Fn(&ObjectKey) -> Option<&'a ResourceStatus>,
    now: &Time,
) -> BTreeMap<ObjectKey, ResourceStatus> {
    let inv = &inputs.inventory;
    inputs
        .outcomes
        .iter()
        .map(|(key, o)| {
            let (kind, ns, name) = key;
            let refs = match kind {
                ObjectKind::Backend => inv
                    .backend(ns, name)
                    .map(|b| refs::backend_refs(&b.spec))
                    .unwrap_or_default(),
                ObjectKind::Route => inv
                    .route(ns, name)
                    .map(|r| refs::route_refs(ns, &r.spec))
                    .unwrap_or_default(),
                ObjectKind::Team => inv
                    .team(ns, name)
                    .map(|t| refs::team_refs(&t.spec))
                    .unwrap_or_default(),
                ObjectKind::Secret => Vec::new(),
            };
            let generation = o.generation.unwrap_or(0);
            let desired = desired_conditions(key, o, &refs, inputs, history);
            let last = o.accepted.as_ref().map(Accepted::to_status);
            let status = status_for(&desired, generation, last, previous(key), now);
            (key.clone(), status)
        })
        .collect()
}

#[cfg(test)]
mod tests;
