//! The body of a candidate in its provider's native format (translated or
//! passed through) and what its answer needs (the translator, its session,
//! whether to strip a usage chunk): the default of
//! [`super::Provider::prepare`], and the body adjustments providers share.
//!
//! Which translation applies is one table lookup,
//! [`crate::translate::plan`]`(client format, native format)`, made by
//! [`super::Provider::plan`].

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::body::RequestJson;
use crate::error::RequestError;
use crate::runtime::ApiFormat;
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

/// The upstream body for one candidate, and how to read its answer.
pub struct Prepared {
    /// The body in the provider's native format (the provider may shape it
    /// further when it builds the request).
    pub body: Bytes,
    /// The provider's model id.
    pub model: String,
    /// The API path the body is for (a client API's path).
    pub path: ApiFormat,
    /// The dialect of the decoded answers and errors.
    pub upstream: Dialect,
    /// Set when the answer must be translated for the client.
    pub translation: Option<(Translator, Session)>,
    /// The gateway added `stream_options.include_usage` for its own
    /// accounting; the usage chunk must not reach the client.
    pub strip_usage_chunk: bool,
    /// What the provider keeps about this request for building it and
    /// reading its answer (its own type; e.g. Bedrock's API and tool names).
    pub state: Option<Arc<dyn Any + Send + Sync>>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The body for `model` under `plan`: translated from the raw body in
/// bounded memory ([`translate::bounded`]; every parse error is the
/// client's, a 400), or the client's body with the provider's model id.
pub fn translate(
    x: &ClientCall<'_>,
    model: &str,
    plan: Plan,
    opts: &TargetOptions,
) -> Result<Prepared, RequestError> {
    match plan {
        Plan::Translate(t) => {
            let translated = (t.request)(x.json, model, opts, now())?;
            Ok(Prepared {
                body: translated.body,
                model: model.to_string(),
                path: t.upstream.api_path(),
                upstream: t.upstream.dialect(),
                translation: Some((t, translated.session)),
                strip_usage_chunk: false,
                state: None,
            })
        }
        _ => Ok(Prepared {
            body: x.json.with_string("model", model),
            model: model.to_string(),
            path: x.format,
            upstream: x.format.dialect(),
            translation: None,
            strip_usage_chunk: false,
            state: None,
        }),
    }
}

/// A passed-through Anthropic request with `role: "system"` messages, for
/// a provider that does not forward the beta announcing them (`betas`, the
/// flags it forwards, asked for only when the body may need folding):
/// the messages are folded into the top-level `system` (see
/// [`translate::system_messages`]).
pub fn fold_system_messages(
    x: &ClientCall<'_>,
    betas: impl FnOnce() -> Vec<String>,
    prepared: &mut Prepared,
) -> Result<(), RequestError> {
    use translate::system_messages::{
        MID_CONVERSATION_BETA, fold_into_system, may_hold_system_messages,
    };
    let anthropic_request = matches!(x.format, ApiFormat::Messages | ApiFormat::CountTokens);
    if prepared.translation.is_some() || !anthropic_request {
        return Ok(());
    }
    let Some(raw) = x
        .json
        .raw("messages")
        .filter(|r| may_hold_system_messages(r))
    else {
        return Ok(());
    };
    if betas().iter().any(|b| b == MID_CONVERSATION_BETA) {
        return Ok(());
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
        return Ok(());
    };
    let json = RequestJson::parse(prepared.body.clone())?;
    let json = RequestJson::parse(json.with_raw("system", &system.to_string()))?;
    prepared.body = json.with_raw("messages", &messages.to_string());
    Ok(())
}

/// A passed-through streaming Chat Completions request asks for the usage
/// chunk (`stream_options.include_usage`) so accounting sees the usage;
/// when the client did not ask, the chunk is stripped again.
pub fn ask_for_usage(x: &ClientCall<'_>, prepared: &mut Prepared) -> Result<(), RequestError> {
    if !x.stream || x.format != ApiFormat::ChatCompletions || prepared.translation.is_some() {
        return Ok(());
    }
    let mut options: serde_json::Map<String, Value> = x
        .json
        .decode("stream_options", "an object")
        .ok()
        .flatten()
        .unwrap_or_default();
    if options.get("include_usage").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    options.insert("include_usage".into(), Value::Bool(true));
    let json = RequestJson::parse(prepared.body.clone())?;
    prepared.body = json.with_raw("stream_options", &Value::Object(options).to_string());
    prepared.strip_usage_chunk = true;
    Ok(())
}
