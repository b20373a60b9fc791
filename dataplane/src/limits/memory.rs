//! [`MemoryStore`]: counters in this process (the default; one replica).
//!
//! Every operation is O(1) (amortized): a counter is one hash-map entry, and
//! expiry needs no scan. Keys expire at the end of their window plus a
//! margin, so all keys of one window share one expiry time; expiry times are
//! kept in order ([`BTreeMap`] of a handful of distinct times), each with the
//! keys that got it. Every operation first removes at most [`SWEEP_BATCH`]
//! keys whose time has passed, so a window of 100k keys ending costs no
//! single caller more than that; reads ignore an expired entry still waiting
//! for its turn.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::clock::WallClock;
use super::store::{CounterStore, Draw, Held, Reserved, Settle, StoreError};

/// Expired keys removed per operation, at most.
const SWEEP_BATCH: usize = 64;

/// One counter, and the reservations on it.
#[derive(Debug, Default)]
struct Entry {
    value: u64,
    expires: u64,
    /// Sum of open reservations.
    held: u64,
    /// Open overdrafts (0 or 1).
    over: u64,
    /// Open reservations: id -> (amount, overdraft, lapses at).
    holds: HashMap<String, (u64, bool, u64)>,
}

#[derive(Debug, Default)]
struct Counters {
    entries: HashMap<String, Entry>,
    /// Expiry time -> keys given that time when created.
    expiry: BTreeMap<u64, Vec<String>>,
}

impl Counters {
    /// Removes up to [`SWEEP_BATCH`] keys whose expiry passed.
    fn sweep(&mut self, now: u64) {
        let mut budget = SWEEP_BATCH;
        while budget > 0 {
            let Some(mut first) = self.expiry.first_entry() else {
                return;
            };
            if *first.key() > now {
                return;
            }
            let keys = first.get_mut();
            while budget > 0 {
                let Some(key) = keys.pop() else { break };
                budget -= 1;
                // A key re-created since has a later expiry: keep it.
                if self.entries.get(&key).is_some_and(|e| e.expires <= now) {
                    self.entries.remove(&key);
                }
            }
            if keys.is_empty() {
                first.remove();
            }
        }
    }

    /// The live entry of `key`, created (empty, expiring `ttl` from now) if
    /// absent or expired.
    fn live(&mut self, key: &str, ttl: Duration, now: u64) -> &mut Entry {
        let fresh = self.entries.get(key).is_none_or(|e| e.expires <= now);
        if fresh {
            let expires = now + ttl.as_millis() as u64;
            self.expiry.entry(expires).or_default().push(key.to_owned());
            self.entries.insert(
                key.to_owned(),
                Entry {
                    expires,
                    ..Entry::default()
                },
            );
        }
        self.entries.get_mut(key).expect("entry just ensured")
    }

    fn get(&self, key: &str, now: u64) -> Option<&Entry> {
        self.entries.get(key).filter(|e| e.expires > now)
    }

    fn value(&self, key: &str, now: u64) -> u64 {
        self.get(key, now).map_or(0, |e| e.value)
    }

    fn add(&mut self, key: &str, amount: u64, ttl: Duration, now: u64) -> u64 {
        let e = self.live(key, ttl, now);
        e.value = e.value.saturating_add(amount);
        e.value
    }
}

impl Entry {
    /// Drops reservations that lapsed.
    fn lapse(&mut self, now: u64) {
        if self.holds.values().all(|(_, _, until)| *until > now) {
            return;
        }
        let (mut held, mut over) = (self.held, self.over);
        self.holds.retain(|_, (amount, overdraft, until)| {
            let keep = *until > now;
            if !keep {
                held = held.saturating_sub(*amount);
                over = over.saturating_sub(u64::from(*overdraft));
            }
            keep
        });
        (self.held, self.over) = (held, over);
    }

    /// The amount `d` may hold, and whether as the overdraft; `None`: refused.
    fn grant(&self, d: &Draw) -> Option<(u64, bool)> {
        let taken = self.value.saturating_add(self.held);
        if taken >= d.limit {
            return None;
        }
        let left = d.limit - taken;
        if d.estimate <= left {
            Some((d.estimate, false))
        } else if self.over == 0 {
            Some((left, true))
        } else {
            None
        }
    }
}

/// In-process counters. Operations take a short lock and never await.
#[derive(Debug)]
pub struct MemoryStore {
    clock: WallClock,
    counters: Mutex<Counters>,
}

impl MemoryStore {
    /// An empty store using `clock` for expiry.
    pub fn new(clock: WallClock) -> Self {
        Self {
            clock,
            counters: Mutex::new(Counters::default()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Counters, u64) -> T) -> T {
        let now = self.clock.now_ms();
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.sweep(now);
        f(&mut c, now)
    }

    /// Number of keys held, expired ones not yet swept included (for tests).
    pub fn len(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CounterStore for MemoryStore {
    fn incr(
        &self,
        key: String,
        amount: u64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        let v = self.with(|c, now| c.add(&key, amount, ttl, now));
        Box::pin(async move { Ok(v) })
    }

    fn get(&self, key: String) -> BoxFuture<'_, Result<u64, StoreError>> {
        let v = self.with(|c, now| c.value(&key, now));
        Box::pin(async move { Ok(v) })
    }

    fn check_and_incr(
        &self,
        key: String,
        amount: u64,
        limit: u64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(bool, u64), StoreError>> {
        let r = self.with(|c, now| {
            let cur = c.value(&key, now);
            if cur.saturating_add(amount) > limit {
                (false, cur)
            } else {
                (true, c.add(&key, amount, ttl, now))
            }
        });
        Box::pin(async move { Ok(r) })
    }

    fn reserve(
        &self,
        id: String,
        draws: Vec<Draw>,
        now_ms: u64,
        hold_ttl: Duration,
    ) -> BoxFuture<'_, Result<Reserved, StoreError>> {
        let r = self.with(|c, now| {
            let mut grants = Vec::with_capacity(draws.len());
            for (index, d) in draws.iter().enumerate() {
                let e = c.live(&d.key, d.ttl, now);
                e.lapse(now_ms);
                match e.grant(d) {
                    Some(g) => grants.push(g),
                    None => {
                        return Reserved::Refused {
                            index,
                            used: e.value,
                            held: e.held,
                        };
                    }
                }
            }
            let until = now_ms + hold_ttl.as_millis() as u64;
            let held = draws
                .iter()
                .zip(grants)
                .map(|(d, (amount, overdraft))| {
                    let e = c.live(&d.key, d.ttl, now);
                    e.held += amount;
                    e.over += u64::from(overdraft);
                    e.holds.insert(id.clone(), (amount, overdraft, until));
                    Held {
                        amount,
                        overdraft,
                        used: e.value,
                        held: e.held,
                    }
                })
                .collect();
            Reserved::Granted(held)
        });
        Box::pin(async move { Ok(r) })
    }

    fn settle(
        &self,
        id: String,
        settles: Vec<Settle>,
    ) -> BoxFuture<'_, Result<Vec<u64>, StoreError>> {
        let r = self.with(|c, now| {
            settles
                .iter()
                .map(|s| {
                    if let Some(e) = c.entries.get_mut(&s.reserved_key)
                        && let Some((amount, overdraft, _)) = e.holds.remove(&id)
                    {
                        e.held = e.held.saturating_sub(amount);
                        e.over = e.over.saturating_sub(u64::from(overdraft));
                    }
                    if s.amount > 0 {
                        c.add(&s.key, s.amount, s.ttl, now)
                    } else {
                        c.value(&s.key, now)
                    }
                })
                .collect()
        });
        Box::pin(async move { Ok(r) })
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keys_expire_with_their_ttl() {
        let s = MemoryStore::new(WallClock::starting_at(0));
        assert_eq!(s.incr("k".into(), 2, Duration::from_secs(60)).await, Ok(2));
        tokio::time::advance(Duration::from_secs(30)).await;
        // A later increment does not extend the window.
        assert_eq!(s.incr("k".into(), 1, Duration::from_secs(60)).await, Ok(3));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(s.get("k".into()).await, Ok(0));
        assert_eq!(s.incr("k".into(), 1, Duration::from_secs(60)).await, Ok(1));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_swept_a_batch_per_call_never_all_at_once() {
        let s = MemoryStore::new(WallClock::starting_at(0));
        for i in 0..1000 {
            s.incr(format!("k{i}"), 1, Duration::from_secs(60))
                .await
                .unwrap();
        }
        // A key re-created after its window keeps its new expiry.
        tokio::time::advance(Duration::from_secs(60)).await;
        s.incr("k0".into(), 5, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(s.len(), 1000 - SWEEP_BATCH);
        let mut calls = 1;
        while s.len() > 1 {
            s.get("other".into()).await.unwrap();
            calls += 1;
        }
        assert_eq!(calls, 1000 / SWEEP_BATCH + 1);
        assert_eq!(s.get("k0".into()).await, Ok(5));
    }

    #[tokio::test(start_paused = true)]
    async fn check_and_incr_never_passes_the_limit() {
        let s = MemoryStore::new(WallClock::starting_at(0));
        let ttl = Duration::from_secs(60);
        assert_eq!(
            s.check_and_incr("k".into(), 6, 10, ttl).await,
            Ok((true, 6))
        );
        assert_eq!(
            s.check_and_incr("k".into(), 5, 10, ttl).await,
            Ok((false, 6))
        );
        assert_eq!(
            s.check_and_incr("k".into(), 4, 10, ttl).await,
            Ok((true, 10))
        );
    }

    fn draw(key: &str, limit: u64, estimate: u64) -> Draw {
        Draw {
            key: key.into(),
            limit,
            estimate,
            ttl: Duration::from_secs(600),
        }
    }

    fn settle(key: &str, amount: u64) -> Settle {
        Settle {
            reserved_key: key.into(),
            key: key.into(),
            amount,
            ttl: Duration::from_secs(600),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_fit_then_one_overdraft_then_refusals() {
        let s = MemoryStore::new(WallClock::starting_at(0));
        let hold = Duration::from_secs(60);
        let granted = |r: Reserved| match r {
            Reserved::Granted(h) => h[0],
            r => panic!("refused: {r:?}"),
        };
        let a = granted(
            s.reserve("a".into(), vec![draw("t", 100, 40)], 0, hold)
                .await
                .unwrap(),
        );
        assert_eq!((a.amount, a.overdraft, a.held), (40, false, 40));
        let b = granted(
            s.reserve("b".into(), vec![draw("t", 100, 40)], 0, hold)
                .await
                .unwrap(),
        );
        assert_eq!((b.amount, b.overdraft), (40, false));
        // 20 left: the next takes them as the overdraft; then nothing fits.
        let c = granted(
            s.reserve("c".into(), vec![draw("t", 100, 40)], 0, hold)
                .await
                .unwrap(),
        );
        assert_eq!((c.amount, c.overdraft), (20, true));
        assert_eq!(
            s.reserve("d".into(), vec![draw("t", 100, 1)], 0, hold)
                .await,
            Ok(Reserved::Refused {
                index: 0,
                used: 0,
                held: 100
            })
        );
        // a used less than it held: room for a small request, not for an
        // overdraft while c is open.
        assert_eq!(
            s.settle("a".into(), vec![settle("t", 30)]).await,
            Ok(vec![30])
        );
        granted(
            s.reserve("e".into(), vec![draw("t", 100, 10)], 0, hold)
                .await
                .unwrap(),
        );
        assert!(matches!(
            s.reserve("f".into(), vec![draw("t", 100, 50)], 0, hold)
                .await,
            Ok(Reserved::Refused { .. })
        ));
        // c ends: the overdraft is free again.
        s.settle("c".into(), vec![settle("t", 60)]).await.unwrap();
        assert_eq!(
            s.settle("b".into(), vec![settle("t", 0)]).await,
            Ok(vec![90])
        );
        assert_eq!(
            s.settle("e".into(), vec![settle("t", 5)]).await,
            Ok(vec![95])
        );
        let g = granted(
            s.reserve("g".into(), vec![draw("t", 100, 50)], 0, hold)
                .await
                .unwrap(),
        );
        assert_eq!((g.amount, g.overdraft, g.used), (5, true, 95));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_on_two_counters_holds_both_or_neither_and_lapses() {
        let s = MemoryStore::new(WallClock::starting_at(0));
        let hold = Duration::from_secs(60);
        s.incr("usd".into(), 95, Duration::from_secs(600))
            .await
            .unwrap();
        let r = s
            .reserve(
                "a".into(),
                vec![draw("tok", 100, 10), draw("usd", 100, 5)],
                0,
                hold,
            )
            .await
            .unwrap();
        assert!(
            matches!(r, Reserved::Granted(ref h) if h[1].amount == 5),
            "{r:?}"
        );
        let r = s
            .reserve(
                "b".into(),
                vec![draw("tok", 100, 10), draw("usd", 100, 5)],
                0,
                hold,
            )
            .await
            .unwrap();
        assert_eq!(
            r,
            Reserved::Refused {
                index: 1,
                used: 95,
                held: 5
            }
        );
        // b held nothing on `tok`.
        let r = s
            .reserve("c".into(), vec![draw("tok", 100, 90)], 0, hold)
            .await
            .unwrap();
        assert!(
            matches!(r, Reserved::Granted(ref h) if h[0].amount == 90 && !h[0].overdraft),
            "{r:?}"
        );
        // a's process died: its reservation lapses after the hold time.
        let r = s
            .reserve("d".into(), vec![draw("usd", 100, 5)], 60_000, hold)
            .await
            .unwrap();
        assert!(
            matches!(r, Reserved::Granted(ref h) if h[0].amount == 5 && h[0].held == 5),
            "{r:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_increments_are_not_lost() {
        let s = Arc::new(MemoryStore::new(WallClock::system()));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..100 {
                    if s.check_and_incr("k".into(), 1, 500, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .0
                    {
                        admitted += 1;
                    }
                }
                admitted
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(total, 500);
        assert_eq!(s.get("k".into()).await, Ok(500));
    }
}
