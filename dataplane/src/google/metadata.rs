//! Access tokens from the GCE / GKE metadata server: GKE Workload Identity
//! (the GKE metadata server answers for the Google service account the
//! pod's Kubernetes service account is bound to), Compute Engine, Cloud Run.
//!
//! `GET http://{host}/computeMetadata/v1/instance/service-accounts/{account}/token`
//! with `Metadata-Flavor: Google`; the answer is
//! `{"access_token", "expires_in", "token_type": "Bearer"}`. The host is
//! `GCE_METADATA_HOST` when set (as in Google's client libraries), else
//! `metadata.google.internal`.

use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request, Uri};

use crate::aws::fetch::{BoxFuture, Fetch};
use crate::oauth::{AccessToken, TokenSource, parse_token_response};

/// The metadata server's host name.
pub const DEFAULT_HOST: &str = "metadata.google.internal";
/// The variable that overrides it (`host` or `host:port`).
pub const HOST_ENV: &str = "GCE_METADATA_HOST";
/// The account asked for when none is configured.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Tokens of one account from one metadata server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataServer {
    uri: Uri,
}

impl MetadataServer {
    /// The server at `host` (`host[:port]`) for `account` (empty: `default`).
    pub fn new(host: &str, account: &str) -> Result<Self, String> {
        let account = if account.is_empty() {
            DEFAULT_ACCOUNT
        } else {
            account
        };
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return Err(format!("invalid metadata server host {host:?}"));
        }
        if account.contains(['/', '?', '#']) {
            return Err(format!("invalid service account {account:?}"));
        }
        let uri =
            format!("http://{host}/computeMetadata/v1/instance/service-accounts/{account}/token")
                .parse()
                .map_err(|e| format!("invalid metadata server host {host:?}: {e}"))?;
        Ok(Self { uri })
    }

    /// The server of the environment (`GCE_METADATA_HOST` or the default).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, account: &str) -> Result<Self, String> {
        let host = env(HOST_ENV)
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        Self::new(&host, account)
    }

    /// The token URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The token request.
    pub fn request(&self) -> Request<Bytes> {
        Request::builder()
            .method(Method::GET)
            .uri(self.uri.clone())
            .header("metadata-flavor", "Google")
            .body(Bytes::new())
            .expect("a GET with a valid URI and headers")
    }
}

impl TokenSource for MetadataServer {
    fn label(&self) -> &'static str {
        "google_metadata_server"
    }

    fn fetch<'a>(
        &'a self,
        fetch: &'a dyn Fetch,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<AccessToken, String>> {
        Box::pin(async move {
            let (status, body) = fetch
                .fetch(self.request())
                .await
                .map_err(|e| format!("{}: {e}", self.uri))?;
            parse_token_response(status.as_u16(), &body, now)
                .map_err(|e| format!("{}: {e}", self.uri))
        })
    }
}
