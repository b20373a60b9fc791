//! Deterministic mapping of tool names and tool-call ids a target rejects.
//!
//! - Names: OpenAI allows `^[a-zA-Z0-9_-]{1,64}$`, Anthropic up to 128
//!   characters (Claude Code's `mcp__server__tool` names exceed 64). A name
//!   that is too long or has other characters becomes its valid prefix, `_`
//!   and 8 hex digits of its SHA-256, so the same name always maps the same
//!   way. [`ToolNames`] remembers the originals to restore them in answers.
//! - Ids: Anthropic `tool_use.id` must match `^[a-zA-Z0-9_-]+$`; other ids
//!   (e.g. `functions.get_weather:0`) get the same treatment, applied to both
//!   the call and its result so pairing survives.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Longest tool name OpenAI accepts.
pub const OPENAI_NAME_MAX: usize = 64;
/// Longest tool name Anthropic accepts.
pub const ANTHROPIC_NAME_MAX: usize = 128;

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn hash8(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(&digest[..4])
}

/// `s` if it is valid (allowed characters, 1..=`max` long), else a valid
/// prefix plus `_` and a hash of `s`, at most `max` long.
pub fn sanitize(s: &str, max: usize) -> String {
    if !s.is_empty() && s.len() <= max && s.chars().all(valid_char) {
        return s.to_string();
    }
    let cleaned: String = s
        .chars()
        .map(|c| if valid_char(c) { c } else { '_' })
        .collect();
    let keep = max.saturating_sub(9);
    let prefix: String = cleaned.chars().take(keep).collect();
    format!("{prefix}_{}", hash8(s))
}

/// Sanitized tool-call id for Anthropic.
pub fn anthropic_id(id: &str) -> String {
    sanitize(id, 256)
}

/// Tool names changed for the target: target name → client name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolNames {
    restore: BTreeMap<String, String>,
}

impl ToolNames {
    /// The target's name for `name`, remembering the original when changed.
    pub fn to_target(&mut self, name: &str, max: usize) -> String {
        let mapped = sanitize(name, max);
        if mapped != name {
            self.restore.insert(mapped.clone(), name.to_string());
        }
        mapped
    }

    /// The client's name for a name the target used.
    pub fn to_client<'a>(&'a self, name: &'a str) -> &'a str {
        self.restore.get(name).map_or(name, String::as_str)
    }

    /// No name was changed.
    pub fn is_empty(&self) -> bool {
        self.restore.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_over_64_chars_are_mapped_and_restored() {
        let long = format!(
            "mcp__github_enterprise_server__{}",
            "create_pull_request_review_comment".repeat(2)
        );
        assert!(long.len() > 64);
        let mut names = ToolNames::default();
        let short = names.to_target(&long, OPENAI_NAME_MAX);
        assert_eq!(short.len(), 64);
        assert!(short.chars().all(valid_char));
        assert_eq!(
            names.to_target(&long, OPENAI_NAME_MAX),
            short,
            "deterministic"
        );
        assert_eq!(names.to_client(&short), long);
        assert_eq!(names.to_target("Bash", OPENAI_NAME_MAX), "Bash");
        assert_eq!(names.to_client("Bash"), "Bash");
        let other = format!("{long}x");
        assert_ne!(
            names.to_target(&other, OPENAI_NAME_MAX),
            short,
            "hash keeps names apart"
        );
    }

    #[test]
    fn tool_ids_with_rejected_characters_are_sanitized_deterministically() {
        assert_eq!(anthropic_id("call_abc-1"), "call_abc-1");
        let id = anthropic_id("functions.get_weather:0");
        assert!(id.starts_with("functions_get_weather_0_"));
        assert!(id.chars().all(valid_char));
        assert_eq!(id, anthropic_id("functions.get_weather:0"));
        assert_ne!(anthropic_id("a.b"), anthropic_id("a:b"));
        assert!(!anthropic_id("").is_empty());
    }
}
