//! Canned provider answers in the OpenAI Chat Completions and Anthropic
//! Messages wire formats, built once so the mock spends no time on them.

use bytes::Bytes;

/// A provider wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// OpenAI Chat Completions (`…/chat/completions`).
    OpenAI,
    /// Anthropic Messages (`…/messages`).
    Anthropic,
}

impl Flavor {
    /// The format a request path asks for, by its suffix (so route prefixes such as
    /// `/key/v1/messages` work against the mock directly).
    pub fn from_path(path: &str) -> Option<Self> {
        if path.ends_with("/chat/completions") {
            Some(Flavor::OpenAI)
        } else if path.ends_with("/messages") {
            Some(Flavor::Anthropic)
        } else {
            None
        }
    }
}

/// True when a JSON request body asks for a stream (`"stream": true`), found by
/// a byte scan instead of a parse.
pub fn wants_stream(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"stream\"";
    let mut rest = body;
    while let Some(pos) = find(rest, KEY) {
        rest = &rest[pos + KEY.len()..];
        let value = rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b':'))
            .map_or(&[][..], |start| &rest[start..]);
        if value.starts_with(b"true") {
            return true;
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The complete (non-streaming) answer.
pub fn json_answer(flavor: Flavor) -> Bytes {
    let text = match flavor {
        Flavor::OpenAI => concat!(
            r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","#,
            r#""choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench mock."},"#,
            r#""finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#
        ),
        Flavor::Anthropic => concat!(
            r#"{"id":"msg_bench","type":"message","role":"assistant","model":"bench","#,
            r#""content":[{"type":"text","text":"Hello from the bench mock."}],"stop_reason":"end_turn","#,
            r#""stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":7}}"#
        ),
    };
    Bytes::from_static(text.as_bytes())
}

/// The streamed answer as separate server-sent events, with `chunks` text
/// deltas between the format's opening and closing events.
pub fn stream_events(flavor: Flavor, chunks: usize) -> Vec<Bytes> {
    let mut events = Vec::with_capacity(chunks + 8);
    match flavor {
        Flavor::OpenAI => {
            let chunk = |delta: &str, finish: &str| {
                format!(
                    "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\
                     \"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
                )
            };
            events.push(chunk(r#"{"role":"assistant","content":""}"#, "null"));
            for i in 0..chunks {
                events.push(chunk(&format!(r#"{{"content":"tok{i} "}}"#), "null"));
            }
            events.push(chunk("{}", r#""stop""#));
            events.push(format!(
                "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\
                 \"model\":\"bench\",\"choices\":[],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":{chunks},\
                 \"total_tokens\":{}}}}}\n\n",
                12 + chunks
            ));
            events.push("data: [DONE]\n\n".to_owned());
        }
        Flavor::Anthropic => {
            let event = |name: &str, data: &str| format!("event: {name}\ndata: {data}\n\n");
            events.push(event(
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"bench","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
            ));
            events.push(event(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ));
            for i in 0..chunks {
                events.push(event(
                    "content_block_delta",
                    &format!(r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"tok{i} "}}}}"#),
                ));
            }
            events.push(event(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ));
            events.push(event(
                "message_delta",
                &format!(
                    r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{chunks}}}}}"#
                ),
            ));
            events.push(event("message_stop", r#"{"type":"message_stop"}"#));
        }
    }
    events.into_iter().map(Bytes::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_stream_flag_with_or_without_spaces() {
        assert!(wants_stream(br#"{"model":"m","stream":true}"#));
        assert!(wants_stream(br#"{"model":"m", "stream" : true}"#));
        assert!(!wants_stream(br#"{"model":"m","stream":false}"#));
        assert!(!wants_stream(br#"{"model":"m","messages":[]}"#));
    }

    #[test]
    fn answers_are_valid_json_in_each_format() {
        for flavor in [Flavor::OpenAI, Flavor::Anthropic] {
            let v: serde_json::Value = serde_json::from_slice(&json_answer(flavor)).unwrap();
            assert!(v.get("usage").is_some());
            for event in stream_events(flavor, 3) {
                let text = std::str::from_utf8(&event).unwrap();
                let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                if data != "[DONE]" {
                    serde_json::from_str::<serde_json::Value>(data).unwrap();
                }
            }
        }
        assert_eq!(stream_events(Flavor::Anthropic, 50).len(), 55);
        assert_eq!(stream_events(Flavor::OpenAI, 50).len(), 54);
    }

    #[test]
    fn flavor_by_path_suffix() {
        assert_eq!(
            Flavor::from_path("/v1/chat/completions"),
            Some(Flavor::OpenAI)
        );
        assert_eq!(
            Flavor::from_path("/key/v1/messages"),
            Some(Flavor::Anthropic)
        );
        assert_eq!(Flavor::from_path("/v1/models"), None);
    }
}
