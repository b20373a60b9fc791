//! Tests of the mock provider: golden outputs for both dialects, streaming
//! and not, and the reply and tool rules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::wire::relay::{Relay, RelayOutcome, RelaySummary, usage_from_json_response};
use crate::wire::sse::{SseEvent, SseParser};
use crate::wire::usage::Usage;

const CASES: &[&str] = &[
    "openai_chat",
    "openai_chat_stream",
    "openai_tool",
    "openai_tool_stream",
    "anthropic_message",
    "anthropic_message_stream",
    "anthropic_tool",
    "anthropic_tool_stream",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wire/testdata/mock")
}

fn dialect(case: &str) -> Dialect {
    if case.starts_with("anthropic") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAI
    }
}

fn request(case: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir().join(format!("{case}.request.json"))).unwrap())
        .unwrap()
}

/// Events of an SSE text with their data parsed as JSON where it is JSON,
/// so golden comparisons do not depend on object key order.
fn sse_semantic(bytes: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut p = SseParser::default();
    let mut events = p.feed(bytes);
    events.extend(p.finish());
    events
        .into_iter()
        .map(|e| {
            let SseEvent { event, data } = e.unwrap();
            let v = serde_json::from_str(&data).unwrap_or(Value::String(data));
            (event, v)
        })
        .collect()
}

#[test]
fn golden_outputs() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for case in CASES {
        let req = request(case);
        match respond(dialect(case), &req, &MockReply::default()) {
            MockResponse::Json(body) => {
                let got: Value = serde_json::from_slice(&body).unwrap();
                let path = dir().join(format!("{case}.json"));
                if update {
                    std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n")
                        .unwrap();
                }
                let expected: Value =
                    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                assert_eq!(got, expected, "{case}");
                assert!(!req["stream"].as_bool().unwrap_or(false), "{case}");
            }
            MockResponse::Sse(events) => {
                let got: Vec<u8> = events.concat();
                let path = dir().join(format!("{case}.sse"));
                if update {
                    std::fs::write(&path, &got).unwrap();
                }
                let expected = std::fs::read(&path).unwrap();
                assert_eq!(sse_semantic(&got), sse_semantic(&expected), "{case}");
                assert!(req["stream"].as_bool().unwrap(), "{case}");
            }
        }
    }
}

#[test]
fn each_sse_element_is_one_framed_event() {
    for case in CASES.iter().filter(|c| c.ends_with("_stream")) {
        let MockResponse::Sse(events) =
            respond(dialect(case), &request(case), &MockReply::default())
        else {
            panic!("{case} streams");
        };
        for e in &events {
            let text = std::str::from_utf8(e).unwrap();
            assert!(
                text.ends_with("\n\n") && !text[..text.len() - 2].contains("\n\n"),
                "{text:?}"
            );
            match dialect(case) {
                Dialect::Anthropic => {
                    let (name, data) = text.split_once('\n').unwrap();
                    let name = name.strip_prefix("event: ").expect("event line first");
                    let data: Value =
                        serde_json::from_str(data.strip_prefix("data: ").unwrap().trim_end())
                            .unwrap();
                    assert_eq!(data["type"], name, "data.type matches the event name");
                }
                Dialect::OpenAI => {
                    assert!(
                        text.starts_with("data: ") && text.matches('\n').count() == 2,
                        "{text:?}"
                    );
                }
            }
        }
        let last = std::str::from_utf8(events.last().unwrap()).unwrap();
        match dialect(case) {
            Dialect::OpenAI => assert_eq!(last, "data: [DONE]\n\n"),
            Dialect::Anthropic => assert_eq!(
                last,
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
            ),
        }
    }
}

fn reply_text(d: Dialect, req: &Value, settings: &MockReply) -> String {
    let MockResponse::Json(body) = respond(d, req, settings) else {
        panic!("non-streaming request");
    };
    let v: Value = serde_json::from_slice(&body).unwrap();
    match d {
        Dialect::OpenAI => v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Dialect::Anthropic => v
            .pointer("/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    }
}

#[test]
fn echo_and_fixed_reply() {
    let req = json!({"model":"m","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},
        {"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"b"}]}]});
    assert_eq!(
        reply_text(Dialect::OpenAI, &req, &MockReply::default()),
        "echo: a\nb"
    );
    assert_eq!(
        reply_text(Dialect::Anthropic, &req, &MockReply::default()),
        "echo: a\nb"
    );
    let fixed = MockReply {
        reply: "pong".into(),
    };
    assert_eq!(reply_text(Dialect::Anthropic, &req, &fixed), "pong");
    assert_eq!(
        reply_text(Dialect::OpenAI, &Value::Null, &MockReply::default()),
        "echo: "
    );
}

fn is_tool_call(d: Dialect, req: &Value) -> Option<String> {
    let MockResponse::Json(body) = respond(d, req, &MockReply::default()) else {
        panic!("non-streaming request");
    };
    let v: Value = serde_json::from_slice(&body).unwrap();
    match d {
        Dialect::OpenAI => v.pointer("/choices/0/message/tool_calls/0/function/name"),
        Dialect::Anthropic => v.pointer("/content/0/name"),
    }
    .and_then(Value::as_str)
    .map(str::to_owned)
}

#[test]
fn tool_rule() {
    let tools_oa = json!([{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}]);
    let weather = json!([{"role":"user","content":"weather?"}]);
    let d = Dialect::OpenAI;
    assert_eq!(
        is_tool_call(d, &json!({"messages":weather,"tools":tools_oa})).as_deref(),
        Some("a")
    );
    assert_eq!(
        is_tool_call(d, &json!({"messages":weather})),
        None,
        "no tools, no call"
    );
    assert_eq!(
        is_tool_call(
            d,
            &json!({"messages":weather,"tools":tools_oa,"tool_choice":"none"})
        ),
        None
    );
    assert_eq!(
        is_tool_call(
            d,
            &json!({"messages":[{"role":"user","content":"hi"}],"tools":tools_oa})
        ),
        None
    );
    assert_eq!(
        is_tool_call(d, &json!({"messages":[{"role":"user","content":"hi"}],"tools":tools_oa,"tool_choice":"required"}))
            .as_deref(),
        Some("a")
    );
    assert_eq!(
        is_tool_call(
            d,
            &json!({"messages":[{"role":"user","content":"hi"}],"tools":tools_oa,"tool_choice":{"type":"function","function":{"name":"b"}}})
        )
        .as_deref(),
        Some("b")
    );
    let after_tool = json!({"tools":tools_oa,"messages":[{"role":"user","content":"weather?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"a","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c","content":"sunny"}]});
    assert_eq!(
        is_tool_call(d, &after_tool),
        None,
        "tool results are answered with text"
    );
    assert_eq!(
        reply_text(d, &after_tool, &MockReply::default()),
        "echo: sunny"
    );

    let tools_an = json!([{"name":"x","input_schema":{}},{"name":"y","input_schema":{}}]);
    let d = Dialect::Anthropic;
    assert_eq!(
        is_tool_call(d, &json!({"messages":weather,"tools":tools_an})).as_deref(),
        Some("x")
    );
    assert_eq!(
        is_tool_call(d, &json!({"messages":[{"role":"user","content":"hi"}],"tools":tools_an,"tool_choice":{"type":"any"}}))
            .as_deref(),
        Some("x")
    );
    assert_eq!(
        is_tool_call(
            d,
            &json!({"messages":weather,"tools":tools_an,"tool_choice":{"type":"none"}})
        ),
        None
    );
    let after_tool = json!({"tools":tools_an,"messages":[{"role":"user","content":"weather?"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"x","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"weather: sunny"}]}]});
    assert_eq!(is_tool_call(d, &after_tool), None);
    assert_eq!(
        reply_text(d, &after_tool, &MockReply::default()),
        "echo: weather: sunny"
    );
}

#[test]
fn deterministic_ids() {
    let a = json!({"model":"m","messages":[{"role":"user","content":"one"}]});
    let b = json!({"model":"m","messages":[{"role":"user","content":"two"}]});
    for d in [Dialect::OpenAI, Dialect::Anthropic] {
        let ra = respond(d, &a, &MockReply::default());
        assert_eq!(ra, respond(d, &a, &MockReply::default()));
        assert_ne!(ra, respond(d, &b, &MockReply::default()));
    }
}

#[test]
fn token_estimates() {
    assert_eq!(estimate_tokens(""), 1);
    assert_eq!(estimate_tokens("abcd"), 1);
    assert_eq!(estimate_tokens("abcde"), 2);
    assert_eq!(estimate_tokens("ééééé"), 2, "characters, not bytes");
    assert_eq!(
        count_tokens(&json!({"messages":[{"role":"user","content":"Hello"}]})),
        2
    );
    // system + message + tool definition text are all counted.
    let with_all = json!({"system":"abcdefgh","messages":[{"role":"user","content":"abcdefgh"}],
        "tools":[{"name":"t"}]});
    let tool_len = json!({"name":"t"}).to_string().len() as u64;
    assert_eq!(
        count_tokens(&with_all),
        (8 + 1 + 8 + 1 + tool_len).div_ceil(4)
    );
}

#[test]
fn json_usage_matches_estimates() {
    let req = request("anthropic_message");
    let MockResponse::Json(body) = respond(Dialect::Anthropic, &req, &MockReply::default()) else {
        panic!();
    };
    let (u, stop) = usage_from_json_response(Dialect::Anthropic, &body).unwrap();
    assert_eq!(u.input_tokens, count_tokens(&req));
    assert_eq!(u.output_tokens, estimate_tokens("echo: Hello there"));
    assert_eq!(stop.as_deref(), Some("end_turn"));
}

async fn relay_summary(d: Dialect, events: Vec<Bytes>) -> RelaySummary {
    let stream = futures_util::stream::iter(
        events
            .into_iter()
            .map(|e| Ok::<_, std::convert::Infallible>(http_body::Frame::data(e))),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let relay = Relay::new(
        http_body_util::StreamBody::new(stream),
        d,
        Duration::from_secs(5),
        Box::new(move |s| tx.send(s).unwrap()),
    );
    http_body_util::BodyExt::collect(relay).await.unwrap();
    rx.recv().unwrap()
}

#[tokio::test]
async fn streams_relay_to_completion_with_the_json_usage() {
    for case in CASES.iter().filter(|c| c.ends_with("_stream")) {
        let d = dialect(case);
        let req = request(case);
        let MockResponse::Sse(events) = respond(d, &req, &MockReply::default()) else {
            panic!();
        };
        let summary = relay_summary(d, events).await;
        assert_eq!(summary.outcome, RelayOutcome::Completed, "{case}");
        assert_eq!(summary.malformed_events, 0, "{case}");
        let mut plain = req.clone();
        plain["stream"] = json!(false);
        let MockResponse::Json(body) = respond(d, &plain, &MockReply::default()) else {
            panic!();
        };
        let (json_usage, json_stop) = usage_from_json_response(d, &body).unwrap();
        let include_usage = req
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if d == Dialect::Anthropic || include_usage {
            assert_eq!(summary.usage, json_usage, "{case}");
        } else {
            assert_eq!(
                summary.usage,
                Usage::default(),
                "{case}: no usage chunk without include_usage"
            );
        }
        assert_eq!(summary.stop_reason, json_stop, "{case}");
    }
}
