//! Request translation: OpenAI Chat Completions → Anthropic Messages (§3.1).
//!
//! Carried: system/developer messages (→ top-level `system` blocks), text,
//! images (data URLs → base64, http(s) → url; PDFs, also as inline `file`
//! parts → `document`), tool
//! definitions, `tool_choice`, `parallel_tool_calls`, tool calls and tool
//! results (consecutive `tool` messages and the next user message merged into
//! one user turn, results first, order kept), `reasoning_content` +
//! `reasoning_signature` on assistant turns (→ signed thinking blocks),
//! `stop`, `max_completion_tokens`/`max_tokens` (default
//! [`TargetOptions::default_max_tokens`]), `temperature` (clamped to 0–1),
//! `top_p`, `reasoning_effort` (→ `thinking`), `response_format` (→
//! `output_config.format`), `user` (→ `metadata.user_id`), `stream`.
//!
//! Dropped on purpose (meaningless for Anthropic): `stream_options` (the
//! gateway controls usage), `store`, `metadata` (OpenAI stored-completion
//! tags), `service_tier`, `seed`, `prompt_cache_key`, `safety_identifier`,
//! `n: 1`, zero penalties, `logprobs: false`, `function.strict`, message
//! `name`. Empty and whitespace-only text is dropped (Anthropic rejects it).
//!
//! Rejected with [`TranslateError`]: `n > 1`, `logprobs`, `top_logprobs`,
//! `logit_bias`, non-zero penalties, `audio`/`modalities`/`prediction`/
//! `web_search_options`, audio parts, files given by `file_id`, custom tools, deprecated
//! `functions`/`function_call`, tool-call arguments that are not a JSON
//! object, and unknown top-level fields.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::bounded::{ArrayBytes, ObjectWriter, for_each, parse_value, write_str};
use super::names::{ANTHROPIC_NAME_MAX, anthropic_id};
use super::{
    DEFAULT_MAX_TOKENS, Session, TargetOptions, TranslateError, TranslatedBody, TranslatedRequest,
};

const TARGET: &str = "Anthropic Messages";

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported {
        field: field.into(),
        target: TARGET,
        reason: reason.into(),
    }
}

/// Translates an OpenAI Chat Completions request for an Anthropic backend
/// serving `model` (a tree in, a tree out: tests and tools; the gateway uses
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

/// Translates an OpenAI Chat Completions request body for an Anthropic
/// backend serving `model`, in bounded memory (see [`super::bounded`]):
/// messages are translated one at a time and written out as each turn is
/// complete. `now` is the Unix time for the answer's `created`.
pub fn translate_json(
    json: &crate::body::RequestJson,
    model: &str,
    opts: &TargetOptions,
    now: u64,
) -> Result<TranslatedBody, TranslateError> {
    let mut include_usage = false;
    // Small members, written after the streamed ones.
    let mut head = Head::default();
    let mut max_tokens = None;
    let mut max_completion_tokens = None;
    let mut thinking_budget = None;
    let mut tool_choice: Option<Value> = None;
    let mut parallel: Option<bool> = None;
    let (mut messages_raw, mut tools_raw) = (None, None);
    // One pass over the members (a member given twice: its last value).
    for (key, raw) in json.members() {
        if raw == "null" || key == "model" {
            continue;
        }
        // The large arrays are walked element by element below.
        if key == "messages" {
            messages_raw = Some(raw);
            continue;
        }
        if key == "tools" {
            tools_raw = Some(raw);
            continue;
        }
        let value = parse_value(raw, key)?;
        let value = &value;
        match key {
            "stream" => {
                head.stream = Some(value.clone());
            }
            "max_completion_tokens" => max_completion_tokens = Some(positive(value, key)?),
            "max_tokens" => max_tokens = Some(positive(value, key)?),
            "temperature" => {
                let t = value
                    .as_f64()
                    .ok_or_else(|| TranslateError::invalid(key, "must be a number"))?;
                head.temperature = Some(t.clamp(0.0, 1.0));
            }
            "top_p" => {
                head.top_p = Some(value.clone());
            }
            "stop" => {
                let stops: Vec<Value> = match value {
                    Value::String(s) => vec![json!(s)],
                    Value::Array(a) => a.clone(),
                    _ => return Err(TranslateError::invalid(key, "must be a string or an array")),
                };
                let stops: Vec<Value> = stops
                    .into_iter()
                    .filter(|s| s.as_str().is_some_and(|s| !s.trim().is_empty()))
                    .collect();
                if !stops.is_empty() {
                    head.stop_sequences = Some(Value::Array(stops));
                }
            }
            "user" => {
                head.metadata = Some(json!({"user_id": value}));
            }
            "tool_choice" => tool_choice = Some(value.clone()),
            "parallel_tool_calls" => parallel = value.as_bool(),
            "reasoning_effort" => {
                thinking_budget = match value.as_str() {
                    Some("none") => None,
                    Some("minimal" | "low") => Some(1024),
                    Some("medium") => Some(2048),
                    Some("high") => Some(4096),
                    Some("xhigh") => Some(8192),
                    _ => return Err(TranslateError::invalid(key, "unknown effort")),
                }
            }
            "response_format" => {
                if let Some(format) = response_format(value)? {
                    head.output_config = Some(json!({"format": format}));
                }
            }
            "n" => {
                if value.as_u64() != Some(1) {
                    return Err(unsupported(key, "Anthropic returns one choice per request"));
                }
            }
            "logprobs" => {
                if value.as_bool() != Some(false) {
                    return Err(unsupported(
                        key,
                        "Anthropic does not return log probabilities",
                    ));
                }
            }
            "presence_penalty" | "frequency_penalty" => {
                if value.as_f64() != Some(0.0) {
                    return Err(unsupported(key, "Anthropic has no sampling penalties"));
                }
            }
            "logit_bias" => {
                if value.as_object().is_none_or(|m| !m.is_empty()) {
                    return Err(unsupported(key, "Anthropic has no logit bias"));
                }
            }
            "stream_options" => {
                include_usage = value
                    .pointer("/include_usage")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            }
            // Dropped on purpose: no meaning for Anthropic (see module docs).
            "store" | "metadata" | "service_tier" | "seed" | "prompt_cache_key"
            | "safety_identifier" => {}
            other => {
                return Err(unsupported(other, "no Anthropic equivalent"));
            }
        }
    }

    let mut session = Session {
        created: now,
        include_usage,
        ..Session::default()
    };
    let max_tokens = max_completion_tokens.or(max_tokens);
    let mut out = ObjectWriter::with_capacity(json.bytes().len() + json.bytes().len() / 4 + 256);
    out.string("model", model);
    let history = messages(messages_raw, &mut out)?;

    let mut has_tools = false;
    if let Some(tools) = tools_raw {
        for_each(tools, "tools", |i, raw| {
            let t = parse_value(raw, &format!("tools[{i}]"))?;
            if t.get("type").and_then(Value::as_str).unwrap_or("function") != "function" {
                return Err(unsupported(
                    format!("tools[{i}].type"),
                    "only function tools translate",
                ));
            }
            let f = t.get("function").ok_or_else(|| {
                TranslateError::invalid(format!("tools[{i}].function"), "missing")
            })?;
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                TranslateError::invalid(format!("tools[{i}].function.name"), "missing")
            })?;
            let mut tool = Map::new();
            tool.insert(
                "name".into(),
                json!(session.tool_names.to_target(name, ANTHROPIC_NAME_MAX)),
            );
            if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                tool.insert("description".into(), d.clone());
            }
            let schema = f
                .get("parameters")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            tool.insert("input_schema".into(), schema);
            if !has_tools {
                has_tools = true;
                out.open_array("tools");
            }
            out.push(&Value::Object(tool));
            Ok(())
        })?;
        if has_tools {
            out.close_array();
        }
    }

    // Anthropic rejects tool_use/tool_result history without `tools` (§2.6):
    // declare the tools the history used, and forbid new calls.
    let mut choice_default = None;
    if !has_tools && !history.tool_names.is_empty() {
        let tools: Vec<Value> = history
            .tool_names
            .iter()
            .map(|name| json!({"name": name, "input_schema": {"type": "object"}}))
            .collect();
        out.value("tools", &Value::Array(tools));
        has_tools = true;
        choice_default = Some(json!({"type": "none"}));
    }
    let mut choice = match tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => {
                return Err(TranslateError::invalid(
                    "tool_choice",
                    format!("unknown value {s:?}"),
                ));
            }
        },
        Some(v) => {
            let name = v
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    unsupported("tool_choice", "only a named function choice translates")
                })?;
            Some(
                json!({"type": "tool", "name": session.tool_names.to_target(name, ANTHROPIC_NAME_MAX)}),
            )
        }
    };
    if parallel == Some(false) && has_tools {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }

    let default_max = if opts.default_max_tokens > 0 {
        opts.default_max_tokens
    } else {
        DEFAULT_MAX_TOKENS
    };
    let client_max = max_tokens;
    let mut max_tokens = client_max.unwrap_or(default_max);
    if let Some(mut budget) = thinking_budget.filter(|_| history.thinking_replayable) {
        // §2.5/§3.8: 1024 ≤ budget < max_tokens; forced tool use and
        // temperature are not allowed with thinking. A defaulted max_tokens
        // grows to fit the budget; a client's own limit caps the budget.
        if max_tokens <= budget {
            if client_max.is_none() {
                max_tokens = budget + default_max;
            } else {
                budget = max_tokens - 1;
            }
        }
        if budget >= 1024 {
            head.thinking = Some(json!({"type": "enabled", "budget_tokens": budget}));
            head.temperature = None;
            if let Some(c) = choice.as_mut()
                && matches!(c["type"].as_str(), Some("any" | "tool"))
            {
                *c = json!({"type": "auto"});
            }
        }
    }
    if let Some(c) = choice.or(choice_default) {
        head.tool_choice = Some(c);
    }
    head.write(max_tokens, &mut out);
    Ok(TranslatedBody {
        body: bytes::Bytes::from(out.finish()),
        session,
    })
}

/// The small members of the translated body, written after the streamed
/// ones, in name order (the order of the sorted map they were once
/// collected in, so the bytes sent did not change).
#[derive(Default)]
struct Head {
    metadata: Option<Value>,
    output_config: Option<Value>,
    stop_sequences: Option<Value>,
    stream: Option<Value>,
    temperature: Option<f64>,
    thinking: Option<Value>,
    tool_choice: Option<Value>,
    top_p: Option<Value>,
}

impl Head {
    /// Writes `max_tokens` and the members that are set into `out`.
    fn write(self, max_tokens: u64, out: &mut ObjectWriter) {
        out.value("max_tokens", &Value::from(max_tokens));
        let members = [
            ("metadata", self.metadata),
            ("output_config", self.output_config),
            ("stop_sequences", self.stop_sequences),
            ("stream", self.stream),
            ("temperature", self.temperature.map(|t| json!(t))),
            ("thinking", self.thinking),
            ("tool_choice", self.tool_choice),
            ("top_p", self.top_p),
        ];
        for (key, value) in members {
            if let Some(value) = value {
                out.value(key, &value);
            }
        }
    }
}

fn positive(v: &Value, field: &str) -> Result<u64, TranslateError> {
    v.as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| TranslateError::invalid(field, "must be a positive integer"))
}

fn response_format(v: &Value) -> Result<Option<Value>, TranslateError> {
    match v.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(
            json!({"type": "json_schema", "schema": {"type": "object", "additionalProperties": true}}),
        )),
        Some("json_schema") => {
            let schema = v.pointer("/json_schema/schema").ok_or_else(|| {
                TranslateError::invalid("response_format.json_schema.schema", "missing")
            })?;
            Ok(Some(json!({"type": "json_schema", "schema": schema})))
        }
        _ => Err(TranslateError::invalid(
            "response_format.type",
            "unknown type",
        )),
    }
}

fn text_nonempty(s: &str) -> bool {
    !s.trim().is_empty()
}

/// Text blocks from OpenAI content (string or text parts), for system.
fn system_blocks(content: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::new();
    match content {
        Value::String(s) => {
            if text_nonempty(s) {
                out.push(json!({"type": "text", "text": s}));
            }
        }
        Value::Array(parts) => {
            for (i, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p["text"].as_str().unwrap_or_default();
                        if text_nonempty(t) {
                            out.push(json!({"type": "text", "text": t}));
                        }
                    }
                    _ => {
                        return Err(unsupported(
                            format!("{path}[{i}]"),
                            "system content must be text",
                        ));
                    }
                }
            }
        }
        Value::Null => {}
        _ => {
            return Err(TranslateError::invalid(
                path,
                "must be a string or an array",
            ));
        }
    }
    Ok(out)
}

/// Content blocks of a user message.
fn user_blocks(content: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
    let Value::Array(parts) = content else {
        return system_blocks(content, path);
    };
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match p.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = p["text"].as_str().unwrap_or_default();
                if text_nonempty(t) {
                    out.push(json!({"type": "text", "text": t}));
                }
            }
            Some("image_url") => {
                let url = p
                    .pointer("/image_url/url")
                    .or_else(|| p.get("image_url").filter(|u| u.is_string()))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::invalid(format!("{at}.image_url.url"), "missing")
                    })?;
                out.push(image_block(url, &at)?);
            }
            Some("file") => {
                // Inline PDFs translate to a document; uploaded file ids do not.
                let data = p
                    .pointer("/file/file_data")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        unsupported(format!("{at}.file"), "only inline file_data translates")
                    })?;
                out.push(image_block(data, &at)?);
            }
            Some(other) => {
                return Err(unsupported(
                    format!("{at}.type={other}"),
                    "no Anthropic equivalent",
                ));
            }
            None => return Err(TranslateError::invalid(format!("{at}.type"), "missing")),
        }
    }
    Ok(out)
}

fn image_block(url: &str, at: &str) -> Result<Value, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| TranslateError::invalid(at, "malformed data URL"))?;
        let media = meta
            .strip_suffix(";base64")
            .ok_or_else(|| unsupported(at, "only base64 data URLs translate"))?;
        return match media {
            "image/jpeg" | "image/png" | "image/gif" | "image/webp" => Ok(json!({
                "type": "image", "source": {"type": "base64", "media_type": media, "data": data}
            })),
            "application/pdf" => Ok(json!({
                "type": "document", "source": {"type": "base64", "media_type": media, "data": data}
            })),
            other => Err(unsupported(
                at,
                format!("media type {other} is not accepted by Anthropic"),
            )),
        };
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(TranslateError::invalid(
        at,
        "image URL must be http(s) or a data URL",
    ))
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.get("text")
                    .or_else(|| p.get("refusal"))
                    .and_then(Value::as_str)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn assistant_blocks(m: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::new();
    if let (Some(thinking), Some(sig)) = (
        m.get("reasoning_content").and_then(Value::as_str),
        m.get("reasoning_signature").and_then(Value::as_str),
    ) && !sig.is_empty()
    {
        out.push(json!({"type": "thinking", "thinking": thinking, "signature": sig}));
    }
    let text = content_text(m.get("content").unwrap_or(&Value::Null));
    if text_nonempty(&text) {
        out.push(json!({"type": "text", "text": text}));
    }
    if let Some(refusal) = m
        .get("refusal")
        .and_then(Value::as_str)
        .filter(|r| text_nonempty(r))
    {
        out.push(json!({"type": "text", "text": refusal}));
    }
    if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
        let calls = calls.as_array().ok_or_else(|| {
            TranslateError::invalid(format!("{path}.tool_calls"), "must be an array")
        })?;
        for (i, c) in calls.iter().enumerate() {
            let at = format!("{path}.tool_calls[{i}]");
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::invalid(format!("{at}.id"), "missing"))?;
            let name = c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::invalid(format!("{at}.function.name"), "missing"))?;
            let args = c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("");
            let input = if args.trim().is_empty() {
                json!({})
            } else {
                match serde_json::from_str::<Value>(args) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => {
                        return Err(TranslateError::invalid(
                            format!("{at}.function.arguments"),
                            "must be a JSON object (Anthropic tool input is an object)",
                        ));
                    }
                }
            };
            out.push(
                json!({"type": "tool_use", "id": anthropic_id(id), "name": name, "input": input}),
            );
        }
    }
    Ok(out)
}

/// System blocks and Anthropic messages from OpenAI `messages`.
/// What the translated history says about thinking and tools.
struct History {
    /// Thinking can only be enabled when every assistant turn with tool use
    /// starts with a signed thinking block (§0.7); OpenAI clients that do
    /// not echo `reasoning_signature` get thinking disabled instead of a 400.
    thinking_replayable: bool,
    /// Distinct tool names of the `tool_use` blocks, in order.
    tool_names: Vec<String>,
}

/// Translates `messages` one at a time into `out`'s `messages` (and, when
/// any, `system`) members. Consecutive tool results and user content are
/// merged into one user turn, results first, kept as serialized blocks.
fn messages(messages: Option<&str>, out: &mut ObjectWriter) -> Result<History, TranslateError> {
    translate_messages(messages, out, true)
}

/// [`messages`], with the plain-message path (`plain`) or the tree walk only.
fn translate_messages(
    messages: Option<&str>,
    out: &mut ObjectWriter,
    plain: bool,
) -> Result<History, TranslateError> {
    let list = messages
        .filter(|raw| *raw != "null")
        .ok_or_else(|| TranslateError::invalid("messages", "must be an array"))?;
    let mut system = ArrayBytes::default();
    // Tool results and user content waiting to become one user turn.
    let mut results = ArrayBytes::default();
    let mut content = ArrayBytes::default();
    let mut history = History {
        thinking_replayable: true,
        tool_names: Vec::new(),
    };
    let flush = |out: &mut ObjectWriter, results: &mut ArrayBytes, content: &mut ArrayBytes| {
        if results.is_empty() && content.is_empty() {
            return;
        }
        results.append(content);
        out.push_with(|buf| {
            buf.extend_from_slice(br#"{"role":"user","content":"#);
            results.write_array(buf);
            buf.push(b'}');
        });
    };
    out.open_array("messages");
    for_each(list, "messages", |i, raw| {
        // Most turns of a conversation are plain text: those are written
        // straight from the body, without a tree.
        if let Some(message) = plain.then(|| PlainMessage::read(raw)).flatten() {
            match message {
                PlainMessage::System(text) => system.push_with(|b| text_block(b, &text)),
                PlainMessage::User(text) => content.push_with(|b| text_block(b, &text)),
                PlainMessage::ToolResult { id, text } => {
                    results.push_with(|b| tool_result_block(b, &id, &text));
                }
                PlainMessage::Empty => {}
            }
            return Ok(());
        }
        let path = format!("messages[{i}]");
        let m = parse_value(raw, &path)?;
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let body = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                for b in system_blocks(body, &format!("{path}.content"))? {
                    system.push(&b);
                }
            }
            "user" => {
                for b in user_blocks(body, &format!("{path}.content"))? {
                    content.push(&b);
                }
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TranslateError::invalid(format!("{path}.tool_call_id"), "missing")
                    })?;
                // Results go before any user text of the same turn.
                let text = content_text(body);
                let mut result = json!({"type": "tool_result", "tool_use_id": anthropic_id(id)});
                if text_nonempty(&text) {
                    result["content"] = json!(text);
                }
                results.push(&result);
            }
            "assistant" => {
                let blocks = assistant_blocks(&m, &path)?;
                if blocks.is_empty() {
                    return Ok(());
                }
                let uses_tools = blocks.iter().any(|b| b["type"] == "tool_use");
                if uses_tools && blocks.first().is_none_or(|b| b["type"] != "thinking") {
                    history.thinking_replayable = false;
                }
                for b in &blocks {
                    if b["type"] == "tool_use"
                        && let Some(n) = b["name"].as_str()
                        && !history.tool_names.iter().any(|x| x == n)
                    {
                        history.tool_names.push(n.to_string());
                    }
                }
                flush(out, &mut results, &mut content);
                out.push(&json!({"role": "assistant", "content": blocks}));
            }
            "function" => {
                return Err(unsupported(
                    format!("{path}.role=function"),
                    "deprecated; use tools",
                ));
            }
            other => {
                return Err(TranslateError::invalid(
                    format!("{path}.role"),
                    format!("unknown role {other:?}"),
                ));
            }
        }
        Ok(())
    })?;
    flush(out, &mut results, &mut content);
    out.close_array();
    if !system.is_empty() {
        out.array_bytes("system", &mut system);
    }
    Ok(history)
}

/// A message whose content is one string, read without a tree: what the
/// tree walk of [`messages`] makes of it, for the roles it knows. Anything
/// else (other roles, content parts, a member given twice, a missing
/// `tool_call_id`) is left to the tree walk, which also names the errors.
#[derive(Debug, PartialEq)]
enum PlainMessage<'a> {
    /// A system or developer message with text.
    System(Cow<'a, str>),
    /// A user message with text.
    User(Cow<'a, str>),
    /// A tool result (its text may be empty: the block is sent without it).
    ToolResult {
        id: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// A system, developer or user message with only whitespace: dropped.
    Empty,
}

impl<'a> PlainMessage<'a> {
    fn read(raw: &'a str) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct Members<'a> {
            #[serde(borrow)]
            role: Cow<'a, str>,
            #[serde(borrow)]
            content: Option<&'a RawValue>,
            #[serde(borrow, default)]
            tool_call_id: Option<Cow<'a, str>>,
        }
        let m: Members<'a> = serde_json::from_str(raw).ok()?;
        let text = string_text(m.content?)?;
        Some(match (&*m.role, m.tool_call_id) {
            ("system" | "developer" | "user", _) if !text_nonempty(&text) => Self::Empty,
            ("system" | "developer", _) => Self::System(text),
            ("user", _) => Self::User(text),
            ("tool", Some(id)) => Self::ToolResult { id, text },
            _ => return None,
        })
    }
}

/// The text of a JSON string, borrowed unless it has escapes.
fn string_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let raw = raw.get();
    if !raw.starts_with('"') {
        return None;
    }
    // A string of a parsed body without a backslash is its text in quotes
    // (the parser refused control characters and lone quotes in it).
    if !raw.contains('\\') {
        return raw.get(1..raw.len() - 1).map(Cow::Borrowed);
    }
    match serde_json::from_str::<&str>(raw) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => serde_json::from_str::<String>(raw).ok().map(Cow::Owned),
    }
}

/// `{"text":…,"type":"text"}`, as the tree walk writes it (members sorted).
fn text_block(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(br#"{"text":"#);
    write_str(out, text);
    out.extend_from_slice(br#","type":"text"}"#);
}

/// A `tool_result` block, as the tree walk writes it (members sorted;
/// `content` only with text).
fn tool_result_block(out: &mut Vec<u8>, id: &str, text: &str) {
    out.push(b'{');
    if text_nonempty(text) {
        out.extend_from_slice(br#""content":"#);
        write_str(out, text);
        out.push(b',');
    }
    out.extend_from_slice(br#""tool_use_id":"#);
    write_str(out, &anthropic_id(id));
    out.extend_from_slice(br#","type":"tool_result"}"#);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain-message path writes what the tree walk writes.
    #[test]
    fn plain_messages_translate_as_the_tree_walk_does() {
        let messages = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "  "},
            {"role": "user", "content": "Hi \"there\" é\n", "name": "ann"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call 1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call 1", "content": "42"},
            {"role": "tool", "tool_call_id": "call 1", "content": ""},
            {"role": "user", "content": "next"},
        ]);
        let raw = messages.to_string();
        let mut fast = ObjectWriter::with_capacity(0);
        translate_messages(Some(&raw), &mut fast, true).unwrap();
        let mut tree = ObjectWriter::with_capacity(0);
        translate_messages(Some(&raw), &mut tree, false).unwrap();
        assert_eq!(
            String::from_utf8(fast.finish()).unwrap(),
            String::from_utf8(tree.finish()).unwrap()
        );
    }

    #[test]
    fn string_text_reads_as_serde_json_reads_it() {
        for raw in [
            r#""""#,
            r#""plain text""#,
            r#""a\"b""#,
            r#""é \u00e9\n""#,
            r#""\\""#,
        ] {
            let value: &RawValue = serde_json::from_str(raw).unwrap();
            let expected: String = serde_json::from_str(raw).unwrap();
            let text = string_text(value).unwrap();
            assert_eq!(text, expected, "{raw}");
            assert_eq!(
                matches!(text, Cow::Borrowed(_)),
                !raw.contains('\\'),
                "{raw}"
            );
        }
        let number: &RawValue = serde_json::from_str("7").unwrap();
        assert_eq!(string_text(number), None);
    }

    #[test]
    fn only_plain_string_messages_take_the_plain_path() {
        let read = |v: Value| PlainMessage::read(&v.to_string()).map(|_| ());
        assert!(read(json!({"role": "user", "content": "x"})).is_some());
        for other in [
            json!({"role": "user", "content": [{"type": "text", "text": "x"}]}),
            json!({"role": "user", "content": null}),
            json!({"role": "user"}),
            json!({"role": "assistant", "content": "x"}),
            json!({"role": "tool", "content": "x"}),
            json!({"role": "function", "content": "x"}),
            json!({"role": 7, "content": "x"}),
        ] {
            assert!(read(other.clone()).is_none(), "{other}");
        }
        assert!(PlainMessage::read(r#"{"role":"user","content":"a","content":"b"}"#).is_none());
    }

    fn tr(v: Value) -> Value {
        translate(&v, "claude-x", &TargetOptions::default(), 0)
            .unwrap()
            .body
    }

    #[test]
    fn max_tokens_defaults_to_4096_and_max_completion_tokens_wins() {
        let b = tr(json!({"model":"m","messages":[{"role":"user","content":"hi"}]}));
        assert_eq!(b["max_tokens"], 4096);
        let b = tr(
            json!({"model":"m","max_tokens":10,"max_completion_tokens":99,"messages":[{"role":"user","content":"hi"}]}),
        );
        assert_eq!(b["max_tokens"], 99);
        let b = tr(
            json!({"model":"m","max_completion_tokens":99,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}),
        );
        assert_eq!(b["max_tokens"], 99);
    }

    #[test]
    fn empty_text_blocks_are_dropped() {
        let b = tr(json!({"model":"m","messages":[
            {"role":"system","content":""},
            {"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"  "},{"type":"text","text":"go"}]},
            {"role":"assistant","content":""},
            {"role":"user","content":"again"}
        ]}));
        assert!(b.get("system").is_none());
        assert_eq!(
            b["messages"],
            json!([{"role":"user","content":[{"type":"text","text":"go"},{"type":"text","text":"again"}]}])
        );
    }

    #[test]
    fn tool_results_merge_into_one_user_turn_in_order() {
        let b = tr(json!({"model":"m","messages":[
            {"role":"user","content":"weather?"},
            {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}},
                {"id":"functions.b:1","type":"function","function":{"name":"b","arguments":""}}]},
            {"role":"tool","tool_call_id":"call_1","content":"one"},
            {"role":"tool","tool_call_id":"functions.b:1","content":"two"},
            {"role":"user","content":"thanks"}
        ]}));
        let msgs = b["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        let user = &msgs[2]["content"];
        assert_eq!(user[0]["tool_use_id"], "call_1");
        assert_eq!(
            user[1]["tool_use_id"], msgs[1]["content"][1]["id"],
            "sanitized id pairs with its call"
        );
        assert_eq!(user[2]["text"], "thanks");
        assert_eq!(msgs[1]["content"][1]["input"], json!({}));
    }

    #[test]
    fn tool_history_without_tools_declares_them_and_forbids_new_calls() {
        let b = tr(json!({"model":"m","messages":[
            {"role":"user","content":"go"},
            {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"grep","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c","content":"found"},
            {"role":"user","content":"summarise"}]}));
        assert_eq!(
            b["tools"],
            json!([{"name":"grep","input_schema":{"type":"object"}}])
        );
        assert_eq!(b["tool_choice"], json!({"type":"none"}));
    }

    #[test]
    fn untranslatable_fields_are_rejected() {
        for body in [
            json!({"model":"m","n":2,"messages":[]}),
            json!({"model":"m","logprobs":true,"messages":[]}),
            json!({"model":"m","audio":{},"messages":[]}),
            json!({"model":"m","something_new":1,"messages":[]}),
            json!({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}),
            json!({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"a","arguments":"[1]"}}]}]}),
        ] {
            assert!(
                translate(&body, "m", &TargetOptions::default(), 0).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn temperature_is_clamped_and_thinking_from_effort() {
        let b =
            tr(json!({"model":"m","temperature":1.7,"messages":[{"role":"user","content":"x"}]}));
        assert_eq!(b["temperature"], 1.0);
        let b = tr(
            json!({"model":"m","temperature":0.5,"reasoning_effort":"high","tool_choice":"required",
            "tools":[{"type":"function","function":{"name":"t"}}],"messages":[{"role":"user","content":"x"}]}),
        );
        assert_eq!(
            b["thinking"],
            json!({"type":"enabled","budget_tokens":4096})
        );
        assert!(b.get("temperature").is_none());
        assert_eq!(b["tool_choice"]["type"], "auto");
        assert!(b["max_tokens"].as_u64().unwrap() > 4096);
    }
}
