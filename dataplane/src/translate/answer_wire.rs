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

use crate::wire::lenient::{lenient_list, lenient_object, lenient_str, list_or_not, present};
use crate::wire::usage::{AnthropicUsageIn, Usage};

// ---- Anthropic message (in) -------------------------------------------------

/// The members of an Anthropic message answer that translation reads.
#[derive(Deserialize)]
pub struct AnthropicMessageIn<'a> {
    /// `id`, copied as it is.
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Value>,
    /// `model`, copied as it is.
    #[serde(default, deserialize_with = "present")]
    pub model: Option<Value>,
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
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Value>,
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
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Value>,
    /// `model`, copied as it is.
    #[serde(default, deserialize_with = "present")]
    pub model: Option<Value>,
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
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Value>,
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
    pub id: Value,
    /// The upstream's model.
    pub model: Value,
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
    /// The text, `null` when there is none but tool calls.
    pub content: Option<String>,
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
    pub id: Value,
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

// ---- Anthropic message (out) ------------------------------------------------

/// An Anthropic message as the gateway answers it.
#[derive(Serialize)]
pub struct AnthropicMessageOut<'a> {
    /// The content blocks.
    pub content: Vec<AnthropicBlockOut<'a>>,
    /// The upstream's id, or the gateway's.
    pub id: Value,
    /// The upstream's model.
    pub model: Value,
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
        id: Value,
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
