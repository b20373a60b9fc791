//! Streaming through the real binary: usage accounting in /metrics, both dialects, translation, and
//! in-band errors after the first byte.

use std::time::Duration;

use switchboard_e2e::client::post_stream_partial;
use switchboard_e2e::stack::{chat_body, messages_body};
use switchboard_e2e::{Behaviour, Stack, post_stream, wait_until};

const WAIT: Duration = Duration::from_secs(10);

async fn wait_tokens(stack: &Stack, kind: &str, expected: f64) {
    wait_until(
        WAIT,
        &format!("switchboard_tokens_total{{kind=\"{kind}\"}} == {expected}"),
        || async {
            stack
                .gateway
                .metric_sum("switchboard_tokens_total", &[("kind", kind)])
                .await
                == expected
        },
    )
    .await;
}

#[tokio::test]
async fn openai_stream_usage_is_forwarded_and_recorded() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::OkWithUsage {
        text: "one two three".into(),
        input: 11,
        output: 7,
        cached: 3,
    });
    let auth = stack.bearer();
    let (status, headers, events) = post_stream(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &chat_body("gpt-test", true),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        events.iter().all(|e| e.event.is_none()),
        "OpenAI clients get data-only SSE"
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let usage = events
        .iter()
        .rev()
        .filter_map(|e| e.json())
        .find(|v| v["usage"].is_object())
        .expect("usage chunk");
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 14);
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    // Anthropic-style accounting: input excludes cache reads.
    wait_tokens(&stack, "input", 11.0).await;
    wait_tokens(&stack, "output", 7.0).await;
    wait_tokens(&stack, "cache_read", 3.0).await;
    let completed = stack
        .gateway
        .metric_sum("switchboard_streams_total", &[("outcome", "completed")])
        .await;
    assert_eq!(completed, 1.0);
}

#[tokio::test]
async fn anthropic_stream_usage_is_recorded() {
    let stack = Stack::start().await;
    stack.anthropic.set_default(Behaviour::OkWithUsage {
        text: "alpha beta".into(),
        input: 21,
        output: 5,
        cached: 4,
    });
    let auth = stack.bearer();
    let (status, _, events) = post_stream(
        &stack.url("/v1/messages"),
        &[("authorization", &auth)],
        &messages_body("claude-test", true),
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e.event.as_deref())
        .filter(|n| *n != "ping")
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let text: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| v["delta"]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "alpha beta");
    wait_tokens(&stack, "input", 21.0).await;
    wait_tokens(&stack, "output", 5.0).await;
    wait_tokens(&stack, "cache_read", 4.0).await;
}

#[tokio::test]
async fn anthropic_client_streaming_from_an_openai_backend() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::OkWithUsage {
        text: "cross dialect words".into(),
        input: 6,
        output: 3,
        cached: 0,
    });
    let auth = stack.bearer();
    let (status, _, events) = post_stream(
        &stack.url("/v1/messages"),
        &[("authorization", &auth)],
        &messages_body("gpt-test", true),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        events.iter().all(|e| e.event.is_some()),
        "Anthropic clients need event: lines"
    );
    let text: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| v["delta"]["text"].as_str().map(String::from))
        .collect();
    assert_eq!(text, "cross dialect words");
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .and_then(|e| e.json())
        .expect("message_delta");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("message_stop")
    );
    let upstream = stack.primary.wait_for_requests(1).await;
    assert_eq!(
        upstream[0].body["stream_options"]["include_usage"], true,
        "gateway asks the OpenAI upstream for usage"
    );
}

#[tokio::test]
async fn translated_streams_record_the_upstreams_true_usage() {
    // OpenAI client on the Anthropic backend: usage comes from Anthropic's events.
    let stack = Stack::start().await;
    stack.anthropic.set_default(Behaviour::OkWithUsage {
        text: "from claude".into(),
        input: 30,
        output: 4,
        cached: 6,
    });
    let auth = stack.bearer();
    let (status, _, events) = post_stream(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &chat_body("claude-test", true),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        events.iter().all(|e| e.event.is_none()),
        "OpenAI clients get data-only SSE"
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let text = switchboard_e2e::client::chat_stream_text(&events);
    assert_eq!(text, "from claude");
    wait_tokens(&stack, "input", 30.0).await;
    wait_tokens(&stack, "output", 4.0).await;
    wait_tokens(&stack, "cache_read", 6.0).await;

    // Anthropic client on the OpenAI backend, not streamed: usage from OpenAI's body.
    stack.primary.set_default(Behaviour::OkWithUsage {
        text: "from gpt".into(),
        input: 10,
        output: 2,
        cached: 5,
    });
    let (status, _, body) = switchboard_e2e::client::post_json(
        &stack.url("/v1/messages"),
        &[("authorization", &auth)],
        &messages_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["content"][0]["text"], "from gpt");
    assert_eq!(body["usage"]["input_tokens"], 10);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 5);
    wait_tokens(&stack, "input", 40.0).await;
    wait_tokens(&stack, "cache_read", 11.0).await;
}

#[tokio::test]
async fn openai_passthrough_stream_counts_usage_without_sending_the_usage_chunk() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::OkWithUsage {
        text: "quiet usage".into(),
        input: 8,
        output: 2,
        cached: 0,
    });
    let auth = stack.bearer();
    let mut body = chat_body("gpt-test", true);
    body.as_object_mut().unwrap().remove("stream_options");
    let (status, _, events) = post_stream(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        events
            .iter()
            .filter_map(|e| e.json())
            .all(|v| v["choices"] != serde_json::json!([])),
        "no usage-only chunk for a client that did not ask"
    );
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let upstream = stack.primary.wait_for_requests(1).await;
    assert_eq!(upstream[0].body["stream_options"]["include_usage"], true);
    wait_tokens(&stack, "input", 8.0).await;
    wait_tokens(&stack, "output", 2.0).await;
}

#[tokio::test]
async fn openai_stream_cut_midway_is_continued_from_the_next_candidate() {
    // The route's streamContinuation defaults to Auto: the secondary (an
    // OpenAI backend, no prefill) restarts the answer, which reproduces what
    // the client already has; only the rest is passed on.
    let stack = Stack::start().await;
    stack
        .primary
        .set_default(Behaviour::CutStream { after_events: 3 });
    let auth = stack.bearer();
    let result = post_stream_partial(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &chat_body("gpt-test", true),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(result.status, 200, "{}", result.raw);
    assert!(!result.timed_out, "{}", result.raw);
    assert_eq!(
        switchboard_e2e::client::chat_stream_text(&result.events),
        switchboard_e2e::behaviour::DEFAULT_TEXT,
        "the whole answer, once: {}",
        result.raw
    );
    assert_eq!(
        result.events.iter().filter(|e| e.data == "[DONE]").count(),
        1,
        "{}",
        result.raw
    );
    assert!(
        result
            .events
            .iter()
            .filter_map(|e| e.json())
            .all(|v| !v["error"].is_object()),
        "{}",
        result.raw
    );
    assert_eq!(stack.secondary.request_count(), 1);
    let metrics = stack.gateway.metrics().await;
    assert_eq!(
        switchboard_e2e::harness::metric_sum(
            &metrics,
            "switchboard_stream_continuations_total",
            &[("strategy", "restart"), ("result", "completed")]
        ),
        1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stream_cut_with_no_candidate_left_ends_with_an_in_band_error() {
    let stack = Stack::start().await;
    stack
        .anthropic
        .set_default(Behaviour::CutStream { after_events: 4 });
    let auth = stack.bearer();
    let result = post_stream_partial(
        &stack.url("/v1/messages"),
        &[("authorization", &auth)],
        &messages_body("claude-test", true),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(result.status, 200, "{}", result.raw);
    assert!(
        !result.timed_out,
        "the stream must end, not hang: {}",
        result.raw
    );
    assert!(
        result
            .events
            .iter()
            .any(|e| e.event.as_deref() == Some("error")),
        "in-band error expected: {}",
        result.raw
    );
    assert!(
        result
            .events
            .iter()
            .all(|e| e.event.as_deref() != Some("message_stop")),
        "no fake message_stop after a cut: {}",
        result.raw
    );
}

#[tokio::test]
async fn anthropic_stream_stalled_ends_with_an_error_event_and_no_message_stop() {
    let stack = Stack::start().await;
    stack
        .anthropic
        .set_default(Behaviour::StallStream { after_events: 4 });
    let auth = stack.bearer();
    let result = post_stream_partial(
        &stack.url("/v1/messages"),
        &[("authorization", &auth)],
        &messages_body("claude-test", true),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(result.status, 200, "{}", result.raw);
    assert!(
        !result.timed_out,
        "the gateway's streamIdle timeout must end the stream: {}",
        result.raw
    );
    assert!(
        result
            .events
            .iter()
            .any(|e| e.event.as_deref() == Some("error")),
        "error event expected: {}",
        result.raw
    );
    assert!(
        result
            .events
            .iter()
            .all(|e| e.event.as_deref() != Some("message_stop")),
        "no fake message_stop: {}",
        result.raw
    );
}

#[tokio::test]
async fn malformed_upstream_event_is_dropped_and_counted() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::MalformedEvent);
    let auth = stack.bearer();
    let mut body = chat_body("gpt-test", true);
    body.as_object_mut().unwrap().remove("stream_options");
    let (status, _, events) = post_stream(
        &stack.url("/v1/chat/completions"),
        &[("authorization", &auth)],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        events
            .iter()
            .all(|e| e.data == "[DONE]" || e.json().is_some()),
        "only valid JSON reaches the client"
    );
    wait_until(WAIT, "malformed event counted", || async {
        stack
            .gateway
            .metric_sum("switchboard_malformed_stream_events_total", &[])
            .await
            >= 1.0
    })
    .await;
}

#[tokio::test]
async fn client_disconnect_mid_stream_is_counted() {
    use http_body_util::BodyExt;
    let stack = Stack::start().await;
    stack
        .anthropic
        .set_default(Behaviour::StallStream { after_events: 4 });
    let auth = stack.bearer();
    let body = bytes::Bytes::from(messages_body("claude-test", true).to_string());
    let (status, _, mut incoming) = switchboard_e2e::client::try_send(
        http::Method::POST,
        &stack.url("/v1/messages"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let first = tokio::time::timeout(WAIT, incoming.frame())
        .await
        .expect("first frame in time");
    assert!(first.is_some_and(|f| f.is_ok()));
    drop(incoming);
    wait_until(WAIT, "streams_total{outcome=client_gone}", || async {
        stack
            .gateway
            .metric_sum("switchboard_streams_total", &[("outcome", "client_gone")])
            .await
            >= 1.0
    })
    .await;
}
