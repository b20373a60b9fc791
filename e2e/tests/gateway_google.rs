//! Vertex AI and the Gemini API through the real binary (issue 15): a `provider: Gemini`
//! backend and a `provider: VertexAI` backend (Workload Identity, its token from the Vertex
//! mock's metadata server) serve OpenAI Chat, Responses and Anthropic Messages clients,
//! streaming and tool loops included, against mocks that check every request with their own,
//! independent reading of Google's wire format; and one Claude request falls over from Vertex to
//! Bedrock to Anthropic in one chain.

use serde_json::{Value, json};
use switchboard_e2e::behaviour::Behaviour;
use switchboard_e2e::client::{SseEvent, chat_stream_text, json_body};
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::google_wire::{METADATA_TOKEN, THOUGHT_SIGNATURE};
use switchboard_e2e::harness::temp_dir;
use switchboard_e2e::stack::{ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV};
use switchboard_e2e::{Flavor, Gateway, MockUpstream, post_json, post_stream, write_config};

const GEMINI_KEY_ENV: &str = "SWITCHBOARD_E2E_GEMINI_KEY";
const GEMINI_KEY: &str = "AIzaSyE2eGeminiKey";
const CLAUDE_VERTEX: &str = "claude-sonnet-4-20250514";
const CLAUDE_BEDROCK: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

/// The Vertex backend spec: project `my-project`, location `global`, Workload Identity.
fn vertex_spec(mock: &MockUpstream, models: Value) -> Value {
    let mut spec = backend_spec(Flavor::Vertex, &mock.url(), "UNUSED", &[]);
    spec["credentials"] = json!({"gcp": {"workloadIdentity": {}}});
    spec["vertex"] = json!({"project": "my-project", "region": "global"});
    spec["models"] = models;
    spec
}

fn route(rules: Vec<Value>) -> Value {
    json!({
        "pathPrefix": "/",
        "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
        "rules": rules,
        "retry": {"backoff": "50ms"},
    })
}

/// `gemini-api` on the Gemini mock, `gemini-vertex` and `claude-vertex` on the Vertex mock.
async fn google_gateway() -> (MockUpstream, MockUpstream, Gateway) {
    let gemini = MockUpstream::start(Flavor::Gemini).await;
    let vertex = MockUpstream::start(Flavor::Vertex).await;
    let mut gemini_spec = backend_spec(Flavor::Gemini, &gemini.url(), GEMINI_KEY_ENV, &[]);
    gemini_spec["models"] = json!([{"name": "gemini-api", "providerModel": "gemini-2.5-pro"}]);
    let config = ConfigBuilder::new()
        .backend("gemini", gemini_spec)
        .backend(
            "vertex",
            vertex_spec(
                &vertex,
                json!([
                    {"name": "gemini-vertex", "providerModel": "gemini-2.5-flash"},
                    {"name": "claude-vertex", "providerModel": CLAUDE_VERTEX},
                ]),
            ),
        )
        .route(
            "main",
            route(vec![
                rule(&["gemini-api"], &["gemini"]),
                rule(&["gemini-vertex", "claude-vertex"], &["vertex"]),
            ]),
        )
        .to_yaml();
    let dir = temp_dir("google");
    let path = write_config(&dir, &config);
    let host = vertex.url().trim_start_matches("http://").to_string();
    let gw = Gateway::start(
        &path,
        &[
            (GEMINI_KEY_ENV, GEMINI_KEY),
            (CLIENT_KEY_ENV, CLIENT_KEY),
            ("GCE_METADATA_HOST", host.as_str()),
        ],
    )
    .await;
    (gemini, vertex, gw)
}

fn weather_tool_chat() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "additionalProperties": false,
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

fn weather_tool_anthropic() -> Value {
    json!([{"name": "get_weather", "description": "Weather of a city",
        "input_schema": {"type": "object", "additionalProperties": false,
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

fn tool_call() -> Behaviour {
    Behaviour::ToolCall {
        name: "get_weather".into(),
        arguments: json!({"city": "Paris"}),
    }
}

fn anthropic_text(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter_map(SseEvent::json)
        .filter_map(|v| {
            v.pointer("/delta/text")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

/// The streamed Chat tool call's id and arguments.
fn chat_tool_call(events: &[SseEvent]) -> (String, String) {
    let mut id = String::new();
    let mut args = String::new();
    for v in events.iter().filter_map(SseEvent::json) {
        if let Some(call) = v.pointer("/choices/0/delta/tool_calls/0") {
            if let Some(i) = call["id"].as_str() {
                id = i.to_string();
            }
            args.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    (id, args)
}

/// The function-call part of the model turn the gateway sent back (with its signature).
fn sent_function_call(body: &Value) -> Value {
    body["contents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == "model")
        .flat_map(|c| c["parts"].as_array().unwrap().clone())
        .find(|p| p.get("functionCall").is_some())
        .expect("the model turn's function call")
}

#[tokio::test]
async fn openai_and_anthropic_clients_are_served_by_the_gemini_api_with_tool_loops() {
    let (gemini, _vertex, gw) = google_gateway().await;
    let url = |p: &str| format!("{}{p}", gw.base_url());
    let bearer = format!("Bearer {CLIENT_KEY}");
    let openai = [("authorization", bearer.as_str())];

    // Chat, streamed, with a tool: the call comes back with the signature inside its id.
    gemini.set_default(tool_call());
    let ask = json!({"model": "gemini-api", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": weather_tool_chat()});
    let (status, _, events) = post_stream(&url("/v1/chat/completions"), &openai, &ask).await;
    assert_eq!(status, 200);
    let (id, args) = chat_tool_call(&events);
    assert!(id.contains("__thought__"), "{id}");
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    let finish = events.iter().filter_map(SseEvent::json).find_map(|v| {
        v.pointer("/choices/0/finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let sent = gemini.requests().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    assert_eq!(sent.header("x-goog-api-key"), Some(GEMINI_KEY));
    assert!(
        sent.header("authorization").is_none(),
        "the client's key stays"
    );
    assert_eq!(
        sent.body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );

    // The second turn: the tool's result goes back with the call's signature.
    gemini.set_default(Behaviour::OkWithUsage {
        text: "Sunny in Paris.".into(),
        input: 40,
        output: 5,
        cached: 30,
    });
    let turn2 = json!({"model": "gemini-api", "stream": true, "stream_options": {"include_usage": true},
        "tools": weather_tool_chat(),
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": args}}]},
            {"role": "tool", "tool_call_id": id, "content": "sunny, 24C"}]});
    let (status, _, events) = post_stream(&url("/v1/chat/completions"), &openai, &turn2).await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&events), "Sunny in Paris.");
    let usage = events
        .iter()
        .filter_map(SseEvent::json)
        .find_map(|v| v.get("usage").filter(|u| u.is_object()).cloned())
        .expect("the usage chunk");
    assert_eq!(usage["prompt_tokens"], 70);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 30);
    assert_eq!(usage["completion_tokens"], 5);
    let sent = gemini.requests().pop().unwrap();
    let call = sent_function_call(&sent.body);
    assert_eq!(call["thoughtSignature"], THOUGHT_SIGNATURE);
    assert_eq!(call["functionCall"]["name"], "get_weather");
    let last = sent.body["contents"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["parts"][0]["functionResponse"]["name"], "get_weather");

    // Responses, streamed, with a tool.
    gemini.set_default(tool_call());
    let (status, _, events) = post_stream(
        &url("/v1/responses"),
        &openai,
        &json!({"model": "gemini-api", "stream": true, "input": "Weather in Paris?",
            "tools": [{"type": "function", "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}),
    )
    .await;
    assert_eq!(status, 200);
    let done = events
        .iter()
        .filter_map(SseEvent::json)
        .find(|v| v["type"] == "response.completed")
        .expect("response.completed");
    let item = &done["response"]["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "get_weather");
    assert!(item["call_id"].as_str().unwrap().contains("__thought__"));

    // Anthropic Messages, streamed text, then whole with a tool.
    let anthropic = [
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
    ];
    gemini.set_default(Behaviour::ok("Hello from Gemini"));
    let (status, _, events) = post_stream(
        &url("/v1/messages"),
        &anthropic,
        &json!({"model": "gemini-api", "max_tokens": 64, "stream": true,
            "system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(anthropic_text(&events), "Hello from Gemini");
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("message_stop")
    );
    let sent = gemini.requests().pop().unwrap();
    assert_eq!(
        sent.body["systemInstruction"]["parts"][0]["text"],
        "Be brief."
    );
    gemini.set_default(tool_call());
    let (status, _, body) = post_json(
        &url("/v1/messages"),
        &anthropic,
        &json!({"model": "gemini-api", "max_tokens": 64, "tools": weather_tool_anthropic(),
            "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let v = json_body(&body);
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["content"][0]["input"], json!({"city": "Paris"}));

    // Google's quota error reaches an Anthropic client as its rate-limit error.
    gemini.set_default(Behaviour::status(429));
    let (status, _, body) = post_json(
        &url("/v1/messages"),
        &anthropic,
        &json!({"model": "gemini-api", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 429);
    let v = json_body(&body);
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(!String::from_utf8_lossy(&body).contains(GEMINI_KEY));
}

#[tokio::test]
async fn vertex_serves_claude_and_gemini_with_a_workload_identity_token() {
    let (_gemini, vertex, gw) = google_gateway().await;
    let url = |p: &str| format!("{}{p}", gw.base_url());
    let bearer = format!("Bearer {CLIENT_KEY}");
    let openai = [("authorization", bearer.as_str())];
    let anthropic = [
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
        (
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        ),
    ];

    // Claude Code style: Messages, streamed, with a tool, on Claude.
    vertex.set_default(tool_call());
    let (status, _, events) = post_stream(
        &url("/v1/messages"),
        &anthropic,
        &json!({"model": "claude-vertex", "max_tokens": 256, "stream": true,
            "metadata": {"user_id": "u1"}, "tools": weather_tool_anthropic(),
            "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let start = events
        .iter()
        .filter_map(SseEvent::json)
        .find(|v| v["type"] == "content_block_start" && v["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert!(
        start["content_block"]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_vrtx_")
    );
    let requests = vertex.requests();
    let token = requests
        .iter()
        .find(|r| r.method == "GET")
        .expect("the token was asked of the metadata server");
    assert_eq!(
        token.path,
        "/computeMetadata/v1/instance/service-accounts/default/token"
    );
    let sent = requests.iter().rfind(|r| r.method == "POST").unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/my-project/locations/global/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {METADATA_TOKEN}").as_str())
    );
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    assert_eq!(sent.body["anthropic_version"], "vertex-2023-10-16");
    assert!(sent.body.get("model").is_none() && sent.body.get("metadata").is_none());

    // An OpenAI client on Claude, streamed.
    vertex.set_default(Behaviour::ok("Claude on Vertex"));
    let (status, _, events) = post_stream(
        &url("/v1/chat/completions"),
        &openai,
        &json!({"model": "claude-vertex", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chat_stream_text(&events), "Claude on Vertex");

    // Gemini on Vertex: Chat with a tool, then Responses.
    vertex.set_default(tool_call());
    let (status, _, events) = post_stream(
        &url("/v1/chat/completions"),
        &openai,
        &json!({"model": "gemini-vertex", "stream": true, "tools": weather_tool_chat(),
            "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (id, _) = chat_tool_call(&events);
    assert!(id.contains("__thought__"), "{id}");
    let sent = vertex.requests().pop().unwrap();
    assert_eq!(
        sent.path,
        "/v1/projects/my-project/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert!(sent.header("anthropic-beta").is_none());
    vertex.set_default(Behaviour::ok("Gemini on Vertex"));
    let (status, _, body) = post_json(
        &url("/v1/responses"),
        &openai,
        &json!({"model": "gemini-vertex", "input": "hi", "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json_body(&body)["output"][0]["content"][0]["text"],
        "Gemini on Vertex"
    );

    // count_tokens asked of Vertex, for Claude and for Gemini.
    for model in ["claude-vertex", "gemini-vertex"] {
        let (status, _, body) = post_json(
            &url("/v1/messages/count_tokens"),
            &anthropic,
            &json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]}),
        )
        .await;
        assert_eq!(status, 200, "{model}: {}", String::from_utf8_lossy(&body));
        assert!(json_body(&body)["input_tokens"].as_u64().unwrap() > 0);
    }
    let posts: Vec<_> = vertex
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(
        posts[posts.len() - 2]
            .path
            .ends_with("/anthropic/models/count-tokens:rawPredict")
    );
    assert!(
        posts[posts.len() - 1]
            .path
            .ends_with("/google/models/gemini-2.5-flash:countTokens")
    );
    // One token for all of it: cached, not asked again.
    assert_eq!(
        vertex
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_claude_request_falls_over_from_vertex_to_bedrock_to_anthropic_in_one_chain() {
    let vertex = MockUpstream::start(Flavor::Vertex).await;
    let bedrock = MockUpstream::start(Flavor::Bedrock).await;
    let anthropic = MockUpstream::start(Flavor::Anthropic).await;
    let mut bedrock_spec = backend_spec(Flavor::Bedrock, &bedrock.url(), ANTHROPIC_KEY_ENV, &[]);
    bedrock_spec["bedrock"] = json!({"region": "us-east-1"});
    bedrock_spec["models"] = json!([{"name": "claude-chain", "providerModel": CLAUDE_BEDROCK}]);
    let config = ConfigBuilder::new()
        .backend(
            "vertex",
            vertex_spec(
                &vertex,
                json!([{"name": "claude-chain", "providerModel": CLAUDE_VERTEX}]),
            ),
        )
        .backend("bedrock", bedrock_spec)
        .backend(
            "anthropic",
            backend_spec(
                Flavor::Anthropic,
                &anthropic.url(),
                ANTHROPIC_KEY_ENV,
                &["claude-chain"],
            ),
        )
        .route(
            "main",
            route(vec![rule(
                &["claude-chain"],
                &["vertex", "bedrock", "anthropic"],
            )]),
        );
    let dir = temp_dir("google-chain");
    let path = write_config(&dir, &config.to_yaml());
    let host = vertex.url().trim_start_matches("http://").to_string();
    let gw = Gateway::start(
        &path,
        &[
            (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
            (CLIENT_KEY_ENV, CLIENT_KEY),
            ("GCE_METADATA_HOST", host.as_str()),
        ],
    )
    .await;
    // Vertex: out of quota (Google's RESOURCE_EXHAUSTED, no retry delay); Bedrock: throttled.
    vertex.set_default(Behaviour::Status {
        status: 429,
        body: json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model"}}),
        headers: vec![],
    });
    bedrock.set_default(Behaviour::status(429));
    anthropic.set_default(Behaviour::ok("served by the third"));
    let key = [
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
    ];
    for stream in [false, true] {
        let body = json!({"model": "claude-chain", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]});
        let text = if stream {
            let (status, _, events) =
                post_stream(&format!("{}/v1/messages", gw.base_url()), &key, &body).await;
            assert_eq!(status, 200);
            anthropic_text(&events)
        } else {
            let (status, _, raw) =
                post_json(&format!("{}/v1/messages", gw.base_url()), &key, &body).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&raw));
            json_body(&raw)["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(text, "served by the third", "stream: {stream}");
    }
    let post = |m: &MockUpstream| m.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(post(&vertex), 2, "tried once per request");
    assert_eq!(post(&bedrock), 2);
    assert_eq!(post(&anthropic), 2);
    assert!(
        vertex
            .requests()
            .iter()
            .rfind(|r| r.method == "POST")
            .unwrap()
            .path
            .ends_with("/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict")
    );
    assert!(
        bedrock.requests()[1]
            .path
            .starts_with("/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke")
    );
    for (from, reason) in [
        ("default/vertex", "status_429"),
        ("default/bedrock", "status_429"),
    ] {
        let n = gw
            .metric_sum(
                "switchboard_failovers_total",
                &[("from_backend", from), ("reason", reason)],
            )
            .await;
        assert_eq!(n, 2.0, "{from}");
    }
}
