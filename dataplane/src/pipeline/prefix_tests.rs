//! Provider-prefixed base URLs (`/openai/v1/...`, `/anthropic/v1/...`)
//! through the whole request path, alone and below a route prefix.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

use super::testing::{CLIENT_KEY, Harness, backend, chat, messages, read, route};
use crate::upstream::fake::Reply;

fn gateway() -> Harness {
    Harness::new(&[
        backend("openai", "OpenAI", &["gpt-test"]),
        backend("anthropic", "Anthropic", &["claude-test"]),
        route(&["gpt-*"], &["openai"]),
        json!({
            "apiVersion": "switchboard.dev/v1alpha1",
            "kind": "AIRoute",
            "metadata": {"name": "claude"},
            "spec": {
                "pathPrefix": "/team",
                "auth": {"apiKeys": [{"name": "test", "secretRef": {"name": "keys", "key": "client"}}]},
                "rules": [{"models": ["claude-*"], "backends": [{"name": "anthropic"}]}],
            }
        }),
    ])
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(body)))
}

async fn get(h: &Harness, path: &str, anthropic_version: bool) -> (http::StatusCode, Value) {
    let mut req = Request::get(path).header("x-api-key", CLIENT_KEY);
    if anthropic_version {
        req = req.header("anthropic-version", "2023-06-01");
    }
    let (status, _, body) = read(h.send(req.body(Full::new(Bytes::new())).unwrap()).await).await;
    (status, json_of(&body))
}

#[tokio::test(start_paused = true)]
async fn the_openai_prefix_serves_chat_completions_and_responses() {
    let h = gateway();
    h.upstream.set_default("openai", Reply::ok("prefixed"));
    let (status, _, body) = h
        .post("/openai/v1/chat/completions", &chat("gpt-test", false))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json_of(&body)["choices"][0]["message"]["content"],
        "prefixed"
    );
    let (status, _, body) = h
        .post(
            "/openai/v1/responses",
            &json!({"model": "gpt-test", "input": "hi"}),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let paths: Vec<_> = h
        .upstream
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        ["/v1/chat/completions", "/v1/responses"],
        "the provider prefix is the client's layout, not the upstream's"
    );
}

#[tokio::test(start_paused = true)]
async fn the_anthropic_prefix_follows_the_route_prefix() {
    let h = gateway();
    h.upstream
        .set_default("anthropic", Reply::ok("from claude"));
    let (status, _, body) = h
        .post(
            "/team/anthropic/v1/messages",
            &messages("claude-test", false),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["content"][0]["text"], "from claude");
    let (status, _, body) = h
        .post(
            "/team/anthropic/v1/messages/count_tokens",
            &messages("claude-test", false),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let paths: Vec<_> = h
        .upstream
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/messages", "/v1/messages/count_tokens"]);
}

#[tokio::test(start_paused = true)]
async fn a_surface_serves_only_its_own_endpoints_and_answers_in_its_dialect() {
    let h = gateway();
    // Anthropic Messages under the OpenAI prefix: 404 in the OpenAI shape.
    let (status, _, body) = h
        .post("/openai/v1/messages", &messages("gpt-test", false))
        .await;
    assert_eq!(status, 404);
    let v = json_of(&body);
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v.get("type").is_none(), "OpenAI shape: {v}");
    // Chat Completions under the Anthropic prefix: 404 in the Anthropic shape.
    let (status, _, body) = h
        .post(
            "/team/anthropic/v1/chat/completions",
            &chat("claude-test", false),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(json_of(&body)["type"], "error");
    assert_eq!(h.upstream.requests().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_provider_prefix_fixes_the_models_list_shape() {
    let h = gateway();
    let (status, v) = get(&h, "/team/anthropic/v1/models", false).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"][0]["type"], "model", "Anthropic list: {v}");
    assert_eq!(v["data"][0]["id"], "claude-test");
    let (status, v) = get(&h, "/openai/v1/models", true).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["object"], "list",
        "OpenAI list even with anthropic-version: {v}"
    );
    assert_eq!(v["data"][0]["id"], "gpt-test");
}

#[tokio::test(start_paused = true)]
async fn only_whole_segments_are_provider_prefixes() {
    let h = gateway();
    let (status, _, _) = h
        .post("/openaiv1/chat/completions", &chat("gpt-test", false))
        .await;
    assert_eq!(status, 404);
}
