//! A Google service-account key → OAuth2 access tokens (the JWT bearer
//! grant, RFC 7523, as Google's auth libraries do it):
//!
//! 1. a JWT signed with the key's RSA private key (RS256, `kid` = the key's
//!    `private_key_id`) with claims `iss` = the account's email, `scope` =
//!    [`super::SCOPE`], `aud` = the key's `token_uri`, `iat` = now, `exp` =
//!    now + one hour;
//! 2. `POST {token_uri}` with the form
//!    `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`;
//! 3. the answer `{"access_token", "expires_in", "token_type": "Bearer"}`.
//!
//! [`ServiceAccount::assertion`] and [`ServiceAccount::request`] are pure
//! (the time is passed in); the private key is parsed once, when the
//! backend is built, and never printed.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Uri, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::SCOPE;
use crate::aws::fetch::{BoxFuture, Fetch};
use crate::oauth::{AccessToken, TokenSource, form, parse_token_response};

/// `grant_type` of the exchange.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of the signed assertion (Google's maximum).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// A service account's signing key and token endpoint.
#[derive(Clone)]
pub struct ServiceAccount {
    email: String,
    key_id: String,
    key: EncodingKey,
    token_uri: Uri,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .field("key_id", &self.key_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: String,
    iat: u64,
    exp: u64,
}

impl ServiceAccount {
    /// Parses the key (PEM, PKCS#8 or PKCS#1 RSA). Errors never quote it.
    pub fn new(
        email: &str,
        private_key_pem: &str,
        key_id: &str,
        token_uri: &str,
    ) -> Result<Self, String> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|e| {
            format!("the private key of service account {email} is not a PEM RSA key ({e})")
        })?;
        let token_uri: Uri = token_uri
            .parse()
            .map_err(|e| format!("invalid token_uri {token_uri:?}: {e}"))?;
        Ok(Self {
            email: email.to_string(),
            key_id: key_id.to_string(),
            key,
            token_uri,
        })
    }

    /// The account's email.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The signed JWT asserting the account at `now`.
    pub fn assertion(&self, now: SystemTime) -> Result<String, String> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the clock is before 1970")?
            .as_secs();
        let mut header = Header::new(Algorithm::RS256);
        if !self.key_id.is_empty() {
            header.kid = Some(self.key_id.clone());
        }
        let claims = Claims {
            iss: &self.email,
            scope: SCOPE,
            aud: self.token_uri.to_string(),
            iat,
            exp: iat + ASSERTION_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("signing the assertion of {}: {e}", self.email))
    }

    /// The token request at `now`.
    pub fn request(&self, now: SystemTime) -> Result<Request<Bytes>, String> {
        let assertion = self.assertion(now)?;
        let body = form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)]);
        Request::builder()
            .method(Method::POST)
            .uri(self.token_uri.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Bytes::from(body))
            .map_err(|e| format!("building the token request: {e}"))
    }
}

impl TokenSource for ServiceAccount {
    fn label(&self) -> &'static str {
        "google_service_account"
    }

    fn fetch<'a>(
        &'a self,
        fetch: &'a dyn Fetch,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<AccessToken, String>> {
        Box::pin(async move {
            let req = self.request(now)?;
            let (status, body) = fetch
                .fetch(req)
                .await
                .map_err(|e| format!("{}: {e}", self.token_uri))?;
            parse_token_response(status.as_u16(), &body, now)
                .map_err(|e| format!("{} for {}: {e}", self.token_uri, self.email))
        })
    }
}
