//! The Google providers: Vertex AI (`provider: VertexAI`; Claude through
//! `rawPredict`, Gemini through `generateContent`) and the Gemini API
//! (`provider: Gemini`). What a backend is at run time, how one upstream
//! request to it is built and authorised, and how its failures are
//! classified; the providers of the request pipeline
//! ([`crate::providers::vertex`], [`crate::providers::gemini`]) are built
//! on it. Nothing here knows the pipeline.
//!
//! - [`VertexBackend`] / [`GeminiBackend`]: built once per snapshot;
//!   `request` makes the authorised upstream request;
//! - [`vertex`]: the Vertex URL of a model and operation (and its parse,
//!   for the Mock), the publisher of a model id, Claude model ids
//!   (`claude-x@YYYYMMDD`);
//! - [`service_account`], [`metadata`]: the OAuth2 token sources (a
//!   service-account key, the GCE / GKE metadata server), cached and
//!   refreshed by [`crate::oauth::TokenProvider`];
//! - [`mock`]: Gemini and Claude-on-Vertex answers in their framing, as
//!   the `Mock` provider emulating `VertexAI` or `Gemini` gives them;
//! - [`classify`]: Google error answers → failover classes and client
//!   errors;
//! - the formats live in [`crate::translate::gemini`] (Gemini
//!   `generateContent`) and [`crate::translate::vertex`] (Claude on Vertex).

pub mod classify;
pub mod metadata;
pub mod mock;
pub mod service_account;
pub mod vertex;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header};
use http_body_util::Full;
use serde_json::Value;
use switchboard_proto as pb;

use crate::aws::Secret;
use crate::aws::fetch::Fetch;
use crate::oauth::{TokenError, TokenProvider};
use crate::translate::vertex::betas as vertex_betas;

pub use vertex::{Publisher, VertexOp};

/// The OAuth2 scope of every Google token the gateway asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The token provider of a Vertex backend's `credentials.gcp`; `None` when
/// it has none (requests go unauthenticated: local mocks).
pub fn token_provider(
    gcp: Option<&pb::GcpCredentials>,
    env: &dyn Fn(&str) -> Option<String>,
    fetch: Arc<dyn Fetch>,
) -> Result<Option<TokenProvider>, String> {
    use pb::gcp_credentials::Source;
    Ok(match gcp.and_then(|g| g.source.as_ref()) {
        None => None,
        Some(Source::ServiceAccountKey(k)) => Some(TokenProvider::new(
            service_account::ServiceAccount::new(
                &k.client_email,
                &k.private_key,
                &k.private_key_id,
                &k.token_uri,
            )?,
            fetch,
        )),
        Some(Source::WorkloadIdentity(w)) => Some(TokenProvider::new(
            metadata::MetadataServer::from_env(env, &w.service_account)?,
            fetch,
        )),
    })
}

fn base_url(endpoint: &str, provider: &str) -> Result<String, String> {
    let uri: Uri = endpoint
        .parse()
        .map_err(|e| format!("invalid {provider} endpoint {endpoint:?}: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(format!(
            "the {provider} endpoint {endpoint:?} must be an http(s) URL with a host"
        ));
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

fn post(uri: Uri, stream: bool, body: Bytes) -> Request<Full<Bytes>> {
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
    req
}

/// Why no upstream request could be made (a gateway-side failure: the
/// client gets a 503 and the backend counts a failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoogleRequestError {
    /// The URI could not be built.
    #[error("invalid Google request URI: {0}")]
    Uri(String),
    /// No access token.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A Vertex AI backend at run time.
#[derive(Clone, Debug)]
pub struct VertexBackend {
    /// The project requests are billed to.
    pub project: String,
    /// The location (`us-east5`, `global`, `us`, ...).
    pub region: String,
    /// Scheme, authority and optional path prefix of the endpoint.
    pub base: String,
    /// The beta allowlist (Claude models); `None`: [`vertex_betas::DEFAULT_ALLOWED_BETAS`].
    pub allowed_betas: Option<Vec<String>>,
    /// Access tokens; `None` sends requests unauthenticated (local mocks).
    pub tokens: Option<TokenProvider>,
}

impl VertexBackend {
    /// Builds the backend from its snapshot form; `env` reads the data
    /// plane's environment (`GCE_METADATA_HOST`), `fetch` is the client of
    /// the token endpoints.
    pub fn from_proto(
        endpoint: &str,
        s: &pb::VertexSettings,
        env: &dyn Fn(&str) -> Option<String>,
        fetch: Arc<dyn Fetch>,
    ) -> Result<Self, String> {
        let base = base_url(endpoint, "Vertex AI")?;
        if s.project.is_empty() || s.region.is_empty() {
            return Err("the Vertex AI project and region must be set".into());
        }
        if s.project.contains(['/', '?', '#']) || s.region.contains(['/', '?', '#']) {
            return Err("the Vertex AI project and region must be plain names".into());
        }
        Ok(Self {
            project: s.project.clone(),
            region: s.region.clone(),
            base,
            allowed_betas: s.allowed_betas.as_ref().map(|b| b.flags.clone()),
            tokens: token_provider(s.gcp.as_ref(), env, fetch)?,
        })
    }

    /// The betas forwarded to a Claude model for a client's `anthropic-beta`
    /// headers (and a front door's body `anthropic_beta`).
    pub fn betas(&self, headers: &HeaderMap, body_betas: Option<&Value>) -> Vec<String> {
        let values = headers
            .get_all("anthropic-beta")
            .iter()
            .filter_map(|v| v.to_str().ok());
        vertex_betas::select(values, body_betas, self.allowed_betas.as_deref())
    }

    /// The URI of `op` on `model_id`.
    pub fn uri(&self, model_id: &str, op: VertexOp) -> Result<Uri, GoogleRequestError> {
        let path = vertex::path(&self.project, &self.region, model_id, op);
        format!("{}{path}", self.base)
            .parse()
            .map_err(|e| GoogleRequestError::Uri(format!("{e}")))
    }

    /// The upstream request: `POST` of the JSON body to `op` on
    /// `model_id`, with the access token and, for a Claude model, the
    /// forwarded betas as `anthropic-beta`. Nothing of the client's request
    /// is copied.
    pub async fn request(
        &self,
        model_id: &str,
        op: VertexOp,
        betas: &[String],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, GoogleRequestError> {
        let uri = self.uri(model_id, op)?;
        let mut req = post(uri, op.streams(), body);
        if let Some(tokens) = &self.tokens {
            let token = tokens.token().await?;
            req.headers_mut()
                .insert(header::AUTHORIZATION, token.bearer()?);
        }
        if !betas.is_empty()
            && op.publisher() == Publisher::Anthropic
            && let Ok(v) = HeaderValue::from_str(&betas.join(","))
        {
            req.headers_mut().insert("anthropic-beta", v);
        }
        Ok(req)
    }
}

/// A Gemini API backend at run time.
#[derive(Clone)]
pub struct GeminiBackend {
    /// Scheme, authority and optional path prefix of the endpoint.
    pub base: String,
    /// The API key (`x-goog-api-key`, marked sensitive); `None` for local mocks.
    api_key: Option<HeaderValue>,
}

impl std::fmt::Debug for GeminiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiBackend")
            .field("base", &self.base)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GeminiBackend {
    /// Builds the backend from its endpoint and API key.
    pub fn new(endpoint: &str, api_key: Option<&Secret>) -> Result<Self, String> {
        let api_key = match api_key {
            None => None,
            Some(k) => {
                let mut v = HeaderValue::from_str(k.expose().trim()).map_err(|_| {
                    "the Gemini API key contains characters not allowed in a header".to_string()
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        Ok(Self {
            base: base_url(endpoint, "Gemini API")?,
            api_key,
        })
    }

    /// Whether requests carry an API key.
    pub fn has_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The URI of `op` on `model_id`.
    pub fn uri(&self, model_id: &str, op: GeminiOp) -> Result<Uri, GoogleRequestError> {
        format!("{}{}", self.base, vertex::gemini_api_path(model_id, op))
            .parse()
            .map_err(|e| GoogleRequestError::Uri(format!("{e}")))
    }

    /// The upstream request with the API key in `x-goog-api-key`.
    pub fn request(
        &self,
        model_id: &str,
        op: GeminiOp,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, GoogleRequestError> {
        let uri = self.uri(model_id, op)?;
        let mut req = post(uri, op == GeminiOp::StreamGenerateContent, body);
        if let Some(key) = &self.api_key {
            req.headers_mut().insert("x-goog-api-key", key.clone());
        }
        Ok(req)
    }
}

/// A Gemini API operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeminiOp {
    /// `:generateContent`.
    GenerateContent,
    /// `:streamGenerateContent?alt=sse`.
    StreamGenerateContent,
    /// `:countTokens`.
    CountTokens,
}

impl GeminiOp {
    /// The method suffix, query included.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::GenerateContent => ":generateContent",
            Self::StreamGenerateContent => ":streamGenerateContent?alt=sse",
            Self::CountTokens => ":countTokens",
        }
    }
}
