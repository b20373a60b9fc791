//! Providers: everything the data plane knows about one kind of upstream,
//! behind one interface, [`Provider`], with one module per provider.
//!
//! The pipeline's attempt stage never asks which provider a backend is: for
//! every candidate it calls, in this order,
//!
//! 1. [`Provider::plan`]: how a client format is served (passed through,
//!    translated to the provider's native format by [`crate::translate`],
//!    estimated locally, or not at all);
//! 2. [`Provider::prepare`]: the body in that native format and how its
//!    answer must be read ([`Prepared`]); the default translates with
//!    [`prepare::translate`] and the provider's [`Provider::target_options`];
//! 3. [`Provider::request`] once per try (a retry signs again): the whole
//!    upstream HTTP request — URL, credential, headers, final body shape —
//!    and an [`Answer`] that decodes the 2xx answer into the translation
//!    layer's events: SSE in [`Prepared::upstream`]'s dialect for streams,
//!    a JSON body in the native format for whole answers;
//! 4. on a non-2xx answer, [`Provider::classify`] (the failover class) and
//!    [`Provider::error_answer`] (the error in the native dialect, so the
//!    client's error translation applies as for any provider);
//! 5. usage is read by the relay and the respond stage from the decoded
//!    answer (Anthropic or OpenAI usage fields), so a provider extracts
//!    usage by decoding its answers faithfully.
//!
//! Besides, [`Provider::betas`] says which `anthropic-beta` flags it
//! forwards (body fields tied to a beta are stripped where the provider
//! builds its body), [`Provider::accepts_prefill`] whether a broken stream
//! can be continued from it with an assistant prefill, [`Provider::transport`]
//! lets a provider bring its own transport (the Mock's is in-process), and
//! [`Provider::emulate`] is the provider's upstream as the Mock plays it:
//! the exact wire answers a real upstream would give, so offline examples
//! and tests run the provider's real decoding.
//!
//! | module | provider | native format | notes |
//! |---|---|---|---|
//! | [`anthropic`] | `Anthropic` | Messages | `x-api-key`, `anthropic-version`, betas as a header |
//! | [`openai`] | `OpenAI` | Chat Completions (Responses passed through) | bearer key, organization |
//! | [`openai_compatible`] | `OpenAICompatible` | Chat Completions | `max_tokens` instead of `max_completion_tokens` |
//! | [`bedrock`] | `Bedrock` | Messages, shaped into InvokeModel or Converse | SigV4 or API key, event-stream answers |
//! | [`vertex`] | `VertexAI` | Messages, shaped into `rawPredict` (Claude) or `generateContent` (Gemini) | OAuth2 bearer token, Gemini SSE decoded |
//! | [`gemini`] | `Gemini` | Messages, shaped into `generateContent` | `x-goog-api-key`, Gemini SSE decoded ([`sse_body`]) |
//! | [`azure_openai`] | `AzureOpenAI` | Chat Completions (Responses passed through where served) | `api-key` or Entra bearer token, v1 or deployment URLs |
//! | [`mock`] | `Mock` | the client's, or the one it emulates | in-process transport |
//!
//! # Adding a provider
//!
//! 1. A module implementing [`Provider`]: its settings read from the
//!    snapshot in its own constructor, [`Provider::plan`] and
//!    [`Provider::prepare`] (reuse [`prepare::translate`] towards the
//!    nearest [`crate::translate::UpstreamFormat`], then shape the final
//!    body; keep what the answer needs in [`Prepared::state`]),
//!    [`Provider::request`] with its [`Answer`] (decode streams into SSE of
//!    [`Prepared::upstream`]'s dialect, e.g. with a
//!    [`crate::wire::eventstream::FrameTranslator`] or a
//!    [`crate::translate::StreamTranslator`]), [`Provider::classify`] and
//!    [`Provider::error_answer`] when its errors are not Anthropic's or
//!    OpenAI's, and [`Provider::emulate`] so a Mock can stand in for it.
//! 2. One arm in [`build`] and one in [`mock`]'s `emulated` (the Mock's
//!    `emulate` setting), the variant of [`ProviderKind`], the proto enum
//!    and the API's `Provider` enum (with its settings block).
//! 3. Golden fixtures: `testdata/<provider>/<case>.in.json` for the upstream
//!    requests it builds (`golden_tests.rs`), and translation fixtures under
//!    `crate::translate` for any new format.
//!
//! Nothing in the pipeline changes. Bedrock is the worked example of a
//! provider whose wire format is none of the translation tables': it
//! translates to Messages in `prepare`, shapes InvokeModel or Converse
//! bodies there, signs in `request`, and turns event-stream answers into
//! Anthropic SSE in its `Answer`.

pub mod anthropic;
pub mod azure_openai;
pub mod bedrock;
pub mod endpoint;
pub mod gemini;
pub mod headers;
pub mod mock;
pub mod openai;
pub mod openai_compatible;
pub mod prepare;
pub mod sse_body;
pub mod vertex;

#[cfg(test)]
mod golden_tests;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use switchboard_proto as pb;

use crate::error::RequestError;
use crate::routing::{AttemptOutcome, classify_status_body};
use crate::runtime::ApiFormat;
use crate::translate::{Plan, TargetOptions};
use crate::upstream::{Transport, UpstreamBody};

pub use endpoint::Endpoint;
pub use prepare::{ClientCall, Prepared};

/// A boxed, sendable future borrowing from its provider.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The provider family of a backend (its label in metrics and logs).
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
    /// Amazon Bedrock Runtime.
    Bedrock,
    /// Google Vertex AI.
    VertexAi,
    /// The Gemini API.
    Gemini,
    /// Azure OpenAI.
    AzureOpenAI,
}

impl ProviderKind {
    /// Low-cardinality label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAI => "openai",
            ProviderKind::OpenAICompatible => "openai_compatible",
            ProviderKind::Mock => "mock",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::VertexAi => "vertex_ai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::AzureOpenAI => "azure_openai",
        }
    }
}

/// Why no upstream request could be made for a try. The try fails like a
/// connection error: the backend's breaker counts it and the chain moves
/// on; the client never sees this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The upstream URI could not be built.
    #[error("invalid upstream URI: {0}")]
    Uri(String),
    /// The credential could not be obtained or applied.
    #[error("credentials: {0}")]
    Credentials(String),
}

/// One try's upstream request and the decoder of its answer.
pub struct Outgoing {
    /// The request to send.
    pub request: Request<Full<Bytes>>,
    /// How its 2xx answer is read.
    pub answer: Box<dyn Answer>,
}

impl Outgoing {
    /// A POST of `body` to `uri` with `headers`, its answer read as SSE in
    /// the prepared dialect or a whole JSON body ([`SseAnswer`]).
    pub fn sse(uri: http::Uri, headers: HeaderMap, body: Bytes) -> Self {
        Outgoing {
            request: post(uri, headers, body),
            answer: Box::new(SseAnswer),
        }
    }
}

/// A POST of `body` to `uri` with `headers`.
pub fn post(uri: http::Uri, headers: HeaderMap, body: Bytes) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    req
}

/// Decodes a 2xx answer into what the translation layer reads: SSE in the
/// prepared dialect, or a whole JSON body in the native format.
pub trait Answer: Send {
    /// Whether a 2xx answer with these headers is a stream.
    fn is_stream(&self, headers: &HeaderMap) -> bool;

    /// The stream as SSE bytes.
    fn stream(self: Box<Self>, headers: &HeaderMap, body: UpstreamBody) -> UpstreamBody;

    /// A whole answer in the native format; an error means the answer
    /// could not be read (the client gets a 502).
    fn whole(
        self: Box<Self>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Bytes, crate::translate::TranslateError>;
}

/// The answer of an SSE provider: streams and bodies as they are.
pub struct SseAnswer;

impl Answer for SseAnswer {
    fn is_stream(&self, headers: &HeaderMap) -> bool {
        is_sse(headers)
    }

    fn stream(self: Box<Self>, _headers: &HeaderMap, body: UpstreamBody) -> UpstreamBody {
        body
    }

    fn whole(
        self: Box<Self>,
        _headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Bytes, crate::translate::TranslateError> {
        Ok(body)
    }
}

/// Whether a response is a Server-Sent Events stream (media types are
/// case-insensitive: `Text/Event-Stream; charset=utf-8` is one).
pub fn is_sse(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// A request as the Mock plays a provider's upstream: the path and body the
/// provider built, and how the Mock answers.
pub struct EmulatedRequest<'a> {
    /// Path and query of the upstream request.
    pub path: &'a str,
    /// Its body.
    pub body: &'a [u8],
    /// The Mock's answer text.
    pub reply: &'a crate::wire::mock::MockReply,
    /// Answer with this error status instead (the Mock's `failOn` matched).
    pub fail: Option<StatusCode>,
}

/// One kind of upstream (see the module docs for the order of calls).
pub trait Provider: Send + Sync {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// Low-cardinality label for metrics and logs.
    fn label(&self) -> &'static str {
        self.kind().label()
    }

    /// How requests in `client` format are served.
    fn plan(&self, client: ApiFormat) -> Plan;

    /// Settings of this provider that change translated requests.
    fn target_options(&self) -> TargetOptions {
        TargetOptions {
            default_max_tokens: crate::translate::DEFAULT_MAX_TOKENS,
            ..TargetOptions::default()
        }
    }

    /// The body for `model` in the native format and how its answer is read.
    fn prepare(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        prepare::translate(call, model, plan, &self.target_options())
    }

    /// The upstream request of one try.
    fn request<'a>(
        &'a self,
        call: &'a ClientCall<'a>,
        prepared: &'a Prepared,
    ) -> BoxFuture<'a, Result<Outgoing, ProviderError>>;

    /// The failover class of a non-2xx answer.
    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptOutcome {
        classify_status_body(status, body, headers)
    }

    /// A non-2xx answer as an error of the native dialect (status, headers,
    /// body); SSE providers' errors already are.
    fn error_answer(
        &self,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        (status, headers, body)
    }

    /// The `anthropic-beta` flags forwarded for a client's headers.
    fn betas(&self, client: &HeaderMap) -> Vec<String>;

    /// Whether a stream of this request can be continued with an assistant
    /// prefill of the text already sent.
    fn accepts_prefill(&self, prepared: &Prepared) -> bool {
        prepared.upstream == crate::wire::Dialect::Anthropic
    }

    /// The transport this provider brings (`None`: the pooled HTTP client).
    fn transport(&self) -> Option<Arc<dyn Transport>> {
        None
    }

    /// The answer this provider's upstream would give, as the Mock plays
    /// it; `None` for a request it does not know (or no emulation).
    fn emulate(&self, _req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
        None
    }

    /// Whether requests carry a provider credential (for `/config`).
    fn has_credential(&self) -> bool;

    /// Where a caller's own provider key (`docs/byok.md`) goes in this
    /// provider's requests; `None` (the default) when its credential is not
    /// an API key a caller could hold (Bedrock's AWS credentials): such
    /// backends are skipped for requests that carry a caller's key.
    fn caller_key_slot(&self) -> Option<crate::byok::KeySlot> {
        None
    }
}

/// What building a provider may need besides the backend's snapshot.
pub struct BuildContext<'a> {
    /// The data plane's environment (standalone credentials, IRSA, Pod Identity).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The upstream transports and TLS roots (credential exchanges use them).
    pub upstreams: &'a crate::upstream::Upstreams,
}

/// Builds the provider of a backend from its snapshot form.
pub fn build(b: &pb::Backend, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, String> {
    let credential = secret(b, ctx.env)?;
    Ok(match pb::ProviderKind::try_from(b.provider) {
        Ok(pb::ProviderKind::Anthropic) => {
            Arc::new(anthropic::Anthropic::from_proto(b, credential)?)
        }
        Ok(pb::ProviderKind::Openai) => Arc::new(openai::OpenAi::from_proto(b, credential)?),
        Ok(pb::ProviderKind::OpenaiCompatible) => {
            Arc::new(openai_compatible::from_proto(b, credential)?)
        }
        Ok(pb::ProviderKind::Bedrock) => {
            Arc::new(bedrock::Bedrock::from_proto(b, credential, ctx)?)
        }
        Ok(pb::ProviderKind::Mock) => Arc::new(mock::Mock::from_proto(b)?),
        Ok(pb::ProviderKind::VertexAi) => Arc::new(vertex::Vertex::from_proto(b, ctx)?),
        Ok(pb::ProviderKind::Gemini) => Arc::new(gemini::Gemini::from_proto(b, credential)?),
        Ok(pb::ProviderKind::AzureOpenai) => {
            Arc::new(azure_openai::AzureOpenAi::from_proto(b, credential, ctx)?)
        }
        _ => return Err(format!("unsupported provider kind {}", b.provider)),
    })
}

/// The backend's credential value (a Secret's, or an environment
/// variable's in standalone mode), trimmed; `None` when it has none.
pub(crate) fn secret(
    b: &pb::Backend,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let value = match b.credential.as_ref().and_then(|c| c.source.as_ref()) {
        None => return Ok(None),
        Some(pb::credential::Source::Value(v)) => v.trim().to_string(),
        Some(pb::credential::Source::Env(name)) => env(name)
            .map(|v| v.trim().to_string())
            .ok_or_else(|| format!("environment variable {name} is not set"))?,
    };
    if value.is_empty() {
        return Err("the credential is empty".into());
    }
    Ok(Some(value))
}

/// A credential as a header value, marked sensitive (never logged).
fn sensitive_header(text: &str) -> Result<http::HeaderValue, String> {
    let mut v = http::HeaderValue::from_str(text)
        .map_err(|_| "the credential contains characters not allowed in a header".to_string())?;
    v.set_sensitive(true);
    Ok(v)
}
