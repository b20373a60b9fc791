//! Cheap access to the top level of a client's JSON request body.
//!
//! Routing needs only a few top-level fields (`model`, `stream`,
//! `stream_options`), while coding agents send bodies of 100 KiB and more.
//! [`RequestJson`] parses the body once into its top-level members, keeping
//! each value as raw JSON text, so nested messages are validated but never
//! turned into a tree. Rewriting a member (the provider's model id) re-emits
//! the other members byte for byte, so unknown fields always survive.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Why a request body is not an acceptable JSON object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not valid JSON, or not an object.
    #[error("request body is not a valid JSON object: {0}")]
    Malformed(String),
    /// A required member is absent.
    #[error("request body is missing the required field `{0}`")]
    Missing(&'static str),
    /// A member has the wrong JSON type.
    #[error("request field `{field}` must be {expected}")]
    WrongType {
        /// The member's name.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

/// The top-level members of a JSON object, in document order, with values
/// kept as raw JSON text borrowed from the body.
pub struct RequestJson {
    body: Bytes,
    /// (key, value range in `body`), in document order.
    members: Vec<(Key, Range<usize>)>,
}

/// A member's key: where it is in the body, or, when it is written with
/// escapes there, its unescaped text (the only case that allocates).
enum Key {
    InBody(Range<usize>),
    Unescaped(Box<str>),
}

impl fmt::Debug for RequestJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestJson")
            .field("bytes", &self.body.len())
            .field("members", &self.members.len())
            .finish()
    }
}

impl RequestJson {
    /// Parses `body`, which must be one JSON object.
    pub fn parse(body: Bytes) -> Result<Self, BodyError> {
        let text = std::str::from_utf8(&body)
            .map_err(|e| BodyError::Malformed(format!("invalid UTF-8: {e}")))?;
        let mut de = serde_json::Deserializer::from_str(text);
        let members = de
            .deserialize_map(MembersVisitor {
                base: text.as_ptr() as usize,
            })
            .map_err(|e| BodyError::Malformed(e.to_string()))?;
        de.end().map_err(|e| BodyError::Malformed(e.to_string()))?;
        Ok(Self { body, members })
    }

    /// The text of `key`.
    fn key<'a>(&'a self, key: &'a Key) -> &'a str {
        match key {
            // A range of the validated body that a borrowed `str` came from.
            Key::InBody(r) => std::str::from_utf8(&self.body[r.clone()]).unwrap_or_default(),
            Key::Unescaped(k) => k,
        }
    }

    /// Whether `key` is `name`, compared as bytes (a key in the body is a
    /// range of the validated text).
    fn key_is(&self, key: &Key, name: &str) -> bool {
        match key {
            Key::InBody(r) => &self.body[r.clone()] == name.as_bytes(),
            Key::Unescaped(k) => &**k == name,
        }
    }

    /// The original body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The top-level members as (key, raw JSON text), in document order; a
    /// key given twice appears once, with its last value.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str)> {
        // The body was validated as a whole when it was parsed; checked
        // once more as a whole, its members are slices of that text (one
        // pass instead of one per key and value).
        let text = std::str::from_utf8(&self.body).unwrap_or_default();
        self.members
            .iter()
            .enumerate()
            .filter_map(move |(i, (k, r))| {
                let key = match k {
                    Key::InBody(r) => text.get(r.clone())?,
                    Key::Unescaped(k) => k,
                };
                let later = &self.members[i + 1..];
                if later.iter().any(|(later, _)| self.key_is(later, key)) {
                    return None;
                }
                Some((key, text.get(r.clone())?))
            })
    }

    /// Parses a value that must be an object (tests and tools).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, BodyError> {
        Self::parse(Bytes::from(v.to_string()))
    }

    /// The raw JSON text of a top-level member, if present. The last
    /// occurrence wins for duplicate keys, as in most JSON parsers.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| self.key_is(k, key))
            .and_then(|(_, r)| std::str::from_utf8(&self.body[r.clone()]).ok())
    }

    /// A required string member.
    pub fn required_str(&self, key: &'static str) -> Result<String, BodyError> {
        match self.raw(key) {
            None | Some("null") => Err(BodyError::Missing(key)),
            Some(raw) => serde_json::from_str::<String>(raw).map_err(|_| BodyError::WrongType {
                field: key,
                expected: "a string",
            }),
        }
    }

    /// An optional boolean member (`null` counts as absent).
    pub fn optional_bool(&self, key: &'static str) -> Result<Option<bool>, BodyError> {
        match self.raw(key) {
            None | Some("null") => Ok(None),
            Some(raw) => {
                serde_json::from_str::<bool>(raw)
                    .map(Some)
                    .map_err(|_| BodyError::WrongType {
                        field: key,
                        expected: "a boolean",
                    })
            }
        }
    }

    /// Decodes a member into any deserializable type (absent or `null` gives `None`).
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, BodyError> {
        match self.raw(key) {
            None | Some("null") => Ok(None),
            Some(raw) => serde_json::from_str(raw)
                .map(Some)
                .map_err(|_| BodyError::WrongType {
                    field: key,
                    expected,
                }),
        }
    }

    /// Re-emits the object with `key` set to the JSON string `value`
    /// (replaced in place when present, appended otherwise). Every other
    /// member is copied byte for byte. Returns the original bytes untouched
    /// when the value is already equal.
    pub fn with_string(&self, key: &str, value: &str) -> Bytes {
        // The rule: the member holds `value` already, written plainly.
        if self.raw(key).is_some_and(|raw| is_plain_string(raw, value)) {
            return self.body.clone();
        }
        let encoded = serde_json::to_string(value).unwrap_or_else(|_| String::from("\"\""));
        if self.raw(key) == Some(encoded.as_str()) {
            return self.body.clone();
        }
        self.with_raw(key, &encoded)
    }

    /// Re-emits the object without `key`; every other member byte for byte.
    pub fn without(&self, key: &str) -> Bytes {
        let mut out = Vec::with_capacity(self.body.len());
        out.push(b'{');
        let mut first = true;
        for (k, range) in &self.members {
            let k = self.key(k);
            if k != key {
                push_member(&mut out, &mut first, k, &self.body[range.clone()]);
            }
        }
        out.push(b'}');
        Bytes::from(out)
    }

    /// Re-emits the object with `key` set to the raw JSON `value`.
    pub fn with_raw(&self, key: &str, value: &str) -> Bytes {
        let mut out = Vec::with_capacity(self.body.len() + value.len() + key.len() + 8);
        out.push(b'{');
        let mut first = true;
        let mut replaced = false;
        for (k, range) in &self.members {
            let k = self.key(k);
            if k == key {
                if replaced {
                    continue;
                }
                replaced = true;
                push_member(&mut out, &mut first, k, value.as_bytes());
            } else {
                push_member(&mut out, &mut first, k, &self.body[range.clone()]);
            }
        }
        if !replaced {
            push_member(&mut out, &mut first, key, value.as_bytes());
        }
        out.push(b'}');
        Bytes::from(out)
    }
}

/// Whether `raw` is the JSON string of `value` written without escapes
/// (then it is what `serde_json` writes for `value`).
fn is_plain_string(raw: &str, value: &str) -> bool {
    raw.len() == value.len() + 2
        && raw.starts_with('"')
        && raw.ends_with('"')
        && &raw[1..raw.len() - 1] == value
        && !value.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

fn push_member(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &[u8]) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    // Keys were unescaped on parse; re-escape them (a `str` always serializes).
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    out.extend_from_slice(value);
}

/// Reads the members of the body that starts at address `base`.
struct MembersVisitor {
    base: usize,
}

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Key, Range<usize>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let span = |text: &str| {
            let start = text.as_ptr() as usize - self.base;
            start..start + text.len()
        };
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            let key = match key {
                Cow::Borrowed(k) => Key::InBody(span(k)),
                Cow::Owned(k) => Key::Unescaped(k.into_boxed_str()),
            };
            members.push((key, span(value.get())));
        }
        Ok(members)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom("expected a JSON object, found an array"))
    }
}

/// A key, borrowed from the body unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RequestJson {
        RequestJson::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    #[test]
    fn reads_top_level_members_without_touching_nested_ones() {
        let r = parse(
            r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi \"x\""}],"x_unknown":{"a":1}}"#,
        );
        assert_eq!(r.required_str("model").unwrap(), "gpt-4o");
        assert_eq!(r.optional_bool("stream").unwrap(), Some(true));
        assert_eq!(r.raw("x_unknown"), Some(r#"{"a":1}"#));
    }

    #[test]
    fn rewriting_the_model_keeps_every_other_byte() {
        let r = parse(
            r#"{"model":"alias","messages":[{"role":"user","content":"ü \n"}],"metadata":{"user_id":"u"}}"#,
        );
        let out = r.with_string("model", "claude-sonnet-4-20250514");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"claude-sonnet-4-20250514","messages":[{"role":"user","content":"ü \n"}],"metadata":{"user_id":"u"}}"#
        );
        let unchanged = r.with_string("model", "alias");
        assert_eq!(unchanged, r.bytes().clone());
        // Written with an escape: rewritten plainly, as before.
        let escaped = parse(r#"{"model":"al\u0069as","n":1}"#);
        assert_eq!(
            std::str::from_utf8(&escaped.with_string("model", "alias")).unwrap(),
            r#"{"model":"alias","n":1}"#
        );
        // A value that needs escapes, already there: unchanged.
        let quoted = parse(r#"{"model":"a\"b"}"#);
        assert_eq!(quoted.with_string("model", "a\"b"), quoted.bytes().clone());
    }

    #[test]
    fn appends_a_missing_member_and_escapes_keys() {
        let r = parse(r#"{"a\"b":1}"#);
        let out = r.with_raw("stream_options", r#"{"include_usage":true}"#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a\"b"], 1);
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn escaped_keys_are_the_same_members_as_plain_ones() {
        let r = parse(r#"{"model":"a","mod\u0065l":"b","str\u00e9am":true,"x":1}"#);
        assert_eq!(r.required_str("model").unwrap(), "b", "the last one wins");
        assert_eq!(r.raw("stréam"), Some("true"));
        let members: Vec<_> = r.members().collect();
        assert_eq!(
            members,
            [("model", r#""b""#), ("stréam", "true"), ("x", "1")]
        );
        let out = r.without("x");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"a","model":"b","stréam":true}"#
        );
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        for bad in ["", "[]", "1", "{", r#"{"model":"x"} trailing"#, "{\"a\":}"] {
            assert!(
                matches!(
                    RequestJson::parse(Bytes::copy_from_slice(bad.as_bytes())),
                    Err(BodyError::Malformed(_))
                ),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn reports_missing_and_mistyped_fields() {
        let r = parse(r#"{"model":7,"stream":"yes"}"#);
        assert_eq!(
            r.required_str("model"),
            Err(BodyError::WrongType {
                field: "model",
                expected: "a string"
            })
        );
        assert!(matches!(
            r.optional_bool("stream"),
            Err(BodyError::WrongType { .. })
        ));
        assert_eq!(
            parse("{}").required_str("model"),
            Err(BodyError::Missing("model"))
        );
        assert_eq!(
            parse(r#"{"model":null}"#).required_str("model"),
            Err(BodyError::Missing("model"))
        );
    }
}
