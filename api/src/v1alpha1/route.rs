//! `AIRoute`: how requests on one path prefix are authenticated and routed.
// Several `printcolumn(...)` entries repeat `type_ = "string"`; that is not a mistake.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::{self, *};
use super::{GuardsSpec, ModelPricing, ResourceStatus, SecretKeyRef, TeamsSpec, TierSpec};

/// How requests under one path prefix (and optionally host names) are
/// authenticated, which model names they may use, and which chain of
/// AIBackends serves each model.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "AIRoute",
    plural = "airoutes",
    shortname = "air",
    category = "switchboard",
    namespaced,
    status = "ResourceStatus",
    doc = "Client authentication, model aliases and model-to-backend rules for requests under one path prefix.",
    printcolumn(name = "Prefix", type_ = "string", json_path = ".spec.pathPrefix"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
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
#[schemars(
    transform = rules::cel(known_tiers()),
    transform = rules::cel(team_api_keys()),
    transform = rules::require("rules")
)]
pub struct AIRouteSpec {
    /// Path prefix this route serves; the API paths (`/v1/messages`,
    /// `/v1/chat/completions`, ...) follow it. Must start with `/`. Default `/`.
    #[serde(default = "default_path_prefix")]
    #[schemars(length(max = TEXT_MAX), transform = rules::cel(path_prefix()))]
    pub path_prefix: String,
    /// Host names this route answers (no scheme or port). Empty: any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = SHORT_LIST_MAX),
        inner(length(max = NAME_MAX)),
        transform = rules::items(rules::cel([hostname()]))
    )]
    pub hostnames: Vec<String>,
    /// Client authentication. A request passes when any configured method
    /// accepts it. Unset (or nothing configured): the route is open to
    /// anyone who can reach it, which is meant for local use only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClientAuth>,
    /// Model aliases, applied before the rules: exact patterns first, then
    /// `*` globs, most specific first. Each pattern once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = ALIASES_MAX), transform = rules::list_map("pattern"))]
    pub aliases: Vec<ModelAlias>,
    /// Rules in order; the first whose `models` match the (aliased) model
    /// name serves the request. At least one is required.
    #[serde(default)]
    #[schemars(length(min = 1, max = RULES_MAX), transform = rules::no_default)]
    pub rules: Vec<Rule>,
    /// Retry and failover behaviour. Unset fields use the data-plane defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Largest accepted request body in bytes, at most 1 GiB. Unset or 0: 32 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = BODY_BYTES_MAX))]
    pub max_request_body_bytes: Option<u64>,
    /// Teams, their tiers and budgets (see `docs/teams.md`). Unset: no limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<TeamsSpec>,
    /// Tiers added to, or overriding, the built-in ones. Each name once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = TIERS_MAX), transform = rules::list_map("name"))]
    pub tiers: Vec<TierSpec>,
    /// Model prices used for budgets, before the built-in table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = ALIASES_MAX))]
    pub pricing: Vec<ModelPricing>,
    /// Request and response guards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guards: Option<GuardsSpec>,
    /// Bring-your-own-key: whether callers may send their own provider key
    /// in the `x-switchboard-provider-key` header, used upstream instead of
    /// the backend's credential (Anthropic, OpenAI and OpenAICompatible
    /// backends). The caller is still identified, limited and counted by its
    /// gateway credential. Unset: `Off` (see `docs/byok.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byok: Option<Byok>,
}

/// Bring-your-own-key: whether callers may send their own provider key in the
/// `x-switchboard-provider-key` header, used upstream instead of the
/// backend's credential (Anthropic, OpenAI and OpenAICompatible backends;
/// `docs/byok.md`). Unset: `Off`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Byok {
    /// Callers' keys are ignored: the header is removed and every backend
    /// uses its own credential.
    #[default]
    Off,
    /// A caller's key, when sent, replaces the backend's credential; a
    /// request without one is served with the backend's credential.
    Optional,
    /// Every request must carry a caller's key (401 otherwise); the
    /// backend's credential is never used.
    Required,
}

fn default_path_prefix() -> String {
    "/".to_string()
}

/// Client authentication methods; at least one must be configured.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([auth_method()]))]
pub struct ClientAuth {
    /// Accept JWTs from one issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
    /// Accept static API keys (for small setups). Each name once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = API_KEYS_MAX), transform = rules::list_map("name"))]
    pub api_keys: Vec<ApiKey>,
}

/// JWT validation settings. Set exactly one of `jwksUri` and `inlineJwks`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([exactly_one("jwksUri", "inlineJwks")]))]
pub struct JwtAuth {
    /// Required `iss` claim.
    #[schemars(length(max = URL_MAX), transform = rules::cel([not_blank()]))]
    pub issuer: String,
    /// Accepted `aud` values; the token must carry one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = SHORT_LIST_MAX),
        inner(length(max = TEXT_MAX)),
        transform = rules::items(rules::cel([not_blank()]))
    )]
    pub audiences: Vec<String>,
    /// URL serving the issuer's JWKS. Must be https (http is allowed only for
    /// `localhost` and `127.0.0.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = URL_MAX), transform = rules::cel([rules::jwks_url()]))]
    pub jwks_uri: Option<String>,
    /// A JWKS document inline, as JSON (at most 64 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = JWKS_MAX))]
    pub inline_jwks: Option<String>,
    /// Extra request header the token may be read from, besides
    /// `Authorization: Bearer` and `x-api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TOKEN_MAX), transform = rules::cel([header_name()]))]
    pub token_header: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (a duration like `30s`, whole
    /// seconds). Unset: data-plane default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub leeway: Option<String>,
    /// Claims copied into upstream request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = SHORT_LIST_MAX))]
    pub forward_claims: Vec<ClaimHeader>,
    /// Minimum interval between two JWKS fetches (a duration). Unset:
    /// data-plane default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub jwks_min_refresh: Option<String>,
    /// How long a fetched JWKS is cached (a duration). Unset: data-plane default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub jwks_cache_duration: Option<String>,
}

/// A JWT claim forwarded upstream as a request header.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimHeader {
    /// Name of the claim, e.g. `sub`.
    #[schemars(length(max = TOKEN_MAX), transform = rules::cel([not_blank()]))]
    pub claim: String,
    /// Header to put its value in, e.g. `x-user`. Not a header the gateway
    /// sets or copies itself (`authorization`, `host`, `anthropic-beta`,
    /// `x-stainless-*`, ...; see `docs/auth.md`).
    #[schemars(
        length(max = TOKEN_MAX),
        transform = rules::cel([header_name(), claim_header_not_reserved()])
    )]
    pub header: String,
}

/// A static client API key. Set exactly one of `secretRef` and `env` (`env`
/// only in standalone mode).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([exactly_one("secretRef", "env"), no_env_in_cluster()]))]
pub struct ApiKey {
    /// Identity reported (in logs and metrics) for requests using this key.
    /// Unique within the route.
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([not_blank()]))]
    pub name: String,
    /// A key of a Secret in the route's namespace holding the key value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Environment variable holding the key value, read when the
    /// configuration is loaded. Standalone mode only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TOKEN_MAX))]
    pub env: Option<String>,
}

/// Rewrites a requested model name to a routed one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelAlias {
    /// Exact model name, or a glob where `*` matches any run of characters.
    #[schemars(length(max = MODEL_MAX), transform = rules::cel(glob()))]
    pub pattern: String,
    /// The model name to route instead (not a glob).
    #[schemars(length(max = MODEL_MAX), transform = rules::cel(model_name_not_glob()))]
    pub target: String,
}

/// Maps requested model names to a chain of backends.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Model names (exact or `*` globs) this rule serves. Empty: every model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = SHORT_LIST_MAX),
        inner(length(max = MODEL_MAX)),
        transform = rules::items(rules::cel(glob()))
    )]
    pub models: Vec<String>,
    /// Backends to try. Backends with the same `priority` form a group
    /// picked by weight; groups are tried in ascending priority. Every
    /// group needs a backend with a positive weight.
    #[schemars(
        length(min = 1, max = BACKEND_REFS_MAX),
        transform = rules::cel([group_weights()])
    )]
    pub backends: Vec<BackendRef>,
    /// Backends (same shape) to use when a backend rejects the request for
    /// its context length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = BACKEND_REFS_MAX),
        transform = rules::cel([group_weights()])
    )]
    pub context_fallback: Vec<BackendRef>,
}

/// A reference to an AIBackend in the route's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    /// Name of the AIBackend, in the route's namespace.
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub name: String,
    /// Priority group, 0 to 1000; lower is tried first. Default 0.
    #[serde(default)]
    #[schemars(range(max = PRIORITY_MAX))]
    pub priority: u32,
    /// Relative weight within the priority group, 0 to 1,000,000. Default 1;
    /// 0 takes the backend out of rotation (at least one backend of a group
    /// needs a positive weight).
    #[serde(default = "default_weight")]
    #[schemars(range(max = WEIGHT_MAX))]
    pub weight: u32,
    /// Model name to ask this backend for instead of the routed name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MODEL_MAX), transform = rules::cel([not_blank()]))]
    pub model: Option<String>,
}

fn default_weight() -> u32 {
    1
}

/// Retry and failover behaviour.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Longest `Retry-After` the gateway waits before retrying the same
    /// backend; longer ones fail over at once (a duration). Default `3s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub retry_after_cap: Option<String>,
    /// Base delay of the quick retry after a connect error or a 5xx, jittered
    /// (a duration). Default `100ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub backoff: Option<String>,
    /// Most upstream attempts per request across the whole chain, 1 to 20.
    /// Unset or 0: 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = MAX_ATTEMPTS_MAX))]
    pub max_attempts: Option<u32>,
    /// What happens when a stream dies after part of the answer reached the
    /// client and another candidate is left. Unset: `Auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_continuation: Option<StreamContinuation>,
}

/// How a stream cut after its first bytes is finished.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum StreamContinuation {
    /// Continue from the next candidate: with the text already sent as an
    /// assistant prefill where the provider accepts one (Anthropic
    /// Messages), otherwise by restarting the request there and passing on
    /// only what extends the text already sent; when neither works, end with
    /// an in-band error. Signed thinking and encrypted reasoning are never
    /// sent to another provider.
    Auto,
    /// Continue only where an assistant prefill is possible.
    Prefill,
    /// Never continue: end the stream with an in-band error.
    Off,
}
