//! Continuing a stream that died after part of its answer reached the
//! client (issue 12, item 13; the route's `retry.streamContinuation`).
//!
//! When a stream breaks or stalls midway and another candidate is left, the
//! answer is continued from that candidate instead of ending with an error:
//!
//! - **prefill** (candidates that accept an assistant prefill: Anthropic
//!   Messages): the request is sent again with the text the client already
//!   has as a trailing assistant message, and the new stream continues it;
//! - **restart** (`Auto` only; any other candidate): the request is sent
//!   again unchanged, and the new answer is passed on only once it has
//!   reproduced, character for character, the text already sent; it goes
//!   on from there. If it says anything else first, or ends before, the
//!   stream ends with the in-band error as before.
//!
//! What is never done: replay signed thinking or encrypted reasoning to any
//! provider (the prefill carries text only; thinking is turned off for a
//! prefill request, and thinking in a continuation is not shown), continue
//! an answer that had already started a tool call, or show a spliced answer
//! that does not match what was sent. Responses API clients are not
//! continued (their stream ends with the in-band error). [`sent::Sent`]
//! follows what the client received; [`splice::Splicer`] joins the new
//! stream to it.

pub mod sent;
pub mod splice;

use bytes::Bytes;
use serde::Deserialize;

use crate::body::RequestJson;
use crate::providers::Prepared;
use crate::runtime::BackendRuntime;
use crate::translate::bounded::for_each;

/// What a continuation must extend.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The answer text the client has (all text blocks, in order).
    pub text: String,
    /// Restarting is allowed (route setting `Auto`).
    pub allow_restart: bool,
}

/// How a continuation stream joins what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// The candidate continues a prefill of the sent text; `trimmed` is the
    /// trailing whitespace left out of the prefill (providers refuse it), to
    /// be dropped once from the start of the continuation.
    Prefill {
        /// Whitespace cut from the end of the prefill.
        trimmed: String,
    },
    /// The candidate answers from the start; the sent text must be matched
    /// and dropped first.
    Restart,
}

impl Strategy {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Strategy::Prefill { .. } => "prefill",
            Strategy::Restart => "restart",
        }
    }
}

/// The continuation request for one candidate, or `None` when this
/// candidate cannot continue the stream.
pub fn for_candidate(
    plan: &Plan,
    backend: &BackendRuntime,
    prepared: Prepared,
) -> Option<(Prepared, Strategy)> {
    if backend.provider.accepts_prefill(&prepared)
        && let Some((body, trimmed)) = with_prefill(&prepared.body, &plan.text)
    {
        return Some((Prepared { body, ..prepared }, Strategy::Prefill { trimmed }));
    }
    plan.allow_restart.then_some((prepared, Strategy::Restart))
}

#[derive(Deserialize)]
struct RoleOnly {
    #[serde(default)]
    role: Option<String>,
}

/// An Anthropic Messages body with `text` as a trailing assistant message
/// (without its trailing whitespace, which is returned), and thinking off;
/// `None` when the request already ends with an assistant turn (its own
/// prefill) or is not a Messages body.
fn with_prefill(body: &Bytes, text: &str) -> Option<(Bytes, String)> {
    let json = RequestJson::parse(body.clone()).ok()?;
    let messages = json.raw("messages")?;
    let mut last_role = None;
    for_each(messages, "messages", |_, raw| {
        last_role = serde_json::from_str::<RoleOnly>(raw)
            .ok()
            .and_then(|r| r.role);
        Ok(())
    })
    .ok()?;
    if last_role.as_deref() == Some("assistant") {
        return None;
    }
    let kept = text.trim_end();
    let trimmed = text[kept.len()..].to_string();
    let json = if kept.is_empty() {
        json
    } else {
        let block =
            serde_json::json!({"role": "assistant", "content": [{"type": "text", "text": kept}]});
        let open = messages.trim_end().strip_suffix(']')?.trim_end();
        let joined = if open.ends_with('[') {
            format!("{open}{block}]")
        } else {
            format!("{open},{block}]")
        };
        RequestJson::parse(json.with_raw("messages", &joined)).ok()?
    };
    // A prefill with thinking on would need the signed thinking block first;
    // thinking is never replayed, so the continuation runs without it.
    let body = if !kept.is_empty() && json.raw("thinking").is_some() {
        json.without("thinking")
    } else {
        json.bytes().clone()
    };
    Some((body, trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefill_is_the_sent_text_as_a_last_assistant_turn() {
        let body = Bytes::from_static(
            br#"{"model":"m","max_tokens":9,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"}]}"#,
        );
        let (out, trimmed) = with_prefill(&body, "Hello wor  \n").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(trimmed, "  \n");
        assert_eq!(v["messages"][1]["role"], "assistant");
        assert_eq!(v["messages"][1]["content"][0]["text"], "Hello wor");
        assert!(v.get("thinking").is_none(), "{v}");
        // The client's own prefill is not extended.
        let own = Bytes::from_static(
            br#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"{"}]}"#,
        );
        assert!(with_prefill(&own, "x").is_none());
        // Nothing sent yet: the request goes again unchanged (a plain retry).
        let (same, _) = with_prefill(&body, "").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&same).unwrap();
        assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    }
}
