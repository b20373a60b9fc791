//! The refresh state machine on tokio's paused clock: a fresh value is
//! served from the cache, one about to expire is fetched again, concurrent
//! callers share one fetch, and a failing fetch keeps the old value until
//! it is nearly expired, then returns its error.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

use tokio::sync::Notify;
use tokio::time::advance;

use super::*;

/// A source handing out `n` (the fetch count) valid for `LIFETIME`, or
/// failing with `"down <n>"`.
#[derive(Default)]
struct Scripted {
    fetches: AtomicUsize,
    fail: AtomicBool,
    /// When set, fetches wait for `release` (after signalling `started`).
    hold: AtomicBool,
    started: Notify,
    release: Notify,
}

const LIFETIME: Duration = Duration::from_secs(3600);

impl Source for Arc<Scripted> {
    type Value = usize;
    type Error = String;
    const WHAT: &'static str = "test value";

    fn label(&self) -> &'static str {
        "scripted"
    }

    fn fetch(&self, now: SystemTime) -> BoxFuture<'_, Result<Fetched<usize>, String>> {
        Box::pin(async move {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            if self.hold.load(Ordering::SeqCst) {
                self.started.notify_one();
                self.release.notified().await;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(format!("down {n}"));
            }
            Ok((n, Some(now + LIFETIME)))
        })
    }
}

/// The wall clock as tokio's (paused) clock moves it.
fn paused_clock() -> Clock {
    let start = tokio::time::Instant::now();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_765_000_000);
    Arc::new(move || t0 + start.elapsed())
}

fn cache() -> (Refreshing<Arc<Scripted>>, Arc<Scripted>) {
    let source = Arc::new(Scripted::default());
    (Refreshing::new(source.clone(), paused_clock()), source)
}

fn fetches(s: &Scripted) -> usize {
    s.fetches.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn a_fresh_value_is_served_from_the_cache() {
    let (c, s) = cache();
    assert_eq!(*c.get().await.unwrap(), 1);
    advance(LIFETIME - REFRESH_BEFORE - Duration::from_secs(1)).await;
    assert_eq!(*c.get().await.unwrap(), 1);
    assert_eq!(*c.clone().get().await.unwrap(), 1, "clones share the cache");
    assert_eq!(fetches(&s), 1);
}

#[tokio::test(start_paused = true)]
async fn a_value_about_to_expire_is_fetched_again() {
    let (c, s) = cache();
    assert_eq!(*c.get().await.unwrap(), 1);
    advance(LIFETIME - REFRESH_BEFORE).await;
    assert_eq!(*c.get().await.unwrap(), 2, "refreshed REFRESH_BEFORE ahead");
    assert_eq!(fetches(&s), 2);
    // The new value counts from its own fetch.
    advance(LIFETIME - REFRESH_BEFORE - Duration::from_secs(1)).await;
    assert_eq!(*c.get().await.unwrap(), 2);
    assert_eq!(fetches(&s), 2);
}

#[tokio::test(start_paused = true)]
async fn a_value_without_expiry_is_never_fetched() {
    let source = Arc::new(Scripted::default());
    let c = Refreshing::with_value(source.clone(), paused_clock(), (7, None));
    advance(LIFETIME * 1000).await;
    assert_eq!(*c.get().await.unwrap(), 7);
    assert_eq!(fetches(&source), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_fetch() {
    let (c, s) = cache();
    s.hold.store(true, Ordering::SeqCst);
    let calls = futures_util::future::join_all((0..8).map(|_| {
        let c = c.clone();
        async move { c.get().await.map(|v| *v) }
    }));
    let task = tokio::spawn(calls);
    // The fetch starts only after join_all polled every caller once.
    s.started.notified().await;
    s.release.notify_one();
    for r in task.await.unwrap() {
        assert_eq!(r.unwrap(), 1);
    }
    assert_eq!(fetches(&s), 1);

    // The slot is freed: the next refresh is a new fetch, shared again.
    advance(LIFETIME).await;
    let calls = futures_util::future::join_all((0..3).map(|_| {
        let c = c.clone();
        async move { c.get().await.map(|v| *v) }
    }));
    let task = tokio::spawn(calls);
    s.started.notified().await;
    s.release.notify_one();
    assert_eq!(
        task.await.unwrap(),
        vec![Ok(2), Ok(2), Ok(2)],
        "one shared fetch"
    );
    assert_eq!(fetches(&s), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_fetch_keeps_the_old_value_until_it_is_nearly_expired() {
    let (c, s) = cache();
    assert_eq!(*c.get().await.unwrap(), 1);
    s.fail.store(true, Ordering::SeqCst);
    advance(LIFETIME - Duration::from_secs(100)).await;
    assert_eq!(*c.get().await.unwrap(), 1, "the refresh failed: old value");
    assert_eq!(fetches(&s), 2);
    // Within RETRY_AFTER_FAILURE no new fetch.
    advance(RETRY_AFTER_FAILURE - Duration::from_secs(1)).await;
    assert_eq!(*c.get().await.unwrap(), 1);
    assert_eq!(fetches(&s), 2);
    // After the pause a new fetch, failing again: still the old value.
    advance(Duration::from_secs(1)).await;
    assert_eq!(*c.get().await.unwrap(), 1);
    assert_eq!(fetches(&s), 3);
    // MIN_REMAINING before expiry the old value is no longer used: the
    // fetch's error, and within the pause that error without a fetch.
    advance(Duration::from_secs(100) - RETRY_AFTER_FAILURE - MIN_REMAINING).await;
    assert_eq!(c.get().await.unwrap_err(), "down 4");
    assert_eq!(fetches(&s), 4);
    assert_eq!(c.get().await.unwrap_err(), "down 4");
    assert_eq!(fetches(&s), 4);
    // Recovery after the pause.
    s.fail.store(false, Ordering::SeqCst);
    advance(RETRY_AFTER_FAILURE).await;
    assert_eq!(*c.get().await.unwrap(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_first_fetch_failing_is_an_error_and_retried_after_the_pause() {
    let (c, s) = cache();
    s.fail.store(true, Ordering::SeqCst);
    assert_eq!(c.get().await.unwrap_err(), "down 1");
    assert_eq!(
        c.get().await.unwrap_err(),
        "down 1",
        "no fetch in the pause"
    );
    assert_eq!(fetches(&s), 1);
    s.fail.store(false, Ordering::SeqCst);
    advance(RETRY_AFTER_FAILURE).await;
    assert_eq!(*c.get().await.unwrap(), 2);
}
