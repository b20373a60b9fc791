//! The Azure OpenAI provider (`provider: AzureOpenAI`): what a backend is at
//! run time, its request URLs, how a request is authorised and how its
//! failures are classified; [`crate::providers::azure_openai`] puts it
//! behind the provider interface. Nothing here knows the pipeline.
//!
//! Azure speaks OpenAI's formats (Chat Completions, Responses), so the
//! OpenAI translations apply; what differs is here:
//!
//! - URLs ([`AzureBackend::uri`], `protocols.md` §6):
//!
//! | `azure.api` | Chat Completions | Responses |
//! |---|---|---|
//! | `V1` (default) | `{endpoint}/openai/v1/chat/completions` | `{endpoint}/openai/v1/responses` |
//! | `Deployments` | `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version={v}` | `{endpoint}/openai/responses?api-version={v}` |
//!
//!   The deployment is the model's provider id (`models[].providerModel`);
//!   it also goes in the body's `model` ([`crate::translate::azure::set_deployment`]).
//!   `V1` sends `?api-version=` only when one is set (`preview`, `latest`);
//!   `Deployments` defaults to [`DEFAULT_API_VERSION`].
//! - Credentials: the API key in `api-key`, or a Microsoft Entra token
//!   ([`entra`]) as `Authorization: Bearer`, cached and refreshed by
//!   [`crate::oauth::TokenProvider`].
//! - Failures ([`classify`]): content-filter refusals are returned to the
//!   client, never failed over.

pub mod classify;
pub mod entra;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::Full;
use switchboard_proto as pb;

use crate::aws::Secret;
use crate::aws::fetch::Fetch;
use crate::oauth::{TokenError, TokenProvider};

/// The `api-version` of deployment URLs when the backend sets none.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The URL family of a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AzureApi {
    /// `/openai/v1/…`.
    #[default]
    V1,
    /// `/openai/deployments/{deployment}/…?api-version=…`.
    Deployments,
}

/// An Azure OpenAI operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AzureOp {
    /// Chat Completions.
    ChatCompletions,
    /// The Responses API.
    Responses,
}

/// How requests are authorised.
#[derive(Clone)]
pub enum AzureAuth {
    /// `api-key: <key>` (marked sensitive).
    ApiKey(HeaderValue),
    /// `Authorization: Bearer <Entra token>`.
    Entra(TokenProvider),
}

impl std::fmt::Debug for AzureAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Self::Entra(p) => f.debug_tuple("Entra").field(p).finish(),
        }
    }
}

/// An Azure OpenAI backend at run time.
#[derive(Clone, Debug)]
pub struct AzureBackend {
    /// Scheme, authority and optional path prefix of the resource endpoint.
    pub base: String,
    /// The URL family.
    pub api: AzureApi,
    /// The `api-version` query value (empty: none, `V1` only).
    pub api_version: String,
    /// The credential; `None` sends requests unauthenticated (local mocks).
    pub auth: Option<AzureAuth>,
}

impl AzureBackend {
    /// Builds the backend from its snapshot form. `api_key` is the
    /// backend's `credential`; `env` reads the data plane's environment
    /// (workload identity); `fetch` is the client of the token endpoint.
    pub fn from_proto(
        endpoint: &str,
        s: &pb::AzureSettings,
        api_key: Option<&Secret>,
        env: &dyn Fn(&str) -> Option<String>,
        fetch: Arc<dyn Fetch>,
    ) -> Result<Self, String> {
        use pb::azure_credentials::Source;
        let uri: Uri = endpoint
            .parse()
            .map_err(|e| format!("invalid Azure OpenAI endpoint {endpoint:?}: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(format!(
                "the Azure OpenAI endpoint {endpoint:?} must be an http(s) URL with a host"
            ));
        }
        let api = match pb::AzureApi::try_from(s.api) {
            Ok(pb::AzureApi::Deployments) => AzureApi::Deployments,
            _ => AzureApi::V1,
        };
        let api_version = match (api, s.api_version.as_str()) {
            (AzureApi::Deployments, "") => DEFAULT_API_VERSION.to_string(),
            (_, v) => v.to_string(),
        };
        if !api_version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("invalid Azure api-version {api_version:?}"));
        }
        let auth = match (s.entra.as_ref().and_then(|e| e.source.as_ref()), api_key) {
            (Some(Source::ClientSecret(c)), _) => Some(AzureAuth::Entra(TokenProvider::new(
                entra::ClientSecret::new(
                    &c.tenant_id,
                    &c.client_id,
                    Secret::new(c.client_secret.clone()),
                    &c.authority_host,
                )?,
                fetch,
            ))),
            (Some(Source::WorkloadIdentity(w)), _) => Some(AzureAuth::Entra(TokenProvider::new(
                entra::WorkloadIdentity::from_env(env, &w.client_id, &w.tenant_id)?,
                fetch,
            ))),
            (None, Some(key)) => {
                let mut v = HeaderValue::from_str(key.expose().trim()).map_err(|_| {
                    "the Azure OpenAI API key contains characters not allowed in a header"
                        .to_string()
                })?;
                v.set_sensitive(true);
                Some(AzureAuth::ApiKey(v))
            }
            (None, None) => None,
        };
        Ok(Self {
            base: endpoint.trim_end_matches('/').to_string(),
            api,
            api_version,
            auth,
        })
    }

    /// The URI of `op` for `deployment`.
    pub fn uri(&self, deployment: &str, op: AzureOp) -> Result<Uri, AzureRequestError> {
        let query = if self.api_version.is_empty() {
            String::new()
        } else {
            format!("?api-version={}", self.api_version)
        };
        let path = match (self.api, op) {
            (AzureApi::V1, AzureOp::ChatCompletions) => "/openai/v1/chat/completions".to_string(),
            (AzureApi::V1, AzureOp::Responses) => "/openai/v1/responses".to_string(),
            (AzureApi::Deployments, AzureOp::ChatCompletions) => format!(
                "/openai/deployments/{}/chat/completions",
                crate::google::vertex::encode_segment(deployment)
            ),
            (AzureApi::Deployments, AzureOp::Responses) => "/openai/responses".to_string(),
        };
        format!("{}{path}{query}", self.base)
            .parse()
            .map_err(|e| AzureRequestError::Uri(format!("{e}")))
    }

    /// The upstream request: `POST` of the JSON body (whose `model` is the
    /// deployment) to `op`, with the API key or an Entra token. Nothing of
    /// the client's request is copied.
    pub async fn request(
        &self,
        deployment: &str,
        op: AzureOp,
        stream: bool,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, AzureRequestError> {
        let uri = self.uri(deployment, op)?;
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        self.authorize(headers).await?;
        Ok(req)
    }

    /// Adds the credential to `headers`: `api-key`, or `Authorization:
    /// Bearer` with a cached Entra token (fetched or refreshed when it
    /// expires within [`crate::oauth::REFRESH_BEFORE`]). Both values are
    /// marked sensitive.
    pub async fn authorize(&self, headers: &mut HeaderMap) -> Result<(), AzureRequestError> {
        match &self.auth {
            None => {}
            Some(AzureAuth::ApiKey(v)) => {
                headers.insert("api-key", v.clone());
            }
            Some(AzureAuth::Entra(p)) => {
                let token = p.token().await?;
                headers.insert(header::AUTHORIZATION, token.bearer()?);
            }
        }
        Ok(())
    }

    /// Whether the backend serves the Responses API: always on the v1 API;
    /// on deployment URLs only from `api-version` `2025-03-01-preview` on
    /// (the GA versions have no Responses API, so Responses requests are
    /// translated to Chat Completions there).
    pub fn serves_responses(&self) -> bool {
        match self.api {
            AzureApi::V1 => true,
            AzureApi::Deployments => self
                .api_version
                .strip_suffix("-preview")
                .is_some_and(|date| date >= RESPONSES_SINCE),
        }
    }
}

/// The first (preview) `api-version` of deployment URLs with the Responses API.
pub const RESPONSES_SINCE: &str = "2025-03-01";

/// Why no upstream request could be made (a gateway-side failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AzureRequestError {
    /// The URI could not be built.
    #[error("invalid Azure OpenAI request URI: {0}")]
    Uri(String),
    /// No Entra token.
    #[error(transparent)]
    Token(#[from] TokenError),
}
