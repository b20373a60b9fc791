//! Upstream errors reach the client as the provider sent them (issue 16, defect 4), through the
//! real binary with the request shapes real clients send: Claude Code's Messages stream
//! (`?beta=true`, its betas and headers, its recorded body), Codex's Responses stream and
//! OpenCode's Chat stream.
//!
//! - Same format: status, body bytes, `retry-after`, `request-id` / `x-request-id` and
//!   `x-should-retry` unchanged (Claude Code's recovery matches on the error wording).
//! - Translated: the provider's message text inside the client's error shape.
//! - Never: the provider credential or the backend's internal URL, in any body.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::agents::{
    claude_code_body, claude_code_headers, codex_body, codex_headers, opencode_body,
    opencode_headers,
};
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::stack::{
    ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV,
};
use switchboard_e2e::{
    Behaviour, Flavor, Gateway, MockUpstream, StreamResult, post_stream_partial, write_config,
};

const IDLE: Duration = Duration::from_secs(10);

struct Setup {
    openai: MockUpstream,
    anthropic: MockUpstream,
    local: MockUpstream,
    gateway: Gateway,
    _dir: PathBuf,
}

/// `gpt-4.1` on an OpenAI mock, `claude-sonnet-4` on an Anthropic mock, `local-coder` on an
/// OpenAI-compatible server; one backend per model, so an error is the last word.
async fn setup() -> Setup {
    let openai = MockUpstream::start(Flavor::OpenAI).await;
    let anthropic = MockUpstream::start(Flavor::Anthropic).await;
    let local = MockUpstream::start(Flavor::OpenAI).await;
    let mut compatible = backend_spec(
        Flavor::OpenAI,
        &local.url(),
        OPENAI_KEY_ENV,
        &["local-coder"],
    );
    compatible["provider"] = json!("OpenAICompatible");
    let config = ConfigBuilder::new()
        .backend(
            "openai",
            backend_spec(Flavor::OpenAI, &openai.url(), OPENAI_KEY_ENV, &["gpt-4.1"]),
        )
        .backend(
            "anthropic",
            backend_spec(
                Flavor::Anthropic,
                &anthropic.url(),
                ANTHROPIC_KEY_ENV,
                &["claude-sonnet-4"],
            ),
        )
        .backend("local", compatible)
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "auth": {"apiKeys": [{"name": "dev", "env": CLIENT_KEY_ENV}]},
                "rules": [
                    rule(&["gpt-*"], &["openai"]),
                    rule(&["claude-*"], &["anthropic"]),
                    rule(&["local-*"], &["local"])
                ],
                "retry": {"retryAfterCap": "1s", "backoff": "10ms"}
            }),
        );
    let dir = switchboard_e2e::harness::temp_dir("upstream-errors");
    let path = write_config(&dir, &config.to_yaml());
    let gateway = Gateway::start(
        &path,
        &[
            (OPENAI_KEY_ENV, OPENAI_KEY),
            (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
            (CLIENT_KEY_ENV, CLIENT_KEY),
        ],
    )
    .await;
    Setup {
        openai,
        anthropic,
        local,
        gateway,
        _dir: dir,
    }
}

async fn send(s: &Setup, path: &str, headers: &[(&str, &str)], body: &Value) -> StreamResult {
    post_stream_partial(
        &format!("{}{path}", s.gateway.base_url()),
        headers,
        body,
        IDLE,
    )
    .await
    .unwrap_or_else(|e| panic!("POST {path}: {e:#}"))
}

fn header<'a>(r: &'a StreamResult, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A scripted upstream error: status, body and headers.
fn error(status: u16, body: Value, headers: &[(&str, &str)]) -> Behaviour {
    Behaviour::Status {
        status,
        body,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// What the client must see of an upstream error on a same-format path.
fn assert_unmodified(
    what: &str,
    r: &StreamResult,
    status: u16,
    body: &Value,
    headers: &[(&str, &str)],
) {
    assert_eq!(r.status.as_u16(), status, "{what}: {}", r.raw);
    assert_eq!(r.raw, body.to_string(), "{what}: the body byte for byte");
    assert_eq!(
        header(r, "content-type"),
        Some("application/json"),
        "{what}"
    );
    for (name, value) in headers {
        assert_eq!(header(r, name), Some(*value), "{what}: header {name}");
    }
}

#[tokio::test]
async fn claude_code_gets_anthropic_errors_unmodified() {
    let s = setup().await;
    let cases = [
        (
            "prompt too long",
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": "prompt is too long: 215873 tokens > 200000 maximum"},
                "request_id": "req_011CVprompt"}),
            vec![("request-id", "req_011CVprompt")],
        ),
        (
            "overloaded",
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                "request_id": "req_011CVoverloaded"}),
            vec![
                ("request-id", "req_011CVoverloaded"),
                ("x-should-retry", "true"),
            ],
        ),
        (
            "rate limited",
            429,
            json!({"type": "error", "error": {"type": "rate_limit_error",
                "message": "This request would exceed the rate limit for your organization (org-1) of 40,000 input tokens per minute."},
                "request_id": "req_011CVlimited"}),
            vec![("request-id", "req_011CVlimited"), ("retry-after", "45")],
        ),
        (
            "billing",
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": "Your credit balance is too low to access the Anthropic API."}}),
            vec![("request-id", "req_mock_0001")],
        ),
    ];
    for (what, status, body, headers) in cases {
        s.anthropic
            .set_default(error(status, body.clone(), &headers));
        let r = send(
            &s,
            "/v1/messages?beta=true",
            &claude_code_headers(),
            &claude_code_body("claude-sonnet-4"),
        )
        .await;
        assert_unmodified(what, &r, status, &body, &headers);
    }
}

#[tokio::test]
async fn codex_and_opencode_get_openai_errors_unmodified() {
    let s = setup().await;
    let limited = json!({"error": {"message": "Rate limit reached for gpt-4.1 in organization org-1 on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 4s.",
        "type": "tokens", "param": null, "code": "rate_limit_exceeded"}});
    let headers = [("x-request-id", "req_codex_1"), ("retry-after", "4")];
    s.openai.set_default(error(429, limited.clone(), &headers));
    let r = send(
        &s,
        "/v1/responses",
        &codex_headers(),
        &codex_body("gpt-4.1"),
    )
    .await;
    assert_unmodified("codex 429", &r, 429, &limited, &headers);

    let too_long = json!({"error": {"message": "This model's maximum context length is 1047576 tokens. However, your messages resulted in 1100000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
    let headers = [("x-request-id", "req_opencode_1")];
    s.openai.set_default(error(400, too_long.clone(), &headers));
    let r = send(
        &s,
        "/v1/chat/completions",
        &opencode_headers(),
        &opencode_body("gpt-4.1"),
    )
    .await;
    assert_unmodified("opencode 400", &r, 400, &too_long, &headers);
}

#[tokio::test]
async fn translated_errors_keep_the_providers_message_in_the_clients_shape() {
    let s = setup().await;
    // Claude Code on a GPT model: the OpenAI error becomes an Anthropic one.
    let message = "This model's maximum context length is 1047576 tokens. However, your messages resulted in 1100000 tokens.";
    s.openai.set_default(error(
        400,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
        &[("x-request-id", "req_gpt_1")],
    ));
    let r = send(
        &s,
        "/v1/messages?beta=true",
        &claude_code_headers(),
        &claude_code_body("gpt-4.1"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.raw);
    let body = json_body(&r.raw.clone().into());
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
    );
    assert_eq!(header(&r, "x-request-id"), Some("req_gpt_1"));

    // Codex on a Claude model: the Anthropic error becomes an OpenAI one.
    s.anthropic.set_default(error(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        &[("request-id", "req_claude_1")],
    ));
    let r = send(
        &s,
        "/v1/responses",
        &codex_headers(),
        &codex_body("claude-sonnet-4"),
    )
    .await;
    assert_eq!(r.status, 529, "{}", r.raw);
    let body = json_body(&r.raw.clone().into());
    assert_eq!(body["error"]["message"], "Overloaded");
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert_eq!(header(&r, "request-id"), Some("req_claude_1"));
}

#[tokio::test]
async fn provider_credentials_and_internal_urls_never_reach_the_client() {
    let s = setup().await;
    let internal = format!("{}/v1/chat/completions", s.local.url());
    // A self-hosted server that echoes what it got (vLLM, a proxy in front of it...).
    let leaky = json!({"error": {
        "message": format!("upstream {internal} refused Authorization: Bearer {OPENAI_KEY} (see http://vllm-0.vllm.svc.cluster.local:8000/metrics and https://docs.vllm.ai/en/latest/)"),
        "type": "invalid_request_error", "param": null, "code": null}});
    s.local.set_default(error(
        400,
        leaky,
        &[
            ("x-request-id", "req_local_1"),
            ("x-upstream-host", "10.0.3.7"),
        ],
    ));
    let r = send(
        &s,
        "/v1/chat/completions",
        &opencode_headers(),
        &opencode_body("local-coder"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(
        !r.raw.contains(OPENAI_KEY),
        "the provider key leaked: {}",
        r.raw
    );
    assert!(
        !r.raw.contains(&s.local.url()),
        "the backend URL leaked: {}",
        r.raw
    );
    assert!(
        !r.raw.contains("svc.cluster.local"),
        "an internal URL leaked: {}",
        r.raw
    );
    let body = json_body(&r.raw.clone().into());
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("upstream [redacted-url] refused Authorization: Bearer [redacted]"),
        "the rest of the wording stays: {message}"
    );
    assert!(
        message.contains("https://docs.vllm.ai/en/latest/"),
        "public URLs stay: {message}"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(header(&r, "x-request-id"), Some("req_local_1"));
    assert_eq!(
        header(&r, "x-upstream-host"),
        None,
        "only known provider headers"
    );

    // The same through a translation (Claude Code on the self-hosted model).
    let r = send(
        &s,
        "/v1/messages?beta=true",
        &claude_code_headers(),
        &claude_code_body("local-coder"),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.raw);
    assert!(
        !r.raw.contains(OPENAI_KEY) && !r.raw.contains(&s.local.url()),
        "{}",
        r.raw
    );
    assert_eq!(json_body(&r.raw.clone().into())["type"], "error");
    let _ = (&s.openai, &s.anthropic);
}
