//! Stage: attempt. Try the candidates of the model's backend chain in
//! order, classify each failure, and either retry the same backend once, move
//! to the next candidate, switch to the context-length fallback chain, or give
//! the upstream's answer to the client.
//!
//! The rules themselves (classification, retry decision, circuit breaking,
//! candidate order) are pure functions in [`crate::routing`]; this module only
//! performs the IO they decide on. A [`Chain`] is the state of one request's
//! walk through its candidates: the first answer is asked of it by [`run`],
//! and a stream that dies midway asks it again for a continuation
//! ([`super::stream`]), from where the walk stopped.
//!
//! Streams are held until their first content event ([`super::hold`]): a
//! candidate that sends headers but no content within its `firstToken`
//! timeout is left for the next one (the last candidate is waited for up to
//! `request`, like a non-streaming answer). A stream whose first content is
//! an error event failed before any byte went out: it is retried or failed
//! over like a 5xx. A stream still held one keep-alive interval
//! ([`super::keepalive`]) after the request arrived is committed to the
//! client (200, event-stream headers) and kept alive with the client's own
//! keep-alives while the walk goes on.
//!
//! A request carrying the caller's own provider key (`docs/byok.md`) skips
//! backends whose provider cannot use one ([`crate::providers::Provider::caller_key_slot`]).
//!
//! Circuit breakers: a failure that opens a backend's breaker (or a failed
//! half-open probe) never retries that backend; transitions are logged and
//! counted; requests that skip a backend whose breaker is open count as a
//! failover from it (`reason="breaker_open"`).

use std::sync::Arc;

use http::Response;
use tokio::time::Instant;

use super::hold::{self, HoldError, Prefixed};
use super::respond;
use super::send::{self, Attempt, UpstreamError};
use crate::error::RequestError;
use crate::metrics::{AttemptLabels, BreakerTransitionLabels, FailoverLabels};
use crate::pipeline::Exchange;
use crate::pipeline::continuation::{self, Strategy};
use crate::providers::Prepared;
use crate::response::ResponseBody;
use crate::routing::{
    AttemptOutcome, Candidate, Decision, Transition, counts_as_breaker_failure, decide,
};
use crate::runtime::BackendRuntime;
use crate::state::AppState;
use crate::translate::Plan;
use crate::upstream::UpstreamBody;

/// Why a candidate was skipped without a try.
#[derive(Default)]
struct Skips {
    format: usize,
    model: usize,
    /// The request carries a caller's key this backend cannot use.
    caller_key: usize,
}

/// The candidate being tried (kept across a same-backend retry).
struct Current {
    backend: Arc<BackendRuntime>,
    /// The model this candidate answers as (charged and labelled).
    model: String,
    prepared: Prepared,
    strategy: Option<Strategy>,
    retried_same: bool,
}

/// What the walk is for.
pub enum Purpose {
    /// The request's answer.
    Answer,
    /// The rest of a stream that died after part of its answer reached the client.
    Continue(continuation::Plan),
}

/// A 2xx stream whose first content event arrived.
pub struct Started {
    /// The backend that answered.
    pub backend: Arc<BackendRuntime>,
    /// The model that answered (the backend reference's `model`, else the routed name).
    pub model: String,
    /// How its answer must be read.
    pub prepared: Prepared,
    /// Its status and headers.
    pub parts: http::response::Parts,
    /// Its body, the bytes read while holding first.
    pub body: Prefixed<UpstreamBody>,
    /// Upstream attempts so far for this request.
    pub attempts: u32,
    /// For a continuation: how the new stream joins what was sent.
    pub strategy: Option<Strategy>,
}

/// Where a walk ended.
pub enum Next {
    /// A complete answer for the client (whole 2xx, mock, estimate, an
    /// upstream error returned as it is).
    Answer(Response<ResponseBody>),
    /// A stream to relay.
    Stream(Box<Started>),
    /// No candidate answered: the gateway's own answer (an error, or the
    /// last upstream error).
    Failed(Result<Response<ResponseBody>, RequestError>),
}

/// One request's walk through its backend chain.
pub struct Chain {
    state: Arc<AppState>,
    x: Arc<Exchange>,
    candidates: Vec<Candidate>,
    index: usize,
    in_fallback: bool,
    attempts_left: u32,
    tried: u32,
    last_upstream: Option<UpstreamError>,
    last_was_timeout: bool,
    skips: Skips,
    rng: fastrand::Rng,
    current: Option<Current>,
}

/// Runs the chain for an admitted request.
pub async fn run(
    state: &Arc<AppState>,
    x: Exchange,
) -> Result<Response<ResponseBody>, RequestError> {
    // Held without a byte to the client for one keep-alive interval at most
    // (Claude Code's stall watchdog fires after about 20 s of silence).
    let stream = x.stream && !state.stream_keepalive.is_zero();
    let hold_until = x.started + state.stream_keepalive;
    let mut chain = Chain::new(state.clone(), x)?;
    if !stream {
        return match chain.next(&Purpose::Answer).await {
            Next::Answer(resp) => Ok(resp),
            Next::Stream(started) => Ok(super::stream::relay(chain, *started)),
            Next::Failed(answer) => answer,
        };
    }
    let x = chain.exchange().clone();
    let mut walk: super::stream::Walk = Box::pin(async move {
        let next = chain.next(&Purpose::Answer).await;
        (chain, next)
    });
    tokio::select! {
        (chain, next) = &mut walk => match next {
            Next::Answer(resp) => Ok(resp),
            Next::Stream(started) => Ok(super::stream::relay(chain, *started)),
            Next::Failed(answer) => answer,
        },
        () = tokio::time::sleep_until(hold_until) => Ok(super::stream::held(x, state, walk)),
    }
}

impl Chain {
    /// The walk of `x`'s chain, candidates ordered now.
    pub fn new(state: Arc<AppState>, x: Exchange) -> Result<Self, RequestError> {
        let x = Arc::new(x);
        let route = x.route();
        let Some(rule) = route.rules.select(&x.routed_model) else {
            return Err(RequestError::UnknownModel {
                model: x.requested_model.clone(),
            });
        };
        let mut rng = fastrand::Rng::new();
        let (candidates, lead) = rule.attempt_order_split(&mut rng, |id| {
            x.cfg.backends.get(id).map(|b| b.breaker.clone())
        });
        let chain = Self {
            attempts_left: route.retry.max_attempts,
            state,
            candidates,
            index: 0,
            in_fallback: false,
            tried: 0,
            last_upstream: None,
            last_was_timeout: false,
            skips: Skips::default(),
            rng,
            current: None,
            x: x.clone(),
        };
        // Backends skipped because their breaker is open count as failovers.
        if lead > 0 {
            for c in &chain.candidates[lead..] {
                if let Some(b) = x.cfg.backends.get(&*c.backend) {
                    chain.record_failover(b, "breaker_open");
                }
            }
        }
        Ok(chain)
    }

    /// The request.
    pub fn exchange(&self) -> &Arc<Exchange> {
        &self.x
    }

    /// The process state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Upstream attempts so far.
    pub fn attempts(&self) -> u32 {
        self.tried
    }

    /// Whether another candidate could still be tried.
    pub fn has_more(&self) -> bool {
        self.attempts_left > 0 && self.index < self.candidates.len()
    }

    /// Walks on until a candidate answers, or the chain is exhausted.
    pub async fn next(&mut self, purpose: &Purpose) -> Next {
        loop {
            let cur = match self.current.take() {
                Some(c) => c,
                None => match self.take_candidate(purpose) {
                    Taken::Candidate(c) => c,
                    Taken::Answer(resp) => return Next::Answer(resp),
                    Taken::Error(e) => return Next::Failed(Err(e)),
                    Taken::None => return Next::Failed(self.exhausted(purpose)),
                },
            };
            if self.attempts_left == 0 {
                return Next::Failed(self.exhausted(purpose));
            }
            self.attempts_left -= 1;
            self.tried += 1;
            let backend = cur.backend.clone();
            let failure = match send::send(&backend, &self.x, &cur.prepared).await {
                Attempt::Stream(resp) => {
                    let timeouts = backend.timeouts;
                    // Others get `firstToken`; the last candidate is waited for
                    // as long as a non-streaming answer (`request`), the
                    // client kept alive meanwhile.
                    let wait = if self.has_more() {
                        timeouts.first_token
                    } else {
                        timeouts.request.max(timeouts.first_token)
                    };
                    let (parts, body) = resp.into_parts();
                    let deadline = Instant::now() + wait;
                    match hold::first_content(body, cur.prepared.upstream, deadline).await {
                        Ok((prefix, rest)) => {
                            self.record_success(&backend);
                            self.record_attempt(&backend, "ok");
                            return Next::Stream(Box::new(Started {
                                backend,
                                model: cur.model,
                                prepared: cur.prepared,
                                parts,
                                body: Prefixed::new(prefix, rest),
                                attempts: self.tried,
                                strategy: cur.strategy,
                            }));
                        }
                        Err(HoldError::Timeout) => {
                            tracing::debug!(backend = %backend.id, ?wait, "no first token in time");
                            (AttemptOutcome::Timeout, None, "first_token_timeout")
                        }
                        Err(HoldError::Broken) => (AttemptOutcome::Reset, None, "reset"),
                        Err(HoldError::Empty) => (AttemptOutcome::Reset, None, "empty_stream"),
                        Err(HoldError::ErrorEvent(data)) => {
                            let (outcome, error) = send::stream_error(cur.prepared.upstream, data);
                            (outcome, Some(error), "stream_error")
                        }
                    }
                }
                Attempt::Whole { parts, body } => {
                    self.record_success(&backend);
                    self.record_attempt(&backend, "ok");
                    if matches!(purpose, Purpose::Continue(_)) {
                        // A whole answer cannot extend a stream: not a usable continuation.
                        return Next::Failed(Err(RequestError::NoHealthyBackend {
                            model: self.x.requested_model.clone(),
                        }));
                    }
                    return Next::Answer(respond::whole_answer(
                        &self.state,
                        &self.x,
                        &backend,
                        &cur.model,
                        parts,
                        body,
                        self.tried,
                        cur.prepared,
                    ));
                }
                Attempt::Failed {
                    outcome,
                    upstream,
                    label,
                } => (outcome, upstream, label),
            };
            let (outcome, upstream, label) = failure;
            self.record_attempt(&backend, label);
            if counts_as_breaker_failure(&outcome) {
                self.record_failure(&backend);
            } else if upstream.is_some() {
                // The backend answered: it is reachable and healthy.
                self.record_success(&backend);
            }
            self.last_was_timeout = matches!(outcome, AttemptOutcome::Timeout);
            let route = self.x.route();
            let mut decision = decide(&outcome, cur.retried_same, &route.retry, &mut self.rng);
            if matches!(decision, Decision::RetrySame { .. })
                && !backend.breaker.is_available(Instant::now())
            {
                // This failure opened the breaker (or a probe failed): the
                // backend is ejected, do not try it again.
                decision = Decision::NextCandidate;
            }
            tracing::debug!(backend = %backend.id, ?outcome, ?decision, "upstream attempt failed");
            if upstream.is_some() {
                self.last_upstream = upstream;
            }
            match decision {
                Decision::RetrySame { after } => {
                    tokio::time::sleep(after).await;
                    self.current = Some(Current {
                        retried_same: true,
                        ..cur
                    });
                }
                Decision::NextCandidate => self.record_failover(&backend, label),
                Decision::ContextFallback => {
                    let rule = self.x.route().rules.select(&self.x.routed_model);
                    match rule {
                        Some(rule) if !self.in_fallback && !rule.context_fallback_is_empty() => {
                            self.in_fallback = true;
                            self.record_failover(&backend, "context_length");
                            let x = self.x.clone();
                            self.candidates = rule.context_fallback_order(&mut self.rng, |id| {
                                x.cfg.backends.get(id).map(|b| b.breaker.clone())
                            });
                            self.index = 0;
                        }
                        _ => {
                            return Next::Answer(self.upstream_error_answer(&backend, &cur.model));
                        }
                    }
                }
                Decision::ReturnToClient => {
                    return Next::Answer(self.upstream_error_answer(&backend, &cur.model));
                }
            }
        }
    }

    /// Takes the next candidate that can be tried for `purpose`.
    fn take_candidate(&mut self, purpose: &Purpose) -> Taken {
        while self.index < self.candidates.len() && self.attempts_left > 0 {
            let candidate = self.candidates[self.index].clone();
            self.index += 1;
            let Some(backend) = self.x.cfg.backends.get(&*candidate.backend).cloned() else {
                continue;
            };
            let plan = backend.provider.plan(self.x.format);
            if matches!(plan, Plan::Unsupported) {
                self.skips.format += 1;
                continue;
            }
            // Charged and labelled as the model it answers as.
            let model = candidate
                .model
                .as_deref()
                .filter(|m| !m.is_empty())
                .map_or_else(|| self.x.routed_model.clone(), str::to_owned);
            let provider_model = match candidate.model.as_deref() {
                Some(m) if !m.is_empty() => m.to_string(),
                _ => match backend.provider_model(&self.x.routed_model) {
                    Some(m) => m.to_string(),
                    None => {
                        self.skips.model += 1;
                        continue;
                    }
                },
            };
            if matches!(plan, Plan::Estimate) {
                return match respond::count_answer(
                    &self.state,
                    &self.x,
                    &backend,
                    &model,
                    &provider_model,
                    self.tried,
                ) {
                    Ok(answer) => Taken::Answer(answer),
                    Err(e) => Taken::Error(e),
                };
            }
            // A caller's key is never silently ignored: backends whose
            // credential it cannot replace are left out (docs/byok.md).
            if self.x.caller_key.is_some() && backend.provider.caller_key_slot().is_none() {
                self.skips.caller_key += 1;
                continue;
            }
            let prepared = match backend
                .provider
                .prepare(&self.x.call(), &provider_model, plan)
            {
                Ok(p) => p,
                Err(e) => return Taken::Error(e),
            };
            let (prepared, strategy) = match purpose {
                Purpose::Answer => (prepared, None),
                Purpose::Continue(plan) => {
                    match continuation::for_candidate(plan, &backend, prepared) {
                        Some((prepared, strategy)) => (prepared, Some(strategy)),
                        None => continue,
                    }
                }
            };
            return Taken::Candidate(Current {
                backend,
                model,
                prepared,
                strategy,
                retried_same: false,
            });
        }
        Taken::None
    }

    /// The answer when no candidate answered.
    fn exhausted(&mut self, purpose: &Purpose) -> Result<Response<ResponseBody>, RequestError> {
        let x = &self.x;
        if matches!(purpose, Purpose::Continue(_)) {
            // The client has its stream (200) and gets its in-band error;
            // the request is recorded once, by the stream.
            return Err(RequestError::NoHealthyBackend {
                model: x.requested_model.clone(),
            });
        }
        if self.tried == 0 {
            if self.skips.caller_key > 0 {
                return Err(RequestError::ProviderKeyUnusable {
                    model: x.requested_model.clone(),
                });
            }
            if self.skips.format > 0 && self.skips.model == 0 {
                return Err(RequestError::UnsupportedFormat {
                    model: x.requested_model.clone(),
                    format: x.format.name(),
                });
            }
            if self.skips.model > 0 {
                return Err(RequestError::UnknownModel {
                    model: x.requested_model.clone(),
                });
            }
        }
        if let Some(upstream) = self.last_upstream.take() {
            if upstream.gateway_fault {
                // The provider refused the gateway's credential. Passing that 401
                // on would tell the client its own token is bad (Claude Code and
                // Codex would refresh it and retry); it is a gateway-side outage.
                tracing::warn!(
                    route = %x.route().id,
                    status = upstream.status.as_u16(),
                    "every candidate refused the gateway's provider credential"
                );
                return Err(RequestError::NoHealthyBackend {
                    model: x.requested_model.clone(),
                });
            }
            return Ok(respond::error_passthrough(
                &self.state,
                x,
                "exhausted",
                upstream,
                self.tried,
            ));
        }
        if self.last_was_timeout {
            return Err(RequestError::UpstreamTimeout {
                model: x.requested_model.clone(),
            });
        }
        Err(RequestError::NoHealthyBackend {
            model: x.requested_model.clone(),
        })
    }

    fn upstream_error_answer(
        &mut self,
        backend: &BackendRuntime,
        model: &str,
    ) -> Response<ResponseBody> {
        respond::upstream_error_answer(
            &self.state,
            &self.x,
            backend,
            model,
            self.last_upstream.take(),
            self.tried,
        )
    }

    /// A stream of `backend` broke after it started: its breaker hears of it.
    pub fn stream_failed(&self, backend: &BackendRuntime, reason: &'static str) {
        self.record_failure(backend);
        self.record_failover(backend, reason);
    }

    fn record_attempt(&self, backend: &BackendRuntime, outcome: &'static str) {
        self.state.metrics.count_attempt(AttemptLabels {
            backend: backend.id.clone(),
            provider: backend.provider.label(),
            outcome,
        });
    }

    fn record_failover(&self, backend: &BackendRuntime, reason: &'static str) {
        self.state
            .metrics
            .failovers
            .get_or_create(&FailoverLabels {
                route: self.x.route().id.clone(),
                from_backend: backend.id.clone(),
                reason,
            })
            .inc();
        if let Some(team) = &self.x.team {
            team.failover();
        }
    }

    fn record_success(&self, backend: &BackendRuntime) {
        if let Some(t) = backend.breaker.record_success() {
            self.log_transition(backend, t);
        }
    }

    fn record_failure(&self, backend: &BackendRuntime) {
        if let Some(t) = backend.breaker.record_failure(Instant::now()) {
            self.log_transition(backend, t);
        }
    }

    fn log_transition(&self, backend: &BackendRuntime, t: Transition) {
        let to = match t {
            Transition::Opened { interval, reopened } => {
                tracing::warn!(
                    backend = %backend.id,
                    open_for_ms = interval.as_millis() as u64,
                    probe_failed = reopened,
                    "circuit breaker opened: the backend is ejected"
                );
                "open"
            }
            Transition::Closed => {
                tracing::info!(backend = %backend.id, "circuit breaker closed: the backend serves again");
                "closed"
            }
        };
        self.state
            .metrics
            .breaker_transitions
            .get_or_create(&BreakerTransitionLabels {
                backend: backend.id.clone(),
                to,
            })
            .inc();
    }
}

enum Taken {
    Candidate(Current),
    Answer(Response<ResponseBody>),
    Error(RequestError),
    None,
}
