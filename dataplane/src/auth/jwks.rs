//! JWKS caches shared across configuration reloads.
//!
//! A [`JwksStore`] holds one [`RemoteJwks`] per URI. Each keeps the last key
//! set it fetched and decides, per request, whether to fetch again:
//!
//! - nothing fetched yet, or the token names a `kid` the set lacks → fetch
//!   now (the request waits for it), but never twice within the minimum
//!   refresh interval (per URI);
//! - the cached set is older than the route's cache lifetime → the request
//!   is verified with the cached keys at once and a refresh runs in the
//!   background (stale-while-revalidate), so an expiring cache never makes
//!   requests wait for the issuer;
//! - a failed fetch keeps the previous keys (stale-if-error) and is logged;
//! - fetches are single-flight: concurrent requests wait for the one fetch
//!   in progress and then use its result.
//!
//! Fetching itself goes through the injected [`JwksFetcher`], so tests use a
//! fake and time is tokio's (pausable) clock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use tokio::time::Instant;

use super::AuthError;
use super::keyset::{KeySet, VerifyKey};

/// Fetches a JWKS document by URI.
pub trait JwksFetcher: Send + Sync {
    /// The document body at `uri`, or why it could not be fetched (logged,
    /// never sent to clients).
    fn fetch(
        &self,
        uri: &str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>>;
}

/// JWKS caches by URI, shared by every route and kept across reloads.
#[derive(Clone)]
pub struct JwksStore {
    fetcher: Arc<dyn JwksFetcher>,
    remotes: Arc<Mutex<HashMap<String, Arc<RemoteJwks>>>>,
}

impl JwksStore {
    /// A store fetching through `fetcher`.
    pub fn new(fetcher: Arc<dyn JwksFetcher>) -> Self {
        Self {
            fetcher,
            remotes: Arc::default(),
        }
    }

    /// The cache for `uri`, created on first use.
    pub(crate) fn remote(&self, uri: &str) -> Arc<RemoteJwks> {
        let mut remotes = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        remotes
            .entry(uri.to_string())
            .or_insert_with(|| Arc::new(RemoteJwks::new(uri.to_string(), self.fetcher.clone())))
            .clone()
    }
}

/// How long keys are trusted and how often a URI may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachePolicy {
    /// A fetched set is refetched once older than this.
    pub cache_for: Duration,
    /// Two fetches of one URI are at least this far apart.
    pub min_refresh: Duration,
}

/// What one URI's cache knows.
#[derive(Clone, Default)]
struct CacheState {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Completed fetch attempts; lets a waiter see that a fetch happened.
    attempts: u64,
}

/// The cached key set of one JWKS URI.
pub(crate) struct RemoteJwks {
    uri: String,
    fetcher: Arc<dyn JwksFetcher>,
    state: Mutex<CacheState>,
    /// Held for the duration of one fetch: the single-flight gate.
    fetching: tokio::sync::Mutex<()>,
}

impl RemoteJwks {
    fn new(uri: String, fetcher: Arc<dyn JwksFetcher>) -> Self {
        Self {
            uri,
            fetcher,
            state: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> CacheState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key a token signed with `alg` and naming `kid` must verify with.
    pub async fn key_for(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
        policy: CachePolicy,
    ) -> Result<Arc<VerifyKey>, AuthError> {
        let mut refreshed = false;
        loop {
            let st = self.snapshot();
            let now = Instant::now();
            let found = st.keys.as_ref().and_then(|k| k.find(kid, alg));
            let expired = st
                .fetched_at
                .is_none_or(|t| now.duration_since(t) >= policy.cache_for);
            let unknown_kid = found.is_none() && kid.is_some();
            let allowed = st
                .last_attempt
                .is_none_or(|t| now.duration_since(t) >= policy.min_refresh);
            if (st.keys.is_none() || unknown_kid) && allowed && !refreshed {
                self.refresh(st.attempts).await;
                refreshed = true;
                continue;
            }
            if expired && allowed && found.is_some() && self.fetching.try_lock().is_ok() {
                // Serve the still-valid keys now; refresh behind the request.
                let this = self.clone();
                tokio::spawn(async move { this.refresh(st.attempts).await });
            }
            return match (&st.keys, found) {
                (None, _) => Err(AuthError::KeysUnavailable),
                (Some(_), Some(key)) => Ok(key),
                (Some(_), None) => Err(AuthError::UnknownKey),
            };
        }
    }

    /// Fetches once unless another caller completed a fetch since this one
    /// looked (`seen_attempts`), in which case its result is used.
    async fn refresh(&self, seen_attempts: u64) {
        let _gate = self.fetching.lock().await;
        if self.snapshot().attempts != seen_attempts {
            return;
        }
        let result = self
            .fetcher
            .fetch(&self.uri)
            .await
            .and_then(|body| KeySet::parse(&body));
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.attempts += 1;
        st.last_attempt = Some(now);
        match result {
            Ok(keys) => {
                tracing::debug!(uri = %self.uri, "fetched JWKS");
                st.keys = Some(Arc::new(keys));
                st.fetched_at = Some(now);
            }
            Err(error) if st.keys.is_some() => {
                tracing::warn!(uri = %self.uri, %error, "JWKS fetch failed; serving the cached keys");
            }
            Err(error) => {
                tracing::warn!(uri = %self.uri, %error, "JWKS fetch failed; no keys yet");
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    pub(crate) const JWKS: &str = include_str!("testdata/jwks.json");

    /// A fetcher answering from a swappable result and counting calls; each
    /// fetch optionally waits for `gate` to open.
    pub(crate) struct FakeFetcher {
        pub calls: AtomicUsize,
        pub body: Mutex<Result<Vec<u8>, String>>,
        pub gate: Option<tokio::sync::Semaphore>,
    }

    impl Default for FakeFetcher {
        fn default() -> Self {
            Self {
                calls: AtomicUsize::new(0),
                body: Mutex::new(Err("not set".into())),
                gate: None,
            }
        }
    }

    impl FakeFetcher {
        pub fn serving(body: &str) -> Arc<Self> {
            Arc::new(Self {
                body: Mutex::new(Ok(body.as_bytes().to_vec())),
                ..Self::default()
            })
        }
        pub fn failing() -> Arc<Self> {
            Arc::new(Self {
                body: Mutex::new(Err("connection refused".into())),
                ..Self::default()
            })
        }
        pub fn set(&self, body: Result<&str, &str>) {
            *self.body.lock().unwrap() =
                body.map(|b| b.as_bytes().to_vec()).map_err(str::to_string);
        }
        pub fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl JwksFetcher for FakeFetcher {
        fn fetch(
            &self,
            _uri: &str,
        ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if let Some(gate) = &self.gate {
                    let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                }
                self.body.lock().unwrap().clone()
            })
        }
    }

    const POLICY: CachePolicy = CachePolicy {
        cache_for: Duration::from_secs(600),
        min_refresh: Duration::from_secs(30),
    };

    #[tokio::test(start_paused = true)]
    async fn first_use_fetches_then_serves_from_cache() {
        let f = FakeFetcher::serving(JWKS);
        let store = JwksStore::new(f.clone());
        let r = store.remote("https://idp/jwks");
        assert!(
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok()
        );
        assert!(
            r.key_for(Some("ec-1"), Algorithm::ES256, POLICY)
                .await
                .is_ok()
        );
        assert_eq!(f.calls(), 1);
        // The same URI from another route (or after a reload) shares the cache.
        let again = store.remote("https://idp/jwks");
        assert!(
            again
                .key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok()
        );
        assert_eq!(f.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_kid_refetches_once_then_fails() {
        let f = FakeFetcher::serving(JWKS);
        let r = JwksStore::new(f.clone()).remote("u");
        r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(31)).await;
        let e = r
            .key_for(Some("rotated"), Algorithm::RS256, POLICY)
            .await
            .err();
        assert_eq!(e, Some(AuthError::UnknownKey));
        assert_eq!(f.calls(), 2, "exactly one refetch for the unknown kid");
    }

    #[tokio::test(start_paused = true)]
    async fn min_refresh_interval_bounds_unknown_kid_fetches() {
        let f = FakeFetcher::serving(JWKS);
        let r = JwksStore::new(f.clone()).remote("u");
        r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
            .await
            .unwrap();
        for _ in 0..5 {
            let e = r
                .key_for(Some("bogus"), Algorithm::RS256, POLICY)
                .await
                .err();
            assert_eq!(e, Some(AuthError::UnknownKey));
        }
        assert_eq!(f.calls(), 1, "no refetch within the minimum interval");
        tokio::time::advance(Duration::from_secs(30)).await;
        let _ = r.key_for(Some("bogus"), Algorithm::RS256, POLICY).await;
        assert_eq!(f.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rotated_key_is_found_after_refetch() {
        let f = FakeFetcher::serving(include_str!("testdata/jwks_rsa_noalg.json"));
        let r = JwksStore::new(f.clone()).remote("u");
        r.key_for(Some("rsa-noalg"), Algorithm::RS256, POLICY)
            .await
            .unwrap();
        f.set(Ok(JWKS));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            r.key_for(Some("ec-1"), Algorithm::ES256, POLICY)
                .await
                .is_ok()
        );
        assert_eq!(f.calls(), 2);
    }

    /// Lets spawned background refreshes run until `f` saw `calls` fetches.
    async fn settle(f: &FakeFetcher, calls: usize) {
        while f.calls() < calls {
            tokio::task::yield_now().await;
        }
        // The refresh stores its result right after the fetch returns.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn expired_cache_refetches_and_serves_stale_on_error() {
        let f = FakeFetcher::serving(JWKS);
        let r = JwksStore::new(f.clone()).remote("u");
        r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
            .await
            .unwrap();
        f.set(Err("503 from idp"));
        tokio::time::advance(Duration::from_secs(601)).await;
        assert!(
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok(),
            "stale keys served"
        );
        settle(&f, 2).await;
        // Still failing: retried no more often than the minimum interval.
        assert!(
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok()
        );
        settle(&f, 2).await;
        assert_eq!(f.calls(), 2);
        tokio::time::advance(Duration::from_secs(30)).await;
        f.set(Ok(JWKS));
        assert!(
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok()
        );
        settle(&f, 3).await;
        // Fresh again: no fetch for a while.
        tokio::time::advance(Duration::from_secs(300)).await;
        assert!(
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok()
        );
        settle(&f, 3).await;
        assert_eq!(f.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_cache_is_refreshed_behind_the_request() {
        let f = Arc::new(FakeFetcher {
            body: Mutex::new(Ok(JWKS.as_bytes().to_vec())),
            gate: Some(tokio::sync::Semaphore::new(1)),
            ..FakeFetcher::default()
        });
        let r = JwksStore::new(f.clone()).remote("u");
        r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
            .await
            .unwrap();
        // The issuer hangs from now on: its next fetch never returns.
        f.gate.as_ref().unwrap().forget_permits(1);
        tokio::time::advance(Duration::from_secs(601)).await;
        let served = tokio::time::timeout(
            Duration::from_secs(1),
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY),
        )
        .await
        .expect("an expired cache does not make the request wait for the issuer");
        assert!(served.is_ok());
        settle(&f, 2).await;
        // The refresh is in flight: requests keep being served meanwhile.
        assert!(
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok()
        );
        assert_eq!(f.calls(), 2, "one background refresh at a time");
        // Once it completes, the new keys are used.
        f.gate.as_ref().unwrap().add_permits(1);
        f.set(Ok(include_str!("testdata/jwks_rsa_noalg.json")));
        while r
            .key_for(Some("rsa-noalg"), Algorithm::RS256, POLICY)
            .await
            .is_err()
        {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn never_fetched_is_unavailable_and_retries_after_the_interval() {
        let f = FakeFetcher::failing();
        let r = JwksStore::new(f.clone()).remote("u");
        let e = r
            .key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
            .await
            .err();
        assert_eq!(e, Some(AuthError::KeysUnavailable));
        let e = r
            .key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
            .await
            .err();
        assert_eq!(e, Some(AuthError::KeysUnavailable));
        assert_eq!(f.calls(), 1);
        tokio::time::advance(Duration::from_secs(30)).await;
        f.set(Ok(JWKS));
        assert!(
            r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                .await
                .is_ok()
        );
        assert_eq!(f.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_document_counts_as_a_failed_fetch() {
        let f = FakeFetcher::serving("<html>login</html>");
        let r = JwksStore::new(f.clone()).remote("u");
        let e = r
            .key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
            .await
            .err();
        assert_eq!(e, Some(AuthError::KeysUnavailable));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_fetch() {
        let f = Arc::new(FakeFetcher {
            body: Mutex::new(Ok(JWKS.as_bytes().to_vec())),
            gate: Some(tokio::sync::Semaphore::new(0)),
            ..FakeFetcher::default()
        });
        let r = JwksStore::new(f.clone()).remote("u");
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let r = r.clone();
            tasks.push(tokio::spawn(async move {
                r.key_for(Some("rsa-1"), Algorithm::RS256, POLICY)
                    .await
                    .is_ok()
            }));
        }
        // Wait until the one fetch is in flight, then let it finish.
        while f.calls() == 0 {
            tokio::task::yield_now().await;
        }
        f.gate.as_ref().unwrap().add_permits(16);
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(f.calls(), 1);
    }
}
