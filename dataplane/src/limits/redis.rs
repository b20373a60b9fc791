//! [`RedisStore`]: counters in Redis, shared by every replica.
//!
//! Each operation is one Lua script (or a plain `GET`), so an increment and
//! the expiry of a new key happen atomically and concurrent callers in any
//! process never lose an update. Keys carry their window in their name and
//! expire shortly after it. The connection is made lazily and re-made after
//! failures; callers bound each call with their own timeout.

use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::store::{CounterStore, StoreError};

/// Adds ARGV[1] to KEYS[1]; a key without expiry gets ARGV[2] ms.
const INCR: &str = r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
";

/// Adds ARGV[1] to KEYS[1] unless that passes ARGV[2]; returns {added, value}.
const CHECK_AND_INCR: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if cur + amount > tonumber(ARGV[2]) then return {0, cur} end
local v = redis.call('INCRBY', KEYS[1], amount)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, v}
";

/// Counters in one Redis server.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    incr: redis::Script,
    check_and_incr: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// A store for `url` (`redis://host:port/db`). Connects on first use, so
    /// the data plane starts even when Redis is down. Must be called inside
    /// a tokio runtime.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self {
            conn,
            incr: redis::Script::new(INCR),
            check_and_incr: redis::Script::new(CHECK_AND_INCR),
        })
    }
}

fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl CounterStore for RedisStore {
    fn incr(
        &self,
        key: String,
        amount: u64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            self.incr
                .key(key)
                .arg(amount)
                .arg(ms(ttl))
                .invoke_async::<u64>(&mut conn)
                .await
                .map_err(unavailable)
        })
    }

    fn get(&self, key: String) -> BoxFuture<'_, Result<u64, StoreError>> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            let v: Option<u64> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(v.unwrap_or(0))
        })
    }

    fn check_and_incr(
        &self,
        key: String,
        amount: u64,
        limit: u64,
        ttl: Duration,
    ) -> BoxFuture<'_, Result<(bool, u64), StoreError>> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            let (added, v): (u64, u64) = self
                .check_and_incr
                .key(key)
                .arg(amount)
                .arg(limit)
                .arg(ms(ttl))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok((added == 1, v))
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    //! Against a real `redis-server`: `scripts/test` starts one and exports
    //! `SWITCHBOARD_TEST_REDIS_URL`.

    use std::sync::Arc;

    use super::*;

    /// The test server's URL. Missing: skipped with a message when run by
    /// hand, a failure under `scripts/test` or CI.
    pub(crate) fn redis_url() -> Option<String> {
        match std::env::var("SWITCHBOARD_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                if std::env::var_os("CI").is_some()
                    || std::env::var_os("SWITCHBOARD_TEST_REQUIRE_REDIS").is_some()
                {
                    panic!(
                        "SWITCHBOARD_TEST_REDIS_URL is not set: scripts/test starts redis-server for these tests"
                    );
                }
                eprintln!(
                    "skipped: SWITCHBOARD_TEST_REDIS_URL is not set (scripts/test starts redis-server)"
                );
                None
            }
        }
    }

    fn unique(prefix: &str) -> String {
        format!("sbtest:{prefix}:{}", fastrand::u64(..))
    }

    #[tokio::test]
    async fn increments_expire_and_check_against_limits() {
        let Some(url) = redis_url() else { return };
        let s = RedisStore::new(&url, Duration::from_secs(2)).unwrap();
        let k = unique("incr");
        assert_eq!(s.get(k.clone()).await, Ok(0));
        assert_eq!(
            s.incr(k.clone(), 5, Duration::from_millis(300)).await,
            Ok(5)
        );
        assert_eq!(s.incr(k.clone(), 2, Duration::from_secs(60)).await, Ok(7));
        assert_eq!(
            s.check_and_incr(k.clone(), 4, 10, Duration::from_secs(60))
                .await,
            Ok((false, 7))
        );
        assert_eq!(
            s.check_and_incr(k.clone(), 3, 10, Duration::from_secs(60))
                .await,
            Ok((true, 10))
        );
        // The first increment's expiry stands.
        let mut waited = 0;
        while s.get(k.clone()).await != Ok(0) {
            assert!(waited < 100, "key did not expire");
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_callers_on_separate_connections_lose_no_update() {
        let Some(url) = redis_url() else { return };
        let k = unique("race");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = Arc::new(RedisStore::new(&url, Duration::from_secs(2)).unwrap());
            let k = k.clone();
            tasks.push(tokio::spawn(async move {
                let mut admitted = 0u64;
                for _ in 0..50 {
                    s.incr(format!("{k}:n"), 1, Duration::from_secs(60))
                        .await
                        .unwrap();
                    if s.check_and_incr(format!("{k}:c"), 1, 120, Duration::from_secs(60))
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
        let mut admitted = 0;
        for t in tasks {
            admitted += t.await.unwrap();
        }
        let s = RedisStore::new(&url, Duration::from_secs(2)).unwrap();
        assert_eq!(s.get(format!("{k}:n")).await, Ok(400));
        assert_eq!(admitted, 120);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_not_a_hang() {
        // Port 1 on localhost: connection refused.
        let s = RedisStore::new("redis://127.0.0.1:1/", Duration::from_millis(300)).unwrap();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            s.incr("k".into(), 1, Duration::from_secs(1)),
        )
        .await;
        assert!(matches!(r, Ok(Err(StoreError::Unavailable(_)))), "{r:?}");
    }
}
