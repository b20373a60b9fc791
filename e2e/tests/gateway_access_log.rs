//! The JSON access log through the real binary. With `--log-format json` the data plane writes
//! each `request finished` line straight into its log buffer, not through `tracing` (issue 17);
//! the line must still carry every documented field, and the log filter must still turn it off.

use std::time::Duration;

use serde_json::Value;
use switchboard_e2e::stack::chat_body;
use switchboard_e2e::{Behaviour, Gateway, Stack, post_json, wait_until};

const CHAT: &str = "/v1/chat/completions";

/// The JSON lines of the gateway's log with `message`.
fn lines_with_message(g: &Gateway, message: &str) -> Vec<Value> {
    g.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

async fn chat(stack: &Stack, request_id: &str) {
    let auth = stack.bearer();
    let headers = [
        ("authorization", auth.as_str()),
        ("x-request-id", request_id),
    ];
    let (status, _, body) =
        post_json(&stack.url(CHAT), &headers, &chat_body("gpt-test", false)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn an_answered_request_writes_one_json_access_line_with_every_field() {
    let stack = Stack::start_with_args(&["--log-format", "json"], &[]).await;
    stack.primary.set_default(Behaviour::OkWithUsage {
        text: "hi".into(),
        input: 42,
        output: 7,
        cached: 0,
    });
    chat(&stack, "req-access-1").await;
    wait_until(Duration::from_secs(10), "the access line", || async {
        !lines_with_message(&stack.gateway, "request finished").is_empty()
    })
    .await;
    let lines = lines_with_message(&stack.gateway, "request finished");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    // Every field (serde_json's map lists them sorted).
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut documented = [
        "timestamp",
        "level",
        "message",
        "request_id",
        "route",
        "api",
        "subject",
        "team",
        "session",
        "requested_model",
        "model",
        "backend",
        "provider",
        "status",
        "outcome",
        "stream",
        "attempts",
        "byok",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "usage_estimated",
        "latency_ms",
        "target",
    ];
    documented.sort_unstable();
    assert_eq!(keys, documented, "{line}");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "switchboard::access");
    assert_eq!(line["request_id"], "req-access-1");
    assert_eq!(line["subject"], "e2e-user");
    assert_eq!(line["api"], "chat_completions");
    assert_eq!(line["requested_model"], "gpt-test");
    assert_eq!(line["status"], 200);
    assert_eq!(line["outcome"], "completed");
    assert_eq!(line["stream"], false);
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["input_tokens"], 42);
    assert_eq!(line["output_tokens"], 7);
    assert_eq!(line["usage_estimated"], false);
    assert!(line["latency_ms"].is_u64(), "{line}");
}

#[tokio::test]
async fn the_log_filter_turns_the_json_access_line_off() {
    let mut stack = Stack::start_with_args(
        &["--log-format", "json"],
        &[("RUST_LOG", "info,switchboard::access=off")],
    )
    .await;
    chat(&stack, "req-access-off").await;
    // Stopping writes every buffered line, so what is missing now was never written.
    let status = stack.gateway.terminate().await;
    assert!(status.success(), "{status}");
    let log = stack.gateway.log();
    assert!(
        lines_with_message(&stack.gateway, "request finished").is_empty(),
        "{log}"
    );
    assert!(!log.contains("req-access-off"), "{log}");
    // Other lines are still written, in JSON.
    assert!(
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["level"] == "INFO"),
        "{log}"
    );
}
