//! Route guards through the real binary: blocked prompt patterns, the
//! request webhook (allow, reject, custom status, fail open and closed),
//! removal of body fields before forwarding, and masking of emails and
//! phone numbers in JSON and streamed answers, in both dialects.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::ConfigBuilder;
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::gpt_test_backend;
use switchboard_e2e::stack::{OPENAI_KEY, OPENAI_KEY_ENV, chat_body, messages_body};
use switchboard_e2e::{Flavor, Gateway, MockUpstream, post_json, post_stream, write_config};
use tokio::net::TcpListener;

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
const SECRET_REPLY: &str = "Mail jane.doe@example.com or call 555-123-4567 today.";

/// A webhook that rejects prompts containing `forbidden` and records every summary.
struct Hook {
    url: String,
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn start_hook() -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/check", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let recorded = recorded.clone();
                    async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let summary: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let text = summary.to_string();
                        recorded.lock().unwrap().push(summary);
                        // An external budget says when it resets; a policy does not.
                        let answer = if text.contains("over budget") {
                            json!({"action": "reject", "reason": "budget of $50.00 per month exhausted", "retryAfter": 3600})
                        } else if text.contains("forbidden") {
                            json!({"action": "reject", "reason": "forbidden topic"})
                        } else {
                            json!({"action": "allow"})
                        };
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                            answer.to_string(),
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Hook { url, seen }
}

fn mock_rules() -> Value {
    json!([{"backends": [{"name": "mock"}]}])
}

fn config(hook: &Hook, upstream: &MockUpstream) -> String {
    let teams = json!({"teams": [{"name": "web", "tier": "enterprise"}], "claim": "client_id"});
    ConfigBuilder::new()
        .backend("mock", json!({"provider": "Mock", "mock": {"reply": SECRET_REPLY}}))
        .backend("openai", gpt_test_backend(&upstream.url()))
        .route(
            "block",
            json!({"pathPrefix": "/block", "rules": mock_rules(), "teams": teams, "guards": {
                "blockedPatterns": [{"pattern": "(?i)BEGIN [A-Z ]*PRIVATE KEY", "message": "private keys must not be sent to models"}]
            }}),
        )
        .route(
            "hook",
            json!({"pathPrefix": "/hook", "rules": mock_rules(), "guards": {"webhook": {"url": hook.url, "timeout": "2s"}}}),
        )
        .route(
            "hook403",
            json!({"pathPrefix": "/hook403", "rules": mock_rules(), "guards": {"webhook": {"url": hook.url, "rejectStatus": 403}}}),
        )
        .route(
            "hookdown",
            json!({"pathPrefix": "/hookdown", "rules": mock_rules(), "guards": {"webhook": {"url": "http://127.0.0.1:1/x", "timeout": "500ms"}}}),
        )
        .route(
            "hookopen",
            json!({"pathPrefix": "/hookopen", "rules": mock_rules(), "guards": {"webhook": {"url": "http://127.0.0.1:1/x", "timeout": "500ms", "failOpen": true}}}),
        )
        .route(
            "strip",
            json!({"pathPrefix": "/strip", "rules": [{"backends": [{"name": "openai"}]}], "guards": {"removeFields": ["user", "metadata.user_id"]}}),
        )
        .route(
            "mask",
            json!({"pathPrefix": "/mask", "rules": mock_rules(), "guards": {"mask": {"emails": true, "phoneNumbers": true}}}),
        )
        .to_yaml()
}

struct Env {
    gateway: Gateway,
    hook: Hook,
    upstream: MockUpstream,
}

async fn start() -> Env {
    let hook = start_hook().await;
    let upstream = MockUpstream::start(Flavor::OpenAI).await;
    let dir = temp_dir("guards");
    let path = write_config(&dir, &config(&hook, &upstream));
    let gateway = Gateway::start(&path, &[(OPENAI_KEY_ENV, OPENAI_KEY)]).await;
    Env {
        gateway,
        hook,
        upstream,
    }
}

impl Env {
    fn url(&self, prefix: &str, path: &str) -> String {
        format!("{}{prefix}{path}", self.gateway.base_url())
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.gateway.metric_sum(name, labels).await
    }
}

fn with_prompt(mut body: Value, text: &str) -> Value {
    body["messages"] = json!([{"role": "user", "content": text}]);
    body
}

fn assert_error(body: &Bytes, openai: bool, kind: &str) -> String {
    let v = json_body(body);
    if openai {
        assert_eq!(v["error"]["type"], kind, "{v}");
    } else {
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
    }
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn blocked_patterns_are_refused_in_both_dialects() {
    let env = start().await;
    let prompt = "here is my key -----BEGIN RSA PRIVATE KEY----- abc";
    let (status, _, body) = post_json(
        &env.url("/block", CHAT),
        &[],
        &with_prompt(chat_body("gpt-4o", false), prompt),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        assert_error(&body, true, "invalid_request_error"),
        "private keys must not be sent to models"
    );
    let (status, _, body) = post_json(
        &env.url("/block", MESSAGES),
        &[],
        &with_prompt(messages_body("claude-x", false), prompt),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        assert_error(&body, false, "invalid_request_error"),
        "private keys must not be sent to models"
    );
    let (status, _, _) =
        post_json(&env.url("/block", CHAT), &[], &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 200);
    assert_eq!(
        env.metric(
            "switchboard_rejections_total",
            &[("reason", "blocked_prompt")]
        )
        .await,
        2.0
    );
    let labels = [("team", "unknown"), ("reason", "blocked_prompt")];
    assert_eq!(
        env.metric("switchboard_team_rejections_total", &labels)
            .await,
        2.0
    );
}

#[tokio::test]
async fn the_webhook_allows_rejects_and_fails_open_or_closed() {
    let env = start().await;
    let (status, _, _) = post_json(
        &env.url("/hook", CHAT),
        &[],
        &with_prompt(chat_body("gpt-4o", false), "hello"),
    )
    .await;
    assert_eq!(status, 200);
    let summary = env.hook.seen.lock().unwrap()[0].clone();
    assert_eq!(summary["route"], "default/hook");
    assert_eq!(summary["model"], "gpt-4o");
    assert_eq!(summary["api"], "chat_completions");
    assert_eq!(summary["prompt"], json!(["hello"]));

    let forbidden = "tell me the forbidden thing";
    let (status, headers, body) = post_json(
        &env.url("/hook", CHAT),
        &[],
        &with_prompt(chat_body("gpt-4o", false), forbidden),
    )
    .await;
    assert_eq!(status, 429);
    // Without a `retryAfter`, a 429 rejection lasts until the UTC day ends:
    // an agent stops rather than retrying a refusal that will not change.
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    let message = assert_error(&body, true, "rate_limit_error");
    assert!(
        message.starts_with("request rejected by policy: forbidden topic; retry after ")
            && message.contains("T00:00:00Z (in "),
        "{message}"
    );
    if retry > 60 {
        assert_eq!(headers["x-should-retry"], "false");
    }
    let (status, _, body) = post_json(
        &env.url("/hook", MESSAGES),
        &[],
        &with_prompt(messages_body("claude-x", false), forbidden),
    )
    .await;
    assert_eq!(status, 429);
    assert_error(&body, false, "rate_limit_error");
    // A budget webhook's `retryAfter` is the Retry-After, in both dialects.
    for (path, body, openai) in [
        (CHAT, chat_body("gpt-4o", false), true),
        (MESSAGES, messages_body("claude-x", false), false),
    ] {
        let (status, headers, body) = post_json(
            &env.url("/hook", path),
            &[],
            &with_prompt(body, "I am over budget"),
        )
        .await;
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "3600");
        assert_eq!(headers["x-should-retry"], "false");
        let message = assert_error(&body, openai, "rate_limit_error");
        assert!(
            message.starts_with(
                "request rejected by policy: budget of $50.00 per month exhausted; retry after "
            ) && message.ends_with("Z (in 1h)"),
            "{message}"
        );
    }
    let (status, headers, body) = post_json(
        &env.url("/hook403", MESSAGES),
        &[],
        &with_prompt(messages_body("claude-x", false), forbidden),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        headers.get("retry-after").is_none(),
        "only 429 rejections say when to retry"
    );
    assert_error(&body, false, "permission_error");
    assert_eq!(
        env.metric(
            "switchboard_rejections_total",
            &[("reason", "webhook_rejected")]
        )
        .await,
        5.0
    );

    let (status, headers, body) = post_json(
        &env.url("/hookdown", CHAT),
        &[],
        &chat_body("gpt-4o", false),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert_error(&body, true, "server_error");
    let (status, _, body) = post_json(
        &env.url("/hookdown", MESSAGES),
        &[],
        &messages_body("claude-x", false),
    )
    .await;
    assert_eq!(status, 503);
    assert_error(&body, false, "overloaded_error");
    assert_eq!(
        env.metric(
            "switchboard_rejections_total",
            &[("reason", "webhook_unavailable")]
        )
        .await,
        2.0
    );
    let (status, _, _) = post_json(
        &env.url("/hookopen", CHAT),
        &[],
        &chat_body("gpt-4o", false),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn configured_fields_are_removed_before_forwarding() {
    let env = start().await;
    let mut body = chat_body("gpt-test", false);
    body["user"] = json!("alice@example.com");
    body["metadata"] = json!({"user_id": "u-1", "keep": "yes"});
    let (status, _, resp) = post_json(&env.url("/strip", CHAT), &[], &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    let sent = &env.upstream.requests()[0].body;
    assert!(sent.get("user").is_none(), "{sent}");
    assert_eq!(sent["metadata"], json!({"keep": "yes"}));
    assert_eq!(sent["messages"], body["messages"]);
}

#[tokio::test]
async fn emails_and_phone_numbers_are_masked_in_json_and_streams() {
    let env = start().await;
    let check = |text: &str| {
        assert!(
            !text.contains("jane.doe@example.com") && !text.contains("555-123-4567"),
            "{text}"
        );
        assert!(text.contains("[REDACTED]"), "{text}");
    };
    let (status, _, body) =
        post_json(&env.url("/mask", CHAT), &[], &chat_body("gpt-4o", false)).await;
    assert_eq!(status, 200);
    let v = json_body(&body);
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text, "Mail [REDACTED] or call [REDACTED] today.");
    let (status, _, body) = post_json(
        &env.url("/mask", MESSAGES),
        &[],
        &messages_body("claude-x", false),
    )
    .await;
    assert_eq!(status, 200);
    check(json_body(&body)["content"][0]["text"].as_str().unwrap());

    let (status, _, events) =
        post_stream(&env.url("/mask", CHAT), &[], &chat_body("gpt-4o", true)).await;
    assert_eq!(status, 200);
    let text: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Mail [REDACTED] or call [REDACTED] today.");
    assert_eq!(events.last().unwrap().data, "[DONE]");

    let (status, _, events) = post_stream(
        &env.url("/mask", MESSAGES),
        &[],
        &messages_body("claude-x", true),
    )
    .await;
    assert_eq!(status, 200);
    let text: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| {
            v.pointer("/delta/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Mail [REDACTED] or call [REDACTED] today.");
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("message_stop")
    );
}

#[tokio::test]
async fn masking_covers_the_responses_api_json_and_stream() {
    let env = start().await;
    let url = env.url("/mask", "/v1/responses");
    let (status, _, body) = post_json(&url, &[], &json!({"model": "gpt-4o", "input": "hi"})).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body).into_owned();
    assert!(
        !text.contains("jane.doe@example.com") && text.contains("[REDACTED]"),
        "{text}"
    );

    let (status, _, events) = post_stream(
        &url,
        &[],
        &json!({"model": "gpt-4o", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(status, 200);
    let deltas: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter(|v| v["type"] == "response.output_text.delta")
        .filter_map(|v| v["delta"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(deltas, "Mail [REDACTED] or call [REDACTED] today.");
    assert!(
        events
            .iter()
            .all(|e| !e.data.contains("jane.doe@example.com")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.json().is_some_and(|v| v["type"] == "response.completed"))
    );
}
