//! Golden fixtures for the Gemini translations (`testdata/`;
//! `UPDATE_GOLDEN=1` rewrites the expected files; review the diff):
//!
//! - `request/<client>/<case>.in.json` → `<case>.out.json`: the client's
//!   request and the `generateContent` body (or `{"error": …}` for cases
//!   named `reject_…`). The model is `gemini-2.5-pro`, or
//!   `gemini-3-pro-preview` for cases named `gemini3_…` (unsigned calls get
//!   the sentinel signature);
//! - `response/<client>/<case>.in.json` → `<case>.out.json`: a Gemini
//!   answer and what the client receives (`<case>.request.json` is the
//!   client's request);
//! - `stream/<client>/<case>.in.sse` → `<case>.out.sse`: a Gemini SSE
//!   answer as the service sends it, cut into 7-byte pieces, through
//!   [`stream::GeminiToAnthropic`] and the real relay with the client's
//!   translation.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

use super::*;
use crate::wire::Dialect;
use crate::wire::relay::Relay;
use crate::wire::sse::SseParser;

const CREATED: u64 = 1_700_000_000;
const MODEL: &str = "gemini-2.5-pro";
const MODEL_3: &str = "gemini-3-pro-preview";

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/translate/gemini/testdata")
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

fn model_and_options(case: &str) -> (&'static str, GeminiOptions) {
    let model = if case.starts_with("gemini3_") {
        MODEL_3
    } else {
        MODEL
    };
    (
        model,
        GeminiOptions {
            default_max_tokens: 0,
            sentinel_signatures: needs_signatures(model),
        },
    )
}

#[test]
fn golden_requests() {
    let root = testdata("request");
    for client in subdirs(&root) {
        let dir = root.join(&client);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let (model, opts) = model_and_options(&case);
            let out = match request(client_of(&client), &input, model, &opts, CREATED) {
                Ok(r) => {
                    let mut out = json!({"body": r.body});
                    if !r.names.is_empty() {
                        out["renamed_tools"] = json!(true);
                    }
                    out
                }
                Err(e) => json!({"error": e.to_string()}),
            };
            assert_eq!(
                case.starts_with("reject_"),
                out.get("error").is_some(),
                "{client}/{case}: {out}"
            );
            check(&dir.join(format!("{case}.out.json")), &pretty(&out));
        }
    }
}

fn prepared(dir: &Path, case: &str, client: ApiFormat) -> GeminiRequest {
    let req = read_json(&dir.join(format!("{case}.request.json")));
    let (model, opts) = model_and_options(case);
    request(client, &req, model, &opts, CREATED).unwrap()
}

#[test]
fn golden_responses() {
    let root = testdata("response");
    for name in subdirs(&root) {
        let client = client_of(&name);
        let dir = root.join(&name);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let req = prepared(&dir, &case, client);
            let out = response(client, &input, &req, MODEL).unwrap();
            check(&dir.join(format!("{case}.out.json")), &pretty(&out));
        }
    }
}

/// A Gemini SSE text through the Gemini stage, in 7-byte pieces (with the
/// thinking tokens in the usage for OpenAI-format clients, as the provider
/// does).
fn anthropic_sse(wire: &str, req: &GeminiRequest, client: ApiFormat) -> Vec<u8> {
    let mut parser = SseParser::default();
    let mut t = stream::GeminiToAnthropic::new(MODEL, req.names.clone());
    if client_stream(client, req.session.clone()).is_some() {
        t = t.with_reasoning_usage();
    }
    let mut out = Vec::new();
    for piece in wire.as_bytes().chunks(7) {
        for event in parser.feed(piece) {
            t.event(&event.unwrap(), &mut out);
        }
    }
    if let Some(event) = parser.finish() {
        t.event(&event.unwrap(), &mut out);
    }
    out
}

#[tokio::test]
async fn golden_streams() {
    let root = testdata("stream");
    for name in subdirs(&root) {
        let client = client_of(&name);
        let dir = root.join(&name);
        for case in cases(&dir, ".in.sse") {
            let wire = std::fs::read_to_string(dir.join(format!("{case}.in.sse"))).unwrap();
            let req = prepared(&dir, &case, client);
            let anthropic = anthropic_sse(&wire, &req, client);
            let chunks: Vec<_> = anthropic
                .chunks(7)
                .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let body = StreamBody::new(futures_util::stream::iter(chunks));
            let out = match client_stream(client, req.session.clone()) {
                Some(t) => {
                    Relay::translating(
                        body,
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
                    Relay::new(body, Dialect::Anthropic, Duration::ZERO, Box::new(|_| {}))
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

/// The one-translator form gives the client what the two stages give.
#[test]
fn the_chained_translator_matches_the_two_stages() {
    let dir = testdata("stream/chat");
    let case = "text_tool_usage";
    let wire = std::fs::read_to_string(dir.join(format!("{case}.in.sse"))).unwrap();
    let req = prepared(&dir, case, ApiFormat::ChatCompletions);
    let mut parser = SseParser::default();
    let mut t = stream_translator(ApiFormat::ChatCompletions, &req, MODEL);
    let mut out = Vec::new();
    for event in parser.feed(wire.as_bytes()) {
        t.event(&event.unwrap(), &mut out);
    }
    let text = String::from_utf8(out).unwrap();
    let want = std::fs::read_to_string(dir.join(format!("{case}.out.sse"))).unwrap();
    assert_eq!(text, want);
}

#[test]
fn count_tokens_both_shapes() {
    let body = json!({"model": "gemini-2.5-pro", "system": "be brief",
        "messages": [{"role": "user", "content": "hello"}],
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "string"}}}}]});
    let vertex = count_tokens_request(&body, "gemini-2.5-pro", CountTokensShape::Vertex).unwrap();
    assert_eq!(
        vertex,
        json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}]}]})
    );
    let api =
        count_tokens_request(&body, "models/gemini-2.5-pro", CountTokensShape::GeminiApi).unwrap();
    assert_eq!(
        api["generateContentRequest"]["model"],
        "models/gemini-2.5-pro"
    );
    assert_eq!(
        api["generateContentRequest"]["contents"],
        vertex["contents"]
    );
    assert_eq!(
        count_tokens_response(&json!({"totalTokens": 31, "totalBillableCharacters": 96})).unwrap(),
        json!({"input_tokens": 31})
    );
    assert!(count_tokens_response(&json!({})).is_err());
}
