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

use std::path::Path;
use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::json;

use super::*;
use crate::testing::golden::{Golden, cases, client_format, in_pieces, read_json, subdirs};
use crate::wire::Dialect;
use crate::wire::relay::Relay;
use crate::wire::sse::SseParser;

const CREATED: u64 = 1_700_000_000;
const MODEL: &str = "gemini-2.5-pro";
const MODEL_3: &str = "gemini-3-pro-preview";

fn golden() -> Golden {
    Golden::new("src/translate/gemini/testdata")
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
    let root = golden().path("request");
    for client in subdirs(&root) {
        let dir = root.join(&client);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let (model, opts) = model_and_options(&case);
            let out = match request(client_format(&client), &input, model, &opts, CREATED) {
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
            golden().check_json(&dir.join(format!("{case}.out.json")), &out);
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
    let root = golden().path("response");
    for name in subdirs(&root) {
        let client = client_format(&name);
        let dir = root.join(&name);
        for case in cases(&dir, ".in.json") {
            let input = read_json(&dir.join(format!("{case}.in.json")));
            let req = prepared(&dir, &case, client);
            let out = response(client, &input, &req, MODEL).unwrap();
            golden().check_json(&dir.join(format!("{case}.out.json")), &out);
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
    let root = golden().path("stream");
    for name in subdirs(&root) {
        let client = client_format(&name);
        let dir = root.join(&name);
        for case in cases(&dir, ".in.sse") {
            let wire = std::fs::read_to_string(dir.join(format!("{case}.in.sse"))).unwrap();
            let req = prepared(&dir, &case, client);
            let anthropic = anthropic_sse(&wire, &req, client);
            let body = in_pieces(&anthropic, 7);
            let out = match client_stream(client, req.session.clone()) {
                Some(t) => {
                    Relay::translating(
                        body,
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
                    Relay::new(body, Dialect::Anthropic, Duration::ZERO, Box::new(|_| {}))
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

/// The one-translator form gives the client what the two stages give.
#[test]
fn the_chained_translator_matches_the_two_stages() {
    let dir = golden().path("stream/chat");
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
