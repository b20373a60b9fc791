//! A Bedrock backend at run time: its region, API choice, beta allowlist
//! and credential ([`crate::aws::Auth`]), built once per snapshot, and the
//! signed upstream request of one try ([`BedrockBackend::request`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::Full;
use serde_json::Value;
use switchboard_proto as pb;

use crate::aws::fetch::Fetch;
use crate::aws::{Auth, AuthError, CredentialProvider, CredentialSource, Credentials, Secret};
use crate::translate::bedrock::errors::{exception_of, kind_of, message_of};
use crate::translate::bedrock::{ApiChoice, BedrockApi, betas};
use crate::wire::{Dialect, ErrorKind, error_body};

/// A Bedrock backend at run time.
#[derive(Clone, Debug)]
pub struct BedrockBackend {
    /// The signing region.
    pub region: String,
    /// Scheme, authority and optional path prefix of the endpoint.
    pub base: String,
    /// How the API is chosen per model.
    pub api: ApiChoice,
    /// The beta allowlist; `None`: [`betas::DEFAULT_ALLOWED_BETAS`].
    pub allowed_betas: Option<Vec<String>>,
    /// The credential; `None` sends requests unauthenticated (local mocks).
    pub auth: Option<Auth>,
}

impl BedrockBackend {
    /// Builds the backend from its snapshot form. `api_key` is the
    /// backend's `credential` (a Bedrock API key), `env` reads the data
    /// plane's environment (IRSA, Pod Identity, standalone keys), `fetch`
    /// is the client for STS and the container credentials endpoint.
    pub fn from_proto(
        endpoint: &str,
        s: &pb::BedrockSettings,
        api_key: Option<&Secret>,
        env: &dyn Fn(&str) -> Option<String>,
        fetch: Arc<dyn Fetch>,
    ) -> Result<Self, String> {
        use pb::aws_credentials::Source;
        let uri: Uri = endpoint
            .parse()
            .map_err(|e| format!("invalid Bedrock endpoint {endpoint:?}: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(format!(
                "the Bedrock endpoint {endpoint:?} must be an http(s) URL with a host"
            ));
        }
        if s.region.is_empty() {
            return Err("the Bedrock region is empty".into());
        }
        let source = match s.aws.as_ref().and_then(|a| a.source.as_ref()) {
            None => None,
            Some(Source::AccessKey(k)) => Some(CredentialSource::Static(Credentials::new(
                k.access_key_id.clone(),
                k.secret_access_key.clone(),
                Some(k.session_token.clone()),
            ))),
            Some(Source::Environment(_)) => Some(CredentialSource::static_from_env(env)?),
            Some(Source::WebIdentity(w)) => Some(CredentialSource::web_identity_from_env(
                env,
                &s.region,
                Some(&w.role_arn),
                Some(&w.session_name),
            )?),
            Some(Source::PodIdentity(_)) => Some(CredentialSource::container_from_env(env)?),
        };
        let auth = match (source, api_key) {
            (Some(source), _) => Some(Auth::SigV4 {
                provider: CredentialProvider::new(source, fetch),
                region: s.region.clone(),
            }),
            (None, Some(key)) => Some(Auth::bearer(key)?),
            (None, None) => None,
        };
        let api = match pb::BedrockApi::try_from(s.api) {
            Ok(pb::BedrockApi::InvokeModel) => ApiChoice::InvokeModel,
            Ok(pb::BedrockApi::Converse) => ApiChoice::Converse,
            _ => ApiChoice::Auto,
        };
        Ok(Self {
            region: s.region.clone(),
            base: endpoint.trim_end_matches('/').to_string(),
            api,
            allowed_betas: s.allowed_betas.as_ref().map(|b| b.flags.clone()),
            auth,
        })
    }

    /// The API a request for `model_id` uses.
    pub fn api_for(&self, model_id: &str) -> BedrockApi {
        BedrockApi::for_model(model_id, self.api)
    }

    /// The betas forwarded for a client's `anthropic-beta` headers and body
    /// `anthropic_beta` (front door), through this backend's allowlist.
    pub fn betas(&self, headers: &HeaderMap, body_betas: Option<&Value>) -> Vec<String> {
        let values = headers
            .get_all("anthropic-beta")
            .iter()
            .filter_map(|v| v.to_str().ok());
        betas::select(values, body_betas, self.allowed_betas.as_deref())
    }

    /// The upstream request: `POST {base}/model/{id}/{operation}` with the
    /// JSON body, `content-type`/`accept` for the operation, signed (or
    /// with the API key). Nothing of the client's request is copied.
    pub async fn request(
        &self,
        api: BedrockApi,
        model_id: &str,
        stream: bool,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, BedrockRequestError> {
        let uri: Uri = format!("{}{}", self.base, api.path(model_id, stream))
            .parse()
            .map_err(|e| BedrockRequestError::Uri(format!("{e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(if stream {
                crate::wire::eventstream::CONTENT_TYPE
            } else {
                "application/json"
            }),
        );
        if let Some(auth) = &self.auth {
            auth.apply(&Method::POST, &uri, &mut headers, &body).await?;
        }
        Ok(crate::providers::post(uri, headers, body))
    }
}

/// Why no upstream request could be made (a gateway-side failure: the
/// client gets a 503 and the backend counts a failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BedrockRequestError {
    /// The URI could not be built.
    #[error("invalid Bedrock request URI: {0}")]
    Uri(String),
    /// No credentials or signing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A Bedrock error answer as the client's error: status kept (424 becomes
/// 502: clients do not know it), body in the client's dialect with the kind
/// of the exception and Bedrock's message.
pub fn client_error(
    dialect: Dialect,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Bytes) {
    let header = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok());
    let kind = match exception_of(header, body) {
        Some(name) => kind_of(&name),
        None => match status {
            400 | 413 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            503 | 529 => ErrorKind::Overloaded,
            408 | 504 => ErrorKind::Timeout,
            _ => ErrorKind::Api,
        },
    };
    let status = match status {
        424 => StatusCode::BAD_GATEWAY,
        s => StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
    };
    (status, error_body(dialect, kind, &message_of(body), None))
}

#[cfg(test)]
#[path = "backend_tests.rs"]
mod tests;
