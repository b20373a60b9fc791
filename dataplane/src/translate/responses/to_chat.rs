//! A Responses request rendered as a Chat Completions request (for
//! OpenAI-compatible backends; OpenAI itself gets the Responses request
//! unchanged).
//!
//! Field rules (also in `docs/responses.md`):
//! - `instructions` and `system`/`developer` messages → `system` messages in
//!   place (OpenAI-compatible servers do not all know `developer`);
//! - `function_call` items join the preceding assistant message's
//!   `tool_calls`; `function_call_output` items → `tool` messages; images in
//!   a tool output move to a `user` message right after the tool messages;
//! - reasoning items are dropped;
//! - `max_output_tokens` → `max_tokens`; `temperature`, `top_p`,
//!   `parallel_tool_calls` pass; `reasoning.effort` → `reasoning_effort`;
//!   `text.format` → `response_format`; `safety_identifier`/`user` → `user`;
//!   a stream always asks for `stream_options.include_usage`;
//! - `store`, `include`, `prompt_cache_key`, `client_metadata`, `metadata`,
//!   `service_tier`, `truncation`, `text.verbosity`, `reasoning.summary` are
//!   ignored: they only mean something to OpenAI itself;
//! - `previous_response_id`, `conversation` and `background: true` need
//!   OpenAI-side state and are rejected.

use serde_json::{Map, Value, json};

use super::context::{ResponseContext, ToolNames};
use super::input::{InputItem, Part, Role, for_each_item, instructions, split_request};
use super::tools::{ToolChoice, parse_tool_choice, parse_tools};
use super::{ResponsesError, Translated};
use crate::translate::bounded::{ArrayBytes, ObjectWriter, write_value};

/// Rejects request fields that need state kept at OpenAI.
pub fn reject_stateful(request: &Value) -> Result<(), ResponsesError> {
    for key in ["previous_response_id", "conversation"] {
        if request.get(key).is_some_and(|v| !v.is_null()) {
            return Err(ResponsesError::new(
                key,
                format!(
                    "`{key}` needs responses stored at OpenAI; send the whole conversation in `input` instead"
                ),
            ));
        }
    }
    if request.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(ResponsesError::new(
            "background",
            "background responses are not supported for this model's provider",
        ));
    }
    Ok(())
}

/// The text of `parts`, concatenated; images are an error at `param`.
fn text_only(parts: &[Part], param: &str) -> Result<String, ResponsesError> {
    let mut text = String::new();
    for p in parts {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::Image { .. } => {
                return Err(ResponsesError::new(
                    param,
                    "images are only allowed in user messages and tool outputs",
                ));
            }
        }
    }
    Ok(text)
}

fn chat_parts(parts: &[Part]) -> Vec<Value> {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if t.is_empty() => None,
            Part::Text(t) => Some(json!({"type": "text", "text": t})),
            Part::Image { source, detail } => {
                let mut image = json!({"url": source.url()});
                if let Some(d) = detail {
                    image["detail"] = json!(d);
                }
                Some(json!({"type": "image_url", "image_url": image}))
            }
        })
        .collect()
}

/// Writes the conversation as Chat messages, one item at a time: an
/// assistant message is kept open (its tool calls as bytes) so that the
/// `function_call` items after it join it; images of tool outputs wait for
/// the end of the tool messages.
#[derive(Default)]
struct ChatMessages {
    /// The open assistant message: its content and tool calls.
    assistant: Option<(Value, ArrayBytes)>,
    images: ArrayBytes,
}

impl ChatMessages {
    fn flush_assistant(&mut self, out: &mut ObjectWriter) {
        if let Some((content, mut calls)) = self.assistant.take() {
            out.push_with(|buf| {
                buf.extend_from_slice(br#"{"role":"assistant","content":"#);
                write_value(buf, &content);
                if !calls.is_empty() {
                    buf.extend_from_slice(br#","tool_calls":"#);
                    calls.write_array(buf);
                }
                buf.push(b'}');
            });
        }
    }

    fn write(&mut self, out: &mut ObjectWriter, message: &Value) {
        self.flush_assistant(out);
        out.push(message);
    }

    fn flush_images(&mut self, out: &mut ObjectWriter) {
        if self.images.is_empty() {
            return;
        }
        self.flush_assistant(out);
        let images = &mut self.images;
        out.push_with(|buf| {
            buf.extend_from_slice(br#"{"role":"user","content":"#);
            images.write_array(buf);
            buf.push(b'}');
        });
    }

    fn item(&mut self, out: &mut ObjectWriter, item: InputItem) -> Result<(), ResponsesError> {
        if !matches!(item, InputItem::FunctionOutput { .. }) {
            self.flush_images(out);
        }
        match item {
            InputItem::Message {
                role: Role::System,
                parts,
            } => {
                let text = text_only(&parts, "input")?;
                if !text.is_empty() {
                    self.write(out, &json!({"role": "system", "content": text}));
                }
            }
            InputItem::Message {
                role: Role::User,
                parts,
            } => {
                let content = match parts.as_slice() {
                    [Part::Text(t)] => json!(t),
                    _ => json!(chat_parts(&parts)),
                };
                self.write(out, &json!({"role": "user", "content": content}));
            }
            InputItem::Message {
                role: Role::Assistant,
                parts,
            } => {
                let text = text_only(&parts, "input")?;
                if !text.is_empty() {
                    self.flush_assistant(out);
                    self.assistant = Some((json!(text), ArrayBytes::default()));
                }
            }
            InputItem::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
                self.assistant
                    .get_or_insert_with(|| (Value::Null, ArrayBytes::default()))
                    .1
                    .push(&call);
            }
            InputItem::FunctionOutput { call_id, parts } => {
                let mut text = String::new();
                for p in &parts {
                    match p {
                        Part::Text(t) => text.push_str(t),
                        Part::Image { .. } => {
                            for image in chat_parts(std::slice::from_ref(p)) {
                                self.images.push(&image);
                            }
                        }
                    }
                }
                self.write(
                    out,
                    &json!({"role": "tool", "tool_call_id": call_id, "content": text}),
                );
            }
            InputItem::Thinking(_) => {}
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut ObjectWriter) {
        self.flush_images(out);
        self.flush_assistant(out);
    }
}

/// `text.format` as a Chat `response_format`, if it asks for JSON.
pub fn response_format(request: &Value) -> Option<Value> {
    let format = request.pointer("/text/format")?;
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.to_owned(), v.clone());
                }
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        "json_object" => Some(json!({"type": "json_object"})),
        _ => None,
    }
}

/// The user id to forward: `safety_identifier`, else `user`.
pub fn user_id(request: &Value) -> Option<&str> {
    request
        .get("safety_identifier")
        .and_then(Value::as_str)
        .or_else(|| request.get("user").and_then(Value::as_str))
}

/// Translates a Responses request into a Chat Completions request (a tree
/// in, a tree out, with `max_tokens`: tests and the mock provider).
pub fn to_chat(request: &Value) -> Result<Translated, ResponsesError> {
    let json = crate::body::RequestJson::from_value(request)
        .map_err(|e| ResponsesError::new("body", e.to_string()))?;
    let (body, context) = to_chat_json(&json, None, true)?;
    let body =
        serde_json::from_slice(&body).map_err(|e| ResponsesError::new("body", e.to_string()))?;
    Ok(Translated { body, context })
}

/// Translates a Responses request body into a Chat Completions body in
/// bounded memory: `input` is read and written one item at a time. `model`
/// replaces the client's model; `legacy_max_tokens` writes `max_tokens`
/// instead of `max_completion_tokens`.
pub fn to_chat_json(
    json: &crate::body::RequestJson,
    model: Option<&str>,
    legacy_max_tokens: bool,
) -> Result<(bytes::Bytes, ResponseContext), ResponsesError> {
    let (request, input) = split_request(json)?;
    let request = &request;
    reject_stateful(request)?;
    let mut names = ToolNames::default();
    let tools = parse_tools(request, &mut names)?;
    let choice = parse_tool_choice(request, &mut names)?;

    let mut out = ObjectWriter::with_capacity(json.bytes().len() + json.bytes().len() / 4 + 1024);
    match model {
        Some(m) => out.value("model", &json!(m)),
        None => {
            if let Some(m) = request.get("model") {
                out.value("model", m);
            }
        }
    }
    out.open_array("messages");
    let mut messages = ChatMessages::default();
    if let Some(sys) = instructions(request)? {
        messages.write(&mut out, &json!({"role": "system", "content": sys}));
    }
    for_each_item(input, &mut names, |item| messages.item(&mut out, item))?;
    messages.finish(&mut out);
    out.close_array();
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if stream {
        out.value("stream", &json!(true));
        out.value("stream_options", &json!({"include_usage": true}));
    }
    if let Some(n) = request.get("max_output_tokens").filter(|v| v.is_u64()) {
        let key = if legacy_max_tokens {
            "max_tokens"
        } else {
            "max_completion_tokens"
        };
        out.value(key, n);
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = request.get(key).filter(|v| v.is_number()) {
            out.value(key, v);
        }
    }
    if !tools.is_empty() {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut f = json!({
                    "name": t.name,
                    "parameters": t.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                });
                if let Some(d) = &t.description {
                    f["description"] = json!(d);
                }
                if t.strict {
                    f["strict"] = json!(true);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        out.value("tools", &json!(tools));
        if let Some(choice) = choice {
            let c = match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Function(name) => {
                    json!({"type": "function", "function": {"name": name}})
                }
            };
            out.value("tool_choice", &c);
        }
        if let Some(p) = request
            .get("parallel_tool_calls")
            .filter(|v| v.is_boolean())
        {
            out.value("parallel_tool_calls", p);
        }
    }
    if let Some(effort) = request.pointer("/reasoning/effort").and_then(Value::as_str) {
        out.value("reasoning_effort", &json!(effort));
    }
    if let Some(rf) = response_format(request) {
        out.value("response_format", &rf);
    }
    if let Some(user) = user_id(request) {
        out.value("user", &json!(user));
    }
    Ok((
        bytes::Bytes::from(out.finish()),
        ResponseContext::from_request(request, names),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_loop_pairs_calls_and_outputs() {
        let t = to_chat(&json!({
            "model": "m", "instructions": "sys",
            "input": [
                {"role":"user","content":"go"},
                {"type":"message","role":"assistant","content":[{"type":"output_text","text":"calling"}]},
                {"type":"function_call","call_id":"a","name":"f","arguments":"{}"},
                {"type":"function_call","call_id":"b","name":"f","arguments":"{\"x\":1}"},
                {"type":"function_call_output","call_id":"a","output":"1"},
                {"type":"function_call_output","call_id":"b","output":[{"type":"input_text","text":"see"},{"type":"input_image","image_url":"https://x/y.png"}]},
                {"role":"user","content":"thanks"}
            ]
        }))
        .unwrap();
        assert_eq!(
            t.body["messages"],
            json!([
                {"role":"system","content":"sys"},
                {"role":"user","content":"go"},
                {"role":"assistant","content":"calling","tool_calls":[
                    {"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},
                    {"id":"b","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},
                {"role":"tool","tool_call_id":"a","content":"1"},
                {"role":"tool","tool_call_id":"b","content":"see"},
                {"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},
                {"role":"user","content":"thanks"}
            ])
        );
    }

    #[test]
    fn stateful_requests_are_rejected() {
        assert_eq!(
            to_chat(&json!({"previous_response_id":"resp_1"}))
                .unwrap_err()
                .param,
            "previous_response_id"
        );
        assert_eq!(
            to_chat(&json!({"background":true})).unwrap_err().param,
            "background"
        );
        assert!(to_chat(&json!({"previous_response_id":null,"background":false})).is_ok());
    }

    #[test]
    fn no_tools_means_no_tool_choice() {
        let t = to_chat(&json!({"model":"m","input":"x","tools":[{"type":"web_search"}],"tool_choice":"auto","parallel_tool_calls":true})).unwrap();
        assert!(t.body.get("tools").is_none());
        assert!(t.body.get("tool_choice").is_none());
        assert!(t.body.get("parallel_tool_calls").is_none());
    }

    #[test]
    fn json_schema_format() {
        let t = to_chat(&json!({"input":"x","text":{"format":{"type":"json_schema","name":"r","schema":{"type":"object"},"strict":true}}})).unwrap();
        assert_eq!(
            t.body["response_format"],
            json!({"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object"},"strict":true}})
        );
    }
}
