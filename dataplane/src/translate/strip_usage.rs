//! OpenAI → OpenAI streams where the gateway, not the client, asked for
//! usage: the usage-only chunk (`choices: []`) is removed again, since many
//! clients index `choices[0]` and crash on it (§0.9). Every other event is
//! re-framed with its data untouched.

use serde_json::Value;

use super::StreamTranslator;
use crate::wire::sse::SseEvent;

/// Drops the usage-only chunk of an OpenAI stream.
#[derive(Debug, Default)]
pub struct StripUsageChunk;

impl StreamTranslator for StripUsageChunk {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        let data = event.data.as_str();
        if data.contains("\"usage\"")
            && data.contains("\"choices\"")
            && let Ok(v) = serde_json::from_str::<Value>(data)
        {
            let no_choices = v
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            if no_choices && v.get("usage").is_some_and(Value::is_object) {
                return;
            }
        }
        if let Some(name) = &event.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        for line in data.split('\n') {
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

    #[test]
    fn usage_only_chunk_is_removed_and_the_rest_kept() {
        let mut s = StripUsageChunk;
        let mut out = Vec::new();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
            "[DONE]",
        ] {
            s.event(
                &SseEvent {
                    event: None,
                    data: data.into(),
                },
                &mut out,
            );
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\ndata: [DONE]\n\n"
        );
    }
}
