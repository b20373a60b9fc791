//! Streams through the whole pipeline (issue 12, items 11-13): complete
//! answers without `[DONE]`, failover on a slow first token with the client
//! kept alive, and continuation of streams that die midway.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::testing::{Harness, backend, chat, chat_stream_text, messages, metric, route};
use crate::upstream::fake::{Reply, Step};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

fn anthropic_pair(tune: impl FnOnce(&mut Value)) -> Harness {
    let mut r = route(&["claude-*"], &["primary", "secondary"]);
    tune(&mut r["spec"]);
    Harness::new(&[
        backend("primary", "Anthropic", &["claude-test"]),
        backend("secondary", "Anthropic", &["claude-test"]),
        r,
    ])
}

fn openai_pair(tune: impl FnOnce(&mut Value)) -> Harness {
    let mut r = route(&["gpt-*"], &["primary", "secondary"]);
    tune(&mut r["spec"]);
    Harness::new(&[
        backend("primary", "OpenAI", &["gpt-test"]),
        backend("secondary", "OpenAI", &["gpt-test"]),
        r,
    ])
}

fn ev(name: &str, data: Value) -> Step {
    Step::Data(Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
}

fn message_start(id: &str) -> Step {
    ev(
        "message_start",
        json!({"type":"message_start","message":{"id":id,"type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}}),
    )
}

fn block_start(i: u64, kind: &str) -> Step {
    let block = match kind {
        "text" => json!({"type":"text","text":""}),
        "thinking" => json!({"type":"thinking","thinking":""}),
        _ => json!({"type":"tool_use","id":"toolu_1","name":"read","input":{}}),
    };
    ev(
        "content_block_start",
        json!({"type":"content_block_start","index":i,"content_block":block}),
    )
}

fn text(i: u64, t: &str) -> Step {
    ev(
        "content_block_delta",
        json!({"type":"content_block_delta","index":i,"delta":{"type":"text_delta","text":t}}),
    )
}

fn block_stop(i: u64) -> Step {
    ev(
        "content_block_stop",
        json!({"type":"content_block_stop","index":i}),
    )
}

fn message_end() -> Vec<Step> {
    vec![
        ev(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}),
        ),
        ev("message_stop", json!({"type":"message_stop"})),
    ]
}

fn sse(steps: Vec<Step>) -> Reply {
    Reply::Respond {
        status: 200,
        headers: vec![("content-type", "text/event-stream".into())],
        body: steps,
    }
}

/// The text of an Anthropic stream (text deltas joined) and its events' names.
fn anthropic_text(body: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut names = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_string());
            }
            if let Some(d) = line.strip_prefix("data: ")
                && let Ok(v) = serde_json::from_str::<Value>(d)
                && let Some(t) = v.pointer("/delta/text").and_then(Value::as_str)
            {
                out.push_str(t);
            }
        }
        if let Some(n) = name {
            names.push(n);
        }
    }
    (out, names)
}

fn count(names: &[String], name: &str) -> usize {
    names.iter().filter(|n| *n == name).count()
}

// Item 11.

#[tokio::test(start_paused = true)]
async fn a_complete_chat_stream_without_done_is_completed() {
    let h = openai_pair(|_| {});
    let chunk = |delta: Value, finish: Value| {
        Step::Data(Bytes::from(format!(
            "data: {}\n\n",
            json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
        )))
    };
    h.upstream.set_default(
        "primary",
        sse(vec![
            chunk(json!({"role":"assistant","content":""}), Value::Null),
            chunk(json!({"content":"complete answer"}), Value::Null),
            chunk(json!({}), json!("stop")),
            Step::Data(Bytes::from_static(
                b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-test\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n",
            )),
        ]),
    );
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(chat_stream_text(&body), "complete answer");
    assert!(!text.contains("\"error\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_streams_total",
            &[("outcome", "completed")]
        ),
        1.0
    );
}

// Item 12.

#[tokio::test(start_paused = true)]
async fn a_slow_first_token_fails_over_before_any_byte_reaches_the_client() {
    let h = anthropic_pair(|_| {});
    // Headers at once, the first token only after 20 s.
    let mut late = vec![
        message_start("msg_slow"),
        Step::Wait(Duration::from_secs(20)),
    ];
    late.extend([
        block_start(0, "text"),
        text(0, "from primary"),
        block_stop(0),
    ]);
    late.extend(message_end());
    h.upstream.set_default("primary", sse(late));
    let mut fine = vec![
        message_start("msg_fast"),
        block_start(0, "text"),
        text(0, "from secondary"),
        block_stop(0),
    ];
    fine.extend(message_end());
    h.upstream.set_default("secondary", sse(fine));
    let started = tokio::time::Instant::now();
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let (text, names) = anthropic_text(&body);
    assert_eq!(text, "from secondary");
    assert_eq!(count(&names, "message_start"), 1, "{names:?}");
    assert!(!String::from_utf8_lossy(&body).contains("msg_slow"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "left at the first-token timeout"
    );
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_upstream_attempts_total",
            &[
                ("backend", "default/primary"),
                ("outcome", "first_token_timeout")
            ]
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_stream_is_kept_alive_with_the_clients_own_keep_alives() {
    let h = Harness::new(&[
        {
            let mut b = backend("primary", "Anthropic", &["claude-test"]);
            b["spec"]["timeouts"] = json!({"firstToken": "25s"});
            b
        },
        backend("secondary", "Anthropic", &["claude-test"]),
        route(&["claude-*"], &["primary", "secondary"]),
    ]);
    h.upstream
        .set_default("primary", sse(vec![message_start("msg_slow"), Step::Stall]));
    let mut fine = vec![
        message_start("msg_fast"),
        block_start(0, "text"),
        text(0, "after the wait"),
        block_stop(0),
    ];
    fine.extend(message_end());
    h.upstream.set_default("secondary", sse(fine));
    let (status, headers, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let raw = String::from_utf8_lossy(&body);
    assert!(
        raw.starts_with("event: ping\ndata: {\"type\": \"ping\"}\n\nevent: ping"),
        "a ping at 10 s and 20 s while held: {raw}"
    );
    let (text, names) = anthropic_text(&body);
    assert_eq!(text, "after the wait");
    assert_eq!(count(&names, "message_start"), 1);
    assert_eq!(count(&names, "message_stop"), 1);

    // Chat clients get SSE comments.
    let h = Harness::new(&[
        {
            let mut b = backend("primary", "OpenAI", &["gpt-test"]);
            b["spec"]["timeouts"] = json!({"firstToken": "15s"});
            b
        },
        backend("secondary", "OpenAI", &["gpt-test"]),
        route(&["gpt-*"], &["primary", "secondary"]),
    ]);
    h.upstream.set_default("primary", sse(vec![Step::Stall]));
    h.upstream
        .set_default("secondary", Reply::ok("chat after the wait"));
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).starts_with(": keep-alive\n\n"));
    assert_eq!(chat_stream_text(&body), "chat after the wait");
}

#[tokio::test(start_paused = true)]
async fn the_last_candidate_is_waited_for_and_nothing_at_all_ends_in_band() {
    let h = Harness::new(&[
        backend("primary", "Anthropic", &["claude-test"]),
        route(&["claude-*"], &["primary"]),
    ]);
    let mut late = vec![message_start("msg_1"), Step::Wait(Duration::from_secs(40))];
    late.extend([
        block_start(0, "text"),
        text(0, "slow but only"),
        block_stop(0),
    ]);
    late.extend(message_end());
    h.upstream.set_default("primary", sse(late));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&body).0, "slow but only");

    h.upstream.set_default("primary", sse(vec![Step::Stall]));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200, "the headers went out while waiting");
    let (_, names) = anthropic_text(&body);
    assert_eq!(names.last().map(String::as_str), Some("error"), "{names:?}");
    assert_eq!(count(&names, "message_stop"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_error_event_before_any_content_fails_over_like_a_5xx() {
    let h = anthropic_pair(|_| {});
    h.upstream.set_default(
        "primary",
        sse(vec![
            message_start("msg_first"),
            ev(
                "error",
                json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
            ),
        ]),
    );
    let mut fine = vec![
        message_start("msg_ok"),
        block_start(0, "text"),
        text(0, "from secondary"),
        block_stop(0),
    ];
    fine.extend(message_end());
    h.upstream.set_default("secondary", sse(fine));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let (text, names) = anthropic_text(&body);
    assert_eq!(text, "from secondary");
    assert_eq!(count(&names, "error"), 0, "{names:?}");
    assert_eq!(
        h.upstream.count("primary"),
        2,
        "a quick retry, then the next candidate"
    );
}

// Item 13.

fn cut_after_hello_wor() -> Reply {
    sse(vec![
        message_start("msg_first"),
        block_start(0, "text"),
        text(0, "Hello "),
        text(0, "wor"),
        Step::Cut,
    ])
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_is_continued_by_prefill_on_the_next_candidate() {
    let h = anthropic_pair(|_| {});
    h.upstream.set_default("primary", cut_after_hello_wor());
    let mut rest = vec![
        message_start("msg_second"),
        block_start(0, "text"),
        text(0, "ld!"),
        block_stop(0),
    ];
    rest.extend(message_end());
    h.upstream.set_default("secondary", sse(rest));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let (text, names) = anthropic_text(&body);
    assert_eq!(text, "Hello world!");
    assert_eq!(count(&names, "message_start"), 1, "{names:?}");
    assert_eq!(count(&names, "content_block_start"), 1, "{names:?}");
    assert_eq!(count(&names, "message_stop"), 1);
    assert_eq!(count(&names, "error"), 0);
    let sent = h.upstream.requests();
    let continued = &sent.last().unwrap().body;
    let last = continued["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "assistant");
    assert_eq!(last["content"][0]["text"], "Hello wor");
    let m = h.metrics();
    assert_eq!(
        metric(
            &m,
            "switchboard_stream_continuations_total",
            &[("strategy", "prefill"), ("result", "completed")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "switchboard_failovers_total",
            &[("reason", "stream_broken")]
        ),
        1.0
    );
}

fn chat_cut_after(words: &[&str]) -> Reply {
    let mut steps = vec![Step::Data(Bytes::from(format!(
        "data: {}\n\n",
        json!({"id":"chatcmpl-first","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})
    )))];
    for w in words {
        steps.push(Step::Data(Bytes::from(format!(
            "data: {}\n\n",
            json!({"id":"chatcmpl-first","object":"chat.completion.chunk","created":1,"model":"gpt-test","choices":[{"index":0,"delta":{"content":w},"finish_reason":null}]})
        ))));
    }
    steps.push(Step::Cut);
    sse(steps)
}

#[tokio::test(start_paused = true)]
async fn a_cut_stream_is_continued_by_a_restart_that_reproduces_what_was_sent() {
    let h = openai_pair(|_| {});
    h.upstream
        .set_default("primary", chat_cut_after(&["one ", "two "]));
    h.upstream
        .set_default("secondary", Reply::ok("one two three"));
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
    assert_eq!(status, 200);
    let raw = String::from_utf8_lossy(&body);
    assert_eq!(chat_stream_text(&body), "one two three");
    assert!(!raw.contains("\"error\""), "{raw}");
    assert_eq!(raw.matches("[DONE]").count(), 1);
    assert!(
        !raw.contains("chatcmpl-mock"),
        "one chunk id throughout: {raw}"
    );
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_stream_continuations_total",
            &[("strategy", "restart"), ("result", "completed")]
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_that_says_something_else_ends_with_the_in_band_error() {
    let h = openai_pair(|_| {});
    h.upstream
        .set_default("primary", chat_cut_after(&["one ", "two "]));
    h.upstream
        .set_default("secondary", Reply::ok("uno dos tres"));
    let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
    assert_eq!(status, 200);
    let raw = String::from_utf8_lossy(&body);
    assert_eq!(
        chat_stream_text(&body),
        "one two ",
        "nothing of the other answer"
    );
    assert!(raw.contains("\"error\""), "{raw}");
    assert!(!raw.contains("[DONE]"), "never looks complete: {raw}");
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_stream_continuations_total",
            &[("result", "diverged")]
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn with_continuation_off_or_prefill_only_a_cut_chat_stream_ends_in_band() {
    for setting in ["Off", "Prefill"] {
        let h = openai_pair(|spec| spec["retry"]["streamContinuation"] = json!(setting));
        h.upstream
            .set_default("primary", chat_cut_after(&["one ", "two "]));
        h.upstream
            .set_default("secondary", Reply::ok("one two three"));
        let (status, _, body) = h.post(CHAT, &chat("gpt-test", true)).await;
        assert_eq!(status, 200);
        let raw = String::from_utf8_lossy(&body);
        assert!(raw.contains("\"error\""), "{setting}: {raw}");
        assert!(!raw.contains("[DONE]"), "{setting}: {raw}");
        assert_eq!(
            h.upstream.count("secondary"),
            0,
            "{setting}: nothing to continue with"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn signed_thinking_is_never_replayed_to_the_continuation() {
    let h = anthropic_pair(|_| {});
    h.upstream.set_default(
        "primary",
        sse(vec![
            message_start("msg_first"),
            block_start(0, "thinking"),
            ev("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"secret plan"}})),
            ev("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"SIGNATURE-abc"}})),
            block_stop(0),
            block_start(1, "text"),
            text(1, "Hel"),
            Step::Cut,
        ]),
    );
    let mut rest = vec![
        message_start("msg_second"),
        block_start(0, "thinking"),
        ev(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"other thoughts"}}),
        ),
        block_stop(0),
        block_start(1, "text"),
        text(1, "lo"),
        block_stop(1),
    ];
    rest.extend(message_end());
    h.upstream.set_default("secondary", sse(rest));
    let mut req = messages("claude-test", true);
    req["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    req["max_tokens"] = json!(4096);
    let (status, _, body) = h.post(MESSAGES, &req).await;
    assert_eq!(status, 200);
    let raw = String::from_utf8_lossy(&body);
    assert_eq!(anthropic_text(&body).0, "Hello");
    assert!(
        raw.contains("secret plan") && !raw.contains("other thoughts"),
        "{raw}"
    );
    let continued = h.upstream.requests().last().unwrap().body.to_string();
    assert!(!continued.contains("SIGNATURE-abc"), "{continued}");
    assert!(!continued.contains("secret plan"), "{continued}");
    assert!(
        !continued.contains("\"thinking\""),
        "thinking is off for the prefill: {continued}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_cut_during_a_tool_call_is_not_continued() {
    let h = anthropic_pair(|_| {});
    h.upstream.set_default(
        "primary",
        sse(vec![
            message_start("msg_first"),
            block_start(0, "tool_use"),
            ev("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"pa"}})),
            Step::Cut,
        ]),
    );
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let (_, names) = anthropic_text(&body);
    assert_eq!(names.last().map(String::as_str), Some("error"));
    assert_eq!(h.upstream.count("secondary"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_stream_is_continued_too() {
    let h = anthropic_pair(|_| {});
    h.upstream.set_default(
        "primary",
        sse(vec![
            message_start("msg_first"),
            block_start(0, "text"),
            text(0, "Hello "),
            Step::Stall,
        ]),
    );
    let mut rest = vec![
        message_start("msg_second"),
        block_start(0, "text"),
        text(0, "again"),
        block_stop(0),
    ];
    rest.extend(message_end());
    h.upstream.set_default("secondary", sse(rest));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let (text, names) = anthropic_text(&body);
    assert_eq!(text, "Hello again");
    assert_eq!(count(&names, "error"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_leaves_a_continuable_stream_is_accounted_once() {
    use http_body_util::BodyExt as _;
    let h = anthropic_pair(|_| {});
    h.upstream.set_default(
        "primary",
        sse(vec![
            message_start("msg_first"),
            block_start(0, "text"),
            text(0, "Hello "),
            Step::Stall,
        ]),
    );
    let req = http::Request::post(MESSAGES)
        .header("x-api-key", super::testing::CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .body(http_body_util::Full::new(Bytes::from(
            messages("claude-test", true).to_string(),
        )))
        .unwrap();
    let resp = h.send(req).await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    // The upstream is read on briefly for its usage before the request is recorded.
    super::testing::eventually("the request is recorded", || {
        metric(&h.metrics(), "switchboard_requests_total", &[]) > 0.0
    })
    .await;
    let m = h.metrics();
    assert_eq!(
        metric(
            &m,
            "switchboard_requests_total",
            &[("backend", "default/primary")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "switchboard_streams_total",
            &[("outcome", "client_gone")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "switchboard_tokens_total", &[("kind", "input")]),
        3.0,
        "usage seen before the client left: {m}"
    );
}
