//! The scan of [`super::from_json_response`] against the full parse it
//! stands in for, over generated answers: valid JSON of every shape the
//! members read can take (missing, named twice, of the wrong type, escaped,
//! nested deep), with random whitespace, and each of them cut short.

use fastrand::Rng;

use super::{Dialect, from_json_response, from_parsed_response};

/// Writes random JSON into a string.
struct Writer {
    rng: Rng,
    out: String,
}

impl Writer {
    fn space(&mut self) {
        for _ in 0..self.rng.usize(0..3).saturating_sub(1) {
            self.out
                .push(self.rng.choice([' ', '\n', '\t', '\r']).unwrap());
        }
    }

    fn string(&mut self) {
        let pieces = [
            "stop",
            "length",
            "response",
            "end_turn",
            "tool_use",
            "a\\\"b",
            "\\\\",
            "\\n",
            "\\u00e9",
            "\\ud83d\\ude00",
            "é",
            "}",
            "]",
            "{\\\"usage\\\":1}",
            ",",
            ":",
            "",
        ];
        self.out.push('"');
        for _ in 0..self.rng.usize(0..3) {
            self.out.push_str(self.rng.choice(pieces).unwrap());
        }
        self.out.push('"');
    }

    fn scalar(&mut self) {
        match self.rng.usize(0..11) {
            0 => self.out.push_str("null"),
            9 => self.out.push_str("-0"),
            10 => self.out.push_str("12.0"),
            1 => self.out.push_str("true"),
            2 => self.out.push_str("false"),
            3 => self.out.push_str("-3"),
            4 => self.out.push_str("1.5e2"),
            5 => self.out.push_str("18446744073709551616"),
            6 => self.string(),
            _ => self.out.push_str(&self.rng.u32(0..5000).to_string()),
        }
    }

    fn value(&mut self, depth: usize) {
        match self.rng.usize(0..6) {
            0 if depth < 4 => self.array(depth + 1, |w, d| w.value(d)),
            1 if depth < 4 => {
                self.object(depth + 1, &["a", "usage", "choices"], |w, _, d| w.value(d))
            }
            _ => self.scalar(),
        }
    }

    /// Writes `open`, up to `most` items separated by commas, `close`.
    fn items(&mut self, open: char, close: char, most: usize, mut item: impl FnMut(&mut Self)) {
        self.out.push(open);
        self.space();
        for i in 0..self.rng.usize(0..most) {
            if i > 0 {
                self.out.push(',');
                self.space();
            }
            item(self);
            self.space();
        }
        self.out.push(close);
    }

    fn array(&mut self, depth: usize, mut element: impl FnMut(&mut Self, usize)) {
        self.items('[', ']', 4, |w| element(w, depth));
    }

    fn object(
        &mut self,
        depth: usize,
        keys: &[&str],
        mut member: impl FnMut(&mut Self, &str, usize),
    ) {
        self.items('{', '}', 7, |w| {
            let key = *w.rng.choice(keys).unwrap();
            w.out.push('"');
            w.out.push_str(key);
            w.out.push('"');
            w.space();
            w.out.push(':');
            w.space();
            member(w, key, depth);
        });
    }

    fn count(&mut self) {
        match self.rng.usize(0..5) {
            0 => self.scalar(),
            1 if self.rng.bool() => {
                self.object(3, &["cached_tokens", "reasoning_tokens"], |w, _, _| {
                    w.count()
                })
            }
            _ => self.out.push_str(&self.rng.u32(0..100_000).to_string()),
        }
    }

    fn usage(&mut self) {
        if self.rng.usize(0..8) == 0 {
            return self.value(2);
        }
        let keys = [
            "prompt_tokens",
            "completion_tokens",
            "input_tokens",
            "output_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
            "input_tokens_details",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "reasoning_tokens",
            "other",
        ];
        self.object(2, &keys, |w, _, _| w.count());
    }

    fn choice(&mut self, depth: usize) {
        if self.rng.usize(0..4) == 0 {
            return self.value(depth);
        }
        self.object(
            depth,
            &["finish_reason", "message", "index"],
            |w, key, d| match key {
                "message" => w.value(d),
                _ => w.scalar(),
            },
        );
    }

    fn answer(&mut self) {
        self.space();
        let keys = [
            "id",
            "usage",
            "choices",
            "stop_reason",
            "object",
            "status",
            "content",
            "model",
        ];
        self.object(1, &keys, |w, key, d| match key {
            "usage" => w.usage(),
            "choices" if w.rng.usize(0..6) > 0 => w.array(d + 1, |w, d| w.choice(d)),
            "object" if w.rng.bool() => w.out.push_str(r#""response""#),
            "content" | "model" => w.value(d),
            _ => w.scalar(),
        });
        self.space();
    }
}

#[test]
fn the_scan_reads_what_the_full_parse_reads() {
    let mut w = Writer {
        rng: Rng::with_seed(17),
        out: String::new(),
    };
    let mut with_usage = 0;
    for _ in 0..20_000 {
        w.out.clear();
        w.answer();
        let body = w.out.as_bytes();
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
            "{}",
            w.out
        );
        for dialect in [Dialect::OpenAI, Dialect::Anthropic] {
            let scanned = from_json_response(dialect, body);
            with_usage += usize::from(scanned.is_some());
            assert_eq!(
                scanned,
                from_parsed_response(dialect, body),
                "{dialect:?} {}",
                w.out
            );
            let cut = &body[..w.rng.usize(0..body.len().max(1))];
            assert_eq!(
                from_json_response(dialect, cut),
                from_parsed_response(dialect, cut),
                "{dialect:?} {}",
                String::from_utf8_lossy(cut)
            );
        }
    }
    // The generator reaches the interesting cases, not only empty answers.
    assert!(with_usage > 5_000, "{with_usage}");
}

#[test]
fn a_sound_body_with_a_bad_token_elsewhere_keeps_its_usage() {
    // The documented leniency: the message holds an invalid escape and a
    // bare word, which the full parse refuses; the usage is still read.
    let body = br#"{"choices":[{"message":{"content":"\q"},"x":nope,"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":3}}"#;
    assert_eq!(from_parsed_response(Dialect::OpenAI, body), None);
    let (usage, stop) = from_json_response(Dialect::OpenAI, body).unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (2, 3));
    assert_eq!(stop.as_deref(), Some("stop"));
}

#[test]
fn a_member_named_twice_reads_the_first_choice_that_is_an_object() {
    // Named twice: the full parse reads the tree, which skips a first
    // choice that is not an object as the typed view does.
    let body =
        br#"{"id":1,"id":2,"choices":[7,{"finish_reason":"length"}],"usage":{"prompt_tokens":1}}"#;
    let parsed = from_parsed_response(Dialect::OpenAI, body).unwrap();
    assert_eq!(parsed.1.as_deref(), Some("length"));
    assert_eq!(from_json_response(Dialect::OpenAI, body), Some(parsed));
}
