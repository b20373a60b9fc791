//! The OpenAI API (`api.openai.com`), and the shared code of every server
//! speaking OpenAI Chat Completions ([`super::openai_compatible`]).
//!
//! Native format Chat Completions: Chat Completions requests pass through
//! (streams ask for the usage chunk, stripped again when the client did not
//! ask), Messages and Responses requests are translated — except that
//! OpenAI itself serves the Responses API, so Responses requests pass
//! through to it. count_tokens is estimated locally. The request goes to
//! `{endpoint}/v1/{path}` without the client's query, with the key as
//! `Authorization: Bearer` and `OpenAI-Organization` when configured; no
//! `anthropic-beta` flag is forwarded.

use http::{HeaderMap, HeaderName, HeaderValue, Response, header};
use switchboard_proto as pb;

use super::{
    BoxFuture, ClientCall, EmulatedRequest, Endpoint, Outgoing, Prepared, Provider, ProviderError,
    ProviderKind, headers, prepare,
};
use crate::error::RequestError;
use crate::runtime::ApiFormat;
use crate::translate::{self, Plan, TargetOptions, UpstreamFormat};
use crate::upstream::UpstreamBody;
use crate::wire::Dialect;

/// An OpenAI or OpenAI-compatible backend.
pub struct OpenAi {
    endpoint: Endpoint,
    key: Option<HeaderValue>,
    organization: Option<HeaderValue>,
    /// An OpenAI-compatible server rather than OpenAI itself.
    compatible: bool,
}

impl OpenAi {
    /// From the snapshot; `credential` is the API key.
    pub fn from_proto(b: &pb::Backend, credential: Option<String>) -> Result<Self, String> {
        Self::build(b, credential, false)
    }

    pub(super) fn build(
        b: &pb::Backend,
        credential: Option<String>,
        compatible: bool,
    ) -> Result<Self, String> {
        let organization = b
            .openai
            .as_ref()
            .map(|o| o.organization.as_str())
            .filter(|o| !o.is_empty())
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| "invalid OpenAI organization".to_string())?;
        Ok(Self {
            endpoint: Endpoint::parse(&b.endpoint)?,
            key: credential
                .map(|k| super::sensitive_header(&format!("Bearer {k}")))
                .transpose()?,
            organization,
            compatible,
        })
    }

    /// The Mock's stand-in: answers Chat Completions and Responses requests.
    pub fn emulator() -> Self {
        Self {
            endpoint: Endpoint::parse(super::mock::MOCK_BASE).expect("a valid URL"),
            key: None,
            organization: None,
            compatible: false,
        }
    }

    /// The Mock's stand-in for an OpenAI-compatible server.
    pub fn compatible_emulator() -> Self {
        Self {
            compatible: true,
            ..Self::emulator()
        }
    }
}

impl Provider for OpenAi {
    fn kind(&self) -> ProviderKind {
        if self.compatible {
            ProviderKind::OpenAICompatible
        } else {
            ProviderKind::OpenAI
        }
    }

    fn plan(&self, client: ApiFormat) -> Plan {
        if client == ApiFormat::Responses && !self.compatible {
            return Plan::Passthrough;
        }
        translate::plan(client, UpstreamFormat::ChatCompletions)
    }

    fn target_options(&self) -> TargetOptions {
        TargetOptions {
            legacy_max_tokens: self.compatible,
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
            let uri = self
                .endpoint
                .uri(prepared.path, None)
                .map_err(|e| ProviderError::Uri(e.to_string()))?;
            let mut h = headers::base(call.headers, true, call.forward);
            if let Some(key) = &self.key {
                h.insert(header::AUTHORIZATION, key.clone());
            }
            if let Some(org) = &self.organization {
                h.insert(HeaderName::from_static("openai-organization"), org.clone());
            }
            Ok(Outgoing::sse(uri, h, prepared.body.clone()))
        })
    }

    fn betas(&self, _client: &HeaderMap) -> Vec<String> {
        Vec::new()
    }

    fn emulate(&self, req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
        let path = req.path.split('?').next().unwrap_or_default();
        let responses = path.ends_with("/responses");
        if !responses && !path.ends_with("/chat/completions") {
            return None;
        }
        if let Some(status) = req.fail {
            return Some(super::mock::error_response(Dialect::OpenAI, status));
        }
        let request: serde_json::Value =
            serde_json::from_slice(req.body).unwrap_or(serde_json::Value::Null);
        if responses {
            return Some(
                match crate::translate::responses::mock::respond_responses(
                    &request,
                    req.reply,
                    super::mock::unix_now(),
                ) {
                    Ok(a) => super::mock::answer_response(a.response),
                    Err(e) => super::mock::json_response(
                        http::StatusCode::BAD_REQUEST,
                        crate::wire::error_body(
                            Dialect::OpenAI,
                            crate::wire::ErrorKind::InvalidRequest,
                            &e.to_string(),
                            None,
                        ),
                    ),
                },
            );
        }
        Some(super::mock::answer_response(crate::wire::mock::respond(
            Dialect::OpenAI,
            &request,
            req.reply,
        )))
    }

    fn has_credential(&self) -> bool {
        self.key.is_some()
    }

    fn caller_key_slot(&self) -> Option<crate::byok::KeySlot> {
        Some(crate::byok::KeySlot::Bearer)
    }
}
