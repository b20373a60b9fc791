//! Stop reasons (§3.4) and usage objects (§3.5) between the dialects.
//!
//! Usage goes through [`Usage`], whose fields mean the same in both
//! dialects, so cache tokens stay exact: OpenAI `prompt_tokens` includes
//! cached tokens, Anthropic `input_tokens` excludes cache reads and writes.

use serde_json::{Value, json};

use super::answer_wire::{AnthropicUsageOut, OpenAiUsageOut};
use crate::wire::usage::Usage;

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub fn finish_reason_from_anthropic(stop: &str) -> &'static str {
    match stop {
        "tool_use" => "tool_calls",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
pub fn stop_reason_from_openai(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// An OpenAI `usage` object. `prompt_tokens` counts every input token
/// (cached and cache writes included); cache writes, which OpenAI has no
/// standard field for, are also given as `prompt_tokens_details.cache_write_tokens`.
pub fn openai_usage(u: &Usage) -> Value {
    json!(OpenAiUsageOut::from(u))
}

/// Usage from an OpenAI `usage` object, including the non-standard
/// `prompt_tokens_details.cache_write_tokens` some compatible servers send.
pub fn usage_from_openai(v: &Value) -> Usage {
    let mut u = Usage::from_openai(v);
    let write = v
        .pointer("/prompt_tokens_details/cache_write_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    u.input_tokens = u.input_tokens.saturating_sub(write);
    u.cache_write_tokens = write;
    u
}

/// An Anthropic `usage` object.
pub fn anthropic_usage(u: &Usage) -> Value {
    json!(AnthropicUsageOut::from(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_map_both_ways() {
        for (a, o) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            ("model_context_window_exceeded", "length"),
        ] {
            assert_eq!(finish_reason_from_anthropic(a), o, "{a}");
        }
        for (o, a) in [
            (Some("stop"), "end_turn"),
            (Some("length"), "max_tokens"),
            (Some("tool_calls"), "tool_use"),
            (Some("function_call"), "tool_use"),
            (Some("content_filter"), "refusal"),
            (None, "end_turn"),
        ] {
            assert_eq!(stop_reason_from_openai(o), a, "{o:?}");
        }
    }

    #[test]
    fn cache_tokens_are_exact_both_ways() {
        let u = Usage {
            input_tokens: 12,
            output_tokens: 30,
            cache_read_tokens: 2000,
            cache_write_tokens: 100,
            reasoning_tokens: 0,
        };
        let o = openai_usage(&u);
        assert_eq!(
            o["prompt_tokens"], 2112,
            "prompt_tokens includes cached tokens"
        );
        assert_eq!(o["prompt_tokens_details"]["cached_tokens"], 2000);
        assert_eq!(o["total_tokens"], 2142);
        assert_eq!(usage_from_openai(&o), u, "round trip");
        let a = anthropic_usage(&usage_from_openai(&json!({
            "prompt_tokens": 2006, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 1920}
        })));
        assert_eq!(
            a["input_tokens"], 86,
            "Anthropic input_tokens excludes cached tokens"
        );
        assert_eq!(a["cache_read_input_tokens"], 1920);
        assert_eq!(a["cache_creation_input_tokens"], 0);
    }
}
