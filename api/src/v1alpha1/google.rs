//! The Google Cloud parts of an `AIBackend`: the `vertex` settings block and
//! the `credentials.gcp` sources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::{self, *};

/// Google Vertex AI settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::require("project"))]
#[schemars(transform = rules::require("region"))]
pub struct VertexSettings {
    /// The Google Cloud project id the requests are billed to, e.g.
    /// `my-project-123456`.
    #[serde(default)]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([gcp_project()]))]
    #[schemars(transform = rules::no_default)]
    pub project: String,
    /// The Vertex AI location: a region such as `us-east5` or
    /// `europe-west1`, `global` (host `aiplatform.googleapis.com`), or the
    /// multi-regions `us` / `eu` (hosts `aiplatform.{us|eu}.rep.googleapis.com`).
    #[serde(default)]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([gcp_region()]))]
    #[schemars(transform = rules::no_default)]
    pub region: String,
    /// `anthropic-beta` flags forwarded to Claude models on Vertex (as the
    /// `anthropic-beta` header); others are dropped, because Vertex refuses
    /// a request naming a flag it does not know. Unset: the gateway's
    /// default list of betas Vertex accepts (`docs/providers/vertex.md`);
    /// empty: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = SHORT_LIST_MAX),
        inner(length(max = TOKEN_MAX)),
        transform = rules::items(rules::cel([beta_flag()]))
    )]
    pub allowed_betas: Option<Vec<String>>,
}

/// Where the Google Cloud credentials of a Vertex AI backend come from: the
/// data plane exchanges them for OAuth2 access tokens (scope
/// `cloud-platform`), cached and refreshed before they expire. Set exactly
/// one field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([exactly_one_of(&["serviceAccountKey", "workloadIdentity"])]))]
pub struct GcpCredentials {
    /// A service-account key file (JSON, as `gcloud iam service-accounts
    /// keys create` writes it) in a Secret: the data plane signs a JWT with
    /// its private key and exchanges it at the key's `token_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_key: Option<GcpServiceAccountKey>,
    /// GKE Workload Identity (or any GCE / Cloud Run workload): access
    /// tokens from the metadata server (`GCE_METADATA_HOST`, default
    /// `metadata.google.internal`) for the Google service account the data
    /// plane's Kubernetes service account is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<GcpWorkloadIdentity>,
}

/// A service-account key file in a Secret of the backend's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpServiceAccountKey {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub secret_name: String,
    /// Key of the Secret holding the JSON key file. Default: `key.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub key: Option<String>,
}

/// The Secret key a service-account key file is read from by default.
pub const DEFAULT_GCP_KEY: &str = "key.json";

/// Tokens from the GCE / GKE metadata server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpWorkloadIdentity {
    /// The Google service account (its email) whose token is asked for.
    /// Default: `default`, the account the workload runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = NAME_MAX), transform = rules::cel([gcp_service_account()]))]
    pub service_account: Option<String>,
}
