//! The upstream body of a candidate (translated or passed through) and what
//! its answer needs (the translator, its session, whether to strip a usage
//! chunk).
//!
//! Which translation applies is one table lookup,
//! [`crate::translate::plan`]`(client format, backend's native format)`.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::body::RequestJson;
use crate::error::RequestError;
use crate::runtime::{ApiFormat, BackendRuntime, ProviderKind};
use crate::translate::{self, Plan, Session, TargetOptions, Translator};
use crate::wire::Dialect;

/// What the provider layer needs to know about the client's request.
pub struct ClientCall<'a> {
    /// Client API.
    pub format: ApiFormat,
    /// The client's body.
    pub json: &'a RequestJson,
    /// The client asked for a stream.
    pub stream: bool,
    /// The client's query string.
    pub query: Option<&'a str>,
    /// The client's headers.
    pub headers: &'a HeaderMap,
    /// Headers built from the caller's verified token claims.
    pub forward: &'a [(HeaderName, HeaderValue)],
}

/// The upstream request for one candidate, and how to read its answer.
pub struct Prepared {
    /// The body sent upstream.
    pub body: Bytes,
    /// The API path the upstream is called on.
    pub path: ApiFormat,
    /// The dialect of the upstream's answers and errors.
    pub upstream: Dialect,
    /// Set when the answer must be translated for the client.
    pub translation: Option<(Translator, Session)>,
    /// The gateway added `stream_options.include_usage` for its own
    /// accounting; the usage chunk must not reach the client.
    pub strip_usage_chunk: bool,
}

/// The plan for a candidate backend: the mock answers in the client's format.
pub fn plan_for(format: ApiFormat, backend: &BackendRuntime) -> Plan {
    // OpenAI itself serves the Responses API: relay it unchanged.
    if format == ApiFormat::Responses && backend.provider == ProviderKind::OpenAI {
        return Plan::Passthrough;
    }
    match backend.provider.native_format() {
        None => Plan::Passthrough,
        Some(native) => translate::plan(format, native),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An Anthropic request with `role: "system"` messages for an Anthropic
/// backend that will not receive the beta announcing them: the messages are
/// folded into the top-level `system` (see
/// [`translate::system_messages`]). `None` leaves the body as it is.
fn fold_system_messages(
    x: &ClientCall<'_>,
    backend: &BackendRuntime,
    body: &Bytes,
) -> Result<Option<Bytes>, RequestError> {
    use translate::system_messages::{
        MID_CONVERSATION_BETA, fold_into_system, may_hold_system_messages,
    };
    let anthropic_request = matches!(x.format, ApiFormat::Messages | ApiFormat::CountTokens);
    if backend.provider != ProviderKind::Anthropic || !anthropic_request {
        return Ok(None);
    }
    let Some(raw) = x
        .json
        .raw("messages")
        .filter(|r| may_hold_system_messages(r))
    else {
        return Ok(None);
    };
    if super::headers::forwards_beta(x.headers, backend, MID_CONVERSATION_BETA) {
        return Ok(None);
    }
    let messages: Value = serde_json::from_str(raw)
        .map_err(|e| RequestError::Internal(format!("re-parsing messages: {e}")))?;
    let system: Option<Value> = match x.json.raw("system") {
        Some(s) => Some(
            serde_json::from_str(s)
                .map_err(|e| RequestError::Internal(format!("re-parsing system: {e}")))?,
        ),
        None => None,
    };
    let Some((system, messages)) = fold_into_system(system.as_ref(), &messages)? else {
        return Ok(None);
    };
    let json = crate::body::RequestJson::parse(body.clone())?;
    let json = crate::body::RequestJson::parse(json.with_raw("system", &system.to_string()))?;
    Ok(Some(json.with_raw("messages", &messages.to_string())))
}

/// Builds the upstream request for `backend` asking for `provider_model`.
pub fn prepare(
    x: &ClientCall<'_>,
    backend: &BackendRuntime,
    provider_model: &str,
    plan: Plan,
) -> Result<Prepared, RequestError> {
    let client = x.format.dialect();
    match plan {
        Plan::Translate(t) => {
            let opts = TargetOptions {
                legacy_max_tokens: backend.provider == ProviderKind::OpenAICompatible,
                default_max_tokens: translate::DEFAULT_MAX_TOKENS,
            };
            // Translated from the raw body in bounded memory (translate::bounded);
            // every parse error is the client's (400), never a 500.
            let translated = (t.request)(x.json, provider_model, &opts, now())?;
            Ok(Prepared {
                body: translated.body,
                path: t.upstream.api_path(),
                upstream: t.upstream.dialect(),
                translation: Some((t, translated.session)),
                strip_usage_chunk: false,
            })
        }
        _ => {
            let mut body = x.json.with_string("model", provider_model);
            if let Some(folded) = fold_system_messages(x, backend, &body)? {
                body = folded;
            }
            let mut strip_usage_chunk = false;
            let openai_upstream = backend
                .provider
                .native_format()
                .is_some_and(|f| f == translate::UpstreamFormat::ChatCompletions);
            if x.stream && x.format == ApiFormat::ChatCompletions && openai_upstream {
                // Ask for usage so accounting sees it; strip it again if
                // the client did not ask.
                let mut options: serde_json::Map<String, Value> = x
                    .json
                    .decode("stream_options", "an object")
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let asked = options.get("include_usage").and_then(Value::as_bool) == Some(true);
                if !asked {
                    options.insert("include_usage".into(), Value::Bool(true));
                    let json = crate::body::RequestJson::parse(body.clone())?;
                    body = json.with_raw("stream_options", &Value::Object(options).to_string());
                    strip_usage_chunk = true;
                }
            }
            Ok(Prepared {
                body,
                path: x.format,
                upstream: client,
                translation: None,
                strip_usage_chunk,
            })
        }
    }
}
