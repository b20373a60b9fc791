//! One test per item of §0 of the protocol reference ("ten things that
//! break coding agents") that translation touches. Item 2 (Codex needs the
//! Responses API) belongs to `translate::responses`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

use super::stream_tests::{an, assert_anthropic_order, chunk, done, oa, parse, run, usage_chunk};
use super::*;
use crate::wire::relay::Relay;

fn o2a_request(body: Value) -> TranslatedRequest {
    chat_to_messages::translate(&body, "claude", &TargetOptions::default(), 0).unwrap()
}

fn a2o_request(body: Value) -> TranslatedRequest {
    messages_to_chat::translate(&body, "gpt", &TargetOptions::default(), 0).unwrap()
}

#[test]
fn section0_1_anthropic_streams_carry_event_lines_and_openai_streams_do_not() {
    let mut t = stream_chat_to_messages::ChatToMessages::new(Session::default());
    let raw = run(
        &mut t,
        &[
            oa(chunk(json!({"content":"hi"}), Some("stop"))),
            oa(usage_chunk(1, 1, 0)),
            done(),
        ],
    );
    for block in raw.split("\n\n").filter(|b| !b.is_empty()) {
        assert!(
            block.starts_with("event: "),
            "Anthropic event without event: line: {block:?}"
        );
    }
    assert_anthropic_order(&parse(&raw));

    let mut t = stream_messages_to_chat::MessagesToChat::new(Session::default());
    let raw = run(
        &mut t,
        &[
            an(
                json!({"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1}}}),
            ),
            an(
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}),
            ),
            an(json!({"type":"message_stop"})),
        ],
    );
    assert!(!raw.contains("event:"));
    assert!(raw.ends_with("data: [DONE]\n\n"));
}

#[test]
fn section0_3_max_tokens_defaults_to_4096_when_the_openai_client_omits_it() {
    let t = o2a_request(json!({"model":"m","messages":[{"role":"user","content":"hi"}]}));
    assert_eq!(t.body["max_tokens"], 4096);
    let t = o2a_request(
        json!({"model":"m","max_completion_tokens":123,"messages":[{"role":"user","content":"hi"}]}),
    );
    assert_eq!(t.body["max_tokens"], 123);
}

#[test]
fn section0_4_tool_names_and_ids_are_mapped_deterministically_and_restored() {
    let long = "mcp__server_with_a_long_name__tool_with_an_even_longer_descriptive_name";
    assert!(long.len() > 64);
    let req = json!({"model":"m","max_tokens":10,
        "tools":[{"name":long,"input_schema":{"type":"object"}}],
        "messages":[{"role":"user","content":"go"},
            {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":long,"input":{}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]}]});
    let t = a2o_request(req.clone());
    let short = t.body["tools"][0]["function"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(short.len() <= 64);
    assert_eq!(
        t.body["messages"][1]["tool_calls"][0]["function"]["name"],
        short.as_str()
    );
    assert_eq!(
        a2o_request(req).body["tools"][0]["function"]["name"],
        short.as_str(),
        "deterministic"
    );
    let answer = json!({"id":"c","choices":[{"index":0,"message":{"role":"assistant","tool_calls":[
        {"id":"call_1","type":"function","function":{"name":short,"arguments":"{}"}}]},"finish_reason":"tool_calls"}],
        "usage":{"prompt_tokens":1,"completion_tokens":1}});
    let back = response::chat_to_messages(&answer, &t.session).unwrap();
    assert_eq!(back["content"][0]["name"], long);

    // Ids Anthropic rejects are sanitized the same way on the call and its result.
    let t = o2a_request(json!({"model":"m","messages":[
        {"role":"user","content":"go"},
        {"role":"assistant","tool_calls":[{"id":"functions.get_weather:0","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"functions.get_weather:0","content":"sunny"}]}));
    let id = t.body["messages"][1]["content"][0]["id"].as_str().unwrap();
    assert!(
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "{id}"
    );
    assert_eq!(t.body["messages"][2]["content"][0]["tool_use_id"], id);
}

#[test]
fn section0_5_tool_use_and_results_keep_pairing_and_order_both_ways() {
    // OpenAI -> Anthropic: parallel results and the next user text form one user turn, results first.
    let t = o2a_request(json!({"model":"m","messages":[
        {"role":"user","content":"go"},
        {"role":"assistant","tool_calls":[
            {"id":"c1","type":"function","function":{"name":"a","arguments":"{}"}},
            {"id":"c2","type":"function","function":{"name":"b","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c1","content":"1"},
        {"role":"tool","tool_call_id":"c2","content":"2"},
        {"role":"user","content":"next"}]}));
    let msgs = t.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    let kinds: Vec<&str> = msgs[2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["tool_result", "tool_result", "text"]);
    assert_eq!(msgs[2]["content"][0]["tool_use_id"], "c1");
    assert_eq!(msgs[2]["content"][1]["tool_use_id"], "c2");

    // Anthropic -> OpenAI: one tool message per call, right after the assistant turn.
    let t = a2o_request(json!({"model":"m","max_tokens":5,"messages":[
        {"role":"user","content":"go"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"a","input":{}},{"type":"tool_use","id":"t2","name":"b","input":{}}]},
        {"role":"user","content":[{"type":"text","text":"see:"},{"type":"tool_result","tool_use_id":"t1","content":"1"},{"type":"tool_result","tool_use_id":"t2","content":"2"}]}]}));
    let roles: Vec<&str> = t.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"]);
    assert_eq!(t.body["messages"][2]["tool_call_id"], "t1");
    assert_eq!(t.body["messages"][3]["tool_call_id"], "t2");
}

#[test]
fn section0_6_empty_text_blocks_never_reach_anthropic() {
    let t = o2a_request(json!({"model":"m","messages":[
        {"role":"system","content":""},
        {"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"x"}]},
        {"role":"assistant","content":"","tool_calls":[{"id":"c","type":"function","function":{"name":"a","arguments":""}}]},
        {"role":"tool","tool_call_id":"c","content":""}]}));
    let text = t.body.to_string();
    assert!(!text.contains(r#""text":"""#), "{text}");
    assert!(t.body.get("system").is_none());
}

#[test]
fn section0_7_thinking_signatures_round_trip_or_thinking_is_disabled() {
    // Anthropic answer -> OpenAI client: the signature rides along ...
    let answer = json!({"id":"m","content":[{"type":"thinking","thinking":"hmm","signature":"SIG"},
        {"type":"tool_use","id":"toolu_1","name":"a","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}});
    let msg =
        response::messages_to_chat(&answer, &Session::default()).unwrap()["choices"][0]["message"]
            .clone();
    assert_eq!(msg["reasoning_signature"], "SIG");
    // ... and when the client echoes it, the next request replays the signed block first.
    let mut history = msg.clone();
    history["role"] = json!("assistant");
    let t = o2a_request(json!({"model":"m","reasoning_effort":"low","messages":[
        {"role":"user","content":"go"}, history, {"role":"tool","tool_call_id":"toolu_1","content":"r"}]}));
    assert_eq!(t.body["thinking"]["type"], "enabled");
    assert_eq!(
        t.body["messages"][1]["content"][0],
        json!({"type":"thinking","thinking":"hmm","signature":"SIG"})
    );
    // A client that dropped it gets thinking disabled instead of a 400.
    let t = o2a_request(json!({"model":"m","reasoning_effort":"low","messages":[
        {"role":"user","content":"go"},
        {"role":"assistant","tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"a","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"toolu_1","content":"r"}]}));
    assert!(t.body.get("thinking").is_none());
}

#[test]
fn section0_8_claude_code_fields_are_filtered_for_openai_backends() {
    let t = a2o_request(json!({"model":"m","max_tokens":32000,
        "context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},
        "thinking":{"type":"adaptive","display":"omitted"},
        "output_config":{"effort":"high"},
        "anthropic_beta":["x"],
        "tools":[{"name":"Bash","input_schema":{"type":"object"},"defer_loading":true,"cache_control":{"type":"ephemeral"}}],
        "messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}));
    let text = t.body.to_string();
    for field in [
        "context_management",
        "thinking",
        "effort",
        "anthropic_beta",
        "defer_loading",
        "cache_control",
    ] {
        assert!(!text.contains(field), "{field} leaked: {text}");
    }
}

#[test]
fn section0_9_usage_only_chunk_only_when_the_client_asked() {
    let events = [
        an(
            json!({"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":5,"output_tokens":1}}}),
        ),
        an(
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}),
        ),
        an(json!({"type":"message_stop"})),
    ];
    for include_usage in [false, true] {
        let mut t = stream_messages_to_chat::MessagesToChat::new(Session {
            include_usage,
            ..Session::default()
        });
        let raw = run(&mut t, &events);
        let empty_choices = parse(&raw)
            .iter()
            .filter(|e| e.data != "[DONE]")
            .filter(|e| serde_json::from_str::<Value>(&e.data).unwrap()["choices"] == json!([]))
            .count();
        assert_eq!(
            empty_choices,
            usize::from(include_usage),
            "include_usage={include_usage}"
        );
        if include_usage {
            assert!(
                raw.contains(r#""completion_tokens":9"#),
                "true usage, not the message_start placeholder"
            );
        }
    }
    // The gateway's own include_usage on a passthrough OpenAI stream is stripped again.
    let mut strip = strip_usage::StripUsageChunk;
    assert!(run(&mut strip, &[oa(usage_chunk(1, 1, 0))]).is_empty());
}

async fn relay(t: Translator, upstream: &'static [u8]) -> String {
    let body = StreamBody::new(futures_util::stream::iter([Ok::<_, Infallible>(
        Frame::data(Bytes::from_static(upstream)),
    )]));
    let relay = Relay::translating(
        body,
        t.upstream.dialect(),
        (t.stream)(Session::default()),
        t.client,
        Duration::ZERO,
        Box::new(|_| {}),
    );
    String::from_utf8(relay.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

fn translator(client: ApiFormat, upstream: UpstreamFormat) -> Translator {
    match plan(client, upstream) {
        Plan::Translate(t) => t,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn section0_10_errors_after_the_first_byte_are_in_band_and_never_a_fake_end() {
    // OpenAI client, Anthropic upstream that is cut mid-stream: an in-band OpenAI error, no [DONE].
    let t = translator(ApiFormat::ChatCompletions, UpstreamFormat::Messages);
    let out = relay(t, b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n").await;
    assert!(!out.contains("[DONE]"), "{out}");
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("data: {\"error\":"),
        "{out}"
    );

    // Anthropic client, OpenAI upstream that errors in-band: `event: error`, no message_stop.
    let t = translator(ApiFormat::Messages, UpstreamFormat::ChatCompletions);
    let out = relay(t, b"data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n").await;
    assert!(out.contains("event: error\n"), "{out}");
    assert!(!out.contains("message_stop"), "{out}");

    // Anthropic client, OpenAI upstream cut without [DONE]: an Anthropic in-band error.
    let out = relay(t, b"data: {\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n").await;
    assert!(
        out.ends_with("\n\n") && out.contains("event: error\ndata: {\"type\":\"error\""),
        "{out}"
    );
    assert!(!out.contains("message_stop"), "{out}");
}
