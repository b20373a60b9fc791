//! The status shared by both resources.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of an AIBackend or AIRoute, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// Current conditions: `Accepted` (the spec is valid), `ResolvedRefs`
    /// (every referenced backend and Secret exists) and `Programmed` (data
    /// planes serve it). See `switchboard_api::conditions` for the reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the conditions were computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last generation the controller accepted, with a copy of its spec.
    /// While a newer generation is refused, data planes keep serving this one
    /// (rendered with the current Secrets), also after a controller restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accepted: Option<LastAcceptedStatus>,
}

/// The last accepted generation of an object and its spec (`status.lastAccepted`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct LastAcceptedStatus {
    /// The accepted `metadata.generation`.
    #[serde(default)]
    pub generation: i64,
    /// A copy of the accepted spec, exactly as it was accepted (kept
    /// free-form, so a later schema change never makes the copy invalid).
    #[serde(default)]
    #[schemars(schema_with = "free_form_object")]
    pub spec: serde_json::Value,
}

fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
