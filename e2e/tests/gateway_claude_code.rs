//! Claude Code's gateway contract through the real binary, with the request shapes Claude Code
//! 2.1.328 sends (recorded bodies in `dataplane/src/translate/testdata/request/messages_to_chat/`):
//! `role: "system"` messages inside `messages` on a GPT model, its billing line and deferred
//! placeholder tool, system messages folded for an Anthropic backend that does not take the beta,
//! model discovery (`GET /v1/models?limit=1000`) and `count_tokens` on an OpenAI backend.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchboard_e2e::client::json_body;
use switchboard_e2e::config::{ConfigBuilder, backend_spec, rule};
use switchboard_e2e::stack::{
    ANTHROPIC_KEY, ANTHROPIC_KEY_ENV, CLIENT_KEY, CLIENT_KEY_ENV, OPENAI_KEY, OPENAI_KEY_ENV,
};
use switchboard_e2e::{Flavor, Gateway, MockUpstream, get, post_json, post_stream, write_config};

/// The betas Claude Code sends for a model name it does not know as Claude.
const BETAS: &str = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24";

/// Env var of a key that authenticates but belongs to no team.
const OUTSIDER_KEY_ENV: &str = "SWITCHBOARD_E2E_OUTSIDER_KEY";
/// A key that authenticates but belongs to no team (the route refuses such callers).
const OUTSIDER_KEY: &str = "sb-outsider-e2e";

struct Setup {
    openai: MockUpstream,
    anthropic: MockUpstream,
    gateway: Gateway,
    _dir: PathBuf,
}

/// `gpt-4.1` on an OpenAI mock; `claude-sonnet-4` on an Anthropic backend forwarding every beta;
/// `claude-strict` on one whose `allowedBetas` lacks the mid-conversation beta; alias `sonnet`.
async fn setup() -> Setup {
    let openai = MockUpstream::start(Flavor::OpenAI).await;
    let anthropic = MockUpstream::start(Flavor::Anthropic).await;
    let mut gpt = backend_spec(Flavor::OpenAI, &openai.url(), OPENAI_KEY_ENV, &["gpt-4.1"]);
    gpt["models"][0]["contextWindow"] = json!(1_047_576);
    let mut claude = backend_spec(
        Flavor::Anthropic,
        &anthropic.url(),
        ANTHROPIC_KEY_ENV,
        &["claude-sonnet-4"],
    );
    claude["models"][0]["contextWindow"] = json!(200_000);
    let mut strict = backend_spec(
        Flavor::Anthropic,
        &anthropic.url(),
        ANTHROPIC_KEY_ENV,
        &["claude-strict"],
    );
    strict["anthropic"] =
        json!({"allowedBetas": ["claude-code-20250219", "interleaved-thinking-2025-05-14"]});
    let config = ConfigBuilder::new()
        .backend("openai", gpt)
        .backend("anthropic", claude)
        .backend("anthropic-strict", strict)
        .route(
            "main",
            json!({
                "pathPrefix": "/",
                "auth": {"apiKeys": [
                    {"name": "dev", "env": CLIENT_KEY_ENV},
                    {"name": "outsider", "env": OUTSIDER_KEY_ENV}
                ]},
                "teams": {"refuseUnknown": true, "teams": [{"name": "dev", "tier": "premium", "apiKeys": ["dev"]}]},
                "aliases": [{"pattern": "sonnet", "target": "claude-sonnet-4"}],
                "rules": [
                    rule(&["gpt-*"], &["openai"]),
                    rule(&["claude-sonnet-*"], &["anthropic"]),
                    rule(&["claude-strict"], &["anthropic-strict"])
                ]
            }),
        );
    let dir = switchboard_e2e::harness::temp_dir("claude-code");
    let path = write_config(&dir, &config.to_yaml());
    let gateway = Gateway::start(
        &path,
        &[
            (OPENAI_KEY_ENV, OPENAI_KEY),
            (ANTHROPIC_KEY_ENV, ANTHROPIC_KEY),
            (CLIENT_KEY_ENV, CLIENT_KEY),
            (OUTSIDER_KEY_ENV, OUTSIDER_KEY),
        ],
    )
    .await;
    Setup {
        openai,
        anthropic,
        gateway,
        _dir: dir,
    }
}

/// A request body Claude Code sent (trimmed texts, same structure), with `model` replaced.
fn recorded(case: &str, model: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../dataplane/src/translate/testdata/request/messages_to_chat/{case}.in.json"
    ));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut body: Value = serde_json::from_str(&text).unwrap();
    body["model"] = json!(model);
    body
}

/// The headers Claude Code sends (its apiKeyHelper output goes in both credential headers).
fn claude_code_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-api-key", CLIENT_KEY),
        ("authorization", "Bearer sb-client-key-e2e"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", BETAS),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("x-app", "cli"),
        ("user-agent", "claude-cli/2.1.328 (external, sdk-cli)"),
        (
            "x-claude-code-session-id",
            "0f7f8919-2eac-4385-a9f8-0fadf4c343ac",
        ),
    ]
}

fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn claude_code_runs_on_a_gpt_model_with_system_messages_in_place() {
    let s = setup().await;
    let url = format!("{}/v1/messages?beta=true", s.gateway.base_url());
    // The first request carries the system message as text blocks, the follow-up as a string.
    for (n, case) in [
        "claude_code_gpt_system_blocks",
        "claude_code_gpt_system_string",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, _, events) =
            post_stream(&url, &claude_code_headers(), &recorded(case, "gpt-4.1")).await;
        assert_eq!(status, 200, "{case}: {events:?}");
        let names: Vec<_> = events.iter().filter_map(|e| e.event.clone()).collect();
        assert_eq!(
            names.first().map(String::as_str),
            Some("message_start"),
            "{case}"
        );
        assert_eq!(
            names.last().map(String::as_str),
            Some("message_stop"),
            "{case}"
        );

        let upstream = s.openai.wait_for_requests(n + 1).await[n].body.clone();
        let expected: &[&str] = if n == 0 {
            &["system", "user", "system"]
        } else {
            &["system", "user", "system", "assistant", "user"]
        };
        assert_eq!(roles(&upstream), expected, "{case}");
        assert!(
            upstream["messages"][2]["content"]
                .as_str()
                .unwrap()
                .starts_with("# Environment"),
            "{case}: the mid-conversation system message keeps its place"
        );
        let text = upstream.to_string();
        assert!(
            !text.contains("x-anthropic-billing-header"),
            "{case}: {text}"
        );
        let tools: Vec<_> = upstream["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap().to_string())
            .collect();
        assert!(tools.contains(&"ToolSearch".to_string()), "{tools:?}");
        assert!(
            !tools.contains(&"DeferredToolPlaceholder".to_string()),
            "a deferred tool that was never loaded is not offered: {tools:?}"
        );
    }
}

#[tokio::test]
async fn an_anthropic_backend_gets_system_messages_as_sent_or_folded_into_system() {
    let s = setup().await;
    let url = format!("{}/v1/messages?beta=true", s.gateway.base_url());
    // The beta reaches this backend: the body goes through unchanged (only `model` is set).
    let mut sent = recorded("claude_code_gpt_system_blocks", "sonnet");
    sent["stream"] = json!(false);
    let (status, _, body) = post_json(&url, &claude_code_headers(), &sent).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let [first] = s.anthropic.wait_for_requests(1).await.try_into().unwrap();
    assert_eq!(roles(&first.body), ["user", "system"]);
    assert_eq!(first.body["system"], sent["system"]);
    assert_eq!(first.body["model"], "claude-sonnet-4");
    assert!(
        first
            .header("anthropic-beta")
            .unwrap()
            .contains("mid-conversation-tool-changes-2026-07-01")
    );

    // This backend filters the beta out: the system message joins the top-level `system`.
    let mut folded = recorded("claude_code_gpt_system_string", "claude-strict");
    folded["stream"] = json!(false);
    let (status, _, body) = post_json(&url, &claude_code_headers(), &folded).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let second = s.anthropic.wait_for_requests(2).await[1].clone();
    assert_eq!(
        second.header("anthropic-beta"),
        Some("claude-code-20250219,interleaved-thinking-2025-05-14")
    );
    assert_eq!(roles(&second.body), ["user", "assistant", "user"]);
    let system = second.body["system"].as_array().unwrap();
    assert_eq!(system.len(), sent["system"].as_array().unwrap().len() + 1);
    assert!(
        system.last().unwrap()["text"]
            .as_str()
            .unwrap()
            .starts_with("# Environment")
    );
    assert!(
        system[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("x-anthropic-billing-header"),
        "an Anthropic backend keeps Claude Code's billing line"
    );
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {list}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn claude_code_model_discovery_gets_the_anthropic_list() {
    let s = setup().await;
    let base = s.gateway.base_url();
    // What Claude Code sends with CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1.
    let discovery = [
        ("authorization", "Bearer sb-client-key-e2e"),
        ("x-api-key", CLIENT_KEY),
        ("anthropic-version", "2023-06-01"),
        ("user-agent", "claude-cli/2.1.328 (external, sdk-cli)"),
    ];
    let (status, _, body) = get(&format!("{base}/v1/models?limit=1000"), &discovery).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let list = json_body(&body);
    assert_eq!(
        ids(&list),
        ["claude-sonnet-4", "claude-strict", "gpt-4.1", "sonnet"]
    );
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], "claude-sonnet-4");
    assert_eq!(list["last_id"], "sonnet");
    let sonnet = &list["data"][3];
    assert_eq!(sonnet["type"], "model");
    assert_eq!(sonnet["display_name"], "sonnet (claude-sonnet-4)");
    assert_eq!(
        sonnet["description"],
        "Alias of claude-sonnet-4; context window 200000 tokens"
    );
    assert!(sonnet["created_at"].as_str().unwrap().ends_with('Z'));

    // Pages, as the Anthropic SDK walks them.
    let (_, _, body) = get(&format!("{base}/v1/models?limit=3"), &discovery).await;
    let page = json_body(&body);
    assert_eq!(ids(&page), ["claude-sonnet-4", "claude-strict", "gpt-4.1"]);
    assert_eq!(page["has_more"], true);
    let (_, _, body) = get(
        &format!("{base}/v1/models?limit=3&after_id=gpt-4.1"),
        &discovery,
    )
    .await;
    let page = json_body(&body);
    assert_eq!(ids(&page), ["sonnet"]);
    assert_eq!(page["has_more"], false);
    let (status, _, body) = get(&format!("{base}/v1/models?limit=0"), &discovery).await;
    assert_eq!(status, 400);
    assert_eq!(json_body(&body)["error"]["type"], "invalid_request_error");

    // OpenAI clients keep the OpenAI shape.
    let (status, _, body) = get(
        &format!("{base}/v1/models"),
        &[("authorization", "Bearer sb-client-key-e2e")],
    )
    .await;
    assert_eq!(status, 200);
    let list = json_body(&body);
    assert_eq!(list["object"], "list");
    assert_eq!(ids(&list).len(), 4);
    assert_eq!(list["data"][0]["object"], "model");

    // A caller the route's teams refuse sees no list (as it could send no request).
    let (status, _, body) = get(
        &format!("{base}/v1/models?limit=1000"),
        &[
            ("x-api-key", OUTSIDER_KEY),
            ("anthropic-version", "2023-06-01"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_body(&body)["error"]["type"], "permission_error");
}

#[tokio::test]
async fn codex_model_metadata_call_gets_codex_shape() {
    let s = setup().await;
    let (status, _, body) = get(
        &format!("{}/v1/models?client_version=0.169.0", s.gateway.base_url()),
        &[
            ("authorization", "Bearer sb-client-key-e2e"),
            ("originator", "codex_exec"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    // Codex decodes `{"models": [...]}`; see dataplane/src/catalog/shapes.rs for why it is empty.
    assert_eq!(json_body(&body), json!({"models": []}));
}

#[tokio::test]
async fn count_tokens_on_an_openai_model_is_a_real_tokenizer_count() {
    let s = setup().await;
    let url = format!(
        "{}/v1/messages/count_tokens?beta=true",
        s.gateway.base_url()
    );
    // "hello world" is 2 o200k tokens; a user message adds 3 of framing and 1 for its role,
    // and the reply priming 3: what OpenAI bills for this prompt on gpt-4.1.
    let (status, headers, body) = post_json(
        &url,
        &claude_code_headers(),
        &json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hello world"}]}),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_body(&body), json!({"input_tokens": 9}));
    assert_eq!(headers["x-switchboard-tokenizer"], "o200k_base");
    assert!(headers.get("x-switchboard-estimate").is_none());

    // Claude Code's real request: counted as the OpenAI backend would receive it.
    let mut recorded = recorded("claude_code_gpt_system_string", "gpt-4.1");
    for field in [
        "stream",
        "max_tokens",
        "metadata",
        "context_management",
        "output_config",
    ] {
        recorded.as_object_mut().unwrap().remove(field);
    }
    let (status, headers, body) = post_json(&url, &claude_code_headers(), &recorded).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let n = json_body(&body)["input_tokens"].as_u64().unwrap();
    assert!(n > 1000, "{n}");
    assert_eq!(headers["x-switchboard-tokenizer"], "o200k_base");
    assert_eq!(
        s.openai.request_count(),
        0,
        "counted locally, nothing sent upstream"
    );
}
