//! Token counts for OpenAI-format backends, with OpenAI's own tokenizers.
//!
//! Anthropic's `POST /v1/messages/count_tokens` has no OpenAI equivalent, so
//! for a model served by an OpenAI or OpenAI-compatible backend the gateway
//! counts locally: the request is first translated exactly as it would be
//! sent ([`crate::translate::messages_to_chat`]), then counted here the way
//! OpenAI bills a Chat Completions prompt.
//!
//! - Tokenizer: `o200k_base` (GPT-4o, GPT-4.1, GPT-5, o-series, and any
//!   model name the `tiktoken` tables do not know) or `cl100k_base`
//!   (GPT-4, GPT-3.5), chosen from the provider model name with the
//!   `tiktoken-rs` tables, which follow OpenAI's `tiktoken`.
//! - Messages: 3 tokens of framing per message, the role, the content,
//!   1 more for a `name`, and 3 tokens priming the reply: OpenAI's published
//!   rule, exact for text (the unit tests reproduce the counts OpenAI's
//!   cookbook reports from its API).
//! - Tool calls in the history: name and arguments plus 3 tokens each;
//!   tool definitions: rendered the way OpenAI's models see them
//!   ([`tools`]) and counted. OpenAI does not publish either format, so these
//!   parts are close, not exact.
//! - Images: 765 tokens each (a 1024×1024 image at `detail: high`; 85 at
//!   `low`): the real cost depends on the image size, which is not decoded.
//!   PDF parts count only their file name.
//!
//! [`TokenCount::exact`] is false when the tokenizer of the model is not
//! known (an OpenAI-compatible server running Llama, Qwen, Mistral, …: the
//! count is then `o200k_base`'s, see `docs/translation.md` for the error to
//! expect) or when images or files make the count approximate.

pub mod tools;

use serde_json::Value;
use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// Framing tokens of every message (`<|start|>{role}<|message|>…<|end|>`).
const TOKENS_PER_MESSAGE: u64 = 3;
/// Extra tokens of a message `name`.
const TOKENS_PER_NAME: u64 = 1;
/// Tokens priming the reply (`<|start|>assistant<|message|>`).
const REPLY_PRIMING: u64 = 3;
/// Framing of one tool call in an assistant message.
const TOKENS_PER_TOOL_CALL: u64 = 3;
/// An image at `detail: high` whose size is unknown (1024×1024: 85 + 4 × 170).
const IMAGE_HIGH: u64 = 765;
/// An image at `detail: low`.
const IMAGE_LOW: u64 = 85;

/// An OpenAI tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `o200k_base`.
    O200k,
    /// `cl100k_base`.
    Cl100k,
}

impl Encoding {
    /// The tokenizer's name (as `tiktoken` calls it).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200k => "o200k_base",
            Encoding::Cl100k => "cl100k_base",
        }
    }

    /// The tokenizer for `model`, and whether the model is known to use it.
    pub fn for_model(model: &str) -> (Encoding, bool) {
        match get_tokenizer(model) {
            Some(Tokenizer::Cl100kBase) => (Encoding::Cl100k, true),
            // gpt-oss's o200k_harmony is o200k_base plus special tokens.
            Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => (Encoding::O200k, true),
            _ => (Encoding::O200k, false),
        }
    }

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Encoding::O200k => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100k => tiktoken_rs::cl100k_base_singleton(),
        }
    }

    /// Tokens of `text` (special-token text counts as ordinary text, as the
    /// API treats it).
    pub fn count(self, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        self.bpe().encode_ordinary(text).len() as u64
    }
}

/// The result of counting a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount {
    /// Input tokens.
    pub tokens: u64,
    /// The tokenizer used.
    pub encoding: Encoding,
    /// The model's own tokenizer counted plain content: false when the
    /// tokenizer is a stand-in or images/files were estimated.
    pub exact: bool,
}

/// Counts the prompt tokens of an OpenAI Chat Completions request body
/// (`messages` and `tools`) for `model`.
pub fn count_chat(chat: &Value, model: &str) -> TokenCount {
    let (encoding, known) = Encoding::for_model(model);
    let mut approximate = !known;
    let mut tokens = 0;
    for m in chat
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        tokens += TOKENS_PER_MESSAGE;
        tokens += encoding.count(m.get("role").and_then(Value::as_str).unwrap_or_default());
        if let Some(name) = m.get("name").and_then(Value::as_str) {
            tokens += TOKENS_PER_NAME + encoding.count(name);
        }
        tokens += content_tokens(
            encoding,
            m.get("content").unwrap_or(&Value::Null),
            &mut approximate,
        );
        for call in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let f = &call["function"];
            tokens += TOKENS_PER_TOOL_CALL
                + encoding.count(f["name"].as_str().unwrap_or_default())
                + encoding.count(f["arguments"].as_str().unwrap_or_default());
        }
    }
    tokens += REPLY_PRIMING;
    if let Some(defs) = chat.get("tools").and_then(Value::as_array)
        && !defs.is_empty()
    {
        tokens += TOKENS_PER_MESSAGE + encoding.count(&tools::render(defs));
    }
    TokenCount {
        tokens,
        encoding,
        exact: !approximate,
    }
}

fn content_tokens(encoding: Encoding, content: &Value, approximate: &mut bool) -> u64 {
    match content {
        Value::String(s) => encoding.count(s),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") | Some("refusal") => encoding.count(
                    p.get("text")
                        .or_else(|| p.get("refusal"))
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ),
                Some("image_url") => {
                    *approximate = true;
                    if p.pointer("/image_url/detail").and_then(Value::as_str) == Some("low") {
                        IMAGE_LOW
                    } else {
                        IMAGE_HIGH
                    }
                }
                _ => {
                    *approximate = true;
                    encoding.count(
                        p.pointer("/file/filename")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    )
                }
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example conversation of OpenAI's cookbook "How to count tokens
    /// with tiktoken", whose prompt the API reported as 124 tokens for the
    /// GPT-4o family and 129 for GPT-4 / GPT-3.5-turbo.
    fn cookbook_messages() -> Value {
        json!({"messages": [
            {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
            {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
            {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
            {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
            {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
            {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}
        ]})
    }

    #[test]
    fn text_counts_match_what_openai_bills() {
        let o200k = count_chat(&cookbook_messages(), "gpt-4o-2024-08-06");
        assert_eq!(
            o200k,
            TokenCount {
                tokens: 124,
                encoding: Encoding::O200k,
                exact: true
            }
        );
        assert_eq!(count_chat(&cookbook_messages(), "gpt-4.1").tokens, 124);
        let cl100k = count_chat(&cookbook_messages(), "gpt-4-0613");
        assert_eq!(
            cl100k,
            TokenCount {
                tokens: 129,
                encoding: Encoding::Cl100k,
                exact: true
            }
        );
    }

    #[test]
    fn tokenizers_follow_the_model_name() {
        assert_eq!(Encoding::for_model("gpt-5-mini"), (Encoding::O200k, true));
        assert_eq!(Encoding::for_model("o3"), (Encoding::O200k, true));
        assert_eq!(
            Encoding::for_model("gpt-3.5-turbo"),
            (Encoding::Cl100k, true)
        );
        assert_eq!(Encoding::for_model("gpt-oss-120b"), (Encoding::O200k, true));
        assert_eq!(
            Encoding::for_model("llama3.1:70b"),
            (Encoding::O200k, false)
        );
        assert_eq!(Encoding::O200k.count("hello world"), 2);
        assert_eq!(Encoding::O200k.count(""), 0);
        assert_eq!(
            Encoding::O200k.count("<|endoftext|>"),
            7,
            "special tokens count as text"
        );
    }

    #[test]
    fn unknown_tokenizers_images_and_tools_are_flagged_or_counted() {
        let unknown = count_chat(&cookbook_messages(), "qwen2.5-coder");
        assert_eq!((unknown.tokens, unknown.exact), (124, false));
        let image = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]});
        let c = count_chat(&image, "gpt-4o");
        assert!(!c.exact);
        assert_eq!(c.tokens, 3 + 1 + 3 + IMAGE_HIGH + 3, "{c:?}");
        let plain = count_chat(
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
            "gpt-4o",
        );
        let with_tools = count_chat(
            &json!({"messages": [{"role": "user", "content": "hi"}],
                    "tools": [{"type": "function", "function": {"name": "get_weather",
                        "description": "Weather of a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}),
            "gpt-4o",
        );
        assert!(with_tools.exact);
        let tool_tokens = with_tools.tokens - plain.tokens;
        assert!((20..60).contains(&tool_tokens), "{tool_tokens}");
        let call = count_chat(
            &json!({"messages": [{"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}]}),
            "gpt-4o",
        );
        assert!(call.tokens > plain.tokens, "{call:?}");
    }
}
