//! Failure classes and what the gateway does with each (retry same, fail over, answer the client,
//! context fallback), through the real binary.

use std::time::Duration;

use switchboard_e2e::client::{json_body, post_stream_partial};
use switchboard_e2e::stack::{chat_body, messages_body};
use switchboard_e2e::{Behaviour, Flavor, Stack, post_json, wait_until};

const CHAT: &str = "/v1/chat/completions";

#[tokio::test]
async fn persistent_503_fails_over_to_the_second_backend() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::status(503));
    stack.secondary.set_default(Behaviour::ok("from secondary"));
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json_body(&body)["choices"][0]["message"]["content"],
        "from secondary"
    );
    assert!(stack.primary.request_count() >= 1);
    assert_eq!(stack.secondary.request_count(), 1);
    let metrics = stack.gateway.metrics().await;
    assert!(
        switchboard_e2e::harness::metric_sum(&metrics, "switchboard_failovers_total", &[]) >= 1.0,
        "a failover is counted:\n{metrics}"
    );
}

#[tokio::test]
async fn persistent_503_fails_over_for_streams_too() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::status(503));
    stack
        .secondary
        .set_default(Behaviour::ok("streamed by secondary"));
    let auth = stack.bearer();
    let result = post_stream_partial(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", true),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(result.status, 200, "{}", result.raw);
    let text = switchboard_e2e::client::chat_stream_text(&result.events);
    assert_eq!(text, "streamed by secondary");
    assert_eq!(
        result.events.last().map(|e| e.data.as_str()),
        Some("[DONE]")
    );
}

#[tokio::test]
async fn short_retry_after_429_is_retried_on_the_same_backend() {
    let stack = Stack::start().await;
    stack.primary.script(vec![Behaviour::rate_limited(1)]);
    stack.primary.set_default(Behaviour::ok("after the wait"));
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json_body(&body)["choices"][0]["message"]["content"],
        "after the wait"
    );
    assert_eq!(
        stack.primary.request_count(),
        2,
        "429 then the retry on the same backend"
    );
    assert_eq!(
        stack.secondary.request_count(),
        0,
        "no failover for a Retry-After within the cap"
    );
}

#[tokio::test]
async fn content_policy_400_is_returned_without_failover() {
    let stack = Stack::start().await;
    stack
        .primary
        .set_default(Behaviour::content_policy(Flavor::OpenAI));
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let body = json_body(&body);
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(stack.primary.request_count(), 1, "never retried");
    assert_eq!(stack.secondary.request_count(), 0, "never failed over");
}

#[tokio::test]
async fn anthropic_400_is_returned_in_the_anthropic_shape() {
    let stack = Stack::start().await;
    stack
        .anthropic
        .set_default(Behaviour::content_policy(Flavor::Anthropic));
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url("/v1/messages"),
        &[("authorization", &auth)],
        &messages_body("claude-test", false),
    )
    .await;
    assert_eq!(status, 400);
    let body = json_body(&body);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(stack.anthropic.request_count(), 1);
}

#[tokio::test]
async fn context_length_400_goes_to_the_context_fallback() {
    let stack = Stack::start().await;
    stack
        .primary
        .set_default(Behaviour::context_length_exceeded(Flavor::OpenAI));
    stack.big.set_default(Behaviour::ok("from the big model"));
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("small-model", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json_body(&body)["choices"][0]["message"]["content"],
        "from the big model"
    );
    assert_eq!(stack.primary.request_count(), 1);
    assert_eq!(stack.big.request_count(), 1);
    let failovers = stack
        .gateway
        .metric_sum(
            "switchboard_failovers_total",
            &[("reason", "context_length")],
        )
        .await;
    assert!(failovers >= 1.0, "context_length failover counted");
}

#[tokio::test]
async fn connection_reset_is_retried_or_failed_over() {
    let stack = Stack::start().await;
    stack.primary.script(vec![Behaviour::Reset]);
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        stack.primary.request_count() + stack.secondary.request_count(),
        2
    );
}

/// A stream request to an upstream that never sends headers: after the backend's `firstByte`
/// timeout (3s in the standard config) the gateway moves on. (Non-streaming requests wait for the
/// `request` timeout instead, since providers send headers only once the answer is complete.)
#[tokio::test]
async fn silent_upstream_hits_the_first_byte_timeout_and_fails_over() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::Silence);
    stack
        .secondary
        .set_default(Behaviour::ok("secondary after timeout"));
    let auth = stack.bearer();
    let result = post_stream_partial(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", true),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(result.status, 200, "{}", result.raw);
    let text = switchboard_e2e::client::chat_stream_text(&result.events);
    assert_eq!(text, "secondary after timeout");
    assert!(
        stack
            .gateway
            .metric_sum(
                "switchboard_upstream_attempts_total",
                &[("outcome", "timeout")]
            )
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn all_backends_failing_returns_the_upstream_status() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::status(503));
    stack.secondary.set_default(Behaviour::status(503));
    let auth = stack.bearer();
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert!(
        status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(json_body(&body)["error"]["message"].is_string());
    wait_until(
        Duration::from_secs(5),
        "requests counted in metrics",
        || async {
            stack
                .gateway
                .metric_sum(
                    "switchboard_upstream_attempts_total",
                    &[("outcome", "status_5xx")],
                )
                .await
                >= 2.0
        },
    )
    .await;
}

#[tokio::test]
async fn long_retry_after_429_fails_over_at_once() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::rate_limited(
        switchboard_e2e::stack::RETRY_AFTER_CAP_SECS * 30,
    ));
    stack
        .secondary
        .set_default(Behaviour::ok("secondary without waiting"));
    let auth = stack.bearer();
    let started = std::time::Instant::now();
    let (status, _, body) = post_json(
        &stack.url(CHAT),
        &[("authorization", &auth)],
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        json_body(&body)["choices"][0]["message"]["content"],
        "secondary without waiting"
    );
    assert_eq!(
        stack.primary.request_count(),
        1,
        "a Retry-After above the cap is not waited out"
    );
    assert!(
        started.elapsed() < Duration::from_secs(switchboard_e2e::stack::RETRY_AFTER_CAP_SECS * 30)
    );
}

#[tokio::test]
async fn failing_backend_is_ejected_after_consecutive_failures() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::status(503));
    stack.secondary.set_default(Behaviour::ok("secondary"));
    let auth = stack.bearer();
    let mut primary_counts = Vec::new();
    for _ in 0..10 {
        let (status, _, body) = post_json(
            &stack.url(CHAT),
            &[("authorization", &auth)],
            &chat_body("gpt-test", false),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        primary_counts.push(stack.primary.request_count());
    }
    // The standard config ejects after 5 consecutive failures (baseEjection 30s): the last
    // requests must not touch the primary any more.
    let last = primary_counts[primary_counts.len() - 1];
    assert_eq!(
        primary_counts[primary_counts.len() - 3],
        last,
        "primary still tried after ejection: {primary_counts:?}"
    );
    assert!(last >= 5, "ejected only after failures: {primary_counts:?}");
    let metrics = stack.gateway.metrics().await;
    assert!(
        switchboard_e2e::harness::metric_sum(&metrics, "switchboard_circuit_breaker_state", &[])
            >= 1.0,
        "an open breaker is visible in /metrics:\n{metrics}"
    );
}
