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
use super::store::{CounterStore, StoreError};
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
    /// Seconds until the window resets.
    pub reset_secs: u64,
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
}

impl Refusal {
    /// Seconds until the refused limit resets.
    pub fn retry_after_secs(&self) -> u64 {
        self.quota.reset_secs.max(1)
    }

    /// The client-facing message, e.g. `RPM limit exceeded (101/100 requests per minute)`.
    pub fn message(&self) -> String {
        let Quota { used, limit, .. } = self.quota;
        match self.kind {
            LimitKind::Requests => {
                format!("RPM limit exceeded ({used}/{limit} requests per minute)")
            }
            LimitKind::ClientIp => {
                format!(
                    "RPM limit for this client address exceeded ({used}/{limit} requests per minute)"
                )
            }
            LimitKind::Tokens => format!("token limit exceeded ({used}/{limit} tokens per day)"),
            LimitKind::Budget => format!(
                "budget exceeded (${:.2}/${:.2} per {})",
                used as f64 / 1e6,
                limit as f64 / 1e6,
                self.period
            ),
        }
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
        }
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
            };
            if used > limit {
                return Ok(Err(refused(LimitKind::ClientIp, quota, adm, "")));
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
mod tests {
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

    fn refusal(r: Result<Admission, AdmitError>) -> Refusal {
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
            "RPM limit exceeded (21/20 requests per minute)"
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
            "token limit exceeded (1200/1000 tokens per day)"
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
        assert_eq!(r.message(), "budget exceeded ($5.00/$5.00 per day)");
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
