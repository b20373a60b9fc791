//! The Azure parts of an `AIBackend`: the `azure` settings block and the
//! `credentials.azure` (Microsoft Entra ID) sources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::{self, *};

/// Azure OpenAI settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([azure_api_version_for_api()]))]
pub struct AzureSettings {
    /// Which request URLs are used. `V1` (default): the v1 API,
    /// `{endpoint}/openai/v1/chat/completions` and `/openai/v1/responses`,
    /// the deployment name in the body's `model`. `Deployments`: the
    /// classic `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`.
    /// Either way the deployment name is the model's `providerModel`
    /// (`models[].providerModel`, defaulting to its `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<AzureApi>,
    /// The `api-version` query parameter. With `Deployments`: a dated
    /// version such as `2024-10-21` (the default) or `2025-04-01-preview`.
    /// With `V1`: unset (no parameter), `preview` or `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([azure_api_version()]))]
    pub api_version: Option<String>,
}

/// The Azure OpenAI URL family of a backend.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AzureApi {
    /// `/openai/v1/…`, the deployment in the body's `model`.
    #[default]
    V1,
    /// `/openai/deployments/{deployment}/…?api-version=…`.
    Deployments,
}

/// The `api-version` used with `Deployments` when none is set.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// Microsoft Entra ID credentials of an Azure OpenAI backend: the data
/// plane gets access tokens for `https://cognitiveservices.azure.com/.default`,
/// caches them and refreshes them before they expire. Set exactly one field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([exactly_one_of(&["clientSecret", "workloadIdentity"])]))]
pub struct AzureCredentials {
    /// An app registration's client secret (the OAuth2 client-credentials
    /// grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<AzureClientSecret>,
    /// AKS workload identity (workload identity federation): the data
    /// plane's projected service-account token (`AZURE_FEDERATED_TOKEN_FILE`)
    /// is exchanged as a client assertion, for the client and tenant the
    /// AKS webhook sets (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`,
    /// `AZURE_AUTHORITY_HOST`) unless given here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<AzureWorkloadIdentity>,
}

/// An app registration's client secret, kept in a Secret of the backend's
/// namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureClientSecret {
    /// The directory (tenant) id: a GUID, or a domain such as
    /// `contoso.onmicrosoft.com`.
    #[schemars(length(min = 1, max = NAME_MAX), transform = rules::cel([azure_tenant()]))]
    pub tenant_id: String,
    /// The application (client) id, a GUID.
    #[schemars(length(min = 1, max = LABEL_MAX), transform = rules::cel([azure_guid()]))]
    pub client_id: String,
    /// Name of the Secret holding the client secret.
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub secret_name: String,
    /// Key of the Secret holding the client secret. Default: `clientSecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub key: Option<String>,
    /// The Microsoft Entra authority. Default:
    /// `https://login.microsoftonline.com` (set it for a sovereign cloud,
    /// e.g. `https://login.microsoftonline.us`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = URL_MAX), transform = rules::cel([http_url()]))]
    pub authority_host: Option<String>,
}

/// The Secret key a client secret is read from by default.
pub const DEFAULT_AZURE_SECRET_KEY: &str = "clientSecret";

/// AKS workload identity settings; both fields are optional.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureWorkloadIdentity {
    /// The application (client) id, a GUID. Default: the pod's
    /// `AZURE_CLIENT_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([azure_guid()]))]
    pub client_id: Option<String>,
    /// The directory (tenant) id. Default: the pod's `AZURE_TENANT_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = NAME_MAX), transform = rules::cel([azure_tenant()]))]
    pub tenant_id: Option<String>,
}
