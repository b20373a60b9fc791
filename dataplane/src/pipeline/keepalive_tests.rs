//! Keep-alives through the whole pipeline (issue 16, defect 5), on tokio's
//! paused clock: the configured interval, translated streams silent midway,
//! an upstream error after the headers went out, and keep-alives off.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::testing::{Harness, backend, messages, route};
use crate::upstream::fake::{Reply, Step};

const MESSAGES: &str = "/v1/messages";
const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

fn ev(name: &str, data: Value) -> Step {
    Step::Data(Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
}

fn anthropic_answer(wait_before_content: Duration) -> Reply {
    let body = vec![
        ev(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}),
        ),
        Step::Wait(wait_before_content),
        ev(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        ev(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}),
        ),
        ev(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        ev(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}),
        ),
        ev("message_stop", json!({"type":"message_stop"})),
    ];
    sse(body)
}

fn sse(body: Vec<Step>) -> Reply {
    Reply::Respond {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body,
    }
}

fn one_anthropic(interval: Duration) -> Harness {
    Harness::with(
        &[
            backend("primary", "Anthropic", &["claude-test"]),
            route(&["claude-*"], &["primary"]),
        ],
        |s| s.stream_keepalive = interval,
    )
}

#[tokio::test(start_paused = true)]
async fn the_configured_interval_commits_the_stream_and_paces_the_pings() {
    let h = one_anthropic(Duration::from_secs(3));
    h.upstream
        .set_default("primary", anthropic_answer(Duration::from_secs(7)));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let raw = String::from_utf8_lossy(&body);
    assert!(
        raw.starts_with(&format!("{PING}{PING}event: message_start")),
        "pings at 3 s and 6 s, the answer at 7 s: {raw}"
    );
    assert_eq!(raw.matches(PING).count(), 2, "{raw}");
    assert!(raw.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[tokio::test(start_paused = true)]
async fn a_translated_stream_silent_midway_is_pinged() {
    let h = Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary"]),
    ]);
    let chunk = |delta: Value, finish: Value| {
        Step::Data(Bytes::from(format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","model":"gpt-test","choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
        )))
    };
    h.upstream.set_default(
        "primary",
        sse(vec![
            chunk(json!({"role":"assistant","content":""}), Value::Null),
            chunk(json!({"content":"thinking"}), Value::Null),
            Step::Wait(Duration::from_secs(25)),
            chunk(json!({"content":" done"}), Value::Null),
            chunk(json!({}), json!("stop")),
            Step::Data(Bytes::from_static(b"data: [DONE]\n\n")),
        ]),
    );
    let (status, _, body) = h.post(MESSAGES, &messages("gpt-test", true)).await;
    assert_eq!(status, 200);
    let raw = String::from_utf8_lossy(&body);
    let first = raw.find("\"thinking\"").expect("first delta");
    let second = raw.find("\" done\"").expect("second delta");
    assert_eq!(
        raw[first..second].matches(PING).count(),
        2,
        "pings at 10 s and 20 s of silence: {raw}"
    );
    assert_eq!(raw.matches(PING).count(), 2, "{raw}");
}

#[tokio::test(start_paused = true)]
async fn an_upstream_error_after_the_headers_went_out_is_the_providers_own_event() {
    let h = Harness::new(&[
        {
            let mut b = backend("primary", "Anthropic", &["claude-test"]);
            b["spec"]["timeouts"] = json!({"firstToken": "15s"});
            b
        },
        backend("secondary", "Anthropic", &["claude-test"]),
        route(&["claude-*"], &["primary", "secondary"]),
    ]);
    h.upstream.set_default("primary", sse(vec![Step::Stall]));
    let overloaded = json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"});
    h.upstream
        .set_default("secondary", Reply::json(529, &overloaded));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200, "committed at 10 s");
    let raw = String::from_utf8_lossy(&body);
    assert!(raw.starts_with(PING), "{raw}");
    assert!(
        raw.ends_with(&format!("event: error\ndata: {overloaded}\n\n")),
        "the provider's error as it sent it: {raw}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_interval_turns_keep_alives_off() {
    let h = one_anthropic(Duration::ZERO);
    h.upstream
        .set_default("primary", anthropic_answer(Duration::from_secs(30)));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let raw = String::from_utf8_lossy(&body);
    assert!(raw.starts_with("event: message_start"), "{raw}");
    assert!(!raw.contains("event: ping"), "{raw}");
}
