//! The built-in `Mock` provider: an ordinary provider whose upstream is
//! in-process. It builds requests like the provider it emulates (or, by
//! default, in the client's own format), sends them through its own
//! [`MockTransport`], and that transport answers as the emulated provider's
//! upstream would ([`Provider::emulate`]), in the exact wire format —
//! Bedrock event-stream framing included — so the gateway's decoding,
//! holding, relaying and failover run on the same bytes as with the real
//! provider.
//!
//! | `mock.emulate` | requests are built by | the transport answers as |
//! |---|---|---|
//! | unset | the client's own format (every format passes through) | Anthropic (`/v1/messages`, count_tokens) or OpenAI (`/v1/chat/completions`, `/v1/responses`) |
//! | a provider | that provider ([`super::build`] with no credential and [`MOCK_BASE`]) | that provider |
//!
//! The answer text follows [`crate::wire::mock`] (`docs/mock-provider.md`).
//! With `mock.failOn` set, a request whose body contains that text is
//! answered with the emulated provider's error for `mock.failStatus`
//! (default 503), so failover can be shown offline. `mock.latency` delays
//! the response head. A Mock never continues another backend's broken
//! stream with a prefill (it answers the last user turn whatever follows).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};
use switchboard_proto as pb;

use super::{
    BoxFuture, ClientCall, EmulatedRequest, Outgoing, Prepared, Provider, ProviderError,
    ProviderKind, headers, prepare,
};
use crate::error::RequestError;
use crate::runtime::ApiFormat;
use crate::translate::{Plan, TargetOptions};
use crate::upstream::{SendResult, Transport, UpstreamBody};
use crate::wire::mock::{MockReply, MockResponse};
use crate::wire::{Dialect, ErrorKind};

/// The base URL of every Mock request (never resolved: the transport is in-process).
pub const MOCK_BASE: &str = "http://mock.invalid";

/// A Mock backend.
pub struct Mock {
    /// The provider it emulates; `None`: the client's own format.
    wire: Option<Arc<dyn Provider>>,
    transport: Arc<MockTransport>,
}

impl Mock {
    /// From the snapshot's `mock` settings.
    pub fn from_proto(b: &pb::Backend) -> Result<Self, String> {
        let settings = b.mock.clone().unwrap_or_default();
        let wire = emulated(settings.emulate)?;
        let emulators: Vec<Arc<dyn Provider>> = match &wire {
            Some(p) => vec![p.clone()],
            None => vec![
                Arc::new(super::anthropic::Anthropic::emulator()),
                Arc::new(super::openai::OpenAi::emulator()),
            ],
        };
        let fail_status = match settings.fail_status {
            0 => StatusCode::SERVICE_UNAVAILABLE,
            s => u16::try_from(s)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .filter(|s| s.is_client_error() || s.is_server_error())
                .ok_or_else(|| format!("mock failStatus {s} is not an error status"))?,
        };
        Ok(Self {
            wire,
            transport: Arc::new(MockTransport {
                emulators,
                reply: MockReply {
                    reply: settings.reply,
                },
                latency: Duration::from_millis(settings.latency_ms),
                fail_on: (!settings.fail_on.is_empty()).then_some(settings.fail_on),
                fail_status,
            }),
        })
    }
}

/// The provider a Mock emulates (`None`: the client's own format). A new
/// provider that can be emulated adds its arm here.
fn emulated(kind: i32) -> Result<Option<Arc<dyn Provider>>, String> {
    Ok(match pb::ProviderKind::try_from(kind) {
        Ok(pb::ProviderKind::Unspecified) => None,
        Ok(pb::ProviderKind::Anthropic) => Some(Arc::new(super::anthropic::Anthropic::emulator())),
        Ok(pb::ProviderKind::Openai) => Some(Arc::new(super::openai::OpenAi::emulator())),
        Ok(pb::ProviderKind::OpenaiCompatible) => {
            Some(Arc::new(super::openai::OpenAi::compatible_emulator()))
        }
        Ok(pb::ProviderKind::Bedrock) => Some(Arc::new(super::bedrock::Bedrock::emulator())),
        Ok(pb::ProviderKind::VertexAi) => Some(Arc::new(super::vertex::Vertex::emulator())),
        Ok(pb::ProviderKind::Gemini) => Some(Arc::new(super::gemini::Gemini::emulator())),
        Ok(pb::ProviderKind::AzureOpenai) => {
            Some(Arc::new(super::azure_openai::AzureOpenAi::emulator()))
        }
        _ => return Err(format!("the Mock cannot emulate provider kind {kind}")),
    })
}

impl Provider for Mock {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Mock
    }

    fn plan(&self, client: ApiFormat) -> Plan {
        match &self.wire {
            Some(p) => p.plan(client),
            None => Plan::Passthrough,
        }
    }

    fn target_options(&self) -> TargetOptions {
        match &self.wire {
            Some(p) => p.target_options(),
            None => TargetOptions {
                default_max_tokens: crate::translate::DEFAULT_MAX_TOKENS,
                ..TargetOptions::default()
            },
        }
    }

    fn prepare(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        match &self.wire {
            Some(p) => p.prepare(call, model, plan),
            None => prepare::translate(call, model, plan, &self.target_options()),
        }
    }

    fn request<'a>(
        &'a self,
        call: &'a ClientCall<'a>,
        prepared: &'a Prepared,
    ) -> BoxFuture<'a, Result<Outgoing, ProviderError>> {
        if let Some(p) = &self.wire {
            return p.request(call, prepared);
        }
        Box::pin(async move {
            let uri: http::Uri = format!("{MOCK_BASE}/v1{}", prepared.path.path_suffix())
                .parse()
                .map_err(|e: http::uri::InvalidUri| ProviderError::Uri(e.to_string()))?;
            Ok(Outgoing::sse(
                uri,
                headers::base(call.headers, true, call.forward),
                prepared.body.clone(),
            ))
        })
    }

    fn classify(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> crate::routing::AttemptOutcome {
        match &self.wire {
            Some(p) => p.classify(status, headers, body),
            None => crate::routing::classify_status_body(status, body, headers),
        }
    }

    fn error_answer(
        &self,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        match &self.wire {
            Some(p) => p.error_answer(status, headers, body),
            None => (status, headers, body),
        }
    }

    fn betas(&self, client: &HeaderMap) -> Vec<String> {
        match &self.wire {
            Some(p) => p.betas(client),
            None => headers::anthropic_betas(client, None),
        }
    }

    fn accepts_prefill(&self, _prepared: &Prepared) -> bool {
        false
    }

    fn transport(&self) -> Option<Arc<dyn Transport>> {
        Some(self.transport.clone())
    }

    fn has_credential(&self) -> bool {
        false
    }

    /// Nothing leaves the process: a caller's key is accepted and unused.
    fn caller_key_slot(&self) -> Option<crate::byok::KeySlot> {
        Some(crate::byok::KeySlot::Unused)
    }
}

/// The Mock's in-process upstream: the emulators answer every request.
pub struct MockTransport {
    emulators: Vec<Arc<dyn Provider>>,
    reply: MockReply,
    latency: Duration,
    fail_on: Option<String>,
    fail_status: StatusCode,
}

impl Transport for MockTransport {
    fn send(&self, req: Request<Full<Bytes>>) -> crate::upstream::BoxFuture<SendResult> {
        let emulators = self.emulators.clone();
        let reply = self.reply.clone();
        let latency = self.latency;
        let fail_on = self.fail_on.clone();
        let fail_status = self.fail_status;
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let fail = fail_on
                .as_deref()
                .filter(|needle| contains(&body, needle.as_bytes()))
                .map(|_| fail_status);
            let request = EmulatedRequest {
                path: &path,
                body: &body,
                reply: &reply,
                fail,
            };
            for e in &emulators {
                if let Some(resp) = e.emulate(&request) {
                    return Ok(resp);
                }
            }
            Ok(json_response(
                StatusCode::NOT_FOUND,
                Bytes::from_static(br#"{"message":"the mock does not serve this path"}"#),
            ))
        })
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn boxed(body: Full<Bytes>) -> UpstreamBody {
    body.map_err(|never| match never {}).boxed_unsync()
}

/// A JSON answer.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<UpstreamBody> {
    with_type(status, "application/json", boxed(Full::new(body)))
}

/// A streamed answer of these frames with `content_type`.
pub fn stream_response(content_type: &'static str, frames: Vec<Bytes>) -> Response<UpstreamBody> {
    let stream = futures_util::stream::iter(
        frames
            .into_iter()
            .map(|b| Ok::<_, crate::upstream::BodyError>(http_body::Frame::data(b))),
    );
    with_type(
        StatusCode::OK,
        content_type,
        StreamBody::new(stream).boxed_unsync(),
    )
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: UpstreamBody,
) -> Response<UpstreamBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A [`MockResponse`] as the upstream's HTTP answer.
pub fn answer_response(answer: MockResponse) -> Response<UpstreamBody> {
    match answer {
        MockResponse::Json(bytes) => json_response(StatusCode::OK, bytes),
        MockResponse::Sse(events) => stream_response("text/event-stream", events),
    }
}

/// The error a provider of `dialect` answers with for `status`.
pub fn error_response(dialect: Dialect, status: StatusCode) -> Response<UpstreamBody> {
    let body = crate::wire::error_body(
        dialect,
        kind_of_status(status),
        &format!("the mock answers {} (mock.failOn matched)", status.as_u16()),
        None,
    );
    json_response(status, body)
}

/// The error kind a status stands for.
pub fn kind_of_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        400 | 422 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Authentication,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        413 => ErrorKind::RequestTooLarge,
        429 => ErrorKind::RateLimited,
        503 => ErrorKind::Unavailable,
        529 => ErrorKind::Overloaded,
        408 | 504 => ErrorKind::Timeout,
        _ => ErrorKind::Api,
    }
}

/// Seconds since the epoch (`created` of Responses answers).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
