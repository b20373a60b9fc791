//! AWS authentication for the Bedrock provider: SigV4 signing and the
//! credential sources, with no AWS SDK (see `docs/providers/bedrock.md` for
//! why: the AWS crates need a newer Rust than the workspace's and add two
//! dozen crates).
//!
//! - [`sigv4`]: pure request signing (verified against botocore);
//! - [`credentials`]: credentials and secrets that never print;
//! - [`sts`], [`container`]: the IRSA and EKS Pod Identity exchanges, pure
//!   request builders and answer parsers;
//! - [`provider`]: the cached, refreshed credentials of one source;
//! - [`fetch`]: the HTTP edge those exchanges use;
//! - [`Auth`]: how a Bedrock request is authorised (SigV4 or a Bedrock API
//!   key as a bearer token), applied to a ready request.

pub mod container;
pub mod credentials;
pub mod fetch;
pub mod provider;
pub mod sigv4;
pub mod sts;
pub mod time;

use std::time::SystemTime;

use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use http::{Method, Uri};

pub use credentials::{Credentials, Secret};
pub use provider::{CredentialError, CredentialProvider, CredentialSource};

/// The signing name of Bedrock Runtime.
pub const BEDROCK_SERVICE: &str = "bedrock";

/// How requests to one Bedrock backend are authorised.
#[derive(Clone, Debug)]
pub enum Auth {
    /// A Bedrock API key, sent as `Authorization: Bearer <key>` (no SigV4).
    Bearer(HeaderValue),
    /// SigV4 with credentials from a provider.
    SigV4 {
        /// Where the credentials come from.
        provider: CredentialProvider,
        /// The signing region.
        region: String,
    },
}

/// Why a request could not be authorised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// Signing failed.
    #[error("signing the request: {0}")]
    Sign(#[from] sigv4::SignError),
}

impl Auth {
    /// A bearer API key (marked sensitive).
    pub fn bearer(key: &Secret) -> Result<Self, String> {
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", key.expose().trim())).map_err(|_| {
                "the Bedrock API key contains characters not allowed in a header".to_string()
            })?;
        v.set_sensitive(true);
        Ok(Self::Bearer(v))
    }

    /// Adds the credential to a request about to be sent (after every
    /// other header is set: the signature covers `content-type` and
    /// `x-amz-*`). Any `authorization` already present is replaced.
    pub async fn apply(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), AuthError> {
        match self {
            Auth::Bearer(v) => {
                headers.insert(AUTHORIZATION, v.clone());
                Ok(())
            }
            Auth::SigV4 { provider, region } => {
                let creds = provider.credentials().await?;
                let params = sigv4::SigningParams {
                    credentials: &creds,
                    region,
                    service: BEDROCK_SERVICE,
                    time: SystemTime::now(),
                };
                sigv4::sign(method, uri, headers, body, &params)?;
                Ok(())
            }
        }
    }
}

/// A TLS client configuration with the bundled roots (tests).
#[cfg(test)]
pub(crate) fn test_tls() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default versions")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aws::fetch::{BoxFuture, Fetch};

    struct NoFetch;
    impl Fetch for NoFetch {
        fn fetch(
            &self,
            _: http::Request<bytes::Bytes>,
        ) -> BoxFuture<'_, Result<(http::StatusCode, bytes::Bytes), String>> {
            Box::pin(async { Err("offline".to_string()) })
        }
    }

    #[tokio::test]
    async fn bearer_and_sigv4_replace_the_client_authorization() {
        let uri: Uri = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer client-jwt"));
        let bearer = Auth::bearer(&Secret::new("ABSK-key")).unwrap();
        bearer
            .apply(&Method::POST, &uri, &mut headers, b"{}")
            .await
            .unwrap();
        assert_eq!(headers[AUTHORIZATION], "Bearer ABSK-key");
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(
            !format!("{bearer:?}").contains("ABSK"),
            "Debug hides the key"
        );

        let sigv4 = Auth::SigV4 {
            provider: CredentialProvider::new(
                CredentialSource::Static(Credentials::new(
                    "AKIDEXAMPLE",
                    "secret",
                    Some("tok".into()),
                )),
                Arc::new(NoFetch),
            ),
            region: "us-east-1".into(),
        };
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        sigv4
            .apply(&Method::POST, &uri, &mut headers, b"{}")
            .await
            .unwrap();
        let auth = headers[AUTHORIZATION].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert_eq!(headers["x-amz-security-token"], "tok");
        assert_eq!(headers["host"], "bedrock-runtime.us-east-1.amazonaws.com");
    }
}
