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
use super::input::{InputItem, Part, Role, instructions, parse_input};
use super::tools::{ToolChoice, parse_tool_choice, parse_tools};
use super::{ResponsesError, Translated};

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

/// Renders the conversation as Chat messages.
fn messages(request: &Value, items: Vec<InputItem>) -> Result<Vec<Value>, ResponsesError> {
    let mut out: Vec<Value> = Vec::new();
    if let Some(sys) = instructions(request)? {
        out.push(json!({"role": "system", "content": sys}));
    }
    let mut pending_images: Vec<Value> = Vec::new();
    for item in items {
        if !matches!(item, InputItem::FunctionOutput { .. }) && !pending_images.is_empty() {
            out.push(json!({"role": "user", "content": std::mem::take(&mut pending_images)}));
        }
        match item {
            InputItem::Message {
                role: Role::System,
                parts,
            } => {
                let text = text_only(&parts, "input")?;
                if !text.is_empty() {
                    out.push(json!({"role": "system", "content": text}));
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
                out.push(json!({"role": "user", "content": content}));
            }
            InputItem::Message {
                role: Role::Assistant,
                parts,
            } => {
                let text = text_only(&parts, "input")?;
                if !text.is_empty() {
                    out.push(json!({"role": "assistant", "content": text}));
                }
            }
            InputItem::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
                match out.last_mut() {
                    Some(last) if last["role"] == "assistant" => {
                        match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                            Some(calls) => calls.push(call),
                            None => last["tool_calls"] = json!([call]),
                        }
                    }
                    _ => out
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            InputItem::FunctionOutput { call_id, parts } => {
                let mut text = String::new();
                for p in &parts {
                    match p {
                        Part::Text(t) => text.push_str(t),
                        Part::Image { .. } => {
                            pending_images.extend(chat_parts(std::slice::from_ref(p)))
                        }
                    }
                }
                out.push(json!({"role": "tool", "tool_call_id": call_id, "content": text}));
            }
            InputItem::Thinking(_) => {}
        }
    }
    if !pending_images.is_empty() {
        out.push(json!({"role": "user", "content": pending_images}));
    }
    Ok(out)
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

/// Translates a Responses request into a Chat Completions request.
pub fn to_chat(request: &Value) -> Result<Translated, ResponsesError> {
    reject_stateful(request)?;
    let mut names = ToolNames::default();
    let tools = parse_tools(request, &mut names)?;
    let choice = parse_tool_choice(request, &mut names)?;
    let items = parse_input(request, &mut names)?;

    let mut body = Map::new();
    if let Some(model) = request.get("model") {
        body.insert("model".into(), model.clone());
    }
    body.insert("messages".into(), json!(messages(request, items)?));
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(n) = request.get("max_output_tokens").filter(|v| v.is_u64()) {
        body.insert("max_tokens".into(), n.clone());
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = request.get(key).filter(|v| v.is_number()) {
            body.insert(key.into(), v.clone());
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
        body.insert("tools".into(), json!(tools));
        if let Some(choice) = choice {
            let c = match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Function(name) => {
                    json!({"type": "function", "function": {"name": name}})
                }
            };
            body.insert("tool_choice".into(), c);
        }
        if let Some(p) = request
            .get("parallel_tool_calls")
            .filter(|v| v.is_boolean())
        {
            body.insert("parallel_tool_calls".into(), p.clone());
        }
    }
    if let Some(effort) = request.pointer("/reasoning/effort").and_then(Value::as_str) {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(rf) = response_format(request) {
        body.insert("response_format".into(), rf);
    }
    if let Some(user) = user_id(request) {
        body.insert("user".into(), json!(user));
    }
    Ok(Translated {
        body: Value::Object(body),
        context: ResponseContext::from_request(request, names),
    })
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
