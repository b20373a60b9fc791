//! The mock upstreams observed through the client helpers: each behaviour in both wire formats.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::client::{self, json_body, post_stream_partial};
use switchboard_e2e::{Behaviour, Flavor, MockUpstream, get, post_json, post_stream};

fn chat(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi there"}], "stream": stream});
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn messages(stream: bool) -> Value {
    json!({"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": "hi there"}], "stream": stream})
}

fn openai_text(events: &[client::SseEvent]) -> String {
    client::chat_stream_text(events)
}

fn anthropic_text(events: &[client::SseEvent]) -> String {
    events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| v["delta"]["text"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn openai_ok_json_and_stream_with_usage() {
    let mock = MockUpstream::start(Flavor::OpenAI).await;
    mock.set_default(Behaviour::ok("one two three"));
    let url = format!("{}/v1/chat/completions", mock.url());

    let (status, headers, body) = post_json(
        &url,
        &[("authorization", "Bearer sk-up")],
        &chat(false, false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let body = json_body(&body);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["choices"][0]["message"]["content"], "one two three");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let (status, headers, events) = post_stream(&url, &[], &chat(true, true)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(
        events.iter().all(|e| e.event.is_none()),
        "OpenAI SSE has no event: lines"
    );
    assert_eq!(openai_text(&events), "one two three");
    assert!(
        events
            .iter()
            .filter(|e| e
                .json()
                .is_some_and(|v| v["choices"][0]["delta"]["content"].is_string()))
            .count()
            >= 3
    );
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let usage = events[events.len() - 2].json().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 3);

    let (_, _, events) = post_stream(&url, &[], &chat(true, false)).await;
    assert!(
        events
            .iter()
            .filter_map(|e| e.json())
            .all(|v| v["choices"] != json!([])),
        "no usage chunk unless asked"
    );

    let recorded = mock.wait_for_requests(3).await;
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].header("authorization"), Some("Bearer sk-up"));
    assert_eq!(recorded[0].body["messages"][0]["content"], "hi there");
}

#[tokio::test]
async fn anthropic_ok_json_stream_and_count_tokens() {
    let mock = MockUpstream::start(Flavor::Anthropic).await;
    mock.set_default(Behaviour::OkWithUsage {
        text: "alpha beta".into(),
        input: 11,
        output: 7,
        cached: 5,
    });
    let url = format!("{}/v1/messages", mock.url());

    let (status, headers, body) =
        post_json(&url, &[("x-api-key", "sk-ant")], &messages(false)).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("request-id"));
    let body = json_body(&body);
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["content"][0]["text"], "alpha beta");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 11, "output_tokens": 7,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5})
    );

    let (status, _, events) = post_stream(&format!("{url}?beta=true"), &[], &messages(true)).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"content_block_start") && names.contains(&"message_delta"));
    assert_eq!(anthropic_text(&events), "alpha beta");
    let delta = events
        .iter()
        .find(|e| e.event.as_deref() == Some("message_delta"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 7);

    let (status, _, body) = post_json(&format!("{url}/count_tokens"), &[], &messages(false)).await;
    assert_eq!(status, 200);
    assert_eq!(json_body(&body)["input_tokens"], 11);

    let recorded = mock.wait_for_requests(3).await;
    assert_eq!(recorded[1].query.as_deref(), Some("beta=true"));
    assert_eq!(recorded[2].path, "/v1/messages/count_tokens");
}

#[tokio::test]
async fn script_is_consumed_in_order_then_default() {
    let mock = MockUpstream::start(Flavor::OpenAI).await;
    mock.script(vec![
        Behaviour::status(503),
        Behaviour::rate_limited(2),
        Behaviour::context_length_exceeded(Flavor::OpenAI),
    ]);
    let url = format!("{}/v1/chat/completions", mock.url());

    let (status, _, body) = post_json(&url, &[], &chat(false, false)).await;
    assert_eq!(status, 503);
    assert!(json_body(&body)["error"]["message"].is_string());
    let (status, headers, body) = post_json(&url, &[], &chat(false, false)).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(json_body(&body)["error"]["code"], "rate_limit_exceeded");
    let (status, _, body) = post_json(&url, &[], &chat(false, false)).await;
    assert_eq!(status, 400);
    assert_eq!(json_body(&body)["error"]["code"], "context_length_exceeded");
    let (status, _, _) = post_json(&url, &[], &chat(false, false)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn anthropic_error_shapes() {
    let mock = MockUpstream::start(Flavor::Anthropic).await;
    mock.script(vec![
        Behaviour::status(529),
        Behaviour::content_policy(Flavor::Anthropic),
    ]);
    let url = format!("{}/v1/messages", mock.url());
    let (status, _, body) = post_json(&url, &[], &messages(false)).await;
    assert_eq!(status, 529);
    let body = json_body(&body);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
    let (status, _, body) = post_json(&url, &[], &messages(false)).await;
    assert_eq!(status, 400);
    assert_eq!(json_body(&body)["error"]["type"], "invalid_request_error");
    // Wrong endpoint for the flavor: a provider-shaped 404, still recorded.
    let (status, _, body) = post_json(
        &format!("{}/v1/chat/completions", mock.url()),
        &[],
        &chat(false, false),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(json_body(&body)["error"]["type"], "not_found_error");
    assert_eq!(mock.request_count(), 3);
}

#[tokio::test]
async fn tool_call_in_both_formats() {
    let args = json!({"city": "Paris"});
    let openai = MockUpstream::start(Flavor::OpenAI).await;
    openai.set_default(Behaviour::ToolCall {
        name: "get_weather".into(),
        arguments: args.clone(),
    });
    let url = format!("{}/v1/chat/completions", openai.url());
    let (_, _, body) = post_json(&url, &[], &chat(false, false)).await;
    let body = json_body(&body);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        args
    );
    let (_, _, events) = post_stream(&url, &[], &chat(true, false)).await;
    let finish: Vec<Value> = events
        .iter()
        .filter_map(|e| e.json())
        .map(|v| v["choices"][0]["finish_reason"].clone())
        .collect();
    assert!(finish.contains(&json!("tool_calls")));

    let anthropic = MockUpstream::start(Flavor::Anthropic).await;
    anthropic.set_default(Behaviour::ToolCall {
        name: "get_weather".into(),
        arguments: args.clone(),
    });
    let url = format!("{}/v1/messages", anthropic.url());
    let (_, _, body) = post_json(&url, &[], &messages(false)).await;
    let body = json_body(&body);
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0]["input"], args);
    let (_, _, events) = post_stream(&url, &[], &messages(true)).await;
    let partial: String = events
        .iter()
        .filter_map(|e| e.json())
        .filter_map(|v| v["delta"]["partial_json"].as_str().map(String::from))
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).unwrap(), args);
}

#[tokio::test]
async fn reset_closes_without_answer() {
    let mock = MockUpstream::start(Flavor::OpenAI).await;
    mock.script(vec![Behaviour::Reset]);
    let url = format!("{}/v1/chat/completions", mock.url());
    let result = client::try_request(
        http::Method::POST,
        &url,
        &[],
        chat(false, false).to_string().into(),
    )
    .await;
    assert!(
        result.is_err(),
        "expected a transport error, got {result:?}"
    );
    let (status, _, _) = post_json(&url, &[], &chat(false, false)).await;
    assert_eq!(status, 200, "the next connection works");
}

#[tokio::test]
async fn silence_never_answers() {
    let mock = MockUpstream::start(Flavor::Anthropic).await;
    mock.set_default(Behaviour::Silence);
    let url = format!("{}/v1/messages", mock.url());
    let attempt = tokio::time::timeout(
        Duration::from_millis(300),
        client::try_request(
            http::Method::POST,
            &url,
            &[],
            messages(false).to_string().into(),
        ),
    )
    .await;
    assert!(attempt.is_err(), "no answer expected, got {attempt:?}");
    mock.wait_for_requests(1).await;
}

#[tokio::test]
async fn slow_first_byte_delays_the_head() {
    let mock = MockUpstream::start(Flavor::OpenAI).await;
    mock.set_default(Behaviour::SlowFirstByte { ms: 300 });
    let url = format!("{}/v1/chat/completions", mock.url());
    let started = std::time::Instant::now();
    let (status, _, _) = post_json(&url, &[], &chat(false, false)).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn cut_stream_ends_with_transport_error() {
    for flavor in [Flavor::OpenAI, Flavor::Anthropic] {
        let mock = MockUpstream::start(flavor).await;
        mock.set_default(Behaviour::CutStream { after_events: 2 });
        let (url, body) = match flavor {
            Flavor::OpenAI => (
                format!("{}/v1/chat/completions", mock.url()),
                chat(true, true),
            ),
            _ => (format!("{}/v1/messages", mock.url()), messages(true)),
        };
        let result = post_stream_partial(&url, &[], &body, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(result.status, 200);
        assert_eq!(result.events.len(), 2, "{flavor:?}: {}", result.raw);
        assert!(
            result.error.is_some(),
            "{flavor:?}: connection should be cut"
        );
        assert!(!result.timed_out);
    }
}

#[tokio::test]
async fn stall_stream_hangs_after_some_events() {
    let mock = MockUpstream::start(Flavor::Anthropic).await;
    mock.set_default(Behaviour::StallStream { after_events: 3 });
    let url = format!("{}/v1/messages", mock.url());
    let result = post_stream_partial(&url, &[], &messages(true), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(result.events.len(), 3, "{}", result.raw);
    assert!(result.timed_out);
    assert!(result.error.is_none());
}

#[tokio::test]
async fn malformed_event_inside_a_good_stream() {
    let mock = MockUpstream::start(Flavor::OpenAI).await;
    mock.set_default(Behaviour::MalformedEvent);
    let url = format!("{}/v1/chat/completions", mock.url());
    let (status, _, events) = post_stream(&url, &[], &chat(true, false)).await;
    assert_eq!(status, 200);
    let bad = events
        .iter()
        .filter(|e| e.json().is_none() && e.data != "[DONE]")
        .count();
    assert_eq!(bad, 1);
    assert_eq!(events.last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn models_and_control_api() {
    let mock = MockUpstream::start(Flavor::OpenAI).await;
    let (status, _, body) = get(&format!("{}/v1/models", mock.url()), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(json_body(&body)["object"], "list");

    let (status, _, _) = post_json(
        &format!("{}/__mock/script", mock.url()),
        &[],
        &json!([{"kind": "Status", "status": 502}]),
    )
    .await;
    assert_eq!(status, 200);
    let url = format!("{}/v1/chat/completions", mock.url());
    let (status, _, _) = post_json(&url, &[], &chat(false, false)).await;
    assert_eq!(status, 502);
    let (_, _, body) = get(&format!("{}/__mock/requests", mock.url()), &[]).await;
    let list = json_body(&body);
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "control calls are not recorded: {list}"
    );
    assert_eq!(list[1]["body"]["model"], "gpt-test");
    let (status, _, _) = post_json(&format!("{}/__mock/reset", mock.url()), &[], &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
#[should_panic(expected = "expected at least 1 requests")]
async fn wait_for_requests_panics_with_a_clear_message() {
    let mock = MockUpstream::start(Flavor::OpenAI).await;
    mock.wait_for_requests_within(1, Duration::from_millis(50))
        .await;
}
