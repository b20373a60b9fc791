//! [`TokenReviewer`]: checks data-plane tokens with the API server's
//! `TokenReview` (`authentication.k8s.io/v1`, RBAC: `create` on
//! `tokenreviews`), through the controller's own kube client, and remembers
//! the answers briefly.
//!
//! The cache is keyed by the token's SHA-256 (tokens are not kept), holds at
//! most [`CACHE_CAPACITY`] answers, keeps an acceptance for
//! [`ALLOWED_TTL`] (never past the token's expiry) and a refusal for
//! [`DENIED_TTL`]; when the API server cannot be asked, nothing is cached
//! and the stream is refused with `UNAVAILABLE` (the data plane retries).
//! At most [`MAX_CONCURRENT_REVIEWS`] reviews run at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{Denied, DenyKind, Identity, ReviewPolicy, decide, token_digest, token_expiry};

/// Most cached answers.
pub const CACHE_CAPACITY: usize = 1024;
/// How long an acceptance is reused (at most until the token expires).
pub const ALLOWED_TTL: Duration = Duration::from_secs(30);
/// How long a refusal is reused.
pub const DENIED_TTL: Duration = Duration::from_secs(5);
/// Most TokenReviews in flight at once.
pub const MAX_CONCURRENT_REVIEWS: usize = 8;

type Answer = Result<Identity, Denied>;

/// A bounded, expiring map from token digest to answer.
#[derive(Debug)]
pub struct ReviewCache {
    entries: HashMap<[u8; 32], (Answer, Instant)>,
    capacity: usize,
}

impl ReviewCache {
    /// An empty cache of at most `capacity` answers.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The answer for `digest`, if one is still fresh at `now`.
    pub fn get(&mut self, digest: &[u8; 32], now: Instant) -> Option<Answer> {
        match self.entries.get(digest) {
            Some((answer, until)) if *until > now => Some(answer.clone()),
            Some(_) => {
                self.entries.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers `answer` until `until`. When full, expired answers go
    /// first, then the one closest to expiring.
    pub fn insert(&mut self, digest: [u8; 32], answer: Answer, until: Instant, now: Instant) {
        if until <= now {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&digest) {
            self.entries.retain(|_, (_, u)| *u > now);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(digest, (answer, until));
    }

    /// Number of answers held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no answer is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// How long an answer stays cached: acceptances for [`ALLOWED_TTL`] but
/// never past the token's expiry, refusals for [`DENIED_TTL`].
pub fn cache_ttl(answer: &Answer, now: SystemTime) -> Duration {
    match answer {
        Ok(identity) => {
            let left = identity
                .expires_at
                .and_then(|e| e.duration_since(now).ok())
                .unwrap_or(ALLOWED_TTL);
            left.min(ALLOWED_TTL)
        }
        Err(_) => DENIED_TTL,
    }
}

/// Checks tokens with TokenReview against a [`ReviewPolicy`].
pub struct TokenReviewer {
    api: Api<TokenReview>,
    policy: ReviewPolicy,
    cache: Mutex<ReviewCache>,
    limit: Semaphore,
}

impl TokenReviewer {
    /// A reviewer asking through `client`.
    pub fn new(client: kube::Client, policy: ReviewPolicy) -> Self {
        Self {
            api: Api::all(client),
            policy,
            cache: Mutex::new(ReviewCache::new(CACHE_CAPACITY)),
            limit: Semaphore::new(MAX_CONCURRENT_REVIEWS),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ReviewPolicy {
        &self.policy
    }

    /// For the startup log.
    pub fn describe(&self) -> String {
        let accounts: Vec<String> = self.policy.allowed.iter().map(|a| a.to_string()).collect();
        format!(
            "Kubernetes ServiceAccount tokens (TokenReview, audience {:?}) of {}",
            self.policy.audience,
            accounts.join(", ")
        )
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Answer> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest, Instant::now())
    }

    /// Authenticates `token`: a fresh cached answer, or a TokenReview.
    pub async fn authenticate(&self, token: &str) -> Answer {
        let digest = token_digest(token);
        if let Some(answer) = self.cached(&digest) {
            return answer;
        }
        let _permit =
            self.limit.acquire().await.map_err(|_| {
                Denied::new(DenyKind::Unavailable, "the controller is shutting down")
            })?;
        // Another stream may have asked while this one waited.
        if let Some(answer) = self.cached(&digest) {
            return answer;
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![self.policy.audience.clone()]),
            },
            ..Default::default()
        };
        let status = match self.api.create(&PostParams::default(), &review).await {
            Ok(answer) => answer.status.unwrap_or_default(),
            Err(e) => {
                // kube's error names the request and the API server's
                // message, never the request body (the token).
                tracing::warn!(error = %e, "TokenReview failed; the stream is refused for now");
                return Err(Denied::new(
                    DenyKind::Unavailable,
                    "the controller cannot check tokens now (TokenReview failed)",
                ));
            }
        };
        let now = SystemTime::now();
        let answer = decide(&status, &self.policy, token_expiry(token), now);
        let ttl = cache_ttl(&answer, now);
        let at = Instant::now();
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            digest,
            answer.clone(),
            at + ttl,
            at,
        );
        answer
    }
}
