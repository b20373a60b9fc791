//! Per-backend circuit breakers (outlier ejection) and the registry that
//! keeps them across configuration reloads.
//!
//! State machine, with time passed in as [`tokio::time::Instant`] so the
//! logic is pure and tests can use explicit instants:
//!
//! - **Closed**: requests flow. Each breaker failure adds one to a counter, a
//!   success resets it. `consecutive_failures` failures in a row open it.
//! - **Open** until `now + interval`: the backend is tried only as a last
//!   resort. The first interval is `base`; every re-open without a close in
//!   between doubles it, up to `max`.
//! - **Half-open** once the interval has elapsed: one request may probe the
//!   backend ([`CircuitBreaker::try_acquire`] hands out the probe). A success
//!   closes the breaker and resets the interval to `base`; a failure re-opens
//!   it with the doubled interval. A probe that never reports back (its
//!   request succeeded elsewhere first) expires after `base`, and the next
//!   request may probe.
//!
//! A failure reported while the breaker is still open (a last-resort try
//! failed) changes nothing; a success reported at any time closes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use switchboard_proto as pb;
use tokio::time::Instant;

/// Default failures in a row that open a breaker.
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// Default first open interval.
pub const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(10);
/// Default longest open interval.
pub const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(30);

/// Breaker settings of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectionSettings {
    /// Failures in a row that open the breaker (at least 1).
    pub consecutive_failures: u32,
    /// First open interval.
    pub base: Duration,
    /// Longest open interval (at least `base`).
    pub max: Duration,
}

impl Default for EjectionSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: DEFAULT_CONSECUTIVE_FAILURES,
            base: DEFAULT_BASE_EJECTION,
            max: DEFAULT_MAX_EJECTION,
        }
    }
}

impl EjectionSettings {
    /// Settings from the snapshot; zero or missing fields take the defaults.
    pub fn from_proto(e: Option<&pb::Ejection>) -> Self {
        let d = Self::default();
        let Some(e) = e else { return d };
        let ms = |v: u64, default: Duration| {
            if v == 0 {
                default
            } else {
                Duration::from_millis(v)
            }
        };
        let base = ms(e.base_ejection_ms, d.base);
        let max = ms(e.max_ejection_ms, d.max).max(base);
        Self {
            consecutive_failures: if e.consecutive_failures == 0 {
                d.consecutive_failures
            } else {
                e.consecutive_failures
            },
            base,
            max,
        }
    }

    /// The open interval after `opens` opens without a close (1 = first).
    fn interval(&self, opens: u32) -> Duration {
        let doublings = opens.saturating_sub(1).min(31);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(self.max.max(self.base))
    }
}

/// The observable state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreakerState {
    /// Requests flow normally.
    Closed,
    /// Ejected: tried only as a last resort.
    Open,
    /// The open interval elapsed: one probe is allowed.
    HalfOpen,
}

impl BreakerState {
    /// Value of the `circuit_breaker_state` gauge (0 closed, 1 open, 2 half-open).
    pub fn metric_value(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }

    /// Low-cardinality label for logs.
    pub fn label(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A change of a breaker's state, reported so it can be logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The breaker opened (or re-opened after a failed probe) for `interval`.
    Opened {
        /// How long it stays open before the next probe.
        interval: Duration,
        /// True when a half-open probe failed (a re-open).
        reopened: bool,
    },
    /// The breaker closed again.
    Closed,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    /// Open until the instant; half-open after it.
    Open {
        until: Instant,
    },
    /// Half-open with a probe handed out at the instant.
    Probing {
        since: Instant,
    },
}

#[derive(Debug)]
struct Inner {
    settings: EjectionSettings,
    phase: Phase,
    /// Breaker failures in a row while closed.
    failures: u32,
    /// Opens since the last close.
    opens: u32,
}

/// The circuit breaker of one backend. Shared by every request and kept
/// across reloads; all methods take `&self`.
#[derive(Debug)]
pub struct CircuitBreaker {
    inner: Mutex<Inner>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(EjectionSettings::default())
    }
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(settings: EjectionSettings) -> Self {
        Self {
            inner: Mutex::new(Inner {
                settings,
                phase: Phase::Closed,
                failures: 0,
                opens: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent under panics (plain field writes), so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Current settings.
    pub fn settings(&self) -> EjectionSettings {
        self.lock().settings
    }

    /// Replaces the settings, keeping the state. The new settings apply from
    /// the next transition on.
    pub fn update_settings(&self, settings: EjectionSettings) {
        self.lock().settings = settings;
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.lock().phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open,
            Phase::Open { .. } | Phase::Probing { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may use this backend normally at `now`: closed, or
    /// half-open with no probe in flight. Does not hand out the probe.
    pub fn is_available(&self, now: Instant) -> bool {
        let inner = self.lock();
        Self::available(&inner, now)
    }

    fn available(inner: &Inner, now: Instant) -> bool {
        match inner.phase {
            Phase::Closed => true,
            Phase::Open { until } => now >= until,
            Phase::Probing { since } => now >= since + inner.settings.base,
        }
    }

    /// Like [`Self::is_available`], and when half-open takes the one probe,
    /// so concurrent requests see the backend as unavailable until the probe
    /// reports (or expires).
    pub fn try_acquire(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        if !Self::available(&inner, now) {
            return false;
        }
        if !matches!(inner.phase, Phase::Closed) {
            inner.phase = Phase::Probing { since: now };
        }
        true
    }

    /// Breaker failures in a row while closed.
    pub fn consecutive_failures(&self) -> u32 {
        self.lock().failures
    }

    /// The backend answered: close the breaker and reset the interval.
    /// Returns [`Transition::Closed`] when it was not closed before.
    pub fn record_success(&self) -> Option<Transition> {
        let mut inner = self.lock();
        let was_closed = matches!(inner.phase, Phase::Closed);
        inner.phase = Phase::Closed;
        inner.failures = 0;
        inner.opens = 0;
        (!was_closed).then_some(Transition::Closed)
    }

    /// The backend failed at `now` (connect error, reset, timeout, 5xx,
    /// rejected provider key). Returns the transition when this failure
    /// opened the breaker.
    pub fn record_failure(&self, now: Instant) -> Option<Transition> {
        let mut inner = self.lock();
        match inner.phase {
            Phase::Closed => {
                inner.failures = inner.failures.saturating_add(1);
                if inner.failures >= inner.settings.consecutive_failures.max(1) {
                    return Some(Self::open(&mut inner, now, false));
                }
                None
            }
            // Still open: a last-resort try failed, nothing new learned.
            Phase::Open { until } if now < until => None,
            // Half-open (probe or not): the trial failed, re-open longer.
            Phase::Open { .. } | Phase::Probing { .. } => Some(Self::open(&mut inner, now, true)),
        }
    }

    fn open(inner: &mut Inner, now: Instant, reopened: bool) -> Transition {
        inner.opens = inner.opens.saturating_add(1);
        inner.failures = 0;
        let interval = inner.settings.interval(inner.opens);
        inner.phase = Phase::Open {
            until: now + interval,
        };
        Transition::Opened { interval, reopened }
    }
}

/// Circuit breakers by backend id, shared across snapshots (clones share).
#[derive(Debug, Clone, Default)]
pub struct BreakerRegistry {
    inner: Arc<Mutex<HashMap<String, Arc<CircuitBreaker>>>>,
}

/// The breakers a new configuration will use, chosen without touching the
/// live registry or any live breaker: existing breakers are reused (their
/// state kept), new backends get a new closed breaker, and the new settings
/// are only remembered. [`BreakerRegistry::commit`] applies it when the
/// configuration is swapped in; a configuration that is rejected is simply
/// dropped and changes nothing.
#[derive(Debug, Clone, Default)]
pub struct BreakerPlan {
    entries: HashMap<String, (Arc<CircuitBreaker>, EjectionSettings)>,
}

impl BreakerPlan {
    /// The breaker backend `id` will use.
    pub fn get(&self, id: &str) -> Option<&Arc<CircuitBreaker>> {
        self.entries.get(id).map(|(b, _)| b)
    }

    /// Every backend's breaker by id.
    pub fn breakers(&self) -> HashMap<String, Arc<CircuitBreaker>> {
        self.entries
            .iter()
            .map(|(id, (b, _))| (id.clone(), b.clone()))
            .collect()
    }
}

impl BreakerRegistry {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<CircuitBreaker>>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Plans the breakers of a snapshot's backends (see [`BreakerPlan`]);
    /// changes nothing.
    pub fn plan(&self, backends: &[pb::Backend]) -> BreakerPlan {
        let map = self.lock();
        let mut entries: HashMap<String, (Arc<CircuitBreaker>, EjectionSettings)> =
            HashMap::with_capacity(backends.len());
        for b in backends {
            let settings = EjectionSettings::from_proto(b.ejection.as_ref());
            let breaker = match entries
                .get(&b.id)
                .map(|(x, _)| x)
                .or_else(|| map.get(&b.id))
            {
                Some(existing) => existing.clone(),
                None => Arc::new(CircuitBreaker::new(settings)),
            };
            entries.insert(b.id.clone(), (breaker, settings));
        }
        BreakerPlan { entries }
    }

    /// Makes the registry match an applied plan: its breakers get their new
    /// settings (state kept), breakers of removed backends are dropped.
    pub fn commit(&self, plan: &BreakerPlan) {
        let mut map = self.lock();
        for (breaker, settings) in plan.entries.values() {
            breaker.update_settings(*settings);
        }
        *map = plan.breakers();
    }

    /// [`Self::plan`] and [`Self::commit`] at once; returns every backend's
    /// breaker by id.
    pub fn reconcile(&self, backends: &[pb::Backend]) -> HashMap<String, Arc<CircuitBreaker>> {
        let plan = self.plan(backends);
        self.commit(&plan);
        plan.breakers()
    }

    /// The breaker of a backend, if known.
    pub fn get(&self, id: &str) -> Option<Arc<CircuitBreaker>> {
        self.lock().get(id).cloned()
    }

    /// Every breaker's state at `now`, sorted by backend id (for metrics).
    pub fn states(&self, now: Instant) -> Vec<(String, BreakerState)> {
        let mut out: Vec<_> = self
            .lock()
            .iter()
            .map(|(id, b)| (id.clone(), b.state(now)))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn settings(n: u32, base: u64, max: u64) -> EjectionSettings {
        EjectionSettings {
            consecutive_failures: n,
            base: S * base as u32,
            max: S * max as u32,
        }
    }

    fn backend(id: &str, failures: u32) -> pb::Backend {
        pb::Backend {
            id: id.into(),
            ejection: Some(pb::Ejection {
                consecutive_failures: failures,
                base_ejection_ms: 0,
                max_ejection_ms: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn settings_defaults_and_proto() {
        assert_eq!(EjectionSettings::from_proto(None), settings(5, 10, 30));
        let e = pb::Ejection {
            consecutive_failures: 2,
            base_ejection_ms: 10_000,
            max_ejection_ms: 1_000,
        };
        // max below base is raised to base.
        assert_eq!(EjectionSettings::from_proto(Some(&e)), settings(2, 10, 10));
        let s = settings(1, 30, 300);
        let intervals: Vec<u64> = (1..=6).map(|n| s.interval(n).as_secs()).collect();
        assert_eq!(intervals, [30, 60, 120, 240, 300, 300]);
        assert_eq!(s.interval(u32::MAX).as_secs(), 300);
    }

    #[test]
    fn opens_after_consecutive_failures_and_success_resets_the_count() {
        let t0 = Instant::now();
        let b = CircuitBreaker::new(settings(3, 30, 300));
        b.record_failure(t0);
        b.record_failure(t0);
        b.record_success();
        b.record_failure(t0);
        b.record_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 2);
        b.record_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.is_available(t0 + 29 * S));
        assert!(!b.try_acquire(t0 + 29 * S));
        assert_eq!(b.state(t0 + 30 * S), BreakerState::HalfOpen);
        assert!(b.is_available(t0 + 30 * S));
    }

    #[test]
    fn half_open_allows_one_probe_then_closes_on_success() {
        let t0 = Instant::now();
        let b = CircuitBreaker::new(settings(1, 30, 300));
        b.record_failure(t0);
        let t1 = t0 + 30 * S;
        assert!(b.try_acquire(t1));
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        // The probe is out: nobody else gets it.
        assert!(!b.try_acquire(t1));
        assert!(!b.is_available(t1 + S));
        b.record_success();
        assert_eq!(b.state(t1), BreakerState::Closed);
        assert!(b.try_acquire(t1) && b.try_acquire(t1));
        // Closed again: the next open starts from base.
        b.record_failure(t1);
        assert_eq!(b.state(t1 + 29 * S), BreakerState::Open);
        assert_eq!(b.state(t1 + 30 * S), BreakerState::HalfOpen);
    }

    #[test]
    fn failed_probes_reopen_with_doubling_up_to_max() {
        let t0 = Instant::now();
        let b = CircuitBreaker::new(settings(1, 30, 100));
        b.record_failure(t0);
        let mut now = t0;
        for want in [30u32, 60, 100, 100] {
            assert_eq!(
                b.state(now + (want - 1) * S),
                BreakerState::Open,
                "interval {want}"
            );
            now += want * S;
            assert!(b.try_acquire(now));
            b.record_failure(now);
        }
    }

    #[test]
    fn failure_while_open_is_ignored_and_unreported_probe_expires() {
        let t0 = Instant::now();
        let b = CircuitBreaker::new(settings(1, 30, 300));
        b.record_failure(t0);
        // A last-resort try fails 10s in: still open until 30s, not extended.
        b.record_failure(t0 + 10 * S);
        assert_eq!(b.state(t0 + 30 * S), BreakerState::HalfOpen);
        // Half-open without taking the probe and failing also re-opens (doubled).
        b.record_failure(t0 + 30 * S);
        assert_eq!(b.state(t0 + 89 * S), BreakerState::Open);
        let t1 = t0 + 90 * S;
        assert!(b.try_acquire(t1));
        assert!(!b.try_acquire(t1 + 29 * S));
        // The probe never reported: after base it is handed out again.
        assert!(b.try_acquire(t1 + 30 * S));
    }

    #[test]
    fn transitions_are_reported_once() {
        let t0 = Instant::now();
        let b = CircuitBreaker::new(settings(2, 30, 300));
        assert_eq!(b.record_failure(t0), None);
        assert_eq!(
            b.record_failure(t0),
            Some(Transition::Opened {
                interval: 30 * S,
                reopened: false
            })
        );
        assert_eq!(b.record_failure(t0 + S), None, "still open");
        assert!(b.try_acquire(t0 + 30 * S));
        assert_eq!(
            b.record_failure(t0 + 30 * S),
            Some(Transition::Opened {
                interval: 60 * S,
                reopened: true
            })
        );
        assert_eq!(b.record_success(), Some(Transition::Closed));
        assert_eq!(b.record_success(), None);
    }

    #[test]
    fn success_while_open_closes() {
        let t0 = Instant::now();
        let b = CircuitBreaker::new(settings(1, 30, 300));
        b.record_failure(t0);
        b.record_success();
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(BreakerState::HalfOpen.metric_value(), 2);
        assert_eq!(BreakerState::Open.label(), "open");
    }

    #[test]
    fn reconcile_keeps_state_updates_settings_and_drops_removed() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::default();
        let first = reg.reconcile(&[backend("ns/a", 1), backend("ns/b", 1)]);
        assert_eq!(first.len(), 2);
        first["ns/a"].record_failure(t0);
        assert_eq!(first["ns/a"].state(t0), BreakerState::Open);

        // A clone shares the registry (SharedState is cloned).
        let shared = reg.clone();
        let second = shared.reconcile(&[backend("ns/a", 7), backend("ns/c", 0)]);
        assert!(Arc::ptr_eq(&first["ns/a"], &second["ns/a"]));
        assert_eq!(second["ns/a"].state(t0), BreakerState::Open);
        assert_eq!(second["ns/a"].settings().consecutive_failures, 7);
        assert_eq!(second["ns/c"].settings(), EjectionSettings::default());
        assert!(!second.contains_key("ns/b"));
        assert!(reg.get("ns/b").is_none());
        assert_eq!(
            reg.states(t0),
            vec![
                ("ns/a".to_string(), BreakerState::Open),
                ("ns/c".to_string(), BreakerState::Closed)
            ]
        );

        // Re-adding a removed backend starts closed.
        let third = reg.reconcile(&[backend("ns/b", 1)]);
        assert!(!Arc::ptr_eq(&first["ns/b"], &third["ns/b"]));
    }

    #[test]
    fn a_plan_changes_nothing_until_it_is_committed() {
        let t0 = Instant::now();
        let reg = BreakerRegistry::default();
        let live = reg.reconcile(&[backend("ns/a", 3), backend("ns/b", 3)]);
        live["ns/a"].record_failure(t0);
        let plan = reg.plan(&[backend("ns/a", 9)]);
        assert!(Arc::ptr_eq(plan.get("ns/a").unwrap(), &live["ns/a"]));
        // Not committed (a rejected configuration): settings and members unchanged.
        assert_eq!(live["ns/a"].settings().consecutive_failures, 3);
        assert!(reg.get("ns/b").is_some());
        assert_eq!(live["ns/a"].consecutive_failures(), 1);
        reg.commit(&plan);
        assert_eq!(live["ns/a"].settings().consecutive_failures, 9);
        assert_eq!(live["ns/a"].consecutive_failures(), 1, "state kept");
        assert!(reg.get("ns/b").is_none());
    }

    #[test]
    fn duplicate_ids_share_one_breaker() {
        let reg = BreakerRegistry::default();
        let map = reg.reconcile(&[backend("x", 1), backend("x", 2)]);
        assert_eq!(map.len(), 1);
        assert_eq!(map["x"].settings().consecutive_failures, 2);
    }
}
