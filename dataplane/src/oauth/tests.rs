//! The token cache: refresh before expiry, one fetch at a time, the old
//! token while a refresh fails, nothing secret in `Debug`.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use tokio::sync::Notify;

use super::*;

/// A source handing out `token-<n>` valid for an hour, or failing.
#[derive(Debug, Default)]
struct Counting {
    fetches: Arc<AtomicUsize>,
    fail: Arc<AtomicBool>,
    /// When set, fetches wait for `release` (after signalling `started`).
    hold: Arc<AtomicBool>,
    started: Arc<Notify>,
    release: Arc<Notify>,
}

impl TokenSource for Counting {
    fn label(&self) -> &'static str {
        "counting"
    }

    fn fetch<'a>(
        &'a self,
        _: &'a dyn Fetch,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<AccessToken, String>> {
        Box::pin(async move {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            if self.hold.load(Ordering::SeqCst) {
                self.started.notify_one();
                self.release.notified().await;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err("the token endpoint answered 503: no OAuth error code".into());
            }
            Ok(AccessToken {
                token: Secret::new(format!("token-{n}")),
                expires_at: now + Duration::from_secs(3600),
            })
        })
    }
}

struct Offline;
impl Fetch for Offline {
    fn fetch(
        &self,
        _: http::Request<bytes::Bytes>,
    ) -> BoxFuture<'_, Result<(http::StatusCode, bytes::Bytes), String>> {
        Box::pin(async { Err("offline".into()) })
    }
}

const T0: u64 = 1_765_000_000;

fn clock() -> (Arc<AtomicU64>, Clock) {
    let now = Arc::new(AtomicU64::new(T0));
    let n = now.clone();
    (
        now,
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(n.load(Ordering::SeqCst))),
    )
}

fn provider(source: Counting) -> (TokenProvider, Arc<AtomicU64>) {
    let (now, clock) = clock();
    (
        TokenProvider::with_clock(source, Arc::new(Offline), clock),
        now,
    )
}

#[tokio::test]
async fn a_token_is_cached_until_five_minutes_before_it_expires() {
    let source = Counting::default();
    let fetches = source.fetches.clone();
    let (p, now) = provider(source);
    assert_eq!(p.token().await.unwrap().token.expose(), "token-1");
    now.fetch_add(3600 - 301, Ordering::SeqCst);
    assert_eq!(p.token().await.unwrap().token.expose(), "token-1");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    now.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        p.token().await.unwrap().token.expose(),
        "token-2",
        "refreshed 300 s before expiry"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_old_token_until_it_is_nearly_expired() {
    let source = Counting::default();
    let (fail, fetches) = (source.fail.clone(), source.fetches.clone());
    let (p, now) = provider(source);
    p.token().await.unwrap();
    fail.store(true, Ordering::SeqCst);
    now.fetch_add(3600 - 100, Ordering::SeqCst);
    assert_eq!(p.token().await.unwrap().token.expose(), "token-1");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // Within RETRY_AFTER_FAILURE no new fetch.
    assert_eq!(p.token().await.unwrap().token.expose(), "token-1");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // 15 s before expiry the old token is no longer used.
    now.fetch_add(100 - 15, Ordering::SeqCst);
    let e = p.token().await.unwrap_err();
    assert_eq!(e.source_label, "counting");
    assert!(e.to_string().contains("answered 503"), "{e}");
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
    fail.store(false, Ordering::SeqCst);
    now.fetch_add(RETRY_AFTER_FAILURE.as_secs(), Ordering::SeqCst);
    assert_eq!(p.token().await.unwrap().token.expose(), "token-4");
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let source = Counting::default();
    source.hold.store(true, Ordering::SeqCst);
    let (fetches, started, release) = (
        source.fetches.clone(),
        source.started.clone(),
        source.release.clone(),
    );
    let (p, _) = provider(source);
    let calls = futures_util::future::join_all((0..8).map(|_| {
        let p = p.clone();
        async move { p.token().await.map(|t| t.token.expose().to_string()) }
    }));
    let task = tokio::spawn(calls);
    // The fetch starts only after join_all polled every caller once.
    started.notified().await;
    release.notify_one();
    for r in task.await.unwrap() {
        assert_eq!(r.unwrap(), "token-1");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[test]
fn debug_never_shows_a_token() {
    let t = AccessToken {
        token: Secret::new("ya29.secret-token"),
        expires_at: UNIX_EPOCH,
    };
    assert!(!format!("{t:?}").contains("ya29"));
    let v = t.bearer().unwrap();
    assert!(v.is_sensitive());
    assert_eq!(v, "Bearer ya29.secret-token");
    let (p, _) = provider(Counting::default());
    assert_eq!(
        format!("{p:?}"),
        "TokenProvider { source: \"counting\", .. }"
    );
}

#[test]
fn form_bodies() {
    assert_eq!(
        form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("a b", "c+d/e=")
        ]),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&a%20b=c%2Bd%2Fe%3D"
    );
}
