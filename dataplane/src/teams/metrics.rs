//! Per-team metrics (see `docs/metrics.md`). The `team` label is a
//! configured team name or `unknown`, so its values are bounded by the
//! configuration.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels naming a route's team.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamLabels {
    /// Route id.
    pub route: String,
    /// Team name or `unknown`.
    pub team: String,
}

/// Labels of per-team requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamRequestLabels {
    /// Route id.
    pub route: String,
    /// Team name or `unknown`.
    pub team: String,
    /// Label of the model that answered (see `docs/metrics.md`).
    pub model: String,
    /// HTTP status sent to the client.
    pub status: u16,
}

/// Labels of per-team token and cost counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamTokenLabels {
    /// Route id.
    pub route: String,
    /// Team name or `unknown`.
    pub team: String,
    /// Label of the model that answered (see `docs/metrics.md`).
    pub model: String,
    /// `input`, `output`, `cache_read` or `cache_write`.
    pub kind: &'static str,
}

/// Labels of per-team cost.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamModelLabels {
    /// Route id.
    pub route: String,
    /// Team name or `unknown`.
    pub team: String,
    /// Label of the model that answered (see `docs/metrics.md`).
    pub model: String,
}

/// Labels of per-team refusals.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamRejectionLabels {
    /// Route id.
    pub route: String,
    /// Team name or `unknown`.
    pub team: String,
    /// `rate_limit_requests`, `rate_limit_tokens`, `budget_exceeded`,
    /// `rate_limit_client_ip`, `unknown_team`, `blocked_prompt`,
    /// `webhook_rejected`, `webhook_unavailable`, `limiter_unavailable`.
    pub reason: &'static str,
}

/// Labels of counter store failures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreErrorLabels {
    /// `memory` or `redis`.
    pub store: &'static str,
    /// `open` (request admitted unchecked) or `closed` (refused with 503).
    pub mode: &'static str,
}

fn buckets() -> impl Iterator<Item = f64> {
    [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ]
    .into_iter()
}

/// The per-team metric families.
#[derive(Clone)]
pub struct TeamMetrics {
    /// Requests answered by an upstream, by team, model and status.
    pub requests: Family<TeamRequestLabels, Counter>,
    /// Tokens by team, model and kind.
    pub tokens: Family<TeamTokenLabels, Counter>,
    /// Spend in USD by team and model.
    pub cost: Family<TeamModelLabels, Counter<f64, AtomicU64>>,
    /// Request latency by team.
    pub duration: Family<TeamLabels, Histogram, fn() -> Histogram>,
    /// Time to first streamed byte by team.
    pub time_to_first_token: Family<TeamLabels, Histogram, fn() -> Histogram>,
    /// Failovers during a team's requests.
    pub failovers: Family<TeamLabels, Counter>,
    /// Refusals by team and reason.
    pub rejections: Family<TeamRejectionLabels, Counter>,
    /// Budget left in the current period, USD.
    pub budget_remaining: Family<TeamLabels, Gauge<f64, AtomicU64>>,
    /// Requests left in the current minute.
    pub remaining_requests: Family<TeamLabels, Gauge>,
    /// Tokens left today.
    pub remaining_tokens: Family<TeamLabels, Gauge>,
    /// Counter store failures.
    pub store_errors: Family<StoreErrorLabels, Counter>,
}

fn histogram() -> Histogram {
    Histogram::new(buckets())
}

impl TeamMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default_families();
        registry.register(
            "team_requests",
            "Requests answered by an upstream, by team, model and status",
            m.requests.clone(),
        );
        registry.register(
            "team_tokens",
            "Tokens used by team, model and kind",
            m.tokens.clone(),
        );
        registry.register(
            "team_cost_usd",
            "Spend in US dollars by team and model (from the price table)",
            m.cost.clone(),
        );
        registry.register(
            "team_request_duration_seconds",
            "Request latency by team",
            m.duration.clone(),
        );
        registry.register(
            "team_time_to_first_token_seconds",
            "Time to the first streamed byte by team",
            m.time_to_first_token.clone(),
        );
        registry.register(
            "team_failovers",
            "Failovers during a team's requests",
            m.failovers.clone(),
        );
        registry.register(
            "team_rejections",
            "Requests refused by limits and guards, by team and reason",
            m.rejections.clone(),
        );
        registry.register(
            "team_budget_remaining_usd",
            "Budget left in the current period, US dollars",
            m.budget_remaining.clone(),
        );
        registry.register(
            "team_remaining_requests",
            "Requests left in the current minute",
            m.remaining_requests.clone(),
        );
        registry.register(
            "team_remaining_tokens",
            "Tokens left in the current UTC day",
            m.remaining_tokens.clone(),
        );
        registry.register(
            "limiter_store_errors",
            "Counter store failures, by store and failure mode",
            m.store_errors.clone(),
        );
        m
    }

    fn default_families() -> Self {
        Self {
            requests: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            duration: Family::new_with_constructor(histogram as fn() -> Histogram),
            time_to_first_token: Family::new_with_constructor(histogram as fn() -> Histogram),
            failovers: Family::default(),
            rejections: Family::default(),
            budget_remaining: Family::default(),
            remaining_requests: Family::default(),
            remaining_tokens: Family::default(),
            store_errors: Family::default(),
        }
    }

    /// Counts a refusal.
    pub fn reject(&self, route: &str, team: &str, reason: &'static str) {
        self.rejections
            .get_or_create(&TeamRejectionLabels {
                route: route.to_string(),
                team: team.to_string(),
                reason,
            })
            .inc();
    }
}
