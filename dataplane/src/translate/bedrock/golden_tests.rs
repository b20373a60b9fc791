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

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::*;
use crate::testing::golden::{Golden, cases, client_format, in_pieces, read_json, subdirs};
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

fn golden() -> Golden {
    Golden::new("src/translate/bedrock/testdata")
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
    let root = golden().path("request");
    for pair in subdirs(&root) {
        let (client, api) = pair.split_once("_to_").unwrap();
        let dir = root.join(&pair);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let out = match request(
                client_format(client),
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
            golden().check_json(&dir.join(format!("{case}.out.json")), &out);
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
    let root = golden().path("response");
    for pair in subdirs(&root) {
        let (api, client) = pair.split_once("_to_").unwrap();
        let (api, client) = (api_of(api), client_format(client));
        let dir = root.join(&pair);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let req = prepared(&dir, &case, client, api);
            let out = response(client, api, &input, &req, ID, MODEL).unwrap();
            golden().check_json(&dir.join(format!("{case}.out.json")), &out);
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
    let root = golden().path("stream");
    for pair in subdirs(&root) {
        let (api, client) = pair.split_once("_to_").unwrap();
        let (api, client) = (api_of(api), client_format(client));
        let dir = root.join(&pair);
        for case in cases(&dir, ".in.json") {
            let wire = frames(&read_json(&dir.join(format!("{case}.in.json"))));
            let req = prepared(&dir, &case, client, api);
            let adapter = SseFromFrames::new(
                in_pieces(&wire, 7),
                frame_translator(api, ID, MODEL, req.converse_names.clone()),
                DEFAULT_MAX_MESSAGE,
            );
            let out = match client_stream(client, req.session.clone()) {
                Some(t) => {
                    Relay::translating(
                        adapter,
                        Dialect::Anthropic,
                        t,
                        client.dialect(),
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
            golden().check(
                &dir.join(format!("{case}.out.sse")),
                std::str::from_utf8(&out).unwrap(),
            );
        }
    }
}

#[test]
fn golden_front_requests() {
    let root = golden().path("front/request");
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
            golden().check_json(&dir.join(format!("{case}.out.json")), &out);
        }
    }
}

#[test]
fn golden_front_responses() {
    let dir = golden().path("front/response");
    for case in cases(&dir, ".in.json") {
        let input = read_json(&dir.join(format!("{case}.in.json")));
        let out = converse_response::response_from_messages(&input).unwrap();
        golden().check_json(&dir.join(format!("{case}.out.json")), &out);
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
    let root = golden().path("front/stream");
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
            golden().check_json(&dir.join(format!("{case}.out.json")), &decode_all(&wire));
        }
    }
}
