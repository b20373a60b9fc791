//! Microsoft Entra ID access tokens for Azure OpenAI (scope
//! `https://cognitiveservices.azure.com/.default`), the OAuth2 client
//! credentials grant at `{authority}/{tenant}/oauth2/v2.0/token`:
//!
//! - [`ClientSecret`]: `client_id`, `client_secret`, `scope`,
//!   `grant_type=client_credentials`;
//! - [`WorkloadIdentity`] (AKS workload identity federation): the same with
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//!   and `client_assertion=<the projected service-account token>` instead of
//!   a secret. The AKS webhook gives the pod `AZURE_CLIENT_ID`,
//!   `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
//!   `AZURE_AUTHORITY_HOST`; the token file is read again for every fetch
//!   (it is rotated).
//!
//! The answer is `{"token_type": "Bearer", "expires_in", "access_token"}`,
//! or an error `{"error", "error_description": "AADSTS…: …"}` of which only
//! the error and the `AADSTS` code are reported
//! ([`crate::oauth::parse_token_response`]).

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request, Uri, header};

use crate::aws::Secret;
use crate::aws::fetch::{BoxFuture, Fetch};
use crate::oauth::{AccessToken, TokenSource, form, parse_token_response, read_token_file};

/// The scope of Azure OpenAI (Cognitive Services) tokens.
pub const SCOPE: &str = "https://cognitiveservices.azure.com/.default";
/// The public cloud's authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// `client_assertion_type` of a federated credential.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn non_empty(env: Env<'_>, name: &str) -> Option<String> {
    env(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The token endpoint of `tenant` at `authority` (empty: the public cloud).
pub fn token_uri(authority: &str, tenant: &str) -> Result<Uri, String> {
    let authority = if authority.is_empty() {
        DEFAULT_AUTHORITY
    } else {
        authority.trim_end_matches('/')
    };
    if tenant.is_empty() || tenant.contains(['/', '?', '#']) {
        return Err(format!("invalid Entra tenant {tenant:?}"));
    }
    format!("{authority}/{tenant}/oauth2/v2.0/token")
        .parse()
        .map_err(|e| format!("invalid Entra authority {authority:?}: {e}"))
}

fn request(uri: &Uri, body: String) -> Result<Request<Bytes>, String> {
    Request::builder()
        .method(Method::POST)
        .uri(uri.clone())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(Bytes::from(body))
        .map_err(|e| format!("building the token request: {e}"))
}

async fn exchange(
    fetch: &dyn Fetch,
    uri: &Uri,
    body: String,
    now: SystemTime,
) -> Result<AccessToken, String> {
    let (status, answer) = fetch
        .fetch(request(uri, body)?)
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    parse_token_response(status.as_u16(), &answer, now).map_err(|e| format!("{uri}: {e}"))
}

/// The client-credentials grant with a client secret.
#[derive(Clone)]
pub struct ClientSecret {
    client_id: String,
    secret: Secret,
    uri: Uri,
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .field("uri", &self.uri)
            .finish()
    }
}

impl ClientSecret {
    /// The app `client_id` of `tenant`, with `secret`, at `authority`.
    pub fn new(
        tenant: &str,
        client_id: &str,
        secret: Secret,
        authority: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            client_id: client_id.to_string(),
            secret,
            uri: token_uri(authority, tenant)?,
        })
    }

    /// The form body of the exchange.
    pub fn body(&self) -> String {
        form(&[
            ("client_id", &self.client_id),
            ("client_secret", self.secret.expose()),
            ("scope", SCOPE),
            ("grant_type", "client_credentials"),
        ])
    }
}

impl TokenSource for ClientSecret {
    fn label(&self) -> &'static str {
        "entra_client_secret"
    }

    fn fetch<'a>(
        &'a self,
        fetch: &'a dyn Fetch,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<AccessToken, String>> {
        Box::pin(async move { exchange(fetch, &self.uri, self.body(), now).await })
    }
}

/// Workload identity federation: a Kubernetes token as the client assertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadIdentity {
    client_id: String,
    token_file: PathBuf,
    uri: Uri,
}

impl WorkloadIdentity {
    /// The app `client_id` of `tenant`, asserted with the token in
    /// `token_file`, at `authority`.
    pub fn new(
        tenant: &str,
        client_id: &str,
        token_file: impl Into<PathBuf>,
        authority: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            client_id: client_id.to_string(),
            token_file: token_file.into(),
            uri: token_uri(authority, tenant)?,
        })
    }

    /// From the variables the AKS webhook sets; `client_id` and `tenant`
    /// override `AZURE_CLIENT_ID` / `AZURE_TENANT_ID`.
    pub fn from_env(env: Env<'_>, client_id: &str, tenant: &str) -> Result<Self, String> {
        let client_id = match client_id {
            "" => non_empty(env, "AZURE_CLIENT_ID").ok_or(
                "environment variable AZURE_CLIENT_ID is not set (is the data plane's service account annotated with azure.workload.identity/client-id and its pod labelled azure.workload.identity/use=true?)",
            )?,
            id => id.to_string(),
        };
        let tenant = match tenant {
            "" => non_empty(env, "AZURE_TENANT_ID")
                .ok_or("environment variable AZURE_TENANT_ID is not set")?,
            t => t.to_string(),
        };
        let file = non_empty(env, "AZURE_FEDERATED_TOKEN_FILE")
            .ok_or("environment variable AZURE_FEDERATED_TOKEN_FILE is not set")?;
        let authority = non_empty(env, "AZURE_AUTHORITY_HOST").unwrap_or_default();
        Self::new(&tenant, &client_id, file, &authority)
    }

    /// The form body of the exchange with `assertion`.
    pub fn body(&self, assertion: &Secret) -> String {
        form(&[
            ("client_id", &self.client_id),
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", assertion.expose()),
            ("scope", SCOPE),
            ("grant_type", "client_credentials"),
        ])
    }
}

impl TokenSource for WorkloadIdentity {
    fn label(&self) -> &'static str {
        "entra_workload_identity"
    }

    fn fetch<'a>(
        &'a self,
        fetch: &'a dyn Fetch,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<AccessToken, String>> {
        Box::pin(async move {
            let assertion = read_token_file(&self.token_file).await?;
            exchange(fetch, &self.uri, self.body(&assertion), now).await
        })
    }
}
