//! The runtime form of one backend (an `AIBackend`), built once per snapshot.

use std::sync::Arc;
use std::time::Duration;

use switchboard_proto as pb;

use crate::providers::{BuildContext, Provider};
use crate::routing::CircuitBreaker;
use crate::upstream::{Transport, Upstreams};

/// The client-facing API of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFormat {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `POST /v1/responses` (OpenAI Responses API).
    Responses,
}

impl ApiFormat {
    /// Every format, in [`ApiFormat::index`] order.
    pub const ALL: [ApiFormat; 4] = [
        ApiFormat::ChatCompletions,
        ApiFormat::Messages,
        ApiFormat::CountTokens,
        ApiFormat::Responses,
    ];

    /// The format's position in [`ApiFormat::ALL`].
    pub fn index(self) -> usize {
        match self {
            ApiFormat::ChatCompletions => 0,
            ApiFormat::Messages => 1,
            ApiFormat::CountTokens => 2,
            ApiFormat::Responses => 3,
        }
    }

    /// Human name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ApiFormat::ChatCompletions => "OpenAI Chat Completions",
            ApiFormat::Messages => "Anthropic Messages",
            ApiFormat::CountTokens => "Anthropic count_tokens",
            ApiFormat::Responses => "OpenAI Responses",
        }
    }

    /// The API path below `/v1`.
    pub fn path_suffix(self) -> &'static str {
        match self {
            ApiFormat::ChatCompletions => "/chat/completions",
            ApiFormat::Messages => "/messages",
            ApiFormat::CountTokens => "/messages/count_tokens",
            ApiFormat::Responses => "/responses",
        }
    }

    /// The dialect the client speaks (errors, in-band events).
    pub fn dialect(self) -> crate::wire::Dialect {
        match self {
            ApiFormat::ChatCompletions | ApiFormat::Responses => crate::wire::Dialect::OpenAI,
            ApiFormat::Messages | ApiFormat::CountTokens => crate::wire::Dialect::Anthropic,
        }
    }

    /// Low-cardinality label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            ApiFormat::ChatCompletions => "chat_completions",
            ApiFormat::Messages => "messages",
            ApiFormat::CountTokens => "count_tokens",
            ApiFormat::Responses => "responses",
        }
    }
}

/// Per-attempt timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// Response headers of a streaming request.
    pub first_byte: Duration,
    /// Streaming: from response headers to the first data event.
    pub first_token: Duration,
    /// Longest silence inside a response body once it has started.
    pub stream_idle: Duration,
    /// Whole non-streaming exchange (headers and body).
    pub request: Duration,
    /// Longest duration of one streamed response.
    pub max_stream: Duration,
}

impl Timeouts {
    /// Default TCP + TLS connect timeout.
    pub const DEFAULT_CONNECT: Duration = Duration::from_secs(5);
    /// Default first-byte (response headers) timeout.
    pub const DEFAULT_FIRST_BYTE: Duration = Duration::from_secs(10);
    /// Default first-token timeout.
    pub const DEFAULT_FIRST_TOKEN: Duration = Duration::from_secs(10);
    /// Default stream idle timeout. Before a stream's first content event
    /// the first-token timeouts apply, so this only bounds silences inside
    /// an answer that has started (see `docs/routing.md`).
    pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(60);
    /// Default whole-exchange timeout of non-streaming requests.
    pub const DEFAULT_REQUEST: Duration = Duration::from_secs(600);
    /// Default longest stream.
    pub const DEFAULT_MAX_STREAM: Duration = Duration::from_secs(3600);

    /// Timeouts from the snapshot; zero or missing fields take the defaults.
    pub fn from_proto(t: Option<&pb::Timeouts>) -> Self {
        let t = t.copied().unwrap_or_default();
        let ms = |v: u64, default: Duration| {
            if v == 0 {
                default
            } else {
                Duration::from_millis(v)
            }
        };
        Self {
            connect: ms(t.connect_ms, Self::DEFAULT_CONNECT),
            first_byte: ms(t.first_byte_ms, Self::DEFAULT_FIRST_BYTE),
            first_token: ms(t.first_token_ms, Self::DEFAULT_FIRST_TOKEN),
            stream_idle: ms(t.stream_idle_ms, Self::DEFAULT_STREAM_IDLE),
            request: ms(t.request_ms, Self::DEFAULT_REQUEST),
            max_stream: ms(t.max_stream_ms, Self::DEFAULT_MAX_STREAM),
        }
    }
}

/// Everything the request path needs about one backend.
pub struct BackendRuntime {
    /// `namespace/name` (also its metric label).
    pub id: crate::metrics::Label,
    /// The provider: how requests to this backend are built and its answers read.
    pub provider: Arc<dyn Provider>,
    /// Routed name → provider model id. Empty with `serves_any`.
    pub models: crate::lookup::NameMap<String, String>,
    /// The backend declared no models and serves any name unchanged.
    pub serves_any: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// How requests reach the provider (pooled HTTP client, the Mock's
    /// in-process upstream, or a test fake).
    pub transport: Arc<dyn Transport>,
    /// This backend's circuit breaker (kept across reloads).
    pub breaker: Arc<CircuitBreaker>,
    /// What its error bodies must lose before they reach a client (its
    /// provider key, its internal URLs).
    pub error_redaction: crate::wire::redact::BackendRedaction,
}

impl std::fmt::Debug for BackendRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendRuntime")
            .field("id", &self.id)
            .field("provider", &self.provider.kind())
            .finish_non_exhaustive()
    }
}

impl BackendRuntime {
    /// The provider model id for a routed model name, or `None` when this
    /// backend does not serve it.
    pub fn provider_model<'a>(&'a self, routed: &'a str) -> Option<&'a str> {
        if let Some(m) = self.models.get(routed) {
            return Some(m.as_str());
        }
        self.serves_any.then_some(routed)
    }

    /// Builds the runtime backend from its snapshot form.
    pub fn build(
        b: &pb::Backend,
        upstreams: &Upstreams,
        breaker: Arc<CircuitBreaker>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let provider = crate::providers::build(b, &BuildContext { env, upstreams })?;
        let error_redaction = crate::wire::redact::BackendRedaction::new(
            crate::providers::secret(b, env)?.as_deref(),
            &b.endpoint,
        );
        let models = b
            .models
            .iter()
            .map(|m| {
                let provider_model = if m.provider_model.is_empty() {
                    m.name.clone()
                } else {
                    m.provider_model.clone()
                };
                (m.name.clone(), provider_model)
            })
            .collect::<crate::lookup::NameMap<_, _>>();
        let timeouts = Timeouts::from_proto(b.timeouts.as_ref());
        let transport = provider
            .transport()
            .unwrap_or_else(|| upstreams.transport(timeouts.connect));
        Ok(Self {
            id: b.id.as_str().into(),
            provider,
            serves_any: models.is_empty(),
            models,
            timeouts,
            transport,
            breaker,
            error_redaction,
        })
    }
}
