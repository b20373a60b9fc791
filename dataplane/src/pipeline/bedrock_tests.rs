//! Bedrock as an upstream through the whole pipeline, in-process: the
//! requests the provider builds (path, body, credential), its answers
//! decoded for every client format (the fake answers in Bedrock's real
//! framing, event streams included), and its errors in the failover loop.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

use super::testing::{
    CLIENT_KEY, Harness, backend, chat, chat_stream_text, messages, metric, read, route,
};
use crate::upstream::fake::{Reply, Step};
use crate::wire::eventstream::{encode, event_message, exception_message};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
const CLAUDE: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";
const NOVA: &str = "amazon.nova-pro-v1:0";

/// A Bedrock AIBackend at `http://{name}` with a Bedrock API key, serving
/// `claude-test` (InvokeModel) and `nova` (Converse).
fn bedrock(name: &str) -> Value {
    let mut b = backend(name, "Bedrock", &[]);
    b["spec"]["bedrock"] = json!({"region": "us-east-1"});
    b["spec"]["models"] = json!([
        {"name": "claude-test", "providerModel": CLAUDE},
        {"name": "nova", "providerModel": NOVA},
    ]);
    b
}

/// Bedrock first, Anthropic second, for `claude-*` and `nova`.
fn bedrock_first() -> Harness {
    Harness::new(&[
        bedrock("primary"),
        backend("secondary", "Anthropic", &["claude-test"]),
        route(&["claude-*", "nova"], &["primary", "secondary"]),
    ])
}

fn bedrock_error(status: u16, exception: &str, message: &str) -> Reply {
    Reply::Respond {
        status,
        headers: vec![
            ("content-type", "application/json".into()),
            (
                "x-amzn-errortype",
                format!("{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            ),
        ],
        body: vec![Step::Data(Bytes::from(
            json!({ "message": message }).to_string(),
        ))],
    }
}

/// The text of an Anthropic SSE stream.
fn anthropic_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(t) = v.pointer("/delta/text").and_then(Value::as_str) {
            out.push_str(t);
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_messages_stream_goes_through_invoke_model() {
    let h = bedrock_first();
    h.upstream.set_default("primary", Reply::ok("from bedrock"));
    let req = Request::post(MESSAGES)
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({"model": "claude-test", "max_tokens": 64, "stream": true, "metadata": {"user_id": "u"},
                   "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        )))
        .unwrap();
    let (status, headers, body) = read(h.send(req).await).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(anthropic_text(&body), "from bedrock");
    assert!(
        String::from_utf8_lossy(&body)
            .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    );

    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(
        sent.path,
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream"
    );
    assert_eq!(sent.headers["authorization"], "Bearer sk-provider-test");
    assert_eq!(sent.headers["accept"], "application/vnd.amazon.eventstream");
    assert!(
        sent.headers.get("x-api-key").is_none(),
        "the client's key stays"
    );
    assert!(sent.headers.get("anthropic-beta").is_none());
    assert_eq!(sent.body["anthropic_version"], "bedrock-2023-05-31");
    assert_eq!(
        sent.body["anthropic_beta"],
        json!(["interleaved-thinking-2025-05-14"])
    );
    for gone in ["model", "stream", "metadata"] {
        assert!(sent.body.get(gone).is_none(), "{gone}: {}", sent.body);
    }
    let m = h.metrics();
    assert_eq!(
        metric(
            &m,
            "switchboard_upstream_attempts_total",
            &[("provider", "bedrock"), ("outcome", "ok")]
        ),
        1.0,
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn chat_clients_get_converse_answers_whole_and_streamed() {
    let h = bedrock_first();
    h.upstream.set_default("primary", Reply::ok("nova says hi"));
    let (status, _, body) = h.post(CHAT, &chat("nova", false)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "nova says hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{v}");
    let sent = &h.upstream.requests()[0];
    assert_eq!(sent.path, "/model/amazon.nova-pro-v1%3A0/converse");
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": [{"text": "hi"}]}])
    );

    let (status, _, body) = h.post(CHAT, &chat("nova", true)).await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&body), "nova says hi");
    assert!(String::from_utf8_lossy(&body).ends_with("data: [DONE]\n\n"));
    assert_eq!(
        h.upstream.requests()[1].path,
        "/model/amazon.nova-pro-v1%3A0/converse-stream"
    );
}

#[tokio::test(start_paused = true)]
async fn throttling_fails_over_to_anthropic_at_once() {
    let h = bedrock_first();
    h.upstream.set_default(
        "primary",
        bedrock_error(
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
    );
    h.upstream
        .set_default("secondary", Reply::ok("from anthropic"));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", false)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["content"][0]["text"], "from anthropic");
    assert_eq!(
        h.upstream.count("primary"),
        1,
        "no retry of a throttled backend"
    );
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_failovers_total",
            &[
                ("from_backend", "default/primary"),
                ("reason", "status_429")
            ]
        ),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn service_unavailable_and_model_not_ready_fail_over() {
    for (status, name) in [
        (503, "ServiceUnavailableException"),
        (429, "ModelNotReadyException"),
    ] {
        let h = bedrock_first();
        h.upstream
            .set_default("primary", bedrock_error(status, name, "not now"));
        h.upstream.set_default("secondary", Reply::ok("fallback"));
        let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(anthropic_text(&body), "fallback", "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_gateways_refused_credential_or_model_is_a_503() {
    for (status, name) in [
        (403, "AccessDeniedException"),
        (404, "ResourceNotFoundException"),
        (403, "UnrecognizedClientException"),
    ] {
        let h = Harness::new(&[bedrock("primary"), route(&["claude-*"], &["primary"])]);
        h.upstream.set_default(
            "primary",
            bedrock_error(status, name, "You don't have access to the model"),
        );
        let (status, _, body) = h.post(MESSAGES, &messages("claude-test", false)).await;
        assert_eq!(status, 503, "{name}: {}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert!(
            !String::from_utf8_lossy(&body).contains("access to the model"),
            "the provider's refusal is not the caller's business: {v}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_context_length_validation_error_goes_to_the_context_fallback() {
    let mut r = route(&["claude-*"], &["primary"]);
    r["spec"]["rules"][0]["contextFallback"] = json!([{"name": "secondary"}]);
    let h = Harness::new(&[
        bedrock("primary"),
        backend("secondary", "Anthropic", &["claude-test"]),
        r,
    ]);
    h.upstream.set_default(
        "primary",
        bedrock_error(
            400,
            "ValidationException",
            "Input is too long for requested model.",
        ),
    );
    h.upstream
        .set_default("secondary", Reply::ok("bigger window"));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["content"][0]["text"], "bigger window");
}

#[tokio::test(start_paused = true)]
async fn other_validation_errors_reach_the_client_in_its_dialect() {
    let h = bedrock_first();
    h.upstream.set_default(
        "primary",
        bedrock_error(400, "ValidationException", "invalid beta flag"),
    );
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", false)).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert_eq!(v["error"]["message"], "invalid beta flag");
    assert_eq!(h.upstream.count("secondary"), 0);

    let (status, _, body) = h.post(CHAT, &chat("claude-test", false)).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["message"], "invalid beta flag", "{v}");
}

#[tokio::test(start_paused = true)]
async fn an_exception_before_any_content_fails_over() {
    let h = bedrock_first();
    let start = json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"usage":{"input_tokens":3,"output_tokens":1}}});
    let chunk = |v: &Value| {
        use base64::Engine as _;
        let payload =
            json!({"bytes": base64::engine::general_purpose::STANDARD.encode(v.to_string())});
        Step::Data(Bytes::from(encode(&event_message(
            "chunk",
            "application/json",
            payload.to_string().as_bytes(),
        ))))
    };
    h.upstream.set_default(
        "primary",
        Reply::Respond {
            status: 200,
            headers: vec![(
                "content-type",
                crate::wire::eventstream::CONTENT_TYPE.into(),
            )],
            body: vec![
                chunk(&start),
                Step::Data(Bytes::from(encode(&exception_message(
                    "throttlingException",
                    "Too many tokens, please wait before trying again.",
                )))),
            ],
        },
    );
    h.upstream.set_default("secondary", Reply::ok("steady"));
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&body), "steady");
    assert!(!String::from_utf8_lossy(&body).contains("event: error"));
    assert_eq!(
        h.upstream.count("primary"),
        1,
        "a throttled stream is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn an_exception_after_content_is_the_clients_in_band_error() {
    let mut r = route(&["claude-*"], &["primary"]);
    r["spec"]["retry"] = json!({"backoff": "10ms", "streamContinuation": "Off"});
    let h = Harness::new(&[bedrock("primary"), r]);
    fn cut(mut steps: Vec<Step>) -> Vec<Step> {
        steps.truncate(4);
        steps.push(Step::Data(Bytes::from(encode(&exception_message(
            "modelStreamErrorException",
            "the model broke",
        )))));
        steps
    }
    h.upstream.set_default(
        "primary",
        Reply::Shaped("one two three four five".into(), cut),
    );
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_mock_emulating_bedrock_answers_in_bedrock_framing_and_fails_on_demand() {
    let mock = |name: &str, emulate: &str, fail_on: Option<&str>| {
        let mut m = json!({"emulate": emulate, "reply": format!("from the {emulate} mock")});
        if let Some(f) = fail_on {
            m["failOn"] = json!(f);
            m["failStatus"] = json!(429);
        }
        json!({
            "apiVersion": "switchboard.dev/v1alpha1",
            "kind": "AIBackend",
            "metadata": {"name": name},
            "spec": {"provider": "Mock", "mock": m,
                     "models": [{"name": "claude-test", "providerModel": CLAUDE}]}
        })
    };
    let h = Harness::new(&[
        mock("bedrock", "Bedrock", Some("BEDROCK DOWN")),
        mock("anthropic", "Anthropic", None),
        route(&["claude-*"], &["bedrock", "anthropic"]),
    ]);
    let (status, _, body) = h.post(MESSAGES, &messages("claude-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&body), "from the Bedrock mock");
    let (status, _, body) = h.post(CHAT, &chat("claude-test", false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "from the Bedrock mock"
    );

    let mut down = messages("claude-test", true);
    down["messages"][0]["content"] = json!("BEDROCK DOWN: who answers?");
    let (status, _, body) = h.post(MESSAGES, &down).await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&body), "from the Anthropic mock");
    assert_eq!(
        metric(
            &h.metrics(),
            "switchboard_failovers_total",
            &[
                ("from_backend", "default/bedrock"),
                ("reason", "status_429")
            ]
        ),
        1.0
    );
    assert!(
        h.upstream.requests().is_empty(),
        "mocks never use the network transport"
    );
}
