//! The runtime form of one backend (an `AIBackend`), built once per snapshot.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::uri::{Authority, Scheme};
use switchboard_proto as pb;

use crate::routing::CircuitBreaker;
use crate::translate::UpstreamFormat;
use crate::upstream::{Transport, Upstreams};

/// The API family a provider speaks, and how it authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI API.
    OpenAI,
    /// A server speaking OpenAI Chat Completions.
    OpenAICompatible,
    /// The built-in deterministic responder.
    Mock,
}

impl ProviderKind {
    /// Low-cardinality label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAI => "openai",
            ProviderKind::OpenAICompatible => "openai_compatible",
            ProviderKind::Mock => "mock",
        }
    }

    /// The wire format this provider speaks natively; `None` for the mock,
    /// which answers in whatever format the client speaks. Requests in
    /// another format are translated (see [`crate::translate::plan`]).
    pub fn native_format(self) -> Option<UpstreamFormat> {
        match self {
            ProviderKind::Mock => None,
            ProviderKind::Anthropic => Some(UpstreamFormat::Messages),
            ProviderKind::OpenAI | ProviderKind::OpenAICompatible => {
                Some(UpstreamFormat::ChatCompletions)
            }
        }
    }
}

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

/// Where a backend lives: scheme, authority and the `/v1` base path.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// Path up to and including the API version, e.g. `/v1` or `/proxy/v1`.
    pub api_base: String,
}

impl Endpoint {
    /// Parses a base URL. A path already ending in `/v1` is kept; otherwise
    /// `/v1` is appended (`https://api.openai.com` and
    /// `http://localhost:11434/v1` both work).
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid endpoint {url:?}: {e}"))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| format!("endpoint {url:?} has no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(format!("endpoint {url:?} must be http or https"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("endpoint {url:?} has no host"))?;
        let path = uri.path().trim_end_matches('/');
        let api_base = if path.ends_with("/v1") {
            path.to_string()
        } else {
            format!("{path}/v1")
        };
        Ok(Self {
            scheme,
            authority,
            api_base,
        })
    }

    /// The upstream URI for an API format, with an optional query string.
    pub fn uri(&self, format: ApiFormat, query: Option<&str>) -> Result<http::Uri, http::Error> {
        let mut path = format!("{}{}", self.api_base, format.path_suffix());
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            path.push('?');
            path.push_str(q);
        }
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
    }
}

/// Everything the request path needs about one backend.
pub struct BackendRuntime {
    /// `namespace/name`.
    pub id: String,
    /// Provider family.
    pub provider: ProviderKind,
    /// Upstream location (`None` for the mock provider).
    pub endpoint: Option<Endpoint>,
    /// The provider credential as a ready header value (sensitive).
    pub credential: Option<HeaderValue>,
    /// Routed name → provider model id. Empty with `serves_any`.
    pub models: HashMap<String, String>,
    /// The backend declared no models and serves any name unchanged.
    pub serves_any: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// `anthropic-version` sent when the client sent none.
    pub anthropic_version: HeaderValue,
    /// `anthropic-beta` flags forwarded; `None` forwards all.
    pub allowed_betas: Option<HashSet<String>>,
    /// `OpenAI-Organization`, if configured.
    pub openai_organization: Option<HeaderValue>,
    /// Mock provider reply (empty: echo).
    pub mock_reply: String,
    /// Mock provider latency before answering.
    pub mock_latency: Duration,
    /// How requests reach the provider (pooled HTTP client, or a test fake).
    pub transport: Arc<dyn Transport>,
    /// This backend's circuit breaker (kept across reloads).
    pub breaker: Arc<CircuitBreaker>,
}

impl std::fmt::Debug for BackendRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendRuntime")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
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
        let provider = match pb::ProviderKind::try_from(b.provider) {
            Ok(pb::ProviderKind::Anthropic) => ProviderKind::Anthropic,
            Ok(pb::ProviderKind::Openai) => ProviderKind::OpenAI,
            Ok(pb::ProviderKind::OpenaiCompatible) => ProviderKind::OpenAICompatible,
            Ok(pb::ProviderKind::Mock) => ProviderKind::Mock,
            // In the API and the snapshot, not yet in the request pipeline.
            Ok(pb::ProviderKind::Bedrock) => return Err(not_wired("Bedrock")),
            Ok(pb::ProviderKind::VertexAi) => return Err(not_wired("VertexAI")),
            Ok(pb::ProviderKind::Gemini) => return Err(not_wired("Gemini")),
            Ok(pb::ProviderKind::AzureOpenai) => return Err(not_wired("AzureOpenAI")),
            _ => return Err(format!("unsupported provider kind {}", b.provider)),
        };
        let endpoint = match provider {
            ProviderKind::Mock => None,
            _ => Some(Endpoint::parse(&b.endpoint)?),
        };
        let secret = match b.credential.as_ref().and_then(|c| c.source.as_ref()) {
            None => None,
            Some(pb::credential::Source::Value(v)) => Some(v.trim().to_string()),
            Some(pb::credential::Source::Env(name)) => Some(
                env(name)
                    .map(|v| v.trim().to_string())
                    .ok_or_else(|| format!("environment variable {name} is not set"))?,
            ),
        };
        let credential = match secret {
            None => None,
            Some(s) if s.is_empty() => return Err("the credential is empty".into()),
            Some(s) => {
                let text = match provider {
                    ProviderKind::Anthropic => s,
                    _ => format!("Bearer {s}"),
                };
                let mut v = HeaderValue::from_str(&text).map_err(|_| {
                    "the credential contains characters not allowed in a header".to_string()
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
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
            .collect::<HashMap<_, _>>();
        let timeouts = Timeouts::from_proto(b.timeouts.as_ref());
        let anthropic = b.anthropic.clone().unwrap_or_default();
        let version = if anthropic.version.is_empty() {
            "2023-06-01".to_string()
        } else {
            anthropic.version
        };
        let anthropic_version = HeaderValue::from_str(&version)
            .map_err(|_| format!("invalid anthropic version {version:?}"))?;
        let allowed_betas = (!anthropic.allowed_betas.is_empty())
            .then(|| anthropic.allowed_betas.into_iter().collect::<HashSet<_>>());
        let openai_organization = b
            .openai
            .as_ref()
            .map(|o| o.organization.as_str())
            .filter(|o| !o.is_empty())
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| "invalid OpenAI organization".to_string())?;
        let mock = b.mock.clone().unwrap_or_default();
        Ok(Self {
            id: b.id.clone(),
            provider,
            endpoint,
            credential,
            serves_any: models.is_empty(),
            models,
            timeouts,
            anthropic_version,
            allowed_betas,
            openai_organization,
            mock_reply: mock.reply,
            mock_latency: Duration::from_millis(mock.latency_ms),
            transport: upstreams.transport(timeouts.connect),
            breaker,
        })
    }
}

/// Why a backend of a provider the API accepts but the request pipeline
/// does not serve yet is refused.
fn not_wired(provider: &str) -> String {
    format!("provider {provider} is not served by this data plane yet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_appends_v1_unless_present() {
        let e = Endpoint::parse("https://api.openai.com").unwrap();
        assert_eq!(
            e.uri(ApiFormat::ChatCompletions, None).unwrap().to_string(),
            "https://api.openai.com/v1/chat/completions"
        );
        let e = Endpoint::parse("http://127.0.0.1:11434/v1/").unwrap();
        assert_eq!(
            e.uri(ApiFormat::Messages, Some("beta=true"))
                .unwrap()
                .to_string(),
            "http://127.0.0.1:11434/v1/messages?beta=true"
        );
        let e = Endpoint::parse("https://gw.example.com/anthropic").unwrap();
        assert_eq!(
            e.uri(ApiFormat::CountTokens, None).unwrap().to_string(),
            "https://gw.example.com/anthropic/v1/messages/count_tokens"
        );
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }
}
