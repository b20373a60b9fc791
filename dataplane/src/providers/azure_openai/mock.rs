//! The `Mock` provider speaking Azure OpenAI: the answer an Azure OpenAI
//! resource would give, in its exact framing, so a Mock backend with
//! `mock.emulate: AzureOpenAI` stands in for Azure offline and the gateway's
//! Azure request building and stream filtering run on real bytes.
//!
//! - Paths: `/openai/v1/chat/completions`, `/openai/v1/responses`,
//!   `/openai/deployments/{deployment}/chat/completions` and
//!   `/openai/responses`; deployment-family paths without `api-version`
//!   are answered 404 `Resource not found`, as Azure does.
//! - Chat Completions: the OpenAI mock's answer
//!   ([`crate::wire::mock::respond`]) with Azure's content-filter
//!   annotations: `prompt_filter_results` and per-choice
//!   `content_filter_results` on whole answers; on streams, the
//!   `choices: []` prompt-filter chunk first (with `id: ""`, `created: 0`)
//!   and an asynchronous-filter chunk (a choice with filter results and no
//!   `delta`) before `[DONE]`.
//! - Responses: the OpenAI mock's Responses answer (Azure serves OpenAI's).
//! - `mock.failOn` with `failStatus: 400`: Azure's prompt-filter refusal
//!   (`error.code: content_filter`, `innererror.code:
//!   ResponsibleAIPolicyViolation`), which the gateway returns to the client
//!   without failing over; other statuses: the OpenAI-shaped error.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::providers::EmulatedRequest;
use crate::providers::mock::{answer_response, error_response, json_response, stream_response};
use crate::upstream::UpstreamBody;
use crate::wire::Dialect;
use crate::wire::mock::{MockResponse, respond};

/// The operation of an Azure path, if it is one.
fn operation(path: &str) -> Option<(bool, bool)> {
    let rest = path.split_once("/openai/")?.1;
    // (deployments family, responses)
    match rest {
        "v1/chat/completions" => Some((false, false)),
        "v1/responses" => Some((false, true)),
        "responses" => Some((true, true)),
        _ => {
            let d = rest
                .strip_prefix("deployments/")?
                .strip_suffix("/chat/completions")?;
            (!d.is_empty() && !d.contains('/')).then_some((true, false))
        }
    }
}

fn filter_results() -> Value {
    json!({
        "hate": {"filtered": false, "severity": "safe"},
        "self_harm": {"filtered": false, "severity": "safe"},
        "sexual": {"filtered": false, "severity": "safe"},
        "violence": {"filtered": false, "severity": "safe"}
    })
}

fn prompt_filter_results() -> Value {
    json!([{"prompt_index": 0, "content_filter_results": filter_results()}])
}

/// Azure's answer to a prompt its content filter refused.
pub fn content_filter_error() -> Bytes {
    Bytes::from(
        json!({"error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. (the mock answers 400: mock.failOn matched)",
            "type": null,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    "hate": {"filtered": true, "severity": "high"},
                    "self_harm": {"filtered": false, "severity": "safe"},
                    "sexual": {"filtered": false, "severity": "safe"},
                    "violence": {"filtered": false, "severity": "safe"}
                }
            }
        }})
        .to_string(),
    )
}

/// Adds Azure's annotations to an OpenAI mock answer.
fn annotate(answer: MockResponse) -> Response<UpstreamBody> {
    match answer {
        MockResponse::Json(bytes) => {
            let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
                return json_response(StatusCode::OK, bytes);
            };
            v["prompt_filter_results"] = prompt_filter_results();
            for choice in v["choices"].as_array_mut().into_iter().flatten() {
                choice["content_filter_results"] = filter_results();
            }
            json_response(StatusCode::OK, Bytes::from(v.to_string()))
        }
        MockResponse::Sse(events) => {
            let first = json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                "prompt_filter_results": prompt_filter_results()});
            let mut out = vec![Bytes::from(format!("data: {first}\n\n"))];
            let id = events
                .first()
                .and_then(|e| std::str::from_utf8(e).ok())
                .and_then(|e| e.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .and_then(|c| c["id"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let last = events.len().saturating_sub(1);
            for (i, e) in events.into_iter().enumerate() {
                if i == last {
                    let filtered = json!({"id": id, "object": "chat.completion.chunk", "created": 0,
                        "model": "", "choices": [{"index": 0, "finish_reason": null,
                        "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 1},
                        "content_filter_results": filter_results()}]});
                    out.push(Bytes::from(format!("data: {filtered}\n\n")));
                }
                out.push(e);
            }
            stream_response("text/event-stream", out)
        }
    }
}

/// Azure OpenAI's answer to `req` (see the module docs); `None` for a path
/// that is not Azure's.
pub fn emulate(req: &EmulatedRequest<'_>) -> Option<Response<UpstreamBody>> {
    let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let (deployments, responses) = operation(path)?;
    let has_version = query.split('&').any(|kv| kv.starts_with("api-version="));
    if deployments && !has_version {
        return Some(json_response(
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"error":{"code":"404","message":"Resource not found"}}"#),
        ));
    }
    match req.fail {
        Some(StatusCode::BAD_REQUEST) => {
            return Some(json_response(
                StatusCode::BAD_REQUEST,
                content_filter_error(),
            ));
        }
        Some(status) => return Some(error_response(Dialect::OpenAI, status)),
        None => {}
    }
    let request: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
    if responses {
        return Some(
            match crate::translate::responses::mock::respond_responses(
                &request,
                req.reply,
                crate::providers::mock::unix_now(),
            ) {
                Ok(a) => answer_response(a.response),
                Err(e) => json_response(
                    StatusCode::BAD_REQUEST,
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
    Some(annotate(respond(Dialect::OpenAI, &request, req.reply)))
}
