//! Reads a Responses request's `tools` and `tool_choice`.
//!
//! Rules (also in `docs/responses.md`):
//! - `function` tools become function tools of the target;
//! - a `namespace` tool (Codex's `multi_agent_v1`) is flattened: each inner
//!   tool becomes `<namespace>__<tool>` and is restored (name plus
//!   `namespace` field) on `function_call` items coming back;
//! - hosted tools (`web_search*`, `file_search`, `code_interpreter`,
//!   `image_generation`, `computer_use*`, `mcp`, `local_shell`) run inside
//!   OpenAI and cannot run on another provider: they are dropped, so the
//!   model simply does not see them;
//! - other tool types (`custom` free-form tools, …) are rejected with 400;
//! - `tool_choice` `auto`/`none`/`required` and a named function map
//!   directly; forcing a hosted tool or `allowed_tools` is rejected.

use serde_json::Value;

use super::ResponsesError;
use super::context::ToolNames;

/// One function tool, with its upstream name.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionTool {
    /// The upstream name (namespace flattened, shortened if too long).
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// The JSON Schema of the arguments.
    pub parameters: Option<Value>,
    /// OpenAI strict mode (only `true` is forwarded, and only to Chat).
    pub strict: bool,
}

/// The tool choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This function (upstream name).
    Function(String),
}

/// Hosted tool types: dropped when translating.
pub fn is_hosted(kind: &str) -> bool {
    kind.starts_with("web_search")
        || kind.starts_with("computer_use")
        || matches!(
            kind,
            "file_search" | "code_interpreter" | "image_generation" | "mcp" | "local_shell"
        )
}

/// The request's function tools (namespaces flattened, hosted tools dropped).
pub fn parse_tools(
    request: &Value,
    names: &mut ToolNames,
) -> Result<Vec<FunctionTool>, ResponsesError> {
    let tools = match request.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(ResponsesError::new("tools", "`tools` must be a list")),
    };
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        match tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function")
        {
            "function" => out.push(function_tool(tool, None, &param, names)?),
            "namespace" => {
                let ns = tool.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ResponsesError::new(format!("{param}.name"), "a namespace tool needs a `name`")
                })?;
                let inner = tool.get("tools").and_then(Value::as_array).ok_or_else(|| {
                    ResponsesError::new(
                        format!("{param}.tools"),
                        "a namespace tool needs a `tools` list",
                    )
                })?;
                for (j, t) in inner.iter().enumerate() {
                    let p = format!("{param}.tools[{j}]");
                    match t.get("type").and_then(Value::as_str).unwrap_or("function") {
                        "function" => out.push(function_tool(t, Some(ns), &p, names)?),
                        other => {
                            return Err(ResponsesError::new(
                                format!("{p}.type"),
                                format!(
                                    "tools of type `{other}` inside a namespace cannot be translated"
                                ),
                            ));
                        }
                    }
                }
            }
            kind if is_hosted(kind) => {}
            other => {
                return Err(ResponsesError::new(
                    format!("{param}.type"),
                    format!(
                        "tools of type `{other}` cannot be translated for this model's provider"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

fn function_tool(
    tool: &Value,
    namespace: Option<&str>,
    param: &str,
    names: &mut ToolNames,
) -> Result<FunctionTool, ResponsesError> {
    let name = tool
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ResponsesError::new(format!("{param}.name"), "a function tool needs a `name`")
        })?;
    Ok(FunctionTool {
        name: names.upstream(namespace, name),
        description: tool
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters: tool.get("parameters").filter(|p| p.is_object()).cloned(),
        strict: tool.get("strict").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// The request's tool choice, if it set one.
pub fn parse_tool_choice(
    request: &Value,
    names: &mut ToolNames,
) -> Result<Option<ToolChoice>, ResponsesError> {
    let choice = match request.get("tool_choice") {
        None | Some(Value::Null) => return Ok(None),
        Some(c) => c,
    };
    if let Some(s) = choice.as_str() {
        return match s {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Required)),
            other => Err(ResponsesError::new(
                "tool_choice",
                format!("unknown tool_choice `{other}`"),
            )),
        };
    }
    match choice.get("type").and_then(Value::as_str) {
        Some("function") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                ResponsesError::new("tool_choice.name", "a function tool_choice needs a `name`")
            })?;
            let namespace = choice.get("namespace").and_then(Value::as_str);
            Ok(Some(ToolChoice::Function(names.upstream(namespace, name))))
        }
        Some(other) => Err(ResponsesError::new(
            "tool_choice.type",
            format!("tool_choice of type `{other}` cannot be translated for this model's provider"),
        )),
        None => Err(ResponsesError::new(
            "tool_choice",
            "`tool_choice` must be a string or an object with a `type`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codex_tools_flatten_and_drop_hosted() {
        let mut names = ToolNames::default();
        let tools = parse_tools(
            &json!({"tools": [
                {"type":"function","name":"exec_command","description":"run","strict":false,"parameters":{"type":"object","properties":{"cmd":{"type":"string"}}}},
                {"type":"namespace","name":"multi_agent_v1","description":"agents","tools":[
                    {"type":"function","name":"spawn_agent","parameters":{"type":"object","properties":{}}},
                    {"type":"function","name":"wait_agent"}
                ]},
                {"type":"web_search","external_web_access":false}
            ]}),
            &mut names,
        )
        .unwrap();
        let got: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            got,
            [
                "exec_command",
                "multi_agent_v1__spawn_agent",
                "multi_agent_v1__wait_agent"
            ]
        );
        assert_eq!(tools[2].parameters, None);
        assert_eq!(
            names.restore("multi_agent_v1__wait_agent"),
            (Some("multi_agent_v1".into()), "wait_agent".into())
        );
    }

    #[test]
    fn custom_tools_are_rejected() {
        let e = parse_tools(
            &json!({"tools":[{"type":"custom","name":"apply_patch"}]}),
            &mut ToolNames::default(),
        )
        .unwrap_err();
        assert_eq!(e.param, "tools[0].type");
    }

    #[test]
    fn tool_choices() {
        let mut n = ToolNames::default();
        let c = |v: Value, n: &mut ToolNames| parse_tool_choice(&json!({"tool_choice": v}), n);
        assert_eq!(c(json!("auto"), &mut n).unwrap(), Some(ToolChoice::Auto));
        assert_eq!(
            c(json!("required"), &mut n).unwrap(),
            Some(ToolChoice::Required)
        );
        assert_eq!(c(json!("none"), &mut n).unwrap(), Some(ToolChoice::None));
        assert_eq!(
            c(json!({"type":"function","name":"f"}), &mut n).unwrap(),
            Some(ToolChoice::Function("f".into()))
        );
        assert!(c(json!({"type":"web_search_preview"}), &mut n).is_err());
        assert!(c(json!("sometimes"), &mut n).is_err());
        assert_eq!(parse_tool_choice(&json!({}), &mut n).unwrap(), None);
    }
}
