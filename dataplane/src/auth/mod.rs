//! Client authentication: who is calling a route.
//!
//! An [`Authenticator`] is built per route from its `auth` configuration
//! and checks one credential per request:
//!
//! - read from `Authorization: Bearer <token>`, else `x-api-key`, else the
//!   route's configured JWT `tokenHeader`; the first present wins;
//! - no JWT and no API keys configured: the route is open and every request
//!   is `anonymous`;
//! - JWT only, API keys only, or both (a credential shaped like a JWT, three
//!   dot-separated base64url parts, is checked as a JWT, anything else as an
//!   API key).
//!
//! Errors are [`AuthError`]s whose text is safe to send to clients.
//! [`AuthError::KeysUnavailable`] means the gateway could not get the
//! issuer's keys and is answered 503; every other error is a 401.
//!
//! The client's credential never goes upstream: the proxy copies only an
//! allowlist of client headers, and forwarded-claim headers can only use
//! names outside that allowlist (see [`identity`]).

mod api_key;
mod error;
mod fetch;
pub mod identity;
mod jwks;
mod jwt;
mod keyset;
#[cfg(test)]
mod test_support;

use http::header::{AUTHORIZATION, HeaderMap, HeaderName};
use switchboard_proto as pb;

pub use error::{AuthConfigError, AuthError};
pub use fetch::HttpJwksFetcher;
pub use identity::{AuthMethod, Identity};
pub use jwks::{JwksFetcher, JwksStore};

use api_key::ApiKeys;
use jwt::JwtVerifier;

/// The client-authentication policy of one route.
pub struct Authenticator {
    jwt: Option<JwtVerifier>,
    api_keys: ApiKeys,
    token_header: Option<HeaderName>,
}

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

impl Authenticator {
    /// Builds the policy of a route; remote JWKS caches come from `jwks`,
    /// which outlives configuration reloads.
    pub fn from_config(cfg: &pb::ClientAuth, jwks: &JwksStore) -> Result<Self, AuthConfigError> {
        let api_keys = ApiKeys::from_config(&cfg.api_keys)?;
        let (jwt, token_header) = match &cfg.jwt {
            None => (None, None),
            Some(j) => {
                let header = if j.token_header.is_empty() {
                    None
                } else {
                    Some(
                        HeaderName::from_bytes(j.token_header.as_bytes()).map_err(|_| {
                            AuthConfigError::InvalidHeaderName(j.token_header.clone())
                        })?,
                    )
                };
                (Some(JwtVerifier::from_config(j, jwks)?), header)
            }
        };
        Ok(Self {
            jwt,
            api_keys,
            token_header,
        })
    }

    /// True when the route checks no credential.
    pub fn is_open(&self) -> bool {
        self.jwt.is_none() && self.api_keys.is_empty()
    }

    /// The headers this route sets from token claims. They are always built
    /// from the verified token, never copied from the client.
    pub fn forwarded_header_names(&self) -> Vec<HeaderName> {
        self.jwt
            .iter()
            .flat_map(|j| j.forwarded_header_names().cloned())
            .collect()
    }

    /// Checks the request's credential and returns who the client is.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        if self.is_open() {
            return Ok(Identity::anonymous());
        }
        let credential = self.credential(headers)?.ok_or(AuthError::Missing)?;
        match &self.jwt {
            Some(jwt) if self.api_keys.is_empty() || looks_like_jwt(credential) => {
                jwt.verify(credential).await
            }
            _ => self.api_keys.verify(credential),
        }
    }

    /// The credential the request presents (the first present, in the
    /// documented header order), whether or not it is valid.
    pub fn presented<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        self.credential(headers).ok().flatten()
    }

    /// The first credential present, in the documented header order.
    fn credential<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, AuthError> {
        if let Some(v) = headers.get(AUTHORIZATION) {
            let v = header_text(v)
                .ok_or(AuthError::Malformed("credential header is not valid text"))?;
            if let Some(token) = strip_bearer(v) {
                return Ok(Some(token));
            }
        }
        let extra = self.token_header.iter().map(|h| (h, true));
        for (name, bearer_optional) in std::iter::once((&X_API_KEY, false)).chain(extra) {
            let Some(v) = headers.get(name) else { continue };
            let v = header_text(v)
                .ok_or(AuthError::Malformed("credential header is not valid text"))?;
            let v = if bearer_optional {
                strip_bearer(v).unwrap_or(v)
            } else {
                v
            };
            let v = v.trim();
            if !v.is_empty() {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// The token of a `Bearer` authorization value (scheme case-insensitive).
/// A header value as text exactly when [`http::HeaderValue::to_str`] gives
/// it (visible ASCII and tabs). `to_str` tests byte by byte with a branch
/// each; a bearer token is hundreds of bytes, and that loop was half the
/// cost of reading the credential. Here each 32-byte block is tested
/// without a branch per byte, which the compiler vectorizes.
fn header_text(value: &http::HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    let visible = bytes.chunks(32).all(|block| {
        block.iter().fold(true, |ok, &b| {
            ok & ((0x20..0x7f).contains(&b) | (b == b'\t'))
        })
    });
    if visible {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

fn strip_bearer(v: &str) -> Option<&str> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Three non-empty dot-separated base64url parts.
fn looks_like_jwt(s: &str) -> bool {
    let b64url = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let mut parts = s.split('.');
    matches!((parts.next(), parts.next(), parts.next(), parts.next()), (Some(a), Some(b), Some(c), None) if b64url(a) && b64url(b) && b64url(c))
}

#[cfg(test)]
mod tests;
