//! Request: Anthropic Messages → Gemini `generateContent` (`protocols.md`
//! §5.2, §5.5). Clients of the other formats reach Gemini through Messages
//! first, so this is the one `generateContent` request builder.
//!
//! | Messages | Gemini |
//! |---|---|
//! | `system` string / text blocks, `role: "system"` turns inside `messages` | `systemInstruction: {parts: [{text}]}` (Claude Code's billing line dropped; system turns appended in order) |
//! | role `user` / `assistant` | role `user` / `model` (every content has its role: Vertex requires it) |
//! | `text` | `{text}` (empty text dropped) |
//! | `image` base64 | `{inlineData: {mimeType, data}}` (URL images are refused: Gemini takes bytes or its own file URIs) |
//! | `document` base64 PDF / text | `{inlineData: {mimeType: application/pdf}}` / `{text}` |
//! | `tool_use` | `{functionCall: {name, args}, thoughtSignature}` (the signature from the id, [`super::ids`]) |
//! | `tool_result` (`is_error`) | `{functionResponse: {name, response: {content}}}` (`{error}` when `is_error`), in a user turn of their own, in the order of the calls |
//! | `thinking`, `redacted_thinking` | dropped (Gemini's thought summaries are not replayed; the signature is what counts) |
//! | `max_tokens`, `temperature`, `top_p`, `top_k`, `stop_sequences` | `generationConfig.{maxOutputTokens, temperature, topP, topK, stopSequences}` (at most 5 stop sequences) |
//! | `thinking` enabled (`budget_tokens`) / adaptive | `generationConfig.thinkingConfig {thinkingBudget: N / -1, includeThoughts: true}` |
//! | `output_config.format` JSON schema | `generationConfig.{responseMimeType: application/json, responseSchema}` |
//! | `tools` | `tools: [{functionDeclarations: [{name, description, parameters}]}]` (schema converted by [`super::schema`]; a `defer_loading` tool only once the conversation loaded it, as for OpenAI backends) |
//! | `tool_reference` in a tool result | its text, as for OpenAI backends |
//! | `tool_choice` auto / any / tool / none | `toolConfig.functionCallingConfig {mode: AUTO / ANY / ANY + allowedFunctionNames / NONE}` |
//!
//! Function calls and responses carry no `id` (Vertex refuses it; both
//! services pair them by position and name), so the responses of a turn are
//! ordered like its calls. A Gemini 3 model refuses an unsigned function
//! call of the current turn: a model turn whose calls carry no signature
//! (history from another provider, or a client that lost the id) gets the
//! documented sentinel `skip_thought_signature_validator` on its first call
//! ([`GeminiOptions::sentinel_signatures`]). Tool names longer than 64
//! characters or with characters Gemini refuses are shortened; the returned
//! [`ToolNames`] restores them. Dropped: `metadata`, `stream` (the path
//! says it), `service_tier`, `cache_control`, `context_management`,
//! `container`, `mcp_servers`, citations. Refused: server tools
//! (`web_search_…`), URL images and documents, more than 5 stop sequences,
//! unknown block types.

use serde_json::{Map, Value, json};

use super::ids::{Signatures, decode};
use super::schema::to_gemini;
use crate::translate::deferred_tools;
use crate::translate::names::{OPENAI_NAME_MAX, ToolNames};
use crate::translate::system_messages::{fold_into_system, strip_billing_header};
use crate::translate::{DEFAULT_MAX_TOKENS, TranslateError};

const TARGET: &str = "Gemini";

/// The sentinel Gemini accepts in place of a thought signature it did not
/// issue (its documented fallback for history from other models).
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Gemini's stop-sequence limit.
pub const MAX_STOP_SEQUENCES: usize = 5;

fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported {
        field: field.into(),
        target: TARGET,
        reason: reason.into(),
    }
}

/// Options of one Gemini request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeminiOptions {
    /// `maxOutputTokens` when the request has no `max_tokens` (0: the
    /// gateway default).
    pub default_max_tokens: u64,
    /// Give unsigned function calls the sentinel signature (Gemini 3 and
    /// later: see [`needs_signatures`]).
    pub sentinel_signatures: bool,
}

/// Whether `model` is a Gemini 3 (or later) model, which refuses unsigned
/// function calls: `gemini-<major>…` with a major version of 3 or more.
pub fn needs_signatures(model: &str) -> bool {
    let id = model.rsplit('/').next().unwrap_or(model);
    let Some(rest) = id.strip_prefix("gemini-") else {
        return false;
    };
    let major: String = rest.chars().take_while(char::is_ascii_digit).collect();
    major.parse::<u32>().is_ok_and(|m| m >= 3)
}

/// A Gemini function name: 1 to 64 of `[a-zA-Z0-9_-]` (a subset of what
/// Gemini allows; [`ToolNames`] shortens and cleans the others).
fn gemini_name(names: &mut ToolNames, name: &str) -> String {
    names.to_target(name, OPENAI_NAME_MAX)
}

struct Builder<'a> {
    names: &'a mut ToolNames,
    sigs: &'a Signatures,
    sentinel: bool,
    /// Tool name of every call seen, by the call's base id.
    calls: Vec<(String, String)>,
}

impl Builder<'_> {
    fn name_of_call(&self, base: &str) -> Option<&str> {
        self.calls
            .iter()
            .rev()
            .find(|(id, _)| id == base)
            .map(|(_, n)| n.as_str())
    }

    fn image(&self, path: &str, block: &Value) -> Result<Value, TranslateError> {
        let source = block.get("source").unwrap_or(&Value::Null);
        match source.get("type").and_then(Value::as_str) {
            Some("base64") => Ok(json!({"inlineData": {
                "mimeType": source["media_type"].as_str().unwrap_or("image/png"),
                "data": source["data"],
            }})),
            _ => Err(unsupported(
                format!("{path}.source"),
                "Gemini takes image bytes; URL and file images are not fetched",
            )),
        }
    }

    fn document(&self, path: &str, block: &Value) -> Result<Value, TranslateError> {
        let source = block.get("source").unwrap_or(&Value::Null);
        match source.get("type").and_then(Value::as_str) {
            Some("base64") => Ok(json!({"inlineData": {
                "mimeType": source["media_type"].as_str().unwrap_or("application/pdf"),
                "data": source["data"],
            }})),
            Some("text") => Ok(json!({"text": source["data"].as_str().unwrap_or_default()})),
            _ => Err(unsupported(
                format!("{path}.source"),
                "only base64 and text documents translate",
            )),
        }
    }

    /// A `tool_result` block → a `functionResponse` part (and image parts).
    fn tool_result(
        &self,
        path: &str,
        block: &Value,
        extra: &mut Vec<Value>,
    ) -> Result<(String, Value), TranslateError> {
        let id = block["tool_use_id"].as_str().unwrap_or_default();
        let (base, _) = decode(id);
        let name = self.name_of_call(base).ok_or_else(|| {
            TranslateError::invalid(
                format!("{path}.tool_use_id"),
                format!("no tool_use with id {id:?} precedes this tool_result"),
            )
        })?;
        let mut texts = Vec::new();
        match block.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => texts.push(s.clone()),
            Some(Value::Array(items)) => {
                for (j, item) in items.iter().enumerate() {
                    let p = format!("{path}.content[{j}]");
                    match item.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            texts.push(item["text"].as_str().unwrap_or_default().to_string())
                        }
                        Some("image") => extra.push(self.image(&p, item)?),
                        Some("document") => extra.push(self.document(&p, item)?),
                        // The tool is declared in `tools` (see `deferred_tools`).
                        Some("tool_reference") => texts.push(deferred_tools::reference_text(item)),
                        other => {
                            return Err(unsupported(p, format!("tool result block {other:?}")));
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
        let text = texts.join("\n");
        let key = if block.get("is_error").and_then(Value::as_bool) == Some(true) {
            "error"
        } else {
            "content"
        };
        Ok((
            base.to_string(),
            json!({"functionResponse": {"name": name, "response": {key: text}}}),
        ))
    }

    /// One message → one or two contents (function responses in a turn of
    /// their own, before the rest of the user's turn).
    fn message(&mut self, i: usize, m: &Value) -> Result<Vec<Value>, TranslateError> {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => "user",
            Some("assistant") => "model",
            other => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].role"),
                    format!("must be user or assistant, not {other:?}"),
                ));
            }
        };
        let blocks: Vec<Value> = match m.get("content") {
            Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
            Some(Value::Array(a)) => a.clone(),
            _ => {
                return Err(TranslateError::invalid(
                    format!("messages[{i}].content"),
                    "must be a string or an array",
                ));
            }
        };
        let mut parts = Vec::new();
        let mut responses: Vec<(String, Value)> = Vec::new();
        let mut response_extra = Vec::new();
        let mut signed_calls = 0;
        let mut first_call = None;
        for (j, block) in blocks.iter().enumerate() {
            let path = format!("messages[{i}].content[{j}]");
            let kind = block
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match kind {
                "text" => {
                    let text = block["text"].as_str().unwrap_or_default();
                    if !text.trim().is_empty() {
                        parts.push(json!({"text": text}));
                    }
                }
                "image" => parts.push(self.image(&path, block)?),
                "document" => parts.push(self.document(&path, block)?),
                "tool_use" if role == "model" => {
                    let id = block["id"].as_str().unwrap_or_default();
                    let (base, sig) = decode(id);
                    let sig = sig.or_else(|| self.sigs.get(base).map(str::to_string));
                    let name = block["name"].as_str().unwrap_or_default();
                    let target = gemini_name(self.names, name);
                    self.calls.push((base.to_string(), target.clone()));
                    let args = match block.get("input") {
                        Some(v) if v.is_object() => v.clone(),
                        _ => json!({}),
                    };
                    let mut part = json!({"functionCall": {"name": target, "args": args}});
                    if let Some(sig) = sig {
                        part["thoughtSignature"] = json!(sig);
                        signed_calls += 1;
                    }
                    first_call.get_or_insert(parts.len());
                    parts.push(part);
                }
                "tool_result" if role == "user" => {
                    responses.push(self.tool_result(&path, block, &mut response_extra)?);
                }
                "thinking" | "redacted_thinking" => {}
                "tool_use" | "tool_result" => {
                    return Err(TranslateError::invalid(
                        format!("{path}.type"),
                        format!("{kind} is not allowed in a {role} turn"),
                    ));
                }
                "server_tool_use"
                | "web_search_tool_result"
                | "mcp_tool_use"
                | "mcp_tool_result" => {
                    return Err(unsupported(path, format!("{kind} blocks (server tools)")));
                }
                other => return Err(unsupported(path, format!("block type {other:?}"))),
            }
        }
        if self.sentinel
            && signed_calls == 0
            && let Some(k) = first_call
        {
            parts[k]["thoughtSignature"] = json!(super::request::SKIP_SIGNATURE);
        }
        let mut out = Vec::new();
        if !responses.is_empty() {
            // In the order of the calls they answer (the latest calls of each id).
            let order = |base: &str| {
                self.calls
                    .iter()
                    .rposition(|(id, _)| id == base)
                    .unwrap_or(usize::MAX)
            };
            responses.sort_by_key(|(base, _)| order(base));
            let mut fr: Vec<Value> = responses.into_iter().map(|(_, p)| p).collect();
            fr.extend(response_extra);
            out.push(json!({"role": "user", "parts": fr}));
        }
        if !parts.is_empty() {
            out.push(json!({"role": role, "parts": parts}));
        }
        Ok(out)
    }
}

fn has_function_response(content: &Value) -> bool {
    content["parts"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some()))
}

/// Merges adjacent contents of one role (Gemini wants turns to alternate),
/// except that function responses keep a turn of their own.
fn merge_turns(contents: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(contents.len());
    for c in contents {
        match out.last_mut() {
            Some(prev)
                if prev["role"] == c["role"]
                    && !has_function_response(prev)
                    && !has_function_response(&c) =>
            {
                if let (Some(mine), Some(theirs)) =
                    (prev["parts"].as_array_mut(), c["parts"].as_array())
                {
                    mine.extend(theirs.iter().cloned());
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn system_instruction(system: &Value) -> Result<Option<Value>, TranslateError> {
    let parts: Vec<Value> = match system {
        Value::Null => Vec::new(),
        Value::String(s) => vec![json!({"text": strip_billing_header(s)})],
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .map(|t| json!({"text": strip_billing_header(t)}))
            .collect(),
        _ => {
            return Err(TranslateError::invalid(
                "system",
                "must be a string or an array of text blocks",
            ));
        }
    };
    let parts: Vec<Value> = parts
        .into_iter()
        .filter(|p| !p["text"].as_str().unwrap_or_default().trim().is_empty())
        .collect();
    Ok((!parts.is_empty()).then(|| json!({"parts": parts})))
}

fn tools(body: &Value, names: &mut ToolNames) -> Result<Option<Value>, TranslateError> {
    let Some(list) = body.get("tools").and_then(Value::as_array) else {
        return Ok(None);
    };
    let loaded = deferred_tools::loaded_tools(body);
    let mut decls = Vec::new();
    for (i, t) in list.iter().enumerate() {
        // Gemini has no tool search: a deferred tool is declared once the
        // conversation loaded it, as Anthropic would show it.
        if deferred_tools::is_deferred(t)
            && !t
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| loaded.contains(n))
        {
            continue;
        }
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(other) => {
                return Err(unsupported(
                    format!("tools[{i}].type"),
                    format!("server tool {other:?}"),
                ));
            }
        }
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::invalid(format!("tools[{i}].name"), "missing"))?;
        let mut decl = Map::new();
        decl.insert("name".into(), json!(gemini_name(names, name)));
        if let Some(d) = t.get("description").and_then(Value::as_str) {
            decl.insert("description".into(), json!(d));
        }
        if let Some(schema) = t.get("input_schema") {
            let params = to_gemini(schema);
            if params.get("properties").is_some() {
                decl.insert("parameters".into(), params);
            }
        }
        decls.push(Value::Object(decl));
    }
    Ok((!decls.is_empty()).then(|| json!([{"functionDeclarations": decls}])))
}

fn tool_config(choice: &Value, names: &mut ToolNames) -> Option<Value> {
    let config = match choice.get("type").and_then(Value::as_str)? {
        "auto" => json!({"mode": "AUTO"}),
        "any" => json!({"mode": "ANY"}),
        "none" => json!({"mode": "NONE"}),
        "tool" => {
            let name = choice.get("name").and_then(Value::as_str)?;
            json!({"mode": "ANY", "allowedFunctionNames": [gemini_name(names, name)]})
        }
        _ => return None,
    };
    Some(json!({"functionCallingConfig": config}))
}

fn generation_config(body: &Value, opts: &GeminiOptions) -> Result<Value, TranslateError> {
    let mut g = Map::new();
    let max =
        body.get("max_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(if opts.default_max_tokens > 0 {
                opts.default_max_tokens
            } else {
                DEFAULT_MAX_TOKENS
            });
    g.insert("maxOutputTokens".into(), json!(max));
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
    ] {
        if let Some(v) = body.get(from).filter(|v| v.is_number()) {
            g.insert(to.into(), v.clone());
        }
    }
    if let Some(stops) = body.get("stop_sequences").and_then(Value::as_array)
        && !stops.is_empty()
    {
        if stops.len() > MAX_STOP_SEQUENCES {
            return Err(unsupported(
                "stop_sequences",
                format!("Gemini accepts at most {MAX_STOP_SEQUENCES} stop sequences"),
            ));
        }
        g.insert("stopSequences".into(), Value::Array(stops.clone()));
    }
    match body.pointer("/thinking/type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = body
                .pointer("/thinking/budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(1024);
            g.insert(
                "thinkingConfig".into(),
                json!({"thinkingBudget": budget, "includeThoughts": true}),
            );
        }
        Some("adaptive") => {
            g.insert(
                "thinkingConfig".into(),
                json!({"thinkingBudget": -1, "includeThoughts": true}),
            );
        }
        _ => {}
    }
    if let Some(format) = body.pointer("/output_config/format")
        && format.get("type").and_then(Value::as_str) == Some("json_schema")
    {
        g.insert("responseMimeType".into(), json!("application/json"));
        if let Some(schema) = format.get("schema") {
            let converted = to_gemini(schema);
            // `{"type":"object","additionalProperties":true}` (json_object): any object.
            if converted.get("properties").is_some()
                || converted.get("type") != Some(&json!("object"))
            {
                g.insert("responseSchema".into(), converted);
            }
        }
    }
    Ok(Value::Object(g))
}

/// The `generateContent` body for an Anthropic Messages request, and the
/// tool names shortened for Gemini. `sigs` are the signatures a Chat or
/// Responses request gave up ([`super::ids::extract`]).
pub fn request_from_messages(
    body: &Value,
    sigs: &Signatures,
    opts: &GeminiOptions,
) -> Result<(Value, ToolNames), TranslateError> {
    if !body.is_object() {
        return Err(TranslateError::invalid("body", "must be a JSON object"));
    }
    let mut names = ToolNames::default();
    let tools = tools(body, &mut names)?;
    let tool_config = body
        .get("tool_choice")
        .and_then(|c| tool_config(c, &mut names));
    // Claude Code on a non-Claude model name puts `role: "system"` turns
    // inside `messages`; Gemini has no such role: they join the system
    // instruction, in order.
    let folded = fold_into_system(
        body.get("system"),
        body.get("messages").unwrap_or(&Value::Null),
    )?;
    let (system, messages) = match &folded {
        Some((system, messages)) => (system, messages),
        None => (
            body.get("system").unwrap_or(&Value::Null),
            body.get("messages").unwrap_or(&Value::Null),
        ),
    };
    let messages = messages
        .as_array()
        .ok_or_else(|| TranslateError::invalid("messages", "must be an array"))?;
    let mut builder = Builder {
        names: &mut names,
        sigs,
        sentinel: opts.sentinel_signatures,
        calls: Vec::new(),
    };
    let mut contents = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        contents.extend(builder.message(i, m)?);
    }
    let contents = merge_turns(contents);
    if contents.is_empty() {
        return Err(TranslateError::invalid(
            "messages",
            "must contain at least one non-empty message",
        ));
    }
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if let Some(s) = system_instruction(system)? {
        out.insert("systemInstruction".into(), s);
    }
    if let Some(t) = tools {
        out.insert("tools".into(), t);
        if let Some(c) = tool_config {
            out.insert("toolConfig".into(), c);
        }
    }
    out.insert("generationConfig".into(), generation_config(body, opts)?);
    Ok((Value::Object(out), names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_three_needs_signatures() {
        for (m, yes) in [
            ("gemini-3-pro-preview", true),
            ("gemini-3.1-flash", true),
            ("models/gemini-3-flash", true),
            ("google/gemini-10-ultra", true),
            ("gemini-2.5-pro", false),
            ("gemini-1.5-flash", false),
            ("gemini-exp-1206", false),
            ("tunedModels/x", false),
        ] {
            assert_eq!(needs_signatures(m), yes, "{m}");
        }
    }
}
