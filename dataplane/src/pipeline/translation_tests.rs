//! Bad input on translated paths (issue 12, item 6): a body the gateway
//! must translate and cannot parse is the client's error, answered 400
//! `invalid_request_error` in the client's dialect (SDKs retry a 5xx), and
//! never reaches an upstream.

use serde_json::Value;

use super::testing::{Harness, backend, route};

fn harness() -> Harness {
    let mut r = route(&["gpt-*", "claude-*"], &["openai"]);
    r["spec"]["rules"] = serde_json::json!([
        {"models": ["gpt-*"], "backends": [{"name": "openai"}]},
        {"models": ["claude-*"], "backends": [{"name": "anthropic"}]},
    ]);
    Harness::new(&[
        backend("openai", "OpenAI", &["gpt-test"]),
        backend("anthropic", "Anthropic", &["claude-test"]),
        r,
    ])
}

/// Message contents no parser accepts as a value: a lone UTF-16 surrogate,
/// a number out of range, nesting deeper than 128 levels.
fn hostile_contents() -> Vec<String> {
    vec![
        r#""\ud800""#.to_string(),
        "1e999".to_string(),
        format!("{}\"x\"{}", "[".repeat(200), "]".repeat(200)),
    ]
}

#[tokio::test]
async fn hostile_values_in_a_messages_request_for_an_openai_backend_are_a_400() {
    let h = harness();
    for content in hostile_contents() {
        let body = format!(
            r#"{{"model":"gpt-test","max_tokens":10,"messages":[{{"role":"user","content":{content}}}]}}"#
        );
        let (status, _, answer) = h.post_raw("/v1/messages", body).await;
        assert_eq!(
            status,
            400,
            "{content:.40}: {}",
            String::from_utf8_lossy(&answer)
        );
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["type"], "error", "Anthropic shape: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    assert!(h.upstream.requests().is_empty());
}

#[tokio::test]
async fn hostile_values_in_a_chat_request_for_an_anthropic_backend_are_a_400() {
    let h = harness();
    for content in hostile_contents() {
        let body = format!(
            r#"{{"model":"claude-test","messages":[{{"role":"user","content":{content}}}]}}"#
        );
        let (status, _, answer) = h.post_raw("/v1/chat/completions", body).await;
        assert_eq!(
            status,
            400,
            "{content:.40}: {}",
            String::from_utf8_lossy(&answer)
        );
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            v["error"]["type"], "invalid_request_error",
            "OpenAI shape: {v}"
        );
    }
    let (status, _, _) = h
        .post_raw(
            "/v1/chat/completions",
            r#"{"model":"claude-test","temperature":1e999,"messages":[]}"#.to_string(),
        )
        .await;
    assert_eq!(status, 400);
    assert!(h.upstream.requests().is_empty());
}

#[tokio::test]
async fn a_large_responses_request_translates_and_hostile_items_are_a_400() {
    let h = harness();
    let items: Vec<String> = (0..70_000)
        .map(|_| r#"{"role":"user","content":"x"}"#.to_string())
        .collect();
    let body = format!(r#"{{"model":"claude-test","input":[{}]}}"#, items.join(","));
    let (status, _, answer) = h.post_raw("/v1/responses", body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    for content in hostile_contents() {
        let body =
            format!(r#"{{"model":"claude-test","input":[{{"role":"user","content":{content}}}]}}"#);
        let (status, _, answer) = h.post_raw("/v1/responses", body).await;
        assert_eq!(
            status,
            400,
            "{content:.40}: {}",
            String::from_utf8_lossy(&answer)
        );
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    assert_eq!(
        h.upstream.requests().len(),
        1,
        "only the good request went upstream"
    );
}

#[tokio::test]
async fn one_message_with_too_many_values_is_a_400_not_a_huge_tree() {
    let h = harness();
    let blocks = vec![r#"{"type":"text","text":"x"}"#; 40_000].join(",");
    let body = format!(
        r#"{{"model":"gpt-test","max_tokens":5,"messages":[{{"role":"user","content":[{blocks}]}}]}}"#
    );
    let (status, _, answer) = h.post_raw("/v1/messages", body).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("messages[0]"));
}
