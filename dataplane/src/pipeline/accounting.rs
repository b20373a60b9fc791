//! Records what a finished request cost: metrics and one access-log line.
//!
//! For streamed answers this runs when the stream ends — or when the client
//! goes away (after the upstream was read on briefly for its usage), or the
//! server cuts it at shutdown — and what was not reported is estimated
//! ([`stream_usage`]), so a request that reached a backend is never charged
//! zero.

use std::sync::Arc;

use crate::metrics::Label;

use super::access_line::AccessLine;

use tokio::time::Instant;

use crate::metrics::{
    BackendLabels, DurationLabels, Metrics, RequestLabels, StreamLabels, TokenLabels,
};
use crate::wire::usage::Usage;

/// The facts of one answered request, completed when its body ends.
pub struct Accounting {
    pub metrics: Arc<Metrics>,
    pub request_id: String,
    pub route: Label,
    pub api: &'static str,
    /// The model the client asked for (as sent; logs only).
    pub requested_model: String,
    /// Its metric label ([`crate::runtime::model_labels`]).
    pub requested_label: Label,
    /// The model that answered: the backend reference's `model`, else the
    /// routed name. Priced, logged and labelled.
    pub model: String,
    /// Its metric label.
    pub model_label: Label,
    pub backend: Label,
    pub provider: &'static str,
    pub subject: Arc<str>,
    pub status: u16,
    pub started: Instant,
    pub attempts: u32,
    /// The client asked for a stream.
    pub stream: bool,
    /// Input tokens the request is expected to have (its size), charged
    /// when a stream ends before the upstream reported its usage.
    pub input_estimate: u64,
    /// Set while the server cuts what still runs at the end of shutdown.
    pub cut: Arc<std::sync::atomic::AtomicBool>,
    /// The caller's team, charged when the request finishes.
    pub team: Option<Arc<crate::teams::TeamContext>>,
    /// The request's trace span, completed when the request finishes.
    pub span: tracing::Span,
    /// The agent session, whose usage is counted too.
    pub session: Option<crate::sessions::Session>,
    /// The upstream request carried the caller's own provider key (logged
    /// as `byok=true`; the key itself never is).
    pub caller_key: bool,
}

/// The usage charged for a stream: what the upstream reported, and where
/// the stream ended before the upstream reported all of it (the client hung
/// up, the stream was cut or broke), an estimate: output tokens at least
/// one per content event relayed, input tokens from the request's size when
/// none were reported. Returns whether it is an estimate.
pub fn stream_usage(
    reported: &Usage,
    content_events: u64,
    input_estimate: u64,
    completed: bool,
) -> (Usage, bool) {
    let mut u = *reported;
    if completed && u.total_input() + u.output_tokens > 0 {
        return (u, false);
    }
    let mut estimated = false;
    if u.output_tokens < content_events {
        u.output_tokens = content_events;
        estimated = true;
    }
    if u.total_input() == 0 && input_estimate > 0 {
        u.input_tokens = input_estimate;
        estimated = true;
    }
    (u, estimated)
}

impl Accounting {
    /// Records a streamed answer that ended with `outcome` (see
    /// [`stream_usage`] for what is charged).
    pub fn finish_stream(self, reported: &Usage, content_events: u64, outcome: &'static str) {
        let (usage, estimated) = stream_usage(
            reported,
            content_events,
            self.input_estimate,
            outcome == "completed",
        );
        self.record(Some(&usage), outcome, true, estimated);
    }

    /// Records usage and the request, and writes the access-log line.
    /// `streamed`: the answer was an event stream (counted in `streams_total`).
    pub fn finish(self, usage: Option<&Usage>, outcome: &'static str, streamed: bool) {
        self.record(usage, outcome, streamed, false);
    }

    fn record(self, usage: Option<&Usage>, outcome: &'static str, streamed: bool, estimated: bool) {
        // Dropped by the server at the end of its shutdown grace period,
        // not by the client.
        let outcome =
            if outcome == "client_gone" && self.cut.load(std::sync::atomic::Ordering::SeqCst) {
                "shutdown"
            } else {
                outcome
            };
        if let Some(team) = &self.team {
            team.finish(
                &self.model,
                &self.model_label,
                self.status,
                usage,
                self.started,
            );
        }
        if let Some(s) = &self.session {
            let team = self.team.as_ref().map_or("", |t| t.label.as_str());
            s.record(&self.route, team, usage);
        }
        crate::telemetry::record_finish(
            &self.span,
            &self.backend,
            self.provider,
            &self.model,
            self.status,
            usage,
        );
        if let Some(u) = usage {
            for (kind, value) in [
                ("input", u.input_tokens),
                ("output", u.output_tokens),
                ("cache_read", u.cache_read_tokens),
                ("cache_write", u.cache_write_tokens),
                ("reasoning", u.reasoning_tokens),
            ] {
                if value > 0 {
                    self.metrics.count_tokens(
                        TokenLabels {
                            route: self.route.clone(),
                            backend: self.backend.clone(),
                            provider: self.provider,
                            model: self.model_label.clone(),
                            kind,
                        },
                        value,
                    );
                }
            }
        }
        if streamed {
            self.metrics
                .streams
                .get_or_create(&StreamLabels {
                    backend: self.backend.clone(),
                    outcome,
                })
                .inc();
        }
        self.metrics.count_request(RequestLabels {
            route: self.route.clone(),
            api: self.api,
            requested_model: self.requested_label.clone(),
            model: self.model_label.clone(),
            backend: self.backend.clone(),
            status: self.status,
        });
        let elapsed = self.started.elapsed();
        self.metrics.observe_duration(
            DurationLabels {
                route: self.route.clone(),
                api: self.api,
                outcome,
            },
            elapsed.as_secs_f64(),
        );
        let u = usage.copied().unwrap_or_default();
        let requested_model = for_log(&self.requested_model);
        let model = for_log(&self.model);
        AccessLine {
            request_id: &self.request_id,
            route: &self.route,
            api: self.api,
            subject: &self.subject,
            team: self.team.as_ref().map_or("", |t| t.label.as_str()),
            session: self.session.as_ref().map_or("", |s| &*s.id),
            requested_model: &requested_model,
            model: &model,
            backend: &self.backend,
            provider: self.provider,
            status: self.status,
            outcome,
            stream: self.stream,
            attempts: self.attempts,
            byok: self.caller_key,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
            usage_estimated: estimated,
            latency_ms: elapsed.as_millis() as u64,
        }
        .log();
    }

    /// Records the time to the first streamed byte.
    pub fn first_byte(&self, at: Instant) {
        self.metrics
            .time_to_first_token
            .get_or_create(&BackendLabels {
                backend: self.backend.clone(),
            })
            .observe(at.saturating_duration_since(self.started).as_secs_f64());
        if let Some(team) = &self.team {
            team.first_byte(self.started, at);
        }
    }
}

/// Longest model name written to a log line; longer ones are cut (with `…`).
const LOG_MODEL_MAX: usize = 256;

/// A client-chosen name, cut for logs.
pub fn for_log(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= LOG_MODEL_MAX {
        return name.into();
    }
    let mut end = LOG_MODEL_MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end]).into()
}
