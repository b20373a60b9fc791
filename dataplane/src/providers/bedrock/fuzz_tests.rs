//! Randomised tests of the Bedrock provider's stream decoding as the
//! pipeline runs it (event-stream bytes in random splits → the decoder →
//! InvokeModel's or Converse's frame translator → Anthropic SSE), on real
//! answers (the Mock's Bedrock emulation, random text and tool calls) that
//! are then damaged or cut. Fixed seeds and case counts, so CI runs them
//! for a bounded time; `SWITCHBOARD_FUZZ_CASES=N` / `SWITCHBOARD_FUZZ_SEED=S`
//! as in `wire::eventstream`'s fuzz tests.
//!
//! Properties, for both APIs:
//! - intact, in any split: the SSE is complete (ends with `message_stop`)
//!   and carries the answer's text;
//! - one byte changed anywhere: an in-band `error` event and never a
//!   `message_stop` (a damaged answer never looks complete);
//! - cut anywhere: `message_stop` only when the cut comes after the message
//!   that completes the answer (InvokeModel's last `chunk`; Converse's
//!   `messageStop`, whose `metadata` may be missing), and no output that
//!   does not parse as SSE.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::FutureExt as _;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

use super::mock::{BedrockMockResponse, respond_bedrock};
use crate::translate::bedrock::{BedrockApi, frame_translator};
use crate::translate::names::ToolNames;
use crate::wire::eventstream::Decoder;
use crate::wire::eventstream::body::SseFromFrames;
use crate::wire::mock::MockReply;
use crate::wire::sse::SseParser;

const DEFAULT_CASES: u64 = 300;

fn cases() -> u64 {
    std::env::var("SWITCHBOARD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn rng(property: u64) -> fastrand::Rng {
    let base = std::env::var("SWITCHBOARD_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xbed_70c4_u64);
    fastrand::Rng::with_seed(base ^ property.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A real streamed answer: its bytes, its text, and where the message that
/// completes it ends.
struct Answer {
    api: BedrockApi,
    wire: Vec<u8>,
    text: String,
    terminal_end: usize,
}

fn answer(rng: &mut fastrand::Rng) -> Answer {
    let api = if rng.bool() {
        BedrockApi::InvokeModel
    } else {
        BedrockApi::Converse
    };
    let words: Vec<String> = (0..rng.usize(1..12))
        .map(|_| {
            (0..rng.usize(1..9))
                .map(|_| rng.choice(['a', 'é', 'z', '"', '\\', '語', ' ']).unwrap())
                .collect()
        })
        .collect();
    let text = words.join(" ");
    let tools = rng.u8(..4) == 0;
    let body = match (api, tools) {
        (BedrockApi::InvokeModel, false) => {
            json!({"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
        }
        (BedrockApi::InvokeModel, true) => json!({"max_tokens": 64,
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}),
        (BedrockApi::Converse, false) => {
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        }
        (BedrockApi::Converse, true) => json!({
            "messages": [{"role": "user", "content": [{"text": "weather?"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather",
                "inputSchema": {"json": {"type": "object"}}}}]}}),
    };
    let reply = MockReply {
        reply: text.clone(),
    };
    let Ok(BedrockMockResponse::EventStream(frames)) =
        respond_bedrock(api, &body, "model", true, &reply)
    else {
        panic!("the mock streams")
    };
    // Where the message completing the answer ends: InvokeModel's last
    // chunk; Converse's messageStop (metadata follows). One element of
    // `frames` may hold several messages: walk the messages themselves.
    let wire: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
    let mut ends = Vec::new();
    let mut at = 0;
    let mut decoder = Decoder::default();
    decoder.feed(&wire);
    while let Some(m) = decoder.next_message().unwrap() {
        at += u32::from_be_bytes(wire[at..at + 4].try_into().unwrap()) as usize;
        ends.push((
            m.string_header(":event-type")
                .unwrap_or_default()
                .to_owned(),
            at,
        ));
    }
    let terminal_end = match api {
        BedrockApi::InvokeModel => ends.last().unwrap().1,
        BedrockApi::Converse => ends.iter().find(|(e, _)| e == "messageStop").unwrap().1,
    };
    Answer {
        api,
        wire,
        text: if tools { String::new() } else { text },
        terminal_end,
    }
}

/// Feeds `wire` in random chunks through the provider's decoding; the SSE.
fn decode(api: BedrockApi, wire: &[u8], rng: &mut fastrand::Rng) -> String {
    let mut chunks = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let n = rng.usize(1..=rest.len().min(64));
        chunks.push(Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(
            &rest[..n],
        ))));
        rest = &rest[n..];
    }
    let body = SseFromFrames::new(
        StreamBody::new(futures_util::stream::iter(chunks)),
        frame_translator(api, "msg_fuzz", "model", ToolNames::default()),
        1 << 20,
    );
    let bytes = body
        .collect()
        .now_or_never()
        .expect("an in-memory body is always ready")
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("SSE is UTF-8")
}

/// The events of an SSE text (all must parse), and the joined text deltas.
fn events(sse: &str) -> (Vec<String>, String) {
    let mut parser = SseParser::default();
    let mut names = Vec::new();
    let mut text = String::new();
    for event in parser.feed(sse.as_bytes()) {
        let event = event.expect("well-formed SSE");
        let v: Value = serde_json::from_str(&event.data).expect("JSON data");
        names.push(event.event.clone().unwrap_or_default());
        if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
            text.push_str(t);
        }
    }
    assert!(parser.at_boundary(), "output ends inside an event: {sse:?}");
    (names, text)
}

#[test]
fn intact_answers_decode_complete_in_any_split() {
    let mut rng = rng(1);
    for _ in 0..cases() {
        let a = answer(&mut rng);
        let sse = decode(a.api, &a.wire, &mut rng);
        let (names, text) = events(&sse);
        assert_eq!(
            names.last().map(String::as_str),
            Some("message_stop"),
            "{sse}"
        );
        assert!(!names.iter().any(|n| n == "error"), "{sse}");
        assert_eq!(text, a.text);
    }
}

#[test]
fn a_changed_byte_never_looks_complete() {
    let mut rng = rng(2);
    for _ in 0..cases() {
        let a = answer(&mut rng);
        let mut bytes = a.wire.clone();
        let at = rng.usize(..bytes.len());
        bytes[at] ^= rng.u8(1..);
        let sse = decode(a.api, &bytes, &mut rng);
        let (names, _) = events(&sse);
        assert!(
            !names.iter().any(|n| n == "message_stop"),
            "byte {at} changed: {sse}"
        );
        assert_eq!(names.last().map(String::as_str), Some("error"), "{sse}");
    }
}

#[test]
fn a_cut_answer_is_complete_only_after_its_terminal_message() {
    let mut rng = rng(3);
    for _ in 0..cases() {
        let a = answer(&mut rng);
        let bytes = &a.wire;
        let cut = rng.usize(..bytes.len());
        let terminal_end = a.terminal_end;
        let sse = decode(a.api, &bytes[..cut], &mut rng);
        let (names, _) = events(&sse);
        let complete = names.iter().any(|n| n == "message_stop");
        assert_eq!(
            complete,
            cut >= terminal_end,
            "cut at {cut} of {} (terminal ends at {terminal_end}): {sse}",
            bytes.len()
        );
    }
}
