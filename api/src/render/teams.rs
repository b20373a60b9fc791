//! Renders an AIRoute's `teams`, `tiers`, `pricing` and `guards` into the
//! snapshot, resolving every team's limits from its tier.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_proto as pb;

use super::Ctx;
use super::check::{endpoint_url, glob_error};
use crate::v1alpha1::{AIRouteSpec, BudgetSpec, GuardsSpec};

/// A built-in tier: name, requests per minute, tokens per day (0: unlimited).
pub const BUILTIN_TIERS: &[(&str, u64, u64)] = &[
    ("sandbox", 20, 100_000),
    ("standard", 100, 1_000_000),
    ("premium", 500, 10_000_000),
    ("enterprise", 0, 0),
];

/// Tier of callers that map to no team when `defaultTier` is unset.
pub const DEFAULT_TIER: &str = "sandbox";

/// How a route treats callers that map to no team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnmappedCallers {
    /// Refused with 403 (`refuseUnknown`).
    Refused,
    /// Each counted on its own at the default tier.
    Tier {
        /// The tier's name (`defaultTier`, else [`DEFAULT_TIER`]).
        name: String,
        /// Its requests per minute (0: unlimited).
        requests_per_minute: u64,
        /// Its tokens per day (0: unlimited).
        tokens_per_day: u64,
    },
}

impl std::fmt::Display for UnmappedCallers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = |n: u64, what: &str| {
            if n == 0 {
                format!("unlimited {what}")
            } else {
                format!("{n} {what}")
            }
        };
        match self {
            UnmappedCallers::Refused => {
                write!(f, "callers that map to no team are refused (refuseUnknown)")
            }
            UnmappedCallers::Tier {
                name,
                requests_per_minute,
                tokens_per_day,
            } => write!(
                f,
                "callers that map to no team get the default tier {name} ({}, {}, each caller on its own)",
                limit(*requests_per_minute, "requests per minute"),
                limit(*tokens_per_day, "tokens per day")
            ),
        }
    }
}

/// How `spec` treats callers that map to no team; `None` when it has no
/// teams (no limits at all) or its default tier is unknown (a problem the
/// renderer reports).
pub fn unmapped_callers(spec: &AIRouteSpec) -> Option<UnmappedCallers> {
    let t = spec.teams.as_ref()?;
    if t.refuse_unknown {
        return Some(UnmappedCallers::Refused);
    }
    let name = t
        .default_tier
        .clone()
        .unwrap_or_else(|| DEFAULT_TIER.to_string());
    let builtin = BUILTIN_TIERS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, rpm, tpd)| (*rpm, *tpd));
    let (rpm, tpd) = match spec.tiers.iter().rfind(|x| x.name == name) {
        Some(x) => {
            let (rpm, tpd) = builtin.unwrap_or_default();
            (
                x.requests_per_minute.unwrap_or(rpm),
                x.tokens_per_day.unwrap_or(tpd),
            )
        }
        None => builtin?,
    };
    Some(UnmappedCallers::Tier {
        name,
        requests_per_minute: rpm,
        tokens_per_day: tpd,
    })
}

/// The tier table of a route: built-ins overridden and extended by `spec.tiers`.
fn tier_table(cx: &mut Ctx<'_>, spec: &AIRouteSpec) -> BTreeMap<String, pb::Limits> {
    let mut tiers: BTreeMap<String, pb::Limits> = BUILTIN_TIERS
        .iter()
        .map(|(n, rpm, tpd)| {
            (
                (*n).to_string(),
                pb::Limits {
                    requests_per_minute: *rpm,
                    tokens_per_day: *tpd,
                },
            )
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (i, t) in spec.tiers.iter().enumerate() {
        if t.name.trim().is_empty() {
            cx.problem(format!("spec.tiers[{i}].name"), "must not be empty");
            continue;
        }
        if !seen.insert(t.name.as_str()) {
            cx.problem(
                format!("spec.tiers[{i}].name"),
                format!("duplicate tier {:?}", t.name),
            );
        }
        // Fields left unset keep a built-in tier's value (0, unlimited, for new tiers).
        let base = tiers.get(&t.name).copied().unwrap_or_default();
        tiers.insert(
            t.name.clone(),
            pb::Limits {
                requests_per_minute: t.requests_per_minute.unwrap_or(base.requests_per_minute),
                tokens_per_day: t.tokens_per_day.unwrap_or(base.tokens_per_day),
            },
        );
    }
    tiers
}

/// A budget at `at` (`spec.teams.teams[i].budget` or an AITeam's `spec.budget`).
pub(crate) fn render_budget(cx: &mut Ctx<'_>, at: &str, b: &BudgetSpec) -> pb::Budget {
    let period = match b.period.as_deref().unwrap_or("month") {
        "day" => pb::BudgetPeriod::Day,
        "week" => pb::BudgetPeriod::Week,
        "month" => pb::BudgetPeriod::Month,
        other => {
            cx.problem(
                format!("{at}.period"),
                format!("must be day, week or month, got {other:?}"),
            );
            pb::BudgetPeriod::Unspecified
        }
    };
    // The range (0 to 1e9) is the schema's, checked with the bounds.
    if !b.usd.is_finite() {
        cx.problem(
            format!("{at}.usd"),
            format!("must be a finite number, got {}", b.usd),
        );
    }
    pb::Budget {
        micro_usd: (b.usd.clamp(0.0, 1e9) * 1e6).round() as u64,
        period: period as i32,
    }
}

/// The route's team policy, and the API keys its AITeams add to its auth
/// (`route_key_values`: the values of the route's own keys).
pub(crate) fn render_teams(
    cx: &mut Ctx<'_>,
    spec: &AIRouteSpec,
    route_key_values: BTreeSet<String>,
) -> (Option<pb::TeamPolicy>, Vec<pb::ApiKey>) {
    let tiers = tier_table(cx, spec);
    let Some(t) = spec.teams.as_ref() else {
        return (None, Vec::new());
    };
    let p = "spec.teams";
    let claim = t.claim.clone().unwrap_or_else(|| "client_id".to_string());
    if claim.trim().is_empty() {
        cx.problem(format!("{p}.claim"), "must not be empty when set");
    }
    let default_tier = t
        .default_tier
        .clone()
        .unwrap_or_else(|| DEFAULT_TIER.to_string());
    let default_limits = match tiers.get(&default_tier) {
        Some(l) => *l,
        None => {
            cx.problem(
                format!("{p}.defaultTier"),
                format!("unknown tier {default_tier:?}"),
            );
            pb::Limits::default()
        }
    };
    let key_names: BTreeSet<&str> = spec
        .auth
        .iter()
        .flat_map(|a| a.api_keys.iter().map(|k| k.name.as_str()))
        .collect();
    let mut names = BTreeSet::new();
    let mut keys_seen = BTreeSet::new();
    let mut teams = Vec::new();
    for (i, team) in t.teams.iter().enumerate() {
        let at = format!("{p}.teams[{i}]");
        let name_ok = is_team_name(&team.name);
        if !name_ok {
            cx.problem(
                format!("{at}.name"),
                format!(
                    "invalid team name {:?}: use 1-63 letters, digits, '-', '_' or '.'",
                    team.name
                ),
            );
        } else if !names.insert(team.name.clone()) {
            cx.problem(
                format!("{at}.name"),
                format!("duplicate team {:?}", team.name),
            );
        } else if team.name == "unknown" || team.name == "none" {
            cx.problem(
                format!("{at}.name"),
                format!("{:?} is reserved for callers without a team", team.name),
            );
        }
        let tier = team.tier.clone().unwrap_or_else(|| default_tier.clone());
        let mut limits = match tiers.get(&tier) {
            Some(l) => *l,
            None => {
                cx.problem(format!("{at}.tier"), format!("unknown tier {tier:?}"));
                pb::Limits::default()
            }
        };
        if let Some(rpm) = team.requests_per_minute {
            limits.requests_per_minute = rpm;
        }
        if let Some(tpd) = team.tokens_per_day {
            limits.tokens_per_day = tpd;
        }
        let budget = team
            .budget
            .as_ref()
            .map(|b| render_budget(cx, &format!("{at}.budget"), b));
        for (j, k) in team.api_keys.iter().enumerate() {
            if !key_names.contains(k.as_str()) {
                cx.problem(
                    format!("{at}.apiKeys[{j}]"),
                    format!("no API key named {k:?} in spec.auth.apiKeys"),
                );
            } else if !keys_seen.insert(k.clone()) {
                cx.problem(
                    format!("{at}.apiKeys[{j}]"),
                    format!("API key {k:?} belongs to two teams"),
                );
            }
        }
        teams.push(pb::Team {
            name: team.name.clone(),
            tier,
            limits: Some(limits),
            budget,
            api_keys: team.api_keys.clone(),
            resource: String::new(),
            guards: None,
        });
    }
    let mut mapping: Vec<pb::ClaimMapping> = t
        .mapping
        .iter()
        .map(|(value, team)| {
            if !names.contains(team) {
                cx.problem(
                    format!("{p}.mapping.{value}"),
                    format!("unknown team {team:?}"),
                );
            }
            pb::ClaimMapping {
                value: value.clone(),
                team: team.clone(),
            }
        })
        .collect();
    // A claim value equal to an inline team's name maps to it as well.
    let taken = super::aiteam::Taken {
        claim_values: t.mapping.keys().cloned().chain(names).collect(),
        key_values: route_key_values,
        has_auth: spec.auth.is_some(),
    };
    let (ref_teams, ref_mapping, ref_keys) =
        super::aiteam::merge_team_refs(cx, &t.team_refs, &tiers, &default_tier, taken);
    teams.extend(ref_teams);
    mapping.extend(ref_mapping);
    teams.sort_by(|a, b| a.name.cmp(&b.name));
    mapping.sort_by(|a, b| a.value.cmp(&b.value));
    let policy = pb::TeamPolicy {
        claim,
        mapping,
        default_tier,
        default_limits: Some(default_limits),
        refuse_unknown: t.refuse_unknown,
        teams,
        client_ip_requests_per_minute: t.client_ip_requests_per_minute.unwrap_or(0),
    };
    (Some(policy), ref_keys)
}

/// Whether `name` is a valid team name (twin of `v1alpha1::rules::TEAM_NAME_RE`).
pub(crate) fn is_team_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub(crate) fn render_pricing(cx: &mut Ctx<'_>, spec: &AIRouteSpec) -> Vec<pb::ModelPrice> {
    spec.pricing
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = format!("spec.pricing[{i}]");
            if let Some(e) = glob_error(&m.model) {
                cx.problem(format!("{at}.model"), e);
            }
            let cache_read = m.cache_read.unwrap_or(m.input * 0.1);
            let cache_write = m.cache_write.unwrap_or(m.input * 1.25);
            // The range (0 to 1e6) is the schema's, checked with the bounds.
            for (field, v) in [
                ("input", Some(m.input)),
                ("output", Some(m.output)),
                ("cacheRead", m.cache_read),
                ("cacheWrite", m.cache_write),
            ] {
                if let Some(v) = v.filter(|v| !v.is_finite()) {
                    cx.problem(
                        format!("{at}.{field}"),
                        format!("must be a finite number, got {v}"),
                    );
                }
            }
            pb::ModelPrice {
                model: m.model.clone(),
                input: m.input,
                output: m.output,
                cache_read,
                cache_write,
            }
        })
        .collect()
}

pub(crate) fn render_guards(cx: &mut Ctx<'_>, g: &GuardsSpec) -> pb::Guards {
    let p = "spec.guards";
    let blocked_patterns = g
        .blocked_patterns
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if let Err(e) = regex::Regex::new(&b.pattern) {
                cx.problem(
                    format!("{p}.blockedPatterns[{i}].pattern"),
                    format!("invalid regular expression: {e}"),
                );
            }
            pb::BlockedPattern {
                pattern: b.pattern.clone(),
                message: b.message.clone().unwrap_or_default(),
            }
        })
        .collect();
    for (i, f) in g.remove_fields.iter().enumerate() {
        if f.is_empty() || f.split('.').any(str::is_empty) {
            cx.problem(
                format!("{p}.removeFields[{i}]"),
                format!("invalid field path {f:?}"),
            );
        } else if f == "model" {
            cx.problem(
                format!("{p}.removeFields[{i}]"),
                "`model` cannot be removed",
            );
        }
    }
    let webhook = g.webhook.as_ref().map(|w| {
        if let Err(e) = endpoint_url(&w.url) {
            cx.problem(format!("{p}.webhook.url"), e);
        }
        // `rejectStatus` is bounded (400 to 599) by the schema, checked with the bounds.
        let status = w.reject_status.unwrap_or(429);
        pb::Webhook {
            url: w.url.clone(),
            timeout_ms: cx.duration_ms(&format!("{p}.webhook.timeout"), w.timeout.as_ref()),
            fail_open: w.fail_open,
            reject_status: u32::from(status),
        }
    });
    let mask = g.mask.as_ref().map(|m| {
        for (i, pat) in m.patterns.iter().enumerate() {
            if let Err(e) = regex::Regex::new(pat) {
                cx.problem(
                    format!("{p}.mask.patterns[{i}]"),
                    format!("invalid regular expression: {e}"),
                );
            }
        }
        pb::Masking {
            emails: m.emails,
            phone_numbers: m.phone_numbers,
            patterns: m.patterns.clone(),
            replacement: m.replacement.clone().unwrap_or_default(),
        }
    });
    pb::Guards {
        blocked_patterns,
        remove_fields: g.remove_fields.clone(),
        webhook,
        mask,
    }
}
