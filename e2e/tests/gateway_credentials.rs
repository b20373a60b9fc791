//! Client credentials never reach an upstream; provider credentials always do.

use switchboard_e2e::RecordedRequest;
use switchboard_e2e::client::json_body;
use switchboard_e2e::stack::{
    ANTHROPIC_KEY, CLIENT_KEY, FORWARDED_SUB_HEADER, OPENAI_KEY, chat_body, messages_body,
};
use switchboard_e2e::{Stack, post_json};

fn assert_no_header_contains(request: &RecordedRequest, secret: &str) {
    for (name, value) in &request.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(
            !value.contains(secret),
            "client credential leaked upstream in header {name}: {value}"
        );
    }
    assert!(
        !request.body.to_string().contains(secret),
        "client credential leaked upstream in the body"
    );
}

#[tokio::test]
async fn jwt_is_replaced_by_the_provider_key_for_openai() {
    let stack = Stack::start().await;
    let token = stack.token("alice");
    let auth = format!("Bearer {token}");
    let (status, _, body) = post_json(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let [request] = stack
        .primary
        .wait_for_requests(1)
        .await
        .try_into()
        .expect("exactly one upstream request");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert_no_header_contains(&request, &token);
    assert_eq!(
        request.header(FORWARDED_SUB_HEADER),
        Some("alice"),
        "forwardClaims sub → header"
    );
}

#[tokio::test]
async fn jwt_is_replaced_by_the_provider_key_for_anthropic() {
    let stack = Stack::start().await;
    let token = stack.token("bob");
    let auth = format!("Bearer {token}");
    let headers = [
        ("authorization", auth.as_str()),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "tools-2024-04-04"),
    ];
    let (status, _, body) = post_json(
        &stack.url("/v1/messages?beta=true"),
        &headers,
        &messages_body("claude-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let [request] = stack
        .anthropic
        .wait_for_requests(1)
        .await
        .try_into()
        .expect("exactly one upstream request");
    assert_eq!(request.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_ne!(request.header("authorization"), Some(auth.as_str()));
    assert_no_header_contains(&request, &token);
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        request.header("anthropic-beta"),
        Some("tools-2024-04-04"),
        "anthropic-beta forwarded unchanged"
    );
    assert_eq!(request.header(FORWARDED_SUB_HEADER), Some("bob"));
}

#[tokio::test]
async fn client_api_key_is_replaced_in_both_dialects() {
    let stack = Stack::start().await;
    let (status, _, _) = post_json(
        &stack.url("/v1/messages"),
        &[("x-api-key", CLIENT_KEY)],
        &messages_body("claude-test", false),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = post_json(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {CLIENT_KEY}"))],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200);
    let anthropic = stack.anthropic.wait_for_requests(1).await;
    assert_eq!(anthropic[0].header("x-api-key"), Some(ANTHROPIC_KEY));
    let openai = stack.primary.wait_for_requests(1).await;
    assert_eq!(
        openai[0].header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    for request in stack.all_upstream_requests() {
        assert_no_header_contains(&request, CLIENT_KEY);
    }
}

#[tokio::test]
async fn alias_resolves_to_the_target_model() {
    let stack = Stack::start().await;
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &chat_body("fast", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let requests = stack.primary.wait_for_requests(1).await;
    assert_eq!(requests[0].body["model"], "gpt-test");
}

#[tokio::test]
async fn openai_client_to_anthropic_backend_is_translated() {
    let stack = Stack::start().await;
    stack
        .anthropic
        .set_default(switchboard_e2e::Behaviour::ok("translated hello"));
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &chat_body("claude-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let body = json_body(&body);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "translated hello");
    let requests = stack.anthropic.wait_for_requests(1).await;
    assert!(
        requests[0].path.ends_with("/messages"),
        "{}",
        requests[0].path
    );
    assert!(
        requests[0].body["max_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "max_tokens defaulted: {}",
        requests[0].body
    );
    assert!(
        requests[0].body["messages"]
            .to_string()
            .contains("Say hello"),
        "{}",
        requests[0].body
    );
}

#[tokio::test]
async fn admin_config_summary_redacts_credentials() {
    let stack = Stack::start().await;
    let (status, _, body) =
        switchboard_e2e::get(&format!("{}/config", stack.gateway.admin_url()), &[]).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    for secret in [OPENAI_KEY, ANTHROPIC_KEY, CLIENT_KEY] {
        assert!(!text.contains(secret), "/config leaks a credential: {text}");
    }
    assert!(
        text.contains("primary") && text.contains("anthropic"),
        "/config lists the backends: {text}"
    );
}

#[tokio::test]
async fn count_tokens_is_forwarded_with_the_provider_key() {
    let stack = Stack::start().await;
    let auth = stack.bearer();
    let mut body = messages_body("claude-test", false);
    body.as_object_mut().map(|o| o.remove("max_tokens"));
    let (status, _, answer) = post_json(
        &stack.url("/v1/messages/count_tokens?beta=true"),
        &[("authorization", &auth)],
        &body,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert!(
        json_body(&answer)["input_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let requests = stack.anthropic.wait_for_requests(1).await;
    assert!(
        requests[0].path.ends_with("/messages/count_tokens"),
        "{}",
        requests[0].path
    );
    assert_eq!(requests[0].header("x-api-key"), Some(ANTHROPIC_KEY));
}
