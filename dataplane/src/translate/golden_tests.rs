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

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

use super::*;
use crate::wire::relay::Relay;

const CREATED: u64 = 1_700_000_000;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/translate/testdata")
        .join(rel)
}

/// Case names in `dir` with inputs ending in `suffix`, sorted.
fn cases(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_owned))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases in {}", dir.display());
    names
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `actual` with the expected file, or rewrites it with UPDATE_GOLDEN=1.
fn check(expected: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(expected, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(expected)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", expected.display()));
    assert_eq!(actual, want, "golden mismatch: {}", expected.display());
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
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
        let dir = testdata(&format!("request/{pair}"));
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
            check(&dir.join(format!("{case}.out.json")), &pretty(&out));
        }
    }
}

#[test]
fn golden_responses() {
    for pair in PAIRS {
        let dir = testdata(&format!("response/{pair}"));
        let t = translator(request_pair(pair));
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let out = (t.response)(&input, &session(&dir, &case, pair)).unwrap();
            check(&dir.join(format!("{case}.out.json")), &pretty(&out));
        }
    }
}

#[tokio::test]
async fn golden_streams() {
    for pair in PAIRS {
        let dir = testdata(&format!("stream/{pair}"));
        let t = translator(request_pair(pair));
        for case in cases(&dir, ".in.sse") {
            let input = std::fs::read(dir.join(format!("{case}.in.sse"))).unwrap();
            // Cut into small pieces, as a network would.
            let chunks: Vec<_> = input
                .chunks(7)
                .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let body = StreamBody::new(futures_util::stream::iter(chunks));
            let relay = Relay::translating(
                body,
                t.upstream.dialect(),
                (t.stream)(session(&dir, &case, pair)),
                t.client,
                Duration::ZERO,
                Box::new(|_| {}),
            );
            let out = relay.collect().await.unwrap().to_bytes();
            check(
                &dir.join(format!("{case}.out.sse")),
                std::str::from_utf8(&out).unwrap(),
            );
        }
    }
}

#[test]
fn golden_errors() {
    let dir = testdata("error");
    for case in cases(&dir, ".in.json") {
        let input = read_json(&dir.join(format!("{case}.in.json")));
        let client = match input["client"].as_str() {
            Some("openai") => Dialect::OpenAI,
            _ => Dialect::Anthropic,
        };
        let status = input["status"].as_u64().unwrap() as u16;
        let body = input["body"].as_str().unwrap().as_bytes();
        let out: Value = serde_json::from_slice(&errors::to_client(client, status, body)).unwrap();
        check(&dir.join(format!("{case}.out.json")), &pretty(&out));
    }
}
