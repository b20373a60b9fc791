//! Admission and accounting against counters: requests per minute (counted
//! before the request), tokens per day and USD budgets (checked before,
//! charged with the true usage after).
//!
//! Requests are counted with one atomic increment per request, refused ones
//! included, so a refusal reports `101/100`; tokens and spend are compared
//! before the request and added after it, so one request can overshoot a
//! limit by its own size but the next one is refused.

use std::sync::Arc;
use std::time::Duration;

use super::clock::WallClock;
use super::store::{CounterStore, Draw, Reserved, Settle, StoreError};
use super::window::{Window, WindowSpan};

/// What to do when the counter store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Admit the request without limits (the caller logs and counts it).
    Open,
    /// Refuse the request with 503.
    Closed,
}

/// A counted party (a team, or one caller without a team) and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    /// Key prefix unique to the party, e.g. `team:<route>:<team>`.
    pub key: String,
    /// Requests per minute; 0: unlimited.
    pub requests_per_minute: u64,
    /// Tokens per UTC day; 0: unlimited.
    pub tokens_per_day: u64,
    /// Budget in micro-USD and its period.
    pub budget: Option<(u64, Window)>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The party's requests per minute.
    Requests,
    /// The party's tokens per day.
    Tokens,
    /// The party's budget.
    Budget,
    /// The client IP address's requests per minute.
    ClientIp,
}

impl LimitKind {
    /// A short label for metrics (`requests`, `tokens`, `budget`, `client_ip`).
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::Tokens => "tokens",
            LimitKind::Budget => "budget",
            LimitKind::ClientIp => "client_ip",
        }
    }
}

/// One limit's state as seen by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The limit.
    pub limit: u64,
    /// Used in the current window (this request included for requests).
    pub used: u64,
    /// Seconds until the window resets (rounded up, at least 1).
    pub reset_secs: u64,
    /// Unix time in milliseconds at which the window resets.
    pub reset_at_ms: u64,
}

impl Quota {
    /// What is left (0 when over).
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// The limits' state when a request was admitted (or refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Requests per minute; `None` when unlimited or unknown.
    pub requests: Option<Quota>,
    /// Tokens per day; `None` when unlimited or unknown.
    pub tokens: Option<Quota>,
    /// Budget in micro-USD; `None` without a budget.
    pub budget: Option<Quota>,
    /// The store failed and the request was admitted unchecked (fail open).
    pub store_error: Option<StoreError>,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Which limit.
    pub kind: LimitKind,
    /// The refused quota.
    pub quota: Quota,
    /// The party's other limits, for the `x-ratelimit-*` headers.
    pub admission: Admission,
    /// The budget period name (`day`, `week`, `month`) for budget refusals.
    pub period: &'static str,
    /// Held by requests in progress (tokens, micro-USD) when they are what
    /// fills the limit.
    pub in_progress: u64,
    /// Whose limit it is, first in the message: `team payments`, `client
    /// address 10.0.0.7`; empty when unknown.
    pub who: String,
}

impl Refusal {
    /// Whether requests in progress, not settled usage, fill the limit
    /// (they settle soon, usually for less than they hold).
    pub fn held_in_progress(&self) -> bool {
        matches!(self.kind, LimitKind::Tokens | LimitKind::Budget)
            && self.quota.used < self.quota.limit
    }

    /// The `Retry-After` seconds: until the refused limit resets, or
    /// [`IN_PROGRESS_RETRY_SECS`] when requests in progress fill it.
    pub fn retry_after_secs(&self) -> u64 {
        if self.held_in_progress() {
            IN_PROGRESS_RETRY_SECS.min(self.quota.reset_secs).max(1)
        } else {
            self.quota.reset_secs.max(1)
        }
    }

    /// The limits to show in the rate-limit headers: the admission's, with
    /// the refused one as the refusal saw it.
    pub fn limits(&self) -> Admission {
        let mut a = self.admission.clone();
        match self.kind {
            LimitKind::Requests => a.requests = Some(self.quota),
            LimitKind::Tokens => a.tokens = Some(self.quota),
            LimitKind::Budget => a.budget = Some(self.quota),
            LimitKind::ClientIp => {}
        }
        a
    }

    /// The client-facing message: whose limit, which one, its size, and
    /// when it resets, e.g. `team payments: token quota of 100000 tokens
    /// per day exhausted (100200 used); resets at 2026-12-08T00:00:00Z (in
    /// 3h12m)`.
    pub fn message(&self) -> String {
        let Quota {
            used,
            limit,
            reset_secs,
            reset_at_ms,
        } = self.quota;
        let resets = super::reset::resets_at(reset_at_ms, reset_secs);
        let usd = |micro: u64| format!("${:.2}", micro as f64 / 1e6);
        let what = match self.kind {
            LimitKind::Requests | LimitKind::ClientIp => format!(
                "rate limit of {} per minute exceeded ({used} this minute); {resets}",
                count(limit, "request")
            ),
            LimitKind::Tokens if self.held_in_progress() => format!(
                "token quota of {} per day held by requests in progress ({used} used, {} reserved); retry in {}s; the quota {resets}",
                count(limit, "token"),
                self.in_progress,
                self.retry_after_secs()
            ),
            LimitKind::Tokens => format!(
                "token quota of {} per day exhausted ({used} used); {resets}",
                count(limit, "token")
            ),
            LimitKind::Budget if self.held_in_progress() => format!(
                "budget of {} per {} held by requests in progress ({} spent, {} reserved); retry in {}s; the budget {resets}",
                usd(limit),
                self.period,
                usd(used),
                usd(self.in_progress),
                self.retry_after_secs()
            ),
            LimitKind::Budget => format!(
                "budget of {} per {} exhausted ({} spent); {resets}",
                usd(limit),
                self.period,
                usd(used)
            ),
        };
        if self.who.is_empty() {
            what
        } else {
            format!("{}: {what}", self.who)
        }
    }
}

/// `1 request`, `20 requests`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitError {
    /// A limit is exhausted.
    Refused(Box<Refusal>),
    /// The store failed and the limiter fails closed.
    Unavailable(StoreError),
}

/// Checks and charges limits against a [`CounterStore`].
pub struct Limiter {
    store: Arc<dyn CounterStore>,
    clock: WallClock,
    fail_mode: FailMode,
    timeout: Duration,
    pending: Arc<Pending>,
}

/// Settlements running in the background (and relays still to report,
/// see `pipeline::respond::build_relay`).
#[derive(Default)]
struct Pending {
    count: std::sync::atomic::AtomicUsize,
    zero: tokio::sync::Notify,
}

/// Counts one settlement in progress until dropped ([`Limiter::flush`] waits for it).
pub struct PendingGuard(Arc<Pending>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if self
            .0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.zero.notify_waiters();
        }
    }
}

impl Limiter {
    /// A limiter on `store`; each store call is abandoned after `timeout`.
    pub fn new(
        store: Arc<dyn CounterStore>,
        clock: WallClock,
        fail_mode: FailMode,
        timeout: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            fail_mode,
            timeout,
            pending: Arc::default(),
        }
    }

    /// Marks a settlement in progress (held by the task that settles).
    pub fn pending(&self) -> PendingGuard {
        self.pending
            .count
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        PendingGuard(self.pending.clone())
    }

    /// Waits until no settlement (or relay still to report) is in
    /// progress, or `within` passed; returns how many are still running (at
    /// shutdown: records and charges that would be lost).
    pub async fn flush(&self, within: Duration) -> usize {
        let wait = async {
            loop {
                let notified = self.pending.zero.notified();
                if self.pending.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
        self.pending.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The wall clock the windows are read from.
    pub fn clock(&self) -> WallClock {
        self.clock
    }

    /// Each store call's timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The store's kind (`memory`, `redis`).
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The configured failure mode.
    pub fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    async fn timed<T>(
        &self,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .unwrap_or(Err(StoreError::Timeout))
    }

    /// Counts one request for `party` (and for the client IP, if limited)
    /// and checks every limit.
    pub async fn admit(
        &self,
        party: &Party,
        client_ip: Option<(&str, u64)>,
    ) -> Result<Admission, AdmitError> {
        match self.check(party, client_ip).await {
            Ok(r) => r,
            Err(e) => match self.fail_mode {
                FailMode::Open => Ok(Admission {
                    store_error: Some(e),
                    ..Admission::default()
                }),
                FailMode::Closed => Err(AdmitError::Unavailable(e)),
            },
        }
    }

    async fn check(
        &self,
        party: &Party,
        client_ip: Option<(&str, u64)>,
    ) -> Result<Result<Admission, AdmitError>, StoreError> {
        let now = self.clock.now_ms();
        let minute = Window::Minute.span(now);
        let mut adm = Admission::default();
        if let Some((ip, limit)) = client_ip.filter(|(_, l)| *l > 0) {
            let used = self
                .timed(self.store.incr(
                    format!("sb:ip:{ip}:rpm:{}", minute.id),
                    1,
                    ttl(&minute, now),
                ))
                .await?;
            let quota = Quota {
                limit,
                used,
                reset_secs: minute.remaining_secs(now),
                reset_at_ms: minute.end_ms,
            };
            if used > limit {
                let mut err = refused(LimitKind::ClientIp, quota, adm, "");
                if let AdmitError::Refused(r) = &mut err {
                    r.who = format!("client address {ip}");
                }
                return Ok(Err(err));
            }
        }
        if party.requests_per_minute > 0 {
            let used = self
                .timed(self.store.incr(
                    format!("{}:rpm:{}", party.key, minute.id),
                    1,
                    ttl(&minute, now),
                ))
                .await?;
            let quota = Quota {
                limit: party.requests_per_minute,
                used,
                reset_secs: minute.remaining_secs(now),
                reset_at_ms: minute.end_ms,
            };
            adm.requests = Some(quota);
            if used > party.requests_per_minute {
                return Ok(Err(refused(LimitKind::Requests, quota, adm, "")));
            }
        }
        if party.tokens_per_day > 0 {
            let day = Window::Day.span(now);
            let used = self
                .timed(self.store.get(format!("{}:tpd:{}", party.key, day.id)))
                .await?;
            let quota = Quota {
                limit: party.tokens_per_day,
                used,
                reset_secs: day.remaining_secs(now),
                reset_at_ms: day.end_ms,
            };
            adm.tokens = Some(quota);
            if used >= party.tokens_per_day {
                return Ok(Err(refused(LimitKind::Tokens, quota, adm, "")));
            }
        }
        if let Some((limit, window)) = party.budget {
            let span = window.span(now);
            let used = self
                .timed(self.store.get(format!("{}:usd:{}", party.key, span.id)))
                .await?;
            let quota = Quota {
                limit,
                used,
                reset_secs: span.remaining_secs(now),
                reset_at_ms: span.end_ms,
            };
            adm.budget = Some(quota);
            if used >= limit {
                return Ok(Err(refused(
                    LimitKind::Budget,
                    quota,
                    adm,
                    period_name(window),
                )));
            }
        }
        Ok(Ok(adm))
    }

    /// Adds a finished request's true usage; returns the tokens used today
    /// and the spend of the budget period after the charge (when counted).
    pub async fn charge(
        &self,
        party: &Party,
        tokens: u64,
        micro_usd: u64,
    ) -> Result<Charged, StoreError> {
        let now = self.clock.now_ms();
        let mut out = Charged::default();
        if party.tokens_per_day > 0 && tokens > 0 {
            let day = Window::Day.span(now);
            out.tokens_used = Some(
                self.timed(self.store.incr(
                    format!("{}:tpd:{}", party.key, day.id),
                    tokens,
                    ttl(&day, now),
                ))
                .await?,
            );
        }
        if let Some((_, window)) = party.budget {
            let span = window.span(now);
            let key = format!("{}:usd:{}", party.key, span.id);
            out.spent_micro_usd = Some(if micro_usd > 0 {
                self.timed(self.store.incr(key, micro_usd, ttl(&span, now)))
                    .await?
            } else {
                self.timed(self.store.get(key)).await?
            });
        }
        Ok(out)
    }

    /// Holds `estimate` on the party's token and budget counters (see
    /// [`super::store::Draw`] for the rule): refused when a counter is
    /// full, or when the estimate does not fit and another request holds
    /// the counter's overdraft.
    pub async fn reserve(
        &self,
        party: &Party,
        estimate: Estimate,
    ) -> Result<Reservation, AdmitError> {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let now = self.clock.now_ms();
        let mut draws = Vec::new();
        let mut kinds = Vec::new();
        let day = Window::Day.span(now);
        if party.tokens_per_day > 0 {
            draws.push(Draw {
                key: format!("{}:tpd:{}", party.key, day.id),
                limit: party.tokens_per_day,
                estimate: estimate.tokens,
                ttl: ttl(&day, now),
            });
            kinds.push((LimitKind::Tokens, day.clone(), ""));
        }
        if let Some((limit, window)) = party.budget {
            let span = window.span(now);
            draws.push(Draw {
                key: format!("{}:usd:{}", party.key, span.id),
                limit,
                estimate: estimate.micro_usd,
                ttl: ttl(&span, now),
            });
            kinds.push((LimitKind::Budget, span, period_name(window)));
        }
        if draws.is_empty() {
            return Ok(Reservation {
                id,
                ..Reservation::default()
            });
        }
        let keys: Vec<String> = draws.iter().map(|d| d.key.clone()).collect();
        let limits: Vec<u64> = draws.iter().map(|d| d.limit).collect();
        let answer = self
            .timed(self.store.reserve(id.clone(), draws, now, HOLD_TTL))
            .await;
        match answer {
            Ok(Reserved::Granted(held)) => {
                let mut r = Reservation {
                    id,
                    ..Reservation::default()
                };
                for ((key, h), (kind, ..)) in keys.into_iter().zip(held).zip(&kinds) {
                    let hold = Some(Hold {
                        key,
                        amount: h.amount,
                        overdraft: h.overdraft,
                    });
                    match kind {
                        LimitKind::Tokens => r.tokens = hold,
                        _ => r.budget = hold,
                    }
                }
                Ok(r)
            }
            Ok(Reserved::Refused { index, used, held }) => {
                let (kind, span, period) = kinds[index].clone();
                let limit = limits[index];
                // Full with requests in progress: they end soon (see
                // `Refusal::retry_after_secs`).
                Err(AdmitError::Refused(Box::new(Refusal {
                    kind,
                    quota: Quota {
                        limit,
                        used,
                        reset_secs: span.remaining_secs(now),
                        reset_at_ms: span.end_ms,
                    },
                    admission: Admission::default(),
                    period,
                    in_progress: held,
                    who: String::new(),
                })))
            }
            Err(e) => match self.fail_mode {
                FailMode::Open => Ok(Reservation {
                    id,
                    store_error: Some(e),
                    ..Reservation::default()
                }),
                FailMode::Closed => Err(AdmitError::Unavailable(e)),
            },
        }
    }

    /// Ends `reservation`: releases what it holds and charges the true
    /// usage to the current windows; returns the counters after.
    pub async fn settle(
        &self,
        party: &Party,
        reservation: &Reservation,
        tokens: u64,
        micro_usd: u64,
    ) -> Result<Charged, StoreError> {
        let now = self.clock.now_ms();
        let mut settles = Vec::new();
        let mut out = Charged::default();
        let day = Window::Day.span(now);
        let tokens_key = format!("{}:tpd:{}", party.key, day.id);
        if party.tokens_per_day > 0 {
            settles.push(Settle {
                reserved_key: reservation
                    .tokens
                    .as_ref()
                    .map_or_else(|| tokens_key.clone(), |h| h.key.clone()),
                key: tokens_key,
                amount: tokens,
                ttl: ttl(&day, now),
            });
        }
        if let Some((_, window)) = party.budget {
            let span = window.span(now);
            let key = format!("{}:usd:{}", party.key, span.id);
            settles.push(Settle {
                reserved_key: reservation
                    .budget
                    .as_ref()
                    .map_or_else(|| key.clone(), |h| h.key.clone()),
                key,
                amount: micro_usd,
                ttl: ttl(&span, now),
            });
        }
        if settles.is_empty() {
            return Ok(out);
        }
        let after = self
            .timed(self.store.settle(reservation.id.clone(), settles))
            .await?;
        let mut after = after.into_iter();
        if party.tokens_per_day > 0 {
            out.tokens_used = after.next();
        }
        if party.budget.is_some() {
            out.spent_micro_usd = after.next();
        }
        Ok(out)
    }
}

/// `Retry-After` of a refusal because requests in progress hold what is
/// left of a limit (they settle soon, usually for less).
pub const IN_PROGRESS_RETRY_SECS: u64 = 2;

/// How long a reservation may stay open before it lapses (the process that
/// made it is presumed dead): longer than the default maximum stream
/// duration (1 h).
pub const HOLD_TTL: Duration = Duration::from_secs(75 * 60);

/// What one request is expected to use, held at admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Tokens (input and output).
    pub tokens: u64,
    /// Cost in micro-USD.
    pub micro_usd: u64,
}

/// One counter's part of a [`Reservation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The counter the reservation was made on.
    pub key: String,
    /// What it holds.
    pub amount: u64,
    /// Whether it is the counter's overdraft.
    pub overdraft: bool,
}

/// The open reservation of one admitted request, ended by
/// [`Limiter::settle`] (with the true usage, or 0 to release it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    /// Unique id of the reservation.
    pub id: String,
    /// On the tokens-per-day counter.
    pub tokens: Option<Hold>,
    /// On the budget counter.
    pub budget: Option<Hold>,
    /// The store failed and nothing is held (fail open).
    pub store_error: Option<StoreError>,
}

/// Counter values after a charge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Charged {
    /// Tokens used today, if the party has a token limit.
    pub tokens_used: Option<u64>,
    /// Spend of the current budget period in micro-USD, if the party has a budget.
    pub spent_micro_usd: Option<u64>,
}

fn refused(
    kind: LimitKind,
    quota: Quota,
    admission: Admission,
    period: &'static str,
) -> AdmitError {
    AdmitError::Refused(Box::new(Refusal {
        kind,
        quota,
        admission,
        period,
        in_progress: 0,
        who: String::new(),
    }))
}

/// Keys live a little past their window so late charges still land in it.
fn ttl(span: &WindowSpan, now: u64) -> Duration {
    Duration::from_millis(span.remaining_ms(now) + 60_000)
}

/// The name of a budget period.
pub fn period_name(w: Window) -> &'static str {
    match w {
        Window::Minute => "minute",
        Window::Day => "day",
        Window::Week => "week",
        Window::Month => "month",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::limits::MemoryStore;

    const T0: u64 = 1_764_460_800_000; // 2025-11-30T00:00:00Z, a minute and day edge

    fn limiter(start_ms: u64) -> Limiter {
        let clock = WallClock::starting_at(start_ms);
        Limiter::new(
            Arc::new(MemoryStore::new(clock)),
            clock,
            FailMode::Closed,
            Duration::from_secs(1),
        )
    }

    fn party(rpm: u64, tpd: u64, budget: Option<(u64, Window)>) -> Party {
        Party {
            key: "team:r:payments".into(),
            requests_per_minute: rpm,
            tokens_per_day: tpd,
            budget,
        }
    }

    fn refusal<T: std::fmt::Debug>(r: Result<T, AdmitError>) -> Refusal {
        match r {
            Err(AdmitError::Refused(r)) => *r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_over_the_rpm_limit_is_refused_until_the_minute_ends() {
        let l = limiter(T0 + 30_000);
        let p = party(20, 0, None);
        for i in 1..=20 {
            let a = l.admit(&p, None).await.unwrap();
            assert_eq!(a.requests.unwrap().remaining(), 20 - i);
        }
        let r = refusal(l.admit(&p, None).await);
        assert_eq!(r.kind, LimitKind::Requests);
        assert_eq!(
            r.message(),
            "rate limit of 20 requests per minute exceeded (21 this minute); resets at 2025-11-30T00:01:00Z (in 30s)"
        );
        assert_eq!(r.retry_after_secs(), 30);
        // One millisecond before the edge: still refused; at the edge: a new window.
        tokio::time::advance(Duration::from_millis(29_999)).await;
        assert_eq!(refusal(l.admit(&p, None).await).retry_after_secs(), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(l.admit(&p, None).await.unwrap().requests.unwrap().used, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_checked_before_and_charged_after_until_the_day_rolls_over() {
        let l = limiter(T0 + 86_400_000 - 3_600_000); // 23:00 UTC
        let p = party(0, 1000, None);
        assert_eq!(
            l.admit(&p, None).await.unwrap().tokens.unwrap().remaining(),
            1000
        );
        // One answer overshoots; the next request is refused.
        assert_eq!(l.charge(&p, 1200, 0).await.unwrap().tokens_used, Some(1200));
        let r = refusal(l.admit(&p, None).await);
        assert_eq!(r.kind, LimitKind::Tokens);
        assert_eq!(
            r.message(),
            "token quota of 1000 tokens per day exhausted (1200 used); resets at 2025-12-01T00:00:00Z (in 1h)"
        );
        assert_eq!(r.retry_after_secs(), 3600);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(l.admit(&p, None).await.unwrap().tokens.unwrap().used, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_reset_with_their_period() {
        let l = limiter(T0);
        let p = party(0, 0, Some((5_000_000, Window::Day)));
        l.charge(&p, 0, 4_999_999).await.unwrap();
        assert_eq!(
            l.admit(&p, None).await.unwrap().budget.unwrap().remaining(),
            1
        );
        l.charge(&p, 0, 2).await.unwrap();
        let r = refusal(l.admit(&p, None).await);
        assert_eq!(r.kind, LimitKind::Budget);
        assert_eq!(
            r.message(),
            "budget of $5.00 per day exhausted ($5.00 spent); resets at 2025-12-01T00:00:00Z (in 1d)"
        );
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert!(l.admit(&p, None).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn client_ip_limit_applies_across_parties() {
        let l = limiter(T0);
        let a = party(0, 0, None);
        let b = Party {
            key: "team:r:other".into(),
            ..a.clone()
        };
        l.admit(&a, Some(("10.0.0.1", 2))).await.unwrap();
        l.admit(&b, Some(("10.0.0.1", 2))).await.unwrap();
        let r = refusal(l.admit(&a, Some(("10.0.0.1", 2))).await);
        assert_eq!(r.kind, LimitKind::ClientIp);
        assert_eq!(
            r.message(),
            "client address 10.0.0.1: rate limit of 2 requests per minute exceeded (3 this minute); resets at 2025-11-30T00:01:00Z (in 1m)"
        );
        assert_eq!(r.retry_after_secs(), 60);
        assert!(l.admit(&a, Some(("10.0.0.2", 2))).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_admissions_admit_exactly_the_limit() {
        let l = Arc::new(limiter(T0));
        let p = party(100, 0, None);
        let mut tasks = Vec::new();
        for _ in 0..250 {
            let (l, p) = (l.clone(), p.clone());
            tasks.push(tokio::spawn(async move { l.admit(&p, None).await.is_ok() }));
        }
        let mut admitted = 0;
        for t in tasks {
            admitted += usize::from(t.await.unwrap());
        }
        assert_eq!(admitted, 100);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_charges_are_all_counted() {
        let l = Arc::new(limiter(T0));
        let p = party(0, 1_000_000, Some((1_000_000_000, Window::Month)));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (l, p) = (l.clone(), p.clone());
            tasks.push(tokio::spawn(
                async move { l.charge(&p, 10, 7).await.unwrap() },
            ));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let a = l.admit(&p, None).await.unwrap();
        assert_eq!(a.tokens.unwrap().used, 500);
        assert_eq!(a.budget.unwrap().used, 350);
    }

    /// `tasks` concurrent requests spread over `limiters` (replicas sharing
    /// one store, or one): each reserves `estimate` tokens and, when
    /// admitted, yields a while, then settles `actual`. Returns how many were
    /// admitted and the tokens charged in all.
    pub(crate) async fn hammer(
        limiters: &[Arc<Limiter>],
        party: &Party,
        tasks: usize,
        estimate: u64,
        actual: u64,
    ) -> (u64, u64) {
        let mut handles = Vec::new();
        for i in 0..tasks {
            let (l, p) = (limiters[i % limiters.len()].clone(), party.clone());
            handles.push(tokio::spawn(async move {
                let est = Estimate {
                    tokens: estimate,
                    micro_usd: 0,
                };
                match l.reserve(&p, est).await {
                    Ok(r) => {
                        assert!(r.store_error.is_none(), "{r:?}");
                        for _ in 0..fastrand::usize(0..20) {
                            tokio::task::yield_now().await;
                        }
                        l.settle(&p, &r, actual, 0).await.unwrap();
                        (1, actual)
                    }
                    Err(AdmitError::Refused(r)) => {
                        assert_eq!(r.kind, LimitKind::Tokens);
                        (0, 0)
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }));
        }
        let mut out = (0, 0);
        for h in handles {
            let (a, c) = h.await.unwrap();
            out.0 += a;
            out.1 += c;
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_streams_overshoot_a_token_quota_by_one_request_at_most() {
        // 20 concurrent 300-token answers on a 1,000 tokens/day team: without
        // reservations every one was admitted and 6,000 charged.
        let clock = WallClock::system();
        let l = Arc::new(Limiter::new(
            Arc::new(MemoryStore::new(clock)),
            clock,
            FailMode::Closed,
            Duration::from_secs(5),
        ));
        for round in 0..20 {
            let p = Party {
                key: format!("team:r:race{round}"),
                ..party(0, 1000, None)
            };
            let (admitted, charged) = hammer(std::slice::from_ref(&l), &p, 20, 310, 300).await;
            assert!(charged <= 1000 + 300, "round {round}: {charged} charged");
            assert!(admitted >= 3, "round {round}: {admitted} admitted");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_refused_by_requests_in_progress_says_so_and_retries_soon() {
        let l = limiter(T0 + 3_600_000);
        let p = party(0, 1000, Some((1_000_000, Window::Month)));
        let est = Estimate {
            tokens: 600,
            micro_usd: 1000,
        };
        let first = l.reserve(&p, est).await.unwrap();
        assert_eq!(
            first.tokens.as_ref().map(|h| (h.amount, h.overdraft)),
            Some((600, false))
        );
        let second = l.reserve(&p, est).await.unwrap();
        assert_eq!(
            second.tokens.as_ref().map(|h| (h.amount, h.overdraft)),
            Some((400, true))
        );
        let r = refusal(l.reserve(&p, est).await);
        assert_eq!(r.kind, LimitKind::Tokens);
        assert_eq!(r.retry_after_secs(), IN_PROGRESS_RETRY_SECS);
        assert_eq!(
            r.message(),
            "token quota of 1000 tokens per day held by requests in progress (0 used, 1000 reserved); retry in 2s; the quota resets at 2025-12-01T00:00:00Z (in 23h)"
        );
        // Settled for less, released: room again.
        l.settle(&p, &first, 500, 900).await.unwrap();
        l.settle(&p, &second, 0, 0).await.unwrap();
        let third = l.reserve(&p, est).await.unwrap();
        assert_eq!(third.tokens.as_ref().map(|h| h.amount), Some(500));
        // Used up by settled usage: wait for the day to end.
        l.settle(&p, &third, 700, 0).await.unwrap();
        let r = refusal(l.reserve(&p, est).await);
        assert_eq!(
            r.message(),
            "token quota of 1000 tokens per day exhausted (1200 used); resets at 2025-12-01T00:00:00Z (in 23h)"
        );
        assert_eq!(r.retry_after_secs(), 23 * 3600);
    }

    struct Broken;
    impl CounterStore for Broken {
        fn incr(
            &self,
            _: String,
            _: u64,
            _: Duration,
        ) -> futures_util::future::BoxFuture<'_, Result<u64, StoreError>> {
            Box::pin(async { Err(StoreError::Unavailable("down".into())) })
        }
        fn get(&self, _: String) -> futures_util::future::BoxFuture<'_, Result<u64, StoreError>> {
            Box::pin(std::future::pending())
        }
        fn check_and_incr(
            &self,
            _: String,
            _: u64,
            _: u64,
            _: Duration,
        ) -> futures_util::future::BoxFuture<'_, Result<(bool, u64), StoreError>> {
            Box::pin(async { Err(StoreError::Unavailable("down".into())) })
        }
        fn reserve(
            &self,
            _: String,
            _: Vec<Draw>,
            _: u64,
            _: Duration,
        ) -> futures_util::future::BoxFuture<'_, Result<Reserved, StoreError>> {
            Box::pin(async { Err(StoreError::Unavailable("down".into())) })
        }
        fn settle(
            &self,
            _: String,
            _: Vec<Settle>,
        ) -> futures_util::future::BoxFuture<'_, Result<Vec<u64>, StoreError>> {
            Box::pin(async { Err(StoreError::Unavailable("down".into())) })
        }
        fn kind(&self) -> &'static str {
            "broken"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn store_failures_fail_open_or_closed() {
        let clock = WallClock::starting_at(T0);
        let open = Limiter::new(
            Arc::new(Broken),
            clock,
            FailMode::Open,
            Duration::from_millis(100),
        );
        let closed = Limiter::new(
            Arc::new(Broken),
            clock,
            FailMode::Closed,
            Duration::from_millis(100),
        );
        let p = party(10, 0, None);
        let a = open.admit(&p, None).await.unwrap();
        assert_eq!(a.store_error, Some(StoreError::Unavailable("down".into())));
        assert_eq!(
            closed.admit(&p, None).await,
            Err(AdmitError::Unavailable(StoreError::Unavailable(
                "down".into()
            )))
        );
        // A store that never answers times out.
        let p = party(0, 10, None);
        assert_eq!(
            closed.admit(&p, None).await,
            Err(AdmitError::Unavailable(StoreError::Timeout))
        );
    }
}
