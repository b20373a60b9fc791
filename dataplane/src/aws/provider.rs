//! Where a backend's AWS credentials come from, cached and refreshed before
//! they expire.
//!
//! | source | configured by | refresh |
//! |---|---|---|
//! | [`CredentialSource::Static`] | access keys from a Secret (or the standard environment variables in standalone mode) | never |
//! | [`CredentialSource::WebIdentity`] | IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` | STS `AssumeRoleWithWebIdentity` |
//! | [`CredentialSource::Container`] | EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` | the container credentials endpoint |
//!
//! [`CredentialProvider::credentials`] returns cached credentials until
//! [`REFRESH_BEFORE`] before their expiry, then fetches new ones. One fetch
//! runs at a time (callers share it; no lock is held across the fetch). A
//! failed fetch is not retried for [`RETRY_AFTER_FAILURE`]; meanwhile, and
//! while the refresh keeps failing, the old credentials are used until
//! [`MIN_REMAINING`] before they expire (the state machine is
//! [`crate::credentials::refresh`], shared with the OAuth2 token providers).
//! The token files are read again on every fetch (they are rotated). Nothing here logs a secret: errors name
//! files, URIs and AWS error codes only.

use std::sync::Arc;
use std::time::SystemTime;

use http::Uri;

use super::container;
use super::credentials::{Credentials, Secret};
use super::fetch::{BoxFuture, Fetch};
use super::sts;
use crate::credentials::read_token_file;
use crate::credentials::refresh::{self, Fetched, Refreshing};
pub use crate::credentials::refresh::{Clock, MIN_REMAINING, REFRESH_BEFORE, RETRY_AFTER_FAILURE};

/// Default `RoleSessionName` of the IRSA session.
pub const DEFAULT_SESSION_NAME: &str = "switchboard";

/// How a token is supplied to the container credentials endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerToken {
    /// None (ECS relative URI).
    None,
    /// Read from this file before every fetch (EKS Pod Identity).
    File(std::path::PathBuf),
    /// A fixed value (`AWS_CONTAINER_AUTHORIZATION_TOKEN`).
    Value(Secret),
}

/// Where credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// Fixed keys.
    Static(Credentials),
    /// IRSA.
    WebIdentity {
        /// The role to assume.
        role_arn: String,
        /// The projected service-account token.
        token_file: std::path::PathBuf,
        /// `RoleSessionName`.
        session_name: String,
        /// STS base URI.
        sts_endpoint: Uri,
    },
    /// EKS Pod Identity or ECS.
    Container {
        /// The credentials endpoint.
        uri: Uri,
        /// Its authorization token.
        token: ContainerToken,
    },
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn non_empty(env: Env<'_>, name: &str) -> Option<String> {
    env(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl CredentialSource {
    /// The standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN` variables.
    pub fn static_from_env(env: Env<'_>) -> Result<Self, String> {
        let id = non_empty(env, "AWS_ACCESS_KEY_ID")
            .ok_or("environment variable AWS_ACCESS_KEY_ID is not set")?;
        let secret = non_empty(env, "AWS_SECRET_ACCESS_KEY")
            .ok_or("environment variable AWS_SECRET_ACCESS_KEY is not set")?;
        Ok(Self::Static(Credentials::new(
            id,
            secret,
            non_empty(env, "AWS_SESSION_TOKEN"),
        )))
    }

    /// IRSA from the variables the EKS webhook sets; `role_arn` and
    /// `session_name` override `AWS_ROLE_ARN` / `AWS_ROLE_SESSION_NAME`.
    /// STS is `AWS_ENDPOINT_URL_STS` or the regional endpoint of `region`.
    pub fn web_identity_from_env(
        env: Env<'_>,
        region: &str,
        role_arn: Option<&str>,
        session_name: Option<&str>,
    ) -> Result<Self, String> {
        let token_file = non_empty(env, "AWS_WEB_IDENTITY_TOKEN_FILE").ok_or(
            "environment variable AWS_WEB_IDENTITY_TOKEN_FILE is not set (is the service account annotated with eks.amazonaws.com/role-arn?)",
        )?;
        let role_arn = match role_arn.filter(|r| !r.is_empty()) {
            Some(r) => r.to_string(),
            None => non_empty(env, "AWS_ROLE_ARN")
                .ok_or("environment variable AWS_ROLE_ARN is not set")?,
        };
        let session_name = session_name
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| non_empty(env, "AWS_ROLE_SESSION_NAME"))
            .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string());
        let sts =
            non_empty(env, "AWS_ENDPOINT_URL_STS").unwrap_or_else(|| sts::default_endpoint(region));
        let sts_endpoint: Uri = sts
            .parse()
            .map_err(|e| format!("invalid STS endpoint {sts:?}: {e}"))?;
        Ok(Self::WebIdentity {
            role_arn,
            token_file: token_file.into(),
            session_name,
            sts_endpoint,
        })
    }

    /// EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_FULL_URI`) or ECS
    /// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
    pub fn container_from_env(env: Env<'_>) -> Result<Self, String> {
        let uri = match (
            non_empty(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            non_empty(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        ) {
            (Some(full), _) => full,
            (None, Some(rel)) => format!("http://{}{rel}", container::ECS_HOST),
            (None, None) => {
                return Err("environment variable AWS_CONTAINER_CREDENTIALS_FULL_URI is not set (is there an EKS Pod Identity association for the data plane's service account?)".into());
            }
        };
        let uri: Uri = uri
            .parse()
            .map_err(|e| format!("invalid container credentials URI {uri:?}: {e}"))?;
        container::check_full_uri(&uri)?;
        let token = match (
            non_empty(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            non_empty(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        ) {
            (Some(file), _) => ContainerToken::File(file.into()),
            (None, Some(v)) => ContainerToken::Value(Secret::new(v)),
            (None, None) => ContainerToken::None,
        };
        Ok(Self::Container { uri, token })
    }

    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Static(_) => "static",
            Self::WebIdentity { .. } => "web_identity",
            Self::Container { .. } => "container",
        }
    }
}

/// Why no credentials are available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AWS credentials ({source_label}) unavailable: {reason}")]
pub struct CredentialError {
    /// [`CredentialSource::label`].
    pub source_label: &'static str,
    /// What went wrong (no secrets).
    pub reason: String,
}

/// The fetches of one [`CredentialSource`], for the refreshing cache.
struct AwsSource {
    source: CredentialSource,
    fetch: Arc<dyn Fetch>,
}

impl refresh::Source for AwsSource {
    type Value = Credentials;
    type Error = CredentialError;
    const WHAT: &'static str = "AWS credentials";

    fn label(&self) -> &'static str {
        self.source.label()
    }

    fn fetch(
        &self,
        _now: SystemTime,
    ) -> BoxFuture<'_, Result<Fetched<Credentials>, CredentialError>> {
        Box::pin(async move {
            let creds = fetch_once(self).await?;
            let expires_at = creds.expires_at;
            Ok((creds, expires_at))
        })
    }
}

/// Cached, refreshed credentials of one source.
#[derive(Clone)]
pub struct CredentialProvider {
    cache: Refreshing<AwsSource>,
}

impl std::fmt::Debug for CredentialProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialProvider")
            .field("source", &self.label())
            .finish_non_exhaustive()
    }
}

impl CredentialProvider {
    /// A provider of `source`'s credentials, fetching with `fetch`.
    pub fn new(source: CredentialSource, fetch: Arc<dyn Fetch>) -> Self {
        Self::with_clock(source, fetch, Arc::new(SystemTime::now))
    }

    /// [`CredentialProvider::new`] with a clock.
    pub fn with_clock(source: CredentialSource, fetch: Arc<dyn Fetch>, clock: Clock) -> Self {
        let cache = match &source {
            CredentialSource::Static(c) => {
                let value = (c.clone(), c.expires_at);
                Refreshing::with_value(AwsSource { source, fetch }, clock, value)
            }
            _ => Refreshing::new(AwsSource { source, fetch }, clock),
        };
        Self { cache }
    }

    /// The source's label.
    pub fn label(&self) -> &'static str {
        self.cache.source().source.label()
    }

    /// Credentials valid for at least a while (see the module docs).
    pub async fn credentials(&self) -> Result<Arc<Credentials>, CredentialError> {
        self.cache.get().await
    }
}

async fn fetch_once(inner: &AwsSource) -> Result<Credentials, CredentialError> {
    let fail = |reason: String| CredentialError {
        source_label: inner.source.label(),
        reason,
    };
    let creds = match &inner.source {
        CredentialSource::Static(c) => c.clone(),
        CredentialSource::WebIdentity {
            role_arn,
            token_file,
            session_name,
            sts_endpoint,
        } => {
            let token = read_token_file(token_file).await.map_err(fail)?;
            let req = sts::request(sts_endpoint, role_arn, session_name, &token)
                .map_err(|e| fail(format!("building the STS request: {e}")))?;
            let (status, body) = inner
                .fetch
                .fetch(req)
                .await
                .map_err(|e| fail(format!("STS {sts_endpoint}: {e}")))?;
            sts::parse_response(status.as_u16(), &body).map_err(|e| fail(e.to_string()))?
        }
        CredentialSource::Container { uri, token } => {
            let token = match token {
                ContainerToken::None => None,
                ContainerToken::File(path) => Some(read_token_file(path).await.map_err(fail)?),
                ContainerToken::Value(v) => Some(v.clone()),
            };
            let req = container::request(uri, token.as_ref()).map_err(|_| {
                fail("the container authorization token is not a valid header value".into())
            })?;
            let (status, body) = inner
                .fetch
                .fetch(req)
                .await
                .map_err(|e| fail(format!("{uri}: {e}")))?;
            container::parse_response(status.as_u16(), &body).map_err(fail)?
        }
    };
    Ok(creds)
}

#[cfg(test)]
#[path = "provider_tests.rs"]
mod tests;
