//! `AIRoute` fields for teams: who a caller belongs to, its tier (requests
//! per minute, tokens per day), its USD budget, and the price table used to
//! turn tokens into spend.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::{self, *};

/// Turns callers into teams with limits. Unset: the route has no limits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([mapping_targets()]))]
pub struct TeamsSpec {
    /// JWT claim naming the caller's team, e.g. `client_id` (Cognito
    /// machine-to-machine tokens), `team`, or `groups`. A dotted path reaches
    /// into nested objects. For a list claim the first value that maps to a
    /// team wins. Unset: `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TOKEN_MAX), transform = rules::cel([not_blank()]))]
    pub claim: Option<String>,
    /// Claim values mapped to team names. A claim value equal to a team's
    /// `name` maps to that team without an entry here. Every value must be
    /// the name of a team in `teams`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = rules::string_map(MAPPING_MAX, LABEL_MAX))]
    pub mapping: BTreeMap<String, String>,
    /// Tier of callers that map to no team (each counted on its own): a
    /// built-in tier or one of `spec.tiers`. Default `sandbox`; the API
    /// server writes the default into the stored object, so it is always
    /// visible. Unused with `refuseUnknown`. Each caller's first refusal is
    /// logged by the data plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX), extend("default" = "sandbox"))]
    pub default_tier: Option<String>,
    /// Refuse callers that map to no team (403) instead of giving them the
    /// default tier.
    #[serde(default)]
    pub refuse_unknown: bool,
    /// The teams, each name once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = TEAMS_MAX), transform = rules::list_map("name"))]
    pub teams: Vec<TeamSpec>,
    /// AITeams whose callers this route serves, besides `teams`: each
    /// brings its claim values, API keys, tier and limits (see
    /// `docs/teams.md`). A reference that does not resolve leaves that team
    /// out and is reported in `ResolvedRefs`; the route is still served.
    /// Each team once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = TEAMS_MAX))]
    pub team_refs: Vec<super::TeamRef>,
    /// Requests per minute allowed from one client IP address (the TCP
    /// peer), across teams. Unset or 0: no per-IP limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = RPM_MAX))]
    pub client_ip_requests_per_minute: Option<u64>,
}

/// One team.
// `tier`, `requestsPerMinute`, `tokensPerDay` and `budget` repeat fields of
// `AITeamSpec` on purpose: sharing them through `#[serde(flatten)]` keeps the
// CRD schema but loses the field path in the loader's type errors (see
// `load::tests::type_errors_in_team_limits_name_the_field`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamSpec {
    /// Team name, as reported in metrics and logs: 1-63 letters, digits,
    /// `-`, `_` or `.`; `unknown` and `none` are reserved.
    #[schemars(length(max = LABEL_MAX), transform = rules::cel(team_name()))]
    pub name: String,
    /// Tier name: a built-in (`sandbox`, `standard`, `premium`,
    /// `enterprise`) or one of `spec.tiers`. Unset: the default tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX))]
    pub tier: Option<String>,
    /// Overrides the tier's requests per minute (0: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = RPM_MAX))]
    pub requests_per_minute: Option<u64>,
    /// Overrides the tier's tokens per UTC day (0: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = TOKENS_PER_DAY_MAX))]
    pub tokens_per_day: Option<u64>,
    /// Spending cap in USD. Unset: no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSpec>,
    /// Names of `spec.auth.apiKeys` entries whose callers belong to this
    /// team; a key belongs to one team at most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = TEAM_KEYS_MAX),
        inner(length(max = LABEL_MAX)),
        transform = rules::list_set
    )]
    pub api_keys: Vec<String>,
}

/// A USD spending cap that resets every period.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetSpec {
    /// Cap in US dollars per period, e.g. `50` or `12.5`; 0 to 1e9.
    #[schemars(range(min = 0.0, max = BUDGET_USD_MAX))]
    pub usd: f64,
    /// `day`, `week` (starting Monday) or `month`, calendar-aligned in UTC.
    /// Default `month`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([budget_period()]))]
    pub period: Option<String>,
}

/// A tier: limits shared by the teams that use it. Defining a built-in name
/// (`sandbox`, `standard`, `premium`, `enterprise`) overrides it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierSpec {
    /// Tier name.
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([not_blank()]))]
    pub name: String,
    /// Requests per minute per team; 0: unlimited. Unset: the built-in
    /// tier's value, or unlimited for a new tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = RPM_MAX))]
    pub requests_per_minute: Option<u64>,
    /// Tokens (input + output, cache included) per UTC day per team; 0:
    /// unlimited. Unset: the built-in tier's value, or unlimited for a new tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = TOKENS_PER_DAY_MAX))]
    pub tokens_per_day: Option<u64>,
}

/// Price of one model in USD per million tokens. Entries here come before
/// the built-in table (see `docs/teams.md`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPricing {
    /// Routed model name (after aliases), exact or a `*` glob.
    #[schemars(length(max = MODEL_MAX), transform = rules::cel(glob()))]
    pub model: String,
    /// USD per million input tokens.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = PRICE_MAX))]
    pub input: f64,
    /// USD per million output tokens.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = PRICE_MAX))]
    pub output: f64,
    /// USD per million cache-read input tokens. Unset: 10% of `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = PRICE_MAX))]
    pub cache_read: Option<f64>,
    /// USD per million cache-write input tokens. Unset: 125% of `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = PRICE_MAX))]
    pub cache_write: Option<f64>,
}
