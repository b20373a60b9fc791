//! The Azure OpenAI flavour of the mock upstream: the v1 and deployment paths, answered as Azure
//! does after checking what it checks ([`aw::refuse`]: a credential in `api-key` or a bearer
//! token; `api-version` on deployment paths), then the scripted [`Behaviour`] as OpenAI answers
//! with Azure's content-filter annotations (the `choices: []` first chunk, a choice without
//! `delta`); `Behaviour::content_policy(Flavor::Azure)` is Azure's prompt-filter 400.
//! Responses requests are answered as OpenAI's Responses API.

use std::sync::Arc;

use http::{HeaderMap, Response};
use serde_json::Value;
use tokio::sync::Notify;

use super::plan::plain_reply;
use super::{Endpoint, MockBody, Shared, json_response, sse_response};
use crate::azure_wire::{self as aw, AzureOp};
use crate::behaviour::Behaviour;
use crate::wire;

/// What the handler read of the request.
pub(super) struct Received<'a> {
    /// The request path.
    pub path: &'a str,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// The body as JSON (`Null` when empty).
    pub body: &'a Value,
}

/// Answers one Azure OpenAI request.
pub(super) async fn answer(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    req: Received<'_>,
    behaviour: Behaviour,
) -> Response<MockBody> {
    let flavor = shared.flavor;
    let Some((paths, op)) = aw::parse_path(req.path) else {
        return json_response(404, &aw::error_body(404), flavor);
    };
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization").is_some_and(|a| a.starts_with("Bearer "));
    if let Some((status, body)) = aw::refuse(paths, req.query, header("api-key"), bearer) {
        return json_response(status, &body, flavor);
    }
    if op == AzureOp::Responses {
        return super::answer(shared, kill, Endpoint::Responses, req.body, behaviour).await;
    }
    // Chat Completions: the OpenAI answer with Azure's annotations.
    let (reply, usage) = match plain_reply(behaviour) {
        Ok(plain) => plain,
        Err(behaviour) => {
            return super::answer(shared, kill, Endpoint::ChatCompletions, req.body, behaviour)
                .await;
        }
    };
    let usage = usage.unwrap_or_else(|| wire::default_usage(req.body, &reply));
    let model = "gpt-4o-2024-11-20";
    if req.body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = req
            .body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let frames = aw::stream(model, &reply, usage, include_usage);
        return sse_response(frames, super::StreamEnd::Complete, flavor, shared);
    }
    json_response(200, &aw::completion(model, &reply, usage), flavor)
}
