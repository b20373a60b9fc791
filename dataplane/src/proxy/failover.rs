//! The failover loop: try the candidates of the model's backend chain in
//! order, classify each failure, and either retry the same backend once, move
//! to the next candidate, switch to the context-length fallback chain, or give
//! the upstream's answer to the client.
//!
//! The rules themselves (classification, retry decision, circuit breaking,
//! candidate order) are pure functions in [`crate::routing`]; this module only
//! performs the IO they decide on.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::error::RequestError;
use crate::metrics::{AttemptLabels, FailoverLabels};
use crate::proxy::accounting::Accounting;
use crate::proxy::attempt::{self, Attempt, UpstreamError};
use crate::proxy::headers::client_headers;
use crate::proxy::response::{self, ResponseBody, TapBody, TapEnd};
use crate::proxy::translation::{self, Prepared};
use crate::proxy::{Exchange, dialect_of};
use crate::routing::{AttemptOutcome, Decision, counts_as_breaker_failure, decide};
use crate::runtime::{ApiFormat, BackendRuntime, ProviderKind};
use crate::state::AppState;
use crate::translate::{Plan, errors as translate_errors};
use crate::wire;
use crate::wire::Dialect;

/// Largest non-streaming response body inspected for usage.
const USAGE_INSPECT_LIMIT: usize = 8 << 20;

/// Why a candidate was skipped without a try.
#[derive(Default)]
struct Skips {
    format: usize,
    model: usize,
}

/// Runs the chain for an admitted request.
pub(crate) async fn run(
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
        let plan = translation::plan_for(&x, &backend);
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
            return count_answer(state, &x, &backend, &provider_model, tried);
        }
        let prepared = translation::prepare(&x, &backend, &provider_model, plan)?;
        let mut retried_same = false;
        loop {
            if attempts_left == 0 {
                break;
            }
            attempts_left -= 1;
            tried += 1;
            let result = if backend.provider == ProviderKind::Mock {
                return Ok(mock_answer(state, &x, &backend, &provider_model, tried).await);
            } else {
                attempt::send(&backend, &x, &prepared).await
            };
            match result {
                Attempt::Answered(resp) => {
                    backend.breaker.record_success();
                    record_attempt(state, &backend, "ok");
                    return Ok(relay_answer(state, &x, &backend, resp, tried, prepared).await);
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
                            return Ok(upstream_error_answer(
                                state,
                                &x,
                                &backend,
                                last_upstream,
                                tried,
                            ));
                        }
                        Decision::ReturnToClient => {
                            return Ok(upstream_error_answer(
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
        return Ok(error_passthrough(state, &x, "exhausted", upstream, tried));
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

fn accounting(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    status: u16,
    attempts: u32,
) -> Accounting {
    Accounting {
        metrics: state.metrics.clone(),
        request_id: request_id(x),
        route: x.route().id.clone(),
        api: x.format.label(),
        requested_model: x.requested_model.clone(),
        model: x.routed_model.clone(),
        backend: backend.id.clone(),
        provider: backend.provider.label(),
        subject: x.identity.subject.clone(),
        status,
        started: x.started,
        attempts,
        team: x.team.clone(),
        span: x.span.clone(),
    }
}

fn request_id(x: &Exchange) -> String {
    x.headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Gives a 2xx upstream answer to the client, streamed, with usage tapped,
/// translated when the backend speaks another format.
async fn relay_answer(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    resp: Response<hyper::body::Incoming>,
    attempts: u32,
    prepared: Prepared,
) -> Response<ResponseBody> {
    let (parts, body) = resp.into_parts();
    let acct = accounting(state, x, backend, parts.status.as_u16(), attempts);
    let dialect = dialect_of(x.format);
    let upstream_dialect = prepared.upstream;
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut out_headers = client_headers(&parts.headers);
    let body: ResponseBody = if is_sse {
        let metrics = state.metrics.clone();
        let backend_id = backend.id.clone();
        let on_finish = Box::new(move |summary: wire::relay::RelaySummary| {
            if summary.malformed_events > 0 {
                metrics
                    .malformed_events
                    .get_or_create(&crate::metrics::BackendLabels {
                        backend: backend_id,
                    })
                    .inc_by(summary.malformed_events);
            }
            if let Some(at) = summary.first_byte_at {
                acct.first_byte(at);
            }
            acct.finish(Some(&summary.usage), summary.outcome.label(), true);
        });
        let idle = backend.timeouts.stream_idle;
        match prepared.translation {
            Some((t, session)) => {
                let translator = (t.stream)(session);
                wire::relay::Relay::translating(
                    body,
                    upstream_dialect,
                    translator,
                    dialect,
                    idle,
                    on_finish,
                )
                .boxed_unsync()
            }
            None if prepared.strip_usage_chunk => {
                let translator = Box::new(crate::translate::strip_usage::StripUsageChunk);
                wire::relay::Relay::translating(
                    body,
                    upstream_dialect,
                    translator,
                    dialect,
                    idle,
                    on_finish,
                )
                .boxed_unsync()
            }
            None => wire::relay::Relay::new(body, dialect, idle, on_finish).boxed_unsync(),
        }
    } else if let Some((t, session)) = prepared.translation {
        let mut resp =
            translated_json_answer(x, backend, body, acct, upstream_dialect, t, session).await;
        out_headers.remove(header::CONTENT_TYPE);
        for (name, value) in &out_headers {
            resp.headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
        return resp;
    } else {
        let on_end = Box::new(move |end: TapEnd| {
            let usage = end
                .body
                .as_deref()
                .and_then(|b| wire::relay::usage_from_json_response(dialect, b))
                .map(|(u, _)| u);
            acct.finish(
                usage.as_ref(),
                if end.completed {
                    "completed"
                } else {
                    "client_gone"
                },
                false,
            );
        });
        TapBody::new(body, USAGE_INSPECT_LIMIT, on_end).boxed_unsync()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = parts.status;
    out_headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    *resp.headers_mut() = out_headers;
    if is_sse {
        response::mark_streaming(&mut resp);
    }
    resp
}

/// The upstream's own error answer, returned to the client as it is (the
/// upstream speaks the client's dialect on same-format routes).
fn upstream_error_answer(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    upstream: Option<UpstreamError>,
    attempts: u32,
) -> Response<ResponseBody> {
    match upstream {
        Some(u) => {
            let acct = accounting(state, x, backend, u.status.as_u16(), attempts);
            acct.finish(None, "upstream_error", false);
            error_response_from(u, dialect_of(x.format))
        }
        None => {
            let err = RequestError::NoHealthyBackend {
                model: x.requested_model.clone(),
            };
            response::error(dialect_of(x.format), &err)
        }
    }
}

fn error_passthrough(
    state: &AppState,
    x: &Exchange,
    outcome: &'static str,
    u: UpstreamError,
    attempts: u32,
) -> Response<ResponseBody> {
    state
        .metrics
        .requests
        .get_or_create(&crate::metrics::RequestLabels {
            route: x.route().id.clone(),
            api: x.format.label(),
            model: x.routed_model.clone(),
            backend: "none".into(),
            status: u.status.as_u16(),
        })
        .inc();
    tracing::info!(
        target: "switchboard::access",
        route = %x.route().id,
        requested_model = %x.requested_model,
        model = %x.routed_model,
        status = u.status.as_u16(),
        outcome,
        attempts,
        latency_ms = x.started.elapsed().as_millis() as u64,
        "request finished"
    );
    error_response_from(u, dialect_of(x.format))
}

/// The upstream's error for the client: as it is when the upstream speaks
/// the client's dialect, otherwise re-shaped into it (§3.7).
fn error_response_from(u: UpstreamError, client: Dialect) -> Response<ResponseBody> {
    let mut headers = client_headers(&u.headers);
    let body = if u.dialect == client {
        u.body
    } else {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        translate_errors::to_client(client, u.status.as_u16(), &u.body)
    };
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    let mut resp = Response::new(response::full(body));
    *resp.status_mut() = u.status;
    *resp.headers_mut() = headers;
    resp
}

/// Reads a whole non-streaming upstream answer and translates it for the
/// client. Usage is read from the upstream's own body.
async fn translated_json_answer(
    x: &Exchange,
    backend: &BackendRuntime,
    body: hyper::body::Incoming,
    acct: Accounting,
    upstream: Dialect,
    t: crate::translate::Translator,
    session: crate::translate::Session,
) -> Response<ResponseBody> {
    let client = dialect_of(x.format);
    let limited = http_body_util::Limited::new(body, USAGE_INSPECT_LIMIT * 4);
    let read = tokio::time::timeout(backend.timeouts.request, limited.collect()).await;
    let bytes = match read {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) | Err(_) => {
            acct.finish(None, "upstream_error", false);
            let err = RequestError::Untranslatable(crate::translate::TranslateError::Upstream(
                "the upstream answer could not be read".into(),
            ));
            return response::error(client, &err);
        }
    };
    let usage = wire::relay::usage_from_json_response(upstream, &bytes).map(|(u, _)| u);
    let translated = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| crate::translate::TranslateError::Upstream(e.to_string()))
        .and_then(|v| (t.response)(&v, &session));
    match translated {
        Ok(v) => {
            acct.finish(usage.as_ref(), "completed", false);
            response::json(StatusCode::OK, v.to_string())
        }
        Err(e) => {
            tracing::warn!(backend = %backend.id, error = %e, "upstream answer could not be translated");
            acct.finish(usage.as_ref(), "upstream_error", false);
            response::error(client, &RequestError::Untranslatable(e))
        }
    }
}

/// count_tokens for a backend without a token-counting endpoint: the request
/// is translated as it would be sent and counted with the model's OpenAI
/// tokenizer ([`crate::tokens`]). The answer names the tokenizer in
/// `x-switchboard-tokenizer`, and carries `x-switchboard-estimate: true`
/// when the count is not exact (unknown tokenizer, images).
fn count_answer(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    provider_model: &str,
    attempts: u32,
) -> Result<Response<ResponseBody>, RequestError> {
    let request: serde_json::Value = serde_json::from_slice(x.json.bytes())
        .map_err(|e| RequestError::Internal(format!("re-parsing the request body: {e}")))?;
    let opts = crate::translate::TargetOptions::default();
    let chat = crate::translate::messages_to_chat::translate(&request, provider_model, &opts, 0)?;
    let count = crate::tokens::count_chat(&chat.body, provider_model);
    accounting(state, x, backend, 200, attempts).finish(None, "counted", false);
    let mut resp = response::json(
        StatusCode::OK,
        format!("{{\"input_tokens\":{}}}", count.tokens),
    );
    resp.headers_mut().insert(
        "x-switchboard-tokenizer",
        HeaderValue::from_static(count.encoding.name()),
    );
    if !count.exact {
        resp.headers_mut()
            .insert("x-switchboard-estimate", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// Answers from the built-in mock provider.
async fn mock_answer(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    provider_model: &str,
    attempts: u32,
) -> Response<ResponseBody> {
    if !backend.mock_latency.is_zero() {
        tokio::time::sleep(backend.mock_latency).await;
    }
    let dialect = dialect_of(x.format);
    let request: serde_json::Value =
        serde_json::from_slice(&x.json.with_string("model", provider_model))
            .unwrap_or(serde_json::Value::Null);
    if x.format == ApiFormat::CountTokens {
        let n = wire::mock::count_tokens(&request);
        let acct = accounting(state, x, backend, 200, attempts);
        acct.finish(None, "completed", false);
        return response::json(StatusCode::OK, format!("{{\"input_tokens\":{n}}}"));
    }
    let settings = wire::mock::MockReply {
        reply: backend.mock_reply.clone(),
    };
    let acct = accounting(state, x, backend, 200, attempts);
    let answer = if x.format == ApiFormat::Responses {
        match crate::translate::responses::mock::respond_responses(&request, &settings, unix_now())
        {
            Ok(a) => a.response,
            Err(e) => {
                acct.finish(None, "untranslatable", false);
                return response::error(dialect, &RequestError::Untranslatable(e.into()));
            }
        }
    } else {
        wire::mock::respond(dialect, &request, &settings)
    };
    match answer {
        wire::mock::MockResponse::Json(bytes) => {
            let usage = wire::relay::usage_from_json_response(dialect, &bytes).map(|(u, _)| u);
            acct.finish(usage.as_ref(), "completed", false);
            response::json(StatusCode::OK, bytes)
        }
        wire::mock::MockResponse::Sse(events) => {
            let stream = futures_util::stream::iter(
                events
                    .into_iter()
                    .map(|e| Ok::<_, std::convert::Infallible>(http_body::Frame::data(e))),
            );
            let body = http_body_util::StreamBody::new(stream);
            let on_finish = Box::new(move |summary: wire::relay::RelaySummary| {
                acct.finish(Some(&summary.usage), summary.outcome.label(), true);
            });
            let relay =
                wire::relay::Relay::new(body, dialect, backend.timeouts.stream_idle, on_finish);
            let mut resp = Response::new(relay.boxed_unsync());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            response::mark_streaming(&mut resp);
            resp
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
