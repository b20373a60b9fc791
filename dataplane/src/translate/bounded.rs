//! Request translation in bounded memory (issue 12, item 1).
//!
//! A `serde_json::Value` tree costs 20–30× the JSON text it was parsed from
//! when the values are small (a one-character message is a map node,
//! several strings and their allocations), so translating a whole body as
//! one tree made a 30 MB body of tiny messages take 1.7 GB. Translators
//! therefore never parse a whole body into a tree:
//!
//! - the top-level members come from [`RequestJson`] as raw text;
//! - the large arrays (`messages`, `tools`, `input`) are walked element by
//!   element ([`for_each`]): each element is parsed on its own
//!   ([`parse_value`]), translated and written out, then dropped;
//! - the translated body is written as it is produced ([`ObjectWriter`]),
//!   into a buffer sized from the client's body; turns that merge several
//!   input messages collect their blocks as serialized bytes, not trees.
//!
//! Peak memory of a translation is then the client's body, the translated
//! body, and the tree of the single largest element. An element whose tree
//! would hold more than [`MAX_ELEMENT_VALUES`] JSON values (millions of
//! content blocks in one message) is refused with a 400 instead; real
//! conversations have a few hundred at most.
//!
//! Every parse error (malformed JSON, a lone UTF-16 surrogate, a number out
//! of range such as `1e999`, nesting deeper than 128 levels) is a
//! [`TranslateError::Invalid`], answered 400 in the client's dialect.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::TranslateError;

/// Most JSON values one array element may hold to be translated.
pub const MAX_ELEMENT_VALUES: usize = 100_000;

/// Counts the JSON values in `raw` (containers, scalars, keys), without
/// allocating: a fast upper-bound scan that skips string contents.
pub fn count_values(raw: &str) -> usize {
    let mut count = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut in_scalar = false;
    for &b in raw.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                in_scalar = false;
                count += 1;
            }
            b'{' | b'[' => {
                in_scalar = false;
                count += 1;
            }
            b',' | b':' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' => in_scalar = false,
            _ => {
                if !in_scalar {
                    in_scalar = true;
                    count += 1;
                }
            }
        }
    }
    count
}

/// Parses one element (or small member) into a tree, refusing one that
/// would be too large a tree; `path` names it in errors.
pub fn parse_value(raw: &str, path: &str) -> Result<Value, TranslateError> {
    if let Some(scalar) = plain_scalar(raw) {
        return Ok(scalar);
    }
    let n = count_values(raw);
    if n > MAX_ELEMENT_VALUES {
        return Err(TranslateError::invalid(
            path,
            format!(
                "holds {n} JSON values; at most {MAX_ELEMENT_VALUES} per element can be translated"
            ),
        ));
    }
    serde_json::from_str(raw)
        .map_err(|e| TranslateError::invalid(path, format!("invalid JSON: {e}")))
}

/// The value of `raw` when it is `true`, `false` or a whole number that
/// fits a `u64` (the members most requests have: `stream`, `max_tokens`),
/// read without a parser: the `Value` `serde_json` reads from the same text.
fn plain_scalar(raw: &str) -> Option<Value> {
    match raw {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        // Only digits, no leading zero: `u64`'s parser also takes a leading
        // `+` and zeros, which JSON does not.
        _ if raw.bytes().all(|b| b.is_ascii_digit())
            && (raw.len() == 1 || !raw.starts_with('0')) =>
        {
            raw.parse::<u64>().ok().map(Value::from)
        }
        _ => None,
    }
}

/// Calls `f` with the index and raw text of every element of the JSON array
/// `raw`, one at a time, without collecting them. `path` names the array
/// in errors ("must be an array").
pub fn for_each<'a, F>(raw: &'a str, path: &str, f: F) -> Result<(), TranslateError>
where
    F: FnMut(usize, &'a str) -> Result<(), TranslateError>,
{
    struct Elements<'p, F> {
        f: F,
        failed: &'p mut Option<TranslateError>,
    }

    impl<'de, F> Visitor<'de> for Elements<'_, F>
    where
        F: FnMut(usize, &'de str) -> Result<(), TranslateError>,
    {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array")
        }

        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while let Some(element) = seq.next_element::<&'de RawValue>()? {
                if let Err(e) = (self.f)(i, element.get()) {
                    *self.failed = Some(e);
                    return Err(de::Error::custom("stopped"));
                }
                i += 1;
            }
            Ok(())
        }
    }

    let mut failed = None;
    let mut de = serde_json::Deserializer::from_str(raw);
    let walked = de.deserialize_seq(Elements {
        f,
        failed: &mut failed,
    });
    if let Some(e) = failed {
        return Err(e);
    }
    walked.map_err(|e| {
        if e.is_data() {
            TranslateError::invalid(path, "must be an array")
        } else {
            TranslateError::invalid(path, format!("invalid JSON: {e}"))
        }
    })
}

/// Appends `v` as JSON to `out`.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Appends `s` as a JSON string to `out`.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Writes a JSON object member by member. Arrays can be opened and filled
/// element by element, so a translated body never exists as a tree.
pub struct ObjectWriter {
    out: Vec<u8>,
    members: usize,
    /// Elements in the array being written, when one is open.
    open: Option<usize>,
}

impl ObjectWriter {
    /// Starts an object in a buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity.max(64));
        out.push(b'{');
        Self {
            out,
            members: 0,
            open: None,
        }
    }

    fn key(&mut self, key: &str) {
        debug_assert!(self.open.is_none(), "member written inside an open array");
        if self.members > 0 {
            self.out.push(b',');
        }
        self.members += 1;
        write_str(&mut self.out, key);
        self.out.push(b':');
    }

    /// Writes `key: v`.
    pub fn value(&mut self, key: &str, v: &Value) {
        self.key(key);
        write_value(&mut self.out, v);
    }

    /// Writes `key: "s"`.
    pub fn string(&mut self, key: &str, s: &str) {
        self.key(key);
        write_str(&mut self.out, s);
    }

    /// Writes `key` with raw JSON text (already valid JSON).
    pub fn raw(&mut self, key: &str, raw: &str) {
        self.key(key);
        self.out.extend_from_slice(raw.as_bytes());
    }

    /// Writes `key: [elements of array]`, emptying `array`.
    pub fn array_bytes(&mut self, key: &str, array: &mut ArrayBytes) {
        self.key(key);
        array.write_array(&mut self.out);
    }

    /// Opens an array member.
    pub fn open_array(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'[');
        self.open = Some(0);
    }

    /// Appends an element to the open array.
    pub fn push(&mut self, v: &Value) {
        self.push_with(|out| write_value(out, v));
    }

    /// Appends an element written by `write` to the open array.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let n = self.open.get_or_insert(0);
        if *n > 0 {
            self.out.push(b',');
        }
        *n += 1;
        write(&mut self.out);
    }

    /// Closes the open array.
    pub fn close_array(&mut self) {
        self.out.push(b']');
        self.open = None;
    }

    /// Ends the object and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// The bytes an [`ArrayBytes`] reserves for its first element.
const FIRST_ELEMENT_CAPACITY: usize = 256;

/// A JSON array collected as serialized bytes (for turns that merge
/// several input messages).
#[derive(Default)]
pub struct ArrayBytes {
    buf: Vec<u8>,
    len: usize,
}

impl ArrayBytes {
    /// Appends an element.
    pub fn push(&mut self, v: &Value) {
        self.push_with(|buf| write_value(buf, v));
    }

    /// Appends an element written by `write`.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.len > 0 {
            self.buf.push(b',');
        } else if self.buf.capacity() == 0 {
            // A block is written in small pieces: starting from nothing, the
            // buffer was reallocated four or five times for a short one.
            self.buf.reserve(FIRST_ELEMENT_CAPACITY);
        }
        self.len += 1;
        write(&mut self.buf);
    }

    /// Appends every element of `other`, emptying it.
    pub fn append(&mut self, other: &mut ArrayBytes) {
        if other.len == 0 {
            return;
        }
        if self.len == 0 {
            // Nothing to keep: take the other's buffer instead of copying it.
            std::mem::swap(&mut self.buf, &mut other.buf);
            other.buf.clear();
            self.len = std::mem::take(&mut other.len);
            return;
        }
        self.buf.push(b',');
        self.buf.append(&mut other.buf);
        self.len += other.len;
        other.len = 0;
    }

    /// How many elements it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True without elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `[elements]` into `out` and empties itself.
    pub fn write_array(&mut self, out: &mut Vec<u8>) {
        out.push(b'[');
        out.append(&mut self.buf);
        out.push(b']');
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_read_as_serde_json_reads_them() {
        for raw in [
            "true",
            "false",
            "0",
            "7",
            "256",
            "18446744073709551615",
            "18446744073709551616",
            "01",
            "+1",
            "-1",
            "1.0",
            "1e3",
            "",
            "null",
            "\"1\"",
            "tru",
        ] {
            assert_eq!(
                parse_value(raw, "x").ok(),
                serde_json::from_str::<Value>(raw).ok(),
                "{raw}"
            );
        }
        assert_eq!(plain_scalar("256"), Some(Value::from(256u64)));
        assert_eq!(plain_scalar("01"), None);
        assert_eq!(plain_scalar(""), None);
    }

    #[test]
    fn counts_values_without_looking_into_strings() {
        assert_eq!(count_values(r#"{"a":"x,y:[{"}"#), 3);
        assert_eq!(count_values(r#"[1, 2.5, true, null, "s\"]"]"#), 6);
        assert_eq!(count_values("{}"), 1);
        let many = format!("[{}]", vec!["{}"; 1000].join(","));
        assert_eq!(count_values(&many), 1001);
    }

    #[test]
    fn elements_are_walked_one_by_one_and_errors_stop_the_walk() {
        let mut seen = Vec::new();
        for_each(r#"[1, {"a":[2]}, "x"]"#, "m", |i, raw| {
            seen.push((i, raw.to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                (0, "1".into()),
                (1, r#"{"a":[2]}"#.into()),
                (2, r#""x""#.into())
            ]
        );
        let stopped = for_each("[1,2,3]", "m", |i, _| {
            if i == 1 {
                Err(TranslateError::invalid("m[1]", "no"))
            } else {
                Ok(())
            }
        });
        assert_eq!(stopped, Err(TranslateError::invalid("m[1]", "no")));
        assert_eq!(
            for_each(r#"{"a":1}"#, "messages", |_, _| Ok(())),
            Err(TranslateError::invalid("messages", "must be an array"))
        );
    }

    #[test]
    fn hostile_values_are_invalid_requests() {
        for bad in [
            r#""\ud800""#,
            "1e999",
            &format!("{}1{}", "[".repeat(200), "]".repeat(200)),
        ] {
            let e = parse_value(bad, "messages[0]").unwrap_err();
            assert!(matches!(e, TranslateError::Invalid { .. }), "{bad}: {e:?}");
        }
        let wide = format!("[{}]", vec!["0"; MAX_ELEMENT_VALUES + 1].join(","));
        assert!(
            parse_value(&wide, "x")
                .unwrap_err()
                .to_string()
                .contains("JSON values")
        );
    }

    #[test]
    fn the_writer_builds_objects_with_streamed_arrays() {
        let mut w = ObjectWriter::with_capacity(0);
        w.value("model", &Value::from("m"));
        w.open_array("messages");
        w.push(&serde_json::json!({"role": "user"}));
        w.push_with(|out| out.extend_from_slice(b"2"));
        w.close_array();
        w.raw("stream", "true");
        let mut blocks = ArrayBytes::default();
        blocks.push(&Value::from(1));
        let mut more = ArrayBytes::default();
        more.push(&Value::from(2));
        blocks.append(&mut more);
        w.open_array("empty");
        w.close_array();
        let v: Value = serde_json::from_slice(&w.finish()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"m","messages":[{"role":"user"},2],"stream":true,"empty":[]})
        );
        let mut out = Vec::new();
        blocks.write_array(&mut out);
        assert_eq!(out, b"[1,2]");
    }
}
