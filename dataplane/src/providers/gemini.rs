//! The Gemini API as an upstream (`provider: Gemini`), and the Gemini half
//! shared with Vertex AI's Google models ([`super::vertex`]).
//!
//! As for Bedrock, the translation layer sees Anthropic Messages: the plan
//! is the one towards Messages (Chat Completions and Responses translated,
//! Messages passed through), and [`Gemini::prepare`] builds the
//! `generateContent` body with [`crate::translate::gemini::request`] from
//! the client's own body (so signed tool-call ids are set aside before the
//! Anthropic translation and a Chat or Responses reasoning effort survives
//! a tool loop); the session that translates the answer back is the one
//! of that same translation. count_tokens is served by `countTokens`
//! (exact, and free on Google's side) instead of a local estimate.
//!
//! The request goes to `{endpoint}/v1beta/models/{model}:generateContent`,
//! `…:streamGenerateContent?alt=sse` or `…:countTokens`, with the key in
//! `x-goog-api-key` (marked sensitive; never in the URL, so it cannot reach
//! an access log). Nothing of the client's request headers is copied.
//!
//! Its [`GeminiAnswer`] decodes what comes back into Anthropic's dialect:
//! the SSE stream through [`GeminiToAnthropic`] (in a [`TranslatedSse`]
//! body), a whole answer through
//! [`crate::translate::gemini::response::response_to_messages`], a
//! `countTokens` answer as `{"input_tokens"}`. For Chat Completions and
//! Responses clients the thinking tokens ride along as the gateway's
//! [`crate::wire::usage::ANTHROPIC_REASONING_TOKENS`], so they get
//! `reasoning_tokens` in streamed and whole answers. Errors are classified
//! by [`crate::google::classify::classify`] and answered as Anthropic
//! errors with Google's message ([`google_error_answer`]). A broken Gemini
//! stream is never continued with a prefill (Gemini's turns are not
//! Anthropic's prefill).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use switchboard_proto as pb;

use super::sse_body::TranslatedSse;
use super::{
    Answer, BoxFuture, ClientCall, EmulatedRequest, Outgoing, Prepared, Provider, ProviderError,
    ProviderKind,
};
use crate::aws::Secret;
use crate::error::RequestError;
use crate::google::{GeminiBackend, GeminiOp, GoogleRequestError};
use crate::routing::AttemptOutcome;
use crate::runtime::ApiFormat;
use crate::translate::gemini::stream::GeminiToAnthropic;
use crate::translate::gemini::{
    self, CountTokensShape, GeminiOptions, needs_signatures, response as gemini_response,
};
use crate::translate::names::ToolNames;
use crate::translate::{self, Plan, TranslateError, UpstreamFormat};
use crate::upstream::UpstreamBody;
use crate::wire::Dialect;

/// A Gemini API backend.
pub struct Gemini {
    backend: GeminiBackend,
}

/// What a prepared Gemini request's answer needs (also kept by Vertex for
/// its Google models).
#[derive(Clone, Debug)]
pub struct GeminiShaped {
    /// The answer is a `countTokens` answer.
    pub count: bool,
    /// Tool names shortened for Gemini, restored in its answers.
    pub names: ToolNames,
    /// The client reads OpenAI usage: report the thinking tokens.
    pub reasoning_usage: bool,
}

impl Gemini {
    /// From the snapshot; `credential` is the API key.
    pub fn from_proto(b: &pb::Backend, credential: Option<String>) -> Result<Self, String> {
        let key = credential.map(Secret::new);
        Ok(Self {
            backend: GeminiBackend::new(&b.endpoint, key.as_ref())?,
        })
    }

    /// The Mock's stand-in: answers `generateContent`, its stream and
    /// `countTokens`.
    pub fn emulator() -> Self {
        Self {
            backend: GeminiBackend::new(super::mock::MOCK_BASE, None).expect("a valid URL"),
        }
    }
}

/// The plan of a Gemini model: towards Messages, and count_tokens served
/// upstream (`countTokens`).
pub fn plan(client: ApiFormat) -> Plan {
    match client {
        ApiFormat::CountTokens => Plan::Passthrough,
        _ => translate::plan(client, UpstreamFormat::Messages),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `generateContent` (or `countTokens`, in `count_shape`) body for
/// `model` and what its answer needs (see the module docs).
pub fn prepare(
    call: &ClientCall<'_>,
    model: &str,
    plan: Plan,
    count_shape: CountTokensShape,
) -> Result<(Prepared, GeminiShaped), RequestError> {
    let client: Value = serde_json::from_slice(call.json.bytes())
        .map_err(|e| TranslateError::invalid("body", e.to_string()))?;
    if call.format == ApiFormat::CountTokens {
        let body = gemini::count_tokens_request(&client, model, count_shape)?;
        let prepared = Prepared {
            body: Bytes::from(body.to_string()),
            model: model.to_string(),
            path: ApiFormat::CountTokens,
            upstream: Dialect::Anthropic,
            translation: None,
            strip_usage_chunk: false,
            state: None,
        };
        let shaped = GeminiShaped {
            count: true,
            names: ToolNames::default(),
            reasoning_usage: false,
        };
        return Ok((prepared, shaped));
    }
    let opts = GeminiOptions {
        default_max_tokens: translate::DEFAULT_MAX_TOKENS,
        sentinel_signatures: needs_signatures(model),
    };
    let req = gemini::request(call.format, &client, model, &opts, now())?;
    let translation = match plan {
        Plan::Translate(t) => Some((t, req.session)),
        _ => None,
    };
    let prepared = Prepared {
        body: Bytes::from(req.body.to_string()),
        model: model.to_string(),
        path: ApiFormat::Messages,
        upstream: Dialect::Anthropic,
        translation,
        strip_usage_chunk: false,
        state: None,
    };
    let shaped = GeminiShaped {
        count: false,
        names: req.names,
        reasoning_usage: matches!(
            call.format,
            ApiFormat::ChatCompletions | ApiFormat::Responses
        ),
    };
    Ok((prepared, shaped))
}

/// A Google error answer as an Anthropic error (the dialect of every
/// Google provider's decoded answers); an Anthropic-shaped error (Claude on
/// Vertex) is kept as it is.
pub fn google_error_answer(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let anthropic = serde_json::from_slice::<Value>(&body)
        .ok()
        .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("error"));
    if anthropic {
        return (status, headers, body);
    }
    let (status, body) =
        crate::google::classify::client_error(Dialect::Anthropic, status.as_u16(), &body);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (status, headers, body)
}

/// The emulated answer of a Gemini `op` for `model` (the Mock).
pub fn emulate_gemini(
    req: &EmulatedRequest<'_>,
    model: &str,
    stream: bool,
    count: bool,
) -> Response<UpstreamBody> {
    if let Some(status) = req.fail {
        return google_error_response(status, "the mock answers an error (mock.failOn matched)");
    }
    let body: Value = match serde_json::from_slice(req.body) {
        Ok(v) => v,
        Err(e) => return google_error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let answer = if count {
        crate::google::mock::respond_count_tokens(&body)
            .map(|b| super::mock::json_response(StatusCode::OK, b))
    } else {
        crate::google::mock::respond_gemini(&body, model, stream, req.reply)
            .map(super::mock::answer_response)
    };
    answer.unwrap_or_else(|e| google_error_response(StatusCode::BAD_REQUEST, &e.to_string()))
}

/// Google's error answer for `status` (the Mock).
pub fn google_error_response(status: StatusCode, message: &str) -> Response<UpstreamBody> {
    super::mock::json_response(
        status,
        crate::google::mock::error_body(status.as_u16(), message),
    )
}

impl Provider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn plan(&self, client: ApiFormat) -> Plan {
        plan(client)
    }

    fn prepare(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        let (mut prepared, shaped) = prepare(call, model, plan, CountTokensShape::GeminiApi)?;
        prepared.state = Some(Arc::new(shaped));
        Ok(prepared)
    }

    fn request<'a>(
        &'a self,
        call: &'a ClientCall<'a>,
        prepared: &'a Prepared,
    ) -> BoxFuture<'a, Result<Outgoing, ProviderError>> {
        Box::pin(async move {
            let shaped = prepared
                .state
                .as_ref()
                .and_then(|s| s.downcast_ref::<GeminiShaped>())
                .ok_or_else(|| {
                    ProviderError::Uri("the request was not shaped for Gemini".into())
                })?;
            let op = if shaped.count {
                GeminiOp::CountTokens
            } else if call.stream {
                GeminiOp::StreamGenerateContent
            } else {
                GeminiOp::GenerateContent
            };
            let request = self
                .backend
                .request(&prepared.model, op, prepared.body.clone())
                .map_err(provider_error)?;
            Ok(Outgoing {
                request,
                answer: Box::new(GeminiAnswer::new(&prepared.model, shaped.clone())),
            })
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
        google_error_answer(status, headers, body)
    }

    fn betas(&self, _client: &HeaderMap) -> Vec<String> {
        Vec::new()
    }

    fn accepts_prefill(&self, _prepared: &Prepared) -> bool {
        false
    }

    fn emulate(&self, req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
        let path = req.path.split('?').next().unwrap_or_default();
        let (model, op) = crate::google::vertex::parse_gemini_api_path(path)?;
        Some(emulate_gemini(
            req,
            &model,
            op == GeminiOp::StreamGenerateContent,
            op == GeminiOp::CountTokens,
        ))
    }

    fn has_credential(&self) -> bool {
        self.backend.has_key()
    }

    /// A caller's Gemini API key goes in `x-goog-api-key`, in place of the
    /// backend's.
    fn caller_key_slot(&self) -> Option<crate::byok::KeySlot> {
        Some(crate::byok::KeySlot::Header(http::HeaderName::from_static(
            "x-goog-api-key",
        )))
    }
}

/// A request-building failure as the provider interface's error.
pub fn provider_error(e: GoogleRequestError) -> ProviderError {
    match e {
        GoogleRequestError::Uri(u) => ProviderError::Uri(u),
        GoogleRequestError::Token(t) => ProviderError::Credentials(t.to_string()),
    }
}

/// Decodes one Gemini answer (see the module docs).
pub struct GeminiAnswer {
    model: String,
    shaped: GeminiShaped,
}

impl GeminiAnswer {
    /// The decoder of an answer of `model` prepared as `shaped`.
    pub fn new(model: &str, shaped: GeminiShaped) -> Self {
        Self {
            model: model.to_string(),
            shaped,
        }
    }
}

impl Answer for GeminiAnswer {
    fn is_stream(&self, headers: &HeaderMap) -> bool {
        super::is_sse(headers)
    }

    fn stream(self: Box<Self>, _headers: &HeaderMap, body: UpstreamBody) -> UpstreamBody {
        let mut translator = GeminiToAnthropic::new(self.model, self.shaped.names);
        if self.shaped.reasoning_usage {
            translator = translator.with_reasoning_usage();
        }
        TranslatedSse::translating(body, Box::new(translator)).boxed_unsync()
    }

    fn whole(self: Box<Self>, _headers: &HeaderMap, body: Bytes) -> Result<Bytes, TranslateError> {
        let upstream: Value =
            serde_json::from_slice(&body).map_err(|e| TranslateError::Upstream(e.to_string()))?;
        if self.shaped.count {
            let count = gemini::count_tokens_response(&upstream)?;
            return Ok(Bytes::from(count.to_string()));
        }
        let mut message =
            gemini_response::response_to_messages(&upstream, &self.shaped.names, &self.model)?;
        if self.shaped.reasoning_usage {
            gemini_response::add_reasoning_usage(&mut message, &upstream);
        }
        Ok(Bytes::from(message.to_string()))
    }
}

#[cfg(test)]
#[path = "gemini_tests.rs"]
mod tests;
