//! System prompts inside an Anthropic Messages conversation.
//!
//! Claude Code, on a model name it does not know as Claude (e.g. `gpt-4.1`),
//! sends the beta [`MID_CONVERSATION_BETA`] and puts `role: "system"`
//! messages inside `messages` (after the first user turn; the content is a
//! string on some requests and a list of text blocks on others). This module
//! reads them for the translators and folds them away for Anthropic
//! upstreams that would refuse them:
//!
//! - OpenAI Chat Completions keeps them where they are, as `system` messages
//!   ([`system_message_text`]).
//! - An Anthropic upstream keeps them when the beta reaches it (the client
//!   sent it and the backend's `allowedBetas` let it through); otherwise
//!   [`fold_into_system`] moves their blocks, in order, to the end of the
//!   top-level `system` (they lose their position; `cache_control` stays).
//!
//! Claude Code's first system block is a billing line,
//! `x-anthropic-billing-header: cc_version=…; cc_entrypoint=…;`, meant for
//! Anthropic. It is not prompt text: [`is_billing_header`] lets the OpenAI
//! translation drop it (it would reach a third-party model, cost tokens and
//! change with every Claude Code release, which also breaks OpenAI's
//! automatic prefix caching). Passthrough to Anthropic keeps it.

use serde_json::{Value, json};

use super::TranslateError;

/// The `anthropic-beta` flag Claude Code pairs with system messages inside
/// `messages`.
pub const MID_CONVERSATION_BETA: &str = "mid-conversation-tool-changes-2026-07-01";

/// Prefix of Claude Code's billing line.
const BILLING_HEADER: &str = "x-anthropic-billing-header:";

/// Whether `text` is Claude Code's billing line (possibly followed by more
/// lines, which are then prompt text).
pub fn is_billing_header(text: &str) -> bool {
    text.trim_start().starts_with(BILLING_HEADER)
}

/// `text` without a leading billing line.
pub fn strip_billing_header(text: &str) -> &str {
    if !is_billing_header(text) {
        return text;
    }
    match text.trim_start().split_once('\n') {
        Some((_, rest)) => rest,
        None => "",
    }
}

/// The prompt text of a system prompt (top-level `system` or the content of
/// a `role: "system"` message): a string, or text blocks joined by a blank
/// line. The billing line is dropped; empty blocks are skipped. `at` names
/// the field in errors.
pub fn system_message_text(v: &Value, at: &str) -> Result<String, TranslateError> {
    match v {
        Value::String(s) => Ok(strip_billing_header(s).to_string()),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = strip_billing_header(b["text"].as_str().unwrap_or_default());
                        if !text.trim().is_empty() {
                            parts.push(text);
                        }
                    }
                    _ => {
                        return Err(TranslateError::invalid(
                            format!("{at}[{i}].type"),
                            "a system prompt holds text blocks only",
                        ));
                    }
                }
            }
            Ok(parts.join("\n\n"))
        }
        _ => Err(TranslateError::invalid(at, "must be a string or an array")),
    }
}

/// Whether `messages` (the raw JSON text of the member) may hold a system
/// message: a cheap test before parsing a large body.
pub fn may_hold_system_messages(raw_messages: &str) -> bool {
    raw_messages.contains("\"system\"")
}

/// Moves every `role: "system"` message of an Anthropic request to the end
/// of its top-level `system`, in order, as text blocks (a string content
/// becomes one block; blocks keep their `cache_control`). Returns the new
/// `system` and `messages`, or `None` when there was no system message.
/// Empty system messages are dropped.
pub fn fold_into_system(
    system: Option<&Value>,
    messages: &Value,
) -> Result<Option<(Value, Value)>, TranslateError> {
    let list = messages
        .as_array()
        .ok_or_else(|| TranslateError::invalid("messages", "must be an array"))?;
    if !list.iter().any(|m| m.get("role") == Some(&json!("system"))) {
        return Ok(None);
    }
    let mut blocks: Vec<Value> = match system {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(b)) => b.clone(),
        Some(_) => {
            return Err(TranslateError::invalid(
                "system",
                "must be a string or an array",
            ));
        }
    };
    let mut kept = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        if m.get("role") != Some(&json!("system")) {
            kept.push(m.clone());
            continue;
        }
        let at = format!("messages[{i}].content");
        match m.get("content").unwrap_or(&Value::Null) {
            Value::String(s) if s.trim().is_empty() => {}
            Value::String(s) => blocks.push(json!({"type": "text", "text": s})),
            Value::Array(content) => {
                for (j, b) in content.iter().enumerate() {
                    if b.get("type").and_then(Value::as_str) != Some("text") {
                        return Err(TranslateError::invalid(
                            format!("{at}[{j}].type"),
                            "a system message holds text blocks only",
                        ));
                    }
                    if b["text"].as_str().is_some_and(|t| !t.trim().is_empty()) {
                        blocks.push(b.clone());
                    }
                }
            }
            _ => {
                return Err(TranslateError::invalid(at, "must be a string or an array"));
            }
        }
    }
    Ok(Some((Value::Array(blocks), Value::Array(kept))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_line_is_recognised_and_stripped() {
        let line = "x-anthropic-billing-header: cc_version=2.1.330.572; cc_entrypoint=sdk-cli;";
        assert!(is_billing_header(line));
        assert_eq!(strip_billing_header(line), "");
        assert_eq!(
            strip_billing_header(&format!("{line}\nYou are helpful.")),
            "You are helpful."
        );
        assert_eq!(strip_billing_header("You are helpful."), "You are helpful.");
        assert!(!is_billing_header(
            "Mention x-anthropic-billing-header: here"
        ));
    }

    #[test]
    fn system_text_joins_blocks_without_the_billing_line() {
        let v = json!([
            {"type":"text","text":"x-anthropic-billing-header: cc_version=1;"},
            {"type":"text","text":"One.","cache_control":{"type":"ephemeral"}},
            {"type":"text","text":"  "},
            {"type":"text","text":"Two."}
        ]);
        assert_eq!(system_message_text(&v, "system").unwrap(), "One.\n\nTwo.");
        assert_eq!(
            system_message_text(&json!("Plain"), "system").unwrap(),
            "Plain"
        );
        let err = system_message_text(&json!([{"type":"image"}]), "messages[1].content");
        assert_eq!(
            err.unwrap_err().to_string(),
            "`messages[1].content[0].type` is invalid: a system prompt holds text blocks only"
        );
    }

    #[test]
    fn fold_moves_system_messages_to_the_end_of_system_in_order() {
        let system = json!([{"type":"text","text":"base","cache_control":{"type":"ephemeral"}}]);
        let messages = json!([
            {"role":"user","content":"hi"},
            {"role":"system","content":[{"type":"text","text":"env","cache_control":{"type":"ephemeral"}}]},
            {"role":"assistant","content":"hello"},
            {"role":"system","content":"later"},
            {"role":"system","content":""},
            {"role":"user","content":"go"}
        ]);
        let (system, messages) = fold_into_system(Some(&system), &messages).unwrap().unwrap();
        assert_eq!(
            system,
            json!([
                {"type":"text","text":"base","cache_control":{"type":"ephemeral"}},
                {"type":"text","text":"env","cache_control":{"type":"ephemeral"}},
                {"type":"text","text":"later"}
            ])
        );
        let roles: Vec<_> = messages
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
    }

    #[test]
    fn fold_keeps_a_string_system_and_reports_nothing_to_do() {
        let (system, _) = fold_into_system(
            Some(&json!("base")),
            &json!([{"role":"system","content":"x"}]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            system,
            json!([{"type":"text","text":"base"},{"type":"text","text":"x"}])
        );
        assert_eq!(
            fold_into_system(None, &json!([{"role":"user","content":"x"}])).unwrap(),
            None
        );
        assert!(
            fold_into_system(
                None,
                &json!([{"role":"system","content":[{"type":"image"}]}])
            )
            .is_err()
        );
        assert!(may_hold_system_messages(r#"[{"role":"system"}]"#));
        assert!(!may_hold_system_messages(r#"[{"role":"user"}]"#));
    }
}
