//! Golden fixtures for the Bedrock translations (`testdata/`), the same
//! layout as the other translations' (`UPDATE_GOLDEN=1` rewrites the
//! expected files; review the diff):
//!
//! - `request/<client>_to_<api>/<case>.in.json` → `<case>.out.json`: the
//!   client's request and the body sent to Bedrock (or `{"error": …}`); an
//!   optional `<case>.betas.json` lists the flags forwarded;
//! - `response/<api>_to_<client>/<case>.in.json` → `<case>.out.json`: the
//!   Bedrock answer and what the client receives; `<case>.request.json` is
//!   the client's request;
//! - `stream/<api>_to_<client>/<case>.in.json` → `<case>.out.sse`: the
//!   Bedrock stream as a list of messages (`{"event": type, "payload": …}`,
//!   `{"exception": type, "message": …}`, or for InvokeModel
//!   `{"chunk": <Anthropic event>}`), encoded into event-stream framing,
//!   cut into 7-byte pieces, run through the body adapter and the real
//!   relay;
//! - `front/request/<op>/<case>.in.json` → `<case>.out.json`: a Bedrock
//!   client's request and the Anthropic request the gateway routes
//!   (`{"request", "betas"}`);
//! - `front/response/<case>.in.json` → `<case>.out.json`: an Anthropic
//!   message and the Converse answer;
//! - `front/stream/<op>/<case>.in.sse` → `<case>.out.json`: Anthropic SSE
//!   and the event-stream messages the client receives, decoded.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

use super::*;
use crate::wire::Dialect;
use crate::wire::eventstream::body::SseFromFrames;
use crate::wire::eventstream::{
    DEFAULT_MAX_MESSAGE, Decoder, HeaderValue, encode, event_message, exception_message,
};
use crate::wire::relay::Relay;
use crate::wire::sse::SseParser;

const CREATED: u64 = 1_700_000_000;
const MODEL: &str = "upstream-model";
const ID: &str = "msg_bdrk_01";

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/translate/bedrock/testdata")
        .join(rel)
}

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

fn subdirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

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

fn client_of(name: &str) -> ApiFormat {
    match name {
        "messages" => ApiFormat::Messages,
        "chat" => ApiFormat::ChatCompletions,
        "responses" => ApiFormat::Responses,
        other => panic!("unknown client {other}"),
    }
}

fn dialect_of(client: ApiFormat) -> Dialect {
    match client {
        ApiFormat::Messages | ApiFormat::CountTokens => Dialect::Anthropic,
        ApiFormat::ChatCompletions | ApiFormat::Responses => Dialect::OpenAI,
    }
}

fn api_of(name: &str) -> BedrockApi {
    match name {
        "invoke" => BedrockApi::InvokeModel,
        "converse" => BedrockApi::Converse,
        other => panic!("unknown api {other}"),
    }
}

fn options(dir: &Path, case: &str) -> BedrockOptions {
    let betas = dir.join(format!("{case}.betas.json"));
    BedrockOptions {
        betas: if betas.exists() {
            serde_json::from_value(read_json(&betas)).unwrap()
        } else {
            Vec::new()
        },
        default_max_tokens: 0,
    }
}

#[test]
fn golden_requests() {
    let root = testdata("request");
    for pair in subdirs(&root) {
        let (client, api) = pair.split_once("_to_").unwrap();
        let dir = root.join(&pair);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let out = match request(
                client_of(client),
                api_of(api),
                &input,
                MODEL,
                &options(&dir, &case),
                CREATED,
            ) {
                Ok(r) => {
                    let mut out = json!({"body": r.body});
                    if !r.converse_names.is_empty() {
                        out["renamed_tools"] = json!(true);
                    }
                    if !r.stripped.is_empty() {
                        out["stripped"] = json!(r.stripped);
                    }
                    out
                }
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

fn prepared(dir: &Path, case: &str, client: ApiFormat, api: BedrockApi) -> BedrockRequest {
    let req = read_json(&dir.join(format!("{case}.request.json")));
    request(
        client,
        api,
        &req,
        MODEL,
        &BedrockOptions::default(),
        CREATED,
    )
    .unwrap()
}

#[test]
fn golden_responses() {
    let root = testdata("response");
    for pair in subdirs(&root) {
        let (api, client) = pair.split_once("_to_").unwrap();
        let (api, client) = (api_of(api), client_of(client));
        let dir = root.join(&pair);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let req = prepared(&dir, &case, client, api);
            let out = response(client, api, &input, &req, ID, MODEL).unwrap();
            check(&dir.join(format!("{case}.out.json")), &pretty(&out));
        }
    }
}

/// The event-stream bytes of a fixture's message list.
fn frames(list: &Value) -> Vec<u8> {
    let mut wire = Vec::new();
    for m in list.as_array().unwrap() {
        let msg = if let Some(event) = m.get("chunk") {
            let payload = json!({"bytes": B64.encode(event.to_string())});
            event_message("chunk", "application/json", payload.to_string().as_bytes())
        } else if let Some(name) = m.get("exception").and_then(Value::as_str) {
            exception_message(name, m["message"].as_str().unwrap_or_default())
        } else {
            let event = m["event"].as_str().unwrap();
            event_message(
                event,
                "application/json",
                m["payload"].to_string().as_bytes(),
            )
        };
        wire.extend(encode(&msg));
    }
    wire
}

#[tokio::test]
async fn golden_streams() {
    let root = testdata("stream");
    for pair in subdirs(&root) {
        let (api, client) = pair.split_once("_to_").unwrap();
        let (api, client) = (api_of(api), client_of(client));
        let dir = root.join(&pair);
        for case in cases(&dir, ".in.json") {
            let wire = frames(&read_json(&dir.join(format!("{case}.in.json"))));
            let req = prepared(&dir, &case, client, api);
            let chunks: Vec<_> = wire
                .chunks(7)
                .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let adapter = SseFromFrames::new(
                StreamBody::new(futures_util::stream::iter(chunks)),
                frame_translator(api, ID, MODEL, req.converse_names.clone()),
                DEFAULT_MAX_MESSAGE,
            );
            let out = match client_stream(client, req.session.clone()) {
                Some(t) => {
                    Relay::translating(
                        adapter,
                        Dialect::Anthropic,
                        t,
                        dialect_of(client),
                        Duration::ZERO,
                        Box::new(|_| {}),
                    )
                    .collect()
                    .await
                }
                None => {
                    Relay::new(
                        adapter,
                        Dialect::Anthropic,
                        Duration::ZERO,
                        Box::new(|_| {}),
                    )
                    .collect()
                    .await
                }
            };
            let out = out.unwrap().to_bytes();
            check(
                &dir.join(format!("{case}.out.sse")),
                std::str::from_utf8(&out).unwrap(),
            );
        }
    }
}

#[test]
fn golden_front_requests() {
    let root = testdata("front/request");
    for op in subdirs(&root) {
        let dir = root.join(&op);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let result = match op.as_str() {
                "converse" => front_request::request_to_messages(&input, "routed-model", false),
                "converse_stream" => {
                    front_request::request_to_messages(&input, "routed-model", true)
                }
                "invoke" => invoke::request_to_messages(&input, "routed-model", false),
                "invoke_stream" => invoke::request_to_messages(&input, "routed-model", true),
                other => panic!("unknown op {other}"),
            };
            let out = match result {
                Ok((request, betas)) => json!({"request": request, "betas": betas}),
                Err(e) => json!({"error": e.to_string()}),
            };
            assert_eq!(
                case.starts_with("reject_"),
                out.get("error").is_some(),
                "{op}/{case}: {out}"
            );
            check(&dir.join(format!("{case}.out.json")), &pretty(&out));
        }
    }
}

#[test]
fn golden_front_responses() {
    let dir = testdata("front/response");
    for case in cases(&dir, ".in.json") {
        let input = read_json(&dir.join(format!("{case}.in.json")));
        let out = converse_response::response_from_messages(&input).unwrap();
        check(&dir.join(format!("{case}.out.json")), &pretty(&out));
    }
}

fn header_json(v: &HeaderValue) -> Value {
    match v {
        HeaderValue::String(s) => json!(s),
        other => json!(format!("{other:?}")),
    }
}

/// Decodes event-stream bytes into a readable list (chunk payloads decoded).
fn decode_all(wire: &[u8]) -> Value {
    let mut d = Decoder::default();
    d.feed(wire);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        let headers: serde_json::Map<String, Value> = m
            .headers
            .iter()
            .map(|h| (h.name.clone(), header_json(&h.value)))
            .collect();
        let mut payload: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        if let Some(b) = payload.get("bytes").and_then(Value::as_str) {
            let decoded: Value = serde_json::from_slice(&B64.decode(b).unwrap()).unwrap();
            payload = json!({"bytes (decoded)": decoded});
        }
        out.push(json!({"headers": headers, "payload": payload}));
    }
    d.finish().unwrap();
    Value::Array(out)
}

#[test]
fn golden_front_streams() {
    let root = testdata("front/stream");
    for op in subdirs(&root) {
        let dir = root.join(&op);
        for case in cases(&dir, ".in.sse") {
            let input = std::fs::read(dir.join(format!("{case}.in.sse"))).unwrap();
            let mut t: Box<dyn StreamTranslator> = match op.as_str() {
                "converse" => Box::new(front_stream::MessagesToConverseFrames::new()),
                "invoke" => Box::new(front_stream::MessagesToInvokeFrames::new()),
                other => panic!("unknown op {other}"),
            };
            let mut parser = SseParser::default();
            let mut wire = Vec::new();
            let mut upstream_error = false;
            for event in parser.feed(&input).into_iter().chain(parser.finish()) {
                let event = event.unwrap();
                upstream_error |= event.event.as_deref() == Some("error");
                t.event(&event, &mut wire);
            }
            // As the relay: an upstream cut without an error gets the gateway's.
            if !t.finished() && !upstream_error {
                t.error_event(
                    crate::wire::ErrorKind::Api,
                    "upstream stream ended before the response was complete",
                    &mut wire,
                );
            }
            check(
                &dir.join(format!("{case}.out.json")),
                &pretty(&decode_all(&wire)),
            );
        }
    }
}
