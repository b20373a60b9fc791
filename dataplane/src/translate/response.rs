//! Whole (non-streaming) answers between the dialects (§3.3).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use super::answer_wire::{
    AnthropicBlockOut, AnthropicMessageIn, AnthropicMessageOut, AnthropicUsageOut, ChatChoiceOut,
    ChatCompletionIn, ChatCompletionOut, ChatMessageOut, FunctionOut, OpenAiUsageOut, ToolCallOut,
};
use super::mapping::{finish_reason_from_anthropic, stop_reason_from_openai, usage_from_openai};
use super::{Session, TranslateError, TranslatedAnswer};
use crate::wire::lenient::{Copied, from_body};
use crate::wire::usage::AnthropicUsageIn;

/// Anthropic message → OpenAI chat completion. Text blocks are joined into
/// `content`; `tool_use` blocks become `tool_calls` (names restored);
/// thinking becomes the non-standard `reasoning_content` with its signature
/// in `reasoning_signature`, which a client may echo back to keep thinking
/// replayable.
pub fn messages_to_chat(body: &Value, session: &Session) -> Result<Value, TranslateError> {
    let answer = AnthropicMessageIn::deserialize(body).map_err(upstream)?;
    serde_json::to_value(chat_completion(answer, session)?).map_err(upstream)
}

/// [`messages_to_chat`] from and to JSON text, without a tree of either.
pub fn messages_to_chat_json(body: &[u8], session: &Session) -> Result<Vec<u8>, TranslateError> {
    messages_to_chat_answer(body, session).map(|a| a.body)
}

/// [`messages_to_chat_json`], with the upstream's usage read on the way:
/// when the answer is an object its typed view could take, the counts of
/// its `usage` object (what [`crate::wire::usage::from_json_response`] reads
/// from the same answer).
pub fn messages_to_chat_answer(
    body: &[u8],
    session: &Session,
) -> Result<TranslatedAnswer, TranslateError> {
    let answer: AnthropicMessageIn = match from_body(body) {
        Ok(answer) => answer,
        Err(e) => {
            return from_tree(body, e, messages_to_chat, session).map(TranslatedAnswer::body_only);
        }
    };
    // A struct also deserializes from a JSON array; only objects carry usage.
    let usage = (body.trim_ascii_start().first() == Some(&b'{'))
        .then(|| answer.usage.as_ref().map(AnthropicUsageIn::usage))
        .flatten();
    let mut out = buffer_like(body);
    chat_completion(answer, session)?
        .write_json(&mut out)
        .map_err(upstream)?;
    Ok(TranslatedAnswer { body: out, usage })
}

/// `answer` serialized into a buffer sized for the answer it came from.
fn to_vec_like(body: &[u8], answer: &impl serde::Serialize) -> Result<Vec<u8>, TranslateError> {
    let mut out = buffer_like(body);
    serde_json::to_writer(&mut out, answer).map_err(upstream)?;
    Ok(out)
}

/// A buffer for the translation of `body`, sized for it (one allocation
/// instead of a growing one).
fn buffer_like(body: &[u8]) -> Vec<u8> {
    // A chat completion's own members take about 350 bytes, an Anthropic
    // message's about 150: room for them without growing.
    Vec::with_capacity(body.len() + body.len() / 4 + 384)
}

fn upstream(e: serde_json::Error) -> TranslateError {
    TranslateError::Upstream(e.to_string())
}

/// Valid JSON the typed views cannot take (a member named twice) is
/// translated from its tree, as before the views: the tree keeps the last.
fn from_tree(
    body: &[u8],
    e: serde_json::Error,
    translate: fn(&Value, &Session) -> Result<Value, TranslateError>,
    session: &Session,
) -> Result<Vec<u8>, TranslateError> {
    let tree: Value = serde_json::from_slice(body).map_err(|_| upstream(e))?;
    Ok(translate(&tree, session)?.to_string().into_bytes())
}

/// The client's name of a tool the upstream called (names shortened for the
/// upstream are restored).
fn client_tool_name<'a>(session: &'a Session, name: Option<Cow<'a, str>>) -> Cow<'a, str> {
    match name {
        Some(Cow::Borrowed(name)) => Cow::Borrowed(session.tool_names.to_client(name)),
        Some(Cow::Owned(name)) => Cow::Owned(session.tool_names.to_client(&name).to_owned()),
        None => Cow::Borrowed(""),
    }
}

fn chat_completion<'a>(
    answer: AnthropicMessageIn<'a>,
    session: &'a Session,
) -> Result<ChatCompletionOut<'a>, TranslateError> {
    let blocks = answer
        .content
        .ok_or_else(|| TranslateError::Upstream("Anthropic message without content".into()))?;
    let mut text = Cow::Borrowed("");
    let mut reasoning = String::new();
    let mut signature = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.kind.as_deref() {
            Some("text") => match b.text {
                // The rule: one text block, kept as it was read.
                Some(t) if text.is_empty() => text = t,
                Some(t) => text.to_mut().push_str(&t),
                None => {}
            },
            Some("thinking") => {
                reasoning.push_str(b.thinking.as_deref().unwrap_or_default());
                if let Some(s) = b.signature {
                    signature = s.into_owned();
                }
            }
            Some("tool_use") => {
                let arguments = match &b.input {
                    Some(input) => serde_json::to_string(input).map_err(upstream)?,
                    None => "{}".to_owned(),
                };
                calls.push(ToolCallOut {
                    function: FunctionOut {
                        arguments,
                        name: client_tool_name(session, b.name),
                    },
                    id: b.id.unwrap_or(Copied::NULL),
                    kind: "function",
                });
            }
            _ => {}
        }
    }
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    let (reasoning_content, reasoning_signature) = if reasoning.is_empty() {
        (None, None)
    } else {
        (
            Some(reasoning),
            (!signature.is_empty()).then_some(signature),
        )
    };
    let usage = answer.usage.map(|u| u.usage()).unwrap_or_default();
    Ok(ChatCompletionOut {
        choices: [ChatChoiceOut {
            finish_reason: finish_reason_from_anthropic(
                answer.stop_reason.as_deref().unwrap_or("end_turn"),
            ),
            index: 0,
            logprobs: (),
            message: ChatMessageOut {
                annotations: [],
                content,
                reasoning_content,
                reasoning_signature,
                refusal: (),
                role: "assistant",
                tool_calls: calls,
            },
        }],
        created: session.created,
        id: answer.id.unwrap_or(Copied::from("chatcmpl-switchboard")),
        model: answer.model.unwrap_or(Copied::NULL),
        object: "chat.completion",
        usage: OpenAiUsageOut::from(&usage),
    })
}

/// OpenAI chat completion → Anthropic message. `content` becomes one text
/// block; `tool_calls` become `tool_use` blocks (arguments parsed, `""` is
/// `{}`, names restored); `reasoning_content` becomes a thinking block with
/// an empty signature (it cannot be replayed to Anthropic).
pub fn chat_to_messages(body: &Value, session: &Session) -> Result<Value, TranslateError> {
    let answer = ChatCompletionIn::deserialize(body).map_err(upstream)?;
    serde_json::to_value(anthropic_message(answer, session)?).map_err(upstream)
}

/// [`chat_to_messages`] from and to JSON text, without a tree of either.
pub fn chat_to_messages_json(body: &[u8], session: &Session) -> Result<Vec<u8>, TranslateError> {
    let answer: ChatCompletionIn = match from_body(body) {
        Ok(answer) => answer,
        Err(e) => return from_tree(body, e, chat_to_messages, session),
    };
    to_vec_like(body, &anthropic_message(answer, session)?)
}

fn anthropic_message<'a>(
    answer: ChatCompletionIn<'a>,
    session: &'a Session,
) -> Result<AnthropicMessageOut<'a>, TranslateError> {
    let choice = answer
        .choices
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| TranslateError::Upstream("OpenAI completion without choices".into()))?;
    let mut content = Vec::new();
    let finish = choice.finish_reason;
    if let Some(message) = choice.message {
        if let Some(r) = message
            .reasoning_content
            .or(message.reasoning)
            .filter(|r| !r.is_empty())
        {
            content.push(AnthropicBlockOut::Thinking {
                signature: "",
                thinking: r,
                kind: "thinking",
            });
        }
        for t in [message.content, message.refusal].into_iter().flatten() {
            if !t.is_empty() {
                content.push(AnthropicBlockOut::Text {
                    text: t,
                    kind: "text",
                });
            }
        }
        for c in message.tool_calls {
            let (name, args) = match c.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            content.push(AnthropicBlockOut::ToolUse {
                id: c.id.unwrap_or(Copied::NULL),
                input: parse_arguments(args.as_deref().unwrap_or("")),
                name: client_tool_name(session, name),
                kind: "tool_use",
            });
        }
    }
    let usage = usage_from_openai(answer.usage.as_ref().unwrap_or(&Value::Null));
    Ok(AnthropicMessageOut {
        content,
        id: answer.id.unwrap_or(Copied::from("msg_switchboard")),
        model: answer.model.unwrap_or(Copied::NULL),
        role: "assistant",
        stop_reason: stop_reason_from_openai(finish.as_deref()),
        stop_sequence: (),
        kind: "message",
        usage: AnthropicUsageOut::from(&usage),
    })
}

/// Tool arguments as an object: `""` is `{}`; text that is not JSON is kept
/// as a string so nothing is lost.
pub fn parse_arguments(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(args).unwrap_or_else(|_| json!(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(answer: Value) -> Result<Value, TranslateError> {
        let bytes = messages_to_chat_json(answer.to_string().as_bytes(), &Session::default())?;
        let from_text: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            messages_to_chat(&answer, &Session::default())?,
            from_text,
            "the tree and text entry points agree"
        );
        Ok(from_text)
    }

    fn messages(answer: Value) -> Result<Value, TranslateError> {
        let bytes = chat_to_messages_json(answer.to_string().as_bytes(), &Session::default())?;
        let from_text: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(chat_to_messages(&answer, &Session::default())?, from_text);
        Ok(from_text)
    }

    /// Members of unexpected types read as absent, as the tree walk read them;
    /// ids and models are copied whatever they are, `null` included.
    #[test]
    fn anthropic_answers_are_read_leniently() {
        let out = chat(json!({
            "id": null, "model": 7,
            "content": [
                5, "x", {"type": "text", "text": 3}, {"type": "text", "text": "a\"bé"},
                {"type": "thinking", "thinking": ["no"], "signature": "s1"},
                {"type": "tool_use", "name": "t", "input": null},
                {"type": "tool_use", "id": "tu_1", "name": {"x": 1}}
            ],
            "stop_reason": 42, "usage": "none"
        }))
        .unwrap();
        assert_eq!(out["id"], Value::Null);
        assert_eq!(out["model"], 7);
        let m = &out["choices"][0]["message"];
        assert_eq!(m["content"], "a\"bé");
        assert_eq!(
            m.get("reasoning_content"),
            None,
            "empty thinking is dropped"
        );
        assert_eq!(m["tool_calls"][0]["function"]["arguments"], "null");
        assert_eq!(m["tool_calls"][0]["id"], Value::Null);
        assert_eq!(m["tool_calls"][1]["function"]["arguments"], "{}");
        assert_eq!(m["tool_calls"][1]["function"]["name"], "");
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(out["usage"]["total_tokens"], 0);
        assert_eq!(
            chat(json!({"id": "m"})).unwrap_err().to_string(),
            chat(json!({"content": {"type": "text"}}))
                .unwrap_err()
                .to_string(),
            "no content list: the same error"
        );
        assert!(chat(json!({"content": []})).unwrap()["id"] == "chatcmpl-switchboard");
        // Usage counts of odd types read as absent (`chat` compares both readings).
        let out = chat(json!({"content": [], "usage": {
            "input_tokens": "5", "output_tokens": 3, "cache_read_input_tokens": 2,
            "cache_creation_input_tokens": -1
        }}))
        .unwrap();
        assert_eq!(out["usage"]["completion_tokens"], 3);
        assert_eq!(out["usage"]["prompt_tokens"], 2);
    }

    #[test]
    fn openai_answers_are_read_leniently() {
        let out = messages(json!({
            "choices": [{
                "message": {
                    "reasoning": "why", "content": ["part"], "refusal": "no",
                    "tool_calls": [3, {"id": 9, "function": {"name": "f\"é", "arguments": ""}},
                                   {"function": "x"}]
                },
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2}
        }))
        .unwrap();
        assert_eq!(out["id"], "msg_switchboard");
        assert_eq!(out["model"], Value::Null);
        assert_eq!(
            out["content"],
            json!([
                {"type": "thinking", "thinking": "why", "signature": ""},
                {"type": "text", "text": "no"},
                {"type": "tool_use", "id": 9, "name": "f\"é", "input": {}},
                {"type": "tool_use", "id": null, "name": "", "input": {}}
            ])
        );
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(out["usage"]["input_tokens"], 10);
        assert!(messages(json!({"choices": []})).is_err());
        assert!(messages(json!({"choices": "x"})).is_err());
        assert!(messages_to_chat_json(b"[1]", &Session::default()).is_err());
        // A member named twice: read as a tree, the last one kept.
        let twice =
            br#"{"content":[{"type":"text","text":"a"}],"content":[{"type":"text","text":"b"}]}"#;
        let out: Value =
            serde_json::from_slice(&messages_to_chat_json(twice, &Session::default()).unwrap())
                .unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "b");
        let twice = br#"{"choices":[{"message":{"content":"a","content":"b"}}]}"#;
        let out: Value =
            serde_json::from_slice(&chat_to_messages_json(twice, &Session::default()).unwrap())
                .unwrap();
        assert_eq!(out["content"][0]["text"], "b");
        assert!(chat_to_messages_json(b"{", &Session::default()).is_err());
    }

    /// The usage a translated Anthropic answer reports on the way is the
    /// usage the accounting would read from the same body; where the
    /// translation does not read it (`None`), the caller reads the body.
    #[test]
    fn usage_read_by_the_translation_is_the_answers_usage() {
        use crate::wire::Dialect;
        use crate::wire::usage::from_json_response;
        let content = r#""content":[{"type":"text","text":"hi"}]"#;
        let bodies = [
            format!(r#"{{{content},"usage":{{"input_tokens":12,"output_tokens":7}}}}"#),
            format!(
                r#"{{{content},"usage":{{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":100,"cache_creation_input_tokens":20}}}}"#
            ),
            format!(r#"{{{content},"usage":{{"output_tokens":"x","input_tokens":-1}}}}"#),
            format!(r#"{{{content},"usage":"none"}}"#),
            format!(r#"{{{content}}}"#),
            format!(r#"{{{content},"usage":{{"input_tokens":1}},"usage":{{"input_tokens":2}}}}"#),
            format!(r#"{{{content},"status":1,"status":2,"usage":{{"input_tokens":5}}}}"#),
            format!(r#"  {{{content},"usage":{{"input_tokens":9,"output_tokens":1}}}}"#),
        ];
        let mut read = 0;
        for body in &bodies {
            let answer = messages_to_chat_answer(body.as_bytes(), &Session::default()).unwrap();
            let expected = from_json_response(Dialect::Anthropic, body.as_bytes()).map(|(u, _)| u);
            if let Some(usage) = answer.usage {
                read += 1;
                assert_eq!(Some(usage), expected, "{body}");
            }
            assert_eq!(
                answer.body,
                messages_to_chat_json(body.as_bytes(), &Session::default()).unwrap(),
                "{body}"
            );
        }
        assert_eq!(read, 5, "the answers with a usage object read on the way");
    }
}
