//! A Responses request rendered as an Anthropic Messages request.
//!
//! Field rules (also in `docs/responses.md`):
//! - `instructions` and every `system`/`developer` message → top-level
//!   `system` text blocks, in order (Anthropic has no system turns, so a
//!   mid-conversation developer message loses its position);
//! - `message` items → user/assistant turns (consecutive same-role turns
//!   merged); empty and whitespace-only text is dropped; images → `image`
//!   blocks (`data:` URLs → base64, PDFs → `document`);
//! - `function_call` → `tool_use` in the assistant turn (`arguments` parsed;
//!   `""` → `{}`; invalid JSON → 400); `function_call_output` →
//!   `tool_result` placed first in the next user turn; call ids with
//!   characters Anthropic rejects are mapped deterministically;
//! - reasoning items carrying a gateway-made thinking block are replayed as
//!   `thinking`/`redacted_thinking` with their signature; all others drop;
//! - `max_output_tokens` → `max_tokens` (default
//!   [`MessagesOptions::default_max_tokens`]); `temperature` clamped to
//!   0–1; `top_p` passes; `parallel_tool_calls: false` →
//!   `disable_parallel_tool_use`; `text.format` json_schema/json_object →
//!   `output_config.format`; `safety_identifier`/`user` →
//!   `metadata.user_id`;
//! - `reasoning.effort` → `thinking` with a budget (minimal/low 1024,
//!   medium 2048, high 4096, xhigh 8192; `none` off), kept below
//!   `max_tokens`; off when `max_tokens` ≤ 1024 or when the last assistant
//!   turn used a tool without a replayable thinking block (Anthropic would
//!   reject it). With thinking on, `temperature` is dropped, `top_p` kept
//!   only in 0.95–1 and a forced tool choice relaxed to `auto`; with it off,
//!   thinking blocks are removed from the history.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::context::{ResponseContext, ToolNames};
use super::input::{
    ImageSource, InputItem, Part, Role, for_each_item, instructions, split_request,
};
use super::to_chat::{reject_stateful, user_id};
use super::tools::{ToolChoice, parse_tool_choice, parse_tools};
use super::{ResponsesError, Translated};
use crate::translate::bounded::{ArrayBytes, ObjectWriter, write_value};

/// Options of the Messages rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessagesOptions {
    /// `max_tokens` when the client did not set `max_output_tokens`
    /// (Anthropic requires it).
    pub default_max_tokens: u64,
}

impl Default for MessagesOptions {
    fn default() -> Self {
        Self {
            default_max_tokens: 8192,
        }
    }
}

/// A tool-call id Anthropic accepts (`^[a-zA-Z0-9_-]+$`). Ids already valid
/// are unchanged; others get invalid characters replaced and a hash suffix,
/// so two different ids never collide.
pub fn anthropic_tool_id(id: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(valid) {
        return id.to_owned();
    }
    let clean: String = id.chars().map(|c| if valid(c) { c } else { '_' }).collect();
    let hash = hex::encode(Sha256::digest(id.as_bytes()));
    format!("{clean}_{}", &hash[..8])
}

/// Thinking budget for a reasoning effort; `None` turns thinking off.
pub fn thinking_budget(effort: &str) -> Option<u64> {
    match effort {
        "minimal" | "low" => Some(1024),
        "medium" => Some(2048),
        "high" => Some(4096),
        "xhigh" => Some(8192),
        _ => None,
    }
}

/// Writes Anthropic turns one block at a time: consecutive blocks of one
/// role form one turn (tool results first, order kept), collected as bytes
/// and written when the role changes. Without `write` it only learns what
/// the thinking decision needs (a first pass over the input).
struct TurnWriter {
    write: bool,
    keep_thinking: bool,
    role: Option<&'static str>,
    results: ArrayBytes,
    others: ArrayBytes,
    /// The open turn uses a tool; its first block is thinking.
    uses_tools: bool,
    first_thinking: Option<bool>,
    /// The same of the last assistant turn.
    last_assistant: Option<(bool, bool)>,
}

impl TurnWriter {
    fn new(write: bool, keep_thinking: bool) -> Self {
        Self {
            write,
            keep_thinking,
            role: None,
            results: ArrayBytes::default(),
            others: ArrayBytes::default(),
            uses_tools: false,
            first_thinking: None,
            last_assistant: None,
        }
    }

    fn push(&mut self, out: &mut ObjectWriter, role: &'static str, block: Value) {
        if self.role != Some(role) {
            self.flush(out);
            self.role = Some(role);
            self.uses_tools = false;
            self.first_thinking = None;
        }
        let thinking = is_thinking(&block);
        self.first_thinking.get_or_insert(thinking);
        if block["type"] == "tool_use" {
            self.uses_tools = true;
        }
        if role == "assistant" {
            self.last_assistant = Some((self.uses_tools, self.first_thinking == Some(true)));
        }
        if !self.write || (thinking && !self.keep_thinking) {
            return;
        }
        if block["type"] == "tool_result" {
            self.results.push(&block);
        } else {
            self.others.push(&block);
        }
    }

    /// Writes the open turn, unless it is empty.
    fn flush(&mut self, out: &mut ObjectWriter) {
        let Some(role) = self.role else { return };
        if !self.write || (self.results.is_empty() && self.others.is_empty()) {
            return;
        }
        self.results.append(&mut self.others);
        let results = &mut self.results;
        out.push_with(|buf| {
            buf.extend_from_slice(br#"{"role":"#);
            write_value(buf, &json!(role));
            buf.extend_from_slice(br#","content":"#);
            results.write_array(buf);
            buf.push(b'}');
        });
    }

    /// Thinking can stay on only if the last assistant turn that used a
    /// tool starts with a thinking block.
    fn allows_thinking(&self) -> bool {
        match self.last_assistant {
            Some((uses_tools, first_thinking)) => !uses_tools || first_thinking,
            None => true,
        }
    }
}

fn image_block(source: &ImageSource, param: &str) -> Result<Value, ResponsesError> {
    match source {
        ImageSource::Url(url) => {
            Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
        }
        ImageSource::Base64 { media_type, data } => match media_type.as_str() {
            "image/jpeg" | "image/png" | "image/gif" | "image/webp" => Ok(json!({
                "type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}
            })),
            "application/pdf" => Ok(json!({
                "type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}
            })),
            other => Err(ResponsesError::new(
                param,
                format!("images of type `{other}` are not supported by this model's provider"),
            )),
        },
    }
}

fn text_block(t: &str) -> Option<Value> {
    (!t.trim().is_empty()).then(|| json!({"type": "text", "text": t}))
}

/// Renders one input item into turns (and system blocks, when `system` is given).
fn render(
    item: InputItem,
    turns: &mut TurnWriter,
    out: &mut ObjectWriter,
    mut system: Option<&mut ArrayBytes>,
) -> Result<(), ResponsesError> {
    {
        match item {
            InputItem::Message {
                role: Role::System,
                parts,
            } => {
                for p in parts {
                    match p {
                        Part::Text(t) => {
                            if let (Some(system), Some(b)) = (system.as_deref_mut(), text_block(&t))
                            {
                                system.push(&b);
                            }
                        }
                        Part::Image { .. } => {
                            return Err(ResponsesError::new(
                                "input",
                                "images are not allowed in system or developer messages",
                            ));
                        }
                    }
                }
            }
            InputItem::Message { role, parts } => {
                let role = if role == Role::User {
                    "user"
                } else {
                    "assistant"
                };
                for p in parts {
                    match p {
                        Part::Text(t) => {
                            if let Some(b) = text_block(&t) {
                                turns.push(out, role, b);
                            }
                        }
                        Part::Image { source, .. } if role == "user" => {
                            turns.push(out, role, image_block(&source, "input")?)
                        }
                        Part::Image { .. } => {
                            return Err(ResponsesError::new(
                                "input",
                                "images are not allowed in assistant messages",
                            ));
                        }
                    }
                }
            }
            InputItem::Thinking(block) => turns.push(out, "assistant", block.to_block()),
            InputItem::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let input: Value = if arguments.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(&arguments).map_err(|_| {
                        ResponsesError::new(
                            "input",
                            format!(
                                "function_call `{call_id}` has arguments that are not valid JSON"
                            ),
                        )
                    })?
                };
                if !input.is_object() {
                    return Err(ResponsesError::new(
                        "input",
                        format!("function_call `{call_id}` arguments must be a JSON object"),
                    ));
                }
                turns.push(
                    out,
                    "assistant",
                    json!({"type": "tool_use", "id": anthropic_tool_id(&call_id), "name": name, "input": input}),
                );
            }
            InputItem::FunctionOutput { call_id, parts } => {
                let mut result =
                    json!({"type": "tool_result", "tool_use_id": anthropic_tool_id(&call_id)});
                if parts.iter().all(|p| matches!(p, Part::Text(_))) {
                    let text: String = parts
                        .iter()
                        .filter_map(|p| {
                            if let Part::Text(t) = p {
                                Some(t.as_str())
                            } else {
                                None
                            }
                        })
                        .collect();
                    if !text.is_empty() {
                        result["content"] = json!(text);
                    }
                } else {
                    let mut blocks = Vec::new();
                    for p in &parts {
                        match p {
                            Part::Text(t) => blocks.extend(text_block(t)),
                            Part::Image { source, .. } => {
                                blocks.push(image_block(source, "input")?)
                            }
                        }
                    }
                    result["content"] = json!(blocks);
                }
                turns.push(out, "user", result);
            }
        }
    }
    Ok(())
}

fn is_thinking(b: &Value) -> bool {
    matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking"))
}

/// Translates a Responses request into an Anthropic Messages request (a
/// tree in, a tree out: tests).
pub fn to_messages(request: &Value, opts: &MessagesOptions) -> Result<Translated, ResponsesError> {
    let json = crate::body::RequestJson::from_value(request)
        .map_err(|e| ResponsesError::new("body", e.to_string()))?;
    let (body, context) = to_messages_json(&json, None, opts)?;
    let body =
        serde_json::from_slice(&body).map_err(|e| ResponsesError::new("body", e.to_string()))?;
    Ok(Translated { body, context })
}

/// Translates a Responses request body into an Anthropic Messages body in
/// bounded memory: `input` is read one item at a time (twice when the
/// request asks for reasoning: thinking stays on only if the history allows
/// it, which is known at its end), and turns are written as they close.
/// `model` replaces the client's model.
pub fn to_messages_json(
    json: &crate::body::RequestJson,
    model: Option<&str>,
    opts: &MessagesOptions,
) -> Result<(bytes::Bytes, ResponseContext), ResponsesError> {
    let (request, input) = split_request(json)?;
    let request = &request;
    reject_stateful(request)?;
    let mut names = ToolNames::default();
    let tools = parse_tools(request, &mut names)?;
    let choice = parse_tool_choice(request, &mut names)?;

    let max_tokens = request
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(opts.default_max_tokens);
    let wanted = request
        .pointer("/reasoning/effort")
        .and_then(Value::as_str)
        .and_then(thinking_budget)
        .filter(|_| max_tokens > 1024);
    let budget = match wanted {
        Some(b) => {
            let mut scratch = names.clone();
            let mut facts = TurnWriter::new(false, true);
            let mut nowhere = ObjectWriter::with_capacity(0);
            for_each_item(input, &mut scratch, |item| {
                render(item, &mut facts, &mut nowhere, None)
            })?;
            facts.allows_thinking().then(|| b.min(max_tokens - 1))
        }
        None => None,
    };

    let mut out = ObjectWriter::with_capacity(json.bytes().len() + json.bytes().len() / 4 + 1024);
    match model {
        Some(m) => out.value("model", &json!(m)),
        None => {
            if let Some(m) = request.get("model") {
                out.value("model", m);
            }
        }
    }
    out.value("max_tokens", &json!(max_tokens));
    let mut system = ArrayBytes::default();
    if let Some(b) = instructions(request)?.as_deref().and_then(text_block) {
        system.push(&b);
    }
    out.open_array("messages");
    let mut turns = TurnWriter::new(true, budget.is_some());
    for_each_item(input, &mut names, |item| {
        render(item, &mut turns, &mut out, Some(&mut system))
    })?;
    turns.flush(&mut out);
    out.close_array();
    if !system.is_empty() {
        out.array_bytes("system", &mut system);
    }

    let mut body = Map::new();
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        body.insert("stream".into(), json!(true));
    }
    if let Some(b) = budget {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    }
    if let Some(t) = request
        .get("temperature")
        .and_then(Value::as_f64)
        .filter(|_| budget.is_none())
    {
        body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = request.get("top_p").and_then(Value::as_f64)
        && (budget.is_none() || (0.95..=1.0).contains(&p))
    {
        body.insert("top_p".into(), json!(p));
    }
    if !tools.is_empty() {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut v = json!({
                    "name": t.name,
                    "input_schema": t.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                });
                if let Some(d) = &t.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        body.insert("tools".into(), json!(tools));
        let mut c = match choice {
            Some(ToolChoice::None) => Some(json!({"type": "none"})),
            Some(ToolChoice::Required) if budget.is_none() => Some(json!({"type": "any"})),
            Some(ToolChoice::Function(name)) if budget.is_none() => {
                Some(json!({"type": "tool", "name": name}))
            }
            Some(_) => Some(json!({"type": "auto"})),
            None => None,
        };
        if request.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
            let choice = c.get_or_insert_with(|| json!({"type": "auto"}));
            if choice["type"] != "none" {
                choice["disable_parallel_tool_use"] = json!(true);
            }
        }
        if let Some(c) = c {
            body.insert("tool_choice".into(), c);
        }
    }
    if let Some(format) = request.pointer("/text/format") {
        let schema = match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => format.get("schema").cloned(),
            Some("json_object") => Some(json!({"type": "object", "additionalProperties": true})),
            _ => None,
        };
        if let Some(schema) = schema {
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
    }
    if let Some(user) = user_id(request) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    for (key, value) in &body {
        out.value(key, value);
    }
    Ok((
        bytes::Bytes::from(out.finish()),
        ResponseContext::from_request(request, names),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::responses::context::ThinkingBlock;

    fn msgs(request: Value) -> Value {
        to_messages(&request, &MessagesOptions::default())
            .unwrap()
            .body
    }

    #[test]
    fn tool_ids_are_sanitised_deterministically() {
        assert_eq!(anthropic_tool_id("call_abc-1"), "call_abc-1");
        let a = anthropic_tool_id("functions.get_weather:0");
        assert!(a.starts_with("functions_get_weather_0_"));
        assert_eq!(a, anthropic_tool_id("functions.get_weather:0"));
        assert_ne!(a, anthropic_tool_id("functions_get_weather_0"));
    }

    #[test]
    fn tool_results_lead_the_user_turn_and_turns_merge() {
        let b = msgs(json!({"model":"m","input":[
            {"role":"user","content":"go"},
            {"type":"function_call","call_id":"c1","name":"f","arguments":""},
            {"type":"function_call","call_id":"c2","name":"f","arguments":"{\"a\":1}"},
            {"type":"function_call_output","call_id":"c1","output":"one"},
            {"role":"user","content":"and"},
            {"type":"function_call_output","call_id":"c2","output":""}
        ]}));
        assert_eq!(
            b["messages"],
            json!([
                {"role":"user","content":[{"type":"text","text":"go"}]},
                {"role":"assistant","content":[
                    {"type":"tool_use","id":"c1","name":"f","input":{}},
                    {"type":"tool_use","id":"c2","name":"f","input":{"a":1}}]},
                {"role":"user","content":[
                    {"type":"tool_result","tool_use_id":"c1","content":"one"},
                    {"type":"tool_result","tool_use_id":"c2"},
                    {"type":"text","text":"and"}]}
            ])
        );
        assert_eq!(b["max_tokens"], 8192);
    }

    #[test]
    fn invalid_arguments_are_a_400() {
        let e = to_messages(
            &json!({"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{oops"}]}),
            &MessagesOptions::default(),
        )
        .unwrap_err();
        assert!(e.message.contains("not valid JSON"));
    }

    #[test]
    fn thinking_budget_and_its_constraints() {
        let b = msgs(
            json!({"input":"x","reasoning":{"effort":"high"},"temperature":0.2,"top_p":0.5,
            "tools":[{"type":"function","name":"f"}],"tool_choice":"required","parallel_tool_calls":false}),
        );
        assert_eq!(
            b["thinking"],
            json!({"type":"enabled","budget_tokens":4096})
        );
        assert!(b.get("temperature").is_none());
        assert!(b.get("top_p").is_none());
        assert_eq!(
            b["tool_choice"],
            json!({"type":"auto","disable_parallel_tool_use":true})
        );

        let b = msgs(json!({"input":"x","reasoning":{"effort":"xhigh"},"max_output_tokens":2000}));
        assert_eq!(b["thinking"]["budget_tokens"], 1999);
        let b = msgs(json!({"input":"x","reasoning":{"effort":"low"},"max_output_tokens":1000}));
        assert!(b.get("thinking").is_none());
        let b = msgs(json!({"input":"x","reasoning":{"effort":"none"},"temperature":1.7}));
        assert!(b.get("thinking").is_none());
        assert_eq!(b["temperature"], 1.0);
    }

    #[test]
    fn thinking_is_replayed_or_turned_off() {
        let block = ThinkingBlock::Thinking {
            thinking: "t".into(),
            signature: "s".into(),
        };
        let loop_with = |reasoning: Option<Value>| {
            let mut input = vec![json!({"role":"user","content":"go"})];
            input.extend(reasoning);
            input.push(json!({"type":"function_call","call_id":"c","name":"f","arguments":"{}"}));
            input.push(json!({"type":"function_call_output","call_id":"c","output":"ok"}));
            msgs(
                json!({"input": input, "reasoning": {"effort": "medium"}, "tools":[{"type":"function","name":"f"}]}),
            )
        };
        let b = loop_with(Some(
            json!({"type":"reasoning","summary":[],"encrypted_content": block.encode()}),
        ));
        assert_eq!(b["thinking"]["budget_tokens"], 2048);
        assert_eq!(
            b["messages"][1]["content"][0],
            json!({"type":"thinking","thinking":"t","signature":"s"})
        );
        let b = loop_with(Some(
            json!({"type":"reasoning","summary":[],"encrypted_content":"gAAAA-openai"}),
        ));
        assert!(b.get("thinking").is_none());
        assert_eq!(b["messages"][1]["content"][0]["type"], "tool_use");
    }

    #[test]
    fn system_prompts_are_hoisted_in_order() {
        let b = msgs(json!({"instructions":"one","input":[
            {"role":"developer","content":[{"type":"input_text","text":"two"}]},
            {"role":"user","content":"hi"},
            {"role":"system","content":"three"}
        ]}));
        assert_eq!(
            b["system"],
            json!([{"type":"text","text":"one"},{"type":"text","text":"two"},{"type":"text","text":"three"}])
        );
        assert_eq!(
            b["messages"],
            json!([{"role":"user","content":[{"type":"text","text":"hi"}]}])
        );
    }
}
