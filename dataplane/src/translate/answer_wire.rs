//! Typed views of whole (non-streaming) answers, for [`super::response`].
//!
//! The incoming views borrow their strings from the upstream body and skip
//! every member they do not need, so translating an answer builds no
//! `serde_json::Value` tree of it. They are as lenient as the tree walk they
//! replace (see [`crate::wire::lenient`]): a member of an unexpected type
//! reads as absent, and the few members that are copied to the client as
//! they are (ids, models, tool input, OpenAI usage) are kept as JSON values.
//! An Anthropic `usage` is read into its counts.
//!
//! The outgoing structs declare their members in alphabetical order, the
//! order a `serde_json::Value` object (a sorted map) serializes in, so the
//! bytes sent are those of the tree-based translation they replace.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::wire::lenient::{
    Copied, lenient_list, lenient_object, lenient_str, list_or_not, present,
};
use crate::wire::usage::{AnthropicUsageIn, Usage};

// ---- Anthropic message (in) -------------------------------------------------

/// The members of an Anthropic message answer that translation reads.
#[derive(Deserialize)]
pub struct AnthropicMessageIn<'a> {
    /// `id`, copied as it is.
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Copied<'a>>,
    /// `model`, copied as it is.
    #[serde(default, borrow, deserialize_with = "present")]
    pub model: Option<Copied<'a>>,
    /// `content`: `None` when absent or not a list.
    #[serde(default, borrow, deserialize_with = "list_or_not")]
    pub content: Option<Vec<AnthropicBlockIn<'a>>>,
    /// `stop_reason`.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub stop_reason: Option<Cow<'a, str>>,
    /// `usage` (not an object: absent).
    #[serde(default, deserialize_with = "lenient_object")]
    pub usage: Option<AnthropicUsageIn>,
}

/// One content block of an Anthropic message.
#[derive(Deserialize)]
pub struct AnthropicBlockIn<'a> {
    /// `type`.
    #[serde(rename = "type", default, borrow, deserialize_with = "lenient_str")]
    pub kind: Option<Cow<'a, str>>,
    /// `text` of a text block.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub text: Option<Cow<'a, str>>,
    /// `thinking` of a thinking block.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub thinking: Option<Cow<'a, str>>,
    /// `signature` of a thinking block.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub signature: Option<Cow<'a, str>>,
    /// `id` of a tool_use block.
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Copied<'a>>,
    /// `name` of a tool_use block.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub name: Option<Cow<'a, str>>,
    /// `input` of a tool_use block.
    #[serde(default, deserialize_with = "present")]
    pub input: Option<Value>,
}

// ---- OpenAI chat completion (in) --------------------------------------------

/// The members of an OpenAI chat completion that translation reads.
#[derive(Deserialize)]
pub struct ChatCompletionIn<'a> {
    /// `id`, copied as it is.
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Copied<'a>>,
    /// `model`, copied as it is.
    #[serde(default, borrow, deserialize_with = "present")]
    pub model: Option<Copied<'a>>,
    /// `choices`: `None` when absent or not a list.
    #[serde(default, borrow, deserialize_with = "list_or_not")]
    pub choices: Option<Vec<ChatChoiceIn<'a>>>,
    /// `usage`.
    #[serde(default)]
    pub usage: Option<Value>,
}

/// One choice of a chat completion.
#[derive(Deserialize)]
pub struct ChatChoiceIn<'a> {
    /// `message`.
    #[serde(default, borrow, deserialize_with = "lenient_object")]
    pub message: Option<ChatMessageIn<'a>>,
    /// `finish_reason`.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// The assistant message of a choice.
#[derive(Deserialize)]
pub struct ChatMessageIn<'a> {
    /// `reasoning_content` (DeepSeek, vLLM, the gateway's own).
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// `reasoning` (OpenRouter, Ollama).
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub reasoning: Option<Cow<'a, str>>,
    /// `content` when it is text.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub content: Option<Cow<'a, str>>,
    /// `refusal`.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub refusal: Option<Cow<'a, str>>,
    /// `tool_calls`.
    #[serde(default, borrow, deserialize_with = "lenient_list")]
    pub tool_calls: Vec<ToolCallIn<'a>>,
}

/// One tool call of an assistant message.
#[derive(Deserialize)]
pub struct ToolCallIn<'a> {
    /// `id`, copied as it is.
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Copied<'a>>,
    /// `function`.
    #[serde(default, borrow, deserialize_with = "lenient_object")]
    pub function: Option<FunctionIn<'a>>,
}

/// The function of a tool call.
#[derive(Deserialize)]
pub struct FunctionIn<'a> {
    /// `name`.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub name: Option<Cow<'a, str>>,
    /// `arguments`, a JSON text.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    pub arguments: Option<Cow<'a, str>>,
}

// ---- OpenAI chat completion (out) -------------------------------------------

/// An OpenAI chat completion as the gateway answers it.
#[derive(Serialize)]
pub struct ChatCompletionOut<'a> {
    /// The one choice.
    pub choices: [ChatChoiceOut<'a>; 1],
    /// Unix time.
    pub created: u64,
    /// The upstream's id, or the gateway's.
    pub id: Copied<'a>,
    /// The upstream's model.
    pub model: Copied<'a>,
    /// `chat.completion`.
    pub object: &'static str,
    /// Token counts.
    pub usage: OpenAiUsageOut,
}

/// The choice of a [`ChatCompletionOut`].
#[derive(Serialize)]
pub struct ChatChoiceOut<'a> {
    /// Why the answer ended.
    pub finish_reason: &'static str,
    /// Always 0.
    pub index: u32,
    /// Always `null`.
    pub logprobs: (),
    /// The assistant message.
    pub message: ChatMessageOut<'a>,
}

/// The assistant message of a [`ChatChoiceOut`].
#[derive(Serialize)]
pub struct ChatMessageOut<'a> {
    /// Always empty.
    pub annotations: [(); 0],
    /// The text, `null` when there is none but tool calls (borrowed from
    /// the upstream's answer when it was one block without escapes).
    pub content: Option<Cow<'a, str>>,
    /// Thinking text (non-standard, as DeepSeek and vLLM send it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The thinking's signature, for the client to echo back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_signature: Option<String>,
    /// Always `null`.
    pub refusal: (),
    /// `assistant`.
    pub role: &'static str,
    /// Tool calls, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut<'a>>,
}

/// One tool call of a [`ChatMessageOut`].
#[derive(Serialize)]
pub struct ToolCallOut<'a> {
    /// The function and its arguments.
    pub function: FunctionOut<'a>,
    /// The upstream's tool-use id.
    pub id: Copied<'a>,
    /// `function`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The function of a [`ToolCallOut`].
#[derive(Serialize)]
pub struct FunctionOut<'a> {
    /// The arguments as JSON text.
    pub arguments: String,
    /// The client's name of the tool.
    pub name: Cow<'a, str>,
}

/// An OpenAI `usage` object. `prompt_tokens` counts every input token
/// (cached and cache writes included).
#[derive(Serialize)]
pub struct OpenAiUsageOut {
    /// Output tokens.
    pub completion_tokens: u64,
    /// Reasoning tokens among them.
    pub completion_tokens_details: ReasoningDetails,
    /// Every input token.
    pub prompt_tokens: u64,
    /// Cached (and cache-write) tokens among them.
    pub prompt_tokens_details: PromptDetails,
    /// Input and output.
    pub total_tokens: u64,
}

/// `completion_tokens_details`.
#[derive(Serialize)]
pub struct ReasoningDetails {
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

/// `prompt_tokens_details`; cache writes, which OpenAI has no standard field
/// for, only when there are some.
#[derive(Serialize)]
pub struct PromptDetails {
    /// Tokens written to the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Tokens read from the cache.
    pub cached_tokens: u64,
}

impl From<&Usage> for OpenAiUsageOut {
    fn from(u: &Usage) -> Self {
        let prompt = u.total_input();
        OpenAiUsageOut {
            completion_tokens: u.output_tokens,
            completion_tokens_details: ReasoningDetails {
                reasoning_tokens: u.reasoning_tokens,
            },
            prompt_tokens: prompt,
            prompt_tokens_details: PromptDetails {
                cache_write_tokens: (u.cache_write_tokens > 0).then_some(u.cache_write_tokens),
                cached_tokens: u.cache_read_tokens,
            },
            total_tokens: prompt + u.output_tokens,
        }
    }
}

impl ChatCompletionOut<'_> {
    /// The answer as JSON text, appended to `out`: the bytes its
    /// `Serialize` writes (a test compares them), with the constant keys
    /// copied as they are instead of escaped one by one, and numbers
    /// written without a serializer call each.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let [choice] = &self.choices;
        let message = &choice.message;
        out.extend_from_slice(br#"{"choices":[{"finish_reason":"#);
        write_constant(out, choice.finish_reason);
        out.extend_from_slice(br#","index":"#);
        write_u64(out, u64::from(choice.index));
        out.extend_from_slice(br#","logprobs":null,"message":{"annotations":[],"content":"#);
        match &message.content {
            Some(text) => write_str(out, text)?,
            None => out.extend_from_slice(b"null"),
        }
        if let Some(reasoning) = &message.reasoning_content {
            out.extend_from_slice(br#","reasoning_content":"#);
            write_str(out, reasoning)?;
        }
        if let Some(signature) = &message.reasoning_signature {
            out.extend_from_slice(br#","reasoning_signature":"#);
            write_str(out, signature)?;
        }
        out.extend_from_slice(br#","refusal":null,"role":"#);
        write_constant(out, message.role);
        if !message.tool_calls.is_empty() {
            out.extend_from_slice(br#","tool_calls":"#);
            serde_json::to_writer(&mut *out, &message.tool_calls)?;
        }
        out.extend_from_slice(br#"}}],"created":"#);
        write_u64(out, self.created);
        out.extend_from_slice(br#","id":"#);
        serde_json::to_writer(&mut *out, &self.id)?;
        out.extend_from_slice(br#","model":"#);
        serde_json::to_writer(&mut *out, &self.model)?;
        out.extend_from_slice(br#","object":"#);
        write_constant(out, self.object);
        out.extend_from_slice(br#","usage":"#);
        self.usage.write_json(out);
        out.push(b'}');
        Ok(())
    }
}

impl OpenAiUsageOut {
    /// The object as JSON text, appended to `out` (see
    /// [`ChatCompletionOut::write_json`]).
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"completion_tokens":"#);
        write_u64(out, self.completion_tokens);
        out.extend_from_slice(br#","completion_tokens_details":{"reasoning_tokens":"#);
        write_u64(out, self.completion_tokens_details.reasoning_tokens);
        out.extend_from_slice(br#"},"prompt_tokens":"#);
        write_u64(out, self.prompt_tokens);
        out.extend_from_slice(br#","prompt_tokens_details":{"#);
        if let Some(written) = self.prompt_tokens_details.cache_write_tokens {
            out.extend_from_slice(br#""cache_write_tokens":"#);
            write_u64(out, written);
            out.push(b',');
        }
        out.extend_from_slice(br#""cached_tokens":"#);
        write_u64(out, self.prompt_tokens_details.cached_tokens);
        out.extend_from_slice(br#"},"total_tokens":"#);
        write_u64(out, self.total_tokens);
        out.push(b'}');
    }
}

/// `s` as a JSON string, escaped as `serde_json` escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    serde_json::to_writer(out, s)
}

/// One of the gateway's own names (a role, a finish reason) as a JSON
/// string: they hold nothing `serde_json` would escape.
fn write_constant(out: &mut Vec<u8>, s: &'static str) {
    debug_assert!(!s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

// ---- Anthropic message (out) ------------------------------------------------

/// An Anthropic message as the gateway answers it.
#[derive(Serialize)]
pub struct AnthropicMessageOut<'a> {
    /// The content blocks.
    pub content: Vec<AnthropicBlockOut<'a>>,
    /// The upstream's id, or the gateway's.
    pub id: Copied<'a>,
    /// The upstream's model.
    pub model: Copied<'a>,
    /// `assistant`.
    pub role: &'static str,
    /// Why the answer ended.
    pub stop_reason: &'static str,
    /// Always `null`.
    pub stop_sequence: (),
    /// `message`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Token counts.
    pub usage: AnthropicUsageOut,
}

/// One content block of an [`AnthropicMessageOut`].
#[derive(Serialize)]
#[serde(untagged)]
pub enum AnthropicBlockOut<'a> {
    /// `{"signature", "thinking", "type": "thinking"}`.
    Thinking {
        /// Empty: OpenAI reasoning cannot be replayed to Anthropic.
        signature: &'static str,
        /// The reasoning text.
        thinking: Cow<'a, str>,
        /// `thinking`.
        #[serde(rename = "type")]
        kind: &'static str,
    },
    /// `{"text", "type": "text"}`.
    Text {
        /// The text.
        text: Cow<'a, str>,
        /// `text`.
        #[serde(rename = "type")]
        kind: &'static str,
    },
    /// `{"id", "input", "name", "type": "tool_use"}`.
    ToolUse {
        /// The upstream's tool-call id.
        id: Copied<'a>,
        /// The parsed arguments.
        input: Value,
        /// The client's name of the tool.
        name: Cow<'a, str>,
        /// `tool_use`.
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

/// An Anthropic `usage` object.
#[derive(Serialize)]
pub struct AnthropicUsageOut {
    /// Tokens written to the cache.
    pub cache_creation_input_tokens: u64,
    /// Tokens read from the cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens other than cache reads and writes.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl From<&Usage> for AnthropicUsageOut {
    fn from(u: &Usage) -> Self {
        AnthropicUsageOut {
            cache_creation_input_tokens: u.cache_write_tokens,
            cache_read_input_tokens: u.cache_read_tokens,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer<'a>(
        message: ChatMessageOut<'a>,
        id: Copied<'a>,
        model: Copied<'a>,
        usage: &Usage,
    ) -> ChatCompletionOut<'a> {
        ChatCompletionOut {
            choices: [ChatChoiceOut {
                finish_reason: "tool_calls",
                index: 0,
                logprobs: (),
                message,
            }],
            created: 1_796_612_002,
            id,
            model,
            object: "chat.completion",
            usage: OpenAiUsageOut::from(usage),
        }
    }

    fn message<'a>(content: Option<&str>, tool_calls: Vec<ToolCallOut<'a>>) -> ChatMessageOut<'a> {
        ChatMessageOut {
            annotations: [],
            content: content.map(|c| Cow::Owned(c.to_owned())),
            reasoning_content: None,
            reasoning_signature: None,
            refusal: (),
            role: "assistant",
            tool_calls,
        }
    }

    /// The hand-written writer and the derived serialization give the same
    /// bytes, for every optional member present or absent and for strings
    /// that need escapes.
    #[test]
    fn a_chat_completion_is_written_as_serde_writes_it() {
        let usage = Usage {
            input_tokens: 12,
            output_tokens: 7,
            cache_read_tokens: 3,
            cache_write_tokens: 0,
            reasoning_tokens: 2,
        };
        let written = Usage {
            cache_write_tokens: 5,
            ..usage
        };
        let call = || ToolCallOut {
            function: FunctionOut {
                arguments: r#"{"path":"a\"b"}"#.into(),
                name: Cow::Borrowed("read_file"),
            },
            id: Copied::from("toolu_1"),
            kind: "function",
        };
        let mut thinking = message(Some("done"), Vec::new());
        thinking.reasoning_content = Some("step\n1 \u{1}é".into());
        thinking.reasoning_signature = Some("sig".into());
        let mut unsigned = message(None, vec![call()]);
        unsigned.reasoning_content = Some("why".into());
        let cases = [
            answer(
                message(Some("Hello \"there\"\n\u{7f}\u{2028}"), Vec::new()),
                Copied::from("msg_1"),
                Copied::Str("cl\"aude".to_owned().into()),
                &usage,
            ),
            answer(
                message(None, vec![call(), call()]),
                Copied::NULL,
                Copied::Tree(Value::from(7)),
                &written,
            ),
            answer(
                thinking,
                Copied::Tree(serde_json::json!({"nested": ["id"]})),
                Copied::NULL,
                &Usage::default(),
            ),
            answer(
                unsigned,
                Copied::from("chatcmpl-switchboard"),
                Copied::from("m"),
                &written,
            ),
        ];
        for case in cases {
            let mut out = Vec::new();
            case.write_json(&mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&case).unwrap()
            );
        }
    }
}
