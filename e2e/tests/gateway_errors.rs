//! Errors the gateway answers itself, in both client dialects, through the real binary.

use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_e2e::client::json_body;
use switchboard_e2e::stack::{CLIENT_KEY, MAX_BODY_BYTES, chat_body, messages_body};
use switchboard_e2e::{Stack, get, post_json, post_raw};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

/// OpenAI error shape: `{"error":{"message": string, "type": string, ...}}`.
fn assert_openai_error(body: &Bytes) -> Value {
    let body = json_body(body);
    assert!(
        body["error"]["message"].is_string(),
        "OpenAI error shape expected: {body}"
    );
    assert!(
        body["error"]["type"].is_string(),
        "OpenAI error shape expected: {body}"
    );
    body
}

/// Anthropic error shape: `{"type":"error","error":{"type": kind, "message": string}}`.
fn assert_anthropic_error(body: &Bytes, kind: &str) {
    let body = json_body(body);
    assert_eq!(
        body["type"], "error",
        "Anthropic error shape expected: {body}"
    );
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn root_answers_200_without_auth() {
    let stack = Stack::start().await;
    let (status, _, _) = get(&stack.url("/"), &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = get(&format!("{}/healthz", stack.gateway.admin_url()), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_json_is_400_in_both_dialects() {
    let stack = Stack::start().await;
    let auth = stack.bearer();
    let headers = [("authorization", auth.as_str())];
    let (status, _, body) = post_raw(
        &stack.url(CHAT),
        &headers,
        Bytes::from_static(b"{\"model\": \"gpt-test\", "),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_openai_error(&body);
    let (status, _, body) = post_raw(
        &stack.url(MESSAGES),
        &headers,
        Bytes::from_static(b"not json at all"),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_anthropic_error(&body, "invalid_request_error");
    assert!(
        stack.all_upstream_requests().is_empty(),
        "nothing may reach an upstream"
    );
}

#[tokio::test]
async fn unknown_model_is_404_in_both_dialects() {
    let stack = Stack::start().await;
    let auth = stack.bearer();
    let headers = [("authorization", auth.as_str())];
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &headers,
        &chat_body("no-such-model", false),
    )
    .await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_openai_error(&body);
    let (status, _, body) = post_json(
        &stack.url(MESSAGES),
        &headers,
        &messages_body("no-such-model", false),
    )
    .await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_anthropic_error(&body, "not_found_error");
    assert!(stack.all_upstream_requests().is_empty());
}

#[tokio::test]
async fn missing_expired_and_unknown_key_tokens_are_401() {
    let stack = Stack::start().await;
    let expired = format!("Bearer {}", stack.issuer.mint_expired(json!({})));
    let unknown = format!("Bearer {}", stack.issuer.mint_unknown_key(json!({})));
    let wrong_audience = format!(
        "Bearer {}",
        stack.issuer.mint(json!({"aud": "someone-else"}))
    );
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("missing", vec![]),
        ("expired", vec![("authorization", expired.as_str())]),
        ("unknown key", vec![("authorization", unknown.as_str())]),
        (
            "wrong audience",
            vec![("authorization", wrong_audience.as_str())],
        ),
        ("wrong api key", vec![("x-api-key", "not-the-key")]),
    ];
    for (what, headers) in &cases {
        let (status, _, body) =
            post_json(&stack.url(CHAT), headers, &chat_body("gpt-test", false)).await;
        assert_eq!(
            status,
            401,
            "{what} (chat): {}",
            String::from_utf8_lossy(&body)
        );
        assert_openai_error(&body);
        let (status, _, body) = post_json(
            &stack.url(MESSAGES),
            headers,
            &messages_body("claude-test", false),
        )
        .await;
        assert_eq!(
            status,
            401,
            "{what} (messages): {}",
            String::from_utf8_lossy(&body)
        );
        assert_anthropic_error(&body, "authentication_error");
    }
    assert!(
        stack.all_upstream_requests().is_empty(),
        "rejected requests must not reach an upstream"
    );
}

#[tokio::test]
async fn valid_credentials_of_every_kind_are_accepted() {
    let stack = Stack::start().await;
    let rs = stack.bearer();
    let es = format!(
        "Bearer {}",
        stack.issuer.mint_es256(json!({"sub": "ec-user"}))
    );
    let key_bearer = format!("Bearer {CLIENT_KEY}");
    let cases: Vec<(&str, (&str, &str))> = vec![
        ("RS256 JWT", ("authorization", rs.as_str())),
        ("ES256 JWT", ("authorization", es.as_str())),
        ("API key as x-api-key", ("x-api-key", CLIENT_KEY)),
        ("API key as bearer", ("authorization", key_bearer.as_str())),
    ];
    for (what, header) in cases {
        let (status, _, body) =
            post_json(&stack.url(CHAT), &[header], &chat_body("gpt-test", false)).await;
        assert_eq!(status, 200, "{what}: {}", String::from_utf8_lossy(&body));
        let (status, _, body) = post_json(
            &stack.url(MESSAGES),
            &[header],
            &messages_body("claude-test", false),
        )
        .await;
        assert_eq!(status, 200, "{what}: {}", String::from_utf8_lossy(&body));
    }
    assert!(stack.issuer.jwks_fetches() >= 1);
}

#[tokio::test]
async fn oversized_body_is_413_in_both_dialects() {
    let stack = Stack::start().await;
    let auth = stack.bearer();
    let headers = [("authorization", auth.as_str())];
    let big = "x".repeat(MAX_BODY_BYTES + 1024);
    let mut chat = chat_body("gpt-test", false);
    chat["messages"][0]["content"] = json!(big);
    let (status, _, body) = post_json(&stack.url(CHAT), &headers, &chat).await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert_openai_error(&body);
    let mut messages = messages_body("claude-test", false);
    messages["messages"][0]["content"] = json!(big);
    let (status, _, body) = post_json(&stack.url(MESSAGES), &headers, &messages).await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert_anthropic_error(&body, "request_too_large");
    assert!(stack.all_upstream_requests().is_empty());
}

#[tokio::test]
async fn models_lists_routed_models() {
    let stack = Stack::start().await;
    let auth = stack.bearer();
    let (status, _, body) = get(
        &stack.url("/v1/models"),
        &[("authorization", auth.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let body = json_body(&body);
    let ids: Vec<&str> = body["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        ids.contains(&"gpt-test") && ids.contains(&"claude-test"),
        "{body}"
    );
}
