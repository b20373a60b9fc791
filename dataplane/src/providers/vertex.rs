//! Google Vertex AI as an upstream (`provider: VertexAI`): Claude models
//! through `rawPredict`, Gemini models through `generateContent`, in one
//! project and location.
//!
//! The publisher comes from the provider model id
//! ([`crate::google::Publisher::of`]: `claude…` is Anthropic's, anything
//! else Google's, an `anthropic/` / `google/` prefix says so). Both are
//! served towards Anthropic Messages, so the plan is the one of an
//! Anthropic backend (count_tokens passed through: Vertex counts):
//!
//! | | Claude (`publishers/anthropic`) | Gemini (`publishers/google`) |
//! |---|---|---|
//! | body | the Messages request (translated or passed through, `role: "system"` turns folded unless their beta is forwarded) without `model`, with `anthropic_version: vertex-2023-10-16`, the fields Vertex refuses stripped ([`crate::translate::vertex::request_from_messages`]) | `generateContent` ([`super::gemini::prepare`]) |
//! | answer | `:rawPredict` | `:generateContent` |
//! | stream | `:streamRawPredict` (`"stream": true` in the body) | `:streamGenerateContent?alt=sse` |
//! | count_tokens | `count-tokens:rawPredict` (the model in the body) | `:countTokens` |
//! | `anthropic-beta` | the client's flags through the allowlist (`vertex.allowedBetas`, else [`crate::translate::vertex::betas::DEFAULT_ALLOWED_BETAS`]: Vertex refuses flags it does not know) | none |
//! | decoded by | nothing to do: Anthropic's message and SSE ([`SseAnswer`]) | [`GeminiAnswer`] |
//! | broken stream | continued with a prefill | restarted (route setting) |
//!
//! The URL is `{endpoint}/v1/projects/{project}/locations/{region}/publishers/…`
//! (the endpoint defaults from the region: `https://{region}-aiplatform.googleapis.com`,
//! `https://aiplatform.googleapis.com` for `global`). Requests carry the
//! OAuth2 access token of the backend's token provider
//! ([`crate::oauth::TokenProvider`]: a service-account key or the metadata
//! server, cached and refreshed before expiry) as a sensitive
//! `Authorization: Bearer` header; a token that cannot be had fails the try
//! as a gateway-side error (the chain moves on, the breaker counts it).
//! Nothing of the client's request headers is copied. Errors (Google's
//! shape, or Anthropic's for Claude) are classified by
//! [`crate::google::classify::classify`] and answered in Anthropic's shape.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};
use switchboard_proto as pb;

use super::gemini::{GeminiAnswer, GeminiShaped, emulate_gemini, google_error_response};
use super::{
    BoxFuture, BuildContext, ClientCall, EmulatedRequest, Outgoing, Prepared, Provider,
    ProviderError, ProviderKind, SseAnswer, prepare,
};
use crate::error::RequestError;
use crate::google::vertex::{parse_path, vertex_model_id};
use crate::google::{Publisher, VertexBackend, VertexOp};
use crate::routing::AttemptOutcome;
use crate::runtime::ApiFormat;
use crate::translate::gemini::CountTokensShape;
use crate::translate::vertex as claude;
use crate::translate::{self, Plan, UpstreamFormat};
use crate::upstream::UpstreamBody;
use crate::wire::Dialect;

/// How long a token exchange (the token endpoint, the metadata server) may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A Vertex AI backend.
pub struct Vertex {
    backend: VertexBackend,
}

/// What a prepared Vertex request needs.
#[derive(Debug)]
struct Shaped {
    op: VertexOp,
    /// Set for Google models.
    gemini: Option<GeminiShaped>,
}

impl Vertex {
    /// From the snapshot.
    pub fn from_proto(b: &pb::Backend, ctx: &BuildContext<'_>) -> Result<Self, String> {
        let settings = b
            .vertex
            .as_ref()
            .ok_or("a VertexAI backend needs its vertex settings")?;
        let fetch = Arc::new(crate::aws::fetch::HttpFetch::new(
            ctx.upstreams.tls(),
            TOKEN_TIMEOUT,
        ));
        Ok(Self {
            backend: VertexBackend::from_proto(&b.endpoint, settings, ctx.env, fetch)?,
        })
    }

    /// The Mock's stand-in: answers Claude and Gemini requests of any
    /// project and location.
    pub fn emulator() -> Self {
        Self {
            backend: VertexBackend {
                project: "mock-project".into(),
                region: "global".into(),
                base: super::mock::MOCK_BASE.into(),
                allowed_betas: None,
                tokens: None,
            },
        }
    }

    fn shaped(prepared: &Prepared) -> Option<&Shaped> {
        prepared.state.as_ref()?.downcast_ref::<Shaped>()
    }

    /// The Claude body for `model` (see the module docs).
    fn prepare_claude(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        let betas = self.betas(call.headers);
        let mut prepared = prepare::translate(call, model, plan, &self.target_options())?;
        prepare::fold_system_messages(call, || betas.clone(), &mut prepared)?;
        let messages: Value = serde_json::from_slice(&prepared.body)
            .map_err(|e| RequestError::Internal(format!("re-parsing the request: {e}")))?;
        let count = call.format == ApiFormat::CountTokens;
        let op = VertexOp::for_model(model, call.stream, count);
        let body = if count {
            claude::count_tokens_from_messages(&messages, &vertex_model_id(model), &betas)?
        } else {
            let (body, stripped) = claude::request_from_messages(&messages, &betas, op.streams())?;
            if !stripped.is_empty() {
                tracing::debug!(?stripped, "body fields Vertex refuses were removed");
            }
            body
        };
        prepared.body = Bytes::from(body.to_string());
        prepared.state = Some(Arc::new(Shaped { op, gemini: None }));
        Ok(prepared)
    }
}

impl Provider for Vertex {
    fn kind(&self) -> ProviderKind {
        ProviderKind::VertexAi
    }

    fn plan(&self, client: ApiFormat) -> Plan {
        match client {
            ApiFormat::CountTokens => Plan::Passthrough,
            _ => translate::plan(client, UpstreamFormat::Messages),
        }
    }

    fn prepare(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        match Publisher::of(model).0 {
            Publisher::Anthropic => self.prepare_claude(call, model, plan),
            Publisher::Google => {
                let (mut prepared, gemini) =
                    super::gemini::prepare(call, model, plan, CountTokensShape::Vertex)?;
                let op = VertexOp::for_model(model, call.stream, gemini.count);
                prepared.state = Some(Arc::new(Shaped {
                    op,
                    gemini: Some(gemini),
                }));
                Ok(prepared)
            }
        }
    }

    fn request<'a>(
        &'a self,
        call: &'a ClientCall<'a>,
        prepared: &'a Prepared,
    ) -> BoxFuture<'a, Result<Outgoing, ProviderError>> {
        Box::pin(async move {
            let shaped = Self::shaped(prepared).ok_or_else(|| {
                ProviderError::Uri("the request was not shaped for Vertex AI".into())
            })?;
            let betas = match shaped.op.publisher() {
                Publisher::Anthropic => self.betas(call.headers),
                Publisher::Google => Vec::new(),
            };
            let request = self
                .backend
                .request(&prepared.model, shaped.op, &betas, prepared.body.clone())
                .await
                .map_err(super::gemini::provider_error)?;
            let answer: Box<dyn super::Answer> = match &shaped.gemini {
                Some(g) => Box::new(GeminiAnswer::new(&prepared.model, g.clone())),
                None => Box::new(SseAnswer),
            };
            Ok(Outgoing { request, answer })
        })
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptOutcome {
        crate::google::classify::classify(status, headers, body)
    }

    fn error_answer(
        &self,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        super::gemini::google_error_answer(status, headers, body)
    }

    fn betas(&self, client: &HeaderMap) -> Vec<String> {
        self.backend.betas(client, None)
    }

    fn accepts_prefill(&self, prepared: &Prepared) -> bool {
        Self::shaped(prepared)
            .is_some_and(|s| matches!(s.op, VertexOp::RawPredict | VertexOp::StreamRawPredict))
    }

    fn emulate(&self, req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
        let path = req.path.split('?').next().unwrap_or_default();
        let (model, op) = parse_path(path)?;
        if op.publisher() == Publisher::Google {
            return Some(emulate_gemini(
                req,
                &model,
                op.streams(),
                op == VertexOp::CountGeminiTokens,
            ));
        }
        if let Some(status) = req.fail {
            return Some(google_error_response(
                status,
                "the mock answers an error (mock.failOn matched)",
            ));
        }
        let body: Value = match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(e) => {
                return Some(google_error_response(
                    StatusCode::BAD_REQUEST,
                    &e.to_string(),
                ));
            }
        };
        let answer = if op == VertexOp::CountTokens {
            let n = crate::wire::mock::count_tokens(&body);
            Ok(super::mock::json_response(
                StatusCode::OK,
                Bytes::from(json!({"input_tokens": n}).to_string()),
            ))
        } else {
            crate::google::mock::respond_vertex_claude(&body, &model, op.streams(), req.reply)
                .map(super::mock::answer_response)
        };
        Some(answer.unwrap_or_else(|e| {
            super::mock::json_response(
                StatusCode::BAD_REQUEST,
                crate::wire::error_body(
                    Dialect::Anthropic,
                    crate::wire::ErrorKind::InvalidRequest,
                    &e.to_string(),
                    None,
                ),
            )
        }))
    }

    fn has_credential(&self) -> bool {
        self.backend.tokens.is_some()
    }
}

#[cfg(test)]
#[path = "vertex_tests.rs"]
mod tests;
