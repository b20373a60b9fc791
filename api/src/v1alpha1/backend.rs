//! `AIBackend`: one provider endpoint, its credentials and the models it serves.
// Several `printcolumn(...)` entries repeat `type_ = "string"`; that is not a mistake.
#![allow(clippy::duplicated_attributes)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::{self, *};
use super::{
    AzureCredentials, AzureSettings, GcpCredentials, ResourceStatus, SecretKeyRef, VertexSettings,
};

/// One AI provider endpoint: which provider, where, with which credential,
/// the models it serves and how the data plane treats it when it fails.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "AIBackend",
    plural = "aibackends",
    shortname = "aib",
    category = "switchboard",
    namespaced,
    status = "ResourceStatus",
    doc = "An AI provider endpoint (Anthropic, OpenAI, Amazon Bedrock, Google Vertex AI, the Gemini API, Azure OpenAI, an OpenAI-compatible server or the built-in mock) that AIRoutes send requests to.",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
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
#[schemars(transform = rules::cel([
    endpoint_required(),
    settings_only_for("anthropic", &["Anthropic"]),
    settings_only_for("openai", &["OpenAI", "OpenAICompatible"]),
    settings_only_for("mock", &["Mock"]),
    settings_only_for("bedrock", &["Bedrock"]),
    bedrock_settings_required(),
    aws_credentials_only_for_bedrock(),
    settings_only_for("vertex", &["VertexAI"]),
    vertex_settings_required(),
    gcp_credentials_only_for_vertex(),
    vertex_without_api_key(),
    settings_only_for("azure", &["AzureOpenAI"]),
    azure_endpoint_required(),
    azure_credentials_only_for_azure(),
]))]
pub struct AIBackendSpec {
    /// The provider's wire format and authentication style.
    pub provider: Provider,
    /// Base URL of the provider without the API path, e.g.
    /// `https://api.anthropic.com` (must be http or https). Defaults to the
    /// provider's public endpoint (for `Bedrock`,
    /// `https://bedrock-runtime.{region}.amazonaws.com`, set it for a VPC
    /// endpoint; for `VertexAI`, `https://{region}-aiplatform.googleapis.com`,
    /// `https://aiplatform.googleapis.com` for the `global` region and
    /// `https://aiplatform.{us|eu}.rep.googleapis.com` for the multi-regions;
    /// for `Gemini`, `https://generativelanguage.googleapis.com`); required for
    /// `OpenAICompatible` and `AzureOpenAI` (the resource's endpoint, e.g.
    /// `https://my-resource.openai.azure.com`); ignored by `Mock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = URL_MAX), transform = rules::cel([http_url()]))]
    pub endpoint: Option<String>,
    /// How the data plane authenticates to the provider. Unset: requests go
    /// upstream without a provider credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Models this backend serves, each name once. Empty: it serves any
    /// model name unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MODELS_MAX), transform = rules::list_map("name"))]
    pub models: Vec<Model>,
    /// Timeouts for one upstream attempt. Unset fields use the data-plane
    /// defaults (connect 5s, firstByte 10s, streamIdle 5m, request 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    /// Circuit breaker: when the data plane stops sending to this backend
    /// after failures, and for how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ejection: Option<Ejection>,
    /// Settings used only by the `Anthropic` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic: Option<AnthropicSettings>,
    /// Settings used only by the `OpenAI` and `OpenAICompatible` providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<OpenAISettings>,
    /// Settings used only by the `Mock` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockSettings>,
    /// Settings of the `Bedrock` provider (required for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSettings>,
    /// Settings of the `VertexAI` provider (required for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<VertexSettings>,
    /// Settings of the `AzureOpenAI` provider (optional: the defaults use
    /// the v1 API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSettings>,
}

/// The provider family of a backend.
///
/// New providers are added as new variants, each with its own optional
/// settings block on the spec (like `anthropic`, `openai`, `bedrock`,
/// `vertex` and `azure`), so adding one never changes the meaning of an
/// existing resource. Code matching on this enum must therefore not assume
/// the list is closed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[non_exhaustive]
pub enum Provider {
    /// The Anthropic Messages API (`api.anthropic.com` or compatible).
    Anthropic,
    /// The OpenAI API (`api.openai.com`).
    OpenAI,
    /// Any server speaking OpenAI Chat Completions (vLLM, Ollama, LiteLLM, ...). Needs `endpoint`.
    OpenAICompatible,
    /// The built-in deterministic responder: no network, for demos and tests.
    Mock,
    /// Amazon Bedrock Runtime: Claude models through InvokeModel, other
    /// models through Converse. Needs `bedrock.region`.
    Bedrock,
    /// Google Vertex AI: Claude models through `rawPredict` /
    /// `streamRawPredict` (publisher `anthropic`), Gemini models through
    /// `generateContent` / `streamGenerateContent` (publisher `google`).
    /// Needs `vertex.project` and `vertex.region`; authenticates with
    /// `credentials.gcp`.
    VertexAI,
    /// The Gemini API (`generativelanguage.googleapis.com`, Google AI
    /// Studio): `generateContent` / `streamGenerateContent`, the API key of
    /// `credentials` sent as `x-goog-api-key`.
    Gemini,
    /// Azure OpenAI (Azure AI Foundry): the v1 API or the deployment URLs
    /// (`azure.api`), the API key of `credentials` sent as `api-key`, or a
    /// Microsoft Entra token (`credentials.azure`). Needs `endpoint`.
    AzureOpenAI,
}

/// Where the provider credential comes from. Set exactly one of
/// `secretRef`, `env` (standalone mode only), `aws` (Bedrock only), `gcp`
/// (VertexAI only) and `azure` (AzureOpenAI only). For `Bedrock`,
/// `secretRef` / `env` hold a Bedrock API key (sent as a bearer token
/// instead of SigV4); for `Gemini`, the API key sent as `x-goog-api-key`;
/// for `AzureOpenAI`, the API key sent as `api-key`. `VertexAI` takes no
/// API key: use `gcp`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([exactly_one_of(&["secretRef", "env", "aws", "gcp", "azure"]), no_env_in_cluster()]))]
pub struct Credentials {
    /// A key of a Secret in the backend's namespace holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// Name of an environment variable of the data plane process holding the
    /// API key. Standalone mode only; rejected in Kubernetes mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TOKEN_MAX))]
    pub env: Option<String>,
    /// AWS credentials for SigV4 (`Bedrock` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsCredentials>,
    /// Google Cloud credentials: OAuth2 access tokens for Vertex AI
    /// (`VertexAI` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpCredentials>,
    /// Microsoft Entra ID credentials: bearer tokens for Azure OpenAI
    /// instead of an API key (`AzureOpenAI` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureCredentials>,
}

/// Where the AWS credentials of a Bedrock backend come from. Set exactly
/// one field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([aws_source(), no_aws_environment_in_cluster()]))]
pub struct AwsCredentials {
    /// Long-term (or externally rotated) access keys from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<AwsAccessKey>,
    /// The data plane's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// optional `AWS_SESSION_TOKEN` environment variables. Standalone mode
    /// only; rejected in Kubernetes mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<AwsEnvironment>,
    /// IRSA: the data plane's service account is annotated with
    /// `eks.amazonaws.com/role-arn`; EKS gives the pod
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`, and the data plane
    /// exchanges the token with STS `AssumeRoleWithWebIdentity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<AwsWebIdentity>,
    /// EKS Pod Identity: an association for the data plane's service
    /// account; EKS gives the pod `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, and the data plane asks the
    /// Pod Identity agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AwsPodIdentity>,
}

/// Access keys in a Secret of the backend's namespace, under the keys
/// `accessKeyId`, `secretAccessKey` and (optional) `sessionToken`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAccessKey {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = NAME_MAX))]
    pub secret_name: String,
}

/// Credentials from the standard AWS environment variables (no fields).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AwsEnvironment {}

/// IRSA settings; both fields are optional.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsWebIdentity {
    /// The role to assume. Default: the pod's `AWS_ROLE_ARN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TOKEN_MAX), transform = rules::cel([role_arn()]))]
    pub role_arn: Option<String>,
    /// `RoleSessionName` of the session (shown in CloudTrail). Default:
    /// the pod's `AWS_ROLE_SESSION_NAME`, else `switchboard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([role_session_name()]))]
    pub session_name: Option<String>,
}

/// EKS Pod Identity (no fields: everything comes from the pod environment).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct AwsPodIdentity {}

/// A model this backend serves.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// The name routes use (after alias resolution), e.g. `claude-sonnet-4`.
    /// Unique within the backend.
    #[schemars(length(max = MODEL_MAX), transform = rules::cel([not_blank()]))]
    pub name: String,
    /// The provider's id for the model, e.g. `claude-sonnet-4-20250514`.
    /// Defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MODEL_MAX), transform = rules::cel([not_blank()]))]
    pub provider_model: Option<String>,
    /// Context window in tokens (informational; used by context fallbacks),
    /// at most 100,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = CONTEXT_WINDOW_MAX))]
    pub context_window: Option<u32>,
}

/// Timeouts for one upstream attempt, as durations like `500ms`, `5s`, `2m`
/// or `1m30s`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// TCP and TLS connect. Data-plane default: `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub connect: Option<String>,
    /// From request sent to response headers; when exceeded the data plane
    /// fails over without retrying this backend. Data-plane default: `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub first_byte: Option<String>,
    /// Streaming: from response headers to the first content event
    /// (keep-alives and the message preamble do not count). The client's
    /// response is held until that event, so when exceeded and another
    /// candidate is left the data plane fails over to it; the last candidate
    /// is waited for up to `request`. Data-plane default: `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token: Option<String>,
    /// Longest silence between two chunks of a response body once it has
    /// started (streaming, and the body of a non-streaming answer).
    /// Data-plane default: `60s` (the wait for a stream's first content is
    /// bounded by `firstToken`, not by this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub stream_idle: Option<String>,
    /// Whole non-streaming exchange, headers and body. Data-plane default: `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub request: Option<String>,
    /// Longest duration of one streamed response; a stream still running
    /// then ends with an in-band error. Data-plane default: `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stream: Option<String>,
}

/// Circuit-breaker (outlier ejection) settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::cel([ejection_order()]))]
pub struct Ejection {
    /// Consecutive failures that open the breaker, at most 1000. Unset or 0:
    /// data-plane default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = FAILURES_MAX))]
    pub consecutive_failures: Option<u32>,
    /// First open interval (a duration like `30s`); doubles on each re-open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub base_ejection: Option<String>,
    /// Cap for the open interval (a duration like `5m`); not shorter than
    /// `baseEjection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub max_ejection: Option<String>,
}

/// Anthropic-specific settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnthropicSettings {
    /// `anthropic-version` sent upstream when the client sent none.
    /// Default: `2023-06-01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([anthropic_version()]))]
    pub version: Option<String>,
    /// `anthropic-beta` flags forwarded upstream; others are dropped.
    /// Empty: every flag is forwarded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = SHORT_LIST_MAX),
        inner(length(max = TOKEN_MAX)),
        transform = rules::items(rules::cel([beta_flag()]))
    )]
    pub allowed_betas: Vec<String>,
}

/// OpenAI-specific settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenAISettings {
    /// `OpenAI-Organization` header sent upstream, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TOKEN_MAX))]
    pub organization: Option<String>,
}

/// Amazon Bedrock settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rules::require("region"))]
pub struct BedrockSettings {
    /// AWS region of the Bedrock Runtime endpoint and of the SigV4
    /// signature, e.g. `us-east-1`.
    #[serde(default)]
    #[schemars(length(max = LABEL_MAX), transform = rules::cel([aws_region()]))]
    #[schemars(transform = rules::no_default)]
    pub region: String,
    /// Which Bedrock API requests use. `Auto` (default): InvokeModel for
    /// model ids naming an Anthropic model (`anthropic.…`, `us.anthropic.…`,
    /// ARNs of those), Converse for every other model. Set `InvokeModel`
    /// for an application inference profile ARN of a Claude model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<BedrockApi>,
    /// `anthropic-beta` flags forwarded to Bedrock (as the body's
    /// `anthropic_beta`); others are dropped. Unset: the gateway's default
    /// list of betas Bedrock accepts (`docs/providers/bedrock.md`); empty:
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = SHORT_LIST_MAX),
        inner(length(max = TOKEN_MAX)),
        transform = rules::items(rules::cel([beta_flag()]))
    )]
    pub allowed_betas: Option<Vec<String>>,
}

/// The Bedrock Runtime API of a backend.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum BedrockApi {
    /// InvokeModel for Anthropic model ids, Converse otherwise.
    #[default]
    Auto,
    /// Always InvokeModel with an Anthropic body.
    InvokeModel,
    /// Always Converse.
    Converse,
}

/// Settings of the built-in mock provider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MockSettings {
    /// Fixed text to answer with. Unset or empty: a deterministic echo of the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = REPLY_MAX))]
    pub reply: Option<String>,
    /// Delay before the response headers (a duration like `200ms`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = DURATION_MAX), transform = rules::cel([duration()]))]
    pub latency: Option<String>,
    /// Answer as this provider's upstream would, in its exact wire format
    /// (requests are built as for that provider, e.g. `Bedrock`: InvokeModel
    /// and Converse bodies, event-stream answers), so offline setups run the
    /// gateway's real decoding and failover. Unset: the client's own format.
    /// Not `Mock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate: Option<Provider>,
    /// Answer with an error (in the emulated provider's shape) when the
    /// request body contains this text, to show failover offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = TEXT_MAX))]
    pub fail_on: Option<String>,
    /// The HTTP status of the `failOn` error. Default 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 400, max = 599))]
    pub fail_status: Option<u16>,
}
