//! The upstream failure classes (docs/routing.md §2), each produced by the
//! scripted fake upstream and driven through the whole pipeline in-process
//! with tokio's paused clock. The process-level e2e tests
//! (`e2e/tests/gateway_failover.rs`, `gateway_failure_classes.rs`,
//! `gateway_streaming.rs`) cover the same classes through real sockets.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::testing::{Harness, backend, chat, chat_stream_text, messages, metric, route};
use crate::upstream::fake::{Reply, Step};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

/// `primary` then `secondary`, both OpenAI, `gpt-*`; `tune` edits the primary.
fn pair_with(tune: impl FnOnce(&mut Value)) -> Harness {
    let mut primary = backend("primary", "OpenAI", &["gpt-test"]);
    tune(&mut primary["spec"]);
    Harness::new(&[
        primary,
        backend("secondary", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary", "secondary"]),
    ])
}

fn pair() -> Harness {
    pair_with(|_| {})
}

fn content(body: &Bytes) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn chat_once(h: &Harness) -> (u16, String) {
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", false)).await;
    (status.as_u16(), content(&body))
}

fn with_header(status: u16, name: &'static str, value: &str) -> Reply {
    Reply::Respond {
        status,
        headers: vec![
            ("content-type", "application/json".into()),
            (name, value.to_string()),
        ],
        body: vec![Step::Data(Bytes::from_static(
            br#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#,
        ))],
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limited_with_a_short_retry_after_is_retried_on_the_same_backend() {
    let h = pair();
    h.upstream
        .script("primary", vec![with_header(429, "retry-after", "1")]);
    h.upstream
        .set_default("primary", Reply::ok("after the wait"));
    let started = tokio::time::Instant::now();
    assert_eq!(chat_once(&h).await, (200, "after the wait".into()));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After waited out"
    );
    assert_eq!(h.upstream.count("primary"), 2);
    assert_eq!(h.upstream.count("secondary"), 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_without_retry_after_moves_on_at_once() {
    let h = pair();
    h.upstream.set_default("primary", Reply::status(429));
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    assert_eq!(h.upstream.count("primary"), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn overloaded_529_is_treated_like_a_rate_limit() {
    let h = pair();
    h.upstream.set_default("primary", Reply::status(529));
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    assert_eq!(h.upstream.count("primary"), 1);
}

#[tokio::test(start_paused = true)]
async fn persistent_503_is_retried_once_then_fails_over() {
    let h = pair();
    h.upstream.set_default("primary", Reply::status(503));
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    assert_eq!(h.upstream.count("primary"), 2, "one quick retry");
    let m = h.metrics();
    assert_eq!(
        metric(
            &m,
            "switchboard_failovers_total",
            &[("from_backend", "default/primary")]
        ),
        1.0,
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn one_off_500_is_served_by_the_quick_retry() {
    let h = pair();
    h.upstream.script("primary", vec![Reply::status(500)]);
    h.upstream.set_default("primary", Reply::ok("second try"));
    assert_eq!(chat_once(&h).await, (200, "second try".into()));
    assert_eq!(h.upstream.count("secondary"), 0);
}

#[tokio::test(start_paused = true)]
async fn refused_connections_fail_over() {
    let h = pair();
    h.upstream.set_default("primary", Reply::Refuse);
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
}

#[tokio::test(start_paused = true)]
async fn a_reset_before_headers_is_retried_then_fails_over() {
    let h = pair();
    h.upstream.set_default("primary", Reply::Reset);
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    assert_eq!(h.upstream.count("primary"), 2);
}

#[tokio::test(start_paused = true)]
async fn silence_before_headers_fails_over_without_a_retry() {
    let h = pair();
    h.upstream.set_default("primary", Reply::Hang);
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&body), "from secondary");
    assert_eq!(
        h.upstream.count("primary"),
        1,
        "a silent backend is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_headers_within_the_first_byte_timeout_are_served() {
    let h = pair();
    h.upstream.set_default(
        "primary",
        Reply::After(Duration::from_secs(5), Box::new(Reply::ok("slow but fine"))),
    );
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&body), "slow but fine");
    assert_eq!(h.upstream.count("secondary"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_event_is_dropped_and_counted() {
    let h = pair();
    h.upstream.set_default(
        "primary",
        Reply::sse(&[
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"ok\"}}]}\n\n",
            "data: {not json\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ]),
    );
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("{not json"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_malformed_stream_events_total",
            &[]
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn context_length_goes_to_the_context_fallback_chain() {
    let mut r = route(&["gpt-*"], &["primary"]);
    r["spec"]["rules"][0]["contextFallback"] = json!([{"name": "secondary"}]);
    let h = Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        backend("secondary", "OpenAI", &["gpt-test"]),
        r,
    ]);
    h.upstream.set_default(
        "primary",
        Reply::json(
            400,
            &json!({"error": {"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}}),
        ),
    );
    h.upstream
        .set_default("secondary", Reply::ok("bigger window"));
    assert_eq!(chat_once(&h).await, (200, "bigger window".into()));
}

#[tokio::test(start_paused = true)]
async fn content_policy_400_goes_back_to_the_client_without_failover() {
    let h = pair();
    h.upstream.set_default(
        "primary",
        Reply::json(
            400,
            &json!({"error": {"message": "rejected by the content policy", "type": "invalid_request_error", "code": "content_policy_violation"}}),
        ),
    );
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", false)).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("content policy"));
    assert_eq!(h.upstream.count("secondary"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_provider_refusing_the_gateway_key_is_a_503() {
    let h = pair();
    h.upstream.set_default("primary", Reply::status(401));
    h.upstream.set_default("secondary", Reply::status(401));
    let (status, _, _) = h.post(CHAT, &chat("gpt-test", false)).await;
    assert_eq!(status, 503);
}

#[tokio::test(start_paused = true)]
async fn a_primary_down_then_recovered_takes_traffic_again() {
    let h = pair_with(|spec| {
        spec["ejection"] =
            json!({"consecutiveFailures": 2, "baseEjection": "1s", "maxEjection": "1s"});
    });
    h.upstream.set_default("primary", Reply::status(503));
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    let tried = h.upstream.count("primary");
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    assert_eq!(
        h.upstream.count("primary"),
        tried,
        "the open breaker skips it"
    );
    h.upstream.set_default("primary", Reply::ok("from primary"));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(chat_once(&h).await, (200, "from primary".into()));
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_without_a_fallback_ends_with_an_in_band_error() {
    let h = Harness::new(&[
        backend("primary", "Anthropic", &["claude-test"]),
        route(&["claude-*"], &["primary"]),
    ]);
    h.upstream.set_default(
        "primary",
        Reply::Shaped("one two three four".into(), |mut steps| {
            steps.truncate(3);
            steps.push(Step::Cut);
            steps
        }),
    );
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
}

/// A 200 JSON answer whose body stops after a few bytes (and never ends).
fn stalled_json_body() -> Reply {
    Reply::Respond {
        status: 200,
        headers: vec![
            ("content-type", "application/json".into()),
            ("content-length", "1000".into()),
        ],
        body: vec![
            Step::Data(Bytes::from_static(b"{\"id\":\"x\",")),
            Step::Stall,
        ],
    }
}

#[tokio::test(start_paused = true)]
async fn a_non_streaming_body_that_stalls_fails_over() {
    let h = pair();
    h.upstream.set_default("primary", stalled_json_body());
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    let answer = tokio::time::timeout(Duration::from_secs(3600), chat_once(&h))
        .await
        .expect("the stalled body is given up on");
    assert_eq!(answer, (200, "from secondary".into()));
    assert_eq!(h.upstream.count("primary"), 1, "a timeout is not retried");
}

#[tokio::test(start_paused = true)]
async fn a_non_streaming_body_that_stalls_on_the_last_backend_is_a_504() {
    let h = Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary"]),
    ]);
    h.upstream.set_default("primary", stalled_json_body());
    let (status, _, body) = tokio::time::timeout(
        Duration::from_secs(3600),
        h.post(CHAT, &chat("gpt-test", false)),
    )
    .await
    .expect("the client gets an answer, not a hang");
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["type"], "timeout_error");
}

#[tokio::test(start_paused = true)]
async fn a_non_streaming_body_cut_midway_is_retried() {
    let h = pair();
    h.upstream.script(
        "primary",
        vec![Reply::Shaped("whole answer".into(), |mut steps| {
            let first = match steps.pop() {
                Some(Step::Data(b)) => b.slice(..10),
                _ => Bytes::new(),
            };
            vec![Step::Data(first), Step::Cut]
        })],
    );
    h.upstream.set_default("primary", Reply::ok("whole answer"));
    assert_eq!(chat_once(&h).await, (200, "whole answer".into()));
    assert_eq!(h.upstream.count("primary"), 2);
}

#[tokio::test(start_paused = true)]
async fn an_endless_keep_alive_stream_ends_at_the_maximum_duration() {
    let mut b = backend("primary", "Anthropic", &["claude-test"]);
    b["spec"]["timeouts"] = json!({"maxStream": "10m", "streamIdle": "60s"});
    let h = Harness::new(&[b, route(&["claude-*"], &["primary"])]);
    h.upstream.set_default(
        "primary",
        Reply::Respond {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            body: vec![
                Step::Data(Bytes::from_static(
                    b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-test\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
                )),
                Step::Data(Bytes::from_static(
                    b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                )),
                Step::Every(
                    Duration::from_secs(15),
                    Bytes::from_static(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"),
                ),
            ],
        },
    );
    let started = tokio::time::Instant::now();
    let (status, _, body) = tokio::time::timeout(
        Duration::from_secs(86_400),
        h.post(MESSAGES, &messages("claude-test", true)),
    )
    .await
    .expect("the endless stream is ended by the gateway");
    assert_eq!(status, 200);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(600) && elapsed < Duration::from_secs(620),
        "{elapsed:?}"
    );
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("maximum duration"), "{text}");
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_streams_total",
            &[("outcome", "max_duration")]
        ),
        1.0
    );
}

// Item 14 of issue 12: circuit breakers and failover accounting.

#[tokio::test(start_paused = true)]
async fn the_failure_that_opens_a_breaker_is_not_retried_on_that_backend() {
    let h = pair_with(|spec| {
        spec["ejection"] = json!({"consecutiveFailures": 1, "baseEjection": "10s"});
    });
    h.upstream.set_default("primary", Reply::status(503));
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    assert_eq!(
        h.upstream.count("primary"),
        1,
        "the 503 opened the breaker: no quick retry of an ejected backend"
    );
}

#[tokio::test(start_paused = true)]
async fn requests_that_skip_an_open_breaker_count_as_failovers_and_transitions_are_counted() {
    let h = pair_with(|spec| {
        spec["ejection"] =
            json!({"consecutiveFailures": 1, "baseEjection": "10s", "maxEjection": "10s"});
    });
    h.upstream.set_default("primary", Reply::status(503));
    h.upstream
        .set_default("secondary", Reply::ok("from secondary"));
    chat_once(&h).await;
    let skipped = |m: &str| {
        metric(
            m,
            "switchboard_failovers_total",
            &[
                ("from_backend", "default/primary"),
                ("reason", "breaker_open"),
            ],
        )
    };
    assert_eq!(skipped(&h.metrics()), 0.0);
    for n in 1..=3 {
        assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
        assert_eq!(
            skipped(&h.metrics()),
            f64::from(n),
            "every request that skips it"
        );
    }
    assert_eq!(h.upstream.count("primary"), 1);
    let m = h.metrics();
    assert_eq!(
        metric(
            &m,
            "switchboard_circuit_breaker_transitions_total",
            &[("backend", "default/primary"), ("to", "open")]
        ),
        1.0,
        "{m}"
    );
    // A failed half-open probe re-opens without a retry; a good one closes.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(chat_once(&h).await, (200, "from secondary".into()));
    assert_eq!(h.upstream.count("primary"), 2, "one probe, not retried");
    h.upstream.set_default("primary", Reply::ok("from primary"));
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(chat_once(&h).await, (200, "from primary".into()));
    let m = h.metrics();
    assert_eq!(
        metric(
            &m,
            "switchboard_circuit_breaker_transitions_total",
            &[("backend", "default/primary"), ("to", "open")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "switchboard_circuit_breaker_transitions_total",
            &[("backend", "default/primary"), ("to", "closed")]
        ),
        1.0
    );
}
