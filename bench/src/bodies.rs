//! Request bodies the scenarios send.

use serde_json::{Value, json};

/// A short chat completion request for `model`.
pub fn chat(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Write a haiku about reverse proxies."}],
    })
}

/// A streamed Anthropic Messages request for `model`.
pub fn messages_stream(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 1024,
        "stream": true,
        "messages": [{"role": "user", "content": "Write a haiku about reverse proxies."}],
    })
}

/// A streamed chat completion request for `model`, asking for the usage chunk
/// as OpenCode does.
pub fn chat_stream(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Write a haiku about reverse proxies."}],
    })
}

/// A chat completion request carrying about `size` bytes (as sent) of conversation
/// history, shaped like a coding agent's: alternating turns of source code
/// and tool output, with quotes and newlines to escape.
pub fn chat_with_history(model: &str, size: usize) -> Value {
    const LINE: &str = "    let value = parse(\"input\\tfield\")?; // check the \"quoted\" case\n";
    let mut messages = vec![json!({"role": "system", "content": "You are a coding agent."})];
    let mut total = 0;
    let mut turn = 0;
    while total < size {
        let text: String = std::iter::repeat_n(LINE, 30).collect();
        // Count the bytes as sent: JSON-escaped.
        total += serde_json::to_string(&text).map_or(text.len(), |t| t.len());
        let role = if turn % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": format!("turn {turn}:\n{text}")}));
        turn += 1;
    }
    messages.push(json!({"role": "user", "content": "Now fix the bug."}));
    json!({"model": model, "max_tokens": 256, "messages": messages})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_body_is_about_the_asked_size() {
        let body = serde_json::to_vec(&chat_with_history("m", 100 * 1024)).unwrap();
        assert!(
            (100 * 1024..110 * 1024).contains(&body.len()),
            "{}",
            body.len()
        );
    }
}
