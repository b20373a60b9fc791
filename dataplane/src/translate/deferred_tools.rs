//! Anthropic tools with `defer_loading: true`, for backends without tool
//! search.
//!
//! At Anthropic a deferred tool is declared but kept out of the model's
//! context until a tool search finds it: a `tool_reference` block in a tool
//! result "loads" it. Claude Code declares such tools (its
//! `DeferredToolPlaceholder`, "never call this tool", and MCP tools when
//! there are many) and runs its own `ToolSearch` tool. An OpenAI backend has
//! no notion of deferral: every declared function is shown to the model and
//! counts against its limit of 128 tools.
//!
//! So the translation to OpenAI sends a deferred tool only once it is
//! loaded, as Anthropic would show it: when a `tool_reference` in the
//! conversation names it, when an earlier assistant turn called it, or when
//! `tool_choice` names it. Every other deferred tool is left out, the
//! placeholder included.

use std::collections::HashSet;

use serde_json::Value;

/// Whether a tool definition is deferred.
pub fn is_deferred(tool: &Value) -> bool {
    tool.get("defer_loading").and_then(Value::as_bool) == Some(true)
}

/// Names of the tools the conversation has loaded: referenced by a
/// `tool_reference` block, called by an assistant `tool_use`, or named by
/// `tool_choice`.
pub fn loaded_tools(body: &Value) -> HashSet<String> {
    let mut names = HashSet::new();
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        add_loaded_by_message(&mut names, m);
    }
    if let Some(choice) = body.get("tool_choice") {
        add_loaded_by_choice(&mut names, choice);
    }
    names
}

/// Adds the tools one message loads (its `tool_use` calls and
/// `tool_reference` blocks, also inside tool results): for translations
/// that see the messages one at a time.
pub fn add_loaded_by_message(names: &mut HashSet<String>, message: &Value) {
    let Some(blocks) = message.get("content").and_then(Value::as_array) else {
        return;
    };
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("tool_use") => insert(names, b.get("name")),
            Some("tool_reference") => insert(names, b.get("tool_name")),
            Some("tool_result") => {
                for inner in b
                    .get("content")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                {
                    if inner.get("type").and_then(Value::as_str) == Some("tool_reference") {
                        insert(names, inner.get("tool_name"));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Adds the tool a `tool_choice` of type `tool` names.
pub fn add_loaded_by_choice(names: &mut HashSet<String>, choice: &Value) {
    if choice.get("type").and_then(Value::as_str) == Some("tool") {
        insert(names, choice.get("name"));
    }
}

fn insert(names: &mut HashSet<String>, name: Option<&Value>) {
    if let Some(n) = name.and_then(Value::as_str) {
        names.insert(n.to_string());
    }
}

/// The text a `tool_reference` block becomes inside an OpenAI `tool`
/// message (the tool itself is declared in `tools`).
pub fn reference_text(block: &Value) -> String {
    format!(
        "Tool loaded: {}",
        block
            .get("tool_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loaded_tools_come_from_references_calls_and_tool_choice() {
        let body = json!({
            "messages": [
                {"role":"user","content":"find the jira tool"},
                {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"ToolSearch","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
                    {"type":"tool_reference","tool_name":"mcp__jira__create"}]}]},
                {"role":"assistant","content":[{"type":"tool_use","id":"t2","name":"mcp__jira__search","input":{}}]}
            ],
            "tool_choice": {"type":"tool","name":"Forced"}
        });
        let loaded = loaded_tools(&body);
        for name in [
            "ToolSearch",
            "mcp__jira__create",
            "mcp__jira__search",
            "Forced",
        ] {
            assert!(loaded.contains(name), "{name}: {loaded:?}");
        }
        assert!(!loaded.contains("DeferredToolPlaceholder"));
        assert!(is_deferred(&json!({"name":"x","defer_loading":true})));
        assert!(!is_deferred(&json!({"name":"x","defer_loading":false})));
        assert_eq!(
            reference_text(&json!({"type":"tool_reference","tool_name":"a"})),
            "Tool loaded: a"
        );
    }
}
