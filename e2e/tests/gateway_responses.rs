//! The OpenAI Responses API (`POST /v1/responses`, what Codex CLI speaks) through the real binary:
//! passed through to an OpenAI backend, translated to Anthropic Messages and to Chat Completions
//! (OpenAICompatible), streaming and not, with function tools, a Codex `namespace` tool and the
//! hosted `web_search` tool; usage recorded from the true upstream usage.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::stack::{CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV};
use switchboard_e2e::wire::TOOL_CALL_ID;
use switchboard_e2e::{
    Behaviour, Flavor, Gateway, MockUpstream, SseEvent, Stack, post_json, post_stream, wait_until,
    write_config,
};

const RESPONSES: &str = "/v1/responses";
const WAIT: Duration = Duration::from_secs(10);

/// A Codex-shaped request: developer messages, no `instructions`, function tools, a `namespace`
/// tool, the hosted `web_search` tool, `store:false`, encrypted reasoning asked for.
fn codex_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "store": false,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]}
        ],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Run a command", "strict": false,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Agents", "tools": [
                {"type": "function", "name": "spawn_agent", "strict": false,
                 "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}}
            ]},
            {"type": "web_search", "external_web_access": false}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-1",
        "client_metadata": {"session_id": "session-1"}
    })
}

async fn wait_tokens(gateway: &Gateway, kind: &str, expected: f64) {
    wait_until(
        WAIT,
        &format!("switchboard_tokens_total{{kind=\"{kind}\"}} == {expected}"),
        || async {
            gateway
                .metric_sum("switchboard_tokens_total", &[("kind", kind)])
                .await
                == expected
        },
    )
    .await;
}

fn named(events: &[SseEvent], name: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.event.as_deref() == Some(name))
        .filter_map(SseEvent::json)
        .collect()
}

/// Every Responses stream rule a client relies on: `event:` lines matching `type`, sequence
/// numbers from 0, created/in_progress first, one terminal event last. Returns the final object.
fn check_stream(events: &[SseEvent]) -> Value {
    assert!(!events.is_empty());
    for (n, e) in events.iter().enumerate() {
        let data = e
            .json()
            .unwrap_or_else(|| panic!("event {n} is not JSON: {e:?}"));
        assert_eq!(
            e.event.as_deref(),
            data["type"].as_str(),
            "event line matches type: {e:?}"
        );
        assert_eq!(data["sequence_number"], n, "sequence_number of {e:?}");
    }
    assert_eq!(events[0].event.as_deref(), Some("response.created"));
    assert_eq!(events[1].event.as_deref(), Some("response.in_progress"));
    let last = events.last().unwrap();
    assert_eq!(
        last.event.as_deref(),
        Some("response.completed"),
        "{events:?}"
    );
    last.json().unwrap()["response"].clone()
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test]
async fn responses_pass_through_to_openai() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::OkWithUsage {
        text: "two files".into(),
        input: 40,
        output: 6,
        cached: 30,
    });
    let (status, _, body) = post_json(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &codex_body("gpt-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let response = json_body(&body);
    assert_eq!(response["object"], "response");
    assert_eq!(output_text(&response), "two files");

    let [request] = stack.primary.wait_for_requests(1).await.try_into().unwrap();
    assert_eq!(request.path, "/v1/responses");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    let mut expected = codex_body("gpt-test", false);
    expected["model"] = json!("gpt-test");
    assert_eq!(
        request.body, expected,
        "the Responses body reaches OpenAI unchanged"
    );

    wait_tokens(&stack.gateway, "input", 40.0).await;
    wait_tokens(&stack.gateway, "cache_read", 30.0).await;
    wait_tokens(&stack.gateway, "output", 6.0).await;
}

#[tokio::test]
async fn responses_stream_passes_through_to_openai() {
    let stack = Stack::start().await;
    stack.primary.set_default(Behaviour::OkWithUsage {
        text: "alpha beta gamma".into(),
        input: 11,
        output: 7,
        cached: 3,
    });
    let (status, headers, events) = post_stream(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &codex_body("gpt-test", true),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let response = check_stream(&events);
    assert_eq!(output_text(&response), "alpha beta gamma");
    assert_eq!(response["usage"]["input_tokens"], 14);
    wait_tokens(&stack.gateway, "input", 11.0).await;
    wait_tokens(&stack.gateway, "cache_read", 3.0).await;
    wait_tokens(&stack.gateway, "output", 7.0).await;
    let completed = stack
        .gateway
        .metric_sum("switchboard_streams_total", &[("outcome", "completed")])
        .await;
    assert_eq!(completed, 1.0);
}

#[tokio::test]
async fn responses_translate_to_anthropic() {
    let stack = Stack::start().await;
    stack.anthropic.set_default(Behaviour::OkWithUsage {
        text: "Here they are".into(),
        input: 20,
        output: 5,
        cached: 100,
    });
    let (status, _, body) = post_json(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &codex_body("claude-test", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let response = json_body(&body);
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], "claude-test");
    assert_eq!(output_text(&response), "Here they are");
    // Responses input_tokens include cached tokens.
    assert_eq!(response["usage"]["input_tokens"], 120);
    assert_eq!(
        response["usage"]["input_tokens_details"]["cached_tokens"],
        100
    );
    assert_eq!(response["usage"]["output_tokens"], 5);

    let [request] = stack
        .anthropic
        .wait_for_requests(1)
        .await
        .try_into()
        .unwrap();
    assert_eq!(request.path, "/v1/messages");
    let sent = &request.body;
    assert_eq!(
        sent["system"],
        json!([{"type": "text", "text": "You are Codex."}])
    );
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "List the files"}]}])
    );
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["exec_command", "multi_agent_v1__spawn_agent"],
        "namespace flattened, web_search dropped"
    );
    assert!(sent["max_tokens"].as_u64().unwrap() >= 4096);
    assert_eq!(sent["thinking"]["type"], "enabled");
    for ignored in [
        "store",
        "include",
        "prompt_cache_key",
        "client_metadata",
        "input",
        "reasoning",
    ] {
        assert!(
            sent.get(ignored).is_none(),
            "{ignored} must not reach Anthropic"
        );
    }

    wait_tokens(&stack.gateway, "input", 20.0).await;
    wait_tokens(&stack.gateway, "cache_read", 100.0).await;
    wait_tokens(&stack.gateway, "output", 5.0).await;
}

#[tokio::test]
async fn responses_stream_tool_call_from_anthropic_restores_the_namespace() {
    let stack = Stack::start().await;
    stack.anthropic.set_default(Behaviour::ToolCall {
        name: "multi_agent_v1__spawn_agent".into(),
        arguments: json!({"task": "review the diff"}),
    });
    let (status, _, events) = post_stream(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &codex_body("claude-test", true),
    )
    .await;
    assert_eq!(status, 200);
    let response = check_stream(&events);
    let [call] = response["output"]
        .as_array()
        .unwrap()
        .clone()
        .try_into()
        .unwrap();
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "spawn_agent");
    assert_eq!(call["namespace"], "multi_agent_v1");
    assert_eq!(call["call_id"], TOOL_CALL_ID);
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        json!({"task": "review the diff"})
    );
    let deltas: String = named(&events, "response.function_call_arguments.delta")
        .iter()
        .map(|d| d["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, call["arguments"].as_str().unwrap());
    let added = named(&events, "response.output_item.added");
    assert_eq!(added[0]["item"]["name"], "spawn_agent");
}

#[tokio::test]
async fn responses_tool_loop_reaches_anthropic_paired() {
    let stack = Stack::start().await;
    stack.anthropic.set_default(Behaviour::Ok {
        text: "done".into(),
    });
    let mut body = codex_body("claude-test", true);
    let input = body["input"].as_array_mut().unwrap();
    input.push(json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA-openai-blob"}));
    input.push(json!({"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"}));
    input.push(json!({"type": "function_call", "call_id": "call_2", "name": "spawn_agent", "namespace": "multi_agent_v1", "arguments": "{}"}));
    input.push(json!({"type": "function_call_output", "call_id": "call_1", "output": "README.md"}));
    input.push(json!({"type": "function_call_output", "call_id": "call_2", "output": "started"}));
    let (status, _, events) = post_stream(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(output_text(&check_stream(&events)), "done");

    let [request] = stack
        .anthropic
        .wait_for_requests(1)
        .await
        .try_into()
        .unwrap();
    let messages = request.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "exec_command", "input": {"cmd": "ls"}},
            {"type": "tool_use", "id": "call_2", "name": "multi_agent_v1__spawn_agent", "input": {}}
        ]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "README.md"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "started"}
        ]})
    );
    // OpenAI's encrypted reasoning cannot be replayed: thinking is off for this tool loop.
    assert!(request.body.get("thinking").is_none());
}

#[tokio::test]
async fn responses_errors_are_openai_shaped() {
    let stack = Stack::start().await;
    // An upstream Anthropic error keeps its status and becomes an OpenAI error.
    stack.anthropic.set_default(Behaviour::status(400));
    let (status, _, body) = post_json(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &codex_body("claude-test", false),
    )
    .await;
    assert_eq!(status, 400);
    let body = json_body(&body);
    assert!(
        body["error"]["message"].is_string() && body["error"]["type"].is_string(),
        "{body}"
    );

    // A request the gateway cannot translate is a 400 naming the field; nothing goes upstream.
    stack.anthropic.reset();
    let mut bad = codex_body("claude-test", false);
    bad["previous_response_id"] = json!("resp_123");
    let (status, _, body) = post_json(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &bad,
    )
    .await;
    assert_eq!(status, 400);
    let body = json_body(&body);
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("previous_response_id"),
        "{body}"
    );
    assert_eq!(stack.anthropic.request_count(), 0);

    // Unauthenticated: OpenAI shape too.
    let (status, _, body) =
        post_json(&stack.url(RESPONSES), &[], &codex_body("gpt-test", false)).await;
    assert_eq!(status, 401);
    assert!(json_body(&body)["error"]["message"].is_string());
}

#[tokio::test]
async fn responses_stream_error_after_first_byte_fails_in_band() {
    let stack = Stack::start().await;
    stack
        .anthropic
        .set_default(Behaviour::CutStream { after_events: 3 });
    let result = switchboard_e2e::client::post_stream_partial(
        &stack.url(RESPONSES),
        &[("authorization", &stack.bearer())],
        &codex_body("claude-test", true),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(result.status, 200);
    assert!(
        !result.raw.contains("response.completed"),
        "no fake completion: {}",
        result.raw
    );
    let last = result.events.last().unwrap();
    assert_eq!(
        last.event.as_deref(),
        Some("response.failed"),
        "{}",
        result.raw
    );
    let failed = last.json().unwrap();
    assert_eq!(failed["response"]["status"], "failed");
    assert!(failed["response"]["error"]["message"].is_string());
}

/// A Responses client on an OpenAI-compatible backend (Chat Completions only).
#[tokio::test]
async fn responses_translate_to_chat_completions() {
    let compat = MockUpstream::start(Flavor::OpenAI).await;
    let mut spec = backend_spec(
        Flavor::OpenAI,
        &compat.url(),
        OPENAI_KEY_ENV,
        &["qwen-coder"],
    );
    spec["provider"] = json!("OpenAICompatible");
    let config = ConfigBuilder::new().backend("compat", spec).route(
        "main",
        json!({"pathPrefix": "/", "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
               "rules": [rule(&["qwen-*"], &["compat"])]}),
    );
    let dir = switchboard_e2e::harness::temp_dir("responses-compat");
    let path = write_config(&dir, &config.to_yaml());
    let gateway = Gateway::start(
        &path,
        &[(OPENAI_KEY_ENV, OPENAI_KEY), (CLIENT_KEY_ENV, CLIENT_KEY)],
    )
    .await;
    let auth = format!("Bearer {CLIENT_KEY}");
    let url = format!("{}{RESPONSES}", gateway.base_url());

    compat.set_default(Behaviour::ToolCall {
        name: "exec_command".into(),
        arguments: json!({"cmd": "ls"}),
    });
    let (status, _, body) = post_json(
        &url,
        &[("authorization", &auth)],
        &codex_body("qwen-coder", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let response = json_body(&body);
    assert_eq!(response["output"][0]["type"], "function_call");
    assert_eq!(response["output"][0]["name"], "exec_command");
    assert_eq!(response["output"][0]["arguments"], "{\"cmd\":\"ls\"}");

    compat.set_default(Behaviour::OkWithUsage {
        text: "one two".into(),
        input: 9,
        output: 2,
        cached: 4,
    });
    let (status, _, events) = post_stream(
        &url,
        &[("authorization", &auth)],
        &codex_body("qwen-coder", true),
    )
    .await;
    assert_eq!(status, 200);
    let response = check_stream(&events);
    assert_eq!(output_text(&response), "one two");
    assert_eq!(response["usage"]["input_tokens"], 13);
    assert_eq!(
        response["usage"]["input_tokens_details"]["cached_tokens"],
        4
    );

    let requests = compat.wait_for_requests(2).await;
    assert!(requests.iter().all(|r| r.path == "/v1/chat/completions"));
    let sent = &requests[1].body;
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You are Codex."})
    );
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["exec_command", "multi_agent_v1__spawn_agent"]);
    wait_tokens(&gateway, "output", 2.0 + 5.0).await;
}

/// Codex's first calls against a gateway whose only backend is the built-in Mock provider.
#[tokio::test]
async fn mock_provider_answers_responses_and_codex_model_listing() {
    let config = ConfigBuilder::new()
        .backend(
            "mock",
            json!({"provider": "Mock", "mock": {"reply": "mocked answer"}}),
        )
        .route(
            "main",
            json!({"pathPrefix": "/", "auth": {"apiKeys": [{"name": "e2e", "env": CLIENT_KEY_ENV}]},
                   "rules": [rule(&["*"], &["mock"])]}),
        );
    let dir = switchboard_e2e::harness::temp_dir("responses-mock");
    let path = write_config(&dir, &config.to_yaml());
    let gateway = Gateway::start(&path, &[(CLIENT_KEY_ENV, CLIENT_KEY)]).await;
    let auth = format!("Bearer {CLIENT_KEY}");

    let (status, _, body) = switchboard_e2e::get(
        &format!("{}/v1/models?client_version=0.169.0", gateway.base_url()),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200);
    // Codex's own shape (see dataplane/src/catalog/shapes.rs for why the list is empty).
    assert_eq!(json_body(&body), json!({"models": []}));

    let url = format!("{}{RESPONSES}", gateway.base_url());
    let (status, _, body) = post_json(
        &url,
        &[("authorization", &auth)],
        &codex_body("any-model", false),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let response = json_body(&body);
    assert_eq!(output_text(&response), "mocked answer");
    assert!(response["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let (status, _, events) = post_stream(
        &url,
        &[("authorization", &auth)],
        &codex_body("any-model", true),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(output_text(&check_stream(&events)), "mocked answer");
    wait_until(WAIT, "streamed mock usage recorded", || async {
        gateway
            .metric_sum("switchboard_streams_total", &[("outcome", "completed")])
            .await
            == 1.0
    })
    .await;
}
