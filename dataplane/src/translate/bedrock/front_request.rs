//! Front door: a Bedrock Converse request from a client (boto3
//! `converse` / `converse_stream`) → the Anthropic Messages request the
//! gateway routes like any other (`model` from the path). The inverse of
//! [`super::converse_request`]:
//!
//! | Converse | Messages |
//! |---|---|
//! | `system: [{text}, {cachePoint}]` | `system` text blocks (`cache_control` on the block before a cachePoint) |
//! | `{text}`, `{image:{format, source:{bytes}}}` | `text`, `image` base64 |
//! | `{document:{format: pdf / txt / md / csv / html, source:{bytes}}}` | `document` (base64 PDF, or text) |
//! | `{toolUse}`, `{toolResult:{content, status}}` | `tool_use`, `tool_result` (`is_error`; `{json}` content as text) |
//! | `{reasoningContent}` | `thinking` / `redacted_thinking` |
//! | `{cachePoint}` in a message | `cache_control: {type: ephemeral}` on the block before it |
//! | `inferenceConfig` | `max_tokens` (default 4096), `temperature`, `top_p`, `stop_sequences` |
//! | `toolConfig` | `tools`, `tool_choice` |
//! | `additionalModelRequestFields.{top_k, thinking}` | `top_k`, `thinking` |
//! | `additionalModelRequestFields.anthropic_beta` | returned as `anthropic-beta` flags |
//!
//! Dropped: `requestMetadata`, `performanceConfig`, other
//! `additionalModelRequestFields` (model-specific). Refused: `guardrailConfig`
//! and `promptVariables` (the gateway cannot apply them), S3 sources,
//! document formats without an Anthropic equivalent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::translate::{DEFAULT_MAX_TOKENS, TranslateError};

/// A client's field the gateway cannot serve: a client error.
fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> TranslateError {
    TranslateError::invalid(
        field,
        format!("not supported by the gateway: {}", reason.into()),
    )
}

fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

fn bytes_source(path: &str, block: &Value) -> Result<Value, TranslateError> {
    match block.pointer("/source/bytes") {
        Some(Value::String(b)) => Ok(json!(b)),
        _ => Err(unsupported(
            format!("{path}.source"),
            "only inline bytes are supported (no S3 locations)",
        )),
    }
}

fn image(path: &str, img: &Value) -> Result<Value, TranslateError> {
    let format = img["format"].as_str().unwrap_or_default();
    let media = match format {
        "png" | "gif" | "webp" => format!("image/{format}"),
        "jpeg" | "jpg" => "image/jpeg".into(),
        other => {
            return Err(unsupported(
                format!("{path}.format"),
                format!("image format {other:?}"),
            ));
        }
    };
    Ok(
        json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": bytes_source(path, img)?}}),
    )
}

fn document(path: &str, doc: &Value) -> Result<Value, TranslateError> {
    let data = bytes_source(path, doc)?;
    let mut out = match doc["format"].as_str().unwrap_or_default() {
        "pdf" => {
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}})
        }
        "txt" | "md" | "csv" | "html" => {
            let raw = B64.decode(data.as_str().unwrap_or_default()).map_err(|_| {
                TranslateError::invalid(format!("{path}.source.bytes"), "not base64")
            })?;
            let text = String::from_utf8(raw).map_err(|_| {
                TranslateError::invalid(format!("{path}.source.bytes"), "not UTF-8 text")
            })?;
            json!({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": text}})
        }
        other => {
            return Err(unsupported(
                format!("{path}.format"),
                format!("document format {other:?}"),
            ));
        }
    };
    if let Some(name) = doc.get("name").and_then(Value::as_str) {
        out["title"] = json!(name);
    }
    Ok(out)
}

/// One Converse content block → an Anthropic block (`None`: a cachePoint,
/// applied to the previous block by the caller).
fn block(path: &str, b: &Value) -> Result<Option<Value>, TranslateError> {
    if b.get("cachePoint").is_some() {
        return Ok(None);
    }
    if let Some(t) = b.get("text") {
        return Ok(Some(json!({"type": "text", "text": t})));
    }
    if let Some(img) = b.get("image") {
        return image(&format!("{path}.image"), img).map(Some);
    }
    if let Some(doc) = b.get("document") {
        return document(&format!("{path}.document"), doc).map(Some);
    }
    if let Some(t) = b.get("toolUse") {
        return Ok(Some(
            json!({"type": "tool_use", "id": t["toolUseId"], "name": t["name"], "input": t.get("input").cloned().unwrap_or_else(|| json!({}))}),
        ));
    }
    if let Some(r) = b.get("toolResult") {
        let mut content = Vec::new();
        for (j, c) in r
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let p = format!("{path}.toolResult.content[{j}]");
            if let Some(t) = c.get("text") {
                content.push(json!({"type": "text", "text": t}));
            } else if let Some(j) = c.get("json") {
                content.push(json!({"type": "text", "text": j.to_string()}));
            } else if let Some(img) = c.get("image") {
                content.push(image(&p, img)?);
            } else if let Some(doc) = c.get("document") {
                content.push(document(&p, doc)?);
            } else {
                return Err(unsupported(p, "unknown tool result content"));
            }
        }
        let mut out =
            json!({"type": "tool_result", "tool_use_id": r["toolUseId"], "content": content});
        if r.get("status").and_then(Value::as_str) == Some("error") {
            out["is_error"] = json!(true);
        }
        return Ok(Some(out));
    }
    if let Some(r) = b.get("reasoningContent") {
        if let Some(t) = r.get("reasoningText") {
            return Ok(Some(
                json!({"type": "thinking", "thinking": t["text"], "signature": t.get("signature").cloned().unwrap_or_else(|| json!(""))}),
            ));
        }
        if let Some(d) = r.get("redactedContent") {
            return Ok(Some(json!({"type": "redacted_thinking", "data": d})));
        }
    }
    Err(unsupported(path, "unknown content block"))
}

/// Converts blocks, turning each `cachePoint` into `cache_control` on the
/// block before it.
fn blocks(path: &str, list: Option<&Value>) -> Result<Vec<Value>, TranslateError> {
    let list = list
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::invalid(path, "must be an array"))?;
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for (i, b) in list.iter().enumerate() {
        match block(&format!("{path}[{i}]"), b)? {
            Some(v) => out.push(v),
            None => {
                if let Some(prev) = out.last_mut() {
                    prev["cache_control"] = ephemeral();
                }
            }
        }
    }
    Ok(out)
}

/// A Converse request for `model` as an Anthropic Messages request, and
/// the betas of `additionalModelRequestFields.anthropic_beta`.
pub fn request_to_messages(
    body: &Value,
    model: &str,
    stream: bool,
) -> Result<(Value, Vec<String>), TranslateError> {
    let obj = body
        .as_object()
        .ok_or_else(|| TranslateError::invalid("body", "must be a JSON object"))?;
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    let mut betas = Vec::new();
    for (key, value) in obj {
        match key.as_str() {
            "messages" | "system" | "toolConfig" | "modelId" => {}
            "inferenceConfig" => {
                for (k, target) in [
                    ("maxTokens", "max_tokens"),
                    ("temperature", "temperature"),
                    ("topP", "top_p"),
                    ("stopSequences", "stop_sequences"),
                ] {
                    if let Some(v) = value.get(k).filter(|v| !v.is_null()) {
                        out.insert(target.into(), v.clone());
                    }
                }
            }
            "additionalModelRequestFields" => {
                for k in ["top_k", "thinking"] {
                    if let Some(v) = value.get(k) {
                        out.insert(k.into(), v.clone());
                    }
                }
                if let Some(list) = value.get("anthropic_beta").and_then(Value::as_array) {
                    betas.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
                }
            }
            "requestMetadata" | "performanceConfig" | "additionalModelResponseFieldPaths" => {}
            "guardrailConfig" | "promptVariables" | "outputConfig" => {
                return Err(unsupported(key, "the gateway does not apply it"));
            }
            other => return Err(unsupported(other, "unknown Converse field")),
        }
    }
    out.entry("max_tokens").or_insert(json!(DEFAULT_MAX_TOKENS));

    if let Some(system) = obj.get("system").filter(|s| !s.is_null()) {
        let sys = blocks("system", Some(system))?;
        if sys.iter().any(|b| b["type"] != "text") {
            return Err(TranslateError::invalid(
                "system",
                "only text and cachePoint blocks",
            ));
        }
        if !sys.is_empty() {
            out.insert("system".into(), Value::Array(sys));
        }
    }
    let list = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::invalid("messages", "must be an array"))?;
    let mut messages = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(TranslateError::invalid(
                format!("messages[{i}].role"),
                "must be user or assistant",
            ));
        }
        let content = blocks(&format!("messages[{i}].content"), m.get("content"))?;
        messages.push(json!({"role": role, "content": content}));
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(cfg) = obj.get("toolConfig").filter(|c| !c.is_null()) {
        let mut tools: Vec<Value> = Vec::new();
        for (i, t) in cfg
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if t.get("cachePoint").is_some() {
                if let Some(prev) = tools.last_mut() {
                    prev["cache_control"] = ephemeral();
                }
                continue;
            }
            let spec = t.get("toolSpec").ok_or_else(|| {
                unsupported(format!("toolConfig.tools[{i}]"), "only toolSpec tools")
            })?;
            let mut tool = json!({
                "name": spec["name"],
                "input_schema": spec.pointer("/inputSchema/json").cloned().unwrap_or_else(|| json!({"type": "object"})),
            });
            if let Some(d) = spec.get("description") {
                tool["description"] = d.clone();
            }
            tools.push(tool);
        }
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
        if let Some(choice) = cfg.get("toolChoice") {
            let c = if choice.get("auto").is_some() {
                json!({"type": "auto"})
            } else if choice.get("any").is_some() {
                json!({"type": "any"})
            } else if let Some(name) = choice.pointer("/tool/name") {
                json!({"type": "tool", "name": name})
            } else {
                return Err(TranslateError::invalid(
                    "toolConfig.toolChoice",
                    "must be auto, any or tool",
                ));
            };
            out.insert("tool_choice".into(), c);
        }
    }
    if stream {
        out.insert("stream".into(), json!(true));
    }
    Ok((Value::Object(out), betas))
}
