//! Request translation: Anthropic Messages → OpenAI Chat Completions (§3.2).
//!
//! Carried: `system` (→ one system message), `role: "system"` messages
//! inside `messages` (Claude Code on non-Claude models; → `system` messages
//! in place, see [`super::system_messages`]), text, images (base64 → data
//! URL, url → url), tool definitions (`input_schema` → `parameters`; names
//! over 64 characters shortened and restored in the answer), `tool_choice`
//! and `disable_parallel_tool_use`, `tool_use` (→ `tool_calls`), each
//! `tool_result` (→ one `tool` message, emitted before the rest of the user
//! turn; `is_error` prefixes the text with `Error: `; images inside a result
//! move to the following user message), `max_tokens` (→
//! `max_completion_tokens`, or `max_tokens` for
//! [`TargetOptions::legacy_max_tokens`]), `stop_sequences` (→ `stop`),
//! `temperature`, `top_p`, `metadata.user_id` (→ `user`),
//! `output_config.format` (→ `response_format`), `stream` (plus
//! `stream_options.include_usage: true`, so usage is known).
//!
//! Dropped on purpose (meaningless for an OpenAI backend): `cache_control`
//! (OpenAI caches automatically), `thinking`, `output_config.effort` and
//! prior `thinking`/`redacted_thinking` blocks (OpenAI cannot replay them;
//! reasoning is a property of the OpenAI model), `top_k`, `service_tier`,
//! `context_management` (Claude Code), Claude Code's
//! `x-anthropic-billing-header` system line, tool `defer_loading` (a
//! deferred tool is declared only once loaded, see
//! [`super::deferred_tools`]), Anthropic server tools and their blocks
//! (`server_tool_use`, `web_search_tool_result`, …),
//! `anthropic_version`/`anthropic_beta` body fields, `citations`.
//!
//! Documents: text → a text part, base64 PDF → a `file` part with a data URL.
//!
//! Rejected: other documents (url, file id), image `file` sources, `mcp_servers`,
//! `container`, unknown top-level fields.

use serde_json::{Map, Value, json};

use super::bounded::{ObjectWriter, for_each, parse_value};
use super::deferred_tools;
use super::names::OPENAI_NAME_MAX;
use super::system_messages::system_message_text;
use super::{Session, TargetOptions, TranslateError, TranslatedBody, TranslatedRequest};

const TARGET: &str = "OpenAI Chat Completions";

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported {
        field: field.into(),
        target: TARGET,
        reason: reason.into(),
    }
}

/// Translates an Anthropic Messages request for an OpenAI backend serving
/// `model` (a tree in, a tree out: tests and tools; the gateway uses
/// [`translate_json`]).
pub fn translate(
    body: &Value,
    model: &str,
    opts: &TargetOptions,
    now: u64,
) -> Result<TranslatedRequest, TranslateError> {
    let json = crate::body::RequestJson::from_value(body)
        .map_err(|e| TranslateError::invalid("body", e.to_string()))?;
    translate_json(&json, model, opts, now)?.into_tree()
}

/// Translates an Anthropic Messages request body for an OpenAI backend
/// serving `model`, in bounded memory (see [`super::bounded`]): messages and
/// tools are translated and written one at a time.
pub fn translate_json(
    json: &crate::body::RequestJson,
    model: &str,
    opts: &TargetOptions,
    now: u64,
) -> Result<TranslatedBody, TranslateError> {
    let mut session = Session {
        created: now,
        ..Session::default()
    };
    let mut out = ObjectWriter::with_capacity(json.bytes().len() + json.bytes().len() / 8 + 1024);
    out.string("model", model);
    let mut system = None;
    for (key, raw) in json.members() {
        if raw == "null" {
            continue;
        }
        match key {
            "model" | "messages" | "tools" | "tool_choice" => {}
            "system" => {
                let text = system_message_text(&parse_value(raw, key)?, "system")?;
                if !text.trim().is_empty() {
                    system = Some(text);
                }
            }
            "max_tokens" => {
                let field = if opts.legacy_max_tokens {
                    "max_tokens"
                } else {
                    "max_completion_tokens"
                };
                out.value(field, &parse_value(raw, key)?);
            }
            "stop_sequences" => {
                let value = parse_value(raw, key)?;
                let stops = value
                    .as_array()
                    .ok_or_else(|| TranslateError::invalid(key, "must be an array"))?;
                if stops.len() > 4 {
                    return Err(unsupported(key, "OpenAI accepts at most 4 stop sequences"));
                }
                if !stops.is_empty() {
                    out.value("stop", &value);
                }
            }
            "temperature" | "top_p" => {
                out.value(key, &parse_value(raw, key)?);
            }
            "stream" => {
                let value = parse_value(raw, key)?;
                out.value("stream", &value);
                if value.as_bool() == Some(true) {
                    out.value("stream_options", &json!({"include_usage": true}));
                }
            }
            "metadata" => {
                let value = parse_value(raw, key)?;
                if let Some(user) = value.get("user_id").and_then(Value::as_str) {
                    out.value("user", &json!(user));
                }
            }
            "output_config" => {
                let value = parse_value(raw, key)?;
                if let Some(format) = value.get("format").filter(|f| !f.is_null()) {
                    let schema = format.get("schema").ok_or_else(|| {
                        unsupported("output_config.format", "only json_schema translates")
                    })?;
                    out.value(
                        "response_format",
                        &json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}}),
                    );
                }
            }
            // Dropped on purpose (see module docs).
            "thinking" | "top_k" | "service_tier" | "context_management" | "anthropic_version"
            | "anthropic_beta" | "cache_control" => {}
            other => return Err(unsupported(other, "no OpenAI equivalent")),
        }
    }
    let tool_choice = match json.raw("tool_choice").filter(|c| *c != "null") {
        Some(raw) => Some(parse_value(raw, "tool_choice")?),
        None => None,
    };

    let list = json
        .raw("messages")
        .ok_or_else(|| TranslateError::invalid("messages", "must be an array"))?;
    out.open_array("messages");
    if let Some(text) = system {
        out.push(&json!({"role": "system", "content": text}));
    }
    let mut produced = Vec::new();
    // Deferred tools the conversation loads (see `deferred_tools`), gathered as the messages
    // go by: tools are written after them.
    let mut loaded = std::collections::HashSet::new();
    if let Some(choice) = &tool_choice {
        deferred_tools::add_loaded_by_choice(&mut loaded, choice);
    }
    for_each(list, "messages", |i, raw| {
        let path = format!("messages[{i}]");
        let m = parse_value(raw, &path)?;
        deferred_tools::add_loaded_by_message(&mut loaded, &m);
        match m.get("role").and_then(Value::as_str) {
            Some("user") => user_messages(
                m.get("content").unwrap_or(&Value::Null),
                &path,
                &mut produced,
            )?,
            Some("system") => {
                let at = format!("{path}.content");
                let text = system_message_text(m.get("content").unwrap_or(&Value::Null), &at)?;
                if !text.trim().is_empty() {
                    produced.push(json!({"role": "system", "content": text}));
                }
            }
            Some("assistant") => {
                if let Some(msg) = assistant_message(
                    m.get("content").unwrap_or(&Value::Null),
                    &path,
                    &mut session,
                )? {
                    produced.push(msg);
                }
            }
            _ => {
                return Err(TranslateError::invalid(
                    format!("{path}.role"),
                    "must be user, assistant or system",
                ));
            }
        }
        for msg in produced.drain(..) {
            out.push(&msg);
        }
        Ok(())
    })?;
    out.close_array();

    let mut has_tools = false;
    if let Some(tools) = json.raw("tools").filter(|t| *t != "null") {
        for_each(tools, "tools", |i, raw| {
            let t = parse_value(raw, &format!("tools[{i}]"))?;
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("custom");
            if kind != "custom" {
                // Anthropic server tools (web search, bash, editor…) run at
                // Anthropic; an OpenAI backend has none: dropped.
                return Ok(());
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::invalid(format!("tools[{i}].name"), "missing"))?;
            if deferred_tools::is_deferred(&t) && !loaded.contains(name) {
                // Not loaded yet: Anthropic would not show it to the model either.
                return Ok(());
            }
            let mut f = Map::new();
            f.insert(
                "name".into(),
                json!(session.tool_names.to_target(name, OPENAI_NAME_MAX)),
            );
            if let Some(d) = t.get("description").filter(|d| !d.is_null()) {
                f.insert("description".into(), d.clone());
            }
            f.insert(
                "parameters".into(),
                t.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            );
            if !has_tools {
                has_tools = true;
                out.open_array("tools");
            }
            out.push(&json!({"type": "function", "function": f}));
            Ok(())
        })?;
        if has_tools {
            out.close_array();
        }
    }
    if let Some(choice) = tool_choice {
        let disable_parallel = choice
            .get("disable_parallel_tool_use")
            .and_then(Value::as_bool);
        let mapped = match choice.get("type").and_then(Value::as_str) {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                let name = choice
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| TranslateError::invalid("tool_choice.name", "missing"))?;
                json!({"type": "function", "function": {"name": session.tool_names.to_target(name, OPENAI_NAME_MAX)}})
            }
            _ => return Err(TranslateError::invalid("tool_choice.type", "unknown type")),
        };
        if has_tools {
            out.value("tool_choice", &mapped);
            if let Some(d) = disable_parallel {
                out.value("parallel_tool_calls", &json!(!d));
            }
        }
    }
    Ok(TranslatedBody {
        body: bytes::Bytes::from(out.finish()),
        session,
    })
}

fn image_part(block: &Value, at: &str) -> Result<Value, TranslateError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = source["media_type"].as_str().unwrap_or("image/png");
            let data = source["data"].as_str().unwrap_or_default();
            Ok(
                json!({"type": "image_url", "image_url": {"url": format!("data:{media};base64,{data}")}}),
            )
        }
        Some("url") => Ok(json!({"type": "image_url", "image_url": {"url": source["url"]}})),
        _ => Err(unsupported(
            format!("{at}.source"),
            "only base64 and url images translate",
        )),
    }
}

fn user_messages(content: &Value, path: &str, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Value::Array(b) => b,
        _ => {
            return Err(TranslateError::invalid(
                format!("{path}.content"),
                "must be a string or an array",
            ));
        }
    };
    let mut parts = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let at = format!("{path}.content[{i}]");
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = b["text"].as_str().unwrap_or_default();
                if !t.is_empty() {
                    parts.push(json!({"type": "text", "text": t}));
                }
            }
            Some("image") => parts.push(image_part(b, &at)?),
            Some("document") => {
                let source = b.get("source").unwrap_or(&Value::Null);
                match (source["type"].as_str(), source["media_type"].as_str()) {
                    (Some("text"), _) => {
                        parts.push(json!({"type": "text", "text": source["data"]}))
                    }
                    (Some("base64"), Some("application/pdf")) => {
                        let data = source["data"].as_str().unwrap_or_default();
                        let name = b["title"].as_str().unwrap_or("document.pdf");
                        parts.push(json!({"type": "file", "file": {
                            "filename": name, "file_data": format!("data:application/pdf;base64,{data}")
                        }}));
                    }
                    _ => {
                        return Err(unsupported(
                            format!("{at}.type=document"),
                            "only text and base64 PDF documents translate",
                        ));
                    }
                }
            }
            Some("tool_result") => {
                let id = b
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::invalid(format!("{at}.tool_use_id"), "missing")
                    })?;
                let mut text = String::new();
                match b.get("content").unwrap_or(&Value::Null) {
                    Value::String(s) => text.push_str(s),
                    Value::Array(inner) => {
                        for (j, c) in inner.iter().enumerate() {
                            match c.get("type").and_then(Value::as_str) {
                                Some("text") => {
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(c["text"].as_str().unwrap_or_default());
                                }
                                // The tool is declared in `tools` (see deferred_tools).
                                Some("tool_reference") => {
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(&deferred_tools::reference_text(c));
                                }
                                // A `tool` message holds text only: images follow in the user turn.
                                Some("image") => {
                                    parts.push(image_part(c, &format!("{at}.content[{j}]"))?)
                                }
                                _ => {
                                    return Err(unsupported(
                                        format!("{at}.content[{j}]"),
                                        "only text, images and tool references translate inside tool results",
                                    ));
                                }
                            }
                        }
                    }
                    _ => {}
                }
                if b.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                // Tool messages go right after the assistant turn, before user content.
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            Some(other) => {
                return Err(unsupported(
                    format!("{at}.type={other}"),
                    "no OpenAI equivalent",
                ));
            }
            None => return Err(TranslateError::invalid(format!("{at}.type"), "missing")),
        }
    }
    if !parts.is_empty() {
        let content = if parts
            .iter()
            .all(|p| p["type"] == "text" && p["text"].is_string())
        {
            json!(
                parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        } else {
            Value::Array(parts)
        };
        out.push(json!({"role": "user", "content": content}));
    }
    Ok(())
}

fn assistant_message(
    content: &Value,
    path: &str,
    session: &mut Session,
) -> Result<Option<Value>, TranslateError> {
    let blocks = match content {
        Value::String(s) => {
            return Ok((!s.is_empty()).then(|| json!({"role": "assistant", "content": s})));
        }
        Value::Array(b) => b,
        _ => {
            return Err(TranslateError::invalid(
                format!("{path}.content"),
                "must be a string or an array",
            ));
        }
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b["text"].as_str().unwrap_or_default()),
            Some("tool_use") => {
                let name = b["name"].as_str().unwrap_or_default();
                let args =
                    serde_json::to_string(b.get("input").unwrap_or(&json!({}))).map_err(|e| {
                        TranslateError::invalid(format!("{path}.content[{i}].input"), e.to_string())
                    })?;
                calls.push(json!({
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": session.tool_names.to_target(name, OPENAI_NAME_MAX), "arguments": args}
                }));
            }
            // Not replayable on OpenAI; server tools ran at Anthropic.
            Some(
                "thinking" | "redacted_thinking" | "server_tool_use" | "web_search_tool_result",
            ) => {}
            Some(other) => {
                return Err(unsupported(
                    format!("{path}.content[{i}].type={other}"),
                    "no OpenAI equivalent",
                ));
            }
            None => {
                return Err(TranslateError::invalid(
                    format!("{path}.content[{i}].type"),
                    "missing",
                ));
            }
        }
    }
    if text.is_empty() && calls.is_empty() {
        return Ok(None);
    }
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    Ok(Some(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_results_become_tool_messages_before_user_text() {
        let body = json!({"model":"m","max_tokens":100,"messages":[
            {"role":"user","content":"go"},
            {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},
                {"type":"tool_use","id":"toolu_1","name":"a","input":{"x":1}},
                {"type":"tool_use","id":"toolu_2","name":"b","input":{}}]},
            {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"toolu_1","content":"one"},
                {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"two"}],"is_error":true},
                {"type":"text","text":"next"}]}
        ]});
        let b = translate(&body, "gpt", &TargetOptions::default(), 0)
            .unwrap()
            .body;
        let roles: Vec<&str> = b["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"]);
        assert_eq!(b["messages"][1]["tool_calls"][1]["id"], "toolu_2");
        assert_eq!(b["messages"][3]["content"], "Error: two");
        assert_eq!(b["max_completion_tokens"], 100);
    }

    #[test]
    fn claude_code_fields_are_dropped_and_unknown_ones_rejected() {
        let body = json!({"model":"m","max_tokens":1,"messages":[],"context_management":{"edits":[]},
            "thinking":{"type":"enabled","budget_tokens":1024},
            "tools":[{"name":"Read","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}},
                     {"name":"DeferredToolPlaceholder","input_schema":{"type":"object"},"defer_loading":true},
                     {"type":"web_search_20250305","name":"web_search"}]});
        let b = translate(&body, "gpt", &TargetOptions::default(), 0)
            .unwrap()
            .body;
        assert_eq!(b["tools"].as_array().unwrap().len(), 1);
        assert_eq!(b["tools"][0]["function"]["name"], "Read");
        assert!(b["tools"][0]["function"].get("cache_control").is_none());
        assert!(b.get("thinking").is_none());
        let bad = json!({"model":"m","max_tokens":1,"messages":[],"mcp_servers":[]});
        assert!(translate(&bad, "gpt", &TargetOptions::default(), 0).is_err());
    }

    #[test]
    fn system_messages_stay_in_place_without_the_billing_line() {
        let body = json!({"model":"m","max_tokens":1,
            "system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.330.572; cc_entrypoint=sdk-cli;"},
                      {"type":"text","text":"You are an agent."}],
            "messages":[
                {"role":"user","content":"hi"},
                {"role":"system","content":[{"type":"text","text":"# Environment","cache_control":{"type":"ephemeral"}}]},
                {"role":"assistant","content":"hello"},
                {"role":"system","content":"# Environment again"},
                {"role":"user","content":"go"}]});
        let b = translate(&body, "gpt", &TargetOptions::default(), 0)
            .unwrap()
            .body;
        assert_eq!(
            b["messages"],
            json!([
                {"role":"system","content":"You are an agent."},
                {"role":"user","content":"hi"},
                {"role":"system","content":"# Environment"},
                {"role":"assistant","content":"hello"},
                {"role":"system","content":"# Environment again"},
                {"role":"user","content":"go"}
            ])
        );
        assert!(!b.to_string().contains("billing"));
    }

    #[test]
    fn a_deferred_tool_is_declared_once_loaded() {
        let tools = json!([
            {"name":"ToolSearch","input_schema":{"type":"object"}},
            {"name":"mcp__jira__create","input_schema":{"type":"object"},"defer_loading":true},
            {"name":"mcp__jira__delete","input_schema":{"type":"object"},"defer_loading":true}]);
        let names = |b: &Value| -> Vec<String> {
            b["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        let first = json!({"model":"m","max_tokens":1,"tools":tools,
            "messages":[{"role":"user","content":"make a ticket"}]});
        let b = translate(&first, "gpt", &TargetOptions::default(), 0)
            .unwrap()
            .body;
        assert_eq!(names(&b), ["ToolSearch"]);
        let later = json!({"model":"m","max_tokens":1,"tools":tools,"messages":[
            {"role":"user","content":"make a ticket"},
            {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"ToolSearch","input":{"query":"jira"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
                {"type":"tool_reference","tool_name":"mcp__jira__create"}]}]}]});
        let b = translate(&later, "gpt", &TargetOptions::default(), 0)
            .unwrap()
            .body;
        assert_eq!(names(&b), ["ToolSearch", "mcp__jira__create"]);
        assert_eq!(
            b["messages"][2],
            json!({"role":"tool","tool_call_id":"t1","content":"Tool loaded: mcp__jira__create"})
        );
    }
}
