//! Request: Anthropic Messages → Bedrock Converse (`protocols.md` §4.3,
//! §4.10). Clients of the other formats reach Converse through Messages
//! first (`chat_to_messages`, the Responses translation), so this is the one
//! Converse request builder.
//!
//! | Messages | Converse |
//! |---|---|
//! | `system` string / text blocks (`cache_control`) | `system: [{text}, {cachePoint}]` |
//! | `text` (`cache_control`) | `{text}` (+ `{cachePoint:{type:default}}` after it) |
//! | `image` base64 | `{image:{format, source:{bytes}}}` (URL images are refused: Converse takes bytes) |
//! | `document` base64 PDF / text | `{document:{format: pdf / txt, name, source:{bytes}}}` |
//! | `tool_use` | `{toolUse:{toolUseId, name, input}}` |
//! | `tool_result` (`is_error`) | `{toolResult:{toolUseId, content:[{text}/{image}], status}}` |
//! | `thinking` / `redacted_thinking` | `{reasoningContent:{reasoningText:{text, signature}}}` / `{reasoningContent:{redactedContent}}` |
//! | `max_tokens`, `temperature`, `top_p`, `stop_sequences` | `inferenceConfig.{maxTokens, temperature, topP, stopSequences}` |
//! | `top_k`, `thinking`, forwarded betas | `additionalModelRequestFields.{top_k, thinking, anthropic_beta}` |
//! | `tools` (`cache_control`) | `toolConfig.tools[{toolSpec:{name, description, inputSchema:{json}}}]` (+ `cachePoint`) |
//! | `tool_choice` auto / any / tool | `toolConfig.toolChoice {auto:{}} / {any:{}} / {tool:{name}}`; `none` omits the choice |
//!
//! Consecutive turns of one role are merged (Bedrock requires strict
//! alternation). Tool names longer than 64 characters or with other
//! characters than `[a-zA-Z0-9_-]` are shortened deterministically; the
//! returned [`ToolNames`] restores them in the answer. A history with tool
//! calls but no `tools` declares the tools it used (Bedrock requires a
//! `toolConfig` then). Dropped: `metadata`, `stream` (the path says it),
//! `service_tier`, `context_management`, `output_config.effort`,
//! `disable_parallel_tool_use`, `cache_control.ttl`, citations. Refused:
//! URL images and documents, server tools (`web_search_…`), `output_config.format`,
//! `mcp_servers`, `container`, unknown block types.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::translate::names::{OPENAI_NAME_MAX, ToolNames, anthropic_id};
use crate::translate::{DEFAULT_MAX_TOKENS, TranslateError};

const TARGET: &str = "Bedrock Converse";

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported {
        field: field.into(),
        target: TARGET,
        reason: reason.into(),
    }
}

/// Options of one Converse request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConverseOptions {
    /// Betas to forward in `additionalModelRequestFields.anthropic_beta`
    /// (Claude models only; empty for others).
    pub betas: Vec<String>,
    /// `maxTokens` when the request has no `max_tokens` (0: the default).
    pub default_max_tokens: u64,
}

/// The longest Converse tool name.
pub const CONVERSE_NAME_MAX: usize = OPENAI_NAME_MAX;

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

fn has_cache_control(block: &Value) -> bool {
    block.get("cache_control").is_some_and(|c| !c.is_null())
}

/// Image `media_type` → Converse image `format`.
fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

/// A Converse document name: letters, digits, single spaces, `-()[]`.
fn document_name(title: Option<&str>, index: usize) -> String {
    let cleaned: String = title
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
                c
            } else {
                ' '
            }
        })
        .collect();
    let name = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        format!("document-{index}")
    } else {
        name.chars().take(200).collect()
    }
}

struct Builder<'a> {
    names: &'a mut ToolNames,
    documents: usize,
    /// Tool names used in the history, for a `toolConfig` the request lacks.
    used_tools: Vec<String>,
}

impl Builder<'_> {
    fn tool_name(&mut self, name: &str) -> String {
        self.names.to_target(name, CONVERSE_NAME_MAX)
    }

    fn image(&self, path: &str, block: &Value) -> Result<Value, TranslateError> {
        let source = block.get("source").unwrap_or(&Value::Null);
        match source.get("type").and_then(Value::as_str) {
            Some("base64") => {
                let media = source["media_type"].as_str().unwrap_or_default();
                let format = image_format(media).ok_or_else(|| {
                    unsupported(
                        format!("{path}.source.media_type"),
                        format!("image type {media:?}"),
                    )
                })?;
                Ok(json!({"image": {"format": format, "source": {"bytes": source["data"]}}}))
            }
            _ => Err(unsupported(
                format!("{path}.source"),
                "Converse takes image bytes; URL and file images are not fetched",
            )),
        }
    }

    fn document(&mut self, path: &str, block: &Value) -> Result<Value, TranslateError> {
        let source = block.get("source").unwrap_or(&Value::Null);
        self.documents += 1;
        let name = document_name(block.get("title").and_then(Value::as_str), self.documents);
        let (format, bytes) = match source.get("type").and_then(Value::as_str) {
            Some("base64") if source["media_type"] == "application/pdf" => {
                ("pdf", source["data"].clone())
            }
            Some("text") => {
                let text = source["data"].as_str().unwrap_or_default();
                ("txt", json!(B64.encode(text)))
            }
            _ => {
                return Err(unsupported(
                    format!("{path}.source"),
                    "only base64 PDF and text documents translate",
                ));
            }
        };
        Ok(json!({"document": {"format": format, "name": name, "source": {"bytes": bytes}}}))
    }

    /// Converts one content block; `Ok(None)` drops it.
    fn block(
        &mut self,
        path: &str,
        block: &Value,
        role: &str,
    ) -> Result<Option<Value>, TranslateError> {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let out = match kind {
            "text" => {
                let text = block["text"].as_str().unwrap_or_default();
                if text.trim().is_empty() {
                    return Ok(None);
                }
                json!({"text": text})
            }
            "image" => self.image(path, block)?,
            "document" => self.document(path, block)?,
            "tool_use" => {
                let name = block["name"].as_str().unwrap_or_default();
                self.used_tools.push(name.to_string());
                let id = anthropic_id(block["id"].as_str().unwrap_or_default());
                let input = match block.get("input") {
                    Some(v) if v.is_object() => v.clone(),
                    _ => json!({}),
                };
                json!({"toolUse": {"toolUseId": id, "name": self.tool_name(name), "input": input}})
            }
            "tool_result" => {
                let id = anthropic_id(block["tool_use_id"].as_str().unwrap_or_default());
                let mut content = Vec::new();
                match block.get("content") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => {
                        if !s.is_empty() {
                            content.push(json!({"text": s}));
                        }
                    }
                    Some(Value::Array(items)) => {
                        for (j, item) in items.iter().enumerate() {
                            let p = format!("{path}.content[{j}]");
                            match item.get("type").and_then(Value::as_str) {
                                Some("text") => {
                                    let t = item["text"].as_str().unwrap_or_default();
                                    if !t.is_empty() {
                                        content.push(json!({"text": t}));
                                    }
                                }
                                Some("image") => content.push(self.image(&p, item)?),
                                Some("document") => content.push(self.document(&p, item)?),
                                other => {
                                    return Err(unsupported(
                                        p,
                                        format!("tool result block {other:?}"),
                                    ));
                                }
                            }
                        }
                    }
                    Some(_) => {
                        return Err(TranslateError::invalid(
                            format!("{path}.content"),
                            "must be a string or an array",
                        ));
                    }
                }
                let mut result = json!({"toolUseId": id, "content": content});
                if block.get("is_error").and_then(Value::as_bool) == Some(true) {
                    result["status"] = json!("error");
                }
                json!({"toolResult": result})
            }
            "thinking" => {
                if role != "assistant" {
                    return Ok(None);
                }
                let mut text = json!({"text": block["thinking"].as_str().unwrap_or_default()});
                if let Some(sig) = block
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    text["signature"] = json!(sig);
                }
                json!({"reasoningContent": {"reasoningText": text}})
            }
            "redacted_thinking" => {
                if role != "assistant" {
                    return Ok(None);
                }
                json!({"reasoningContent": {"redactedContent": block["data"]}})
            }
            other => {
                return Err(unsupported(
                    format!("{path}.type"),
                    format!("content block {other:?} has no Converse equivalent"),
                ));
            }
        };
        Ok(Some(out))
    }
}

fn push_or_merge(messages: &mut Vec<Value>, role: &str, content: Vec<Value>) {
    if content.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut()
        && last["role"] == role
        && let Some(list) = last["content"].as_array_mut()
    {
        list.extend(content);
        return;
    }
    messages.push(json!({"role": role, "content": content}));
}

/// Translates an Anthropic Messages request into a Converse request body.
/// Returns the body and the tool names changed for Converse.
pub fn request_from_messages(
    body: &Value,
    opts: &ConverseOptions,
) -> Result<(Value, ToolNames), TranslateError> {
    let obj = body
        .as_object()
        .ok_or_else(|| TranslateError::invalid("body", "must be a JSON object"))?;
    let mut names = ToolNames::default();
    let mut b = Builder {
        names: &mut names,
        documents: 0,
        used_tools: Vec::new(),
    };
    let mut out = Map::new();
    let mut inference = Map::new();
    let mut additional = Map::new();
    let mut tool_choice = None;

    for (key, value) in obj {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "model" | "messages" | "system" | "tools" | "stream" | "metadata" | "service_tier"
            | "context_management" | "anthropic_version" | "anthropic_beta" => {}
            "max_tokens" => {
                inference.insert("maxTokens".into(), value.clone());
            }
            "temperature" => {
                inference.insert("temperature".into(), value.clone());
            }
            "top_p" => {
                inference.insert("topP".into(), value.clone());
            }
            "stop_sequences" => {
                inference.insert("stopSequences".into(), value.clone());
            }
            "top_k" => {
                additional.insert("top_k".into(), value.clone());
            }
            "thinking" => {
                let mut t = value.clone();
                if let Some(o) = t.as_object_mut() {
                    // Claude Code's `display` hint is not part of the Bedrock schema.
                    o.remove("display");
                }
                additional.insert("thinking".into(), t);
            }
            "tool_choice" => tool_choice = Some(value.clone()),
            "output_config" => {
                if value.get("format").is_some_and(|f| !f.is_null()) {
                    return Err(unsupported(
                        "output_config.format",
                        "structured output is not translated to Converse",
                    ));
                }
            }
            other => return Err(unsupported(other, "no Converse equivalent")),
        }
    }
    if !inference.contains_key("maxTokens") {
        let n = if opts.default_max_tokens > 0 {
            opts.default_max_tokens
        } else {
            DEFAULT_MAX_TOKENS
        };
        inference.insert("maxTokens".into(), json!(n));
    }

    // System.
    let mut system = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            if !s.trim().is_empty() {
                system.push(json!({"text": s}));
            }
        }
        Some(Value::Array(blocks)) => {
            for (i, block) in blocks.iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(unsupported(
                        format!("system[{i}].type"),
                        "only text system blocks",
                    ));
                }
                let text = block["text"].as_str().unwrap_or_default();
                if !text.trim().is_empty() {
                    system.push(json!({"text": text}));
                }
                if has_cache_control(block) && !system.is_empty() {
                    system.push(cache_point());
                }
            }
        }
        Some(_) => {
            return Err(TranslateError::invalid(
                "system",
                "must be a string or an array",
            ));
        }
    }

    // Messages.
    let list = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::invalid("messages", "must be an array"))?;
    let mut messages = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != "user" && role != "assistant" {
            // Claude Code puts `system` turns inside messages for non-Claude
            // model names: they join the system prompt.
            if role == "system" {
                match m.get("content") {
                    Some(Value::String(s)) if !s.trim().is_empty() => {
                        system.push(json!({"text": s}))
                    }
                    Some(Value::Array(blocks)) => {
                        for bl in blocks {
                            if let Some(t) = bl
                                .get("text")
                                .and_then(Value::as_str)
                                .filter(|t| !t.trim().is_empty())
                            {
                                system.push(json!({"text": t}));
                            }
                        }
                    }
                    _ => {}
                }
                continue;
            }
            return Err(TranslateError::invalid(
                format!("messages[{i}].role"),
                "must be user or assistant",
            ));
        }
        let mut content = Vec::new();
        match m.get("content") {
            Some(Value::String(s)) => {
                if !s.trim().is_empty() {
                    content.push(json!({"text": s}));
                }
            }
            Some(Value::Array(blocks)) => {
                for (j, block) in blocks.iter().enumerate() {
                    let path = format!("messages[{i}].content[{j}]");
                    if let Some(c) = b.block(&path, block, role)? {
                        content.push(c);
                        if has_cache_control(block) {
                            content.push(cache_point());
                        }
                    }
                }
            }
            _ => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].content"),
                    "must be a string or an array",
                ));
            }
        }
        push_or_merge(&mut messages, role, content);
    }

    // Tools.
    let mut tools = Vec::new();
    if let Some(list) = obj.get("tools").filter(|t| !t.is_null()) {
        let list = list
            .as_array()
            .ok_or_else(|| TranslateError::invalid("tools", "must be an array"))?;
        for (i, t) in list.iter().enumerate() {
            if t.get("type")
                .and_then(Value::as_str)
                .is_some_and(|ty| ty != "custom")
            {
                return Err(unsupported(
                    format!("tools[{i}].type"),
                    "server tools run at Anthropic only",
                ));
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::invalid(format!("tools[{i}].name"), "missing"))?;
            let mut spec = json!({
                "name": b.tool_name(name),
                "inputSchema": {"json": t.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"}))}
            });
            if let Some(d) = t
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
            {
                spec["description"] = json!(d);
            }
            tools.push(json!({"toolSpec": spec}));
            if has_cache_control(t) {
                tools.push(cache_point());
            }
        }
    }
    if tools.is_empty() && !b.used_tools.is_empty() {
        let mut seen = Vec::new();
        for name in std::mem::take(&mut b.used_tools) {
            if !seen.contains(&name) {
                let mapped = b.tool_name(&name);
                tools.push(json!({"toolSpec": {"name": mapped, "inputSchema": {"json": {"type": "object"}}}}));
                seen.push(name);
            }
        }
    }
    if !tools.is_empty() {
        let mut config = json!({"tools": tools});
        match tool_choice
            .as_ref()
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str)
        {
            None | Some("none") => {}
            Some("auto") => config["toolChoice"] = json!({"auto": {}}),
            Some("any") => config["toolChoice"] = json!({"any": {}}),
            Some("tool") => {
                let name = tool_choice
                    .as_ref()
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                config["toolChoice"] = json!({"tool": {"name": b.tool_name(name)}});
            }
            Some(other) => {
                return Err(TranslateError::invalid(
                    "tool_choice.type",
                    format!("unknown value {other:?}"),
                ));
            }
        }
        out.insert("toolConfig".into(), config);
    }

    if !opts.betas.is_empty() {
        additional.insert("anthropic_beta".into(), json!(opts.betas));
    }
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("inferenceConfig".into(), Value::Object(inference));
    if !additional.is_empty() {
        out.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    Ok((Value::Object(out), names))
}
