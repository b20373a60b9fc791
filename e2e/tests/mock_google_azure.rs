//! The Gemini, Vertex and Azure mock upstreams: what they check and how they answer, and the
//! data plane's provider requests and translations against them, so the gateway's Google and
//! Azure code meets a second, independent implementation of each wire format (the real binary
//! serving through them: `gateway_google.rs`).

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use switchboard_dataplane::aws::Secret;
use switchboard_dataplane::azure::{AzureBackend, AzureOp};
use switchboard_dataplane::google::{GeminiBackend, GeminiOp, VertexBackend, VertexOp};
use switchboard_dataplane::runtime::ApiFormat;
use switchboard_dataplane::translate::gemini::{self, GeminiOptions};
use switchboard_dataplane::translate::vertex as claude;
use switchboard_dataplane::wire::sse::SseParser;
use switchboard_e2e::client::{SseEvent, json_body, post_raw};
use switchboard_e2e::{Behaviour, Flavor, MockUpstream, post_json, post_stream};
use switchboard_proto as pb;

const GEMINI_BODY: &str = r#"{"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}"#;

fn gemini_body() -> Value {
    serde_json::from_str(GEMINI_BODY).unwrap()
}

#[tokio::test]
async fn the_gemini_mock_checks_the_key_and_the_body_and_streams_without_done() {
    let mock = MockUpstream::start(Flavor::Gemini).await;
    mock.set_default(Behaviour::ok("one two three"));
    let url = format!(
        "{}/v1beta/models/gemini-2.5-pro:generateContent",
        mock.url()
    );
    let (status, _, body) = post_json(&url, &[], &gemini_body()).await;
    assert_eq!(status, 403);
    assert_eq!(json_body(&body)["error"]["status"], "PERMISSION_DENIED");

    let key = [("x-goog-api-key", "AIzaSyMock")];
    let (status, _, body) = post_json(&url, &key, &gemini_body()).await;
    assert_eq!(status, 200);
    let body = json_body(&body);
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        "one two three"
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert!(body["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);

    let stream = format!(
        "{}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        mock.url()
    );
    let (status, headers, events) = post_stream(&stream, &key, &gemini_body()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(
        events
            .iter()
            .all(|e| e.event.is_none() && e.data != "[DONE]")
    );
    let last = events.last().unwrap().json().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    // Without alt=sse: one JSON array.
    let array = stream.replace("?alt=sse", "");
    let (status, _, body) = post_json(&array, &key, &gemini_body()).await;
    assert_eq!(status, 200);
    assert_eq!(json_body(&body).as_array().unwrap().len(), 3);

    let mut bad = gemini_body();
    bad["tools"] = json!([{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}}]}]);
    let (status, _, body) = post_json(&url, &key, &bad).await;
    assert_eq!(status, 400);
    let body = json_body(&body);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("additionalProperties")
    );

    mock.set_default(Behaviour::status(429));
    let (status, _, body) = post_json(&url, &key, &gemini_body()).await;
    assert_eq!(status, 429);
    assert_eq!(json_body(&body)["error"]["details"][0]["retryDelay"], "1s");
}

#[tokio::test]
async fn the_vertex_mock_serves_gemini_and_claude_with_a_bearer_token() {
    let mock = MockUpstream::start(Flavor::Vertex).await;
    let base = format!(
        "{}/v1/projects/my-project/locations/us-east5/publishers",
        mock.url()
    );
    let bearer = [("authorization", "Bearer ya29.mock")];
    let (status, _, body) = post_json(
        &format!("{base}/google/models/gemini-2.5-pro:generateContent"),
        &[],
        &gemini_body(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(json_body(&body)["error"]["status"], "UNAUTHENTICATED");
    let no_role = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let (status, _, _) = post_json(
        &format!("{base}/google/models/gemini-2.5-pro:generateContent"),
        &bearer,
        &no_role,
    )
    .await;
    assert_eq!(status, 400, "Vertex wants a role on every content");

    let claude = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "hi there"}]});
    mock.set_default(Behaviour::ToolCall {
        name: "get_weather".into(),
        arguments: json!({"city": "Paris"}),
    });
    let (status, _, events) = post_stream(
        &format!("{base}/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"),
        &bearer,
        &claude,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(events[0].event.as_deref(), Some("message_start"));
    assert!(events.iter().any(|e| e.data.contains("toolu_vrtx_")));
    let mut with_model = claude.clone();
    with_model["model"] = json!("claude-sonnet-4");
    let (status, _, body) = post_json(
        &format!("{base}/anthropic/models/claude-sonnet-4@20250514:rawPredict"),
        &bearer,
        &with_model,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        json_body(&body)["error"]["message"],
        "model: Extra inputs are not permitted"
    );
    // The Vertex mock is also the metadata server (GKE Workload Identity).
    let token_url = format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/token",
        mock.url()
    );
    let (status, _, _) = switchboard_e2e::client::get(&token_url, &[]).await;
    assert_eq!(status, 403, "Metadata-Flavor is required");
    let (status, _, body) =
        switchboard_e2e::client::get(&token_url, &[("metadata-flavor", "Google")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        json_body(&body)["access_token"],
        switchboard_e2e::google_wire::METADATA_TOKEN
    );
    let count = json!({"anthropic_version": "vertex-2023-10-16", "model": "claude-sonnet-4@20250514",
        "messages": [{"role": "user", "content": "hi there"}]});
    let (status, _, body) = post_json(
        &format!("{base}/anthropic/models/count-tokens:rawPredict"),
        &bearer,
        &count,
    )
    .await;
    assert_eq!(status, 200);
    assert!(json_body(&body)["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_azure_mock_wants_a_key_and_an_api_version_and_annotates_streams() {
    let mock = MockUpstream::start(Flavor::Azure).await;
    let chat = json!({"model": "prod-gpt4o", "messages": [{"role": "user", "content": "hi"}], "stream": true});
    let deployment = format!(
        "{}/openai/deployments/prod-gpt4o/chat/completions",
        mock.url()
    );
    let key = [("api-key", "azure-key")];
    let (status, _, _) = post_json(&deployment, &[], &chat).await;
    assert_eq!(status, 401);
    let (status, _, body) = post_json(&deployment, &key, &chat).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, events) =
        post_stream(&format!("{deployment}?api-version=2024-10-21"), &key, &chat).await;
    assert_eq!(status, 200);
    let first = events[0].json().unwrap();
    assert_eq!(first["choices"], json!([]));
    assert!(first.get("prompt_filter_results").is_some());
    assert_eq!(events.last().unwrap().data, "[DONE]");

    mock.set_default(Behaviour::content_policy(Flavor::Azure));
    let (status, _, body) = post_json(
        &format!("{}/openai/v1/chat/completions", mock.url()),
        &key,
        &chat,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json_body(&body)["error"]["code"], "content_filter");
}

/// Sends a request the data plane prepared and returns the answer.
async fn send(req: http::Request<http_body_util::Full<Bytes>>) -> (u16, Bytes) {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, answer) = post_raw(&parts.uri.to_string(), &refs, body).await;
    (status.as_u16(), answer)
}

/// Runs a Gemini SSE answer through the data plane's translator for `client`.
fn translate_stream(client: ApiFormat, req: &gemini::GeminiRequest, wire: &[u8]) -> Vec<SseEvent> {
    let mut t = gemini::stream_translator(client, req, "gemini-2.5-pro");
    let mut out = Vec::new();
    for e in SseParser::default().feed(wire) {
        t.event(&e.unwrap(), &mut out);
    }
    SseParser::default()
        .feed(&out)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            SseEvent {
                event: e.event,
                data: e.data,
            }
        })
        .collect()
}

#[tokio::test]
async fn the_data_planes_gemini_requests_pass_the_mocks_checks_and_their_answers_translate_back() {
    let mock = MockUpstream::start(Flavor::Gemini).await;
    let backend = GeminiBackend::new(&mock.url(), Some(&Secret::new("AIzaSyMock"))).unwrap();
    // A Claude Code style request: schema keys Gemini refuses, a signed tool loop.
    let messages = json!({
        "model": "gemini-2.5-pro", "max_tokens": 256,
        "system": [{"type": "text", "text": "You are a coding agent."}],
        "tools": [{"name": "Read", "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {"file_path": {"type": "string"}, "limit": {"type": ["integer", "null"]}}, "required": ["file_path"]}}],
        "messages": [
            {"role": "user", "content": "Read main.rs"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_gem_0123456789ab__thought__bW9jaw", "name": "Read", "input": {"file_path": "main.rs"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_gem_0123456789ab__thought__bW9jaw", "content": "fn main() {}"}]}
        ]
    });
    let chat = json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}}]});
    let responses = json!({"model": "gemini-2.5-pro", "input": "hi", "instructions": "Be brief."});
    mock.set_default(Behaviour::ToolCall {
        name: "get_weather".into(),
        arguments: json!({"city": "Paris"}),
    });
    for (client, body) in [
        (ApiFormat::Messages, &messages),
        (ApiFormat::ChatCompletions, &chat),
        (ApiFormat::Responses, &responses),
    ] {
        let req =
            gemini::request(client, body, "gemini-2.5-pro", &GeminiOptions::default(), 1).unwrap();
        let bytes = Bytes::from(req.body.to_string());
        let (status, answer) = send(
            backend
                .request("gemini-2.5-pro", GeminiOp::GenerateContent, bytes.clone())
                .unwrap(),
        )
        .await;
        assert_eq!(
            status,
            200,
            "{client:?}: {}",
            String::from_utf8_lossy(&answer)
        );
        let out = gemini::response(client, &json_body(&answer), &req, "gemini-2.5-pro").unwrap();
        let id = match client {
            ApiFormat::Messages => out["content"][0]["id"].clone(),
            ApiFormat::ChatCompletions => {
                out["choices"][0]["message"]["tool_calls"][0]["id"].clone()
            }
            _ => out["output"][0]["call_id"].clone(),
        };
        let id = id.as_str().unwrap().to_string();
        assert!(
            id.contains("__thought__"),
            "{client:?}: the signature rides in the id: {out}"
        );

        let (status, wire) = send(
            backend
                .request("gemini-2.5-pro", GeminiOp::StreamGenerateContent, bytes)
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let events = translate_stream(client, &req, &wire);
        let text: String = events.iter().map(|e| e.data.clone()).collect();
        assert!(
            text.contains("get_weather") && text.contains(&id),
            "{client:?}: {text}"
        );
    }
    // Every request the data plane made passed the mock's checks (none was refused).
    assert_eq!(mock.requests().len(), 6);
}

#[tokio::test]
async fn claude_on_vertex_and_azure_requests_from_the_data_plane_are_accepted() {
    let vertex = MockUpstream::start(Flavor::Vertex).await;
    let settings = pb::VertexSettings {
        project: "my-project".into(),
        region: "us-east5".into(),
        allowed_betas: None,
        gcp: None,
    };
    let b = VertexBackend::from_proto(
        &vertex.url(),
        &settings,
        &|_| None,
        std::sync::Arc::new(NoFetch),
    )
    .unwrap();
    let messages = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64, "stream": true, "metadata": {"user_id": "u"},
        "messages": [{"role": "user", "content": "hi there"}]});
    let op = VertexOp::for_model("claude-sonnet-4-20250514", true, false);
    let (body, _) = claude::request_from_messages(&messages, &[], true).unwrap();
    let mut req = b
        .request(
            "claude-sonnet-4-20250514",
            op,
            &[],
            Bytes::from(body.to_string()),
        )
        .await
        .unwrap();
    // The token provider is tested on its own; the mock only wants a bearer token.
    req.headers_mut()
        .insert("authorization", "Bearer ya29.test".parse().unwrap());
    let (status, answer) = send(req).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("event: message_stop"));
    assert_eq!(
        vertex.requests()[0].path,
        "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
    );

    let azure = MockUpstream::start(Flavor::Azure).await;
    for api in [pb::AzureApi::V1, pb::AzureApi::Deployments] {
        let s = pb::AzureSettings {
            api: api as i32,
            api_version: String::new(),
            entra: None,
        };
        let b = AzureBackend::from_proto(
            &azure.url(),
            &s,
            Some(&Secret::new("azure-key")),
            &|_| None,
            std::sync::Arc::new(NoFetch),
        )
        .unwrap();
        let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
        switchboard_dataplane::translate::azure::set_deployment(&mut body, "prod-gpt4o");
        let req = b
            .request(
                "prod-gpt4o",
                AzureOp::ChatCompletions,
                false,
                Bytes::from(body.to_string()),
            )
            .await
            .unwrap();
        let (status, answer) = send(req).await;
        assert_eq!(status, 200, "{api:?}: {}", String::from_utf8_lossy(&answer));
    }
}

struct NoFetch;
impl switchboard_dataplane::aws::fetch::Fetch for NoFetch {
    fn fetch(
        &self,
        _: http::Request<Bytes>,
    ) -> switchboard_dataplane::aws::fetch::BoxFuture<'_, Result<(http::StatusCode, Bytes), String>>
    {
        Box::pin(async { Err("offline".to_string()) })
    }
}
