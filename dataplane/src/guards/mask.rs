//! Masking of sensitive text (emails, phone numbers, configured patterns)
//! in response text and JSON bodies.

use std::ops::Range;

use regex::{NoExpand, Regex};
use serde_json::Value;
use switchboard_proto as pb;

/// Email addresses.
const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}";
/// Phone numbers: international (`+44 20 7946 0958`) or North-American
/// style with separators (`555-123-4567`, `(555) 123-4567`). Bare digit
/// runs (ids, timestamps) and dates are left alone.
const PHONE: &str = r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\b|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}\b|\b\d{3}[ .-]\d{3}[ .-]\d{4}\b";

/// Default replacement text.
pub const DEFAULT_REPLACEMENT: &str = "[REDACTED]";

/// JSON keys whose string values are structure, not text, and are never masked.
const STRUCTURAL_KEYS: &[&str] = &[
    "id",
    "object",
    "model",
    "type",
    "role",
    "finish_reason",
    "stop_reason",
    "stop_sequence",
    "system_fingerprint",
    "name",
    "tool_use_id",
    "service_tier",
    "item_id",
    "call_id",
    "status",
];

/// The masking rules of a route.
#[derive(Debug, Clone)]
pub struct Masker {
    patterns: Vec<Regex>,
    replacement: String,
}

impl Masker {
    /// Builds the masker; errors name the invalid pattern.
    pub fn new(m: &pb::Masking) -> Result<Self, String> {
        let mut patterns = Vec::new();
        if m.emails {
            patterns.push(Regex::new(EMAIL).map_err(|e| e.to_string())?);
        }
        if m.phone_numbers {
            patterns.push(Regex::new(PHONE).map_err(|e| e.to_string())?);
        }
        for (i, p) in m.patterns.iter().enumerate() {
            patterns
                .push(Regex::new(p).map_err(|e| format!("spec.guards.mask.patterns[{i}]: {e}"))?);
        }
        let replacement = if m.replacement.is_empty() {
            DEFAULT_REPLACEMENT.to_string()
        } else {
            m.replacement.clone()
        };
        Ok(Self {
            patterns,
            replacement,
        })
    }

    /// True when nothing is masked.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every match replaced.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for p in &self.patterns {
            if p.is_match(&out) {
                out = p
                    .replace_all(&out, NoExpand(&self.replacement))
                    .into_owned();
            }
        }
        out
    }

    /// Byte ranges of every match in `text`.
    pub fn matches(&self, text: &str) -> Vec<Range<usize>> {
        self.patterns
            .iter()
            .flat_map(|p| p.find_iter(text).map(|m| m.range()))
            .collect()
    }

    /// Masks every text string of a JSON document in place (structural
    /// fields such as `id`, `model` and `role` are left alone).
    pub fn mask_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let masked = self.mask(s);
                if masked != *s {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.mask_json(i)),
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if !STRUCTURAL_KEYS.contains(&k.as_str()) {
                        self.mask_json(v);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn masker(patterns: &[&str]) -> Masker {
        Masker::new(&pb::Masking {
            emails: true,
            phone_numbers: true,
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            replacement: String::new(),
        })
        .unwrap()
    }

    #[test]
    fn masks_emails_phones_and_patterns() {
        let m = masker(&[r"sk-[A-Za-z0-9]{8,}"]);
        assert_eq!(
            m.mask("mail jane.doe+x@example.co.uk now"),
            "mail [REDACTED] now"
        );
        assert_eq!(
            m.mask("call 555-123-4567 or (555) 123-4567"),
            "call [REDACTED] or [REDACTED]"
        );
        assert_eq!(m.mask("intl +44 20 7946 0958."), "intl [REDACTED].");
        assert_eq!(m.mask("key sk-abcdefgh1234"), "key [REDACTED]");
    }

    #[test]
    fn leaves_dates_ids_and_timestamps_alone() {
        let m = masker(&[]);
        for s in [
            "2024-11-30 12:00:00",
            "id 1764460800",
            "v1.2.3",
            "port 8080",
            "a@b",
        ] {
            assert_eq!(m.mask(s), s);
        }
    }

    #[test]
    fn masks_json_text_but_not_structure() {
        let m = masker(&[]);
        let mut v = json!({"id": "a@b.example.com", "model": "m", "choices": [{"message": {"role": "assistant", "content": "write to a@b.example.com"}}]});
        m.mask_json(&mut v);
        assert_eq!(v["id"], "a@b.example.com");
        assert_eq!(v["choices"][0]["message"]["content"], "write to [REDACTED]");
    }
}
