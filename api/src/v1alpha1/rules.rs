//! The CRD schema's validation: size bounds and CEL `x-kubernetes-validations`
//! rules, attached to the types with `#[schemars(length(..), range(..))]` and
//! `#[schemars(transform = ...)]`, so the API server refuses an invalid object
//! at `kubectl apply` with the field path.
//!
//! Every rule here has a twin in the renderer ([`crate::render`](mod@crate::render)), which runs
//! where there is no API server (standalone mode) and checks what the schema
//! cannot (references to other objects, regular expressions, JSON). The size
//! bounds are not written twice: the renderer reads them from the generated
//! schema. `api/tests/fixtures/validation/invalid.yaml` is the table of
//! invalid objects both must refuse, with the field path.
//!
//! CEL cost: the API server estimates each rule's worst case from the bounds
//! (`maxLength`, `maxItems`, `maxProperties`) and refuses a CRD over budget,
//! which is why every string and list here is bounded.
//!
//! How rules are attached: schemars 1 runs `#[schemars(transform = f)]` on the
//! schema of a field or type, and `kube::core::validate` appends a
//! `kube::core::Rule` (rule, message, `fieldPath`, `reason`) to it. kube's
//! `KubeSchema` derive (`#[x_kube(validation = ...)]`) does the same, but
//! derives a copy of the struct for every validated field; a transform keeps
//! the one `JsonSchema` derive.

use kube::core::{Reason, Rule};
use schemars::Schema;

// ---- Size bounds -----------------------------------------------------------

/// Names of Kubernetes objects and Secret keys (a DNS subdomain is at most 253).
pub const NAME_MAX: u32 = 253;
/// Names of API keys, tiers and teams, reported as metric label values.
pub const LABEL_MAX: u32 = 63;
/// Model names, provider model ids and model globs.
pub const MODEL_MAX: u32 = 256;
/// URLs.
pub const URL_MAX: u32 = 2048;
/// Duration strings (`1h2m3s4ms` is 9; 5 digits per unit is 25).
pub const DURATION_MAX: u32 = 32;
/// Header names, claim names and similar short tokens.
pub const TOKEN_MAX: u32 = 256;
/// Free text shown to clients (messages, replacements, issuers).
pub const TEXT_MAX: u32 = 1024;
/// Regular expressions.
pub const REGEX_MAX: u32 = 1024;
/// An inline JWKS document (several RSA keys fit comfortably).
pub const JWKS_MAX: u32 = 65_536;
/// The mock provider's fixed reply.
pub const REPLY_MAX: u32 = 65_536;

/// Models one backend serves.
pub const MODELS_MAX: u32 = 256;
/// Rules of one route.
pub const RULES_MAX: u32 = 64;
/// Model globs of one rule, hostnames of one route, and other short lists.
pub const SHORT_LIST_MAX: u32 = 32;
/// Backends of one rule (`backends` or `contextFallback`).
pub const BACKEND_REFS_MAX: u32 = 16;
/// Aliases and prices of one route.
pub const ALIASES_MAX: u32 = 256;
/// Static API keys of one route.
pub const API_KEYS_MAX: u32 = 64;
/// Teams of one route.
pub const TEAMS_MAX: u32 = 128;
/// API keys one team claims.
pub const TEAM_KEYS_MAX: u32 = 16;
/// Claim values mapped to teams.
pub const MAPPING_MAX: u32 = 256;
/// Tiers of one route.
pub const TIERS_MAX: u32 = 32;

/// Largest backend weight (as Gateway API's `BackendRef.weight`).
pub const WEIGHT_MAX: u32 = 1_000_000;
/// Largest backend priority.
pub const PRIORITY_MAX: u32 = 1_000;
/// Largest context window, in tokens.
pub const CONTEXT_WINDOW_MAX: u32 = 100_000_000;
/// Largest consecutive-failure count of the circuit breaker.
pub const FAILURES_MAX: u32 = 1_000;
/// Largest `retry.maxAttempts`.
pub const MAX_ATTEMPTS_MAX: u32 = 20;
/// Largest `maxRequestBodyBytes` (1 GiB).
pub const BODY_BYTES_MAX: u64 = 1 << 30;
/// Largest requests-per-minute limit.
pub const RPM_MAX: u64 = 1_000_000_000;
/// Largest tokens-per-day limit.
pub const TOKENS_PER_DAY_MAX: u64 = 1_000_000_000_000_000;
/// Largest budget, in USD per period.
pub const BUDGET_USD_MAX: f64 = 1e9;
/// Largest price, in USD per million tokens.
pub const PRICE_MAX: f64 = 1e6;

// ---- Regular expressions shared by CEL rules and their renderer twins --------

/// A duration: `<digits><unit>` pairs (1 to 5 digits; units `h`, `m`, `s`,
/// `ms`, each at most once, largest first), or a bare `0`. The empty string
/// also matches; rules pair it with a non-empty check.
pub const DURATION_RE: &str = "^(0|([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,5}s)?([0-9]{1,5}ms)?)$";
/// One Unicode whitespace character: exactly Rust's `char::is_whitespace`,
/// spelled out so RE2 (the API server) and the `regex` crate read it alike.
pub const WHITESPACE_RE: &str =
    r"[\x09-\x0d\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]";
/// A URL spelled with RFC 3986 characters only (ASCII letters, digits and
/// `-._~:/?#[]@!$&'()*+,;=%`): no whitespace, controls, non-ASCII (write an
/// internationalized host in punycode) or characters such as `<`, `{` or `|`
/// that one URL parser accepts and another refuses (the API server's, the
/// renderer's and the data plane's must all agree).
pub const URL_CHARS_RE: &str = r"^[-A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%]+$";
/// An HTTP header name (RFC 9110 token).
pub const HEADER_NAME_RE: &str = "^[-!#$%&'*+.^_`|~0-9A-Za-z]+$";
/// A team name.
pub const TEAM_NAME_RE: &str = "^[A-Za-z0-9._-]{1,63}$";
/// Characters a model glob may not contain (only `*` is a wildcard).
pub const GLOB_FORBIDDEN_RE: &str = r"[?\[\]{}\\]";
/// Printable ASCII without spaces (an `anthropic-version`).
pub const VISIBLE_ASCII_RE: &str = "^[!-~]+$";
/// The start of a plain-http URL to the local host.
pub const LOOPBACK_HTTP_RE: &str = "^http://(localhost|127[.]0[.]0[.]1)([:/]|$)";
/// An AWS region name (`us-east-1`, `us-gov-west-1`, `eusc-de-east-1`).
pub const AWS_REGION_RE: &str = "^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$";
/// An IAM role ARN (`arn:aws:iam::123456789012:role/path/name`, any partition).
pub const ROLE_ARN_RE: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$";
/// An STS `RoleSessionName`.
pub const ROLE_SESSION_NAME_RE: &str = "^[A-Za-z0-9+=,.@_-]{2,64}$";
/// A Google Cloud project id (6-30 lowercase letters, digits and hyphens,
/// starting with a letter), optionally domain-scoped (`example.com:my-project`).
pub const GCP_PROJECT_RE: &str = "^([a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$";
/// A Vertex AI location: a region (`us-east5`, `europe-west1`), `global`,
/// or a multi-region (`us`, `eu`).
pub const GCP_REGION_RE: &str = "^(global|us|eu|[a-z]+-[a-z]+[0-9]{1,2})$";
/// A Google service account on the metadata server: `default` or an email.
pub const GCP_SERVICE_ACCOUNT_RE: &str = "^[A-Za-z0-9._%+-]+(@[A-Za-z0-9.-]+)?$";
/// A GUID (Azure client and tenant ids).
pub const AZURE_GUID_RE: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// An Azure tenant: a GUID or a domain name (`contoso.onmicrosoft.com`).
pub const AZURE_TENANT_RE: &str = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+)$";
/// An Azure OpenAI `api-version`: dated (`2024-10-21`, `2025-04-01-preview`),
/// `preview` or `latest`.
pub const AZURE_API_VERSION_RE: &str = "^(preview|latest|[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?)$";
/// A dotted field path: non-empty segments separated by `.`.
pub const FIELD_PATH_RE: &str = r"^[^.]+(\.[^.]+)*$";

/// Built-in tier names (see [`crate::render::BUILTIN_TIERS`]), as a CEL list.
fn builtin_tiers() -> String {
    let names: Vec<String> = crate::render::BUILTIN_TIERS
        .iter()
        .map(|(name, ..)| format!("'{name}'"))
        .collect();
    format!("[{}]", names.join(", "))
}

// ---- Attaching rules ---------------------------------------------------------

/// A schema transform adding `rules` to the schema it is applied to:
/// `#[schemars(transform = rules::cel([...]))]`.
pub fn cel<const N: usize>(rules: [Rule; N]) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        for rule in rules.iter().cloned() {
            // Adding a rule to an object schema cannot fail.
            let _ = kube::core::validate(schema, rule);
        }
    }
}

/// A schema transform applying `inner` to the schema of a list's items.
pub fn items(mut inner: impl FnMut(&mut Schema)) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        if let Some(items) = schema
            .get_mut("items")
            .and_then(|i| <&mut Schema>::try_from(i).ok())
        {
            inner(items);
        }
    }
}

/// A schema transform bounding the values of a string map (`maxLength`) and
/// its size (`maxProperties`).
pub fn string_map(max_entries: u32, max_value_len: u32) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        schema.insert("maxProperties".into(), max_entries.into());
        if let Some(values) = schema
            .get_mut("additionalProperties")
            .and_then(|v| v.as_object_mut())
        {
            values.insert("maxLength".into(), max_value_len.into());
        }
    }
}

/// A schema transform marking a list of objects as a map keyed by `key`:
/// the API server refuses two items with the same key (and server-side
/// apply merges items by key).
pub fn list_map(key: &'static str) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        schema.insert("x-kubernetes-list-type".into(), "map".into());
        schema.insert("x-kubernetes-list-map-keys".into(), vec![key].into());
    }
}

/// A schema transform adding `field` to an object's `required` list (for a
/// field Rust defaults when deserializing, so the renderer can name it).
pub fn require(field: &'static str) -> impl FnMut(&mut Schema) {
    move |schema: &mut Schema| {
        let required = schema
            .ensure_object()
            .entry("required")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(list) = required.as_array_mut()
            && !list.iter().any(|f| f == field)
        {
            list.push(field.into());
        }
    }
}

/// A schema transform dropping a field's `default` (for a required field that
/// Rust still defaults when deserializing, so the renderer can say it is missing).
pub fn no_default(schema: &mut Schema) {
    schema.remove("default");
}

/// A schema transform marking a list of strings as a set (no duplicates).
pub fn list_set(schema: &mut Schema) {
    schema.insert("x-kubernetes-list-type".into(), "set".into());
}

fn rule(expr: impl Into<String>, message: &str) -> Rule {
    Rule::new(expr).message(message)
}

// ---- Rules on one string -------------------------------------------------------

/// A duration as [`crate::render::parse_duration_ms`] parses it.
pub fn duration() -> Rule {
    rule(
        format!("self != '' && self.matches('{DURATION_RE}')"),
        "must be a duration like 500ms, 5s, 2m or 1m30s: whole numbers of at most 5 digits with units h, m, s, ms, largest first (or 0)",
    )
}

/// Not empty and not only whitespace.
pub fn not_blank() -> Rule {
    rule("self.trim() != ''", "must not be empty")
}

/// A provider or webhook URL.
pub fn http_url() -> Rule {
    rule(
        format!(
            r#"isURL(self) && (self.startsWith('http://') || self.startsWith('https://')) && self.matches(r"{URL_CHARS_RE}") && !self.matches('[?#]') && url(self).getHostname() != '' && (url(self).getPort() == '' || int(url(self).getPort()) <= 65535)"#
        ),
        "must be an http:// or https:// URL with a host and no query or fragment, in RFC 3986 characters (ASCII; no spaces, <, >, {, }, |, ^ or `)",
    )
}

/// A JWKS URL: https, or http for `localhost` and `127.0.0.1` only (spelled
/// in lower case).
pub fn jwks_url() -> Rule {
    rule(
        format!(
            r#"isURL(self) && self.matches(r"{URL_CHARS_RE}") && (url(self).getPort() == '' || int(url(self).getPort()) <= 65535) && ((self.startsWith('https://') && url(self).getHostname() != '') || (self.matches('{LOOPBACK_HTTP_RE}') && url(self).getHostname() in ['localhost', '127.0.0.1']))"#
        ),
        "must be an https:// URL (http:// only for localhost or 127.0.0.1), in RFC 3986 characters (ASCII; no spaces, <, >, {, }, |, ^ or `)",
    )
}

/// Headers a forwarded claim may not use, besides any `x-stainless-*`: the
/// gateway sets them itself, they describe the connection, or the data plane
/// copies them from the client (see `docs/auth.md`).
pub const RESERVED_CLAIM_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "host",
    "connection",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "accept",
    "accept-encoding",
    "user-agent",
    "openai-beta",
    "openai-organization",
    "idempotency-key",
    "anthropic-version",
    "anthropic-beta",
];

/// Prefix of headers a forwarded claim may not use (the SDKs' own headers,
/// which the data plane copies from the client).
pub const RESERVED_CLAIM_HEADER_PREFIX: &str = "x-stainless-";

/// Whether a forwarded claim may not use header `name` (any case).
pub fn is_reserved_claim_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    RESERVED_CLAIM_HEADERS.contains(&name.as_str())
        || name.starts_with(RESERVED_CLAIM_HEADER_PREFIX)
}

/// A header a forwarded claim may use: not one of [`RESERVED_CLAIM_HEADERS`].
pub fn claim_header_not_reserved() -> Rule {
    let list: Vec<String> = RESERVED_CLAIM_HEADERS
        .iter()
        .map(|h| format!("'{h}'"))
        .collect();
    rule(
        format!(
            "!(self.lowerAscii() in [{}]) && !self.lowerAscii().startsWith('{RESERVED_CLAIM_HEADER_PREFIX}')",
            list.join(", ")
        ),
        "is reserved: the gateway sets this header itself or copies it from the client",
    )
}

/// An HTTP header name.
pub fn header_name() -> Rule {
    rule(
        format!(r#"self.matches("{HEADER_NAME_RE}")"#),
        "must be a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
    )
}

/// The three rules of a model glob (an exact name, or `*` wildcards).
pub fn glob() -> [Rule; 3] {
    [
        rule("self != ''", "empty model pattern"),
        rule(
            format!("!self.matches(r'{GLOB_FORBIDDEN_RE}')"),
            "only `*` wildcards are supported (no ?, [, ], {, } or \\)",
        ),
        rule(
            format!("!self.matches(r'{WHITESPACE_RE}')"),
            "whitespace is not allowed in a model pattern",
        ),
    ]
}

/// A routed model name (an alias target): not blank, not a glob.
pub fn model_name_not_glob() -> [Rule; 2] {
    [
        not_blank(),
        rule("!self.contains('*')", "must be a model name, not a pattern"),
    ]
}

/// A request path prefix.
pub fn path_prefix() -> [Rule; 2] {
    [
        rule("self.startsWith('/')", "must start with '/'"),
        rule(
            format!("!self.matches('[?#]') && !self.matches(r'{WHITESPACE_RE}')"),
            "must be a plain path (no '?', '#' or whitespace)",
        ),
    ]
}

/// A host name as a route matches it.
pub fn hostname() -> Rule {
    rule(
        format!("self != '' && !self.matches('[/:]') && !self.matches(r'{WHITESPACE_RE}')"),
        "must be a plain host name (no scheme, port, path or whitespace)",
    )
}

/// An `anthropic-version` value.
pub fn anthropic_version() -> Rule {
    rule(
        format!("self.matches('{VISIBLE_ASCII_RE}')"),
        "must be printable ASCII without spaces, e.g. 2023-06-01",
    )
}

/// One `anthropic-beta` flag.
pub fn beta_flag() -> Rule {
    rule(
        "self.trim() != '' && !self.contains(',')",
        "must be one non-empty beta flag (no commas)",
    )
}

/// An AWS region name.
pub fn aws_region() -> Rule {
    rule(
        format!("self.matches('{AWS_REGION_RE}')"),
        "must be an AWS region name like us-east-1",
    )
}

/// A Google Cloud project id.
pub fn gcp_project() -> Rule {
    rule(
        format!("self.matches('{GCP_PROJECT_RE}')"),
        "must be a Google Cloud project id like my-project-123456 (6-30 lowercase letters, digits or hyphens, starting with a letter)",
    )
}

/// A Vertex AI location.
pub fn gcp_region() -> Rule {
    rule(
        format!("self.matches('{GCP_REGION_RE}')"),
        "must be a Vertex AI location like us-east5 or europe-west1, global, us or eu",
    )
}

/// A service account on the metadata server.
pub fn gcp_service_account() -> Rule {
    rule(
        format!("self.matches('{GCP_SERVICE_ACCOUNT_RE}')"),
        "must be default or a service account email like gateway@my-project.iam.gserviceaccount.com",
    )
}

/// A GUID.
pub fn azure_guid() -> Rule {
    rule(
        format!("self.matches('{AZURE_GUID_RE}')"),
        "must be a GUID like 00000000-0000-0000-0000-000000000000",
    )
}

/// An Azure tenant.
pub fn azure_tenant() -> Rule {
    rule(
        format!("self.matches('{AZURE_TENANT_RE}')"),
        "must be a tenant GUID or a domain like contoso.onmicrosoft.com",
    )
}

/// An Azure OpenAI `api-version`.
pub fn azure_api_version() -> Rule {
    rule(
        format!("self.matches('{AZURE_API_VERSION_RE}')"),
        "must be a dated api-version like 2024-10-21 or 2025-04-01-preview, preview or latest",
    )
}

/// An IAM role ARN.
pub fn role_arn() -> Rule {
    rule(
        format!("self.matches(r'{ROLE_ARN_RE}')"),
        "must be an IAM role ARN like arn:aws:iam::123456789012:role/name",
    )
}

/// An STS role session name.
pub fn role_session_name() -> Rule {
    rule(
        format!("self.matches('{ROLE_SESSION_NAME_RE}')"),
        "must be 2-64 letters, digits or +=,.@_-",
    )
}

/// A team name.
pub fn team_name() -> [Rule; 2] {
    [
        rule(
            format!("self.matches('{TEAM_NAME_RE}')"),
            "invalid team name: use 1-63 letters, digits, '-', '_' or '.'",
        ),
        rule(
            "!(self in ['unknown', 'none'])",
            "is reserved for callers without a team",
        ),
    ]
}

/// A budget period.
pub fn budget_period() -> Rule {
    rule(
        "self in ['day', 'week', 'month']",
        "must be day, week or month",
    )
}

/// A request body field to remove.
pub fn remove_field() -> [Rule; 2] {
    [
        rule(
            format!("self.matches(r'{FIELD_PATH_RE}')"),
            "must be a field path like metadata or metadata.user_id",
        ),
        rule("self != 'model'", "`model` cannot be removed"),
    ]
}

// ---- Rules across fields of one object -----------------------------------------

/// Exactly one of two optional fields.
pub fn exactly_one(a: &str, b: &str) -> Rule {
    rule(
        format!("has(self.{a}) != has(self.{b})"),
        &format!("set exactly one of {a} and {b}"),
    )
}

/// Exactly one of several optional fields.
pub fn exactly_one_of(fields: &[&str]) -> Rule {
    let has: Vec<String> = fields.iter().map(|f| format!("has(self.{f})")).collect();
    rule(
        format!("[{}].filter(x, x).size() == 1", has.join(", ")),
        &format!("set exactly one of {}", one_of_list(fields)),
    )
}

/// `a, b and c`.
pub fn one_of_list(fields: &[&str]) -> String {
    match fields.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => fields.join(""),
    }
}

/// The AWS credential sources: exactly one.
pub fn aws_source() -> Rule {
    exactly_one_of(&["accessKey", "environment", "webIdentity", "podIdentity"])
}

/// `aws.environment` is for standalone mode; the API server refuses it.
pub fn no_aws_environment_in_cluster() -> Rule {
    rule(
        "!has(self.environment)",
        "environment variables are only allowed in standalone mode; use accessKey, webIdentity or podIdentity",
    )
    .field_path(".environment")
    .reason(Reason::FieldValueForbidden)
}

/// A `Bedrock` backend has `bedrock` settings.
pub fn bedrock_settings_required() -> Rule {
    rule(
        "self.provider != 'Bedrock' || has(self.bedrock)",
        "bedrock settings (at least region) are required for provider Bedrock",
    )
    .field_path(".bedrock")
    .reason(Reason::FieldValueRequired)
}

/// `credentials.aws` is used only by `Bedrock` backends.
pub fn aws_credentials_only_for_bedrock() -> Rule {
    rule(
        "!has(self.credentials) || !has(self.credentials.aws) || self.provider == 'Bedrock'",
        "aws credentials are only used by provider Bedrock",
    )
    .field_path(".credentials.aws")
    .reason(Reason::FieldValueForbidden)
}

/// A `VertexAI` backend has `vertex` settings.
pub fn vertex_settings_required() -> Rule {
    rule(
        "self.provider != 'VertexAI' || has(self.vertex)",
        "vertex settings (project and region) are required for provider VertexAI",
    )
    .field_path(".vertex")
    .reason(Reason::FieldValueRequired)
}

/// `credentials.gcp` is used only by `VertexAI` backends.
pub fn gcp_credentials_only_for_vertex() -> Rule {
    rule(
        "!has(self.credentials) || !has(self.credentials.gcp) || self.provider == 'VertexAI'",
        "gcp credentials are only used by provider VertexAI",
    )
    .field_path(".credentials.gcp")
    .reason(Reason::FieldValueForbidden)
}

/// A `VertexAI` backend authenticates with `credentials.gcp`, not an API key.
pub fn vertex_without_api_key() -> Rule {
    rule(
        "self.provider != 'VertexAI' || !has(self.credentials) || has(self.credentials.gcp)",
        "provider VertexAI authenticates with credentials.gcp (a service-account key or workload identity), not an API key",
    )
    .field_path(".credentials")
    .reason(Reason::FieldValueForbidden)
}

/// `endpoint` is required for an `AzureOpenAI` backend.
pub fn azure_endpoint_required() -> Rule {
    rule(
        "self.provider != 'AzureOpenAI' || has(self.endpoint)",
        "endpoint is required for provider AzureOpenAI, e.g. https://my-resource.openai.azure.com",
    )
    .field_path(".endpoint")
    .reason(Reason::FieldValueRequired)
}

/// `credentials.azure` is used only by `AzureOpenAI` backends.
pub fn azure_credentials_only_for_azure() -> Rule {
    rule(
        "!has(self.credentials) || !has(self.credentials.azure) || self.provider == 'AzureOpenAI'",
        "azure credentials are only used by provider AzureOpenAI",
    )
    .field_path(".credentials.azure")
    .reason(Reason::FieldValueForbidden)
}

/// `azure.apiVersion` fits `azure.api`: dated with `Deployments`, `preview`
/// or `latest` with `V1`.
pub fn azure_api_version_for_api() -> Rule {
    rule(
        "!has(self.apiVersion) || ((has(self.api) && self.api == 'Deployments') == !(self.apiVersion in ['preview', 'latest']))",
        "apiVersion must be a dated version like 2024-10-21 with api Deployments, and preview or latest with api V1",
    )
    .field_path(".apiVersion")
}

/// `env` credentials are for standalone mode; the API server refuses them.
pub fn no_env_in_cluster() -> Rule {
    rule(
        "!has(self.env)",
        "environment variables are only allowed in standalone mode; use secretRef",
    )
    .field_path(".env")
    .reason(Reason::FieldValueForbidden)
}

/// A provider settings block used only by `providers`.
pub fn settings_only_for(block: &str, providers: &[&str]) -> Rule {
    let list: Vec<String> = providers.iter().map(|p| format!("'{p}'")).collect();
    rule(
        format!(
            "!has(self.{block}) || self.provider in [{}]",
            list.join(", ")
        ),
        &format!(
            "{block} settings are only used by provider {}",
            providers.join(" and ")
        ),
    )
    .field_path(format!(".{block}"))
    .reason(Reason::FieldValueForbidden)
}

/// `endpoint` is required for an `OpenAICompatible` backend.
pub fn endpoint_required() -> Rule {
    rule(
        "self.provider != 'OpenAICompatible' || has(self.endpoint)",
        "endpoint is required for provider OpenAICompatible",
    )
    .field_path(".endpoint")
    .reason(Reason::FieldValueRequired)
}

/// `maxEjection` is not shorter than `baseEjection` (0 means the default).
pub fn ejection_order() -> Rule {
    rule(
        format!(
            "!has(self.baseEjection) || !has(self.maxEjection) || !self.baseEjection.matches('{DURATION_RE}') || !self.maxEjection.matches('{DURATION_RE}') || self.baseEjection == '' || self.maxEjection == '' || duration(self.maxEjection) == duration('0s') || duration(self.maxEjection) >= duration(self.baseEjection)"
        ),
        "maxEjection must not be shorter than baseEjection",
    )
    .field_path(".maxEjection")
}

/// Every priority group of a list of backend references has a backend with
/// a positive weight.
pub fn group_weights() -> Rule {
    rule(
        "self.all(b, self.exists(c, c.priority == b.priority && c.weight > 0))",
        "every priority group needs a backend with a positive weight (0 drains a backend)",
    )
}

/// Client auth configures at least one method.
pub fn auth_method() -> Rule {
    rule(
        "has(self.jwt) || (has(self.apiKeys) && size(self.apiKeys) > 0)",
        "configure jwt or apiKeys (remove auth entirely for an open route, local use only)",
    )
}

/// Every `mapping` value names a team.
pub fn mapping_targets() -> Rule {
    rule(
        "!has(self.mapping) || self.mapping.all(k, has(self.teams) && self.teams.exists(t, t.name == self.mapping[k]))",
        "every mapping value must be the name of a team in teams",
    )
    .field_path(".mapping")
}

/// The route's tier references: `teams.defaultTier` and `teams.teams[].tier`
/// name a built-in tier or one of `tiers`.
pub fn known_tiers() -> [Rule; 2] {
    let builtin = builtin_tiers();
    [
        rule(
            format!(
                "!has(self.teams) || !has(self.teams.defaultTier) || self.teams.defaultTier in {builtin} || (has(self.tiers) && self.tiers.exists(x, x.name == self.teams.defaultTier))"
            ),
            "unknown tier: use a built-in tier (sandbox, standard, premium, enterprise) or one of tiers",
        )
        .field_path(".teams.defaultTier"),
        rule(
            format!(
                "!has(self.teams) || !has(self.teams.teams) || self.teams.teams.all(t, !has(t.tier) || t.tier in {builtin} || (has(self.tiers) && self.tiers.exists(x, x.name == t.tier)))"
            ),
            "unknown tier in teams[].tier: use a built-in tier (sandbox, standard, premium, enterprise) or one of tiers",
        )
        .field_path(".teams.teams"),
    ]
}

/// The teams' API keys name entries of `auth.apiKeys`, each in one team at most.
pub fn team_api_keys() -> [Rule; 2] {
    [
        rule(
            "!has(self.teams) || !has(self.teams.teams) || self.teams.teams.all(t, !has(t.apiKeys) || t.apiKeys.all(k, has(self.auth) && has(self.auth.apiKeys) && self.auth.apiKeys.exists(a, a.name == k)))",
            "every teams[].apiKeys entry must be the name of an entry of auth.apiKeys",
        )
        .field_path(".teams.teams"),
        rule(
            "!has(self.teams) || !has(self.teams.teams) || !has(self.auth) || !has(self.auth.apiKeys) || self.auth.apiKeys.all(a, self.teams.teams.filter(t, has(t.apiKeys) && a.name in t.apiKeys).size() <= 1)",
            "an API key belongs to one team at most",
        )
        .field_path(".teams.teams"),
    ]
}

#[cfg(test)]
mod tests;
