//! Golden fixtures for whole translations (`testdata/`):
//!
//! - `request/<pair>/<case>.in.json` → `<case>.out.json`: the client request
//!   and the body sent upstream (or `{"error": …}` when it is rejected);
//! - `response/<pair>/<case>.in.json` → `<case>.out.json`: the upstream's
//!   answer and what the client receives; `<case>.request.json` is the
//!   client's request (it sets the session: usage chunk, tool names);
//! - `stream/<pair>/<case>.in.sse` → `<case>.out.sse`: the same for streams,
//!   run through the real [`Relay`](crate::wire::relay::Relay);
//! - `error/<case>.in.json` (`{client, status, body}`) → `<case>.out.json`.
//!
//! `<pair>` names the direction of the translation in that folder: for
//! requests `chat_to_messages` is an OpenAI client on an Anthropic upstream;
//! for responses and streams `messages_to_chat` is an Anthropic answer going
//! to that same OpenAI client (and the other way round).
//! `UPDATE_GOLDEN=1 cargo test -p switchboard-dataplane golden` rewrites the
//! expected files; review the diff.

use std::path::Path;
use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::*;
use crate::testing::golden::{Golden, cases, in_pieces, read_json};
use crate::wire::relay::Relay;

const CREATED: u64 = 1_700_000_000;

fn golden() -> Golden {
    Golden::new("src/translate/testdata")
}

/// A request translation on trees (the golden files are trees).
type TreeFn = fn(
    &Value,
    &str,
    &TargetOptions,
    u64,
) -> Result<crate::translate::TranslatedRequest, crate::translate::TranslateError>;

fn request_fn(pair: &str) -> TreeFn {
    match pair {
        "chat_to_messages" => chat_to_messages::translate,
        "messages_to_chat" => messages_to_chat::translate,
        _ => unreachable!(),
    }
}

fn translator(pair: &str) -> Translator {
    let (client, upstream) = match pair {
        "chat_to_messages" => (ApiFormat::ChatCompletions, UpstreamFormat::Messages),
        _ => (ApiFormat::Messages, UpstreamFormat::ChatCompletions),
    };
    match plan(client, upstream) {
        Plan::Translate(t) => t,
        other => panic!("{pair}: {other:?}"),
    }
}

/// The request direction of a response/stream folder.
fn request_pair(response_pair: &str) -> &'static str {
    match response_pair {
        "messages_to_chat" => "chat_to_messages",
        _ => "messages_to_chat",
    }
}

fn session(dir: &Path, case: &str, response_pair: &str) -> Session {
    let req = read_json(&dir.join(format!("{case}.request.json")));
    (request_fn(request_pair(response_pair)))(
        &req,
        "upstream-model",
        &TargetOptions::default(),
        CREATED,
    )
    .unwrap()
    .session
}

const PAIRS: [&str; 2] = ["chat_to_messages", "messages_to_chat"];

#[test]
fn golden_requests() {
    for pair in PAIRS {
        let dir = golden().path(&format!("request/{pair}"));
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let out = match (request_fn(pair))(
                &input,
                "upstream-model",
                &TargetOptions::default(),
                CREATED,
            ) {
                Ok(t) => t.body,
                Err(e) => json!({"error": e.to_string()}),
            };
            assert_eq!(
                case.starts_with("reject_"),
                out.get("error").is_some(),
                "{pair}/{case}: {out}"
            );
            golden().check_json(&dir.join(format!("{case}.out.json")), &out);
        }
    }
}

#[test]
fn golden_responses() {
    for pair in PAIRS {
        let dir = golden().path(&format!("response/{pair}"));
        let t = translator(request_pair(pair));
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let out = (t.response)(input.to_string().as_bytes(), &session(&dir, &case, pair))
                .unwrap()
                .body;
            let parsed: Value = serde_json::from_slice(&out).unwrap();
            golden().check_json(&dir.join(format!("{case}.out.json")), &parsed);
            // Byte for byte what serializing the answer as a tree gave (the
            // translation before the typed views: members in sorted order).
            assert_eq!(
                String::from_utf8(out).unwrap(),
                parsed.to_string(),
                "{pair}/{case}: not in the order a tree serializes in"
            );
        }
    }
}

#[tokio::test]
async fn golden_streams() {
    for pair in PAIRS {
        let dir = golden().path(&format!("stream/{pair}"));
        let t = translator(request_pair(pair));
        for case in cases(&dir, ".in.sse") {
            let input = std::fs::read(dir.join(format!("{case}.in.sse"))).unwrap();
            // Cut into small pieces, as a network would.
            let body = in_pieces(&input, 7);
            let relay = Relay::translating(
                body,
                t.upstream.dialect(),
                (t.stream)(session(&dir, &case, pair)),
                t.client,
                Duration::ZERO,
                Box::new(|_| {}),
            );
            let out = relay.collect().await.unwrap().to_bytes();
            golden().check(
                &dir.join(format!("{case}.out.sse")),
                std::str::from_utf8(&out).unwrap(),
            );
        }
    }
}

#[test]
fn golden_errors() {
    let dir = golden().path("error");
    for case in cases(&dir, ".in.json") {
        let input = read_json(&dir.join(format!("{case}.in.json")));
        let client = match input["client"].as_str() {
            Some("openai") => Dialect::OpenAI,
            _ => Dialect::Anthropic,
        };
        let status = input["status"].as_u64().unwrap() as u16;
        let body = input["body"].as_str().unwrap().as_bytes();
        let out: Value = serde_json::from_slice(&errors::to_client(client, status, body)).unwrap();
        golden().check_json(&dir.join(format!("{case}.out.json")), &out);
    }
}
