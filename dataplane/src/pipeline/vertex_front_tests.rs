//! The Vertex front door through the whole pipeline, in-process: Vertex
//! Claude requests in (`rawPredict`, `streamRawPredict`,
//! `count-tokens:rawPredict`), routed by the path's model through aliases
//! and rules, answered in Anthropic's format whichever backend served them.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::testing::{CLIENT_KEY, Harness, backend, read, route};
use crate::upstream::fake::Reply;

const BASE: &str = "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models";

/// `claude-*` → Anthropic then OpenAI; the Vertex-only alias `claude-opus-4@20250514`
/// → `gpt-4.1` on OpenAI.
fn harness() -> Harness {
    let mut r = route(&["claude-*"], &["anthropic", "openai"]);
    r["spec"]["aliases"] = json!([{"pattern": "claude-opus-4@20250514", "target": "gpt-4.1"}]);
    r["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"models": ["gpt-4.1"], "backends": [{"name": "openai"}]}));
    Harness::new(&[
        backend("anthropic", "Anthropic", &["claude-sonnet-4-20250514"]),
        backend("openai", "OpenAI", &["claude-sonnet-4-20250514", "gpt-4.1"]),
        r,
    ])
}

/// The text deltas of an Anthropic stream, joined.
fn stream_text(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/delta/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

/// A Vertex body as `AnthropicVertex` sends it: no `model`, `anthropic_version`.
fn vertex_body(stream: bool) -> Value {
    let mut b = json!({"anthropic_version": "vertex-2023-10-16", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}]});
    if stream {
        b["stream"] = json!(true);
    }
    b
}

async fn call(
    h: &Harness,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    read(h.send(req).await).await
}

#[tokio::test(start_paused = true)]
async fn raw_predict_is_a_messages_request_for_the_paths_model() {
    let h = harness();
    h.upstream
        .set_default("anthropic", Reply::ok("hello from claude"));
    let (status, headers, body) = call(
        &h,
        &format!("{BASE}/claude-sonnet-4@20250514:rawPredict"),
        &vertex_body(false),
        Some(CLIENT_KEY),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "hello from claude");
    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(sent.host, "anthropic");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["model"], "claude-sonnet-4-20250514");
    assert!(
        sent.body.get("anthropic_version").is_none(),
        "{}",
        sent.body
    );
    assert!(sent.body.get("stream").is_none());
    assert_ne!(
        sent.headers["x-api-key"], CLIENT_KEY,
        "the gateway token stays at the gateway"
    );
    assert!(sent.headers.get("authorization").is_none());
}

#[tokio::test(start_paused = true)]
async fn stream_raw_predict_streams_anthropic_events_from_any_backend() {
    let h = harness();
    // Anthropic fails: OpenAI answers, translated back to Anthropic SSE.
    h.upstream.set_default("anthropic", Reply::status(529));
    h.upstream.set_default("openai", Reply::ok("from openai"));
    let mut body = vertex_body(true);
    body["anthropic_beta"] = json!(["interleaved-thinking-2025-05-14"]);
    let (status, headers, out) = call(
        &h,
        &format!("{BASE}/claude-sonnet-4%4020250514:streamRawPredict"),
        &body,
        Some(CLIENT_KEY),
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert_eq!(stream_text(&text), "from openai");
    assert!(
        text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{text}"
    );
    let sent = h.upstream.requests();
    assert_eq!(sent[0].host, "anthropic");
    assert_eq!(sent[0].body["stream"], true);
    assert_eq!(
        sent[0].headers["anthropic-beta"], "interleaved-thinking-2025-05-14",
        "the body's betas travel as the header"
    );
    assert!(sent[0].body.get("anthropic_beta").is_none());
    let last = sent.last().unwrap();
    assert_eq!(last.host, "openai");
    assert_eq!(last.body["model"], "claude-sonnet-4-20250514");
}

#[tokio::test(start_paused = true)]
async fn count_tokens_reads_the_model_from_the_body() {
    let h = harness();
    h.upstream
        .set_default("anthropic", Reply::json(200, &json!({"input_tokens": 17})));
    let mut body = vertex_body(false);
    body["model"] = json!("claude-sonnet-4@20250514");
    let (status, _, out) = call(
        &h,
        &format!("{BASE}/count-tokens:rawPredict"),
        &body,
        Some(CLIENT_KEY),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v, json!({"input_tokens": 17}));
    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert_eq!(sent.body["model"], "claude-sonnet-4-20250514");
    assert!(sent.body.get("anthropic_version").is_none());

    let (status, _, out) = call(
        &h,
        &format!("{BASE}/count-tokens:rawPredict"),
        &vertex_body(false),
        Some(CLIENT_KEY),
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("model"),
        "{v}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_vertex_only_alias_keeps_the_vertex_id() {
    let h = harness();
    h.upstream
        .set_default("openai", Reply::ok("opus via alias"));
    let (status, _, out) = call(
        &h,
        "/v1/projects/p/locations/global/publishers/anthropic/models/claude-opus-4@20250514:rawPredict",
        &vertex_body(false),
        Some(CLIENT_KEY),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["type"], "message", "answered in Anthropic's format: {v}");
    assert_eq!(v["content"][0]["text"], "opus via alias");
    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(sent.host, "openai");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4.1");
}

#[tokio::test(start_paused = true)]
async fn errors_are_anthropic_errors() {
    let h = harness();
    let claude = format!("{BASE}/claude-sonnet-4@20250514:rawPredict");
    let cases = [
        // No gateway credential, a wrong one.
        (claude.clone(), None, 401, Some("authentication_error")),
        (claude, Some("wrong"), 401, Some("authentication_error")),
        // A model no rule serves: reported in its Anthropic spelling.
        (
            format!("{BASE}/mistral-large@2407:rawPredict"),
            Some(CLIENT_KEY),
            404,
            None,
        ),
        // Not a Claude operation: an unknown endpoint, in Anthropic's shape.
        (
            format!("{BASE}/claude-sonnet-4@20250514:predict"),
            Some(CLIENT_KEY),
            404,
            None,
        ),
    ];
    for (path, key, want, error_type) in cases {
        let (status, _, out) = call(&h, &path, &vertex_body(false), key).await;
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(status, want, "{path} {key:?}: {v}");
        assert_eq!(v["type"], "error", "{path} {key:?}: {v}");
        if let Some(t) = error_type {
            assert_eq!(v["error"]["type"], t, "{path} {key:?}: {v}");
        }
    }
    assert!(h.upstream.requests().is_empty());
}

#[tokio::test(start_paused = true)]
async fn upstream_errors_reach_the_client_in_anthropics_shape() {
    let h = harness();
    // An Anthropic backend's error passes unmodified (Claude Code matches on its wording).
    let prompt_too_long = json!({"type": "error", "error": {"type": "invalid_request_error",
        "message": "prompt is too long: 250000 tokens > 200000 maximum"}});
    h.upstream
        .set_default("anthropic", Reply::json(400, &prompt_too_long));
    let (status, _, out) = call(
        &h,
        &format!("{BASE}/claude-sonnet-4@20250514:rawPredict"),
        &vertex_body(false),
        Some(CLIENT_KEY),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap(),
        prompt_too_long
    );

    // Another backend's error is translated to Anthropic's shape.
    let h = harness();
    h.upstream.set_default("anthropic", Reply::status(503));
    h.upstream.set_default("openai", Reply::status(400));
    let (status, _, out) = call(
        &h,
        &format!("{BASE}/claude-sonnet-4@20250514:rawPredict"),
        &vertex_body(false),
        Some(CLIENT_KEY),
    )
    .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}
