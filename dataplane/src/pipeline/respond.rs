//! Stage: respond. Shapes what the client receives from an upstream answer:
//! 2xx bodies relayed (streams event by event, with usage tapped) or
//! translated into the client's format; upstream errors returned in the
//! client's dialect; local count_tokens estimates. Every answered request is accounted exactly once
//! ([`Accounting`]).

use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;

use super::accounting::Accounting;
use super::send::UpstreamError;
use crate::error::RequestError;
use crate::pipeline::Exchange;
use crate::providers::Prepared;
use crate::providers::headers::client_headers;
use crate::response::{self, ResponseBody};
use crate::runtime::BackendRuntime;
use crate::state::AppState;
use crate::translate::TranslatedAnswer;
use crate::translate::errors as translate_errors;
use crate::wire;
use crate::wire::Dialect;

/// The accounting of `x` answered by `model` at `backend` (the model and
/// backend that answered are charged, labelled and logged).
pub fn accounting(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    model: &str,
    status: u16,
    attempts: u32,
) -> Accounting {
    let labels = &x.route().model_labels;
    Accounting {
        metrics: state.metrics.clone(),
        request_id: x.request_id(),
        route: x.route().id.clone(),
        api: x.format.label(),
        requested_model: x.requested_model.clone(),
        requested_label: labels.label(&x.requested_model).clone(),
        model: model.to_owned(),
        model_label: labels.label(model).clone(),
        backend: backend.id.clone(),
        provider: backend.provider.label(),
        subject: x.identity.subject.clone(),
        status,
        started: x.started,
        attempts,
        stream: x.stream,
        input_estimate: (x.json.bytes().len() as u64)
            .div_ceil(crate::teams::estimate::BYTES_PER_TOKEN),
        cut: state.cut.clone(),
        team: x.team.clone(),
        span: x.span.clone(),
        session: x.session.clone(),
        caller_key: x.caller_key.is_some(),
    }
}

/// Gives a 2xx upstream event stream to the client, event by event, with
/// usage tapped, translated when the backend speaks another format.
pub fn relay_stream(
    state: &AppState,
    x: &Exchange,
    started: super::attempt::Started,
) -> Response<ResponseBody> {
    let backend = started.backend;
    let acct = accounting(
        state,
        x,
        &backend,
        &started.model,
        started.parts.status.as_u16(),
        started.attempts,
    );
    let metrics = state.metrics.clone();
    let backend_id = backend.id.clone();
    let on_finish = Box::new(move |summary: wire::relay::RelaySummary| {
        count_malformed(&metrics, &backend_id, &summary);
        if let Some(at) = summary.first_byte_at {
            acct.first_byte(at);
        }
        acct.finish_stream(
            &summary.usage,
            summary.content_events,
            summary.outcome.label(),
        );
    });
    let relay = build_relay(
        state,
        x,
        &backend,
        started.prepared,
        started.body,
        on_finish,
    );
    let relay = super::keepalive::KeepAlive::new(relay, x.format.dialect(), state.stream_keepalive);
    stream_response(&started.parts.headers, relay.boxed_unsync())
}

/// Counts the malformed events a relay dropped.
pub fn count_malformed(
    metrics: &crate::metrics::Metrics,
    backend: &str,
    summary: &wire::relay::RelaySummary,
) {
    if summary.malformed_events > 0 {
        metrics
            .malformed_events
            .get_or_create(&crate::metrics::BackendLabels {
                backend: backend.into(),
            })
            .inc_by(summary.malformed_events);
    }
}

/// How long the upstream of a client that hung up is read on, to learn
/// the usage it reports at the end (see `docs/teams.md`).
pub const HANGUP_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Most upstream bytes read after a hang-up.
pub const HANGUP_DRAIN_BYTES: u64 = 1 << 20;

/// The relay of one upstream stream for `x`'s client: byte for byte, or
/// through the candidate's stream translator. When the client hangs up
/// first, the upstream is read on briefly for its usage.
pub fn build_relay<B>(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    prepared: Prepared,
    body: B,
    on_finish: wire::relay::OnFinish,
) -> wire::relay::Relay<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::response::BoxError>,
{
    let dialect = x.format.dialect();
    let limits = wire::relay::StreamLimits {
        idle: backend.timeouts.stream_idle,
        max_duration: backend.timeouts.max_stream,
    };
    let drain = wire::relay::HangupDrain {
        time: HANGUP_DRAIN_TIME,
        bytes: HANGUP_DRAIN_BYTES,
        unless: state.cut.clone(),
    };
    // Counted until the relay has reported (it may read on after a
    // hang-up), so shutdown waits for its record and charge.
    let pending = state.limiter.pending();
    let on_finish: wire::relay::OnFinish = Box::new(move |summary| {
        on_finish(summary);
        drop(pending);
    });
    let relay = match prepared.translation {
        Some((t, session)) => wire::relay::Relay::translating(
            body,
            prepared.upstream,
            (t.stream)(session),
            dialect,
            limits,
            on_finish,
        ),
        None if prepared.strip_usage_chunk => wire::relay::Relay::translating(
            body,
            prepared.upstream,
            Box::new(crate::translate::strip_usage::StripUsageChunk),
            dialect,
            limits,
            on_finish,
        ),
        None => wire::relay::Relay::new(body, dialect, limits, on_finish),
    };
    relay.draining_on_hangup(drain)
}

/// A streaming response: the provider headers the client may see, SSE
/// content type, no buffering by proxies in front; the events of a burst
/// written together ([`super::coalesce`]).
pub fn stream_response(upstream: &http::HeaderMap, body: ResponseBody) -> Response<ResponseBody> {
    let body = super::coalesce::Coalesce::new(body).boxed_unsync();
    let mut out_headers = client_headers(upstream);
    out_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    let mut resp = Response::new(body);
    *resp.headers_mut() = out_headers;
    response::mark_streaming(&mut resp);
    resp
}

/// Gives a whole 2xx upstream answer to the client: as it is when the
/// backend speaks the client's format, translated otherwise. Usage is read
/// from the upstream's own body (by the translation, when it reads it on
/// the way).
#[allow(clippy::too_many_arguments)]
pub fn whole_answer(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    model: &str,
    parts: http::response::Parts,
    body: bytes::Bytes,
    attempts: u32,
    prepared: Prepared,
) -> Response<ResponseBody> {
    let mut acct = accounting(state, x, backend, model, parts.status.as_u16(), attempts);
    let translated = prepared
        .translation
        .map(|(t, session)| (t.response)(&body, &session));
    // Read from the upstream's body, unless the translation read it already.
    let usage = match &translated {
        Some(Ok(TranslatedAnswer {
            usage: Some(usage), ..
        })) => Some(*usage),
        _ => wire::relay::usage_from_whole_body(prepared.upstream, &body).map(|(u, _)| u),
    };
    // The answer's headers: the provider's that the client may see, with
    // the content type of what is sent.
    let mut headers = client_headers(&parts.headers);
    let mut resp = match translated {
        Some(translated) => {
            match translated {
                Ok(answer) => {
                    acct.finish(usage.as_ref(), "completed", false);
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    Response::new(response::full(answer.body))
                }
                Err(e) => {
                    tracing::warn!(backend = %backend.id, error = %e, "upstream answer could not be translated");
                    // Recorded with the status the client gets, not the upstream's 200.
                    let err = RequestError::Untranslatable(e);
                    acct.status = err.status().as_u16();
                    acct.finish(usage.as_ref(), "untranslatable", false);
                    return response::error(x.format.dialect(), &err);
                }
            }
        }
        None => {
            acct.finish(usage.as_ref(), "completed", false);
            let mut resp = Response::new(response::full(body));
            *resp.status_mut() = parts.status;
            resp
        }
    };
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    *resp.headers_mut() = headers;
    resp
}

/// The upstream's own error answer, returned to the client as it is (the
/// upstream speaks the client's dialect on same-format routes).
pub fn upstream_error_answer(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    model: &str,
    upstream: Option<UpstreamError>,
    attempts: u32,
) -> Response<ResponseBody> {
    match upstream {
        Some(u) => {
            let acct = accounting(state, x, backend, model, u.status.as_u16(), attempts);
            acct.finish(None, "upstream_error", false);
            error_response_from(u, x.format.dialect())
        }
        None => {
            let err = RequestError::NoHealthyBackend {
                model: x.requested_model.clone(),
            };
            response::error(x.format.dialect(), &err)
        }
    }
}

pub fn error_passthrough(
    state: &AppState,
    x: &Exchange,
    outcome: &'static str,
    u: UpstreamError,
    attempts: u32,
) -> Response<ResponseBody> {
    state.metrics.count_request(crate::metrics::RequestLabels {
        route: x.route().id.clone(),
        api: x.format.label(),
        requested_model: x.route().model_labels.label(&x.requested_model).to_owned(),
        model: x.route().model_labels.label(&x.routed_model).to_owned(),
        backend: "none".into(),
        status: u.status.as_u16(),
    });
    tracing::info!(
        target: "switchboard::access",
        request_id = %x.request_id(),
        route = %x.route().id,
        team = x.team.as_ref().map_or("", |t| t.label.as_str()),
        session = x.session.as_ref().map_or("", |s| &*s.id),
        requested_model = %super::accounting::for_log(&x.requested_model),
        model = %super::accounting::for_log(&x.routed_model),
        status = u.status.as_u16(),
        outcome,
        stream = x.stream,
        attempts,
        byok = x.caller_key.is_some(),
        latency_ms = x.started.elapsed().as_millis() as u64,
        "request finished"
    );
    error_response_from(u, x.format.dialect())
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

/// count_tokens for a backend without a token-counting endpoint: the request
/// is translated as it would be sent and counted with the model's OpenAI
/// tokenizer ([`crate::tokens`]). The answer names the tokenizer in
/// `x-switchboard-tokenizer`, and carries `x-switchboard-estimate: true`
/// when the count is not exact (unknown tokenizer, images).
pub fn count_answer(
    state: &AppState,
    x: &Exchange,
    backend: &BackendRuntime,
    model: &str,
    provider_model: &str,
    attempts: u32,
) -> Result<Response<ResponseBody>, RequestError> {
    let opts = crate::translate::TargetOptions::default();
    let chat =
        crate::translate::messages_to_chat::translate_json(&x.json, provider_model, &opts, 0)?;
    let body: serde_json::Value = serde_json::from_slice(&chat.body)
        .map_err(|e| RequestError::Internal(format!("re-parsing the translated request: {e}")))?;
    let count = crate::tokens::count_chat(&body, provider_model);
    accounting(state, x, backend, model, 200, attempts).finish(None, "counted", false);
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
