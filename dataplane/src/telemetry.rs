//! Logging setup and the optional OTLP trace exporter.
//!
//! With `--otlp-endpoint`, every API request gets one span named after the
//! GenAI semantic conventions (`chat <model>`) carrying
//! `gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.model`,
//! `gen_ai.provider.name`, `gen_ai.usage.input_tokens`,
//! `gen_ai.usage.output_tokens`, `http.response.status_code` and the
//! gateway's route, team and backend; spans go to an OTLP/gRPC collector in
//! batches. Without it no request span is created at all, so logs look the
//! same as before.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::app::LogFormat;
use crate::log_writer::{self, FlushGuard};
use crate::wire::usage::Usage;

static TRACING_REQUESTS: OnceLock<bool> = OnceLock::new();

/// Target of request spans; the only spans exported.
const REQUEST_TARGET: &str = "switchboard::request";

/// Whether request spans are created (an exporter is installed).
pub fn request_spans_enabled() -> bool {
    TRACING_REQUESTS.get().copied().unwrap_or(false)
}

/// Keeps the exporter alive; [`Telemetry::shutdown`] flushes pending spans.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            eprintln!("switchboard-dataplane: flushing traces failed: {e}");
        }
    }
}

/// Installs the global subscriber: log lines to stderr in `format`, and
/// with `otlp_endpoint` (e.g. `http://collector:4317`) an OTLP trace
/// exporter. Must run inside the tokio runtime.
///
/// Lines reach stderr through a writer thread (see [`crate::log_writer`]):
/// keep the returned guard until the end of `main` and drop it last, which
/// writes the lines still buffered.
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<(Telemetry, FlushGuard)> {
    let (writer, guard) =
        log_writer::non_blocking(std::io::stderr(), log_writer::DEFAULT_CAPACITY)?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (provider, otel) = match otlp_endpoint {
        None => (None, None),
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| {
                    anyhow::anyhow!("configuring the OTLP exporter for {endpoint}: {e}")
                })?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("switchboard-dataplane")
                        .build(),
                )
                .build();
            // Only request spans are exported: not the spans of the HTTP/2 and gRPC
            // libraries (the exporter's own traffic would feed back into it).
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("switchboard"))
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    m.target() == REQUEST_TARGET
                }));
            let _ = TRACING_REQUESTS.set(true);
            (Some(provider), Some(layer))
        }
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    match format {
        LogFormat::Json => {
            // Access lines skip `tracing`'s dispatch (see `pipeline::access_line`).
            crate::pipeline::access_line::write_json_to(writer.clone());
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .event_format(crate::log_json::JsonLines)
                        .with_writer(writer),
                )
                .try_init()?
        }
        LogFormat::Text => {
            // Colours only on a terminal (never in log files or collectors), and never with NO_COLOR.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none();
            registry.with(text_layer(writer, ansi)).try_init()?
        }
    }
    Ok((Telemetry { provider }, guard))
}

/// The text-format log layer writing to `writer`: every field value has its
/// control characters escaped ([`crate::log_fields`]), so a client-chosen
/// value cannot start a fake line; `ansi` turns colours on.
pub fn text_layer<S, W>(writer: W, ansi: bool) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(crate::log_fields::EscapedFields)
        .with_ansi(ansi)
        .with_writer(writer)
}

/// The span of one API request, named `<operation> <model>` (disabled
/// unless an exporter is installed).
pub fn request_span(operation: &'static str, route: &str, model: &str) -> Span {
    if !request_spans_enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: REQUEST_TARGET,
        "gen_ai.request",
        otel.name = %format!("{operation} {model}"),
        otel.kind = "server",
        gen_ai.operation.name = operation,
        gen_ai.request.model = %model,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.provider.name = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        switchboard.route = %route,
        switchboard.team = tracing::field::Empty,
        switchboard.backend = tracing::field::Empty,
        switchboard.session = tracing::field::Empty,
    )
}

/// Records how a request that reached a backend ended.
pub fn record_finish(
    span: &Span,
    backend: &str,
    provider: &str,
    model: &str,
    status: u16,
    usage: Option<&Usage>,
) {
    span.record("switchboard.backend", backend);
    span.record("gen_ai.provider.name", provider);
    span.record("gen_ai.response.model", model);
    // Integers as i64: OpenTelemetry has no unsigned attribute type.
    span.record("http.response.status_code", i64::from(status));
    if let Some(u) = usage {
        span.record(
            "gen_ai.usage.input_tokens",
            i64::try_from(u.total_input()).unwrap_or(i64::MAX),
        );
        span.record(
            "gen_ai.usage.output_tokens",
            i64::try_from(u.output_tokens).unwrap_or(i64::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Value;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    #[test]
    fn request_spans_carry_gen_ai_attributes() {
        let _ = TRACING_REQUESTS.set(true);
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = request_span("chat", "default/main", "claude-sonnet-4");
            span.record("switchboard.team", "payments");
            let usage = Usage {
                input_tokens: 10,
                output_tokens: 5,
                cache_read_tokens: 2,
                ..Usage::default()
            };
            record_finish(
                &span,
                "default/anthropic",
                "anthropic",
                "claude-sonnet-4",
                200,
                Some(&usage),
            );
        });
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.name, "chat claude-sonnet-4");
        let attr = |k: &str| {
            s.attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(attr("gen_ai.operation.name"), Some(Value::from("chat")));
        assert_eq!(
            attr("gen_ai.request.model"),
            Some(Value::from("claude-sonnet-4"))
        );
        assert_eq!(attr("gen_ai.provider.name"), Some(Value::from("anthropic")));
        assert_eq!(attr("gen_ai.usage.input_tokens"), Some(Value::I64(12)));
        assert_eq!(attr("gen_ai.usage.output_tokens"), Some(Value::I64(5)));
        assert_eq!(attr("http.response.status_code"), Some(Value::I64(200)));
        assert_eq!(attr("switchboard.team"), Some(Value::from("payments")));
    }
}
