//! A request's team from admission to accounting: resolve the caller's
//! team, admit the request against its limits, and charge the true usage
//! when the response ends.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::metrics::{TeamLabels, TeamModelLabels, TeamRequestLabels, TeamTokenLabels};
use super::pricing::PriceTable;
use super::table::Membership;
use crate::auth::Identity;
use crate::error::RequestError;
use crate::limits::{
    Admission, AdmitError, Charged, Estimate, FailMode, Limiter, Reservation, Window,
};
use crate::runtime::RouteRuntime;
use crate::state::AppState;
use crate::wire::usage::Usage;

/// A request's admitted team.
pub struct TeamContext {
    /// Route id.
    pub route: String,
    /// Team name or `unknown`.
    pub label: String,
    /// Tier name.
    pub tier: String,
    /// The limits as seen at admission (for response headers).
    pub admission: Admission,
    membership: Membership,
    limiter: Arc<Limiter>,
    metrics: Arc<crate::metrics::Metrics>,
    prices: Arc<PriceTable>,
    usage: Arc<super::UsageBook>,
    /// What the request holds on its team's counters until it finishes
    /// ([`TeamContext::reserve`]); released when the request ends unanswered.
    reservation: std::sync::Mutex<Option<Reservation>>,
}

impl Drop for TeamContext {
    /// A request that ends without an answer (refused by a guard, every
    /// backend failed) releases what it reserved.
    fn drop(&mut self) {
        if let Some(r) = self.take_reservation() {
            self.settle(r, 0, 0);
        }
    }
}

/// Counts a request of an AITeam member in the live usage (`refused`: by one
/// of the team's limits).
fn count_usage(state: &AppState, m: &Membership, refused: bool) {
    if let Some(team) = &m.aiteam {
        let period = usage_period(m);
        if refused {
            state.usage.refused(team, period);
        } else {
            state.usage.request(team, period);
        }
    }
}

/// The period an AITeam's spend is shown for: its budget's, else a month.
fn usage_period(m: &Membership) -> Window {
    m.party.budget.map_or(Window::Month, |(_, w)| w)
}

impl std::fmt::Debug for TeamContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamContext")
            .field("route", &self.route)
            .field("team", &self.label)
            .finish_non_exhaustive()
    }
}

/// The caller's team on `route`, `None` when the route has no teams.
pub fn membership(
    state: &AppState,
    route: &RouteRuntime,
    id: &Identity,
) -> Result<Option<Membership>, RequestError> {
    let Some(table) = &route.teams else {
        return Ok(None);
    };
    match table.resolve(id) {
        Some(m) => Ok(Some(m)),
        None => {
            state
                .metrics
                .team
                .reject(&route.id, super::UNKNOWN_TEAM, "unknown_team");
            Err(RequestError::UnknownTeam)
        }
    }
}

/// Counts the request against its team's limits (and the client address's).
pub async fn admit(
    state: &AppState,
    route: &RouteRuntime,
    membership: Option<Membership>,
    client_ip: Option<IpAddr>,
) -> Result<Option<Arc<TeamContext>>, RequestError> {
    let (Some(m), Some(table)) = (membership, &route.teams) else {
        return Ok(None);
    };
    let limiter = &state.limiter;
    let ip = client_ip.map(|ip| ip.to_string());
    let ip_limit = ip
        .as_deref()
        .map(|ip| (ip, table.client_ip_requests_per_minute));
    let team = &state.metrics.team;
    let labels = TeamLabels {
        route: route.id.to_string(),
        team: m.label.clone(),
    };
    let admitted = limiter.admit(&m.party, ip_limit).await;
    let refused_by_team = matches!(&admitted, Err(AdmitError::Refused(r)) if r.kind != crate::limits::LimitKind::ClientIp);
    count_usage(state, &m, refused_by_team);
    match admitted {
        Ok(admission) => {
            if let Some(e) = &admission.store_error {
                tracing::warn!(route = %route.id, team = %m.label, error = %e, "counter store failed; admitting without limits (fail open)");
                team.store_errors
                    .get_or_create(&super::metrics::StoreErrorLabels {
                        store: limiter.store_kind(),
                        mode: "open",
                    })
                    .inc();
            }
            if let Some(q) = &admission.requests {
                team.remaining_requests
                    .get_or_create(&labels)
                    .set(q.remaining() as i64);
            }
            if let Some(q) = &admission.tokens {
                team.remaining_tokens
                    .get_or_create(&labels)
                    .set(q.remaining() as i64);
            }
            if let Some(q) = &admission.budget {
                team.budget_remaining
                    .get_or_create(&labels)
                    .set(q.remaining() as f64 / 1e6);
            }
            Ok(Some(Arc::new(TeamContext {
                route: route.id.to_string(),
                label: m.label.clone(),
                tier: m.tier.clone(),
                admission,
                membership: m,
                limiter: limiter.clone(),
                metrics: state.metrics.clone(),
                prices: route.prices.clone(),
                usage: state.usage.clone(),
                reservation: std::sync::Mutex::new(None),
            })))
        }
        Err(AdmitError::Refused(mut r)) => {
            if r.who.is_empty() {
                r.who = m.describe();
            }
            let err = RequestError::LimitExceeded(r);
            team.reject(&route.id, &m.label, err.metric_label());
            if let RequestError::LimitExceeded(r) = &err {
                if let Some(q) = &r.admission.requests {
                    team.remaining_requests
                        .get_or_create(&labels)
                        .set(q.remaining() as i64);
                }
                match r.kind {
                    crate::limits::LimitKind::Tokens => {
                        team.remaining_tokens.get_or_create(&labels).set(0);
                    }
                    crate::limits::LimitKind::Budget => {
                        team.budget_remaining.get_or_create(&labels).set(0.0);
                    }
                    _ => {}
                }
            }
            Err(err)
        }
        Err(AdmitError::Unavailable(e)) => {
            debug_assert_eq!(limiter.fail_mode(), FailMode::Closed);
            tracing::error!(route = %route.id, team = %m.label, error = %e, "counter store failed; refusing (fail closed)");
            team.store_errors
                .get_or_create(&super::metrics::StoreErrorLabels {
                    store: limiter.store_kind(),
                    mode: "closed",
                })
                .inc();
            team.reject(&route.id, &m.label, "limiter_unavailable");
            Err(RequestError::LimiterUnavailable)
        }
    }
}

impl TeamContext {
    /// The route's price table.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// Reserves `estimate` on the team's token and budget counters until
    /// the request finishes (see [`Limiter::reserve`]). Refused: the
    /// request is answered 429 like any limit.
    pub async fn reserve(&self, estimate: Estimate) -> Result<(), RequestError> {
        let party = &self.membership.party;
        // Admitted unchecked (the store failed, fail open): no reservation.
        if (party.tokens_per_day == 0 && party.budget.is_none())
            || self.admission.store_error.is_some()
        {
            return Ok(());
        }
        match self.limiter.reserve(party, estimate).await {
            Ok(r) => {
                if let Some(e) = &r.store_error {
                    tracing::warn!(route = %self.route, team = %self.label, error = %e, "counter store failed; admitting without a reservation (fail open)");
                    self.store_error("open");
                }
                *self.reservation.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                Ok(())
            }
            Err(AdmitError::Refused(mut r)) => {
                r.who = self.membership.describe();
                let err = RequestError::LimitExceeded(r);
                self.metrics
                    .team
                    .reject(&self.route, &self.label, err.metric_label());
                Err(err)
            }
            Err(AdmitError::Unavailable(e)) => {
                tracing::error!(route = %self.route, team = %self.label, error = %e, "counter store failed; refusing (fail closed)");
                self.store_error("closed");
                self.metrics
                    .team
                    .reject(&self.route, &self.label, "limiter_unavailable");
                Err(RequestError::LimiterUnavailable)
            }
        }
    }

    fn store_error(&self, mode: &'static str) {
        self.metrics
            .team
            .store_errors
            .get_or_create(&super::metrics::StoreErrorLabels {
                store: self.limiter.store_kind(),
                mode,
            })
            .inc();
    }

    fn take_reservation(&self) -> Option<Reservation> {
        self.reservation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn labels(&self) -> TeamLabels {
        TeamLabels {
            route: self.route.clone(),
            team: self.label.clone(),
        }
    }

    /// Records a finished request and charges its true usage to the team's
    /// counters (in the background: this runs when a body ends or is dropped).
    /// `model` is the model that answered (priced), `label` its metric label.
    pub fn finish(
        &self,
        model: &str,
        label: &str,
        status: u16,
        usage: Option<&Usage>,
        started: Instant,
    ) {
        let m = &self.metrics.team;
        m.requests
            .get_or_create(&TeamRequestLabels {
                route: self.route.clone(),
                team: self.label.clone(),
                model: label.to_string(),
                status,
            })
            .inc();
        m.duration
            .get_or_create(&self.labels())
            .observe(started.elapsed().as_secs_f64());
        let u = usage.copied().unwrap_or_default();
        for (kind, value) in [
            ("input", u.input_tokens),
            ("output", u.output_tokens),
            ("cache_read", u.cache_read_tokens),
            ("cache_write", u.cache_write_tokens),
        ] {
            if value > 0 {
                m.tokens
                    .get_or_create(&TeamTokenLabels {
                        route: self.route.clone(),
                        team: self.label.clone(),
                        model: label.to_string(),
                        kind,
                    })
                    .inc_by(value);
            }
        }
        let tokens = u.total_input() + u.output_tokens;
        let cost = self.prices.cost_micro_usd(model, &u);
        if cost > 0 {
            m.cost
                .get_or_create(&TeamModelLabels {
                    route: self.route.clone(),
                    team: self.label.clone(),
                    model: label.to_string(),
                })
                .inc_by(cost as f64 / 1e6);
        }
        if let Some(team) = &self.membership.aiteam {
            let period = usage_period(&self.membership);
            self.usage.charged(team, period, tokens, cost);
        }
        let party = &self.membership.party;
        let reservation = self.take_reservation();
        if party.tokens_per_day == 0 && party.budget.is_none() {
            return;
        }
        self.settle(reservation.unwrap_or_default(), tokens, cost);
    }

    /// Settles `reservation` with the true usage in the background (this
    /// runs when a body ends or is dropped).
    fn settle(&self, reservation: Reservation, tokens: u64, cost: u64) {
        let party = &self.membership.party;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(team = %self.label, tokens, "no runtime to charge usage on");
            return;
        };
        let (limiter, party, metrics, labels) = (
            self.limiter.clone(),
            party.clone(),
            self.metrics.clone(),
            self.labels(),
        );
        // Awaited at shutdown (`Limiter::flush`), so cut requests are charged.
        let pending = limiter.pending();
        handle.spawn(async move {
            let _pending = pending;
            match limiter.settle(&party, &reservation, tokens, cost).await {
                Ok(Charged {
                    tokens_used,
                    spent_micro_usd,
                }) => {
                    if let Some(used) = tokens_used {
                        let left = party.tokens_per_day.saturating_sub(used);
                        metrics.team.remaining_tokens.get_or_create(&labels).set(left as i64);
                    }
                    if let (Some(spent), Some((limit, _))) = (spent_micro_usd, party.budget) {
                        metrics
                            .team
                            .budget_remaining
                            .get_or_create(&labels)
                            .set(limit.saturating_sub(spent) as f64 / 1e6);
                    }
                }
                Err(e) => {
                    tracing::warn!(team = %labels.team, tokens, micro_usd = cost, error = %e, "could not charge usage");
                    metrics
                        .team
                        .store_errors
                        .get_or_create(&super::metrics::StoreErrorLabels {
                            store: limiter.store_kind(),
                            mode: "charge",
                        })
                        .inc();
                }
            }
        });
    }

    /// Records the time to the first streamed byte.
    pub fn first_byte(&self, started: Instant, at: Instant) {
        self.metrics
            .team
            .time_to_first_token
            .get_or_create(&self.labels())
            .observe(at.saturating_duration_since(started).as_secs_f64());
    }

    /// Counts a failover during this team's request.
    pub fn failover(&self) {
        self.metrics
            .team
            .failovers
            .get_or_create(&self.labels())
            .inc();
    }
}
