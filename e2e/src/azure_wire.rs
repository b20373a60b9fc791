//! The Azure OpenAI wire format spoken by the Azure-flavoured mock upstream
//! (`reference/protocols.md` §6): the v1 paths (`/openai/v1/chat/completions`,
//! `/openai/v1/responses`) and the deployment paths
//! (`/openai/deployments/{deployment}/chat/completions?api-version=…`,
//! `/openai/responses?api-version=…`), the `api-key` header (or an Entra bearer token), the
//! content-filter annotations Azure adds to answers and streams, and its error codes.

use serde_json::{Value, json};

use crate::wire::{Reply, SseFrame, Usage, openai_completion, openai_error, openai_stream};

/// An Azure OpenAI operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureOp {
    /// Chat Completions, with the deployment of the path (`None` on the v1 API: the body's `model`).
    ChatCompletions(Option<String>),
    /// The Responses API.
    Responses,
}

/// Which path family a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzurePaths {
    /// `/openai/v1/…`.
    V1,
    /// `/openai/deployments/…` (and `/openai/responses`), `api-version` required.
    Deployments,
}

/// Parses an Azure OpenAI path.
pub fn parse_path(path: &str) -> Option<(AzurePaths, AzureOp)> {
    let rest = path.split("/openai/").nth(1)?;
    match rest {
        "v1/chat/completions" => Some((AzurePaths::V1, AzureOp::ChatCompletions(None))),
        "v1/responses" => Some((AzurePaths::V1, AzureOp::Responses)),
        "responses" => Some((AzurePaths::Deployments, AzureOp::Responses)),
        _ => {
            let d = rest
                .strip_prefix("deployments/")?
                .strip_suffix("/chat/completions")?;
            (!d.is_empty() && !d.contains('/')).then(|| {
                (
                    AzurePaths::Deployments,
                    AzureOp::ChatCompletions(Some(d.to_string())),
                )
            })
        }
    }
}

/// The `api-version` of a query string.
pub fn api_version(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="))
        .map(str::to_string)
}

/// Why a request is refused before any behaviour (status and body), if it is: no credential
/// (401), a deployment path without `api-version` (404, as Azure answers), a v1 request whose
/// `api-version` is dated (400).
pub fn refuse(
    paths: AzurePaths,
    query: Option<&str>,
    api_key: Option<&str>,
    bearer: bool,
) -> Option<(u16, Value)> {
    if api_key.is_none_or(str::is_empty) && !bearer {
        return Some((
            401,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        ));
    }
    match (paths, api_version(query)) {
        (AzurePaths::Deployments, None) => Some((
            404,
            json!({"error": {"code": "404", "message": "Resource not found"}}),
        )),
        (AzurePaths::V1, Some(v)) if v != "preview" && v != "latest" => Some((
            400,
            json!({"error": {"code": "BadRequest", "message": format!("API version not supported: {v}")}}),
        )),
        _ => None,
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

/// A whole Chat Completions answer with Azure's filter annotations.
pub fn completion(model: &str, reply: &Reply, usage: Usage) -> Value {
    let mut body = openai_completion(model, reply, usage);
    body["prompt_filter_results"] =
        json!([{"prompt_index": 0, "content_filter_results": filter_results()}]);
    body["choices"][0]["content_filter_results"] = filter_results();
    body
}

/// A Chat Completions stream as Azure sends it: first a chunk with `choices: []` and the prompt
/// filter results, then OpenAI's chunks, an asynchronous-filter annotation chunk (a choice
/// without `delta`) before the finish chunk, the usage chunk when asked, `[DONE]`.
pub fn stream(model: &str, reply: &Reply, usage: Usage, include_usage: bool) -> Vec<SseFrame> {
    let mut frames = vec![SseFrame {
        event: None,
        data: json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filter_results()}]})
        .to_string(),
    }];
    let openai = openai_stream(model, reply, usage, include_usage);
    let finish_at = openai
        .iter()
        .position(|f| f.data.contains("\"finish_reason\":\""))
        .unwrap_or(openai.len());
    for (i, f) in openai.into_iter().enumerate() {
        if i == finish_at {
            frames.push(SseFrame {
                event: None,
                data: json!({"choices": [{"content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 10},
                    "content_filter_results": filter_results(), "finish_reason": null, "index": 0}],
                    "created": crate::wire::CREATED, "id": "chatcmpl-mock-0001", "model": model, "object": "chat.completion.chunk"})
                .to_string(),
            });
        }
        frames.push(f);
    }
    frames
}

/// The 400 Azure answers when its content filter refuses the prompt (never to be failed over).
pub fn content_filter_body() -> Value {
    json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            "hate": {"filtered": true, "severity": "high"},
            "self_harm": {"filtered": false, "severity": "safe"},
            "sexual": {"filtered": false, "severity": "safe"},
            "violence": {"filtered": false, "severity": "safe"}}}}})
}

/// Azure's error body for `status`.
pub fn error_body(status: u16) -> Value {
    match status {
        404 => {
            json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}})
        }
        429 => {
            json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second."}})
        }
        _ => openai_error(
            &format!("mock upstream error {status}"),
            "server_error",
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_refusals() {
        assert_eq!(
            parse_path("/openai/deployments/prod-gpt4o/chat/completions"),
            Some((
                AzurePaths::Deployments,
                AzureOp::ChatCompletions(Some("prod-gpt4o".into()))
            ))
        );
        assert_eq!(
            parse_path("/openai/v1/responses"),
            Some((AzurePaths::V1, AzureOp::Responses))
        );
        assert_eq!(parse_path("/v1/chat/completions"), None);
        assert_eq!(refuse(AzurePaths::V1, None, Some("k"), false), None);
        assert_eq!(
            refuse(AzurePaths::V1, None, None, false).map(|r| r.0),
            Some(401)
        );
        assert_eq!(
            refuse(AzurePaths::Deployments, None, Some("k"), false).map(|r| r.0),
            Some(404)
        );
        assert_eq!(
            refuse(
                AzurePaths::Deployments,
                Some("api-version=2024-10-21"),
                None,
                true
            ),
            None
        );
        assert_eq!(
            refuse(
                AzurePaths::V1,
                Some("api-version=2024-10-21"),
                Some("k"),
                false
            )
            .map(|r| r.0),
            Some(400)
        );
    }

    #[test]
    fn streams_start_with_the_prompt_filter_chunk() {
        let frames = stream(
            "gpt-4o",
            &Reply::Text("a b".into()),
            Usage::default(),
            false,
        );
        let first: Value = serde_json::from_str(&frames[0].data).unwrap();
        assert_eq!(first["choices"], json!([]));
        assert_eq!(first["id"], "");
        assert!(
            frames
                .iter()
                .any(|f| f.data.contains("content_filter_offsets"))
        );
        assert_eq!(frames.last().unwrap().data, "[DONE]");
    }
}
