//! The requests real coding agents send (see `reference/clients.md`), for end-to-end tests: Claude
//! Code's Messages stream, Codex's Responses stream and OpenCode's Chat stream, with their headers.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::stack::CLIENT_KEY;

/// Claude Code's path: Messages with `?beta=true`.
pub const CLAUDE_CODE_PATH: &str = "/v1/messages?beta=true";

/// Claude Code's session id in [`claude_code_headers`].
pub const CLAUDE_CODE_SESSION: &str = "0f7f8919-2eac-4385-a9f8-0fadf4c343ac";

/// Codex's session id in [`codex_headers`].
pub const CODEX_SESSION: &str = "019ae2c4-7d1f-7c52-9a53-2f1f4a1c0b6e";

/// Claude Code's recorded first request (trimmed texts, same structure), streaming, for `model`.
pub fn claude_code_body(model: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../dataplane/src/translate/testdata/request/messages_to_chat/claude_code.in.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut body: Value = serde_json::from_str(&text).expect("recorded body is JSON");
    body["model"] = json!(model);
    body["stream"] = json!(true);
    body
}

/// The headers Claude Code sends with an apiKeyHelper (the token in both credential headers).
pub fn claude_code_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-api-key", CLIENT_KEY),
        ("authorization", "Bearer sb-client-key-e2e"),
        ("anthropic-version", "2023-06-01"),
        (
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27",
        ),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("x-app", "cli"),
        ("user-agent", "claude-cli/2.1.330 (external, sdk-cli)"),
        ("x-claude-code-session-id", CLAUDE_CODE_SESSION),
    ]
}

/// A Codex request: developer messages, no `instructions`, stateless, encrypted reasoning asked for.
pub fn codex_body(model: &str) -> Value {
    json!({
        "model": model, "stream": true, "store": false,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files"}]}
        ],
        "tools": [{"type": "function", "name": "exec_command", "strict": false,
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}],
        "tool_choice": "auto", "parallel_tool_calls": true,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": CODEX_SESSION
    })
}

/// The headers Codex 0.169 sends (`session-id` = `thread-id` = `x-client-request-id`).
pub fn codex_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("authorization", "Bearer sb-client-key-e2e"),
        ("originator", "codex_exec"),
        ("session-id", CODEX_SESSION),
        ("thread-id", CODEX_SESSION),
        ("x-client-request-id", CODEX_SESSION),
        (
            "user-agent",
            "codex_exec/0.169.0 (Debian 12.0.0; x86_64) dumb (codex_exec; 0.169.0)",
        ),
    ]
}

/// OpenCode's Chat request (openai-compatible provider): streamed, usage asked for.
pub fn opencode_body(model: &str) -> Value {
    json!({
        "model": model, "stream": true, "stream_options": {"include_usage": true},
        "max_tokens": 32000,
        "messages": [
            {"role": "system", "content": "You are opencode."},
            {"role": "user", "content": "hello"}
        ],
        "tool_choice": "auto"
    })
}

/// The headers OpenCode sends.
pub fn opencode_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("authorization", "Bearer sb-client-key-e2e"),
        ("x-session-id", "ses_e2e"),
        ("x-session-affinity", "ses_e2e"),
        (
            "user-agent",
            "opencode/1.18.33 ai-sdk/provider-utils/4.0.23 runtime/bun/1.3.14",
        ),
    ]
}
