//! Prometheus metrics of the data plane (see `docs/metrics.md`).
//!
//! Label values are bounded: routes, backends, teams and models come from
//! the configuration (a model name that configuration does not name is
//! reported as the pattern that matched it, or `other`: see
//! [`crate::runtime::model_labels`]), statuses and reasons are small enums.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

mod recent;

use recent::Recent;

/// A label value taken from configuration (a route, backend or model
/// name): shared, so labelling a request's series copies no text.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(Arc<str>);

impl Label {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Label {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Label {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label(Arc::from(s))
    }
}

impl From<String> for Label {
    fn from(s: String) -> Self {
        Label(Arc::from(s))
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl serde::Serialize for Label {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// Labels of a finished client request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route id.
    pub route: Label,
    /// Client API (`chat_completions`, `messages`, `count_tokens`, `models`).
    pub api: &'static str,
    /// Label of the model the client asked for (see `docs/metrics.md`).
    pub requested_model: Label,
    /// Label of the model that answered.
    pub model: Label,
    /// Backend that answered (`none` when the gateway answered itself).
    pub backend: Label,
    /// HTTP status sent to the client.
    pub status: u16,
}

/// Labels of token counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Route id.
    pub route: Label,
    /// Backend id.
    pub backend: Label,
    /// Provider family.
    pub provider: &'static str,
    /// Label of the model that answered.
    pub model: Label,
    /// `input`, `output`, `cache_read`, `cache_write` or `reasoning`.
    pub kind: &'static str,
}

/// Labels of upstream attempts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// Backend id.
    pub backend: Label,
    /// Provider family.
    pub provider: &'static str,
    /// `ok`, `status_4xx`, `status_429`, `status_5xx`, `connect_error`, `reset`, `timeout`.
    pub outcome: &'static str,
}

/// Labels of failovers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailoverLabels {
    /// Route id.
    pub route: Label,
    /// Backend that failed.
    pub from_backend: Label,
    /// Why it was left.
    pub reason: &'static str,
}

/// Labels that name a backend.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// Backend id.
    pub backend: Label,
}

/// Labels of gateway-side rejections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// Route id (`none` before a route matched).
    pub route: Label,
    /// Low-cardinality reason (see `RequestError::metric_label`).
    pub reason: &'static str,
}

/// Labels of stream endings.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// Backend id.
    pub backend: Label,
    /// `completed`, `truncated`, `stalled`, `upstream_error`, `client_gone`.
    pub outcome: &'static str,
}

/// Labels of the request duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    /// Route id.
    pub route: Label,
    /// Client API.
    pub api: &'static str,
    /// How the request ended (`completed`, `client_gone`, a stream outcome, `upstream_error`).
    pub outcome: &'static str,
}

/// Labels naming a listener (`traffic` or `admin`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `traffic` or `admin`.
    pub listener: &'static str,
}

/// Labels of connections the gateway closed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnClosedLabels {
    /// `traffic` or `admin`.
    pub listener: &'static str,
    /// `first_byte_timeout` or `idle_timeout`.
    pub reason: &'static str,
}

/// Labels of circuit-breaker transitions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerTransitionLabels {
    /// Backend id.
    pub backend: Label,
    /// `open` or `closed`.
    pub to: &'static str,
}

/// Labels of stream continuations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContinuationLabels {
    /// Route id.
    pub route: Label,
    /// `prefill`, `restart`, or `none` when no candidate could continue.
    pub strategy: &'static str,
    /// `completed`, `diverged`, `failed`.
    pub result: &'static str,
}

/// Every metric of the data plane.
///
/// The families every request counts in are counted through
/// [`Metrics::count_request`], [`Metrics::observe_duration`],
/// [`Metrics::count_tokens`] and [`Metrics::count_attempt`], which keep
/// each thread's recent series ([`recent`]): none of those families may
/// ever remove a series.
pub struct Metrics {
    /// Tells this instance's series from another's in the per-thread
    /// caches.
    id: u64,
    /// Circuit-breaker transitions.
    pub breaker_transitions: Family<BreakerTransitionLabels, Counter>,
    /// Streams continued from another candidate after they died midway.
    pub continuations: Family<ContinuationLabels, Counter>,
    /// Open client connections per listener.
    pub connections_open: Family<ListenerLabels, Gauge>,
    /// Connections refused at the connection limit.
    pub connections_refused: Family<ListenerLabels, Counter>,
    /// Connections closed by the gateway's first-byte and idle timeouts.
    pub connections_closed: Family<ConnClosedLabels, Counter>,
    registry: Registry,
    /// Client requests by outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency from arrival to the end of the response body.
    pub request_duration: Family<DurationLabels, Histogram>,
    /// Time to first response body byte of streams.
    pub time_to_first_token: Family<BackendLabels, Histogram>,
    /// Tokens by kind, as reported by upstreams.
    pub tokens: Family<TokenLabels, Counter>,
    /// Upstream attempts by outcome.
    pub upstream_attempts: Family<AttemptLabels, Counter>,
    /// Failovers from one backend to the next.
    pub failovers: Family<FailoverLabels, Counter>,
    /// Requests the gateway answered itself, by reason.
    pub rejections: Family<RejectionLabels, Counter>,
    /// Malformed upstream stream events dropped.
    pub malformed_events: Family<BackendLabels, Counter>,
    /// Stream endings by outcome.
    pub streams: Family<StreamLabels, Counter>,
    /// Circuit breaker state per backend (0 closed, 1 open, 2 half-open).
    pub breaker_state: Family<BackendLabels, Gauge>,
    /// Configuration loads that failed validation.
    pub config_rejections: Counter,
    /// Configurations applied.
    pub config_applies: Counter,
    /// Unix time of the last applied configuration.
    pub config_last_apply: Gauge<i64, AtomicU64Wrapper>,
    /// Per-team metrics (`switchboard_team_*`).
    pub team: crate::teams::TeamMetrics,
    /// Proxy mode's families.
    pub proxy: crate::proxy::ProxyMetrics,
    snapshot_version: std::sync::Mutex<String>,
}

thread_local! {
    static REQUESTS: RefCell<Recent<RequestLabels, Counter>> = RefCell::default();
    static DURATIONS: RefCell<Recent<DurationLabels, Histogram>> = RefCell::default();
    static TOKENS: RefCell<Recent<TokenLabels, Counter>> = RefCell::default();
    static ATTEMPTS: RefCell<Recent<AttemptLabels, Counter>> = RefCell::default();
}

/// Storage for an `i64` gauge.
pub type AtomicU64Wrapper = std::sync::atomic::AtomicI64;

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ]
    .into_iter()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Client requests by route, API, model, backend and status",
            requests.clone(),
        );
        let request_duration = Family::<DurationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "request_duration_seconds",
            "Time from request arrival to the end of the response body, for requests answered by an upstream",
            request_duration.clone(),
        );
        let time_to_first_token = Family::<BackendLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "time_to_first_token_seconds",
            "Time from request arrival until the first streamed body byte",
            time_to_first_token.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens",
            "Tokens reported by upstreams, by kind",
            tokens.clone(),
        );
        let upstream_attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "upstream_attempts",
            "Upstream attempts by backend and outcome",
            upstream_attempts.clone(),
        );
        let failovers = Family::<FailoverLabels, Counter>::default();
        registry.register(
            "failovers",
            "Moves from a failing backend to the next candidate",
            failovers.clone(),
        );
        let rejections = Family::<RejectionLabels, Counter>::default();
        registry.register(
            "rejections",
            "Requests answered by the gateway itself, by reason",
            rejections.clone(),
        );
        let malformed_events = Family::<BackendLabels, Counter>::default();
        registry.register(
            "malformed_stream_events",
            "Malformed upstream stream events dropped",
            malformed_events.clone(),
        );
        let streams = Family::<StreamLabels, Counter>::default();
        registry.register(
            "streams",
            "Streamed responses by how they ended",
            streams.clone(),
        );
        let breaker_state = Family::<BackendLabels, Gauge>::default();
        registry.register(
            "circuit_breaker_state",
            "Circuit breaker state per backend: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        let config_rejections = Counter::default();
        registry.register(
            "config_rejections",
            "Configurations rejected by validation",
            config_rejections.clone(),
        );
        let config_applies = Counter::default();
        registry.register(
            "config_applies",
            "Configurations applied",
            config_applies.clone(),
        );
        let config_last_apply = Gauge::<i64, AtomicU64Wrapper>::default();
        registry.register(
            "config_last_apply_timestamp_seconds",
            "Unix time of the last applied configuration",
            config_last_apply.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log output was slower than they came",
            crate::log_writer::dropped_lines(),
        );
        let connections_open = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "connections_open",
            "Open client connections per listener",
            connections_open.clone(),
        );
        let connections_refused = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Client connections refused because the listener was at its connection limit",
            connections_refused.clone(),
        );
        let connections_closed = Family::<ConnClosedLabels, Counter>::default();
        registry.register(
            "connections_closed",
            "Client connections closed by the gateway's first-byte or idle timeout",
            connections_closed.clone(),
        );
        let breaker_transitions = Family::<BreakerTransitionLabels, Counter>::default();
        registry.register(
            "circuit_breaker_transitions",
            "Circuit breaker transitions per backend: to open (ejected) or closed",
            breaker_transitions.clone(),
        );
        let continuations = Family::<ContinuationLabels, Counter>::default();
        registry.register(
            "stream_continuations",
            "Streams that died after their first bytes and were continued from another candidate, by strategy and result",
            continuations.clone(),
        );
        let team = crate::teams::TeamMetrics::register(&mut registry);
        let proxy = crate::proxy::ProxyMetrics::register(&mut registry);
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            breaker_transitions,
            continuations,
            connections_open,
            connections_refused,
            connections_closed,
            registry,
            team,
            proxy,
            requests,
            request_duration,
            time_to_first_token,
            tokens,
            upstream_attempts,
            failovers,
            rejections,
            malformed_events,
            streams,
            breaker_state,
            config_rejections,
            config_applies,
            config_last_apply,
            snapshot_version: std::sync::Mutex::new(String::new()),
        }
    }

    /// Counts a finished client request.
    pub fn count_request(&self, labels: RequestLabels) {
        REQUESTS.with_borrow_mut(|r| r.with(self.id, &self.requests, labels, |c| _ = c.inc()));
    }

    /// Observes a request's duration, in seconds.
    pub fn observe_duration(&self, labels: DurationLabels, seconds: f64) {
        DURATIONS.with_borrow_mut(|r| {
            r.with(self.id, &self.request_duration, labels, |h| {
                h.observe(seconds)
            });
        });
    }

    /// Counts `n` tokens.
    pub fn count_tokens(&self, labels: TokenLabels, n: u64) {
        TOKENS.with_borrow_mut(|r| r.with(self.id, &self.tokens, labels, |c| _ = c.inc_by(n)));
    }

    /// Counts an upstream attempt.
    pub fn count_attempt(&self, labels: AttemptLabels) {
        ATTEMPTS.with_borrow_mut(|r| {
            r.with(self.id, &self.upstream_attempts, labels, |c| _ = c.inc());
        });
    }

    /// Registers the snapshot version as an info metric (`switchboard_snapshot_info{version}`).
    pub fn set_snapshot_version(&self, version: &str) {
        *self
            .snapshot_version
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = version.to_string();
    }

    /// Text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        if out.ends_with("# EOF\n") {
            out.truncate(out.len() - "# EOF\n".len());
        }
        let version = self
            .snapshot_version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !version.is_empty() {
            out.push_str(
                "# HELP switchboard_snapshot_info The configuration version being served.\n",
            );
            out.push_str("# TYPE switchboard_snapshot_info gauge\n");
            out.push_str(&format!(
                "switchboard_snapshot_info{{version=\"{version}\"}} 1\n"
            ));
        }
        out.push_str("# EOF\n");
        out
    }
}
