//! The Gemini and Vertex flavours of the mock upstream, answered as Google does after checking
//! what Google checks:
//!
//! 1. authentication: the Gemini API wants `x-goog-api-key` (or `?key=`), else 403
//!    `PERMISSION_DENIED`; Vertex wants `Authorization: Bearer …`, else 401 `UNAUTHENTICATED`
//!    (the Vertex flavour is also a GCE metadata server: `GET
//!    /computeMetadata/v1/instance/service-accounts/{account}/token` with `Metadata-Flavor:
//!    Google` answers [`gw::METADATA_TOKEN`], so a gateway with `GCE_METADATA_HOST` pointed at
//!    the mock gets its Workload Identity token from it);
//! 2. the body: what Gemini refuses ([`gw::refuse_body`]: unknown fields and schema keys, a
//!    Vertex content without a role, ids on Vertex function calls, more than 5 stop sequences)
//!    is a 400 `INVALID_ARGUMENT`; a Claude body on Vertex without
//!    `anthropic_version: vertex-2023-10-16` or with `model` is Anthropic's 400;
//! 3. then the scripted [`Behaviour`]: Gemini answers (`generateContent`, SSE with `alt=sse`,
//!    a JSON array without it, `countTokens`), or Claude's (`rawPredict`, `streamRawPredict`,
//!    `count-tokens:rawPredict`). `StreamException` sends Google's in-stream
//!    `{"error": …}` (Anthropic's `event: error` for Claude).

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::plan::{Plan, plan, with_headers};
use super::{MockBody, Shared, StreamEnd, full, json_response, sse_response};
use crate::behaviour::{Behaviour, DEFAULT_TEXT};
use crate::google_wire::{self as gw, Method, Service};
use crate::wire::{self, Flavor, Reply};

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

/// The metadata server's token answer (403 without `Metadata-Flavor: Google`, as GCE does).
pub(super) fn metadata_token(headers: &HeaderMap) -> Response<MockBody> {
    if headers.get("metadata-flavor").map(HeaderValue::as_bytes) != Some(b"Google") {
        return super::json_response(
            403,
            &json!({"error": "Missing required header: Metadata-Flavor"}),
            Flavor::Vertex,
        );
    }
    json_response(
        200,
        &json!({"access_token": gw::METADATA_TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
        Flavor::Vertex,
    )
}

fn google_error(status: u16, message: &str, flavor: Flavor) -> Response<MockBody> {
    json_response(status, &gw::error_body(status, message), flavor)
}

fn refuse(flavor: Flavor, p: &gw::GooglePath, req: &Received<'_>) -> Option<Response<MockBody>> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    match p.service {
        Service::GeminiApi => {
            let key = header("x-goog-api-key").is_some_and(|k| !k.is_empty())
                || req
                    .query
                    .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("key=")));
            if !key {
                return Some(google_error(
                    403,
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                    flavor,
                ));
            }
        }
        Service::Vertex => {
            if !header("authorization").is_some_and(|a| a.starts_with("Bearer ")) {
                return Some(google_error(
                    401,
                    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                    flavor,
                ));
            }
        }
    }
    let message = match p.method {
        Method::RawPredict | Method::StreamRawPredict => gw::refuse_claude_body(req.body, false),
        Method::ClaudeCountTokens => gw::refuse_claude_body(req.body, true),
        Method::CountTokens => None,
        Method::GenerateContent | Method::StreamGenerateContent => {
            gw::refuse_body(p.service, req.body)
        }
    }?;
    Some(match p.method {
        Method::RawPredict | Method::StreamRawPredict | Method::ClaudeCountTokens => json_response(
            400,
            &wire::anthropic_error("invalid_request_error", &message),
            flavor,
        ),
        _ => google_error(400, &message, flavor),
    })
}

/// Answers one Gemini or Vertex request.
pub(super) async fn answer(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    req: Received<'_>,
    behaviour: Behaviour,
) -> Response<MockBody> {
    let flavor = shared.flavor;
    let Some(p) = gw::parse_path(req.path) else {
        return google_error(404, "not found", flavor);
    };
    if let Some(refused) = refuse(flavor, &p, &req) {
        return refused;
    }
    let claude = p.publisher == "anthropic";
    let (reply, usage, end, exception) = match plan(behaviour, &shared, &kill).await {
        Plan::Status {
            status,
            body,
            headers,
        } => {
            let body = match (body.is_null(), claude) {
                (false, _) => body,
                (true, true) => wire::default_error_body(Flavor::Anthropic, status),
                (true, false) => wire::default_error_body(flavor, status),
            };
            return with_headers(json_response(status, &body, flavor), headers);
        }
        Plan::Answer { reply, usage, end } => {
            let end = match end {
                // Not released on this flavour: it stalls.
                StreamEnd::Held(n, _) => StreamEnd::Stall(n),
                other => other,
            };
            (reply, usage, end, None)
        }
        Plan::Exception {
            after_events,
            exception,
            message,
        } => (
            Reply::Text(DEFAULT_TEXT.to_string()),
            None,
            StreamEnd::Complete,
            Some((after_events, exception, message)),
        ),
    };
    let usage = usage.unwrap_or_else(|| {
        let mut u = wire::default_usage(req.body, &reply);
        if !claude {
            u.input =
                (req.body.get("contents").map_or(0, |c| c.to_string().len()) as u64 / 4).max(1);
        }
        u
    });
    match p.method {
        Method::CountTokens => {
            return json_response(
                200,
                &json!({"totalTokens": usage.input + usage.cached}),
                flavor,
            );
        }
        Method::ClaudeCountTokens => {
            return json_response(200, &json!({"input_tokens": usage.input}), flavor);
        }
        _ => {}
    }
    let model = p.model.clone();
    if p.method.streams() {
        let mut frames = if claude {
            gw::vertex_claude_stream(&model, &reply, usage)
        } else {
            gw::sse_frames(&gw::stream_chunks(&model, &reply, usage))
        };
        if let Some((after, exception, message)) = exception {
            frames.truncate(after);
            let f = if claude {
                wire::stream_error_frame(Flavor::Anthropic, &exception, &message)
            } else {
                wire::stream_error_frame(flavor, &exception, &message)
            };
            frames.push(f);
        }
        let alt_sse = req
            .query
            .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
        if !claude && !alt_sse {
            // Without `alt=sse` Google streams one JSON array.
            let items: Vec<Value> = frames
                .iter()
                .filter_map(|f| serde_json::from_str(&f.data).ok())
                .collect();
            return json_response(200, &Value::Array(items), flavor);
        }
        return sse_response(frames, end, flavor, shared);
    }
    let body = if claude {
        gw::vertex_claude_message(&model, &reply, usage)
    } else {
        gw::generate_content(&model, &reply, usage)
    };
    match end {
        StreamEnd::Malformed => {
            let mut response = json_response(200, &body, flavor);
            *response.body_mut() = full("{\"candidates\": broken");
            response
        }
        _ => json_response(200, &body, flavor),
    }
}
