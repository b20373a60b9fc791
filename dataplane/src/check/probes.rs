//! The requests of the compatibility self-test: what each supported agent
//! sends (recorded in `reference/clients.md`), built without IO.
//!
//! The bodies are small versions of the real ones (a short prompt, a
//! `max_tokens` of 64, no extended thinking) so a check costs a few hundred
//! tokens per agent on a real provider; the shape (headers, query strings,
//! roles, tool kinds, unknown fields) is the agent's own.

use http::Method;
use serde_json::{Value, json};

use super::verify::{self, Answer};

/// Who a probe stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    /// Claude Code (Anthropic Messages, `?beta=true`, apiKeyHelper token).
    ClaudeCode,
    /// Codex CLI (OpenAI Responses, model metadata).
    Codex,
    /// OpenCode and the OpenAI SDKs (Chat Completions).
    OpenAiSdk,
    /// The Anthropic SDK 2.x (Bearer, new `anthropic-version`).
    AnthropicSdk,
}

impl Agent {
    /// The name printed in the report.
    pub fn label(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "Claude Code",
            Agent::Codex => "Codex",
            Agent::OpenAiSdk => "OpenCode / OpenAI SDK",
            Agent::AnthropicSdk => "Anthropic SDK",
        }
    }
}

/// The model each agent asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Models {
    /// Claude Code's `ANTHROPIC_MODEL`.
    pub claude_code: String,
    /// Codex's `model`.
    pub codex: String,
    /// OpenCode's / the OpenAI SDK's model.
    pub openai: String,
    /// The Anthropic SDK's model.
    pub anthropic: String,
}

/// One HTTP request of a probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    /// `GET` or `POST`.
    pub method: Method,
    /// Path below the route's base URL, with its query (`/v1/messages?beta=true`).
    pub path: &'static str,
    /// Headers, the credential included.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body (`POST` only).
    pub body: Option<Value>,
}

/// Checks an answer: `Ok(detail)` or `Err(reason)`.
pub type Verify = fn(&Answer, &Models) -> Result<String, String>;

/// One thing an agent does, and how its answer must look.
pub struct Probe {
    /// The agent.
    pub agent: Agent,
    /// What is exercised (one line).
    pub name: &'static str,
    /// The request.
    pub request: ProbeRequest,
    /// The check of the answer.
    pub verify: Verify,
}

/// A token no gateway accepts (Claude Code and Codex must get a 401 for it:
/// that is what makes them fetch a new token).
pub const INVALID_TOKEN: &str = "switchboard-check-invalid-token";

/// Claude Code's betas; a model name it does not know as Claude adds two.
const CLAUDE_CODE_BETAS: &str = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20";
const NON_CLAUDE_BETAS: &str = ",mid-conversation-tool-changes-2026-07-01,effort-2025-11-24";

/// The session id the probes send (one per run of the check).
const SESSION: &str = "00000000-5b0a-4c4e-8c4b-000000c4ec00";

/// Every probe, in the order they run.
pub fn all(models: &Models, token: &str) -> Vec<Probe> {
    vec![
        Probe {
            agent: Agent::ClaudeCode,
            name: "Messages stream, ?beta=true, its betas and headers, system blocks, deferred tool",
            request: claude_code_messages(&models.claude_code, token),
            verify: verify::messages_stream,
        },
        Probe {
            agent: Agent::ClaudeCode,
            name: "an invalid token gets 401 authentication_error (it then refreshes)",
            request: claude_code_messages(&models.claude_code, INVALID_TOKEN),
            verify: verify::anthropic_401,
        },
        Probe {
            agent: Agent::ClaudeCode,
            name: "model discovery: GET /v1/models?limit=1000",
            request: ProbeRequest {
                method: Method::GET,
                path: "/v1/models?limit=1000",
                headers: vec![
                    ("x-api-key", token.to_owned()),
                    ("authorization", format!("Bearer {token}")),
                    ("anthropic-version", "2023-06-01".into()),
                    (
                        "user-agent",
                        "claude-cli/2.1.330 (external, sdk-cli)".into(),
                    ),
                ],
                body: None,
            },
            verify: verify::anthropic_model_list,
        },
        Probe {
            agent: Agent::Codex,
            name: "model metadata: GET /v1/models?client_version=0.169.0",
            request: ProbeRequest {
                method: Method::GET,
                path: "/v1/models?client_version=0.169.0",
                headers: codex_headers(token),
                body: None,
            },
            verify: verify::codex_model_list,
        },
        Probe {
            agent: Agent::Codex,
            name: "Responses stream, developer messages, namespace and web_search tools, store:false",
            request: codex_responses(&models.codex, token),
            verify: verify::responses_stream,
        },
        Probe {
            agent: Agent::Codex,
            name: "an invalid token gets 401 (it then re-runs its token command)",
            request: codex_responses(&models.codex, INVALID_TOKEN),
            verify: verify::openai_401,
        },
        Probe {
            agent: Agent::OpenAiSdk,
            name: "Chat Completions stream with stream_options.include_usage",
            request: ProbeRequest {
                method: Method::POST,
                path: "/v1/chat/completions",
                headers: vec![
                    ("authorization", format!("Bearer {token}")),
                    ("content-type", "application/json".into()),
                    ("accept", "text/event-stream".into()),
                    ("x-session-id", "ses_switchboard_check".into()),
                    (
                        "user-agent",
                        "opencode/1.18.33 ai-sdk/provider-utils/4.0.23".into(),
                    ),
                ],
                body: Some(json!({
                    "model": models.openai,
                    "stream": true,
                    "stream_options": {"include_usage": true},
                    "max_tokens": 64,
                    "messages": [
                        {"role": "system", "content": "You are a compatibility check. Answer in one word."},
                        {"role": "user", "content": "Say OK."}
                    ],
                    "tools": [{"type": "function", "function": {"name": "read", "description": "Read a file",
                        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}],
                    "tool_choice": "auto"
                })),
            },
            verify: verify::chat_stream_with_usage,
        },
        Probe {
            agent: Agent::AnthropicSdk,
            name: "Messages with Authorization: Bearer and anthropic-version 2026-10-21",
            request: ProbeRequest {
                method: Method::POST,
                path: "/v1/messages",
                headers: vec![
                    ("authorization", format!("Bearer {token}")),
                    ("anthropic-version", "2026-10-21".into()),
                    ("content-type", "application/json".into()),
                    ("user-agent", "Anthropic/Python 2.12.0".into()),
                ],
                body: Some(json!({
                    "model": models.anthropic,
                    "max_tokens": 64,
                    "messages": [{"role": "user", "content": "Say OK."}]
                })),
            },
            verify: verify::anthropic_message,
        },
    ]
}

/// Claude Code's first request, small: three system blocks (its billing
/// line first), cache breakpoints, tools with its deferred placeholder, its
/// metadata and `context_management`; on a model name that is not Claude's,
/// a `role: "system"` message inside `messages` and the two extra betas.
fn claude_code_messages(model: &str, token: &str) -> ProbeRequest {
    let claude = model.contains("claude");
    let mut betas = CLAUDE_CODE_BETAS.to_owned();
    if !claude {
        betas.push_str(NON_CLAUDE_BETAS);
    }
    let mut messages = vec![json!({"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>\nThis is a compatibility check.\n</system-reminder>"},
        {"type": "text", "text": "Say OK.", "cache_control": {"type": "ephemeral"}}
    ]})];
    if !claude {
        messages.push(json!({"role": "system", "content": "# Environment\nYou are running a gateway compatibility check."}));
    }
    let user_id =
        json!({"device_id": "switchboard-check", "account_uuid": "", "session_id": SESSION})
            .to_string();
    ProbeRequest {
        method: Method::POST,
        path: "/v1/messages?beta=true",
        headers: vec![
            // apiKeyHelper output goes in both credential headers.
            ("x-api-key", token.to_owned()),
            ("authorization", format!("Bearer {token}")),
            ("anthropic-version", "2023-06-01".into()),
            ("anthropic-beta", betas),
            ("anthropic-dangerous-direct-browser-access", "true".into()),
            ("x-app", "cli".into()),
            (
                "user-agent",
                "claude-cli/2.1.330 (external, sdk-cli)".into(),
            ),
            ("x-claude-code-session-id", SESSION.into()),
            ("content-type", "application/json".into()),
            ("accept", "text/event-stream".into()),
        ],
        body: Some(json!({
            "model": model,
            "max_tokens": 64,
            "stream": true,
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.572; cc_entrypoint=sdk-cli;"},
                {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Answer in one word.", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": messages,
            "tools": [
                {"name": "Read", "description": "Read a file", "input_schema": {"type": "object",
                    "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
                {"name": "ToolSearch", "description": "Find deferred tools", "input_schema": {"type": "object",
                    "properties": {"query": {"type": "string"}}, "required": ["query"]}},
                {"name": "DeferredToolPlaceholder", "description": "Loaded on demand", "defer_loading": true,
                    "input_schema": {"type": "object", "properties": {}}}
            ],
            "metadata": {"user_id": user_id},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
        })),
    }
}

fn codex_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {token}")),
        ("originator", "codex_exec".into()),
        ("session-id", SESSION.into()),
        ("thread-id", SESSION.into()),
        ("x-client-request-id", SESSION.into()),
        (
            "user-agent",
            "codex_exec/0.169.0 (switchboard check) dumb (codex_exec; 0.169.0)".into(),
        ),
    ]
}

/// Codex's request, small: developer messages and no `instructions`,
/// function, `namespace` and hosted `web_search` tools, stateless.
fn codex_responses(model: &str, token: &str) -> ProbeRequest {
    let mut headers = codex_headers(token);
    headers.push(("content-type", "application/json".into()));
    headers.push(("accept", "text/event-stream".into()));
    ProbeRequest {
        method: Method::POST,
        path: "/v1/responses",
        headers,
        body: Some(json!({
            "model": model,
            "stream": true,
            "store": false,
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are a compatibility check. Answer in one word."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say OK."}]}
            ],
            "tools": [
                {"type": "function", "name": "exec_command", "description": "Run a command", "strict": false,
                    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
                {"type": "namespace", "name": "multi_agent_v1", "description": "Agents", "tools": [
                    {"type": "function", "name": "spawn_agent", "strict": false,
                        "parameters": {"type": "object", "properties": {"task": {"type": "string"}}}}]},
                {"type": "web_search", "external_web_access": false}
            ],
            "tool_choice": "auto",
            "parallel_tool_calls": true,
            "max_output_tokens": 64,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": SESSION
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(name: &str) -> Models {
        Models {
            claude_code: name.into(),
            codex: name.into(),
            openai: name.into(),
            anthropic: name.into(),
        }
    }

    #[test]
    fn claude_code_on_a_gpt_model_sends_a_system_message_and_the_extra_betas() {
        let gpt = claude_code_messages("gpt-4.1", "t");
        let roles: Vec<_> = gpt.body.as_ref().unwrap()["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "system"]);
        let betas = &gpt
            .headers
            .iter()
            .find(|(n, _)| *n == "anthropic-beta")
            .unwrap()
            .1;
        assert!(betas.ends_with("mid-conversation-tool-changes-2026-07-01,effort-2025-11-24"));
        let claude = claude_code_messages("claude-sonnet-4", "t");
        assert_eq!(
            claude.body.as_ref().unwrap()["messages"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn every_agent_is_probed_and_the_invalid_token_is_only_in_its_probes() {
        let probes = all(&models("m"), "good-token");
        for agent in [
            Agent::ClaudeCode,
            Agent::Codex,
            Agent::OpenAiSdk,
            Agent::AnthropicSdk,
        ] {
            assert!(probes.iter().any(|p| p.agent == agent), "{agent:?}");
        }
        let invalid = probes
            .iter()
            .filter(|p| {
                p.request
                    .headers
                    .iter()
                    .any(|(_, v)| v.contains(INVALID_TOKEN))
            })
            .count();
        assert_eq!(invalid, 2);
    }
}
