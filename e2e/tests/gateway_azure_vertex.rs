//! Azure OpenAI as an upstream and the Vertex front door, through the real binary (issue 15):
//! `examples/azure-openai.yaml` as its header runs it, offline — a Mock emulating Azure (its
//! annotation chunks dropped on the way out) first, OpenAI as fallback on a 429, and Vertex
//! `rawPredict` / `streamRawPredict` / `count-tokens:rawPredict` calls answered in Anthropic's
//! format.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use switchboard_e2e::Gateway;
use switchboard_e2e::client::{chat_stream_text, json_body, post_json, post_stream};

const KEY: &str = "sk-demo";
const VERTEX: &str = "/v1/projects/p/locations/us-east5/publishers/anthropic/models";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/azure-openai.yaml")
}

#[tokio::test]
async fn the_azure_example_serves_azure_fails_over_and_answers_vertex_clients() {
    let gw = Gateway::start(&example(), &[]).await;
    let bearer = format!("Bearer {KEY}");
    let auth = [("authorization", bearer.as_str())];
    let url = |p: &str| format!("{}{p}", gw.base_url());
    let chat = |text: &str, stream: bool| json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": text}]});

    // Azure (the deployment is the body's model), streamed without Azure's annotation chunks.
    let (status, _, events) =
        post_stream(&url("/v1/chat/completions"), &auth, &chat("Hi", true)).await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&events), "echo: Hi");
    for e in &events {
        assert!(!e.data.contains("prompt_filter_results"), "{}", e.data);
        if let Ok(v) = serde_json::from_str::<Value>(&e.data) {
            assert!(
                v["choices"].as_array().is_some_and(|c| !c.is_empty()),
                "a chunk without choices reached the client: {v}"
            );
        }
    }
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let (status, _, body) =
        post_json(&url("/v1/chat/completions"), &auth, &chat("Hi", false)).await;
    assert_eq!(status, 200);
    assert_eq!(json_body(&body)["model"], "prod-gpt4o", "served by Azure");
    assert_eq!(
        gw.metric_sum(
            "switchboard_upstream_attempts_total",
            &[("backend", "default/azure"), ("outcome", "ok")]
        )
        .await,
        2.0
    );

    // Azure throttled: OpenAI answers.
    let (status, _, body) = post_json(
        &url("/v1/chat/completions"),
        &auth,
        &chat("Hi [azure-down]", false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json_body(&body)["model"], "gpt-4o", "served by OpenAI");
    assert_eq!(
        gw.metric_sum(
            "switchboard_failovers_total",
            &[("from_backend", "default/azure"), ("reason", "status_429")]
        )
        .await,
        1.0
    );

    // The Vertex front door: whole, streamed, counted; the model routed in Anthropic's spelling.
    let vertex_body = |stream: bool| {
        json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 64, "stream": stream,
               "messages": [{"role": "user", "content": "Hello"}]})
    };
    let (status, _, body) = post_json(
        &url(&format!("{VERTEX}/claude-sonnet-4@20250514:rawPredict")),
        &auth,
        &vertex_body(false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v = json_body(&body);
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude-sonnet-4-20250514");
    assert_eq!(v["content"][0]["text"], "echo: Hello");

    let (status, headers, events) = post_stream(
        &url(&format!(
            "{VERTEX}/claude-sonnet-4@20250514:streamRawPredict"
        )),
        &auth,
        &vertex_body(true),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(
        events.first().and_then(|e| e.event.as_deref()),
        Some("message_start")
    );
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("message_stop")
    );

    let mut count = vertex_body(false);
    count["model"] = json!("claude-sonnet-4@20250514");
    let (status, _, body) = post_json(
        &url(&format!("{VERTEX}/count-tokens:rawPredict")),
        &auth,
        &count,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(json_body(&body)["input_tokens"].as_u64().unwrap() > 0);

    // No token: an Anthropic authentication error.
    let (status, _, body) = post_json(
        &url(&format!("{VERTEX}/claude-sonnet-4@20250514:rawPredict")),
        &[],
        &vertex_body(false),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(json_body(&body)["error"]["type"], "authentication_error");
}
