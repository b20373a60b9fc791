//! Tool-call ids between Gemini and the clients, and the `thoughtSignature`
//! they carry (`protocols.md` §5.5).
//!
//! Gemini's `functionCall` parts have an optional `id` (often absent) and,
//! on thinking models, a `thoughtSignature` that must come back with the
//! call in the next request (Gemini 3 refuses a function call without it;
//! Gemini 2.5 reasons worse without it). Clients of every format echo a
//! tool call's id and drop unknown fields, so the signature travels inside
//! the id the client sees:
//!
//! `<base>__thought__<signature in base64url, unpadded>`
//!
//! where `<base>` is Gemini's id or a stable synthesised one
//! (`toolu_gem_<12 hex of sha256(responseId, index, name, args)>`). The id
//! matches Anthropic's `^[a-zA-Z0-9_-]+$`, so it is valid for every client.
//! On the way back [`decode`] splits it again. Chat Completions and
//! Responses requests reach Gemini through the Anthropic translation, which
//! hashes ids longer than 256 characters; [`extract`] therefore replaces
//! every signed id of such a request by its base first and keeps the
//! signatures aside ([`Signatures`]), by base.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Separates an id's base from its signature.
pub const THOUGHT_MARKER: &str = "__thought__";
/// Prefix of the ids the gateway synthesises.
pub const ID_PREFIX: &str = "toolu_gem_";

/// Separates an id's base from a signature that is not canonical base64
/// (carried as the base64url of its text).
pub const RAW_MARKER: &str = "__thoughtraw__";

/// The client's id for a call: `base`, with `signature` (standard base64,
/// as Gemini sends it) appended when there is one. A signature that is not
/// canonical base64 is carried as the base64url of its text instead, so
/// every signature comes back exactly as it was received.
pub fn encode(base: &str, signature: Option<&str>) -> String {
    match signature.filter(|s| !s.is_empty()) {
        None => base.to_string(),
        Some(sig) => match STANDARD.decode(sig) {
            Ok(bytes) if STANDARD.encode(&bytes) == sig => {
                format!("{base}{THOUGHT_MARKER}{}", URL_SAFE_NO_PAD.encode(bytes))
            }
            _ => format!("{base}{RAW_MARKER}{}", URL_SAFE_NO_PAD.encode(sig)),
        },
    }
}

/// The base and the signature (standard base64) of a client's id.
pub fn decode(id: &str) -> (&str, Option<String>) {
    if let Some((base, raw)) = id.split_once(RAW_MARKER) {
        return match URL_SAFE_NO_PAD.decode(raw).ok().map(String::from_utf8) {
            Some(Ok(sig)) if !sig.is_empty() => (base, Some(sig)),
            _ => (id, None),
        };
    }
    match id.split_once(THOUGHT_MARKER) {
        Some((base, sig)) => match URL_SAFE_NO_PAD.decode(sig) {
            Ok(bytes) if !bytes.is_empty() => (base, Some(STANDARD.encode(bytes))),
            _ => (id, None),
        },
        None => (id, None),
    }
}

/// A stable id for a call Gemini gave none.
pub fn synthesize(response_id: &str, index: usize, name: &str, args: &Value) -> String {
    let mut h = Sha256::new();
    for part in [response_id, &index.to_string(), name, &args.to_string()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("{ID_PREFIX}{}", hex::encode(&h.finalize()[..6]))
}

/// Signatures taken out of a client's request, by the base of their id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signatures(BTreeMap<String, String>);

impl Signatures {
    /// The signature of the call whose (decoded) base id is `base`.
    pub fn get(&self, base: &str) -> Option<&str> {
        self.0.get(base).map(String::as_str)
    }

    /// Replaces a signed id by its base, remembering the signature.
    fn take(&mut self, id: &mut Value) {
        let Some(text) = id.as_str() else { return };
        if let (base, Some(sig)) = decode(text) {
            let base = base.to_string();
            self.0.insert(base.clone(), sig);
            *id = Value::String(base);
        }
    }
}

/// Replaces the signed ids of a Chat Completions (`messages[].tool_calls[].id`,
/// `messages[].tool_call_id`) or Responses (`input[].call_id`) request by
/// their bases and returns the signatures. Anthropic Messages requests are
/// left alone (their ids reach the Gemini translation unchanged).
pub fn extract(body: &mut Value) -> Signatures {
    let mut sigs = Signatures::default();
    if let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) {
        for m in messages {
            if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
                for c in calls {
                    if let Some(id) = c.get_mut("id") {
                        sigs.take(id);
                    }
                }
            }
            if let Some(id) = m.get_mut("tool_call_id") {
                sigs.take(id);
            }
        }
    }
    if let Some(items) = body.get_mut("input").and_then(Value::as_array_mut) {
        for item in items {
            if let Some(id) = item.get_mut("call_id") {
                sigs.take(id);
            }
        }
    }
    sigs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn signatures_round_trip_inside_valid_ids() {
        let sig = "CiQBjz1rX+/abQ==";
        let id = encode("toolu_gem_0123456789ab", Some(sig));
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{id}"
        );
        assert_eq!(
            decode(&id),
            ("toolu_gem_0123456789ab", Some(sig.to_string()))
        );
        assert_eq!(encode("call_1", None), "call_1");
        assert_eq!(encode("call_1", Some("")), "call_1");
        assert_eq!(decode("call_1"), ("call_1", None));
        assert_eq!(
            decode("a__thought__!!"),
            ("a__thought__!!", None),
            "not ours: unchanged"
        );
        for odd in ["skip_thought_signature_validator", "CiQBjz1rX+/ab=="] {
            let id = encode("b", Some(odd));
            assert!(id.starts_with("b__thoughtraw__"), "{id}");
            assert_eq!(decode(&id), ("b", Some(odd.to_string())));
        }
    }

    #[test]
    fn synthesized_ids_are_stable_and_distinct() {
        let a = synthesize("resp-1", 0, "get_weather", &json!({"city": "Paris"}));
        assert_eq!(
            a,
            synthesize("resp-1", 0, "get_weather", &json!({"city": "Paris"}))
        );
        assert_ne!(
            a,
            synthesize("resp-1", 1, "get_weather", &json!({"city": "Paris"}))
        );
        assert_ne!(
            a,
            synthesize("resp-2", 0, "get_weather", &json!({"city": "Paris"}))
        );
        assert!(a.starts_with(ID_PREFIX) && a.len() == ID_PREFIX.len() + 12);
    }

    #[test]
    fn chat_and_responses_requests_give_up_their_signatures() {
        let id = encode("toolu_gem_aaaaaaaaaaaa", Some(&"QUJD".repeat(200)));
        let mut chat = json!({"messages": [
            {"role": "assistant", "tool_calls": [{"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "ok"}
        ]});
        let sigs = extract(&mut chat);
        assert_eq!(
            chat["messages"][0]["tool_calls"][0]["id"],
            "toolu_gem_aaaaaaaaaaaa"
        );
        assert_eq!(
            chat["messages"][1]["tool_call_id"],
            "toolu_gem_aaaaaaaaaaaa"
        );
        assert_eq!(
            sigs.get("toolu_gem_aaaaaaaaaaaa"),
            Some("QUJD".repeat(200).as_str())
        );
        let mut responses = json!({"input": [
            {"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": id, "output": "ok"}
        ]});
        let sigs = extract(&mut responses);
        assert_eq!(responses["input"][1]["call_id"], "toolu_gem_aaaaaaaaaaaa");
        assert!(sigs.get("toolu_gem_aaaaaaaaaaaa").is_some());
    }
}
