//! A structural scan of a complete JSON answer for the few top-level
//! members accounting reads (`usage`, `choices`, `stop_reason`, `object`,
//! `status`), without parsing the rest of it.
//!
//! [`super::usage::from_json_response`] parsed every answer with
//! `serde_json` to find them, skipping what it did not keep: about 6,000
//! instructions for a 250-byte chat completion, most of them spent on the
//! message it never reads. The scan follows only the structure — strings
//! (escapes stepped over, not decoded), nesting, member boundaries — and the
//! members it finds are then read on their own (counts from their digits,
//! anything else by `serde_json`; see [`super::usage`]).
//!
//! The scan is lenient where it does not look: a body whose structure is
//! sound but holds an invalid token outside the members read (a bad escape,
//! a bare word, a control character in a string) still yields the usage the
//! provider reported, where a full parse found none. The client receives the
//! body as it came either way, and the provider counted those tokens.
//! Whatever the scan cannot follow — not one object, brackets that do not
//! match, nesting deeper than [`MAX_DEPTH`], a key written with escapes,
//! text after the object — it leaves to the full parse ([`Unfollowed`]).

/// The scan cannot follow the body: parse it.
#[derive(Debug, PartialEq, Eq)]
pub struct Unfollowed;

/// Deepest nesting the scan follows (the full parse takes the rest).
pub const MAX_DEPTH: u32 = 64;

/// The raw JSON text of the top-level members accounting reads; of a
/// member named twice, the last (as a parsed tree keeps it).
#[derive(Debug, Default, PartialEq)]
pub struct Members<'a> {
    /// `usage`.
    pub usage: Option<&'a [u8]>,
    /// `finish_reason` of the first element of `choices` that is an object
    /// (OpenAI chat completions; how the typed view reads it).
    pub finish_reason: Option<&'a [u8]>,
    /// `stop_reason` (Anthropic).
    pub stop_reason: Option<&'a [u8]>,
    /// `object` (`"response"` for the OpenAI Responses API).
    pub object: Option<&'a [u8]>,
    /// `status` (OpenAI Responses API).
    pub status: Option<&'a [u8]>,
}

/// The members of the JSON object `body` (see the module docs). One pass:
/// each byte is looked at once.
pub fn top_members(body: &[u8]) -> Result<Members<'_>, Unfollowed> {
    let mut found = Members::default();
    let end = object_members(body, skip_space(body, 0), |key, at| {
        if key == b"choices" {
            let (end, finish_reason) = choices(body, at)?;
            found.finish_reason = finish_reason;
            return Some(end);
        }
        let end = value_end(body, at)?;
        let slot = match key {
            b"usage" => &mut found.usage,
            b"stop_reason" => &mut found.stop_reason,
            b"object" => &mut found.object,
            b"status" => &mut found.status,
            _ => return Some(end),
        };
        *slot = Some(&body[at..end]);
        Some(end)
    })
    .ok_or(Unfollowed)?;
    if skip_space(body, end) == body.len() {
        Ok(found)
    } else {
        Err(Unfollowed)
    }
}

/// The end of the `choices` value at `at` and the `finish_reason` of its
/// first element that is an object.
fn choices(b: &[u8], at: usize) -> Option<(usize, Option<&[u8]>)> {
    if b.get(at) != Some(&b'[') {
        return Some((value_end(b, at)?, None));
    }
    let mut finish_reason = None;
    let mut object_seen = false;
    let mut i = skip_space(b, at + 1);
    if b.get(i) == Some(&b']') {
        return Some((i + 1, None));
    }
    loop {
        let end = if b.get(i) == Some(&b'{') && !object_seen {
            object_seen = true;
            object_members(b, i, |key, at| {
                let end = value_end(b, at)?;
                if key == b"finish_reason" {
                    finish_reason = Some(&b[at..end]);
                }
                Some(end)
            })?
        } else {
            value_end(b, i)?
        };
        i = skip_space(b, end);
        match b.get(i)? {
            b',' => i = skip_space(b, i + 1),
            b']' => return Some((i + 1, finish_reason)),
            _ => return None,
        }
    }
}

/// Walks the members of the object that starts at `at`: `value` is called
/// with each key (without its quotes) and where its value starts, and
/// answers where the value ends ([`value_end`] for a value it does not
/// read). The index after the object; `None` when the scan cannot follow it.
pub fn object_members(
    b: &[u8],
    at: usize,
    mut value: impl FnMut(&[u8], usize) -> Option<usize>,
) -> Option<usize> {
    if b.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = skip_space(b, at + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = &b[i + 1..key_end - 1];
        if key.contains(&b'\\') {
            return None;
        }
        i = skip_space(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let end = value(key, skip_space(b, i + 1))?;
        i = skip_space(b, end);
        match b.get(i)? {
            b',' => i = skip_space(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Eight copies of `byte` in a word.
const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

/// Non-zero when one of the eight bytes of `word` is `byte`.
const fn holds(word: u64, byte: u8) -> u64 {
    let x = word ^ splat(byte);
    x.wrapping_sub(splat(1)) & !x & splat(0x80)
}

/// The index after the string whose opening quote is at `at`. Eight bytes
/// are tested at a time for a quote or a backslash.
fn string_end(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        while let Some(chunk) = b.get(i..i + 8) {
            let Ok(word) = <[u8; 8]>::try_from(chunk) else {
                break;
            };
            let found =
                holds(u64::from_le_bytes(word), b'"') | holds(u64::from_le_bytes(word), b'\\');
            if found != 0 {
                // The lowest flag is exact (only bytes above a match can be
                // flagged falsely): the first byte in the text's order.
                i += (found.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            // An escape: the character after the backslash does not end
            // the string (`\u` digits are plain characters).
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index after the value that starts at `at`.
pub fn value_end(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'"' => string_end(b, at),
        b'{' | b'[' => container_end(b, at),
        _ => {
            // A number or a literal: up to the next delimiter.
            let len = b[at..]
                .iter()
                .position(|&c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(b.len() - at);
            (len > 0).then_some(at + len)
        }
    }
}

/// What a byte is to [`container_end`].
#[derive(Clone, Copy, PartialEq)]
enum Class {
    Plain,
    Quote,
    Open,
    Close,
}

/// [`Class`] of every byte.
static CLASSES: [Class; 256] = {
    let mut classes = [Class::Plain; 256];
    classes[b'"' as usize] = Class::Quote;
    classes[b'{' as usize] = Class::Open;
    classes[b'[' as usize] = Class::Open;
    classes[b'}' as usize] = Class::Close;
    classes[b']' as usize] = Class::Close;
    classes
};

/// The index after the object or array that starts at `at`; each closing
/// bracket must match its opening one.
fn container_end(b: &[u8], at: usize) -> Option<usize> {
    // One bit per open container, 1 for an object.
    let mut open: u64 = 0;
    let mut depth = 0u32;
    let mut i = at;
    while let Some(&c) = b.get(i) {
        match CLASSES[usize::from(c)] {
            Class::Plain => {}
            Class::Quote => {
                i = string_end(b, i)?;
                continue;
            }
            Class::Open => {
                if depth == MAX_DEPTH {
                    return None;
                }
                open = (open << 1) | u64::from(c == b'{');
                depth += 1;
            }
            Class::Close => {
                if (open & 1 == 1) != (c == b'}') {
                    return None;
                }
                open >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
        }
        i += 1;
    }
    None
}

/// The index of the first byte from `at` that is not JSON whitespace.
fn skip_space(b: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(body: &str) -> Option<Members<'_>> {
        top_members(body.as_bytes()).ok()
    }

    fn text(raw: Option<&[u8]>) -> Option<&str> {
        raw.map(|r| std::str::from_utf8(r).unwrap())
    }

    #[test]
    fn finds_the_members_read_and_steps_over_the_rest() {
        let body = r#" {"id":"x\"}{[ long enough for words","choices":[{"message":{"content":"a \\\" ] } [ {"},"finish_reason":"stop"}],
            "usage" : {"prompt_tokens":3,"completion_tokens":4} ,"object":"chat.completion","n":-1.5e3,"t":true} "#;
        let m = top(body).unwrap();
        assert_eq!(
            text(m.usage),
            Some(r#"{"prompt_tokens":3,"completion_tokens":4}"#)
        );
        assert_eq!(text(m.object), Some(r#""chat.completion""#));
        assert_eq!(text(m.finish_reason), Some(r#""stop""#));
        assert_eq!(m.stop_reason, None);
    }

    #[test]
    fn a_member_named_twice_is_read_from_its_last_value() {
        let m = top(
            r#"{"usage":{"a":1},"choices":[{"finish_reason":"x"}],"usage":{"b":2},"choices":[]}"#,
        )
        .unwrap();
        assert_eq!(text(m.usage), Some(r#"{"b":2}"#));
        assert_eq!(m.finish_reason, None);
    }

    #[test]
    fn the_first_choice_that_is_an_object_gives_the_finish_reason() {
        let finish = |body: &'static str| top(body).map(|m| text(m.finish_reason));
        assert_eq!(
            finish(r#"{"choices":[1, "x", {"a":[],"finish_reason":7}, {"finish_reason":"b"}]}"#),
            Some(Some("7"))
        );
        assert_eq!(
            finish(r#"{"choices":[{"a":1},{"finish_reason":"b"}]}"#),
            Some(None)
        );
        assert_eq!(finish(r#"{"choices":[ ]}"#), Some(None));
        assert_eq!(finish(r#"{"choices":{"finish_reason":"b"}}"#), Some(None));
        assert_eq!(finish(r#"{"choices":[1,]}"#), None);
    }

    #[test]
    fn strings_end_at_their_closing_quote_whatever_their_length() {
        for n in 0..20 {
            let inner = "a".repeat(n);
            for s in [
                format!("\"{inner}\""),
                format!("\"{inner}\\\"{inner}\""),
                format!("\"\\\\{inner}\""),
            ] {
                let text = format!("{s}tail");
                assert_eq!(string_end(text.as_bytes(), 0), Some(s.len()), "{s}");
            }
            assert_eq!(string_end(format!("\"{inner}").as_bytes(), 0), None);
            assert_eq!(string_end(format!("\"{inner}\\\"").as_bytes(), 0), None);
        }
    }

    #[test]
    fn what_the_scan_cannot_follow_is_left_to_the_parser() {
        for body in [
            "",
            "[]",
            r#"{"usage":{"a":1}"#,
            r#"{"usage":{"a":1}} x"#,
            r#"{"usage":{"a":[1}}}"#,
            r#"{"usage":{"a":1]}"#,
            r#"{"us\u0061ge":{"a":1}}"#,
            r#"{"usage" {"a":1}}"#,
            r#"{"usage":{"a":1},}"#,
            r#"{"usage":"open}"#,
            r#"{"usage":}"#,
            r#"{usage:1}"#,
            r#"{"choices":[{"finish_reason":"x"]}"#,
        ] {
            assert_eq!(top(body), None, "{body}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(65), "]".repeat(65));
        assert_eq!(top(&deep), None);
        let fits = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(top(&fits), Some(Members::default()));
    }
}
