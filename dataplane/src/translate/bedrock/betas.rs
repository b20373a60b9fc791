//! Which `anthropic-beta` flags and Anthropic body fields reach Bedrock.
//!
//! Bedrock refuses a request naming a beta flag it does not know (`400
//! invalid beta flag`) and Anthropic body fields it does not accept (`400
//! Extra inputs are not permitted`); Claude Code sends several of both
//! (`protocols.md` §0.8, §4.7; anthropics/claude-code#49370, #56595).
//!
//! - Flags: the client's `anthropic-beta` header and body `anthropic_beta`
//!   (front door) are merged, deduplicated and filtered through an
//!   allowlist: the backend's `bedrock.allowedBetas` when set, else
//!   [`DEFAULT_ALLOWED_BETAS`]. They go upstream as the body array
//!   `anthropic_beta` (InvokeModel) or in `additionalModelRequestFields`
//!   (Converse on a Claude model).
//! - Fields ([`strip_fields`]): `model` and `stream` (the path says both)
//!   and the fields Bedrock does not accept are removed; fields that only
//!   work with a beta are removed when that beta is not forwarded:
//!
//! | field | kept when this beta is forwarded |
//! |---|---|
//! | `context_management` | `context-management-2025-06-27` |
//! | `tools[].defer_loading` | `tool-search-tool-2025-10-19` |
//! | `output_config.effort` | `effort-2025-11-24` |
//! | `metadata`, `service_tier`, `container`, `mcp_servers` | never (not in Bedrock's Claude schema) |
//! | `thinking.display` (Claude Code's hint) | never |

use serde_json::{Map, Value};

/// Flags forwarded to Bedrock when the backend sets no `allowedBetas`
/// (the betas Bedrock documents for Claude; support still varies by model).
pub const DEFAULT_ALLOWED_BETAS: &[&str] = &[
    "computer-use-2025-01-24",
    "token-efficient-tools-2025-02-19",
    "interleaved-thinking-2025-05-14",
    "output-128k-2025-02-19",
    "dev-full-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "effort-2025-11-24",
    "tool-search-tool-2025-10-19",
    "tool-examples-2025-10-29",
];

/// Body fields removed from every request to Bedrock.
pub const ALWAYS_STRIPPED: &[&str] = &[
    "model",
    "stream",
    "metadata",
    "service_tier",
    "container",
    "mcp_servers",
];

/// Flags from `anthropic-beta` header values (comma-separated, possibly
/// repeated) and a body `anthropic_beta` array, in first-seen order,
/// without duplicates, filtered by `allowed` (`None`: the default list).
pub fn select<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
    body: Option<&Value>,
    allowed: Option<&[String]>,
) -> Vec<String> {
    let from_body = body
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut out: Vec<String> = Vec::new();
    for flag in header_values
        .into_iter()
        .flat_map(|h| h.split(','))
        .chain(from_body)
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        let ok = match allowed {
            Some(list) => list.iter().any(|a| a == flag),
            None => DEFAULT_ALLOWED_BETAS.contains(&flag),
        };
        if ok && !out.iter().any(|f| f == flag) {
            out.push(flag.to_string());
        }
    }
    out
}

/// Removes the fields Bedrock refuses given the forwarded `betas` (see the
/// module docs). Returns the names removed, for logs.
pub fn strip_fields(body: &mut Map<String, Value>, betas: &[String]) -> Vec<String> {
    let has = |flag: &str| betas.iter().any(|b| b == flag);
    let mut removed = Vec::new();
    for field in ALWAYS_STRIPPED {
        if body.remove(*field).is_some() && !matches!(*field, "model" | "stream") {
            removed.push((*field).to_string());
        }
    }
    if let Some(t) = body.get_mut("thinking").and_then(Value::as_object_mut)
        && t.remove("display").is_some()
    {
        removed.push("thinking.display".into());
    }
    if !has("context-management-2025-06-27") && body.remove("context_management").is_some() {
        removed.push("context_management".into());
    }
    if !has("tool-search-tool-2025-10-19")
        && let Some(tools) = body.get_mut("tools").and_then(Value::as_array_mut)
    {
        for t in tools.iter_mut().filter_map(Value::as_object_mut) {
            if t.remove("defer_loading").is_some()
                && !removed.iter().any(|r| r == "tools[].defer_loading")
            {
                removed.push("tools[].defer_loading".into());
            }
        }
    }
    if !has("effort-2025-11-24")
        && let Some(cfg) = body.get_mut("output_config").and_then(Value::as_object_mut)
        && cfg.remove("effort").is_some()
    {
        removed.push("output_config.effort".into());
        if cfg.is_empty() {
            body.remove("output_config");
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn default_list_filters_claude_code_betas() {
        // Claude Code 2.1.330's header (clients.md) plus a body array.
        let header = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20";
        let body = json!([
            "interleaved-thinking-2025-05-14",
            "context-1m-2025-08-07",
            7
        ]);
        assert_eq!(
            select([header, " effort-2025-11-24 ,"], Some(&body), None),
            vec![
                "interleaved-thinking-2025-05-14",
                "context-management-2025-06-27",
                "effort-2025-11-24",
                "context-1m-2025-08-07",
            ]
        );
    }

    #[test]
    fn allowed_betas_override_the_default() {
        let allowed = vec!["claude-code-20250219".to_string()];
        assert_eq!(
            select(
                ["claude-code-20250219,interleaved-thinking-2025-05-14"],
                None,
                Some(&allowed)
            ),
            vec!["claude-code-20250219"]
        );
        assert!(
            select(["a"], None, Some(&[])).is_empty(),
            "an empty list forwards nothing"
        );
    }

    #[test]
    fn fields_follow_their_betas() {
        let body = json!({
            "model": "m", "stream": true, "service_tier": "auto", "max_tokens": 5,
            "context_management": {"edits": []},
            "output_config": {"effort": "high"},
            "tools": [{"name": "a", "input_schema": {}, "defer_loading": true}, {"name": "b", "input_schema": {}}],
            "container": "c", "mcp_servers": [], "metadata": {"user_id": "u"},
            "thinking": {"type": "enabled", "budget_tokens": 1024, "display": "omitted"}
        });
        let mut stripped = body.as_object().unwrap().clone();
        let removed = strip_fields(&mut stripped, &[]);
        assert_eq!(
            Value::Object(stripped),
            json!({"max_tokens": 5, "tools": [{"name": "a", "input_schema": {}}, {"name": "b", "input_schema": {}}],
                "thinking": {"type": "enabled", "budget_tokens": 1024}})
        );
        assert_eq!(
            removed,
            vec![
                "metadata",
                "service_tier",
                "container",
                "mcp_servers",
                "thinking.display",
                "context_management",
                "tools[].defer_loading",
                "output_config.effort"
            ]
        );
        let mut kept = body.as_object().unwrap().clone();
        let betas: Vec<String> = [
            "context-management-2025-06-27",
            "tool-search-tool-2025-10-19",
            "effort-2025-11-24",
        ]
        .map(String::from)
        .to_vec();
        strip_fields(&mut kept, &betas);
        assert!(kept.contains_key("context_management"));
        assert_eq!(kept["output_config"], json!({"effort": "high"}));
        assert_eq!(kept["tools"][0]["defer_loading"], json!(true));
        assert!(!kept.contains_key("model") && !kept.contains_key("stream"));
    }
}
