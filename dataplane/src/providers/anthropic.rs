//! The Anthropic Messages API (`api.anthropic.com` or compatible).
//!
//! Native format Messages: Messages and count_tokens requests pass through
//! (with the provider's model id; `role: "system"` messages folded into
//! `system` unless the mid-conversation beta is forwarded), Chat
//! Completions and Responses requests are translated. The request goes to
//! `{endpoint}/v1/messages` with the client's query (`?beta=true`), the key
//! as `x-api-key`, the client's `anthropic-version` (else the backend's)
//! and the client's `anthropic-beta` flags through the backend's
//! allowlist (`anthropic.allowedBetas`; unset forwards all).

use std::collections::HashSet;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use switchboard_proto as pb;

use super::{
    BoxFuture, ClientCall, EmulatedRequest, Endpoint, Outgoing, Prepared, Provider, ProviderError,
    ProviderKind, headers, prepare,
};
use crate::error::RequestError;
use crate::runtime::ApiFormat;
use crate::translate::{self, Plan, UpstreamFormat};
use crate::upstream::UpstreamBody;
use crate::wire::Dialect;

/// (A constant name: a lookup by `&str` parses the name first.)
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");

/// `anthropic-version` sent when neither the client nor the backend says.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// An Anthropic backend.
pub struct Anthropic {
    endpoint: Endpoint,
    key: Option<HeaderValue>,
    version: HeaderValue,
    allowed_betas: Option<HashSet<String>>,
}

impl Anthropic {
    /// From the snapshot; `credential` is the API key.
    pub fn from_proto(b: &pb::Backend, credential: Option<String>) -> Result<Self, String> {
        let settings = b.anthropic.clone().unwrap_or_default();
        let version = if settings.version.is_empty() {
            DEFAULT_VERSION.to_string()
        } else {
            settings.version
        };
        Ok(Self {
            endpoint: Endpoint::parse(&b.endpoint)?,
            key: credential
                .as_deref()
                .map(super::sensitive_header)
                .transpose()?,
            version: HeaderValue::from_str(&version)
                .map_err(|_| format!("invalid anthropic version {version:?}"))?,
            allowed_betas: (!settings.allowed_betas.is_empty())
                .then(|| settings.allowed_betas.into_iter().collect()),
        })
    }

    /// The Mock's stand-in: answers Messages and count_tokens requests.
    pub fn emulator() -> Self {
        Self {
            endpoint: Endpoint::parse(super::mock::MOCK_BASE).expect("a valid URL"),
            key: None,
            version: HeaderValue::from_static(DEFAULT_VERSION),
            allowed_betas: None,
        }
    }
}

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn plan(&self, client: ApiFormat) -> Plan {
        translate::plan(client, UpstreamFormat::Messages)
    }

    fn prepare(
        &self,
        call: &ClientCall<'_>,
        model: &str,
        plan: Plan,
    ) -> Result<Prepared, RequestError> {
        let mut prepared = prepare::translate(call, model, plan, &self.target_options())?;
        prepare::fold_system_messages(call, || self.betas(call.headers), &mut prepared)?;
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
                .uri(prepared.path, call.query)
                .map_err(|e| ProviderError::Uri(e.to_string()))?;
            let mut h = headers::base(call.headers, false, call.forward);
            let version = call
                .headers
                .get(ANTHROPIC_VERSION)
                .cloned()
                .unwrap_or_else(|| self.version.clone());
            h.insert(ANTHROPIC_VERSION, version);
            let betas = self.betas(call.headers);
            if !betas.is_empty()
                && let Ok(v) = HeaderValue::from_str(&betas.join(","))
            {
                h.insert(HeaderName::from_static("anthropic-beta"), v);
            }
            if let Some(key) = &self.key {
                h.insert(HeaderName::from_static("x-api-key"), key.clone());
            }
            Ok(Outgoing::sse(uri, h, prepared.body.clone()))
        })
    }

    fn betas(&self, client: &HeaderMap) -> Vec<String> {
        headers::anthropic_betas(client, self.allowed_betas.as_ref())
    }

    fn emulate(&self, req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
        let path = req.path.split('?').next().unwrap_or_default();
        let count = path.ends_with("/messages/count_tokens");
        if !count && !path.ends_with("/messages") {
            return None;
        }
        if let Some(status) = req.fail {
            return Some(super::mock::error_response(Dialect::Anthropic, status));
        }
        let request: serde_json::Value =
            serde_json::from_slice(req.body).unwrap_or(serde_json::Value::Null);
        if count {
            let n = crate::wire::mock::count_tokens(&request);
            return Some(super::mock::json_response(
                StatusCode::OK,
                Bytes::from(format!("{{\"input_tokens\":{n}}}")),
            ));
        }
        Some(super::mock::answer_response(crate::wire::mock::respond(
            Dialect::Anthropic,
            &request,
            req.reply,
        )))
    }

    fn has_credential(&self) -> bool {
        self.key.is_some()
    }

    fn caller_key_slot(&self) -> Option<crate::byok::KeySlot> {
        Some(crate::byok::KeySlot::Header(HeaderName::from_static(
            "x-api-key",
        )))
    }
}
