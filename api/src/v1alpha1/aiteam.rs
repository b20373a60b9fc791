//! `AITeam`: one team as its own namespaced resource, referenced by AIRoutes
//! (`spec.teams.teamRefs`), so a platform team can give every team a
//! namespace of its own and let RBAC decide who edits its limits and keys.
//! Its status carries the team's live usage, aggregated across data planes.
// Several `printcolumn(...)` entries repeat `type_ = "integer"`; that is not a mistake.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::{self, *};
use super::{ApiKey, BudgetSpec, GuardsSpec, ResourceStatus};

/// A team: who belongs to it (values of the route's team claim, API keys),
/// its tier and limits, its USD budget and its guards.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "AITeam",
    plural = "aiteams",
    shortname = "ait",
    category = "switchboard",
    namespaced,
    status = "AITeamStatus",
    doc = "A team of callers with its tier, limits, USD budget and identities, referenced by AIRoutes in spec.teams.teamRefs; its status shows live usage.",
    printcolumn(name = "Tier", type_ = "string", json_path = ".spec.tier"),
    printcolumn(
        name = "Req/min",
        type_ = "integer",
        json_path = ".status.usage.requestsThisMinute"
    ),
    printcolumn(
        name = "Tokens today",
        type_ = "integer",
        json_path = ".status.usage.tokensToday"
    ),
    printcolumn(name = "USD", type_ = "number", json_path = ".status.usage.spentUSD"),
    printcolumn(
        name = "Refused",
        type_ = "integer",
        json_path = ".status.usage.refusalsToday"
    ),
    printcolumn(
        name = "Last seen",
        type_ = "date",
        json_path = ".status.usage.lastSeen"
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AITeamSpec {
    /// Tier name: a built-in (`sandbox`, `standard`, `premium`,
    /// `enterprise`) or one of the referencing route's `spec.tiers`; each
    /// referencing route resolves it in its own tier table. Unset: the
    /// route's `teams.defaultTier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([not_blank()]))]
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
    /// Values of the referencing route's team claim (`spec.teams.claim`,
    /// e.g. a Cognito `client_id` or a group name) whose callers belong to
    /// this team. Each value once. A value already mapped by the route
    /// itself, or by an older AITeam on the same route, stays there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = MAPPING_MAX),
        inner(length(max = TOKEN_MAX)),
        transform = rules::list_set,
        transform = rules::items(rules::cel([not_blank()]))
    )]
    pub claim_values: Vec<String>,
    /// Static client API keys whose callers belong to this team, each from
    /// a Secret in the team's namespace (`env` in standalone mode only).
    /// They are accepted on every referencing route that has `spec.auth`.
    /// Each name once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = TEAM_KEYS_MAX), transform = rules::list_map("name"))]
    pub api_keys: Vec<ApiKey>,
    /// Request and response guards for this team's requests, applied after
    /// the route's own (blocked patterns, webhook and removed fields on the
    /// request; masking on the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guards: Option<GuardsSpec>,
}

/// A reference from an AIRoute to an AITeam.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRef {
    /// Name of the AITeam.
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub name: String,
    /// Namespace of the AITeam. Unset: the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub namespace: Option<String>,
}

/// Observed state of an AITeam: the conditions (written by the controller
/// like those of the other resources) and the live usage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AITeamStatus {
    /// Conditions, `observedGeneration` and `lastAccepted`, as on AIBackends
    /// and AIRoutes.
    #[serde(flatten)]
    pub resource: ResourceStatus,
    /// Usage in the current windows, summed over every data plane process
    /// that served the team; rewritten at most every few seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TeamUsageStatus>,
}

/// A team's usage in the current windows (UTC), as the data planes report it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamUsageStatus {
    /// Requests in the current calendar minute, refused ones included.
    #[serde(default)]
    pub requests_this_minute: u64,
    /// Tokens (input, output, cache read and write) charged today.
    #[serde(default)]
    pub tokens_today: u64,
    /// USD spent in the current budget period (`period`).
    #[serde(default, rename = "spentUSD")]
    pub spent_usd: f64,
    /// The period of `spentUSD`: the budget's (`day`, `week` or `month`),
    /// `month` without a budget.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub period: String,
    /// Requests refused today by the team's limits (requests per minute,
    /// tokens per day, budget).
    #[serde(default)]
    pub refusals_today: u64,
    /// When a request of the team was last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// How many data plane processes' reports the numbers sum.
    #[serde(default)]
    pub data_planes: u32,
}
