//! `AIRoute` guards: checks and rewrites applied to requests and responses.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::{self, *};

/// Request and response guards of a route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardsSpec {
    /// Prompts matching one of these are refused (400) with the pattern's message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = SHORT_LIST_MAX))]
    pub blocked_patterns: Vec<BlockedPattern>,
    /// Top-level request body fields removed before forwarding, e.g. `metadata`.
    /// A dotted path (`metadata.user_id`) removes a nested field; `model`
    /// cannot be removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = SHORT_LIST_MAX),
        inner(length(max = TOKEN_MAX)),
        transform = rules::items(rules::cel(remove_field()))
    )]
    pub remove_fields: Vec<String>,
    /// Asks an external service to allow or reject each request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
    /// Masks sensitive text in responses, streamed ones included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskSpec>,
}

/// A refused prompt pattern.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockedPattern {
    /// A regular expression (Rust `regex` syntax), e.g. `(?i)BEGIN [A-Z ]*PRIVATE KEY`.
    #[schemars(length(max = REGEX_MAX))]
    pub pattern: String,
    /// Message shown to the client. Unset: `prompt matches a blocked pattern`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TEXT_MAX))]
    pub message: Option<String>,
}

/// A request webhook. It receives a JSON summary of each request (route,
/// team, subject, model, API, stream, prompt text) and answers
/// `{"action":"allow"}` or `{"action":"reject","reason":"..."}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// URL receiving a `POST` per request (http or https).
    #[schemars(length(max = URL_MAX), transform = rules::cel([http_url()]))]
    pub url: String,
    /// Longest wait for an answer (a duration). Default `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub timeout: Option<String>,
    /// Allow requests when the webhook fails or times out. Default false
    /// (fail closed: 503).
    #[serde(default)]
    pub fail_open: bool,
    /// Status of a rejected request, 400 to 599. Default 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 400, max = 599))]
    pub reject_status: Option<u16>,
}

/// What to mask in responses.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaskSpec {
    /// Mask email addresses.
    #[serde(default)]
    pub emails: bool,
    /// Mask phone numbers.
    #[serde(default)]
    pub phone_numbers: bool,
    /// More regular expressions to mask.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = SHORT_LIST_MAX), inner(length(max = REGEX_MAX)))]
    pub patterns: Vec<String>,
    /// Replacement text. Default `[REDACTED]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TOKEN_MAX))]
    pub replacement: Option<String>,
}
