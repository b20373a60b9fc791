//! OAuth2 bearer tokens for providers that authenticate with one (Vertex AI
//! with Google service accounts or the metadata server, Azure OpenAI with
//! Microsoft Entra ID): one [`TokenProvider`] per backend caches the token
//! of its [`TokenSource`] and refreshes it before it expires.
//!
//! The sources are pure request builders and answer parsers
//! ([`crate::google`], [`crate::azure::entra`]); the HTTP edge is
//! [`crate::aws::fetch::Fetch`] (one request, a bounded answer), shared with
//! the AWS credential providers. The cache follows
//! [`crate::aws::provider::CredentialProvider`]:
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

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::future::Shared;
use http::HeaderValue;

use crate::aws::Secret;
use crate::aws::fetch::{BoxFuture, Fetch};

pub use response::{TokenAnswer, parse_token_response};

/// Start refreshing this long before the token expires.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Stop using a token this long before it expires.
pub const MIN_REMAINING: Duration = Duration::from_secs(15);
/// Wait this long after a failed fetch before trying again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

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

/// The wall clock (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

type Refresh = Shared<BoxFuture<'static, Result<Arc<AccessToken>, TokenError>>>;

struct Inner {
    source: Box<dyn TokenSource>,
    fetch: Arc<dyn Fetch>,
    clock: Clock,
    cached: ArcSwapOption<AccessToken>,
    /// When the last fetch failed, and why.
    failed_at: ArcSwapOption<(SystemTime, TokenError)>,
    /// The fetch in flight, shared by every caller waiting for it.
    inflight: tokio::sync::Mutex<Option<Refresh>>,
}

/// The cached, refreshed token of one source.
#[derive(Clone)]
pub struct TokenProvider {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("source", &self.inner.source.label())
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
        Self {
            inner: Arc::new(Inner {
                source: Box::new(source),
                fetch,
                clock,
                cached: ArcSwapOption::empty(),
                failed_at: ArcSwapOption::empty(),
                inflight: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The source's label.
    pub fn label(&self) -> &'static str {
        self.inner.source.label()
    }

    /// A token valid for at least a while (see the module docs).
    pub async fn token(&self) -> Result<Arc<AccessToken>, TokenError> {
        let now = (self.inner.clock)();
        let cached = self.inner.cached.load_full();
        if let Some(t) = &cached
            && !t.expires_within(now, REFRESH_BEFORE)
        {
            return Ok(t.clone());
        }
        let usable = cached.filter(|t| !t.expires_within(now, MIN_REMAINING));
        if let Some(f) = self.inner.failed_at.load_full()
            && now < f.0 + RETRY_AFTER_FAILURE
        {
            return usable.ok_or_else(|| f.1.clone());
        }
        let refresh = {
            let mut slot = self.inner.inflight.lock().await;
            match slot.as_ref() {
                Some(r) => r.clone(),
                None => {
                    let inner = self.inner.clone();
                    let r = async move { refresh(inner).await }.boxed().shared();
                    *slot = Some(r.clone());
                    r
                }
            }
        };
        match refresh.await {
            Ok(t) => Ok(t),
            Err(e) => usable.ok_or(e),
        }
    }
}

/// One fetch: stores the result and frees the in-flight slot.
async fn refresh(inner: Arc<Inner>) -> Result<Arc<AccessToken>, TokenError> {
    let label = inner.source.label();
    let now = (inner.clock)();
    let result = inner
        .source
        .fetch(inner.fetch.as_ref(), now)
        .await
        .map(Arc::new)
        .map_err(|reason| TokenError {
            source_label: label,
            reason,
        });
    match &result {
        Ok(t) => {
            inner.cached.store(Some(t.clone()));
            inner.failed_at.store(None);
            tracing::debug!(source = label, "access token refreshed");
        }
        Err(e) => {
            let failed = (inner.clock)();
            inner.failed_at.store(Some(Arc::new((failed, e.clone()))));
            tracing::warn!(source = label, error = %e, "access token refresh failed");
        }
    }
    *inner.inflight.lock().await = None;
    result
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

/// Reads a token file (a projected service-account token), again for every
/// fetch: it is rotated.
pub async fn read_token_file(path: &std::path::Path) -> Result<Secret, String> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| format!("reading the token file {}: {e}", path.display()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("the token file {} is empty", path.display()));
    }
    Ok(Secret::new(text))
}

#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
