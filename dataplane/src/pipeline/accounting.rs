//! Records what a finished request cost: metrics and one access-log line.
//!
//! For streamed answers this runs when the stream ends — or when the client
//! goes away — so usage seen before a disconnect is still counted.

use std::sync::Arc;

use tokio::time::Instant;

use crate::metrics::{
    BackendLabels, DurationLabels, Metrics, RequestLabels, StreamLabels, TokenLabels,
};
use crate::wire::usage::Usage;

/// The facts of one answered request, completed when its body ends.
pub struct Accounting {
    pub metrics: Arc<Metrics>,
    pub request_id: String,
    pub route: String,
    pub api: &'static str,
    pub requested_model: String,
    pub model: String,
    pub backend: String,
    pub provider: &'static str,
    pub subject: String,
    pub status: u16,
    pub started: Instant,
    pub attempts: u32,
    /// The caller's team, charged when the request finishes.
    pub team: Option<Arc<crate::teams::TeamContext>>,
    /// The request's trace span, completed when the request finishes.
    pub span: tracing::Span,
    /// The agent session, whose usage is counted too.
    pub session: Option<crate::sessions::Session>,
}

impl Accounting {
    /// Records usage and the request, and writes the access-log line.
    pub fn finish(self, usage: Option<&Usage>, outcome: &'static str, stream: bool) {
        if let Some(team) = &self.team {
            team.finish(&self.model, self.status, usage, self.started);
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
                    self.metrics
                        .tokens
                        .get_or_create(&TokenLabels {
                            route: self.route.clone(),
                            backend: self.backend.clone(),
                            provider: self.provider,
                            model: self.model.clone(),
                            kind,
                        })
                        .inc_by(value);
                }
            }
        }
        if stream {
            self.metrics
                .streams
                .get_or_create(&StreamLabels {
                    backend: self.backend.clone(),
                    outcome,
                })
                .inc();
        }
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                route: self.route.clone(),
                api: self.api,
                model: self.model.clone(),
                backend: self.backend.clone(),
                status: self.status,
            })
            .inc();
        let elapsed = self.started.elapsed();
        self.metrics
            .request_duration
            .get_or_create(&DurationLabels {
                route: self.route.clone(),
                api: self.api,
                outcome,
            })
            .observe(elapsed.as_secs_f64());
        let u = usage.copied().unwrap_or_default();
        tracing::info!(
            target: "switchboard::access",
            request_id = %self.request_id,
            route = %self.route,
            api = self.api,
            subject = %self.subject,
            team = self.team.as_ref().map_or("", |t| t.label.as_str()),
            session = self.session.as_ref().map_or("", |s| &*s.id),
            requested_model = %self.requested_model,
            model = %self.model,
            backend = %self.backend,
            provider = self.provider,
            status = self.status,
            outcome,
            stream,
            attempts = self.attempts,
            input_tokens = u.input_tokens,
            output_tokens = u.output_tokens,
            cache_read_tokens = u.cache_read_tokens,
            cache_write_tokens = u.cache_write_tokens,
            latency_ms = elapsed.as_millis() as u64,
            "request finished"
        );
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
