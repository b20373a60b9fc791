//! The failure classes not covered by `gateway_failover.rs`, each produced by a mock upstream:
//! 429 without `Retry-After`, a one-off 500, a slow first byte (under and over the timeout),
//! a primary that goes down and recovers, a provider that refuses the gateway's key, every
//! backend unreachable (503 in both dialects), and an unknown route (404 in both dialects).
//!
//! These tests use a small two-backend configuration with short ejection intervals, so breaker
//! recovery is observable in a test; the route authenticates with a static API key.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::{ConfigBuilder, backend_spec};
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::gpt_test_backend;
use switchboard_e2e::stack::{
    ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV,
    chat_body, messages_body,
};
use switchboard_e2e::{
    Behaviour, Flavor, Gateway, MockUpstream, post_json, wait_until, write_config,
};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

/// Two OpenAI-format mocks behind one route, `gpt-*` → primary then secondary.
struct Pair {
    primary: MockUpstream,
    secondary: MockUpstream,
    gateway: Gateway,
    _dir: PathBuf,
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        (OPENAI_KEY_ENV, OPENAI_KEY),
        (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
        (CLIENT_KEY_ENV, CLIENT_KEY),
    ]
}

fn route(prefix: &str, rules: Value) -> Value {
    json!({
        "pathPrefix": prefix,
        "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
        "rules": rules,
        "retry": {"retryAfterCap": "2s", "backoff": "50ms", "maxAttempts": 4}
    })
}

fn two_backend_rules() -> Value {
    json!([{
        "models": ["gpt-*"],
        "backends": [{"name": "primary", "priority": 0}, {"name": "secondary", "priority": 1}]
    }])
}

/// Starts the pair; `primary_spec` may change the primary's AIBackend spec.
async fn pair(primary_spec: impl FnOnce(&mut Value)) -> Pair {
    let primary = MockUpstream::start(Flavor::OpenAI).await;
    let secondary = MockUpstream::start(Flavor::OpenAI).await;
    let mut p = gpt_test_backend(&primary.url());
    primary_spec(&mut p);
    let config = ConfigBuilder::new()
        .backend("primary", p)
        .backend("secondary", gpt_test_backend(&secondary.url()))
        .route("main", route("/", two_backend_rules()));
    let dir = temp_dir("failure-classes");
    let path = write_config(&dir, &config.to_yaml());
    let gateway = Gateway::start(&path, &env()).await;
    Pair {
        primary,
        secondary,
        gateway,
        _dir: dir,
    }
}

fn key() -> [(&'static str, &'static str); 1] {
    [("x-api-key", CLIENT_KEY)]
}

async fn chat(gateway: &Gateway) -> (u16, Value) {
    let (status, _, body) = post_json(
        &format!("{}{CHAT}", gateway.base_url()),
        &key(),
        &chat_body("gpt-test", false),
    )
    .await;
    (status.as_u16(), json_body(&body))
}

#[tokio::test]
async fn rate_limit_without_retry_after_moves_to_the_next_candidate_at_once() {
    let pair = pair(|_| {}).await;
    pair.primary.set_default(Behaviour::Status {
        status: 429,
        body: Value::Null,
        headers: vec![],
    });
    pair.secondary.set_default(Behaviour::ok("from secondary"));
    let (status, body) = chat(&pair.gateway).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "from secondary");
    assert_eq!(
        pair.primary.request_count(),
        1,
        "a 429 without Retry-After is not retried"
    );
    assert_eq!(pair.secondary.request_count(), 1);
}

#[tokio::test]
async fn one_off_500_is_retried_once_on_the_same_backend() {
    let pair = pair(|_| {}).await;
    pair.primary.script(vec![Behaviour::status(500)]);
    pair.primary.set_default(Behaviour::ok("second try"));
    let (status, body) = chat(&pair.gateway).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "second try");
    assert_eq!(
        pair.primary.request_count(),
        2,
        "the 500 and the quick retry"
    );
    assert_eq!(
        pair.secondary.request_count(),
        0,
        "no failover for a one-off 500"
    );
}

#[tokio::test]
async fn slow_first_byte_within_the_timeout_is_served_and_beyond_it_fails_over() {
    // The standard test backend has firstByte 3s.
    let pair = pair(|_| {}).await;
    pair.primary
        .set_default(Behaviour::SlowFirstByte { ms: 300 });
    pair.secondary.set_default(Behaviour::ok("from secondary"));
    let url = format!("{}{CHAT}", pair.gateway.base_url());
    let (status, _, body) = post_json(&url, &key(), &chat_body("gpt-test", true)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        pair.primary.request_count(),
        1,
        "a slow but timely answer is used"
    );
    assert_eq!(pair.secondary.request_count(), 0);

    pair.primary
        .set_default(Behaviour::SlowFirstByte { ms: 5_000 });
    let (status, _, body) = post_json(&url, &key(), &chat_body("gpt-test", true)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("data: [DONE]"),
        "the secondary's complete stream"
    );
    assert_eq!(
        pair.primary.request_count(),
        2,
        "the slow primary is not retried"
    );
    assert_eq!(pair.secondary.request_count(), 1);
}

#[tokio::test]
async fn primary_down_then_recovered_takes_traffic_again() {
    let pair = pair(|spec| {
        spec["ejection"] =
            json!({"consecutiveFailures": 2, "baseEjection": "1s", "maxEjection": "1s"});
    })
    .await;
    pair.primary.set_default(Behaviour::status(503));
    pair.secondary.set_default(Behaviour::ok("from secondary"));
    // Down: every request is served by the secondary; the primary's breaker opens.
    for _ in 0..3 {
        let (status, body) = chat(&pair.gateway).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["message"]["content"], "from secondary");
    }
    let tried_while_down = pair.primary.request_count();
    let (status, _) = chat(&pair.gateway).await;
    assert_eq!(status, 200);
    assert_eq!(
        pair.primary.request_count(),
        tried_while_down,
        "an open breaker keeps requests off the primary"
    );
    // Recovered: once the open interval has passed, a probe goes through and closes the breaker.
    pair.primary.set_default(Behaviour::ok("from primary"));
    wait_until(
        Duration::from_secs(10),
        "the recovered primary serves again",
        || async {
            let (status, body) = chat(&pair.gateway).await;
            status == 200 && body["choices"][0]["message"]["content"] == "from primary"
        },
    )
    .await;
    let served_by_secondary = pair.secondary.request_count();
    for _ in 0..3 {
        let (_, body) = chat(&pair.gateway).await;
        assert_eq!(body["choices"][0]["message"]["content"], "from primary");
    }
    assert_eq!(
        pair.secondary.request_count(),
        served_by_secondary,
        "traffic is back on the primary"
    );
}

#[tokio::test]
async fn a_provider_refusing_the_gateway_key_is_a_503_not_a_client_401() {
    let pair = pair(|_| {}).await;
    for mock in [&pair.primary, &pair.secondary] {
        mock.set_default(Behaviour::status(401));
    }
    let (status, body) = chat(&pair.gateway).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    assert_eq!(
        pair.primary.request_count(),
        1,
        "provider 401 is not retried on the same backend"
    );
    assert_eq!(pair.secondary.request_count(), 1, "but fails over");
}

#[tokio::test]
async fn unreachable_backends_give_503_in_the_client_dialect() {
    // Port 9 (discard) on loopback: nothing listens, so connects are refused at once.
    let dead = "http://127.0.0.1:9";
    let config = ConfigBuilder::new()
        .backend(
            "dead-openai",
            backend_spec(Flavor::OpenAI, dead, OPENAI_KEY_ENV, &["gpt-test"]),
        )
        .backend(
            "dead-anthropic",
            backend_spec(Flavor::Anthropic, dead, ANTHROPIC_KEY_ENV, &["claude-test"]),
        )
        .route(
            "main",
            route(
                "/",
                json!([
                    {"models": ["gpt-*"], "backends": [{"name": "dead-openai"}]},
                    {"models": ["claude-*"], "backends": [{"name": "dead-anthropic"}]}
                ]),
            ),
        );
    let dir = temp_dir("unreachable");
    let gateway = Gateway::start(&write_config(&dir, &config.to_yaml()), &env()).await;

    let (status, _, body) = post_json(
        &format!("{}{CHAT}", gateway.base_url()),
        &key(),
        &chat_body("gpt-test", false),
    )
    .await;
    let body = json_body(&body);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-test"),
        "{body}"
    );

    let (status, _, body) = post_json(
        &format!("{}{MESSAGES}", gateway.base_url()),
        &[
            ("x-api-key", CLIENT_KEY),
            ("anthropic-version", "2023-06-01"),
        ],
        &messages_body("claude-test", false),
    )
    .await;
    let body = json_body(&body);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
}

#[tokio::test]
async fn unknown_route_is_404_in_the_client_dialect_and_reaches_no_upstream() {
    let upstream = MockUpstream::start(Flavor::OpenAI).await;
    let config = ConfigBuilder::new()
        .backend("only", gpt_test_backend(&upstream.url()))
        .route(
            "team-a",
            route(
                "/team-a",
                json!([{"models": ["*"], "backends": [{"name": "only"}]}]),
            ),
        );
    let dir = temp_dir("unknown-route");
    let gateway = Gateway::start(&write_config(&dir, &config.to_yaml()), &env()).await;

    let (status, _, body) = post_json(
        &format!("{}/team-b{CHAT}", gateway.base_url()),
        &key(),
        &chat_body("gpt-test", false),
    )
    .await;
    let body = json_body(&body);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");

    let (status, _, body) = post_json(
        &format!("{}/team-b{MESSAGES}", gateway.base_url()),
        &[
            ("x-api-key", CLIENT_KEY),
            ("anthropic-version", "2023-06-01"),
        ],
        &messages_body("claude-test", false),
    )
    .await;
    let body = json_body(&body);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");

    // The matching prefix serves.
    let (status, _, _) = post_json(
        &format!("{}/team-a{CHAT}", gateway.base_url()),
        &key(),
        &chat_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        upstream.request_count(),
        1,
        "only the matched request went upstream"
    );
}

#[tokio::test]
async fn a_first_token_that_does_not_come_fails_over_before_any_byte_reaches_the_client() {
    // The primary sends its 200 and SSE headers at once, then nothing.
    let pair = pair(|spec| spec["timeouts"]["firstToken"] = json!("1s")).await;
    pair.primary
        .set_default(Behaviour::StallStream { after_events: 0 });
    pair.secondary.set_default(Behaviour::ok("from secondary"));
    let url = format!("{}{CHAT}", pair.gateway.base_url());
    let (status, _, body) = post_json(&url, &key(), &chat_body("gpt-test", true)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let events = switchboard_e2e::client::parse_sse(&String::from_utf8_lossy(&body));
    assert_eq!(
        switchboard_e2e::client::chat_stream_text(&events),
        "from secondary"
    );
    assert!(!String::from_utf8_lossy(&body).contains("\"error\""));
    assert_eq!(pair.primary.request_count(), 1);
    assert_eq!(pair.secondary.request_count(), 1);
    assert_eq!(
        pair.gateway
            .metric_sum(
                "switchboard_upstream_attempts_total",
                &[("outcome", "first_token_timeout")]
            )
            .await,
        1.0
    );
}
