//! Reads a Responses request's `instructions` and `input` into neutral
//! items both targets render.
//!
//! Rules (also in `docs/responses.md`):
//! - `input` may be a string (one user message) or a list of items;
//! - `developer` and `system` messages are system prompts;
//! - `input_text`, `output_text` and `refusal` parts are text; `input_image`
//!   by URL or `data:` URL is an image; images by `file_id`, `input_file` and
//!   `input_audio` need OpenAI's file store or audio and are rejected;
//! - `function_call` names are mapped through [`ToolNames`] (namespace
//!   flattening) exactly like the tool definitions;
//! - `reasoning` items are kept only when their `encrypted_content` carries
//!   an Anthropic thinking block the gateway produced; other targets drop
//!   them (OpenAI's encrypted reasoning cannot be replayed elsewhere);
//! - `web_search_call` items (the history of a hosted tool) are dropped;
//!   `item_reference` and other item types need OpenAI-side state and are
//!   rejected.

use serde_json::Value;

use super::ResponsesError;
use super::context::{ThinkingBlock, ToolNames};

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `system` or `developer`.
    System,
    /// `user`.
    User,
    /// `assistant`.
    Assistant,
}

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// An http(s) URL.
    Url(String),
    /// Inline data from a `data:<media_type>;base64,<data>` URL.
    Base64 {
        /// The media type, e.g. `image/png`.
        media_type: String,
        /// The base64 data.
        data: String,
    },
}

impl ImageSource {
    /// The URL form (a `data:` URL for inline data).
    pub fn url(&self) -> String {
        match self {
            ImageSource::Url(u) => u.clone(),
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// One piece of message or tool-output content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text (may be empty; renderers skip empty text).
    Text(String),
    /// An image.
    Image {
        /// Where the image comes from.
        source: ImageSource,
        /// The `detail` hint, if any.
        detail: Option<String>,
    },
}

/// One conversation item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputItem {
    /// A message.
    Message {
        /// The speaker.
        role: Role,
        /// The content.
        parts: Vec<Part>,
    },
    /// A tool call the model made.
    FunctionCall {
        /// The call id.
        call_id: String,
        /// The upstream tool name (namespace flattened).
        name: String,
        /// The arguments as a JSON string.
        arguments: String,
    },
    /// The output of a tool call.
    FunctionOutput {
        /// The call id.
        call_id: String,
        /// The output.
        parts: Vec<Part>,
    },
    /// An Anthropic thinking block carried through a reasoning item.
    Thinking(ThinkingBlock),
}

/// The request's `instructions` as a system prompt, if any.
pub fn instructions(request: &Value) -> Result<Option<String>, ResponsesError> {
    match request.get("instructions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
        Some(_) => Err(ResponsesError::new(
            "instructions",
            "`instructions` must be a string",
        )),
    }
}

/// Calls `f` with each item of a raw `input` member (a string, an array,
/// or absent), one at a time: each element is parsed on its own, in
/// bounded memory (see [`crate::translate::bounded`]).
pub fn for_each_item(
    input: Option<&str>,
    names: &mut ToolNames,
    mut f: impl FnMut(InputItem) -> Result<(), ResponsesError>,
) -> Result<(), ResponsesError> {
    let Some(raw) = input.map(str::trim).filter(|r| *r != "null") else {
        return Ok(());
    };
    if raw.starts_with('"') {
        let text = crate::translate::bounded::parse_value(raw, "input").map_err(bounded_error)?;
        return f(InputItem::Message {
            role: Role::User,
            parts: vec![Part::Text(text.as_str().unwrap_or_default().to_owned())],
        });
    }
    if !raw.starts_with('[') {
        return Err(ResponsesError::new(
            "input",
            "`input` must be a string or a list of items",
        ));
    }
    let mut failed = None;
    let walked = crate::translate::bounded::for_each(raw, "input", |i, element| {
        let param = format!("input[{i}]");
        let item = crate::translate::bounded::parse_value(element, &param)?;
        let parsed = parse_item(&item, &param, names).and_then(|p| match p {
            Some(item) => f(item),
            None => Ok(()),
        });
        parsed.map_err(|e| {
            failed = Some(e);
            crate::translate::TranslateError::invalid(param, "stopped")
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    walked.map_err(bounded_error)
}

/// A Responses request split for bounded translation: every top-level
/// member but `input` as one (small) tree, and `input` as raw text.
pub fn split_request(
    json: &crate::body::RequestJson,
) -> Result<(Value, Option<&str>), ResponsesError> {
    let mut head = serde_json::Map::new();
    let mut input = None;
    for (key, raw) in json.members() {
        if key == "input" {
            input = Some(raw);
            continue;
        }
        let value = crate::translate::bounded::parse_value(raw, key).map_err(bounded_error)?;
        head.insert(key.to_owned(), value);
    }
    Ok((Value::Object(head), input))
}

/// A bounded-parse error as a Responses error.
pub fn bounded_error(e: crate::translate::TranslateError) -> ResponsesError {
    match e {
        crate::translate::TranslateError::Invalid { field, reason } => {
            ResponsesError::new(field, reason)
        }
        other => ResponsesError::new("input", other.to_string()),
    }
}

/// The request's `input` as items.
pub fn parse_input(
    request: &Value,
    names: &mut ToolNames,
) -> Result<Vec<InputItem>, ResponsesError> {
    match request.get("input") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![InputItem::Message {
            role: Role::User,
            parts: vec![Part::Text(s.clone())],
        }]),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(parsed) = parse_item(item, &format!("input[{i}]"), names)? {
                    out.push(parsed);
                }
            }
            Ok(out)
        }
        Some(_) => Err(ResponsesError::new(
            "input",
            "`input` must be a string or a list of items",
        )),
    }
}

fn str_field<'a>(v: &'a Value, key: &str, param: &str) -> Result<&'a str, ResponsesError> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| {
        ResponsesError::new(
            format!("{param}.{key}"),
            format!("`{key}` must be a string"),
        )
    })
}

fn parse_item(
    item: &Value,
    param: &str,
    names: &mut ToolNames,
) -> Result<Option<InputItem>, ResponsesError> {
    let kind = item.get("type").and_then(Value::as_str);
    let kind = match kind {
        Some(k) => k,
        None if item.get("role").is_some() => "message",
        None => return Err(ResponsesError::new(param, "input item has no `type`")),
    };
    match kind {
        "message" => {
            let role = match str_field(item, "role", param)? {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(ResponsesError::new(
                        format!("{param}.role"),
                        format!("unknown message role `{other}`"),
                    ));
                }
            };
            let parts = parse_content(item.get("content"), &format!("{param}.content"))?;
            Ok(Some(InputItem::Message { role, parts }))
        }
        "function_call" => {
            let call_id = str_field(item, "call_id", param)?.to_owned();
            let name = str_field(item, "name", param)?;
            let namespace = item.get("namespace").and_then(Value::as_str);
            let arguments = match item.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                None | Some(Value::Null) => String::new(),
                Some(other) => other.to_string(),
            };
            Ok(Some(InputItem::FunctionCall {
                call_id,
                name: names.upstream(namespace, name),
                arguments,
            }))
        }
        "function_call_output" => {
            let call_id = str_field(item, "call_id", param)?.to_owned();
            let parts = parse_content(item.get("output"), &format!("{param}.output"))?;
            Ok(Some(InputItem::FunctionOutput { call_id, parts }))
        }
        "reasoning" => Ok(item
            .get("encrypted_content")
            .and_then(Value::as_str)
            .and_then(ThinkingBlock::decode)
            .map(InputItem::Thinking)),
        "web_search_call" => Ok(None),
        other => Err(ResponsesError::new(
            format!("{param}.type"),
            format!("input items of type `{other}` cannot be translated for this model's provider"),
        )),
    }
}

fn parse_content(content: Option<&Value>, param: &str) -> Result<Vec<Part>, ResponsesError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| parse_part(p, &format!("{param}[{i}]")))
            .collect(),
        Some(_) => Err(ResponsesError::new(
            param,
            "content must be a string or a list of parts",
        )),
    }
}

fn parse_part(part: &Value, param: &str) -> Result<Part, ResponsesError> {
    match part.get("type").and_then(Value::as_str).unwrap_or_default() {
        "input_text" | "output_text" | "text" => {
            Ok(Part::Text(str_field(part, "text", param)?.to_owned()))
        }
        "refusal" => Ok(Part::Text(str_field(part, "refusal", param)?.to_owned())),
        "input_image" => {
            let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                return Err(ResponsesError::new(
                    format!("{param}.image_url"),
                    "images must be given by `image_url` (http(s) or data: URL); `file_id` needs OpenAI's file store",
                ));
            };
            Ok(Part::Image {
                source: image_source(url, param)?,
                detail: part
                    .get("detail")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        }
        other => Err(ResponsesError::new(
            format!("{param}.type"),
            format!(
                "content parts of type `{other}` cannot be translated for this model's provider"
            ),
        )),
    }
}

fn image_source(url: &str, param: &str) -> Result<ImageSource, ResponsesError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            ResponsesError::new(format!("{param}.image_url"), "malformed data: URL")
        })?;
        let media_type = meta.strip_suffix(";base64").ok_or_else(|| {
            ResponsesError::new(
                format!("{param}.image_url"),
                "data: URLs must be base64-encoded",
            )
        })?;
        return Ok(ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    Ok(ImageSource::Url(url.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(input: Value) -> Result<Vec<InputItem>, ResponsesError> {
        parse_input(&json!({"input": input}), &mut ToolNames::default())
    }

    #[test]
    fn string_input_is_one_user_message() {
        assert_eq!(
            parse(json!("hi")).unwrap(),
            vec![InputItem::Message {
                role: Role::User,
                parts: vec![Part::Text("hi".into())]
            }]
        );
    }

    #[test]
    fn items_of_every_kind() {
        let got = parse(json!([
            {"type":"message","role":"developer","content":[{"type":"input_text","text":"be brief"}]},
            {"role":"user","content":[{"type":"input_text","text":"look"},{"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"low"}]},
            {"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB-openai"},
            {"type":"function_call","call_id":"call_1","name":"spawn_agent","namespace":"multi_agent_v1","arguments":"{}"},
            {"type":"function_call_output","call_id":"call_1","output":"done"},
            {"type":"web_search_call","id":"ws_1","status":"completed"}
        ]))
        .unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0],
            InputItem::Message {
                role: Role::System,
                parts: vec![Part::Text("be brief".into())]
            }
        );
        assert!(
            matches!(&got[1], InputItem::Message { parts, .. } if parts[1] == Part::Image {
                source: ImageSource::Base64 { media_type: "image/png".into(), data: "AAAA".into() },
                detail: Some("low".into())
            })
        );
        assert_eq!(
            got[2],
            InputItem::FunctionCall {
                call_id: "call_1".into(),
                name: "multi_agent_v1__spawn_agent".into(),
                arguments: "{}".into()
            }
        );
        assert_eq!(
            got[3],
            InputItem::FunctionOutput {
                call_id: "call_1".into(),
                parts: vec![Part::Text("done".into())]
            }
        );
    }

    #[test]
    fn our_reasoning_items_carry_thinking() {
        let block = ThinkingBlock::Thinking {
            thinking: "hmm".into(),
            signature: "sig".into(),
        };
        let got =
            parse(json!([{"type":"reasoning","summary":[],"encrypted_content": block.encode()}]))
                .unwrap();
        assert_eq!(got, vec![InputItem::Thinking(block)]);
    }

    #[test]
    fn untranslatable_input_is_rejected_with_its_path() {
        let e = parse(json!([{"type":"item_reference","id":"msg_1"}])).unwrap_err();
        assert_eq!(e.param, "input[0].type");
        let e =
            parse(json!([{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]))
                .unwrap_err();
        assert_eq!(e.param, "input[0].content[0].image_url");
        let e = parse(json!([{"role":"user","content":[{"type":"input_file","file_data":"x"}]}]))
            .unwrap_err();
        assert_eq!(e.param, "input[0].content[0].type");
        let e = parse(json!([{"role":"tool","content":"x"}])).unwrap_err();
        assert_eq!(e.param, "input[0].role");
        assert!(parse(json!(5)).is_err());
    }
}
