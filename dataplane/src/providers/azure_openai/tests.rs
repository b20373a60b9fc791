//! Azure OpenAI as an upstream: the plan per URL family, Entra tokens on
//! requests, and the whole pipeline in-process (URLs, credential, stream
//! filtering, failover classes), plus the Mock emulating Azure.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::*;
use crate::oauth::test_server::{TokenServer, fetch};
use crate::pipeline::testing::{
    CLIENT_KEY, Harness, backend, chat, chat_stream_text, messages, metric, read, route,
};
use crate::upstream::fake::Reply;

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
const RESPONSES: &str = "/v1/responses";

fn provider(api: AzureApi, version: &str) -> AzureOpenAi {
    AzureOpenAi {
        backend: AzureBackend {
            base: "https://res.openai.azure.com".into(),
            api,
            api_version: version.into(),
            auth: None,
        },
    }
}

#[test]
fn responses_pass_through_only_where_azure_serves_them() {
    let plan = |api, version: &str, format| provider(api, version).plan(format);
    assert!(matches!(
        plan(AzureApi::V1, "", ApiFormat::Responses),
        Plan::Passthrough
    ));
    assert!(matches!(
        plan(
            AzureApi::Deployments,
            "2025-04-01-preview",
            ApiFormat::Responses
        ),
        Plan::Passthrough
    ));
    for older in ["2024-10-21", "2025-02-01-preview"] {
        assert!(
            matches!(
                plan(AzureApi::Deployments, older, ApiFormat::Responses),
                Plan::Translate(_)
            ),
            "{older}"
        );
    }
    assert!(matches!(
        plan(AzureApi::V1, "", ApiFormat::CountTokens),
        Plan::Estimate
    ));
    assert!(matches!(
        plan(AzureApi::V1, "", ApiFormat::ChatCompletions),
        Plan::Passthrough
    ));
    assert!(matches!(
        plan(AzureApi::V1, "", ApiFormat::Messages),
        Plan::Translate(_)
    ));
}

/// An AzureOpenAI AIBackend at `http://{name}` with the `keys` Secret's key.
fn azure(name: &str, api: Option<&str>) -> Value {
    let mut b = backend(name, "AzureOpenAI", &[]);
    b["spec"]["models"] = json!([{"name": "gpt-4o", "providerModel": "prod-gpt4o"}]);
    if let Some(api) = api {
        b["spec"]["azure"] = json!({"api": api});
    }
    b
}

fn azure_first(api: Option<&str>) -> Harness {
    Harness::new(&[
        azure("primary", api),
        backend("secondary", "OpenAI", &["gpt-4o"]),
        route(&["gpt-4o"], &["primary", "secondary"]),
    ])
}

fn azure_stream(text: &str) -> Reply {
    let prompt_filter = r#"data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}

"#;
    let content = format!(
        "data: {}\n\n",
        json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-11-20",
               "choices":[{"index":0,"delta":{"role":"assistant","content":text},"finish_reason":null,"content_filter_results":{}}]})
    );
    let async_filter = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"","choices":[{"index":0,"finish_reason":null,"content_filter_offsets":{"check_offset":0,"start_offset":0,"end_offset":5},"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}

"#;
    let finish = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-11-20","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

"#;
    let usage = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-11-20","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}

"#;
    let content: &'static str = Box::leak(content.into_boxed_str());
    Reply::sse(&[
        prompt_filter,
        content,
        async_filter,
        finish,
        usage,
        "data: [DONE]\n\n",
    ])
}

#[tokio::test(start_paused = true)]
async fn chat_streams_reach_the_v1_api_without_azures_annotation_chunks() {
    let h = azure_first(None);
    h.upstream.set_default("primary", azure_stream("Hello"));
    let (status, _, body) = h.post(CHAT, &chat("gpt-4o", true)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert_eq!(chat_stream_text(&body), "Hello");
    assert!(
        !text.contains("prompt_filter_results") && !text.contains("content_filter_offsets"),
        "annotation chunks reached the client: {text}"
    );
    assert!(
        !text.contains("\"usage\":{"),
        "the usage chunk the gateway asked for is stripped: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(sent.path, "/openai/v1/chat/completions");
    assert_eq!(sent.headers["api-key"], "sk-provider-test");
    assert!(sent.headers.get("authorization").is_none());
    assert!(
        sent.headers.get("x-api-key").is_none(),
        "the client's key stays at the gateway"
    );
    assert_eq!(sent.body["model"], "prod-gpt4o");
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    let m = h.metrics();
    assert_eq!(
        metric(
            &m,
            "switchboard_upstream_attempts_total",
            &[("provider", "azure_openai"), ("outcome", "ok")]
        ),
        1.0,
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn messages_clients_reach_deployment_urls_translated() {
    let h = azure_first(Some("Deployments"));
    h.upstream.set_default("primary", azure_stream("Bonjour"));
    let (status, _, body) = h.post(MESSAGES, &messages("gpt-4o", true)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"text\":\"Bonjour\""), "{text}");
    assert!(text.contains("\"input_tokens\":9"), "usage is read: {text}");
    assert!(
        text.ends_with("data: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(
        sent.path,
        "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.body["model"], "prod-gpt4o");
    assert_eq!(sent.body["max_completion_tokens"], 64);

    // Responses on a GA api-version: translated to Chat Completions.
    h.upstream.set_default("primary", Reply::ok("via chat"));
    let (status, _, body) = h
        .post(
            RESPONSES,
            &json!({"model": "gpt-4o", "input": "hi", "max_output_tokens": 32}),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(
        h.upstream.requests()[1].path,
        "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21"
    );
}

#[tokio::test(start_paused = true)]
async fn responses_pass_through_to_the_v1_api() {
    let h = azure_first(None);
    let answer = json!({"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
        "model": "prod-gpt4o", "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": "from azure", "annotations": []}]}],
        "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}});
    h.upstream.set_default("primary", Reply::json(200, &answer));
    let (status, _, body) = h
        .post(RESPONSES, &json!({"model": "gpt-4o", "input": "hi"}))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), answer);
    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(sent.path, "/openai/v1/responses");
    assert_eq!(sent.headers["api-key"], "sk-provider-test");
    assert_eq!(sent.body, json!({"model": "prod-gpt4o", "input": "hi"}));
}

#[tokio::test(start_paused = true)]
async fn a_content_filter_refusal_is_returned_not_failed_over() {
    let h = azure_first(None);
    let refusal = json!({"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": null, "param": "prompt", "code": "content_filter", "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate": {"filtered": true, "severity": "high"}}}}});
    h.upstream
        .set_default("primary", Reply::json(400, &refusal));
    let (status, _, body) = h.post(CHAT, &chat("gpt-4o", false)).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "content_filter", "{v}");
    assert_eq!(h.upstream.count("secondary"), 0, "never failed over");

    // A Messages client gets it in its own error shape, still not failed over.
    let (status, _, body) = h.post(MESSAGES, &messages("gpt-4o", false)).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(h.upstream.count("secondary"), 0);
}

#[tokio::test(start_paused = true)]
async fn throttling_and_unavailability_fail_over() {
    for status in [429, 503] {
        let h = azure_first(None);
        h.upstream.set_default("primary", Reply::status(status));
        h.upstream
            .set_default("secondary", Reply::ok("from openai"));
        let (got, _, body) = h.post(CHAT, &chat("gpt-4o", false)).await;
        assert_eq!(got, 200, "{status}: {}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "from openai");
        assert!(h.upstream.count("primary") >= 1);
        assert_eq!(h.upstream.count("secondary"), 1, "{status}");
    }
}

#[tokio::test]
async fn entra_tokens_are_sent_as_bearer_and_cached() {
    let server = TokenServer::start(|_, n| {
        (
            200,
            format!(
                r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"eyJ0.entra-{n}"}}"#
            ),
        )
    })
    .await;
    let p = AzureOpenAi {
        backend: AzureBackend::from_proto(
            "https://res.openai.azure.com",
            &pb::AzureSettings {
                api: pb::AzureApi::V1 as i32,
                api_version: String::new(),
                entra: Some(pb::AzureCredentials {
                    source: Some(pb::azure_credentials::Source::ClientSecret(
                        pb::AzureClientSecret {
                            tenant_id: "contoso.onmicrosoft.com".into(),
                            client_id: "00000000-0000-0000-0000-000000000001".into(),
                            client_secret: "s3cret".into(),
                            authority_host: server.url.clone(),
                        },
                    )),
                }),
            },
            None,
            &|_| None,
            fetch(),
        )
        .unwrap(),
    };
    let json =
        crate::body::RequestJson::parse(Bytes::from(chat("gpt-4o", false).to_string())).unwrap();
    let client_headers = http::HeaderMap::new();
    let call = ClientCall {
        format: ApiFormat::ChatCompletions,
        json: &json,
        stream: false,
        query: None,
        headers: &client_headers,
        forward: &[],
    };
    let prepared = p.prepare(&call, "prod-gpt4o", Plan::Passthrough).unwrap();
    for _ in 0..2 {
        let out = p.request(&call, &prepared).await.unwrap();
        let h = out.request.headers();
        assert_eq!(h["authorization"], "Bearer eyJ0.entra-1");
        assert!(h["authorization"].is_sensitive(), "never logged");
        assert!(h.get("api-key").is_none());
        assert_eq!(
            out.request.uri().to_string(),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
    }
    assert_eq!(server.requests().len(), 1, "the token is cached");
}

#[tokio::test]
async fn an_api_key_is_sensitive_and_absent_from_debug_output() {
    let upstreams =
        crate::upstream::Upstreams::new(std::sync::Arc::new(crate::upstream::tls::client_config()));
    let b = pb::Backend {
        id: "ns/azure".into(),
        provider: pb::ProviderKind::AzureOpenai as i32,
        endpoint: "https://res.openai.azure.com".into(),
        credential: Some(pb::Credential {
            source: Some(pb::credential::Source::Value("azure-secret-key".into())),
        }),
        azure: Some(pb::AzureSettings::default()),
        ..Default::default()
    };
    let p = super::super::build(
        &b,
        &BuildContext {
            env: &|_| None,
            upstreams: &upstreams,
        },
    )
    .unwrap();
    assert_eq!(p.kind(), ProviderKind::AzureOpenAI);
    assert!(p.has_credential());
    let json =
        crate::body::RequestJson::parse(Bytes::from(chat("gpt-4o", false).to_string())).unwrap();
    let client_headers = http::HeaderMap::new();
    let call = ClientCall {
        format: ApiFormat::ChatCompletions,
        json: &json,
        stream: false,
        query: None,
        headers: &client_headers,
        forward: &[],
    };
    let prepared = p.prepare(&call, "prod", Plan::Passthrough).unwrap();
    let out = p.request(&call, &prepared).await.unwrap();
    assert!(out.request.headers()["api-key"].is_sensitive());
    assert!(!format!("{:?}", out.request.headers()).contains("azure-secret-key"));
}

/// A Mock backend emulating Azure: the provider's real request building
/// and stream filtering against Azure's framing, offline.
fn emulating_azure() -> Harness {
    let mut mock = backend("mock", "Mock", &["gpt-4o"]);
    mock["spec"].as_object_mut().unwrap().remove("credentials");
    mock["spec"]["mock"] = json!({"emulate": "AzureOpenAI", "reply": "Hello from Azure", "failOn": "[refuse]", "failStatus": 400});
    let mut r = route(&["gpt-4o"], &["mock"]);
    r["spec"]["retry"] = json!({"backoff": "10ms"});
    Harness::new(&[mock, r])
}

#[tokio::test(start_paused = true)]
async fn the_mock_emulates_azure_for_every_client_format() {
    let h = emulating_azure();
    let (status, _, body) = h.post(CHAT, &chat("gpt-4o", true)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert_eq!(chat_stream_text(&body), "Hello from Azure");
    assert!(!text.contains("prompt_filter_results"), "{text}");

    let (status, _, body) = h.post(CHAT, &chat("gpt-4o", false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from Azure");

    let (status, _, body) = h.post(MESSAGES, &messages("gpt-4o", true)).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("Hello"));

    let (status, _, body) = h
        .post(RESPONSES, &json!({"model": "gpt-4o", "input": "hi"}))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["output"][0]["content"][0]["text"], "Hello from Azure",
        "{v}"
    );

    let req = Request::post(CHAT)
        .header("authorization", format!("Bearer {CLIENT_KEY}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "please [refuse]"}]})
                .to_string(),
        )))
        .unwrap();
    let (status, _, body) = read(h.send(req).await).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "content_filter", "{v}");
}

#[tokio::test]
async fn the_emulator_answers_deployment_paths_only_with_an_api_version() {
    let reply = crate::wire::mock::MockReply { reply: "ok".into() };
    let body = chat("prod", false).to_string();
    let req = |path: &'static str| EmulatedRequest {
        path,
        body: body.as_bytes(),
        reply: &reply,
        fail: None,
    };
    let p = AzureOpenAi::emulator();
    let missing = p
        .emulate(&req("/openai/deployments/prod/chat/completions"))
        .unwrap();
    assert_eq!(missing.status(), 404);
    let ok = p
        .emulate(&req(
            "/openai/deployments/prod/chat/completions?api-version=2024-10-21",
        ))
        .unwrap();
    assert_eq!(ok.status(), 200);
    let v: Value =
        serde_json::from_slice(&ok.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(v["prompt_filter_results"].is_array(), "{v}");
    assert!(p.emulate(&req("/v1/chat/completions")).is_none());
}
