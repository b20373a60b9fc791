//! A cached value that expires and is fetched again before it does: the
//! refresh state machine of the AWS credential providers and the OAuth2
//! token providers.
//!
//! [`Refreshing::get`]:
//!
//! - returns the cached value until [`REFRESH_BEFORE`] before it expires (a
//!   value without an expiry is kept for good);
//! - otherwise fetches a new one; one fetch runs at a time, every caller
//!   waiting for it shares it, and no lock is held across it;
//! - does not fetch again for [`RETRY_AFTER_FAILURE`] after a failed fetch;
//!   meanwhile, and while the refresh keeps failing, the old value is used
//!   until [`MIN_REMAINING`] before it expires, then the fetch's error is
//!   returned.
//!
//! Time is the wall clock of a [`Clock`] (expiries are wall-clock instants
//! from the token endpoints), replaceable in tests. Log lines name the
//! source's label and the error, which must carry no secret.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::future::Shared;

use crate::aws::fetch::BoxFuture;

/// Start refreshing this long before the value expires.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Stop using a value this long before it expires.
pub const MIN_REMAINING: Duration = Duration::from_secs(15);
/// Wait this long after a failed fetch before trying again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// The wall clock (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A fetched value and when it expires (`None`: never).
pub type Fetched<T> = (T, Option<SystemTime>);

/// Where the values of a [`Refreshing`] come from.
pub trait Source: Send + Sync + 'static {
    /// What is fetched.
    type Value: Send + Sync + 'static;
    /// Why a fetch failed (no secrets: it is logged).
    type Error: Clone + fmt::Display + Send + Sync + 'static;

    /// What is fetched, in log lines (`AWS credentials`, `access token`).
    const WHAT: &'static str;

    /// A short label for logs and metrics.
    fn label(&self) -> &'static str;

    /// Fetches a new value; `now` is the cache's clock when the fetch starts.
    fn fetch(&self, now: SystemTime) -> BoxFuture<'_, Result<Fetched<Self::Value>, Self::Error>>;
}

/// The cached value and its expiry.
struct Entry<T> {
    value: Arc<T>,
    expires_at: Option<SystemTime>,
}

impl<T> Entry<T> {
    /// Whether it expires within `margin` of `now`.
    fn expires_within(&self, now: SystemTime, margin: Duration) -> bool {
        self.expires_at.is_some_and(|at| now + margin >= at)
    }
}

type Refresh<S> =
    Shared<BoxFuture<'static, Result<Arc<<S as Source>::Value>, <S as Source>::Error>>>;

struct Inner<S: Source> {
    source: S,
    clock: Clock,
    cached: ArcSwapOption<Entry<S::Value>>,
    /// When the last fetch failed, and why.
    failed_at: ArcSwapOption<(SystemTime, S::Error)>,
    /// The fetch in flight, shared by every caller waiting for it.
    inflight: tokio::sync::Mutex<Option<Refresh<S>>>,
}

/// The cached, refreshed value of one [`Source`]; clones share the cache.
pub struct Refreshing<S: Source> {
    inner: Arc<Inner<S>>,
}

impl<S: Source> Clone for Refreshing<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Source> Refreshing<S> {
    /// An empty cache of `source`'s values; the first [`Refreshing::get`]
    /// fetches.
    pub fn new(source: S, clock: Clock) -> Self {
        Self::build(source, clock, None)
    }

    /// A cache holding `value` (expiring at `expires_at`) from the start.
    pub fn with_value(source: S, clock: Clock, value: Fetched<S::Value>) -> Self {
        Self::build(source, clock, Some(value))
    }

    fn build(source: S, clock: Clock, value: Option<Fetched<S::Value>>) -> Self {
        let cached = value.map(|(value, expires_at)| {
            Arc::new(Entry {
                value: Arc::new(value),
                expires_at,
            })
        });
        Self {
            inner: Arc::new(Inner {
                source,
                clock,
                cached: ArcSwapOption::new(cached),
                failed_at: ArcSwapOption::empty(),
                inflight: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// A value valid for at least a while (see the module docs).
    pub async fn get(&self) -> Result<Arc<S::Value>, S::Error> {
        let now = (self.inner.clock)();
        let cached = self.inner.cached.load_full();
        if let Some(c) = &cached
            && !c.expires_within(now, REFRESH_BEFORE)
        {
            return Ok(c.value.clone());
        }
        let usable = cached
            .filter(|c| !c.expires_within(now, MIN_REMAINING))
            .map(|c| c.value.clone());
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
            Ok(v) => Ok(v),
            Err(e) => usable.ok_or(e),
        }
    }
}

/// One fetch: stores the result and frees the in-flight slot.
async fn refresh<S: Source>(inner: Arc<Inner<S>>) -> Result<Arc<S::Value>, S::Error> {
    let label = inner.source.label();
    let now = (inner.clock)();
    let result = inner.source.fetch(now).await;
    let result = match result {
        Ok((value, expires_at)) => {
            let value = Arc::new(value);
            inner.cached.store(Some(Arc::new(Entry {
                value: value.clone(),
                expires_at,
            })));
            inner.failed_at.store(None);
            tracing::debug!(source = label, "{} refreshed", S::WHAT);
            Ok(value)
        }
        Err(e) => {
            let failed = (inner.clock)();
            inner.failed_at.store(Some(Arc::new((failed, e.clone()))));
            tracing::warn!(source = label, error = %e, "{} refresh failed", S::WHAT);
            Err(e)
        }
    };
    *inner.inflight.lock().await = None;
    result
}

#[cfg(test)]
#[path = "refresh_tests.rs"]
mod tests;
