//! OAuth2 bearer tokens for providers that authenticate with one (Vertex AI
//! with Google service accounts or the metadata server, Azure OpenAI with
//! Microsoft Entra ID): one [`TokenProvider`] per backend caches the token
//! of its [`TokenSource`] and refreshes it before it expires.
//!
//! The sources are pure request builders and answer parsers
//! ([`crate::google`], [`crate::azure::entra`]); the HTTP edge is
//! [`crate::aws::fetch::Fetch`] (one request, a bounded answer), shared with
//! the AWS credential providers, and so is the cache
//! ([`crate::credentials::refresh`]):
//!
//! - a cached token is used until [`REFRESH_BEFORE`] before it expires;
//! - one fetch runs at a time, every caller waiting for it shares it, and no
//!   lock is held across it;
//! - a failed fetch is not retried for [`RETRY_AFTER_FAILURE`]; meanwhile,
//!   and while the refresh keeps failing, the old token is used until
//!   [`MIN_REMAINING`] before it expires;
//! - nothing logs a secret: [`AccessToken`] and the sources have redacted
//!   `Debug`s, and errors name endpoints and OAuth error codes only.

pub mod response;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderValue;

use crate::aws::Secret;
use crate::aws::fetch::{BoxFuture, Fetch};
use crate::credentials::refresh::{self, Fetched, Refreshing};

pub use crate::credentials::read_token_file;
pub use crate::credentials::refresh::{Clock, MIN_REMAINING, REFRESH_BEFORE, RETRY_AFTER_FAILURE};
pub use response::{TokenAnswer, parse_token_response};

/// A bearer access token and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The token.
    pub token: Secret,
    /// When it expires.
    pub expires_at: SystemTime,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AccessToken {
    /// Whether it should be replaced at `now`: it expires within `margin`.
    pub fn expires_within(&self, now: SystemTime, margin: Duration) -> bool {
        now + margin >= self.expires_at
    }

    /// `Bearer <token>` as a header value marked sensitive.
    pub fn bearer(&self) -> Result<HeaderValue, TokenError> {
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                TokenError {
                    source_label: "token",
                    reason: "the access token contains characters not allowed in a header".into(),
                }
            })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// Why no token is available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access token ({source_label}) unavailable: {reason}")]
pub struct TokenError {
    /// [`TokenSource::label`].
    pub source_label: &'static str,
    /// What went wrong (no secrets).
    pub reason: String,
}

/// Where tokens come from: one exchange with a token endpoint.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A short label for logs and metrics (`google_service_account`, ...).
    fn label(&self) -> &'static str;

    /// Fetches a new token with `fetch`; `now` is the clock of the
    /// provider (signed assertions carry it).
    fn fetch<'a>(
        &'a self,
        fetch: &'a dyn Fetch,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<AccessToken, String>>;
}

/// The exchanges of one [`TokenSource`], for the refreshing cache.
struct OAuthSource {
    source: Box<dyn TokenSource>,
    fetch: Arc<dyn Fetch>,
}

impl refresh::Source for OAuthSource {
    type Value = AccessToken;
    type Error = TokenError;
    const WHAT: &'static str = "access token";

    fn label(&self) -> &'static str {
        self.source.label()
    }

    fn fetch(&self, now: SystemTime) -> BoxFuture<'_, Result<Fetched<AccessToken>, TokenError>> {
        Box::pin(async move {
            match self.source.fetch(self.fetch.as_ref(), now).await {
                Ok(token) => {
                    let expires_at = token.expires_at;
                    Ok((token, Some(expires_at)))
                }
                Err(reason) => Err(TokenError {
                    source_label: self.source.label(),
                    reason,
                }),
            }
        })
    }
}

/// The cached, refreshed token of one source.
#[derive(Clone)]
pub struct TokenProvider {
    cache: Refreshing<OAuthSource>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("source", &self.label())
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// A provider of `source`'s tokens, fetching with `fetch`.
    pub fn new(source: impl TokenSource + 'static, fetch: Arc<dyn Fetch>) -> Self {
        Self::with_clock(source, fetch, Arc::new(SystemTime::now))
    }

    /// [`TokenProvider::new`] with a clock.
    pub fn with_clock(
        source: impl TokenSource + 'static,
        fetch: Arc<dyn Fetch>,
        clock: Clock,
    ) -> Self {
        let source = OAuthSource {
            source: Box::new(source),
            fetch,
        };
        Self {
            cache: Refreshing::new(source, clock),
        }
    }

    /// The source's label.
    pub fn label(&self) -> &'static str {
        self.cache.source().source.label()
    }

    /// A token valid for at least a while (see the module docs).
    pub async fn token(&self) -> Result<Arc<AccessToken>, TokenError> {
        self.cache.get().await
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form body from name/value pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
