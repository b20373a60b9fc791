//! State-machine tests: odd but legal event orders, in both directions.

use serde_json::{Value, json};

use super::stream_chat_to_messages::ChatToMessages;
use super::stream_messages_to_chat::MessagesToChat;
use super::{Session, StreamTranslator, ToolNames};
use crate::wire::sse::{SseEvent, SseParser};

/// An OpenAI chunk event.
pub(super) fn oa(v: Value) -> SseEvent {
    SseEvent {
        event: None,
        data: v.to_string(),
    }
}

/// The OpenAI terminator.
pub(super) fn done() -> SseEvent {
    SseEvent {
        event: None,
        data: "[DONE]".into(),
    }
}

/// An Anthropic event (name from `type`).
pub(super) fn an(v: Value) -> SseEvent {
    SseEvent {
        event: v["type"].as_str().map(str::to_owned),
        data: v.to_string(),
    }
}

pub(super) fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":delta,"finish_reason":finish}]})
}

pub(super) fn usage_chunk(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[],
        "usage":{"prompt_tokens":prompt,"completion_tokens":completion,"total_tokens":prompt+completion,
                 "prompt_tokens_details":{"cached_tokens":cached}}})
}

/// Runs a translator and returns its raw output.
pub(super) fn run(t: &mut dyn StreamTranslator, events: &[SseEvent]) -> String {
    let mut out = Vec::new();
    for e in events {
        t.event(e, &mut out);
    }
    String::from_utf8(out).unwrap()
}

/// Parsed output events (comments dropped).
pub(super) fn parse(raw: &str) -> Vec<SseEvent> {
    let mut p = SseParser::default();
    let mut v: Vec<SseEvent> = p
        .feed(raw.as_bytes())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    v.extend(p.finish().map(Result::unwrap));
    v
}

fn names(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.event.clone().unwrap_or_default())
        .collect()
}

fn data(e: &SseEvent) -> Value {
    serde_json::from_str(&e.data).unwrap()
}

/// Checks the Anthropic ordering rules of §2.8 on a complete stream:
/// `message_start` first; blocks opened at 0, 1, 2… one at a time, each
/// closed before the next opens; deltas only inside their open block;
/// `message_delta` after every block closed; `message_stop` last.
pub(super) fn assert_anthropic_order(events: &[SseEvent]) {
    assert!(
        events.iter().all(|e| e.event.is_some()),
        "every event has an event: line"
    );
    assert_eq!(
        events.first().and_then(|e| e.event.as_deref()),
        Some("message_start")
    );
    let mut open: Option<u64> = None;
    let mut next = 0u64;
    let mut after_delta = false;
    for e in events.iter().skip(1) {
        let v = data(e);
        assert_eq!(
            v["type"].as_str(),
            e.event.as_deref(),
            "type matches the event name"
        );
        match e.event.as_deref().unwrap() {
            "content_block_start" => {
                assert!(
                    open.is_none() && !after_delta,
                    "block opened while another is open: {v}"
                );
                assert_eq!(v["index"], next);
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => assert_eq!(Some(v["index"].as_u64().unwrap()), open, "{v}"),
            "content_block_stop" => {
                assert_eq!(Some(v["index"].as_u64().unwrap()), open, "{v}");
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta with an open block");
                after_delta = true;
            }
            "message_stop" => assert!(after_delta),
            "ping" | "error" => {}
            other => panic!("unexpected event {other}"),
        }
    }
}

/// The concatenated `partial_json` of each tool_use block, parsed, with the block's name.
fn tool_inputs(events: &[SseEvent]) -> Vec<(String, Value)> {
    let mut blocks: Vec<(u64, String, String)> = Vec::new();
    for e in events {
        let v = data(e);
        match e.event.as_deref() {
            Some("content_block_start") if v["content_block"]["type"] == "tool_use" => {
                blocks.push((
                    v["index"].as_u64().unwrap(),
                    v["content_block"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            Some("content_block_delta") if v["delta"]["type"] == "input_json_delta" => {
                let b = blocks.iter_mut().find(|b| b.0 == v["index"]).unwrap();
                b.2.push_str(v["delta"]["partial_json"].as_str().unwrap());
            }
            _ => {}
        }
    }
    blocks
        .into_iter()
        .map(|(_, n, j)| {
            (
                n,
                if j.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&j).unwrap()
                },
            )
        })
        .collect()
}

fn o2a() -> ChatToMessages {
    ChatToMessages::new(Session::default())
}

#[test]
fn usage_before_finish_reason_still_ends_once_with_both() {
    let mut t = o2a();
    let raw = run(
        &mut t,
        &[
            oa(chunk(json!({"role":"assistant","content":"hi"}), None)),
            oa(usage_chunk(10, 2, 4)),
            oa(chunk(json!({}), Some("length"))),
            done(),
        ],
    );
    let events = parse(&raw);
    assert_anthropic_order(&events);
    let deltas: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("message_delta"))
        .map(data)
        .collect();
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0]["delta"]["stop_reason"], "max_tokens");
    assert_eq!(deltas[0]["usage"]["input_tokens"], 6);
    assert_eq!(deltas[0]["usage"]["cache_read_input_tokens"], 4);
    assert_eq!(
        names(&events)
            .iter()
            .filter(|n| *n == "message_stop")
            .count(),
        1
    );
}

#[test]
fn usage_in_the_finish_chunk_ends_at_once() {
    let mut t = o2a();
    let mut last = chunk(json!({"content":"x"}), Some("stop"));
    last["usage"] = json!({"prompt_tokens":3,"completion_tokens":1});
    let raw = run(&mut t, &[oa(last)]);
    let events = parse(&raw);
    assert_anthropic_order(&events);
    assert_eq!(names(&events).last().unwrap(), "message_stop");
    assert_eq!(
        run(&mut t, &[done()]),
        "",
        "[DONE] after the end adds nothing"
    );
}

#[test]
fn interleaved_tool_calls_keep_blocks_in_order_and_arguments_whole() {
    let mut t = o2a();
    let tc = |i: u64, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut c = json!({"index": i, "function": {"arguments": args}});
        if let Some(id) = id {
            c["id"] = json!(id);
            c["type"] = json!("function");
        }
        if let Some(n) = name {
            c["function"]["name"] = json!(n);
        }
        oa(chunk(json!({"tool_calls":[c]}), None))
    };
    let raw = run(
        &mut t,
        &[
            tc(0, Some("call_0"), Some("a"), "{\"x\":"),
            tc(1, Some("call_1"), Some("b"), "{\"y\""),
            tc(0, None, None, "1}"),
            tc(1, None, None, ":2}"),
            tc(2, Some("call_2"), Some("c"), ""),
            oa(chunk(json!({}), Some("tool_calls"))),
            oa(usage_chunk(1, 1, 0)),
            done(),
        ],
    );
    let events = parse(&raw);
    assert_anthropic_order(&events);
    assert_eq!(
        tool_inputs(&events),
        vec![
            ("a".into(), json!({"x":1})),
            ("b".into(), json!({"y":2})),
            ("c".into(), json!({}))
        ]
    );
}

#[test]
fn arguments_before_the_name_are_buffered() {
    let mut t = o2a();
    let raw = run(
        &mut t,
        &[
            oa(chunk(
                json!({"tool_calls":[{"index":0,"id":"call_9","function":{"arguments":"{\"q\":"}}]}),
                None,
            )),
            oa(chunk(
                json!({"tool_calls":[{"index":0,"function":{"name":"search","arguments":"\"rust\"}"}}]}),
                None,
            )),
            oa(chunk(json!({}), Some("tool_calls"))),
            done(),
        ],
    );
    let events = parse(&raw);
    assert_anthropic_order(&events);
    assert_eq!(
        tool_inputs(&events),
        vec![("search".into(), json!({"q":"rust"}))]
    );
}

#[test]
fn empty_deltas_open_no_blocks_and_done_alone_ends_with_defaults() {
    let mut t = o2a();
    let raw = run(
        &mut t,
        &[
            oa(chunk(json!({"role":"assistant","content":""}), None)),
            oa(chunk(json!({"content":null}), None)),
            oa(chunk(json!({}), None)),
            done(),
        ],
    );
    let events = parse(&raw);
    assert_anthropic_order(&events);
    assert_eq!(
        names(&events),
        ["message_start", "message_delta", "message_stop"]
    );
    assert_eq!(data(&events[1])["delta"]["stop_reason"], "end_turn");
}

#[test]
fn openai_stream_cut_before_the_end_gets_no_terminal_events() {
    let mut t = o2a();
    let raw = run(&mut t, &[oa(chunk(json!({"content":"par"}), None))]);
    let n = names(&parse(&raw));
    assert!(
        !n.contains(&"message_stop".to_string()) && !n.contains(&"message_delta".to_string()),
        "{n:?}"
    );
}

#[test]
fn openai_error_mid_stream_becomes_anthropic_error_and_nothing_follows() {
    let mut t = o2a();
    let raw = run(
        &mut t,
        &[
            oa(chunk(json!({"content":"par"}), None)),
            oa(
                json!({"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}),
            ),
            oa(chunk(json!({"content":"more"}), Some("stop"))),
            done(),
        ],
    );
    let events = parse(&raw);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(data(last)["error"]["type"], "rate_limit_error");
    assert!(!names(&events).contains(&"message_stop".to_string()));
}

#[test]
fn text_after_tool_calls_and_restored_tool_names() {
    let mut names_map = ToolNames::default();
    let long = "x".repeat(80);
    let short = names_map.to_target(&long, 64);
    let mut t = ChatToMessages::new(Session {
        tool_names: names_map,
        ..Session::default()
    });
    let raw = run(
        &mut t,
        &[
            oa(chunk(
                json!({"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":short,"arguments":"{}"}}]}),
                None,
            )),
            oa(chunk(json!({"content":"and text"}), None)),
            oa(chunk(json!({}), Some("tool_calls"))),
            done(),
        ],
    );
    let events = parse(&raw);
    assert_anthropic_order(&events);
    assert_eq!(tool_inputs(&events), vec![(long, json!({}))]);
}

// --- Anthropic upstream -> OpenAI client ---------------------------------------------------------

fn a2o(include_usage: bool) -> MessagesToChat {
    MessagesToChat::new(Session {
        include_usage,
        created: 7,
        ..Session::default()
    })
}

fn message_start(input: u64) -> SseEvent {
    an(
        json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":input,"output_tokens":1}}}),
    )
}

fn chunks(raw: &str) -> Vec<Value> {
    parse(raw)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(data)
        .collect()
}

#[test]
fn ping_becomes_a_comment_and_ids_stay_constant() {
    let mut t = a2o(false);
    let raw = run(
        &mut t,
        &[
            message_start(3),
            an(json!({"type":"ping"})),
            an(
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            ),
            an(
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}),
            ),
            an(json!({"type":"content_block_stop","index":0})),
            an(
                json!({"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":1}}),
            ),
            an(
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}),
            ),
            an(json!({"type":"ping"})),
            an(json!({"type":"message_stop"})),
        ],
    );
    assert!(raw.contains(": keepalive\n\n"));
    assert!(raw.ends_with("data: [DONE]\n\n"));
    let cs = chunks(&raw);
    assert!(cs.iter().all(|c| c["id"] == "msg_1"
        && c["created"] == 7
        && c["object"] == "chat.completion.chunk"));
    assert_eq!(cs[0]["choices"][0]["delta"]["role"], "assistant");
    let finishes: Vec<&Value> = cs
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
}

#[test]
fn tool_start_with_input_and_argless_tools_get_arguments() {
    let mut t = a2o(false);
    let raw = run(
        &mut t,
        &[
            message_start(1),
            an(
                json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t0","name":"a","input":{"k":1}}}),
            ),
            an(json!({"type":"content_block_stop","index":0})),
            an(
                json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}),
            ),
            an(
                json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"between"}}),
            ),
            an(json!({"type":"content_block_stop","index":1})),
            an(
                json!({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t1","name":"b","input":{}}}),
            ),
            an(
                json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}),
            ),
            an(json!({"type":"content_block_stop","index":2})),
            an(
                json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}),
            ),
            an(json!({"type":"message_stop"})),
        ],
    );
    let mut args: std::collections::BTreeMap<u64, String> = Default::default();
    for c in chunks(&raw) {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            args.entry(call["index"].as_u64().unwrap())
                .or_default()
                .push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(
        args.len(),
        2,
        "tool call indices count tool calls, not content blocks"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&args[&0]).unwrap(),
        json!({"k":1})
    );
    assert_eq!(serde_json::from_str::<Value>(&args[&1]).unwrap(), json!({}));
}

#[test]
fn message_stop_without_stop_reason_still_finishes() {
    let mut t = a2o(true);
    let raw = run(
        &mut t,
        &[message_start(4), an(json!({"type":"message_stop"}))],
    );
    let cs = chunks(&raw);
    assert_eq!(cs[cs.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(cs.last().unwrap()["choices"], json!([]));
    assert_eq!(cs.last().unwrap()["usage"]["prompt_tokens"], 4);
}

#[test]
fn anthropic_error_mid_stream_is_an_openai_error_without_done() {
    let mut t = a2o(true);
    let raw = run(
        &mut t,
        &[
            message_start(1),
            an(json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})),
        ],
    );
    assert!(!raw.contains("[DONE]"));
    let last = chunks(&raw).pop().unwrap();
    assert_eq!(
        last,
        json!({"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}})
    );
}
