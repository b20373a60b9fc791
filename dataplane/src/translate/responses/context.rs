//! What the translation of an answer needs from its request, and the pieces
//! of a Responses object both the whole-body and the streaming translations
//! build: the response shell, the usage object, tool-name restoration and
//! the reasoning side channel.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::wire::usage::Usage;

/// Longest tool name OpenAI-format targets accept.
pub const MAX_TOOL_NAME: usize = 64;

/// Separator between a namespace and a tool name in a flattened name.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Maps the tool names sent upstream back to the client's names.
///
/// Tools inside a Responses `namespace` tool are sent as
/// `<namespace>__<tool>`; a name longer than [`MAX_TOOL_NAME`] is shortened
/// to a prefix plus a hash. Both are deterministic, so a name in the
/// conversation history maps to the same upstream name as the tool
/// definition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolNames {
    /// Upstream name → (namespace, client name).
    restore: BTreeMap<String, (Option<String>, String)>,
}

impl ToolNames {
    /// The upstream name for `name` in `namespace`, remembered for
    /// [`ToolNames::restore`].
    pub fn upstream(&mut self, namespace: Option<&str>, name: &str) -> String {
        let flat = match namespace {
            Some(ns) if !ns.is_empty() => format!("{ns}{NAMESPACE_SEPARATOR}{name}"),
            _ => name.to_owned(),
        };
        let upstream = shorten(&flat);
        if upstream != name || namespace.is_some() {
            self.restore.insert(
                upstream.clone(),
                (
                    namespace.filter(|n| !n.is_empty()).map(str::to_owned),
                    name.to_owned(),
                ),
            );
        }
        upstream
    }

    /// The client's (namespace, name) for an upstream tool name. Names the
    /// gateway did not rewrite come back unchanged.
    pub fn restore(&self, upstream: &str) -> (Option<String>, String) {
        match self.restore.get(upstream) {
            Some((ns, name)) => (ns.clone(), name.clone()),
            None => (None, upstream.to_owned()),
        }
    }
}

fn shorten(name: &str) -> String {
    if name.len() <= MAX_TOOL_NAME {
        return name.to_owned();
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    let mut cut = MAX_TOOL_NAME - 9;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{}", &name[..cut], &hash[..8])
}

/// Request fields a Responses object echoes back, with the API's defaults
/// when the request omitted them.
/// The default of an echoed field.
type EchoDefault = fn() -> Value;

const ECHOED: &[(&str, EchoDefault)] = &[
    ("instructions", || Value::Null),
    ("max_output_tokens", || Value::Null),
    ("metadata", || json!({})),
    ("parallel_tool_calls", || Value::Bool(true)),
    ("previous_response_id", || Value::Null),
    ("reasoning", || json!({"effort": null, "summary": null})),
    ("store", || Value::Bool(false)),
    ("temperature", || json!(1.0)),
    ("text", || json!({"format": {"type": "text"}})),
    ("tool_choice", || json!("auto")),
    ("tools", || json!([])),
    ("top_p", || json!(1.0)),
    ("truncation", || json!("disabled")),
    ("user", || Value::Null),
];

/// What the answer's translation needs from the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseContext {
    /// The model name the client asked for (answers carry it).
    pub model: String,
    /// Fields echoed into the Responses object.
    pub echo: Map<String, Value>,
    /// Upstream tool names back to client names.
    pub names: ToolNames,
}

impl ResponseContext {
    /// The context of `request` (a Responses request body).
    pub fn from_request(request: &Value, names: ToolNames) -> Self {
        let mut echo = Map::new();
        for (key, default) in ECHOED {
            let value = request
                .get(*key)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or_else(default);
            echo.insert((*key).to_owned(), value);
        }
        Self {
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            echo,
            names,
        }
    }

    /// A Responses object with no output yet.
    pub fn shell(&self, id: &str, created_at: u64, status: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), json!(id));
        m.insert("object".into(), json!("response"));
        m.insert("created_at".into(), json!(created_at));
        m.insert("status".into(), json!(status));
        m.insert("error".into(), Value::Null);
        m.insert("incomplete_details".into(), Value::Null);
        m.insert("model".into(), json!(self.model));
        m.insert("output".into(), json!([]));
        for (k, v) in &self.echo {
            m.insert(k.clone(), v.clone());
        }
        m.insert("usage".into(), Value::Null);
        m
    }

    /// A `function_call` output item for an upstream call.
    pub fn function_call_item(
        &self,
        id: &str,
        call_id: &str,
        upstream_name: &str,
        arguments: &str,
        status: &str,
    ) -> Value {
        let (namespace, name) = self.names.restore(upstream_name);
        let mut item = json!({
            "type": "function_call",
            "id": id,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": status,
        });
        if let Some(ns) = namespace {
            item["namespace"] = json!(ns);
        }
        item
    }
}

/// The Responses `usage` object for `u`. Responses `input_tokens`, like Chat
/// `prompt_tokens`, includes cached tokens; `output_tokens` includes
/// reasoning tokens.
pub fn usage_json(u: &Usage) -> Value {
    let input = u.total_input();
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": input + u.output_tokens,
    })
}

/// Why an answer stopped, in Responses terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// A natural end, a stop sequence or tool calls: `completed`.
    Completed,
    /// The output-token limit: `incomplete`, reason `max_output_tokens`.
    MaxOutputTokens,
    /// A content filter or refusal: `incomplete`, reason `content_filter`.
    ContentFilter,
}

impl Finish {
    /// From a Chat Completions `finish_reason` (missing means completed).
    pub fn from_chat(reason: Option<&str>) -> Self {
        match reason {
            Some("length") => Finish::MaxOutputTokens,
            Some("content_filter") => Finish::ContentFilter,
            _ => Finish::Completed,
        }
    }

    /// From an Anthropic `stop_reason` (missing means completed).
    pub fn from_anthropic(reason: Option<&str>) -> Self {
        match reason {
            Some("max_tokens") | Some("model_context_window_exceeded") => Finish::MaxOutputTokens,
            Some("refusal") => Finish::ContentFilter,
            _ => Finish::Completed,
        }
    }

    /// The Responses `status`.
    pub fn status(self) -> &'static str {
        match self {
            Finish::Completed => "completed",
            Finish::MaxOutputTokens | Finish::ContentFilter => "incomplete",
        }
    }

    /// The Responses `incomplete_details`.
    pub fn incomplete_details(self) -> Value {
        match self {
            Finish::Completed => Value::Null,
            Finish::MaxOutputTokens => json!({"reason": "max_output_tokens"}),
            Finish::ContentFilter => json!({"reason": "content_filter"}),
        }
    }
}

/// Prefix of a reasoning item's `encrypted_content` that carries an
/// Anthropic thinking block through a stateless client (Codex replays
/// reasoning items with `encrypted_content` verbatim).
pub const THINKING_PREFIX: &str = "sbthink1.";

/// An Anthropic thinking block carried in a reasoning item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThinkingBlock {
    /// `{"type":"thinking","thinking","signature"}`.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// The opaque signature.
        signature: String,
    },
    /// `{"type":"redacted_thinking","data"}`.
    Redacted {
        /// The opaque data.
        data: String,
    },
}

impl ThinkingBlock {
    /// The `encrypted_content` string for this block.
    pub fn encode(&self) -> String {
        let v = match self {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => json!({"t": thinking, "s": signature}),
            ThinkingBlock::Redacted { data } => json!({"r": data}),
        };
        format!("{THINKING_PREFIX}{}", URL_SAFE_NO_PAD.encode(v.to_string()))
    }

    /// The block carried by an `encrypted_content` string, if it is one of
    /// ours (OpenAI's own encrypted reasoning is not).
    pub fn decode(s: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD
            .decode(s.strip_prefix(THINKING_PREFIX)?)
            .ok()?;
        let v: Value = serde_json::from_slice(&raw).ok()?;
        if let Some(data) = v.get("r").and_then(Value::as_str) {
            return Some(ThinkingBlock::Redacted {
                data: data.to_owned(),
            });
        }
        Some(ThinkingBlock::Thinking {
            thinking: v.get("t")?.as_str()?.to_owned(),
            signature: v.get("s")?.as_str()?.to_owned(),
        })
    }

    /// The Anthropic content block.
    pub fn to_block(&self) -> Value {
        match self {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => {
                json!({"type": "thinking", "thinking": thinking, "signature": signature})
            }
            ThinkingBlock::Redacted { data } => json!({"type": "redacted_thinking", "data": data}),
        }
    }
}

/// A `reasoning` output item. `text` becomes its one summary part (empty
/// text gives an empty summary); `block` rides in `encrypted_content`.
pub fn reasoning_item(id: &str, text: &str, block: Option<&ThinkingBlock>) -> Value {
    let summary = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    };
    let mut item = json!({"type": "reasoning", "id": id, "summary": summary});
    if let Some(b) = block {
        item["encrypted_content"] = json!(b.encode());
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_flatten_and_restore() {
        let mut n = ToolNames::default();
        assert_eq!(
            n.upstream(Some("multi_agent_v1"), "spawn_agent"),
            "multi_agent_v1__spawn_agent"
        );
        assert_eq!(n.upstream(None, "exec_command"), "exec_command");
        assert_eq!(
            n.restore("multi_agent_v1__spawn_agent"),
            (Some("multi_agent_v1".into()), "spawn_agent".into())
        );
        assert_eq!(n.restore("exec_command"), (None, "exec_command".into()));
        assert_eq!(n.restore("unknown"), (None, "unknown".into()));
    }

    #[test]
    fn long_names_are_shortened_deterministically() {
        let long = "mcp__a_very_long_server_name__and_an_even_longer_tool_name_that_goes_on";
        let mut a = ToolNames::default();
        let mut b = ToolNames::default();
        let up = a.upstream(None, long);
        assert_eq!(up.len(), MAX_TOOL_NAME);
        assert_eq!(up, b.upstream(None, long));
        assert_eq!(a.restore(&up), (None, long.to_owned()));
    }

    #[test]
    fn thinking_side_channel_round_trips() {
        for b in [
            ThinkingBlock::Thinking {
                thinking: "let me think \"quoted\"".into(),
                signature: "EqQBCgIYAh".into(),
            },
            ThinkingBlock::Redacted {
                data: "opaque==".into(),
            },
        ] {
            assert_eq!(ThinkingBlock::decode(&b.encode()), Some(b));
        }
        assert_eq!(ThinkingBlock::decode("gAAAAABopenai-encrypted"), None);
        assert_eq!(ThinkingBlock::decode("sbthink1.!!!"), None);
    }

    #[test]
    fn usage_includes_cached_tokens_in_input() {
        let u = Usage {
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 100,
            cache_write_tokens: 20,
            reasoning_tokens: 2,
        };
        assert_eq!(
            usage_json(&u),
            json!({"input_tokens":130,"input_tokens_details":{"cached_tokens":100},"output_tokens":5,
                   "output_tokens_details":{"reasoning_tokens":2},"total_tokens":135})
        );
    }

    #[test]
    fn finish_mapping() {
        assert_eq!(Finish::from_chat(Some("length")), Finish::MaxOutputTokens);
        assert_eq!(Finish::from_chat(Some("tool_calls")), Finish::Completed);
        assert_eq!(
            Finish::from_anthropic(Some("max_tokens")),
            Finish::MaxOutputTokens
        );
        assert_eq!(
            Finish::from_anthropic(Some("refusal")),
            Finish::ContentFilter
        );
        assert_eq!(Finish::from_anthropic(None).status(), "completed");
    }
}
