//! Stage: attempt. Try the candidates of the model's backend chain in
//! order, classify each failure, and either retry the same backend once, move
//! to the next candidate, switch to the context-length fallback chain, or give
//! the upstream's answer to the client.
//!
//! The rules themselves (classification, retry decision, circuit breaking,
//! candidate order) are pure functions in [`crate::routing`]; this module only
//! performs the IO they decide on.

use std::sync::Arc;

use http::Response;
use tokio::time::Instant;

use super::respond;
use super::send::{self, Attempt, UpstreamError};
use crate::error::RequestError;
use crate::metrics::{AttemptLabels, FailoverLabels};
use crate::pipeline::Exchange;
use crate::providers;
use crate::response::ResponseBody;
use crate::routing::{AttemptOutcome, Decision, counts_as_breaker_failure, decide};
use crate::runtime::{BackendRuntime, ProviderKind};
use crate::state::AppState;
use crate::translate::Plan;

/// Why a candidate was skipped without a try.
#[derive(Default)]
struct Skips {
    format: usize,
    model: usize,
}

/// Runs the chain for an admitted request.
pub async fn run(
    state: &Arc<AppState>,
    x: Exchange,
) -> Result<Response<ResponseBody>, RequestError> {
    let route = x.route();
    let Some(chain) = route.rules.select(&x.routed_model) else {
        return Err(RequestError::UnknownModel {
            model: x.requested_model.clone(),
        });
    };
    let mut rng = fastrand::Rng::new();
    let mut candidates = chain.attempt_order(&mut rng, |id| {
        x.cfg.backends.get(id).map(|b| b.breaker.clone())
    });
    let mut in_fallback = false;
    let mut attempts_left = route.retry.max_attempts;
    let mut last_upstream: Option<UpstreamError> = None;
    let mut last_was_timeout = false;
    let mut skips = Skips::default();
    let mut tried = 0u32;
    let mut index = 0;

    while index < candidates.len() && attempts_left > 0 {
        let candidate = candidates[index].clone();
        index += 1;
        let Some(backend) = x.cfg.backends.get(&candidate.backend).cloned() else {
            continue;
        };
        let plan = providers::plan_for(x.format, &backend);
        if matches!(plan, Plan::Unsupported) {
            skips.format += 1;
            continue;
        }
        let provider_model = match candidate.model.as_deref() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => match backend.provider_model(&x.routed_model) {
                Some(m) => m.to_string(),
                None => {
                    skips.model += 1;
                    continue;
                }
            },
        };
        if matches!(plan, Plan::Estimate) {
            return Ok(respond::estimate_answer(state, &x, &backend, tried));
        }
        let prepared = providers::prepare(&x.call(), &backend, &provider_model, plan)?;
        let mut retried_same = false;
        loop {
            if attempts_left == 0 {
                break;
            }
            attempts_left -= 1;
            tried += 1;
            let result = if backend.provider == ProviderKind::Mock {
                return Ok(respond::mock_answer(state, &x, &backend, &provider_model, tried).await);
            } else {
                send::send(&backend, &x, &prepared).await
            };
            match result {
                Attempt::Stream(resp) => {
                    backend.breaker.record_success();
                    record_attempt(state, &backend, "ok");
                    return Ok(respond::relay_stream(
                        state, &x, &backend, resp, tried, prepared,
                    ));
                }
                Attempt::Whole { parts, body } => {
                    backend.breaker.record_success();
                    record_attempt(state, &backend, "ok");
                    return Ok(respond::whole_answer(
                        state, &x, &backend, parts, body, tried, prepared,
                    ));
                }
                Attempt::Failed {
                    outcome,
                    upstream,
                    label,
                } => {
                    record_attempt(state, &backend, label);
                    if counts_as_breaker_failure(&outcome) {
                        backend.breaker.record_failure(Instant::now());
                    } else if upstream.is_some() {
                        // The backend answered: it is reachable and healthy.
                        backend.breaker.record_success();
                    }
                    last_was_timeout = matches!(outcome, AttemptOutcome::Timeout);
                    let decision = decide(&outcome, retried_same, &route.retry, &mut rng);
                    tracing::debug!(backend = %backend.id, ?outcome, ?decision, "upstream attempt failed");
                    if upstream.is_some() {
                        last_upstream = upstream;
                    }
                    match decision {
                        Decision::RetrySame { after } => {
                            retried_same = true;
                            tokio::time::sleep(after).await;
                        }
                        Decision::NextCandidate => {
                            record_failover(state, &x, &backend, label);
                            break;
                        }
                        Decision::ContextFallback => {
                            if !in_fallback && !chain.context_fallback_is_empty() {
                                in_fallback = true;
                                record_failover(state, &x, &backend, "context_length");
                                candidates = chain.context_fallback_order(&mut rng, |id| {
                                    x.cfg.backends.get(id).map(|b| b.breaker.clone())
                                });
                                index = 0;
                                break;
                            }
                            return Ok(respond::upstream_error_answer(
                                state,
                                &x,
                                &backend,
                                last_upstream,
                                tried,
                            ));
                        }
                        Decision::ReturnToClient => {
                            return Ok(respond::upstream_error_answer(
                                state,
                                &x,
                                &backend,
                                last_upstream,
                                tried,
                            ));
                        }
                    }
                }
            }
        }
    }

    if tried == 0 {
        if skips.format > 0 && skips.model == 0 {
            return Err(RequestError::UnsupportedFormat {
                model: x.requested_model.clone(),
                format: x.format.name(),
            });
        }
        if skips.model > 0 {
            return Err(RequestError::UnknownModel {
                model: x.requested_model.clone(),
            });
        }
    }
    if let Some(upstream) = last_upstream {
        if matches!(upstream.status.as_u16(), 401 | 403) {
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
            state,
            &x,
            "exhausted",
            upstream,
            tried,
        ));
    }
    if last_was_timeout {
        return Err(RequestError::UpstreamTimeout {
            model: x.requested_model.clone(),
        });
    }
    Err(RequestError::NoHealthyBackend {
        model: x.requested_model.clone(),
    })
}

fn record_attempt(state: &AppState, backend: &BackendRuntime, outcome: &'static str) {
    state
        .metrics
        .upstream_attempts
        .get_or_create(&AttemptLabels {
            backend: backend.id.clone(),
            provider: backend.provider.label(),
            outcome,
        })
        .inc();
}

fn record_failover(state: &AppState, x: &Exchange, backend: &BackendRuntime, reason: &'static str) {
    state
        .metrics
        .failovers
        .get_or_create(&FailoverLabels {
            route: x.route().id.clone(),
            from_backend: backend.id.clone(),
            reason,
        })
        .inc();
    if let Some(team) = &x.team {
        team.failover();
    }
}
