//! Renders one AITeam on its own ([`RenderedTeam`]), and merges the AITeams
//! a route references into its team policy ([`merge_team_refs`]).
//!
//! An AITeam is validated and rendered without looking at any route, so a
//! broken AITeam is refused on its own (its last accepted generation keeps
//! serving) and never breaks a route. What depends on the route — the tier
//! (resolved in the route's tier table), claim values and API keys already
//! taken on the route — is checked when the route is rendered: a reference
//! that cannot be used leaves that team (or that one value or key) out of
//! the route and is reported as a [`SoftProblem`], never as a problem that
//! would refuse the route.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use switchboard_proto as pb;

use super::Ctx;
use crate::conditions::reason;
use crate::inventory::ObjectKind;
use crate::problem::Problem;
use crate::v1alpha1::{AITeamSpec, TeamRef};

/// An AITeam as a referencing route needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedTeam {
    /// `namespace/name`: its metric label and counter identity.
    pub id: String,
    /// Its tier, resolved by each route; `None`: the route's default tier.
    pub tier: Option<String>,
    /// Override of the tier's requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Override of the tier's tokens per day.
    pub tokens_per_day: Option<u64>,
    /// Its budget.
    pub budget: Option<pb::Budget>,
    /// Claim values mapping to it.
    pub claim_values: Vec<String>,
    /// Its API keys, named `namespace/name/key`, values resolved.
    pub api_keys: Vec<pb::ApiKey>,
    /// Its guards.
    pub guards: Option<pb::Guards>,
    /// Its `metadata.creationTimestamp`: the oldest team wins a claim value
    /// or key another team on the same route also has.
    pub created: Option<Time>,
}

/// The AITeams the snapshot can use, by (namespace, name).
pub type ServedTeams = BTreeMap<(String, String), RenderedTeam>;

/// A problem that does not stop an object from being served: it is served
/// without the part at fault (e.g. a route without one of its AITeams).
#[derive(Clone, Debug, PartialEq)]
pub struct SoftProblem {
    /// Where and what.
    pub problem: Problem,
    /// The `ResolvedRefs` reason it stands for
    /// ([`reason::TEAM_NOT_FOUND`] or [`reason::INVALID_TEAM_REF`]).
    pub reason: &'static str,
    /// The AITeam (namespace, name) it concerns, if any: the problem is
    /// also shown on that team's status.
    pub team: Option<(String, String)>,
}

/// Renders the AITeam of `cx` on its own.
pub(crate) fn render_team(cx: &mut Ctx<'_>, spec: &AITeamSpec) -> RenderedTeam {
    if let Some(t) = &spec.tier
        && t.trim().is_empty()
    {
        cx.problem("spec.tier", "must not be empty when set");
    }
    let budget = spec
        .budget
        .as_ref()
        .map(|b| super::teams::render_budget(cx, "spec.budget", b));
    let mut seen = BTreeSet::new();
    for (i, v) in spec.claim_values.iter().enumerate() {
        if v.trim().is_empty() {
            cx.problem(format!("spec.claimValues[{i}]"), "must not be empty");
        } else if !seen.insert(v.as_str()) {
            cx.problem(
                format!("spec.claimValues[{i}]"),
                format!("duplicate claim value {v:?}"),
            );
        }
    }
    let mut names = BTreeSet::new();
    let api_keys = spec
        .api_keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            let path = format!("spec.apiKeys[{i}]");
            if k.name.trim().is_empty() {
                cx.problem(format!("{path}.name"), "must not be empty");
            } else if !names.insert(k.name.as_str()) {
                cx.problem(
                    format!("{path}.name"),
                    format!("duplicate API key name {:?}", k.name),
                );
            }
            super::route::api_key_value(cx, &path, k).map(|value| pb::ApiKey {
                name: format!("{}/{}", cx.id, k.name),
                value,
            })
        })
        .collect();
    let guards = spec
        .guards
        .as_ref()
        .map(|g| super::teams::render_guards(cx, g));
    RenderedTeam {
        id: cx.id.clone(),
        guards,
        tier: spec.tier.clone(),
        requests_per_minute: spec.requests_per_minute,
        tokens_per_day: spec.tokens_per_day,
        budget,
        claim_values: spec.claim_values.clone(),
        api_keys,
        created: cx
            .inv
            .team(cx.namespace, &cx.name)
            .and_then(|t| t.metadata.creation_timestamp.clone()),
    }
}

/// What a route already holds before its AITeams are merged in.
pub(crate) struct Taken {
    /// Claim values that map to an inline team (its `mapping` keys and team names).
    pub claim_values: BTreeSet<String>,
    /// Values of the route's own API keys.
    pub key_values: BTreeSet<String>,
    /// Whether the route authenticates clients (`spec.auth`): AITeam API
    /// keys are only accepted then.
    pub has_auth: bool,
}

/// The AITeams of `refs` merged into a route's team policy: their
/// [`pb::Team`]s, claim mappings and API keys (for the route's auth).
/// `tiers` is the route's tier table and `default_tier` its default.
pub(crate) fn merge_team_refs(
    cx: &mut Ctx<'_>,
    refs: &[TeamRef],
    tiers: &BTreeMap<String, pb::Limits>,
    default_tier: &str,
    mut taken: Taken,
) -> (Vec<pb::Team>, Vec<pb::ClaimMapping>, Vec<pb::ApiKey>) {
    let p = "spec.teams.teamRefs";
    // Resolve every reference, then take them oldest team first, so a claim
    // value or key two teams share goes to the same one whatever the order
    // of the list.
    let mut found = Vec::new();
    let mut refs_seen = BTreeSet::new();
    for (i, r) in refs.iter().enumerate() {
        let at = format!("{p}[{i}]");
        let ns = r
            .namespace
            .clone()
            .unwrap_or_else(|| cx.namespace.to_string());
        if !refs_seen.insert((ns.clone(), r.name.clone())) {
            cx.problem(at, format!("AITeam {ns}/{} is referenced twice", r.name));
            continue;
        }
        match cx.teams.get(&(ns.clone(), r.name.clone())) {
            Some(team) => found.push((at, (ns, r.name.clone()), team)),
            None => {
                let exists = cx.inv.get(ObjectKind::Team, &ns, &r.name).is_some();
                let message = if exists {
                    format!(
                        "AITeam {ns}/{} exists but is not served (it has problems of its own); its callers are not in a team here",
                        r.name
                    )
                } else {
                    format!(
                        "AITeam {ns}/{} not found; its callers are not in a team here",
                        r.name
                    )
                };
                cx.soft(format!("{at}.name"), message, reason::TEAM_NOT_FOUND, None);
            }
        }
    }
    found.sort_by(|a, b| {
        let created = |t: &RenderedTeam| t.created.as_ref().map(|c| c.0);
        created(a.2)
            .is_none()
            .cmp(&created(b.2).is_none())
            .then(created(a.2).cmp(&created(b.2)))
            .then(a.1.cmp(&b.1))
    });
    let mut value_owner: BTreeMap<String, String> = BTreeMap::new();
    let mut key_owner: BTreeMap<String, String> = BTreeMap::new();
    let (mut teams, mut mapping, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for (at, key, team) in found {
        let tier = team
            .tier
            .clone()
            .unwrap_or_else(|| default_tier.to_string());
        let Some(base) = tiers.get(&tier) else {
            cx.soft(
                format!("{at}.name"),
                format!(
                    "AITeam {} has tier {tier:?}, which this route does not define (a built-in tier or one of spec.tiers); the team is left out here",
                    team.id
                ),
                reason::INVALID_TEAM_REF,
                Some(key),
            );
            continue;
        };
        let limits = pb::Limits {
            requests_per_minute: team.requests_per_minute.unwrap_or(base.requests_per_minute),
            tokens_per_day: team.tokens_per_day.unwrap_or(base.tokens_per_day),
        };
        for v in &team.claim_values {
            if taken.claim_values.contains(v) {
                let owner = value_owner
                    .get(v)
                    .map_or_else(|| "the route itself".to_string(), |o| format!("AITeam {o}"));
                cx.soft(
                    at.clone(),
                    format!(
                        "claim value {v:?} of AITeam {} is already mapped by {owner}; ignored here",
                        team.id
                    ),
                    reason::INVALID_TEAM_REF,
                    Some(key.clone()),
                );
                continue;
            }
            taken.claim_values.insert(v.clone());
            value_owner.insert(v.clone(), team.id.clone());
            mapping.push(pb::ClaimMapping {
                value: v.clone(),
                team: team.id.clone(),
            });
        }
        let mut key_names = Vec::new();
        if !team.api_keys.is_empty() && !taken.has_auth {
            cx.soft(
                at.clone(),
                format!(
                    "the API keys of AITeam {} are not accepted: this route has no spec.auth (it is open)",
                    team.id
                ),
                reason::INVALID_TEAM_REF,
                Some(key.clone()),
            );
        } else {
            for k in &team.api_keys {
                if taken.key_values.contains(&k.value) {
                    let owner = key_owner
                        .get(&k.value)
                        .map_or_else(|| "the route itself".to_string(), |o| format!("AITeam {o}"));
                    cx.soft(
                        at.clone(),
                        format!(
                            "API key {} has the same value as a key of {owner}; ignored here",
                            k.name
                        ),
                        reason::INVALID_TEAM_REF,
                        Some(key.clone()),
                    );
                    continue;
                }
                taken.key_values.insert(k.value.clone());
                key_owner.insert(k.value.clone(), team.id.clone());
                key_names.push(k.name.clone());
                keys.push(k.clone());
            }
        }
        teams.push(pb::Team {
            name: team.id.clone(),
            tier,
            limits: Some(limits),
            budget: team.budget,
            api_keys: key_names,
            resource: team.id.clone(),
            guards: team.guards.clone(),
        });
    }
    (teams, mapping, keys)
}

#[cfg(test)]
mod tests;
