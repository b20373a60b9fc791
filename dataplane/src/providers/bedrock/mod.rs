//! Amazon Bedrock Runtime as an upstream (`provider: Bedrock`).
//!
//! The provider's native format for the translation layer is Anthropic
//! Messages: every client format is first made a Messages request (passed
//! through, or translated as for an Anthropic backend), then
//! [`Bedrock::prepare`] shapes it for the API the model uses
//! ([`crate::translate::bedrock::BedrockApi::for_model`] under the
//! backend's `bedrock.api`):
//!
//! - **InvokeModel** (Claude): the Messages body without `model`/`stream`,
//!   with `anthropic_version: bedrock-2023-05-31`, the forwarded betas as
//!   the body array `anthropic_beta` and the fields Bedrock refuses
//!   stripped ([`crate::translate::bedrock::invoke::request_from_messages`]);
//! - **Converse** (other models): the Converse body
//!   ([`crate::translate::bedrock::converse_request`]), tool names shortened
//!   to Bedrock's limits and restored in the answer.
//!
//! [`Bedrock::request`] posts it to `{endpoint}/model/{id}/{operation}`
//! (the model id or ARN URL-encoded into one segment), signed with SigV4
//! or with the Bedrock API key ([`backend::BedrockBackend::request`];
//! credentials come from the cached, refreshed providers of
//! [`crate::aws`]). Nothing of the client's request headers is copied.
//!
//! Answers are decoded by its `Answer` into what the translation layer
//! reads: the event-stream body becomes Anthropic SSE
//! ([`crate::wire::eventstream::body::SseFromFrames`] with
//! [`crate::translate::bedrock::frame_translator`]: InvokeModel `chunk`s
//! byte for byte, Converse events through its state machine; exception
//! messages become an Anthropic `event: error`), a Converse answer an
//! Anthropic message. Errors are classified by [`classify::classify`]
//! (Throttling like a 429, ServiceUnavailable/ModelNotReady fail over,
//! context-length validation errors go to the context fallback, the
//! gateway's own credential or model id refused end as a 503) and turned
//! into Anthropic errors ([`backend::client_error`]).
//!
//! count_tokens is estimated locally (no `/count-tokens` call yet). A
//! broken stream is continued with a prefill only on InvokeModel.
//!
//! - [`backend`]: the backend's settings, credential and signed request;
//! - [`classify`]: failures → failover classes;
//! - [`mock`]: Bedrock's answers as the Mock plays them ([`Bedrock::emulate`]).

pub mod backend;
pub mod classify;
pub mod mock;

#[cfg(test)]
mod fuzz_tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use switchboard_proto as pb;

use super::{
    Answer, BoxFuture, BuildContext, ClientCall, EmulatedRequest, Outgoing, Prepared, Provider,
    ProviderError, ProviderKind, prepare,
};
use crate::aws::Secret;
use crate::error::RequestError;
use crate::routing::AttemptOutcome;
use crate::runtime::ApiFormat;
use crate::translate::bedrock::{
    ApiChoice, BedrockApi, FrontOp, converse_request, converse_response, frame_translator, invoke,
    parse_front_path,
};
use crate::translate::names::ToolNames;
use crate::translate::{self, Plan, TranslateError, UpstreamFormat};
use crate::upstream::UpstreamBody;
use crate::wire::Dialect;
use crate::wire::eventstream::body::SseFromFrames;

pub use backend::{BedrockBackend, client_error};

/// How long a credential exchange (STS, the container endpoint) may take.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(10);

/// A Bedrock backend.
pub struct Bedrock {
    backend: BedrockBackend,
}

/// What a prepared Bedrock request's answer needs.
#[derive(Debug)]
struct Shaped {
    api: BedrockApi,
    converse_names: ToolNames,
}

impl Bedrock {
    /// From the snapshot; `credential` is a Bedrock API key (used when no
    /// AWS credentials are configured).
    pub fn from_proto(
        b: &pb::Backend,
        credential: Option<String>,
        ctx: &BuildContext<'_>,
    ) -> Result<Self, String> {
        let settings = b
            .bedrock
            .as_ref()
            .ok_or("a Bedrock backend needs its bedrock settings")?;
        let fetch = Arc::new(crate::aws::fetch::HttpFetch::new(
            ctx.upstreams.tls(),
            CREDENTIALS_TIMEOUT,
        ));
        let key = credential.map(Secret::new);
        let backend =
            BedrockBackend::from_proto(&b.endpoint, settings, key.as_ref(), ctx.env, fetch)?;
        Ok(Self { backend })
    }

    /// The Mock's stand-in: answers InvokeModel and Converse requests.
    pub fn emulator() -> Self {
        Self {
            backend: BedrockBackend {
                region: "us-east-1".into(),
                base: super::mock::MOCK_BASE.into(),
                api: ApiChoice::Auto,
                allowed_betas: None,
                auth: None,
            },
        }
    }

    fn shaped(prepared: &Prepared) -> Option<&Shaped> {
        prepared.state.as_ref()?.downcast_ref::<Shaped>()
    }
}

impl Provider for Bedrock {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Bedrock
    }

    fn plan(&self, client: ApiFormat) -> Plan {
        match client {
            ApiFormat::CountTokens => Plan::Estimate,
            _ => translate::plan(client, UpstreamFormat::Messages),
        }
    }

    fn prepare(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        let mut prepared = prepare::translate(call, model, plan, &self.target_options())?;
        let betas = self.betas(call.headers);
        prepare::fold_system_messages(call, || betas.clone(), &mut prepared)?;
        let messages: Value = serde_json::from_slice(&prepared.body)
            .map_err(|e| RequestError::Internal(format!("re-parsing the request: {e}")))?;
        let api = self.backend.api_for(model);
        let (body, converse_names) = match api {
            BedrockApi::InvokeModel => {
                let (body, stripped) = invoke::request_from_messages(&messages, &betas)?;
                if !stripped.is_empty() {
                    tracing::debug!(?stripped, "body fields Bedrock refuses were removed");
                }
                (body, ToolNames::default())
            }
            BedrockApi::Converse => converse_request::request_from_messages(
                &messages,
                &converse_request::ConverseOptions {
                    // Betas are Claude's: other models refuse them.
                    betas: if model.contains("anthropic.") {
                        betas
                    } else {
                        Vec::new()
                    },
                    default_max_tokens: translate::DEFAULT_MAX_TOKENS,
                },
            )?,
        };
        prepared.body = Bytes::from(body.to_string());
        prepared.state = Some(Arc::new(Shaped {
            api,
            converse_names,
        }));
        Ok(prepared)
    }

    fn request<'a>(
        &'a self,
        call: &'a ClientCall<'a>,
        prepared: &'a Prepared,
    ) -> BoxFuture<'a, Result<Outgoing, ProviderError>> {
        Box::pin(async move {
            let shaped = Self::shaped(prepared).ok_or_else(|| {
                ProviderError::Uri("the request was not shaped for Bedrock".into())
            })?;
            let request = self
                .backend
                .request(
                    shaped.api,
                    &prepared.model,
                    call.stream,
                    prepared.body.clone(),
                )
                .await
                .map_err(|e| match e {
                    backend::BedrockRequestError::Uri(u) => ProviderError::Uri(u),
                    backend::BedrockRequestError::Auth(a) => {
                        ProviderError::Credentials(a.to_string())
                    }
                })?;
            Ok(Outgoing {
                request,
                answer: Box::new(BedrockAnswer {
                    api: shaped.api,
                    model: prepared.model.clone(),
                    names: shaped.converse_names.clone(),
                }),
            })
        })
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptOutcome {
        classify::classify(status, headers, body)
    }

    fn error_answer(
        &self,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let (status, body) = client_error(Dialect::Anthropic, status.as_u16(), &headers, &body);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        (status, headers, body)
    }

    fn betas(&self, client: &HeaderMap) -> Vec<String> {
        self.backend.betas(client, None)
    }

    fn accepts_prefill(&self, prepared: &Prepared) -> bool {
        Self::shaped(prepared).is_some_and(|s| s.api == BedrockApi::InvokeModel)
    }

    fn emulate(&self, req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
        let path = req.path.split('?').next().unwrap_or_default();
        let (model, op) = parse_front_path(path)?;
        if let Some(status) = req.fail {
            return Some(mock::error_response(
                status,
                "the mock answers an error (mock.failOn matched)",
            ));
        }
        let api = match op {
            FrontOp::Invoke | FrontOp::InvokeStream => BedrockApi::InvokeModel,
            FrontOp::Converse | FrontOp::ConverseStream => BedrockApi::Converse,
        };
        let body: Value = match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(e) => {
                return Some(mock::error_response(
                    StatusCode::BAD_REQUEST,
                    &e.to_string(),
                ));
            }
        };
        Some(
            match mock::respond_bedrock(api, &body, &model, op.streams(), req.reply) {
                Ok(mock::BedrockMockResponse::Json(bytes)) => {
                    super::mock::json_response(StatusCode::OK, bytes)
                }
                Ok(mock::BedrockMockResponse::EventStream(frames)) => {
                    super::mock::stream_response(crate::wire::eventstream::CONTENT_TYPE, frames)
                }
                Err(e) => mock::error_response(StatusCode::BAD_REQUEST, &e.to_string()),
            },
        )
    }

    fn has_credential(&self) -> bool {
        self.backend.auth.is_some()
    }
}

/// Decodes one Bedrock answer (see the module docs).
struct BedrockAnswer {
    api: BedrockApi,
    model: String,
    names: ToolNames,
}

impl BedrockAnswer {
    /// The message id: Bedrock's request id when it sent one.
    fn message_id(headers: &HeaderMap) -> String {
        let id = headers
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        match id {
            Some(id) => format!("msg_bdrk_{}", id.replace('-', "")),
            None => format!("msg_bdrk_{:016x}", fastrand::u64(..)),
        }
    }
}

impl Answer for BedrockAnswer {
    fn is_stream(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with(crate::wire::eventstream::CONTENT_TYPE))
    }

    fn stream(self: Box<Self>, headers: &HeaderMap, body: UpstreamBody) -> UpstreamBody {
        let id = Self::message_id(headers);
        let translator = frame_translator(self.api, &id, &self.model, self.names);
        SseFromFrames::new(
            body,
            translator,
            crate::wire::eventstream::DEFAULT_MAX_MESSAGE,
        )
        .boxed_unsync()
    }

    fn whole(self: Box<Self>, headers: &HeaderMap, body: Bytes) -> Result<Bytes, TranslateError> {
        match self.api {
            BedrockApi::InvokeModel => Ok(body),
            BedrockApi::Converse => {
                let v: Value = serde_json::from_slice(&body)
                    .map_err(|e| TranslateError::Upstream(e.to_string()))?;
                let message = converse_response::response_to_messages(
                    &v,
                    &self.names,
                    &Self::message_id(headers),
                    &self.model,
                )?;
                Ok(Bytes::from(message.to_string()))
            }
        }
    }
}
