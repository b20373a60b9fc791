//! [`MemoryStore`]: counters in this process (the default; one replica).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::clock::WallClock;
use super::store::{CounterStore, StoreError};

/// Sweep expired keys once the map holds this many.
const SWEEP_AT: usize = 4096;

/// In-process counters. Operations take a short lock and never await.
#[derive(Debug)]
pub struct MemoryStore {
    clock: WallClock,
    counters: Mutex<HashMap<String, (u64, u64)>>,
}

impl MemoryStore {
    /// An empty store using `clock` for expiry.
    pub fn new(clock: WallClock) -> Self {
        Self {
            clock,
            counters: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (u64, u64)>, u64) -> T) -> T {
        let now = self.clock.now_ms();
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, expires)| *expires > now);
        }
        f(&mut map, now)
    }

    fn current(map: &HashMap<String, (u64, u64)>, key: &str, now: u64) -> u64 {
        map.get(key)
            .filter(|(_, expires)| *expires > now)
            .map_or(0, |(v, _)| *v)
    }

    fn add(
        map: &mut HashMap<String, (u64, u64)>,
        key: String,
        amount: u64,
        ttl: Duration,
        now: u64,
    ) -> u64 {
        let value = Self::current(map, &key, now).saturating_add(amount);
        let expires = match map.get(&key) {
            Some((_, e)) if *e > now => *e,
            _ => now + ttl.as_millis() as u64,
        };
        map.insert(key, (value, expires));
        value
    }

    /// Number of keys held, expired ones included (for tests).
    pub fn len(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
        let v = self.with(|map, now| Self::add(map, key, amount, ttl, now));
        Box::pin(async move { Ok(v) })
    }

    fn get(&self, key: String) -> BoxFuture<'_, Result<u64, StoreError>> {
        let v = self.with(|map, now| Self::current(map, &key, now));
        Box::pin(async move { Ok(v) })
    }

    fn check_and_incr(
        &self,
        key: String,
        amount: u64,
        limit: u64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(bool, u64), StoreError>> {
        let r = self.with(|map, now| {
            let cur = Self::current(map, &key, now);
            if cur.saturating_add(amount) > limit {
                (false, cur)
            } else {
                (true, Self::add(map, key, amount, ttl, now))
            }
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
