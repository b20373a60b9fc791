//! Golden fixtures for every Responses translation, plus the stream
//! invariants every translated stream must keep.
//!
//! `testdata/<name>.request.json` → `<name>.chat.json` / `<name>.messages.json`;
//! `<name>.chat.json` / `<name>.messages.json` (upstream answers) →
//! `<name>.responses.json`; `<name>.sse` (upstream streams) →
//! `<name>.events.sse`. Run with `SWITCHBOARD_UPDATE_GOLDEN=1` to rewrite the
//! expected files, then review the diff.

use std::path::PathBuf;

use serde_json::Value;

use super::emit::ResponsesEvent;
use super::*;
use crate::testing::golden::{Golden, read_json as read_json_file};
use crate::wire::sse::{SseEvent, SseParser};

const CREATED_AT: u64 = 1_764_000_000;

/// The Responses fixtures, rewritten with `SWITCHBOARD_UPDATE_GOLDEN=1`.
fn golden() -> Golden {
    Golden::with_update_var(
        "src/translate/responses/testdata",
        "SWITCHBOARD_UPDATE_GOLDEN",
    )
}

fn path(name: &str) -> PathBuf {
    golden().path(name)
}

fn read_json(name: &str) -> Value {
    read_json_file(&path(name))
}

fn golden_text(name: &str, actual: &str) {
    golden().check(&path(name), actual);
}

fn golden_json(name: &str, actual: &Value) {
    golden().check_json(&path(name), actual);
}

fn codex_context() -> ResponseContext {
    to_chat(&read_json("codex_tool_loop.request.json"))
        .unwrap()
        .context
}

#[test]
fn requests_to_both_targets() {
    for name in ["codex_tool_loop", "sdk_options"] {
        let request = read_json(&format!("{name}.request.json"));
        let chat = to_chat(&request).unwrap();
        golden_json(&format!("{name}.chat.json"), &chat.body);
        let messages = to_messages(&request, &MessagesOptions::default()).unwrap();
        golden_json(&format!("{name}.messages.json"), &messages.body);
        assert_eq!(
            chat.context, messages.context,
            "{name}: both targets restore names alike"
        );
    }
}

#[test]
fn whole_answers_to_responses() {
    let ctx = codex_context();
    for name in ["chat_tool_calls", "chat_length"] {
        let body = read_json(&format!("{name}.chat.json"));
        golden_json(
            &format!("{name}.responses.json"),
            &from_chat_response(&body, &ctx, CREATED_AT),
        );
    }
    for name in ["messages_thinking_tool", "messages_max_tokens"] {
        let body = read_json(&format!("{name}.messages.json"));
        golden_json(
            &format!("{name}.responses.json"),
            &from_messages_response(&body, &ctx, CREATED_AT),
        );
    }
}

fn upstream_events(name: &str) -> Vec<SseEvent> {
    let bytes = std::fs::read(path(name)).unwrap();
    let mut p = SseParser::default();
    let mut events: Vec<SseEvent> = p.feed(&bytes).into_iter().map(Result::unwrap).collect();
    events.extend(p.finish().map(Result::unwrap));
    events
}

fn translate_chat_stream(name: &str) -> (Vec<ResponsesEvent>, crate::wire::usage::Usage) {
    let mut t = ChatStreamTranslator::new(codex_context(), CREATED_AT);
    let mut out = Vec::new();
    for ev in upstream_events(&format!("{name}.sse")) {
        out.extend(t.on_event(&ev));
    }
    out.extend(t.on_end());
    (out, t.usage())
}

fn translate_messages_stream(name: &str) -> (Vec<ResponsesEvent>, crate::wire::usage::Usage) {
    let mut t = MessagesStreamTranslator::new(codex_context(), CREATED_AT);
    let mut out = Vec::new();
    for ev in upstream_events(&format!("{name}.sse")) {
        out.extend(t.on_event(&ev));
    }
    out.extend(t.on_end());
    (out, t.usage())
}

fn sse_text(events: &[ResponsesEvent]) -> String {
    events
        .iter()
        .map(|e| String::from_utf8(e.to_sse().to_vec()).unwrap())
        .collect()
}

/// The rules of `emit`'s module docs, checked on a whole translated stream.
fn check_invariants(name: &str, events: &[ResponsesEvent]) -> Value {
    let evs: Vec<(&str, &Value)> = events
        .iter()
        .filter_map(|e| match e {
            ResponsesEvent::Event { name, data } => Some((*name, data)),
            ResponsesEvent::Keepalive => None,
        })
        .collect();
    for (n, (ev, data)) in evs.iter().enumerate() {
        assert_eq!(data["sequence_number"], n, "{name}: sequence");
        assert_eq!(data["type"], *ev, "{name}: type");
    }
    assert_eq!(evs[0].0, "response.created", "{name}");
    assert_eq!(evs[1].0, "response.in_progress", "{name}");
    let terminal = [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ];
    let (last, last_data) = evs[evs.len() - 1];
    assert!(terminal.contains(&last), "{name}: ends with {last}");
    assert_eq!(
        evs.iter().filter(|(e, _)| terminal.contains(e)).count(),
        1,
        "{name}: one terminal"
    );

    let mut added = Vec::new();
    let mut done = Vec::new();
    let mut texts: std::collections::BTreeMap<u64, String> = Default::default();
    let mut args: std::collections::BTreeMap<u64, String> = Default::default();
    for (ev, data) in &evs {
        let index = data["output_index"].as_u64();
        match *ev {
            "response.output_item.added" => {
                assert_eq!(
                    index,
                    Some(added.len() as u64),
                    "{name}: output_index in order"
                );
                added.push(index);
            }
            "response.output_item.done" => {
                assert!(
                    added.contains(&index) && !done.iter().any(|(i, _)| *i == index),
                    "{name}: done once after added"
                );
                done.push((index, data["item"].clone()));
            }
            "response.output_text.delta" => texts
                .entry(index.unwrap())
                .or_default()
                .push_str(data["delta"].as_str().unwrap()),
            "response.output_text.done" => {
                assert_eq!(
                    texts.get(&index.unwrap()).map(String::as_str).unwrap_or(""),
                    data["text"],
                    "{name}: text"
                );
            }
            "response.function_call_arguments.delta" => {
                assert!(
                    !done.iter().any(|(i, _)| *i == index),
                    "{name}: delta after done"
                );
                args.entry(index.unwrap())
                    .or_default()
                    .push_str(data["delta"].as_str().unwrap());
            }
            "response.function_call_arguments.done" => {
                assert_eq!(
                    args.get(&index.unwrap()).map(String::as_str).unwrap_or(""),
                    data["arguments"],
                    "{name}: args"
                );
            }
            _ => {}
        }
    }
    let response = last_data["response"].clone();
    if last != "response.failed" {
        assert_eq!(added.len(), done.len(), "{name}: every item finished");
        let output: Vec<Value> = done.into_iter().map(|(_, item)| item).collect();
        assert_eq!(
            response["output"],
            Value::Array(output),
            "{name}: final output = finished items"
        );
        assert!(response["usage"].is_object(), "{name}: usage");
    }
    response
}

#[test]
fn chat_streams_to_responses_events() {
    for name in [
        "chat_parallel_tools",
        "chat_args_before_name",
        "chat_error",
        "chat_truncated",
        "chat_eof_after_finish",
    ] {
        let (events, _) = translate_chat_stream(name);
        check_invariants(name, &events);
        golden_text(&format!("{name}.events.sse"), &sse_text(&events));
    }
}

#[test]
fn messages_streams_to_responses_events() {
    for name in [
        "messages_thinking_tool",
        "messages_error",
        "messages_truncated",
        "messages_redacted_max_tokens",
    ] {
        let (events, _) = translate_messages_stream(name);
        check_invariants(name, &events);
        golden_text(&format!("{name}.events.sse"), &sse_text(&events));
    }
}

#[test]
fn stream_outcomes() {
    let status = |events: &[ResponsesEvent]| {
        let ResponsesEvent::Event { data, .. } = events.last().unwrap() else {
            panic!()
        };
        data["response"]["status"].as_str().unwrap().to_owned()
    };
    let cases: [(&str, bool, &str); 9] = [
        ("chat_parallel_tools", true, "completed"),
        ("chat_args_before_name", true, "completed"),
        ("chat_error", true, "failed"),
        ("chat_truncated", true, "failed"),
        ("chat_eof_after_finish", true, "incomplete"),
        ("messages_thinking_tool", false, "completed"),
        ("messages_error", false, "failed"),
        ("messages_truncated", false, "failed"),
        ("messages_redacted_max_tokens", false, "incomplete"),
    ];
    for (name, chat, want) in cases {
        let (events, _) = if chat {
            translate_chat_stream(name)
        } else {
            translate_messages_stream(name)
        };
        assert_eq!(status(&events), want, "{name}");
    }
}

#[test]
fn parallel_calls_restore_namespaces_and_late_usage_counts() {
    let (events, usage) = translate_chat_stream("chat_parallel_tools");
    let response = check_invariants("chat_parallel_tools", &events);
    let output = response["output"].as_array().unwrap();
    assert_eq!(output[0]["content"][0]["text"], "Checking both.");
    assert_eq!(output[1]["name"], "exec_command");
    assert_eq!(output[1]["arguments"], "{\"cmd\":\"ls\"}");
    assert_eq!(output[2]["name"], "spawn_agent");
    assert_eq!(output[2]["namespace"], "multi_agent_v1");
    assert_eq!(output[2]["arguments"], "{\"task\":\"review\"}");
    assert_eq!(response["usage"]["input_tokens"], 900);
    assert_eq!(
        response["usage"]["input_tokens_details"]["cached_tokens"],
        512
    );
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.output_tokens
        ),
        (388, 512, 33)
    );
}

#[test]
fn streamed_thinking_can_be_replayed_to_anthropic() {
    let (events, usage) = translate_messages_stream("messages_thinking_tool");
    let response = check_invariants("messages_thinking_tool", &events);
    assert!(
        events.contains(&ResponsesEvent::Keepalive),
        "ping passed on"
    );
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.output_tokens
        ),
        (25, 1800, 71)
    );
    assert_eq!(response["usage"]["input_tokens"], 1825);

    // The client replays the output items in its next request.
    let mut input: Vec<Value> = vec![serde_json::json!({"role": "user", "content": "go"})];
    input.extend(response["output"].as_array().unwrap().iter().cloned());
    for call in ["toolu_01A", "toolu_01B"] {
        input.push(
            serde_json::json!({"type": "function_call_output", "call_id": call, "output": "ok"}),
        );
    }
    let mut request = read_json("codex_tool_loop.request.json");
    request["input"] = Value::Array(input);
    let body = to_messages(&request, &MessagesOptions::default())
        .unwrap()
        .body;
    assert_eq!(body["thinking"]["type"], "enabled");
    let assistant = &body["messages"][1]["content"];
    assert_eq!(
        assistant[0],
        serde_json::json!({"type": "thinking", "thinking": "List first, then spawn.", "signature": "EqQBCkgIARABGAIiQL"})
    );
    assert_eq!(assistant[2]["name"], "exec_command");
    assert_eq!(assistant[3]["name"], "multi_agent_v1__wait_agent");
}

#[test]
fn whole_and_streamed_answers_agree() {
    let whole = from_messages_response(
        &read_json("messages_thinking_tool.messages.json"),
        &codex_context(),
        CREATED_AT,
    );
    let output = whole["output"].as_array().unwrap();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["reasoning", "message", "function_call", "function_call"]
    );
    assert_eq!(output[3]["arguments"], "{}");
    assert_eq!(output[3]["namespace"], "multi_agent_v1");
    assert_eq!(whole["status"], "completed");
    assert_eq!(whole["usage"]["input_tokens"], 2530);
}

#[test]
fn chat_stream_completes_once_finish_reason_and_usage_are_known() {
    let mut t = ChatStreamTranslator::new(codex_context(), CREATED_AT);
    for ev in upstream_events("chat_eof_after_finish.sse") {
        t.on_event(&ev);
    }
    assert!(
        t.finished(),
        "complete without [DONE]: the relay need not report truncation"
    );
    let mut t = ChatStreamTranslator::new(codex_context(), CREATED_AT);
    for ev in upstream_events("chat_args_before_name.sse").iter().take(4) {
        t.on_event(ev);
    }
    assert!(!t.finished(), "no finish reason yet");
}
