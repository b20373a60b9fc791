//! Azure OpenAI's differences from OpenAI's formats (`protocols.md` §6, §3.9).
//! Pure: JSON in, JSON out.
//!
//! - [`set_deployment`]: the body's `model` is the deployment name (the v1
//!   API reads it there; deployment URLs ignore it, so it is set for both).
//! - [`AzureChunks`]: Azure streams annotate content filtering with chunks
//!   no OpenAI client expects: a first chunk with `choices: []` and
//!   `prompt_filter_results` (and `id: ""`, `created: 0`), and, with
//!   asynchronous filtering, chunks whose choices carry
//!   `content_filter_results` but no `delta`. Many clients index
//!   `choices[0]` or read `delta` unconditionally (BerriAI/litellm#8751,
//!   Azure/azure-sdk-for-go#21086, microsoft/autogen#6465), so these chunks
//!   are dropped; the usage chunk (`choices: []` with `usage`) is kept.
//!   Everything else passes byte for byte.

use serde_json::{Value, json};

use crate::translate::StreamTranslator;
use crate::wire::sse::SseEvent;

/// Sets the body's `model` to the deployment.
pub fn set_deployment(body: &mut Value, deployment: &str) {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("model".into(), json!(deployment));
    }
}

/// Whether an Azure chunk is only a content-filter annotation.
pub fn is_filter_annotation(chunk: &Value) -> bool {
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return false;
    };
    if choices.is_empty() {
        return chunk.get("usage").is_none_or(Value::is_null);
    }
    choices.iter().all(|c| {
        c.get("delta").is_none()
            && c.get("finish_reason").is_none_or(Value::is_null)
            && c.get("content_filter_results").is_some()
    })
}

/// The stream filter of one Azure Chat Completions answer (see the module
/// docs); events other than annotation chunks pass unchanged.
#[derive(Debug, Default)]
pub struct AzureChunks;

impl StreamTranslator for AzureChunks {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        let data = event.data.trim();
        if data != "[DONE]"
            && let Ok(chunk) = serde_json::from_str::<Value>(data)
            && is_filter_annotation(&chunk)
        {
            return;
        }
        if let Some(name) = &event.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        for line in event.data.split('\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }

    fn passes_chat_through(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: s.to_string(),
        }
    }

    #[test]
    fn annotation_chunks_are_dropped_and_the_rest_passes() {
        let mut t = AzureChunks;
        let mut out = Vec::new();
        for chunk in [
            r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
            r#"{"choices":[{"content_filter_results":{},"delta":{"role":"assistant","content":"Hi"},"finish_reason":null,"index":0}],"created":1,"id":"c1","model":"gpt-4o","object":"chat.completion.chunk"}"#,
            r#"{"choices":[{"content_filter_offsets":{"check_offset":0},"content_filter_results":{"hate":{"filtered":false}},"finish_reason":null,"index":0}],"created":1,"id":"c1","model":"gpt-4o","object":"chat.completion.chunk"}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":1,"id":"c1","model":"gpt-4o","object":"chat.completion.chunk"}"#,
            r#"{"choices":[],"created":1,"id":"c1","model":"gpt-4o","object":"chat.completion.chunk","usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#,
            "[DONE]",
        ] {
            t.event(&data(chunk), &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 4, "{text}");
        assert!(events[0].contains("\"content\":\"Hi\""));
        assert!(events[1].contains("\"finish_reason\":\"stop\""));
        assert!(events[2].contains("\"usage\""));
        assert_eq!(events[3], "data: [DONE]");
    }

    #[test]
    fn the_deployment_is_the_model() {
        let mut body = json!({"model": "gpt-4o", "messages": []});
        set_deployment(&mut body, "prod-gpt4o");
        assert_eq!(body["model"], "prod-gpt4o");
    }
}
