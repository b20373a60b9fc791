//! Vertex AI and the Gemini API as upstreams through the whole pipeline,
//! in-process: the requests the providers build (path, body, headers), the
//! answers decoded for every client format (the fake answers in Google's
//! real framing: `generateContent` JSON, `alt=sse` streams, Claude's
//! Anthropic answers on Vertex), usage with cached and thinking tokens, and
//! Google's errors in the failover loop.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

use super::testing::{
    CLIENT_KEY, Harness, backend, chat, chat_stream_text, messages, metric, read, route,
};
use crate::upstream::fake::{Reply, Step};

const CHAT: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";
const RESPONSES: &str = "/v1/responses";
const COUNT: &str = "/v1/messages/count_tokens";
const CLAUDE: &str = "claude-sonnet-4-20250514";
const GEMINI: &str = "gemini-2.5-pro";

/// A Vertex AI AIBackend at `http://{name}` (no credential: the fake wants
/// none) in the `global` location, serving `claude-test` and `gemini-test`.
fn vertex(name: &str) -> Value {
    let mut b = backend(name, "VertexAI", &[]);
    b["spec"]
        .as_object_mut()
        .unwrap()
        .remove("credentials")
        .unwrap();
    b["spec"]["vertex"] = json!({"project": "my-project", "region": "global"});
    b["spec"]["models"] = json!([
        {"name": "claude-test", "providerModel": CLAUDE},
        {"name": "gemini-test", "providerModel": GEMINI},
    ]);
    b
}

/// A Gemini API AIBackend at `http://{name}` serving `gemini-test`.
fn gemini(name: &str) -> Value {
    let mut b = backend(name, "Gemini", &[]);
    b["spec"]["models"] = json!([{"name": "gemini-test", "providerModel": GEMINI}]);
    b
}

fn harness(docs: &[Value]) -> Harness {
    Harness::new(docs)
}

/// A Gemini SSE event (`data:` only, `\r\n` line endings as Google sends).
fn gemini_event(v: &Value) -> String {
    format!("data: {v}\r\n\r\n")
}

/// A thinking answer: a thought, text in two events, the final usage with
/// cached and thinking tokens.
fn thinking_stream() -> Reply {
    let usage = json!({"promptTokenCount": 2100, "cachedContentTokenCount": 2000,
        "candidatesTokenCount": 30, "thoughtsTokenCount": 120, "totalTokenCount": 2250});
    let events = [
        gemini_event(&json!({"candidates": [{"content": {"role": "model",
            "parts": [{"text": "Let me think.", "thought": true}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 2100}, "responseId": "r1", "modelVersion": GEMINI})),
        gemini_event(&json!({"candidates": [{"content": {"role": "model",
            "parts": [{"text": "Hello "}]}, "index": 0}], "responseId": "r1"})),
        gemini_event(&json!({"candidates": [{"content": {"role": "model",
            "parts": [{"text": "there."}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage, "responseId": "r1"})),
    ];
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    Reply::sse(&events)
}

fn thinking_whole() -> Reply {
    Reply::json(
        200,
        &json!({"candidates": [{"content": {"role": "model", "parts": [
                {"text": "Let me think.", "thought": true}, {"text": "Hello there."}]},
                "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 2100, "cachedContentTokenCount": 2000,
                "candidatesTokenCount": 30, "thoughtsTokenCount": 120, "totalTokenCount": 2250},
            "responseId": "r1", "modelVersion": GEMINI}),
    )
}

fn google_error(status: u16, name: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": status, "message": message, "status": name}}),
    )
}

/// The answer text of a stream of any client format.
fn stream_text(body: &[u8]) -> String {
    events(body)
        .iter()
        .filter_map(|e| {
            e.pointer("/delta/text")
                .or_else(|| e.pointer("/choices/0/delta/content"))
                .or_else(|| (e["type"] == "response.output_text.delta").then(|| &e["delta"]))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

/// The answer text of a whole answer of any client format.
fn answer_text(v: &Value) -> String {
    v.pointer("/content/0/text")
        .or_else(|| v.pointer("/choices/0/message/content"))
        .or_else(|| v.pointer("/output/0/content/0/text"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The `data:` JSON events of an SSE body.
fn events(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn openai_clients_get_thinking_and_cached_tokens_from_gemini_streamed_and_whole() {
    let h = harness(&[gemini("primary"), route(&["gemini-*"], &["primary"])]);
    h.upstream.set_default("primary", thinking_stream());
    let mut body = chat("gemini-test", true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, _, out) = h.post(CHAT, &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    assert_eq!(chat_stream_text(&out), "Hello there.");
    let usage = events(&out)
        .into_iter()
        .find_map(|e| e.get("usage").filter(|u| u.is_object()).cloned())
        .expect("a usage chunk");
    assert_eq!(
        usage,
        json!({"prompt_tokens": 2100, "completion_tokens": 150, "total_tokens": 2250,
            "prompt_tokens_details": {"cached_tokens": 2000},
            "completion_tokens_details": {"reasoning_tokens": 120}})
    );
    let sent = h.upstream.requests().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(sent.headers["x-goog-api-key"], "sk-provider-test");
    assert!(
        sent.headers.get("x-api-key").is_none(),
        "the client's key stays"
    );
    assert_eq!(sent.body["contents"][0]["parts"][0]["text"], "hi");

    // Responses, streamed: the completed response carries the usage.
    let (status, _, out) = h
        .post(
            RESPONSES,
            &json!({"model": "gemini-test", "input": "hi", "stream": true}),
        )
        .await;
    assert_eq!(status, 200);
    let completed = events(&out)
        .into_iter()
        .find(|e| e["type"] == "response.completed")
        .expect("response.completed");
    assert_eq!(
        completed["response"]["usage"]["output_tokens_details"]["reasoning_tokens"],
        120
    );
    assert_eq!(
        completed["response"]["usage"]["input_tokens_details"]["cached_tokens"],
        2000
    );

    // Whole answers.
    h.upstream.set_default("primary", thinking_whole());
    let (status, _, out) = h.post(CHAT, &chat("gemini-test", false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello there.");
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        120
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 2000);
    assert_eq!(
        h.upstream.requests().pop().unwrap().path,
        "/v1beta/models/gemini-2.5-pro:generateContent"
    );
    let (_, _, out) = h
        .post(RESPONSES, &json!({"model": "gemini-test", "input": "hi"}))
        .await;
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 120);

    // An Anthropic client gets Anthropic's usage fields only.
    let (status, _, out) = h.post(MESSAGES, &messages("gemini-test", false)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][1]["text"], "Hello there.");
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 100, "output_tokens": 150,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2000})
    );
    // Accounting saw the cached and the thinking tokens.
    let tokens = |kind: &str| {
        metric(
            &h.metrics(),
            "switchboard_tokens_total",
            &[("backend", "default/primary"), ("kind", kind)],
        )
    };
    assert_eq!(tokens("cache_read"), 5.0 * 2000.0, "{}", h.metrics());
    assert_eq!(tokens("reasoning"), 4.0 * 120.0, "{}", h.metrics());
}

#[tokio::test(start_paused = true)]
async fn vertex_serves_claude_through_raw_predict_and_gemini_through_generate_content() {
    let h = harness(&[vertex("primary"), route(&["*-test"], &["primary"])]);
    h.upstream.set_default("primary", Reply::ok("from vertex"));
    let req = Request::post(MESSAGES)
        .header("x-api-key", CLIENT_KEY)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({"model": "claude-test", "max_tokens": 64, "stream": true,
                   "metadata": {"user_id": "u"},
                   "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        )))
        .unwrap();
    let (status, headers, body) = read(h.send(req).await).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["content-type"], "text/event-stream");
    let text: String = events(&body)
        .iter()
        .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, "from vertex");
    let [sent] = h.upstream.requests().try_into().unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/my-project/locations/global/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
    );
    assert_eq!(sent.body["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(sent.body["stream"], true);
    assert!(sent.body.get("model").is_none());
    assert!(sent.body.get("metadata").is_none());
    assert_eq!(
        sent.headers["anthropic-beta"], "interleaved-thinking-2025-05-14",
        "only the allowlisted beta"
    );
    assert!(sent.headers.get("x-api-key").is_none());
    assert!(sent.headers.get("authorization").is_none(), "no credential");

    // A Chat client on Claude: translated to Messages, whole answer.
    let (status, _, out) = h.post(CHAT, &chat("claude-test", false)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "from vertex");
    let sent = h.upstream.requests().pop().unwrap();
    assert!(sent.path.ends_with("/claude-sonnet-4@20250514:rawPredict"));
    assert!(sent.body.get("stream").is_none());

    // A Chat client on Gemini, streamed.
    let (status, _, out) = h.post(CHAT, &chat("gemini-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&out), "from vertex");
    let sent = h.upstream.requests().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/my-project/locations/global/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(sent.body["contents"][0]["role"], "user");
    assert!(sent.headers.get("anthropic-beta").is_none());
}

#[tokio::test(start_paused = true)]
async fn count_tokens_is_asked_of_vertex_and_gemini() {
    let h = harness(&[
        vertex("primary"),
        gemini("api"),
        route(&["claude-*", "gemini-test"], &["primary"]),
    ]);
    let body =
        json!({"model": "claude-test", "messages": [{"role": "user", "content": "hello there"}]});
    let (status, _, out) = h.post(COUNT, &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0, "{v}");
    let sent = h.upstream.requests().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/my-project/locations/global/publishers/anthropic/models/count-tokens:rawPredict"
    );
    assert_eq!(sent.body["model"], "claude-sonnet-4@20250514");
    assert_eq!(sent.body["anthropic_version"], "vertex-2023-10-16");

    h.upstream.set_default(
        "primary",
        Reply::json(
            200,
            &json!({"totalTokens": 42, "totalBillableCharacters": 9}),
        ),
    );
    let body =
        json!({"model": "gemini-test", "messages": [{"role": "user", "content": "hello there"}]});
    let (status, _, out) = h.post(COUNT, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap(),
        json!({"input_tokens": 42})
    );
    let sent = h.upstream.requests().pop().unwrap();
    assert!(
        sent.path
            .ends_with("/publishers/google/models/gemini-2.5-pro:countTokens")
    );
    assert_eq!(sent.body["contents"][0]["parts"][0]["text"], "hello there");
}

#[tokio::test(start_paused = true)]
async fn google_errors_fail_over_or_reach_the_client_in_its_dialect() {
    let h = harness(&[
        gemini("primary"),
        backend("secondary", "Anthropic", &["gemini-test"]),
        route(&["gemini-*"], &["primary", "secondary"]),
    ]);
    h.upstream.set_default("secondary", Reply::ok("fallback"));
    for (status, name, message) in [
        (429, "RESOURCE_EXHAUSTED", "Quota exceeded"),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        (500, "INTERNAL", "An internal error has occurred."),
        (403, "PERMISSION_DENIED", "API key not valid."),
    ] {
        h.upstream
            .set_default("primary", google_error(status, name, message));
        let (got, _, out) = h.post(CHAT, &chat("gemini-test", false)).await;
        assert_eq!(got, 200, "{name}: {}", String::from_utf8_lossy(&out));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "fallback", "{name}");
    }

    // A request Gemini refuses reaches the client, in its own shape.
    h.upstream.set_default(
        "primary",
        google_error(
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
        ),
    );
    let (got, _, out) = h.post(CHAT, &chat("gemini-test", false)).await;
    assert_eq!(got, 400);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "Request contains an invalid argument."
    );
    let (got, _, out) = h.post(MESSAGES, &messages("gemini-test", false)).await;
    assert_eq!(got, 400);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(
        v["error"]["message"],
        "Request contains an invalid argument."
    );
    assert!(!String::from_utf8_lossy(&out).contains("sk-provider-test"));
}

#[tokio::test(start_paused = true)]
async fn a_context_length_error_goes_to_the_context_fallback() {
    let mut r = route(&["gemini-*"], &["primary"]);
    r["spec"]["rules"][0]["contextFallback"] = json!([{"name": "secondary"}]);
    let h = harness(&[
        gemini("primary"),
        backend("secondary", "Anthropic", &["gemini-test"]),
        r,
    ]);
    h.upstream.set_default(
        "primary",
        google_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        ),
    );
    h.upstream
        .set_default("secondary", Reply::ok("bigger window"));
    let (status, _, out) = h.post(MESSAGES, &messages("gemini-test", false)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["content"][0]["text"], "bigger window");
}

#[tokio::test(start_paused = true)]
async fn a_gemini_stream_error_before_content_fails_over_and_a_cut_one_is_continued() {
    let h = harness(&[
        gemini("primary"),
        backend("secondary", "Anthropic", &["gemini-test"]),
        route(&["gemini-*"], &["primary", "secondary"]),
    ]);
    let error = gemini_event(
        &json!({"error": {"code": 503, "status": "UNAVAILABLE", "message": "overloaded"}}),
    );
    // `UNAVAILABLE` is retried once on the same backend (like a 503), then failed over.
    h.upstream
        .set_default("primary", Reply::sse(&[error.as_str()]));
    h.upstream.set_default("secondary", Reply::ok("fallback"));
    let (status, _, out) = h.post(CHAT, &chat("gemini-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&out), "fallback");
    assert_eq!(h.upstream.count("primary"), 2);

    // Cut after the first text: the client has content; the stream is continued from the
    // next candidate with the sent text as an assistant prefill (the route's default `Auto`).
    let first = gemini_event(&json!({"candidates": [{"content": {"role": "model",
        "parts": [{"text": "partial"}]}, "index": 0}], "responseId": "r"}));
    h.upstream.script(
        "primary",
        vec![Reply::Respond {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            body: vec![Step::Data(Bytes::from(first)), Step::Cut],
        }],
    );
    let (status, _, out) = h.post(MESSAGES, &messages("gemini-test", true)).await;
    assert_eq!(status, 200);
    assert_eq!(stream_text(&out), "partialfallback");
    assert!(
        String::from_utf8_lossy(&out)
            .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    );
    let continued = h.upstream.requests().pop().unwrap();
    assert_eq!(continued.host, "secondary");
    assert_eq!(
        continued.body["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        &json!({"role": "assistant", "content": [{"type": "text", "text": "partial"}]})
    );
}

#[tokio::test(start_paused = true)]
async fn a_mock_emulating_vertex_and_gemini_answers_offline_in_their_framing() {
    let mock = |name: &str, mock: Value| {
        json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "AIBackend",
            "metadata": {"name": name},
            "spec": {"provider": "Mock", "mock": mock,
                "models": [{"name": "claude-test", "providerModel": CLAUDE},
                           {"name": "gemini-test", "providerModel": GEMINI}]}})
    };
    let h = harness(&[
        mock(
            "vertex",
            json!({"emulate": "VertexAI", "failOn": "[vertex-down]", "failStatus": 429}),
        ),
        mock("gemini", json!({"emulate": "Gemini"})),
        route(&["*-test"], &["vertex", "gemini"]),
    ]);
    for stream in [false, true] {
        for (path, body) in [
            (MESSAGES, messages("claude-test", stream)),
            (CHAT, chat("gemini-test", stream)),
            (
                RESPONSES,
                json!({"model": "gemini-test", "input": "hi", "stream": stream}),
            ),
        ] {
            let (status, _, out) = h.post(path, &body).await;
            assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&out));
            let text = if stream {
                stream_text(&out)
            } else {
                answer_text(&serde_json::from_slice(&out).unwrap())
            };
            assert_eq!(text, "echo: hi", "{path} {stream}");
        }
    }
    // Vertex answers Google's 429: the Gemini API mock serves instead.
    let mut body = messages("claude-test", false);
    body["messages"][0]["content"] = json!("hi [vertex-down]");
    let (status, _, out) = h.post(MESSAGES, &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["content"][0]["text"], "echo: hi [vertex-down]");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    let failovers = metric(
        &h.metrics(),
        "switchboard_failovers_total",
        &[("from_backend", "default/vertex"), ("reason", "status_429")],
    );
    assert_eq!(failovers, 1.0, "{}", h.metrics());
}
