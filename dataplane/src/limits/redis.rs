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

use super::store::{
    CounterStore, Draw, Held, Reserved, Settle, StoreError, held_key, holds_key, over_key,
};

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

/// Reserves on N counters at once or on none (see [`super::store::Draw`]).
/// KEYS: per counter `used, held, holds, over`. ARGV: `id, now_ms,
/// hold_ms, n`, then per counter `limit, estimate, ttl_ms`. Lapsed
/// reservations (`holds` values `amount:overdraft:until`) are dropped
/// first. Returns `{1, amount, overdraft, used, held, ...}` or
/// `{0, index, used, held}`.
const RESERVE: &str = r"
local id, now, hold, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local plan = {}
for i = 1, n do
  local k, a = (i - 1) * 4, 4 + (i - 1) * 3
  local held_k, holds_k, over_k = KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local all = redis.call('HGETALL', holds_k)
  for j = 1, #all, 2 do
    local amount, over, untl = string.match(all[j + 1], '^(%d+):(%d):(%d+)$')
    if amount == nil or tonumber(untl) <= now then
      redis.call('HDEL', holds_k, all[j])
      if amount ~= nil then
        redis.call('DECRBY', held_k, amount)
        if over == '1' then redis.call('DECR', over_k) end
      end
    end
  end
  local used = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
  local held = math.max(0, tonumber(redis.call('GET', held_k) or '0'))
  local open = tonumber(redis.call('GET', over_k) or '0')
  local limit, estimate = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if used + held >= limit then return {0, i - 1, used, held} end
  local left = limit - used - held
  if estimate <= left then
    plan[i] = {estimate, 0, used, held}
  elseif open <= 0 then
    plan[i] = {left, 1, used, held}
  else
    return {0, i - 1, used, held}
  end
end
local out = {1}
for i = 1, n do
  local k, a = (i - 1) * 4, 4 + (i - 1) * 3
  local ttl = tonumber(ARGV[a + 3])
  local amount, over = plan[i][1], plan[i][2]
  local held = redis.call('INCRBY', KEYS[k + 2], amount)
  redis.call('HSET', KEYS[k + 3], id, amount .. ':' .. over .. ':' .. (now + hold))
  if over == 1 then redis.call('INCR', KEYS[k + 4]) end
  for j = 2, 4 do redis.call('PEXPIRE', KEYS[k + j], ttl) end
  table.insert(out, amount)
  table.insert(out, over)
  table.insert(out, plan[i][3])
  table.insert(out, held)
end
return out
";

/// Settles reservation ARGV[1] on N counters (ARGV[2]). KEYS: per counter
/// `held, holds, over` of the reservation's window, then `used` of the
/// current one. ARGV per counter: `amount, ttl_ms`. Returns each `used`.
const SETTLE: &str = r"
local id, n = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local k, a = (i - 1) * 4, 2 + (i - 1) * 2
  local v = redis.call('HGET', KEYS[k + 2], id)
  if v then
    local amount, over = string.match(v, '^(%d+):(%d):')
    redis.call('HDEL', KEYS[k + 2], id)
    if amount ~= nil then
      redis.call('DECRBY', KEYS[k + 1], amount)
      if over == '1' then redis.call('DECR', KEYS[k + 3]) end
    end
  end
  local amount = tonumber(ARGV[a + 1])
  local used
  if amount > 0 then
    used = redis.call('INCRBY', KEYS[k + 4], amount)
    if redis.call('PTTL', KEYS[k + 4]) < 0 then redis.call('PEXPIRE', KEYS[k + 4], ARGV[a + 2]) end
  else
    used = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
  end
  table.insert(out, used)
end
return out
";

/// Counters in one Redis server.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    incr: redis::Script,
    check_and_incr: redis::Script,
    reserve: redis::Script,
    settle: redis::Script,
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
            reserve: redis::Script::new(RESERVE),
            settle: redis::Script::new(SETTLE),
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

    fn reserve(
        &self,
        id: String,
        draws: Vec<Draw>,
        now_ms: u64,
        hold_ttl: Duration,
    ) -> BoxFuture<'_, Result<Reserved, StoreError>> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            let mut inv = self.reserve.prepare_invoke();
            inv.arg(id).arg(now_ms).arg(ms(hold_ttl)).arg(draws.len());
            for d in &draws {
                inv.key(&d.key)
                    .key(held_key(&d.key))
                    .key(holds_key(&d.key))
                    .key(over_key(&d.key));
                inv.arg(d.limit).arg(d.estimate).arg(ms(d.ttl));
            }
            let out: Vec<i64> = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
            let n = |i: usize| out.get(i).copied().unwrap_or(0).max(0) as u64;
            if n(0) == 0 {
                return Ok(Reserved::Refused {
                    index: n(1) as usize,
                    used: n(2),
                    held: n(3),
                });
            }
            Ok(Reserved::Granted(
                (0..draws.len())
                    .map(|i| Held {
                        amount: n(1 + i * 4),
                        overdraft: n(2 + i * 4) == 1,
                        used: n(3 + i * 4),
                        held: n(4 + i * 4),
                    })
                    .collect(),
            ))
        })
    }

    fn settle(
        &self,
        id: String,
        settles: Vec<Settle>,
    ) -> BoxFuture<'_, Result<Vec<u64>, StoreError>> {
        let mut conn = self.conn.clone();
        Box::pin(async move {
            let mut inv = self.settle.prepare_invoke();
            inv.arg(id).arg(settles.len());
            for s in &settles {
                inv.key(held_key(&s.reserved_key))
                    .key(holds_key(&s.reserved_key))
                    .key(over_key(&s.reserved_key))
                    .key(&s.key);
                inv.arg(s.amount).arg(ms(s.ttl));
            }
            let out: Vec<i64> = inv.invoke_async(&mut conn).await.map_err(unavailable)?;
            Ok(out.into_iter().map(|v| v.max(0) as u64).collect())
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_sharing_redis_overshoot_a_token_quota_by_one_request_at_most() {
        let Some(url) = redis_url() else { return };
        let clock = crate::limits::WallClock::system();
        // Three replicas, each with its own connection.
        let replicas: Vec<Arc<crate::limits::Limiter>> = (0..3)
            .map(|_| {
                Arc::new(crate::limits::Limiter::new(
                    Arc::new(RedisStore::new(&url, Duration::from_secs(5)).unwrap()),
                    clock,
                    crate::limits::FailMode::Closed,
                    Duration::from_secs(5),
                ))
            })
            .collect();
        for round in 0..5 {
            let party = crate::limits::Party {
                key: unique(&format!("race{round}")),
                requests_per_minute: 0,
                tokens_per_day: 1000,
                budget: None,
            };
            let (admitted, charged) =
                crate::limits::limiter::tests::hammer(&replicas, &party, 60, 310, 300).await;
            assert!(charged <= 1000 + 300, "round {round}: {charged} charged");
            assert!(admitted >= 3, "round {round}: {admitted} admitted");
        }
    }

    #[tokio::test]
    async fn reservations_lapse_and_release_in_one_script_each() {
        let Some(url) = redis_url() else { return };
        let s = RedisStore::new(&url, Duration::from_secs(2)).unwrap();
        let k = unique("resv");
        let draw = |estimate| Draw {
            key: k.clone(),
            limit: 100,
            estimate,
            ttl: Duration::from_secs(60),
        };
        let hold = Duration::from_secs(60);
        let a = s
            .reserve("a".into(), vec![draw(70)], 1_000, hold)
            .await
            .unwrap();
        assert_eq!(
            a,
            Reserved::Granted(vec![Held {
                amount: 70,
                overdraft: false,
                used: 0,
                held: 70
            }])
        );
        let b = s
            .reserve("b".into(), vec![draw(70)], 1_000, hold)
            .await
            .unwrap();
        assert_eq!(
            b,
            Reserved::Granted(vec![Held {
                amount: 30,
                overdraft: true,
                used: 0,
                held: 100
            }])
        );
        assert_eq!(
            s.reserve("c".into(), vec![draw(1)], 1_000, hold).await,
            Ok(Reserved::Refused {
                index: 0,
                used: 0,
                held: 100
            })
        );
        let settle = |amount| Settle {
            reserved_key: k.clone(),
            key: k.clone(),
            amount,
            ttl: Duration::from_secs(60),
        };
        assert_eq!(s.settle("a".into(), vec![settle(50)]).await, Ok(vec![50]));
        // b's process died: after the hold time its 30 are free again, and
        // so is the overdraft.
        let d = s
            .reserve("d".into(), vec![draw(70)], 61_000, hold)
            .await
            .unwrap();
        assert_eq!(
            d,
            Reserved::Granted(vec![Held {
                amount: 50,
                overdraft: true,
                used: 50,
                held: 50
            }])
        );
        // Settling a lapsed reservation only charges.
        assert_eq!(s.settle("b".into(), vec![settle(10)]).await, Ok(vec![60]));
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
