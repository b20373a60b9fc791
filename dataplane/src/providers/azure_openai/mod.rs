//! Azure OpenAI as an upstream (`provider: AzureOpenAI`).
//!
//! Native format Chat Completions, as for OpenAI: Chat Completions requests
//! pass through (streams ask for the usage chunk, stripped again when the
//! client did not ask), Messages requests are translated, count_tokens is
//! estimated locally. Responses requests pass through wherever Azure serves
//! the Responses API ([`AzureBackend::serves_responses`]: the v1 API, or
//! deployment URLs from `api-version` `2025-03-01-preview` on) and are
//! translated to Chat Completions elsewhere.
//!
//! The backend's `azure.api` picks the URLs ([`AzureBackend::uri`]); the
//! deployment is the routed model's provider id (`models[].providerModel`)
//! and is also the body's `model`:
//!
//! | `azure.api` | Chat Completions | Responses |
//! |---|---|---|
//! | `V1` (default) | `{endpoint}/openai/v1/chat/completions` | `{endpoint}/openai/v1/responses` |
//! | `Deployments` | `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version={v}` | `{endpoint}/openai/responses?api-version={v}` |
//!
//! The client's query is not forwarded. Headers are the allowlisted client
//! headers ([`headers::base`], no `openai-beta`) plus the credential: the
//! key in `api-key`, or a Microsoft Entra token as `Authorization: Bearer`,
//! cached and refreshed before it expires ([`AzureBackend::authorize`]);
//! both marked sensitive, so never logged.
//!
//! Answers: whole answers and Responses streams as they are; Chat
//! Completions streams lose Azure's content-filter annotation chunks
//! ([`filter`]) before anything else reads them. Errors are classified by
//! [`crate::azure::classify`]: a content-filter refusal is returned to the
//! client and never failed over; 429 and 503 fail over like OpenAI's.
//!
//! - [`filter`]: the stream filter body;
//! - [`mock`]: Azure's answers as the Mock plays them ([`Provider::emulate`]).

pub mod filter;
pub mod mock;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Response};
use http_body_util::BodyExt;
use switchboard_proto as pb;

use super::{
    Answer, BoxFuture, BuildContext, ClientCall, EmulatedRequest, Outgoing, Prepared, Provider,
    ProviderError, ProviderKind, SseAnswer, headers, prepare,
};
use crate::aws::Secret;
use crate::azure::{AzureApi, AzureBackend, AzureOp, AzureRequestError};
use crate::error::RequestError;
use crate::routing::AttemptOutcome;
use crate::runtime::ApiFormat;
use crate::translate::{self, Plan, TargetOptions, TranslateError, UpstreamFormat};
use crate::upstream::UpstreamBody;

/// How long an Entra token exchange may take.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(10);

/// An Azure OpenAI backend.
pub struct AzureOpenAi {
    backend: AzureBackend,
}

impl AzureOpenAi {
    /// From the snapshot; `credential` is the API key (unused when Entra
    /// credentials are configured).
    pub fn from_proto(
        b: &pb::Backend,
        credential: Option<String>,
        ctx: &BuildContext<'_>,
    ) -> Result<Self, String> {
        let settings = b.azure.clone().unwrap_or_default();
        let fetch = Arc::new(crate::aws::fetch::HttpFetch::new(
            ctx.upstreams.tls(),
            CREDENTIALS_TIMEOUT,
        ));
        let key = credential.map(Secret::new);
        let backend =
            AzureBackend::from_proto(&b.endpoint, &settings, key.as_ref(), ctx.env, fetch)?;
        Ok(Self { backend })
    }

    /// The Mock's stand-in: the v1 API without a credential.
    pub fn emulator() -> Self {
        Self {
            backend: AzureBackend {
                base: super::mock::MOCK_BASE.into(),
                api: AzureApi::V1,
                api_version: String::new(),
                auth: None,
            },
        }
    }

    fn operation(path: ApiFormat) -> Result<AzureOp, ProviderError> {
        match path {
            ApiFormat::ChatCompletions => Ok(AzureOp::ChatCompletions),
            ApiFormat::Responses => Ok(AzureOp::Responses),
            other => Err(ProviderError::Uri(format!(
                "Azure OpenAI has no {} endpoint",
                other.label()
            ))),
        }
    }
}

impl Provider for AzureOpenAi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::AzureOpenAI
    }

    fn plan(&self, client: ApiFormat) -> Plan {
        if client == ApiFormat::Responses && self.backend.serves_responses() {
            return Plan::Passthrough;
        }
        translate::plan(client, UpstreamFormat::ChatCompletions)
    }

    fn target_options(&self) -> TargetOptions {
        TargetOptions {
            legacy_max_tokens: false,
            default_max_tokens: translate::DEFAULT_MAX_TOKENS,
        }
    }

    fn prepare(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        let mut prepared = prepare::translate(call, model, plan, &self.target_options())?;
        prepare::ask_for_usage(call, &mut prepared)?;
        Ok(prepared)
    }

    fn request<'a>(
        &'a self,
        call: &'a ClientCall<'a>,
        prepared: &'a Prepared,
    ) -> BoxFuture<'a, Result<Outgoing, ProviderError>> {
        Box::pin(async move {
            let op = Self::operation(prepared.path)?;
            let uri = self
                .backend
                .uri(&prepared.model, op)
                .map_err(|e| ProviderError::Uri(e.to_string()))?;
            let mut h = headers::base(call.headers, false, call.forward);
            self.backend.authorize(&mut h).await.map_err(|e| match e {
                AzureRequestError::Uri(u) => ProviderError::Uri(u),
                AzureRequestError::Token(t) => ProviderError::Credentials(t.to_string()),
            })?;
            let req = super::post(uri, h, prepared.body.clone());
            let answer: Box<dyn Answer> = match op {
                AzureOp::ChatCompletions => Box::new(AzureChatAnswer),
                AzureOp::Responses => Box::new(SseAnswer),
            };
            Ok(Outgoing {
                request: req,
                answer,
            })
        })
    }

    fn classify(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> AttemptOutcome {
        crate::azure::classify::classify(status, headers, body)
    }

    fn betas(&self, _client: &HeaderMap) -> Vec<String> {
        Vec::new()
    }

    fn emulate(&self, req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
        mock::emulate(req)
    }

    fn has_credential(&self) -> bool {
        self.backend.auth.is_some()
    }

    /// A caller's Azure key goes in `api-key`, in place of the backend's key
    /// or Entra token (Azure accepts either).
    fn caller_key_slot(&self) -> Option<crate::byok::KeySlot> {
        Some(crate::byok::KeySlot::Header(http::HeaderName::from_static(
            "api-key",
        )))
    }
}

/// A Chat Completions answer: streams filtered ([`filter`]), whole
/// answers as they are.
struct AzureChatAnswer;

impl Answer for AzureChatAnswer {
    fn is_stream(&self, headers: &HeaderMap) -> bool {
        super::is_sse(headers)
    }

    fn stream(self: Box<Self>, _headers: &HeaderMap, body: UpstreamBody) -> UpstreamBody {
        filter::filtered(body).boxed_unsync()
    }

    fn whole(
        self: Box<Self>,
        _headers: &HeaderMap,
        body: bytes::Bytes,
    ) -> Result<bytes::Bytes, TranslateError> {
        Ok(body)
    }
}
