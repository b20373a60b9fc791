//! Which `anthropic-beta` flags reach Claude on Vertex AI.
//!
//! Vertex refuses a request naming a beta flag it does not know (`400`),
//! and Claude Code sends many (`protocols.md` §0.8). The client's
//! `anthropic-beta` header values (and a front door's body `anthropic_beta`)
//! are merged, deduplicated, renamed where Vertex knows a flag by another
//! name ([`RENAMED`]) and filtered through an allowlist: the backend's
//! `vertex.allowedBetas` when set, else [`DEFAULT_ALLOWED_BETAS`]. They go
//! upstream in the `anthropic-beta` header (Vertex reads it there). The body
//! fields that only work with a beta follow the same rule as on Bedrock
//! ([`crate::translate::bedrock::betas::strip_fields`]).

use serde_json::Value;

/// Flags forwarded to Vertex when the backend sets no `allowedBetas`: the
/// betas Vertex documents for Claude (support still varies by model).
pub const DEFAULT_ALLOWED_BETAS: &[&str] = &[
    "computer-use-2025-01-24",
    "computer-use-2025-11-24",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "interleaved-thinking-2025-05-14",
    "tool-search-tool-2025-10-19",
    "web-search-2025-03-05",
    "compact-2026-01-12",
];

/// Flags Vertex knows by another name: (client's flag, Vertex's flag).
pub const RENAMED: &[(&str, &str)] = &[(
    "advanced-tool-use-2025-11-20",
    "tool-search-tool-2025-10-19",
)];

/// Flags from `anthropic-beta` header values (comma-separated, possibly
/// repeated) and a body `anthropic_beta` array, in first-seen order,
/// renamed, without duplicates, filtered by `allowed` (`None`: the default
/// list).
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
        let flag = RENAMED
            .iter()
            .find(|(from, _)| *from == flag)
            .map_or(flag, |(_, to)| *to);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn claude_code_betas_through_the_default_list() {
        let header = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,effort-2025-11-24,advanced-tool-use-2025-11-20,prompt-caching-scope-2026-01-05";
        assert_eq!(
            select(
                [header],
                Some(&json!([
                    "tool-search-tool-2025-10-19",
                    "context-1m-2025-08-07"
                ])),
                None
            ),
            vec![
                "interleaved-thinking-2025-05-14",
                "context-management-2025-06-27",
                "tool-search-tool-2025-10-19",
                "context-1m-2025-08-07",
            ]
        );
        let allowed = vec!["effort-2025-11-24".to_string()];
        assert_eq!(
            select([header], None, Some(&allowed)),
            vec!["effort-2025-11-24"]
        );
        assert!(select([header], None, Some(&[])).is_empty());
    }
}
