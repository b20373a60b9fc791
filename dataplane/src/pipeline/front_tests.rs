//! The Bedrock front door through the whole pipeline, in-process: Bedrock
//! requests in, whatever backend answers (Bedrock itself, Anthropic after
//! failover, OpenAI), Bedrock answers and errors out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::testing::{CLIENT_KEY, Harness, backend, read, route};
use crate::upstream::fake::{Reply, Step};
use crate::wire::eventstream::{Decoder, Kind};

const CLAUDE: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const CLAUDE_PATH: &str = "us.anthropic.claude-sonnet-4-20250514-v1%3A0";

fn bedrock(name: &str) -> Value {
    let mut b = backend(name, "Bedrock", &[]);
    b["spec"]["bedrock"] = json!({"region": "us-east-1"});
    b["spec"]["models"] = json!([{"name": "claude-sonnet-4", "providerModel": CLAUDE}]);
    b
}

/// Bedrock first, Anthropic second for `claude-sonnet-4`; Bedrock's Claude
/// ids and `gpt-4*` are aliased onto it; `gpt-4.1-mini` goes to OpenAI.
fn harness() -> Harness {
    let mut anthropic = backend("anthropic", "Anthropic", &[]);
    anthropic["spec"]["models"] =
        json!([{"name": "claude-sonnet-4", "providerModel": "claude-sonnet-4-20250514"}]);
    let mut r = route(&["claude-*"], &["bedrock", "anthropic"]);
    r["spec"]["aliases"] = json!([
        {"pattern": "*anthropic.claude-sonnet-4*", "target": "claude-sonnet-4"},
        {"pattern": "gpt-4*", "target": "claude-sonnet-4"},
        {"pattern": "gpt-4.1-mini", "target": "gpt-4.1-mini"},
    ]);
    r["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"models": ["gpt-4.1-mini"], "backends": [{"name": "openai"}]}));
    Harness::new(&[
        bedrock("bedrock"),
        anthropic,
        backend("openai", "OpenAI", &["gpt-4.1-mini"]),
        r,
    ])
}

async fn call(
    h: &Harness,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::post(path).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    read(h.send(req).await).await
}

/// (event type or exception type, payload) of every message.
fn frames(body: &[u8]) -> Vec<(String, Value)> {
    let mut d = Decoder::default();
    d.feed(body);
    let mut out = Vec::new();
    while let Some(m) = d.next_message().expect("valid framing") {
        let payload: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        let name = match m.kind() {
            Kind::Event(e) => e.to_string(),
            Kind::Exception(e) => format!("exception:{e}"),
            other => format!("{other:?}"),
        };
        out.push((name, payload));
    }
    d.finish().expect("no partial message");
    out
}

/// The Anthropic events inside InvokeModel `chunk`s.
fn chunk_events(body: &[u8]) -> Vec<Value> {
    frames(body)
        .into_iter()
        .map(|(name, payload)| {
            assert_eq!(name, "chunk");
            let bytes = B64.decode(payload["bytes"].as_str().unwrap()).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        })
        .collect()
}

fn chunk_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
        .collect()
}

fn invoke_body() -> Value {
    json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64,
           "anthropic_beta": ["interleaved-thinking-2025-05-14", "claude-code-20250219"],
           "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test(start_paused = true)]
async fn claude_code_in_bedrock_mode_streams_through_bedrock() {
    let h = harness();
    h.upstream.set_default("bedrock", Reply::ok("from bedrock"));
    // Claude Code: the model id not URL-encoded, nothing signed, the token
    // in a custom header (ANTHROPIC_CUSTOM_HEADERS).
    let (status, headers, body) = call(
        &h,
        &format!("/model/{CLAUDE}/invoke-with-response-stream"),
        &invoke_body(),
        &[
            ("x-api-key", CLIENT_KEY),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "claude-code-20250219"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let events = chunk_events(&body);
    assert_eq!(chunk_text(&events), "from bedrock");
    assert_eq!(events.last().unwrap()["type"], "message_stop");

    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(
        sent.path,
        format!("/model/{CLAUDE_PATH}/invoke-with-response-stream")
    );
    assert_eq!(sent.body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(
        sent.body["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14"]),
        "header and body betas merged, then Bedrock's allowlist"
    );
    assert_eq!(sent.headers["authorization"], "Bearer sk-provider-test");
}

#[tokio::test(start_paused = true)]
async fn failover_mid_chain_still_answers_in_bedrock_framing() {
    let h = harness();
    h.upstream.set_default(
        "bedrock",
        Reply::Respond {
            status: 429,
            headers: vec![
                ("content-type", "application/json".into()),
                ("x-amzn-errortype", "ThrottlingException".into()),
            ],
            body: vec![Step::Data(Bytes::from_static(
                br#"{"message":"Too many requests"}"#,
            ))],
        },
    );
    h.upstream
        .set_default("anthropic", Reply::ok("from anthropic"));
    let (status, _, body) = call(
        &h,
        &format!("/model/{CLAUDE_PATH}/invoke-with-response-stream"),
        &invoke_body(),
        &[("authorization", &format!("Bearer {CLIENT_KEY}"))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chunk_text(&chunk_events(&body)), "from anthropic");
    let sent = h
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.host == "anthropic")
        .unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["model"], "claude-sonnet-4-20250514");
    assert_eq!(sent.body["stream"], true);
    assert!(sent.body.get("anthropic_version").is_none());
    assert_eq!(
        sent.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14,claude-code-20250219"
    );

    // Non-streaming InvokeModel: the Anthropic message as it is.
    let (status, headers, body) = call(
        &h,
        &format!("/model/{CLAUDE_PATH}/invoke"),
        &invoke_body(),
        &[("x-api-key", CLIENT_KEY)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["content"][0]["text"], "from anthropic");
    assert_eq!(v["type"], "message");
}

#[tokio::test(start_paused = true)]
async fn converse_clients_get_converse_answers_from_any_backend() {
    let h = harness();
    h.upstream
        .set_default("openai", Reply::ok("openai says hi"));
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                      "inferenceConfig": {"maxTokens": 32}});
    // A SigV4-signing client (boto3 over http) with the gateway key in x-api-key.
    let sigv4 = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
    let auth = [("authorization", sigv4), ("x-api-key", CLIENT_KEY)];
    let (status, _, out) = call(&h, "/model/gpt-4.1-mini/converse", &body, &auth).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["output"]["message"]["content"],
        json!([{"text": "openai says hi"}])
    );
    assert_eq!(v["stopReason"], "end_turn");
    assert!(v["usage"]["inputTokens"].as_u64().unwrap() > 0, "{v}");
    let sent = &h.upstream.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert!(
        sent.headers.get("authorization").unwrap() != sigv4,
        "the client's signature never goes upstream"
    );

    let (status, headers, out) =
        call(&h, "/model/gpt-4.1-mini/converse-stream", &body, &auth).await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let events = frames(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"messageStart"), "{names:?}");
    assert_eq!(&names[names.len() - 2..], ["messageStop", "metadata"]);
    let text: String = events
        .iter()
        .filter_map(|(_, p)| p.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, "openai says hi");
}

#[tokio::test(start_paused = true)]
async fn gpt_4_is_aliased_onto_bedrock_claude() {
    let h = harness();
    h.upstream
        .set_default("bedrock", Reply::ok("claude on bedrock"));
    let body = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]});
    let (status, _, out) = call(
        &h,
        "/model/gpt-4o/converse",
        &body,
        &[("x-api-key", CLIENT_KEY)],
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        "claude on bedrock"
    );
    let sent = &h.upstream.requests()[0];
    assert_eq!(sent.host, "bedrock");
    assert_eq!(sent.path, format!("/model/{CLAUDE_PATH}/invoke"));
}

#[tokio::test(start_paused = true)]
async fn errors_are_in_bedrocks_shape() {
    let h = harness();
    // No gateway credential (a SigV4 signature is not one).
    let (status, headers, body) = call(
        &h,
        &format!("/model/{CLAUDE_PATH}/invoke"),
        &invoke_body(),
        &[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/x, Signature=y",
        )],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(headers["x-amzn-errortype"], "UnrecognizedClientException");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["message"].as_str().is_some() && v.get("error").is_none(),
        "{v}"
    );

    // An unknown model.
    let (status, headers, _) = call(
        &h,
        "/model/meta.llama3-70b-instruct-v1%3A0/converse",
        &json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}),
        &[("x-api-key", CLIENT_KEY)],
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-amzn-errortype"], "ResourceNotFoundException");

    // A body that is not a Converse request.
    let (status, headers, body) = call(
        &h,
        "/model/gpt-4o/converse",
        &json!({"messages": "nope"}),
        &[("x-api-key", CLIENT_KEY)],
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["x-amzn-errortype"], "ValidationException");

    // Every candidate down: the upstream's error, as Bedrock's.
    h.upstream.set_default("bedrock", Reply::status(503));
    h.upstream.set_default("anthropic", Reply::status(503));
    let (status, headers, _) = call(
        &h,
        &format!("/model/{CLAUDE_PATH}/invoke"),
        &invoke_body(),
        &[("x-api-key", CLIENT_KEY)],
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers["x-amzn-errortype"], "ServiceUnavailableException");
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_breaks_midway_ends_with_an_exception_message() {
    let mut r = route(&["claude-*"], &["anthropic"]);
    r["spec"]["retry"] = json!({"backoff": "10ms", "streamContinuation": "Off"});
    let h = Harness::new(&[backend("anthropic", "Anthropic", &["claude-sonnet-4"]), r]);
    fn cut(mut steps: Vec<Step>) -> Vec<Step> {
        steps.truncate(5);
        steps.push(Step::Cut);
        steps
    }
    h.upstream
        .set_default("anthropic", Reply::Shaped("one two three four".into(), cut));
    let (status, _, body) = call(
        &h,
        "/model/claude-sonnet-4/invoke-with-response-stream",
        &invoke_body(),
        &[("x-api-key", CLIENT_KEY)],
    )
    .await;
    assert_eq!(status, 200);
    let events = frames(&body);
    let (last, payload) = events.last().unwrap();
    assert!(last.starts_with("exception:"), "{events:?}");
    assert!(payload["message"].as_str().is_some());
    assert!(
        events.iter().all(|(n, p)| n != "chunk"
            || !String::from_utf8_lossy(&B64.decode(p["bytes"].as_str().unwrap()).unwrap())
                .contains("message_stop")),
        "no fake end of stream"
    );
}
