//! Token usage and stop reasons, read from streams and whole responses.
//!
//! [`Usage`] has the same meaning in both dialects:
//! - `input_tokens`: UNCACHED input tokens. Anthropic reports this directly
//!   (`input_tokens` excludes cache reads and writes). OpenAI's
//!   `prompt_tokens` includes cached tokens, so it is
//!   `prompt_tokens - prompt_tokens_details.cached_tokens`.
//! - `cache_read_tokens`: OpenAI `prompt_tokens_details.cached_tokens`,
//!   Anthropic `cache_read_input_tokens`.
//! - `cache_write_tokens`: Anthropic `cache_creation_input_tokens`; OpenAI
//!   has no cache writes (always 0).
//! - `output_tokens`: OpenAI `completion_tokens`, Anthropic `output_tokens`;
//!   both INCLUDE reasoning/thinking tokens.
//! - `reasoning_tokens`: the reasoning part of `output_tokens` where the
//!   provider breaks it out (OpenAI
//!   `completion_tokens_details.reasoning_tokens`; Gemini
//!   `thoughtsTokenCount`, carried through the internal Anthropic events as
//!   [`ANTHROPIC_REASONING_TOKENS`]); 0 otherwise.
//!
//! The whole prompt is `input_tokens + cache_read_tokens + cache_write_tokens`.
//!
//! The OpenAI Responses API (passed through to OpenAI backends) is read in
//! the OpenAI dialect: its usage (`input_tokens` including
//! `input_tokens_details.cached_tokens`, `output_tokens`) is in the
//! `response` object of `response.completed` / `response.incomplete` (the
//! terminal events; `response.failed` and `error` are errors) and of a whole
//! `object: "response"` body.
//!
//! Streams: OpenAI sends usage in one chunk (normally the last, with empty
//! `choices`, only when the request set `stream_options.include_usage`).
//! Anthropic sends it in `message_start.message.usage` and then CUMULATIVE
//! counts in `message_delta.usage`: values present replace earlier ones,
//! absent ones are kept.
//!
//! Reading a stream event ([`UsageTracker::observe_data`]) costs one pass
//! of the JSON parser over its data, which is how a malformed event is
//! found. Events whose kind carries nothing the tracker keeps (Anthropic
//! events named `content_block_*`, `ping` or anything else unknown) are only
//! validated; the others are read into small typed views that skip
//! everything but the fields used (the text deltas are never built). An
//! event whose fields do not have the expected types falls back to a full
//! [`Value`] parse, which decides as before.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Dialect;
use super::answer_scan::{self, Unfollowed};
use super::lenient::{count, first_of_list, lenient_object, lenient_str};
use super::sse::SseEvent;

/// The gateway's own field of an Anthropic `usage` object: the reasoning
/// part of `output_tokens`. Anthropic sends no such count; a provider
/// decoding its answers into Anthropic events for an OpenAI-format client
/// (Gemini's `thoughtsTokenCount`) sets it so the client translations
/// report `reasoning_tokens`. It never reaches an Anthropic-format client
/// (those providers leave it out for them).
pub const ANTHROPIC_REASONING_TOKENS: &str = "reasoning_tokens";

/// Token counts of one answer. See the module docs for the exact meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Reasoning tokens (a part of `output_tokens`).
    pub reasoning_tokens: u64,
}

/// The counts of a `usage` object of any dialect, read leniently (a count
/// that is not a non-negative integer is absent, as `Value::as_u64` reads
/// it; see [`super::lenient`]): from a tree with [`UsageCounts::of`], or
/// straight from an answer's text as part of its summary.
#[derive(Debug, Default, Deserialize)]
struct UsageCounts {
    #[serde(default, deserialize_with = "count")]
    prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    completion_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_object")]
    prompt_tokens_details: Option<CountDetails>,
    #[serde(default, deserialize_with = "lenient_object")]
    completion_tokens_details: Option<CountDetails>,
    #[serde(default, deserialize_with = "count")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient_object")]
    input_tokens_details: Option<CountDetails>,
    #[serde(default, deserialize_with = "lenient_object")]
    output_tokens_details: Option<CountDetails>,
    #[serde(default, deserialize_with = "count")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_creation_input_tokens: Option<u64>,
    /// [`ANTHROPIC_REASONING_TOKENS`].
    #[serde(default, deserialize_with = "count")]
    reasoning_tokens: Option<u64>,
}

/// `*_tokens_details`.
#[derive(Debug, Default, Deserialize)]
struct CountDetails {
    #[serde(default, deserialize_with = "count")]
    cached_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    reasoning_tokens: Option<u64>,
}

impl CountDetails {
    /// Scanned details, as [`lenient_object`] reads them (`None` when the
    /// value is not an object).
    fn scan(raw: &[u8]) -> Result<Option<CountDetails>, Unfollowed> {
        if raw.first() != Some(&b'{') {
            return checked(raw).map(|()| None);
        }
        let mut d = CountDetails::default();
        let end = answer_scan::object_members(raw, 0, |key, at| {
            let end = answer_scan::value_end(raw, at)?;
            let count = match key {
                b"cached_tokens" => &mut d.cached_tokens,
                b"reasoning_tokens" => &mut d.reasoning_tokens,
                _ => return Some(end),
            };
            *count = scanned_count(&raw[at..end]).ok()?;
            Some(end)
        });
        match end {
            Some(end) if end == raw.len() => Ok(Some(d)),
            _ => Err(Unfollowed),
        }
    }
}

/// A scanned count as [`count`] reads it: digits are the number (absent
/// when too large for a `u64`, as the parser reads them as a float); any
/// other value is read by [`count`] itself.
fn scanned_count(raw: &[u8]) -> Result<Option<u64>, Unfollowed> {
    if !raw.is_empty() && raw.iter().all(u8::is_ascii_digit) {
        if raw.len() > 1 && raw[0] == b'0' {
            return Err(Unfollowed);
        }
        // Digits are UTF-8.
        let digits = std::str::from_utf8(raw).map_err(|_| Unfollowed)?;
        return Ok(digits.parse().ok());
    }
    /// One count, as a member of `usage` reads it.
    #[derive(Deserialize)]
    struct Count(#[serde(deserialize_with = "count")] Option<u64>);
    serde_json::from_slice::<Count>(raw)
        .map(|c| c.0)
        .map_err(|_| Unfollowed)
}

/// `Ok` when `raw` is one valid JSON value (a scanned value that is not
/// read, of a member whose value the full parse would check).
fn checked(raw: &[u8]) -> Result<(), Unfollowed> {
    serde_json::from_slice::<IgnoredAny>(raw)
        .map(drop)
        .map_err(|_| Unfollowed)
}

impl UsageCounts {
    /// The counts of a `usage` tree (none when it is not an object).
    fn of(u: &Value) -> UsageCounts {
        UsageCounts::deserialize(u).unwrap_or_default()
    }

    /// The counts of a scanned `usage` object (see [`answer_scan`]). A
    /// count written as digits is read from them; any other value of a
    /// count is checked by the parser (and is absent); the members not read
    /// are stepped over.
    fn scan(raw: &[u8]) -> Result<UsageCounts, Unfollowed> {
        let mut u = UsageCounts::default();
        let end = answer_scan::object_members(raw, 0, |key, at| {
            let end = answer_scan::value_end(raw, at)?;
            let value = &raw[at..end];
            let count = match key {
                b"prompt_tokens" => &mut u.prompt_tokens,
                b"completion_tokens" => &mut u.completion_tokens,
                b"input_tokens" => &mut u.input_tokens,
                b"output_tokens" => &mut u.output_tokens,
                b"cache_read_input_tokens" => &mut u.cache_read_input_tokens,
                b"cache_creation_input_tokens" => &mut u.cache_creation_input_tokens,
                b"reasoning_tokens" => &mut u.reasoning_tokens,
                _ => {
                    let details = match key {
                        b"prompt_tokens_details" => &mut u.prompt_tokens_details,
                        b"completion_tokens_details" => &mut u.completion_tokens_details,
                        b"input_tokens_details" => &mut u.input_tokens_details,
                        b"output_tokens_details" => &mut u.output_tokens_details,
                        _ => return Some(end),
                    };
                    *details = CountDetails::scan(value).ok()?;
                    return Some(end);
                }
            };
            *count = scanned_count(value).ok()?;
            Some(end)
        });
        match end {
            Some(end) if end == raw.len() => Ok(u),
            _ => Err(Unfollowed),
        }
    }

    fn detail(d: &Option<CountDetails>, pick: fn(&CountDetails) -> Option<u64>) -> u64 {
        d.as_ref().and_then(pick).unwrap_or(0)
    }

    /// An OpenAI Chat Completions `usage`.
    fn openai(&self) -> Usage {
        Self::cached_within_input(
            (self.prompt_tokens, &self.prompt_tokens_details),
            (self.completion_tokens, &self.completion_tokens_details),
        )
    }

    /// An OpenAI Responses `usage`.
    fn responses(&self) -> Usage {
        Self::cached_within_input(
            (self.input_tokens, &self.input_tokens_details),
            (self.output_tokens, &self.output_tokens_details),
        )
    }

    /// OpenAI's shape of usage, whatever the members are called: the input
    /// count includes the cached tokens, the output count the reasoning ones.
    fn cached_within_input(
        (input, input_details): (Option<u64>, &Option<CountDetails>),
        (output, output_details): (Option<u64>, &Option<CountDetails>),
    ) -> Usage {
        let cached = Self::detail(input_details, |d| d.cached_tokens);
        Usage {
            input_tokens: input.unwrap_or(0).saturating_sub(cached),
            output_tokens: output.unwrap_or(0),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
            reasoning_tokens: Self::detail(output_details, |d| d.reasoning_tokens),
        }
    }

    /// An Anthropic `usage`: the counts present replace those of `usage`.
    fn merge_anthropic_into(&self, usage: &mut Usage) {
        let fields = [
            (self.input_tokens, &mut usage.input_tokens),
            (self.output_tokens, &mut usage.output_tokens),
            (self.cache_read_input_tokens, &mut usage.cache_read_tokens),
            (
                self.cache_creation_input_tokens,
                &mut usage.cache_write_tokens,
            ),
            (self.reasoning_tokens, &mut usage.reasoning_tokens),
        ];
        for (count, field) in fields {
            if let Some(n) = count {
                *field = n;
            }
        }
    }
}

/// An Anthropic `usage` object read without a tree (a member of an
/// answer's typed view): the counts [`Usage::from_anthropic`] reads.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub struct AnthropicUsageIn(UsageCounts);

impl AnthropicUsageIn {
    /// The usage it reports.
    pub fn usage(&self) -> Usage {
        let mut usage = Usage::default();
        self.0.merge_anthropic_into(&mut usage);
        usage
    }
}

impl Usage {
    /// Adds `other` (two upstream answers serving one request).
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
    }

    /// Usage from an OpenAI `usage` object.
    pub fn from_openai(u: &Value) -> Usage {
        UsageCounts::of(u).openai()
    }

    /// Usage from an OpenAI Responses `usage` object.
    pub fn from_responses(u: &Value) -> Usage {
        UsageCounts::of(u).responses()
    }

    /// Usage from an Anthropic `usage` object.
    pub fn from_anthropic(u: &Value) -> Usage {
        let mut usage = Usage::default();
        usage.merge_anthropic(u);
        usage
    }

    /// Applies an Anthropic `usage` object: every count present replaces the
    /// current value (counts are cumulative), absent counts are kept.
    pub fn merge_anthropic(&mut self, u: &Value) {
        UsageCounts::of(u).merge_anthropic_into(self);
    }

    /// Every input token, cached or not.
    pub fn total_input(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

/// What one SSE event means for the stream carrying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventClass {
    /// An ordinary event.
    Data,
    /// The terminal event: OpenAI `[DONE]`, Anthropic `message_stop`.
    Terminal,
    /// An in-stream error from the upstream.
    Error,
    /// The data is not JSON where JSON is expected.
    Malformed,
}

/// Follows one stream's events and keeps its usage and stop reason.
#[derive(Debug)]
pub struct UsageTracker {
    dialect: Dialect,
    usage: Usage,
    stop_reason: Option<String>,
    saw_usage: bool,
    /// OpenAI Chat: choices (by index, below 64) seen, and those finished.
    choices_seen: u64,
    choices_finished: u64,
    /// Events that carried (or may carry) answer content: OpenAI chunks
    /// with choices, Anthropic `content_block_delta`, Responses `*.delta`.
    content_events: u64,
}

impl UsageTracker {
    /// A tracker for a stream in `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            usage: Usage::default(),
            stop_reason: None,
            saw_usage: false,
            choices_seen: 0,
            choices_finished: 0,
            content_events: 0,
        }
    }

    /// Events that carried answer content so far (each is at least one
    /// output token: the floor of an estimate when no usage came).
    pub fn content_events(&self) -> u64 {
        self.content_events
    }

    /// OpenAI Chat: at least one choice was seen and every choice seen has
    /// a finish reason (the answer is complete even without `[DONE]`).
    pub fn all_choices_finished(&self) -> bool {
        self.choices_seen != 0 && self.choices_seen & !self.choices_finished == 0
    }

    fn choice(&mut self, index: u64, finished: bool) {
        let bit = 1u64
            .checked_shl(u32::try_from(index).unwrap_or(64))
            .unwrap_or(0);
        if bit == 0 {
            // Beyond 64 choices: never known complete.
            self.choices_seen |= 1 << 63;
            return;
        }
        self.choices_seen |= bit;
        if finished {
            self.choices_finished |= bit;
        }
    }

    /// Reads one event and classifies it.
    pub fn observe(&mut self, event: &SseEvent) -> EventClass {
        self.observe_data(event.event.as_deref(), &event.data)
    }

    /// Reads one event given its name (`event:` field) and data, and
    /// classifies it. The data must be JSON (valid syntax) except OpenAI's
    /// `[DONE]`; otherwise the event is [`EventClass::Malformed`], whatever
    /// its name.
    pub fn observe_data(&mut self, name: Option<&str>, data: &str) -> EventClass {
        let data = data.trim();
        if self.dialect == Dialect::OpenAI && data == "[DONE]" {
            return EventClass::Terminal;
        }
        let only_validate = name == Some("error")
            || (self.dialect == Dialect::Anthropic
                && name.is_some_and(|n| !matches!(n, "message_start" | "message_delta")));
        if only_validate {
            if name == Some("content_block_delta") {
                self.content_events += 1;
            }
            return match serde_json::from_str::<IgnoredAny>(data) {
                Err(_) => EventClass::Malformed,
                Ok(_) if name == Some("error") => EventClass::Error,
                Ok(_) if name == Some("message_stop") => EventClass::Terminal,
                Ok(_) => EventClass::Data,
            };
        }
        let fast = match self.dialect {
            Dialect::OpenAI => serde_json::from_str::<OpenAiEvent>(data)
                .ok()
                .map(|e| self.observe_openai_view(e, data)),
            Dialect::Anthropic => serde_json::from_str::<AnthropicEvent>(data)
                .ok()
                .map(|e| self.observe_anthropic_view(name, e)),
        };
        fast.unwrap_or_else(|| self.observe_value(name, data))
    }

    fn observe_openai_view(&mut self, e: OpenAiEvent<'_>, data: &str) -> EventClass {
        if let Some(kind) = e.kind.as_deref()
            && (kind.starts_with("response.") || kind == "error")
        {
            if kind.ends_with(".delta") {
                self.content_events += 1;
            }
            return match kind {
                // Terminal Responses events carry the usage: read them whole.
                "response.completed" | "response.incomplete" => {
                    match serde_json::from_str::<Value>(data) {
                        Ok(json) => self.observe_responses(kind, &json),
                        Err(_) => EventClass::Malformed,
                    }
                }
                _ => self.observe_responses(kind, &Value::Null),
            };
        }
        if e.error.is_some() {
            return EventClass::Error;
        }
        if let Some(u) = e.usage.filter(Value::is_object) {
            self.usage = Usage::from_openai(&u);
            self.saw_usage = true;
        }
        if let Some(choices) = e.choices {
            if !choices.seen.is_empty() {
                self.content_events += 1;
            }
            if let Some(r) = choices.last {
                self.stop_reason = Some(r);
            }
            for (index, finished) in choices.seen {
                self.choice(index, finished);
            }
        }
        EventClass::Data
    }

    fn observe_anthropic_view(&mut self, name: Option<&str>, e: AnthropicEvent<'_>) -> EventClass {
        match name.or(e.kind.as_deref()) {
            Some("message_start") => {
                if let Some(u) = e.message.and_then(|m| m.usage).filter(Value::is_object) {
                    self.usage.merge_anthropic(&u);
                    self.saw_usage = true;
                }
                EventClass::Data
            }
            Some("message_delta") => {
                if let Some(u) = e.usage.filter(Value::is_object) {
                    self.usage.merge_anthropic(&u);
                    self.saw_usage = true;
                }
                if let Some(r) = e.delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(r.into_owned());
                }
                EventClass::Data
            }
            Some("message_stop") => EventClass::Terminal,
            Some("error") => EventClass::Error,
            Some("content_block_delta") => {
                self.content_events += 1;
                EventClass::Data
            }
            _ => EventClass::Data,
        }
    }

    /// The general reading: the whole data as a [`Value`].
    fn observe_value(&mut self, name: Option<&str>, data: &str) -> EventClass {
        let Ok(json) = serde_json::from_str::<Value>(data) else {
            return EventClass::Malformed;
        };
        if name == Some("error") {
            return EventClass::Error;
        }
        match self.dialect {
            Dialect::OpenAI => self.observe_openai(&json),
            Dialect::Anthropic => self.observe_anthropic(name, &json),
        }
    }

    fn observe_openai(&mut self, json: &Value) -> EventClass {
        if let Some(kind) = json.get("type").and_then(Value::as_str)
            && (kind.starts_with("response.") || kind == "error")
        {
            return self.observe_responses(kind, json);
        }
        if json.get("error").is_some_and(|e| !e.is_null()) {
            return EventClass::Error;
        }
        if let Some(u) = json.get("usage").filter(|u| u.is_object()) {
            self.usage = Usage::from_openai(u);
            self.saw_usage = true;
        }
        if let Some(choices) = json.get("choices").and_then(Value::as_array) {
            if !choices.is_empty() {
                self.content_events += 1;
            }
            for (i, c) in choices.iter().enumerate() {
                let reason = c.get("finish_reason").and_then(Value::as_str);
                if let Some(r) = reason {
                    self.stop_reason = Some(r.to_owned());
                }
                let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
                self.choice(index, reason.is_some());
            }
        }
        EventClass::Data
    }

    fn observe_responses(&mut self, kind: &str, json: &Value) -> EventClass {
        if kind.ends_with(".delta") && json.is_object() {
            self.content_events += 1;
        }
        match kind {
            "response.completed" | "response.incomplete" => {
                if let Some(u) = json.pointer("/response/usage").filter(|u| u.is_object()) {
                    self.usage = Usage::from_responses(u);
                    self.saw_usage = true;
                }
                let reason = json
                    .pointer("/response/incomplete_details/reason")
                    .and_then(Value::as_str)
                    .unwrap_or(if kind == "response.completed" {
                        "completed"
                    } else {
                        "incomplete"
                    });
                self.stop_reason = Some(reason.to_owned());
                EventClass::Terminal
            }
            "response.failed" | "error" => EventClass::Error,
            _ => EventClass::Data,
        }
    }

    fn observe_anthropic(&mut self, name: Option<&str>, json: &Value) -> EventClass {
        let kind = name.or_else(|| json.get("type").and_then(Value::as_str));
        match kind {
            Some("message_start") => {
                if let Some(u) = json.pointer("/message/usage").filter(|u| u.is_object()) {
                    self.usage.merge_anthropic(u);
                    self.saw_usage = true;
                }
                EventClass::Data
            }
            Some("message_delta") => {
                if let Some(u) = json.get("usage").filter(|u| u.is_object()) {
                    self.usage.merge_anthropic(u);
                    self.saw_usage = true;
                }
                if let Some(r) = json.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_owned());
                }
                EventClass::Data
            }
            Some("message_stop") => EventClass::Terminal,
            Some("error") => EventClass::Error,
            Some("content_block_delta") => {
                self.content_events += 1;
                EventClass::Data
            }
            _ => EventClass::Data,
        }
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The stop reason seen so far (`finish_reason` or `stop_reason`).
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop_reason.as_deref()
    }

    /// Whether any usage was reported at all.
    pub fn saw_usage(&self) -> bool {
        self.saw_usage
    }
}

/// The fields of an OpenAI stream event that the tracker reads; everything
/// else is skipped by the parser (validated, never built).
#[derive(Deserialize)]
struct OpenAiEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    choices: Option<LastFinishReason>,
}

/// The fields of an Anthropic stream event that the tracker reads.
#[derive(Deserialize)]
struct AnthropicEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<MessagePart>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(borrow, default)]
    delta: Option<DeltaPart<'a>>,
}

#[derive(Deserialize)]
struct MessagePart {
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct DeltaPart<'a> {
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FinishOnly {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// The `finish_reason` of the last choice that has one (string), and each
/// choice's index and whether it finished, read from the `choices` array.
struct LastFinishReason {
    last: Option<String>,
    /// (index, finished) of every choice of the chunk (usually one).
    seen: Vec<(u64, bool)>,
}

impl<'de> Deserialize<'de> for LastFinishReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = LastFinishReason;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<LastFinishReason, A::Error> {
                let mut last = None;
                let mut seen = Vec::new();
                let mut i = 0u64;
                while let Some(c) = seq.next_element::<FinishOnly>()? {
                    seen.push((c.index.unwrap_or(i), c.finish_reason.is_some()));
                    if c.finish_reason.is_some() {
                        last = c.finish_reason;
                    }
                    i += 1;
                }
                Ok(LastFinishReason { last, seen })
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// The parts of a complete JSON answer that accounting reads. The parser
/// skips everything else (the answer itself, usually most of the body)
/// without building it, which a full [`Value`] would; strings are borrowed
/// from the body.
#[derive(Deserialize)]
struct AnswerSummary<'a> {
    #[serde(default, deserialize_with = "lenient_object")]
    usage: Option<UsageCounts>,
    /// OpenAI: the stop reason is the first choice's `finish_reason`.
    #[serde(default, borrow, deserialize_with = "first_of_list")]
    choices: Option<ChoiceSummary<'a>>,
    /// Anthropic.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    stop_reason: Option<Cow<'a, str>>,
    /// OpenAI Responses API: `object` is `"response"` and the stop reason is `status`.
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    object: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    status: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChoiceSummary<'a> {
    #[serde(default, borrow, deserialize_with = "lenient_str")]
    finish_reason: Option<Cow<'a, str>>,
}

/// Usage and stop reason of a complete (non-streaming) JSON response.
/// `None` when the body is not a JSON object carrying a `usage` object
/// (error bodies included). The members read are found by a structural
/// scan ([`super::answer_scan`]); a body the scan cannot follow is parsed.
pub fn from_json_response(dialect: Dialect, body: &[u8]) -> Option<(Usage, Option<String>)> {
    // A struct also deserializes from a JSON array; only objects carry usage.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let scanned = answer_scan::top_members(body).and_then(|m| from_members(dialect, &m));
    match scanned {
        Ok(read) => read,
        Err(Unfollowed) => from_parsed_response(dialect, body),
    }
}

/// [`from_json_response`] from the scanned members; [`Unfollowed`] when one
/// of them does not parse on its own (the whole body is parsed then, for
/// the answer a full parse gives).
fn from_members(
    dialect: Dialect,
    m: &answer_scan::Members<'_>,
) -> Result<Option<(Usage, Option<String>)>, Unfollowed> {
    let Some(usage) = m.usage.filter(|u| u.first() == Some(&b'{')) else {
        return Ok(None);
    };
    let u = UsageCounts::scan(usage)?;
    let is_response = match dialect {
        // Compared as written unless written with escapes.
        Dialect::OpenAI => match m.object {
            Some(raw) if !raw.contains(&b'\\') => raw == br#""response""#,
            raw => lenient_text(raw)?.as_deref() == Some("response"),
        },
        Dialect::Anthropic => false,
    };
    let (usage, stop) = match dialect {
        Dialect::OpenAI if is_response => (u.responses(), lenient_text(m.status)?),
        Dialect::OpenAI => (u.openai(), lenient_text(m.finish_reason)?),
        Dialect::Anthropic => {
            let mut usage = Usage::default();
            u.merge_anthropic_into(&mut usage);
            (usage, lenient_text(m.stop_reason)?)
        }
    };
    Ok(Some((usage, stop)))
}

/// A scanned member read as [`lenient_str`] reads it: its text when it is a
/// string, `None` when it is absent or not a string.
fn lenient_text(raw: Option<&[u8]>) -> Result<Option<String>, Unfollowed> {
    match raw {
        Some(raw) if raw.first() == Some(&b'"') => {
            // The rule, a name without escapes: its bytes, checked as the
            // parser would check them.
            let inner = &raw[1..raw.len() - 1];
            if !inner.iter().any(|&c| c == b'\\' || c < 0x20)
                && let Ok(text) = std::str::from_utf8(inner)
            {
                return Ok(Some(text.to_owned()));
            }
            serde_json::from_slice(raw)
                .map(Some)
                .map_err(|_| Unfollowed)
        }
        _ => Ok(None),
    }
}

/// [`from_json_response`] by parsing the whole body.
fn from_parsed_response(dialect: Dialect, body: &[u8]) -> Option<(Usage, Option<String>)> {
    let answer: AnswerSummary = match crate::wire::lenient::from_body(body) {
        Ok(answer) => answer,
        // Valid JSON the typed view cannot take (a member named twice): read
        // the tree, as a tree keeps the last of the two.
        Err(_) => return from_json_tree(dialect, &serde_json::from_slice(body).ok()?),
    };
    let u = answer.usage?;
    let is_response = answer.object.as_deref() == Some("response");
    let (usage, stop) = match dialect {
        Dialect::OpenAI if is_response => (u.responses(), answer.status),
        Dialect::OpenAI => (u.openai(), answer.choices.and_then(|c| c.finish_reason)),
        Dialect::Anthropic => {
            let mut usage = Usage::default();
            u.merge_anthropic_into(&mut usage);
            (usage, answer.stop_reason)
        }
    };
    Some((usage, stop.map(Cow::into_owned)))
}

/// [`from_json_response`] of an answer already read as a tree.
fn from_json_tree(dialect: Dialect, answer: &Value) -> Option<(Usage, Option<String>)> {
    let u = answer.get("usage").filter(|u| u.is_object())?;
    let is_response = answer.get("object").and_then(Value::as_str) == Some("response");
    let (usage, stop) = match dialect {
        Dialect::OpenAI if is_response => (Usage::from_responses(u), answer.get("status")),
        // The first choice that is an object, as the typed view reads it.
        Dialect::OpenAI => (
            Usage::from_openai(u),
            answer
                .get("choices")
                .and_then(Value::as_array)
                .and_then(|choices| choices.iter().find(|c| c.is_object()))
                .and_then(|choice| choice.get("finish_reason")),
        ),
        Dialect::Anthropic => (Usage::from_anthropic(u), answer.get("stop_reason")),
    };
    Some((usage, stop.and_then(Value::as_str).map(str::to_owned)))
}

#[cfg(test)]
#[path = "answer_scan_tests.rs"]
mod answer_scan_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> SseEvent {
        SseEvent {
            event: None,
            data: v.to_string(),
        }
    }

    fn named(name: &str, v: Value) -> SseEvent {
        SseEvent {
            event: Some(name.to_owned()),
            data: v.to_string(),
        }
    }

    #[test]
    fn openai_cached_tokens_are_subtracted() {
        let u = Usage::from_openai(&json!({
            "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920},
            "completion_tokens_details": {"reasoning_tokens": 64}
        }));
        assert_eq!(
            u,
            Usage {
                input_tokens: 86,
                output_tokens: 300,
                cache_read_tokens: 1920,
                cache_write_tokens: 0,
                reasoning_tokens: 64
            }
        );
        assert_eq!(u.total_input(), 2006);
    }

    #[test]
    fn openai_stream_usage_chunk_and_finish_reason() {
        let mut t = UsageTracker::new(Dialect::OpenAI);
        let c = t.observe(&data(json!({"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null})));
        assert_eq!(c, EventClass::Data);
        assert!(!t.saw_usage());
        t.observe(&data(
            json!({"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}),
        ));
        t.observe(&data(
            json!({"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5}}),
        ));
        assert_eq!(
            t.observe(&SseEvent {
                event: None,
                data: "[DONE]".into()
            }),
            EventClass::Terminal
        );
        assert_eq!(t.stop_reason(), Some("length"));
        assert_eq!(t.usage().input_tokens, 10);
        assert_eq!(t.usage().output_tokens, 5);
        assert!(t.saw_usage());
    }

    #[test]
    fn openai_error_and_malformed() {
        let mut t = UsageTracker::new(Dialect::OpenAI);
        assert_eq!(
            t.observe(&data(json!({"error":{"message":"x"}}))),
            EventClass::Error
        );
        assert_eq!(
            t.observe(&SseEvent {
                event: None,
                data: "{not json".into()
            }),
            EventClass::Malformed
        );
        assert_eq!(
            t.observe(&named("error", json!({"message":"x"}))),
            EventClass::Error
        );
    }

    #[test]
    fn the_gateways_reasoning_count_in_anthropic_usage_is_read() {
        let mut t = UsageTracker::new(Dialect::Anthropic);
        t.observe(&named(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},
                   "usage":{"output_tokens":150,"reasoning_tokens":120}}),
        ));
        assert_eq!(t.usage().output_tokens, 150);
        assert_eq!(t.usage().reasoning_tokens, 120);
        assert_eq!(
            Usage::from_anthropic(&json!({"output_tokens": 9})).reasoning_tokens,
            0
        );
    }

    #[test]
    fn anthropic_delta_usage_is_cumulative_and_does_not_clobber() {
        let mut t = UsageTracker::new(Dialect::Anthropic);
        t.observe(&named(
            "message_start",
            json!({"type":"message_start","message":{"usage":{"input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":200,"output_tokens":1}}}),
        ));
        t.observe(&named("message_delta", json!({"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":10}})));
        t.observe(&named("message_delta", json!({"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":25}})));
        assert_eq!(
            t.usage(),
            Usage {
                input_tokens: 12,
                output_tokens: 25,
                cache_read_tokens: 200,
                cache_write_tokens: 100,
                reasoning_tokens: 0
            }
        );
        assert_eq!(t.stop_reason(), Some("max_tokens"));
        t.observe(&named("message_delta", json!({"type":"message_delta","delta":{},"usage":{"output_tokens":26,"input_tokens":13}})));
        assert_eq!(t.usage().input_tokens, 13);
        assert_eq!(t.usage().cache_read_tokens, 200);
        assert_eq!(
            t.observe(&named("message_stop", json!({"type":"message_stop"}))),
            EventClass::Terminal
        );
        assert_eq!(
            t.observe(&named("ping", json!({"type":"ping"}))),
            EventClass::Data
        );
        assert_eq!(
            t.observe(&named(
                "error",
                json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})
            )),
            EventClass::Error
        );
    }

    #[test]
    fn responses_events_and_objects() {
        let mut t = UsageTracker::new(Dialect::OpenAI);
        assert_eq!(
            t.observe(&named(
                "response.created",
                json!({"type":"response.created","response":{"usage":null}})
            )),
            EventClass::Data
        );
        assert!(!t.saw_usage());
        let done = json!({"type":"response.completed","response":{"status":"completed","usage":{
            "input_tokens":1200,"input_tokens_details":{"cached_tokens":1000},
            "output_tokens":30,"output_tokens_details":{"reasoning_tokens":10},"total_tokens":1230}}});
        assert_eq!(
            t.observe(&named("response.completed", done.clone())),
            EventClass::Terminal
        );
        assert_eq!(
            t.usage(),
            Usage {
                input_tokens: 200,
                output_tokens: 30,
                cache_read_tokens: 1000,
                cache_write_tokens: 0,
                reasoning_tokens: 10
            }
        );
        assert_eq!(t.stop_reason(), Some("completed"));
        assert_eq!(
            t.observe(&data(json!({"type":"response.failed","response":{}}))),
            EventClass::Error
        );
        assert_eq!(
            t.observe(&data(json!({"type":"error","code":"x","message":"y"}))),
            EventClass::Error
        );

        let body =
            json!({"object":"response","status":"incomplete","usage":done["response"]["usage"]});
        let (u, stop) = from_json_response(Dialect::OpenAI, body.to_string().as_bytes()).unwrap();
        assert_eq!((u.input_tokens, u.cache_read_tokens), (200, 1000));
        assert_eq!(stop.as_deref(), Some("incomplete"));
    }

    /// A whole answer read through the typed summary gives what reading it
    /// as a tree gives, odd members included; a member named twice (which
    /// the typed view refuses) is read from the tree, last one kept.
    #[test]
    fn whole_answers_read_typed_match_the_tree() {
        let bodies = [
            r#"{"choices":[{"finish_reason":"stop","message":{"content":"x"}}],"usage":{"prompt_tokens":12,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}}"#,
            r#"{"choices":[{"finish_reason":null}],"usage":{"prompt_tokens":1.5,"completion_tokens":-2,"prompt_tokens_details":"x"}}"#,
            r#"{"choices":"none","usage":{"prompt_tokens":4}}"#,
            r#"{"choices":[],"usage":[1]}"#,
            r#"{"usage":null,"stop_reason":"end_turn"}"#,
            r#"{"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":6,"cache_read_input_tokens":7,"cache_creation_input_tokens":8,"reasoning_tokens":2}}"#,
            r#"{"stop_reason":{"x":1},"usage":{"input_tokens":"5"}}"#,
            r#"{"object":"response","status":"completed","usage":{"input_tokens":50,"output_tokens":9,"input_tokens_details":{"cached_tokens":20},"output_tokens_details":{"reasoning_tokens":4}}}"#,
            r#"{"object":7,"status":"completed","usage":{"input_tokens":50}}"#,
            r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":9}}"#,
            r#"{"choices":[{"finish_reason":"a","finish_reason":"b"}],"usage":{}}"#,
        ];
        for body in bodies {
            let tree: Value = serde_json::from_str(body).unwrap();
            for dialect in [Dialect::OpenAI, Dialect::Anthropic] {
                assert_eq!(
                    from_json_response(dialect, body.as_bytes()),
                    from_json_tree(dialect, &tree),
                    "{dialect:?} {body}"
                );
            }
        }
        let (u, _) = from_json_response(Dialect::OpenAI, bodies[9].as_bytes()).unwrap();
        assert_eq!(u.input_tokens, 9, "the last of two members, as in a tree");
        assert_eq!(from_json_response(Dialect::OpenAI, b"[1]"), None);
        assert_eq!(from_json_response(Dialect::OpenAI, b"{\"usage\":"), None);
    }

    /// An Anthropic `usage` read through its typed view counts what the
    /// tree reading counts, odd members included.
    #[test]
    fn anthropic_usage_read_typed_matches_the_tree() {
        for usage in [
            r#"{"input_tokens":5,"output_tokens":6,"cache_read_input_tokens":7,"cache_creation_input_tokens":8,"reasoning_tokens":2}"#,
            r#"{"input_tokens":"5","output_tokens":-1,"cache_read_input_tokens":1.5,"x":{"y":[1]}}"#,
            r#"{"output_tokens":3,"input_tokens_details":"x"}"#,
            r#"{}"#,
        ] {
            let tree: Value = serde_json::from_str(usage).unwrap();
            let typed: AnthropicUsageIn = serde_json::from_str(usage).unwrap();
            assert_eq!(typed.usage(), Usage::from_anthropic(&tree), "{usage}");
            let from_tree = AnthropicUsageIn::deserialize(&tree).unwrap();
            assert_eq!(from_tree.usage(), Usage::from_anthropic(&tree), "{usage}");
        }
    }

    /// The typed views and the validate-only events decide exactly as the
    /// full `Value` reading, malformed events included.
    #[test]
    fn fast_reading_matches_the_value_reading() {
        let cases: &[(Dialect, Option<&str>, &str)] = &[
            (
                Dialect::Anthropic,
                Some("content_block_delta"),
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi \"x\""}}"#,
            ),
            (
                Dialect::Anthropic,
                Some("content_block_delta"),
                r#"{"type":"content_block_delta","delta":{"text":"cut"#,
            ),
            (Dialect::Anthropic, Some("ping"), "not json"),
            (
                Dialect::Anthropic,
                Some("message_start"),
                r#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":5,"output_tokens":1}}}"#,
            ),
            (
                Dialect::Anthropic,
                Some("message_start"),
                r#"{"type":"message_start","message":"odd"}"#,
            ),
            (
                Dialect::Anthropic,
                Some("message_delta"),
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
            ),
            (
                Dialect::Anthropic,
                Some("message_delta"),
                r#"{"type":"message_delta","delta":{"stop_reason":7},"usage":{"output_tokens":-1}}"#,
            ),
            (
                Dialect::Anthropic,
                Some("message_delta"),
                r#"{"type":"message_delta","usage":{"output_tokens":1}"#,
            ),
            (
                Dialect::Anthropic,
                Some("message_stop"),
                r#"{"type":"message_stop"}"#,
            ),
            (Dialect::Anthropic, Some("message_stop"), r#"{"type":"#),
            (
                Dialect::Anthropic,
                Some("error"),
                r#"{"type":"error","error":{"type":"overloaded_error"}}"#,
            ),
            (
                Dialect::Anthropic,
                None,
                r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"}}"#,
            ),
            (Dialect::Anthropic, None, r#"{"type":5}"#),
            (
                Dialect::OpenAI,
                None,
                r#"{"choices":[{"delta":{"content":"a"},"finish_reason":null}],"usage":null}"#,
            ),
            (
                Dialect::OpenAI,
                None,
                r#"{"choices":[{"finish_reason":"stop"},{"finish_reason":"length"}]}"#,
            ),
            (
                Dialect::OpenAI,
                None,
                r#"{"choices":[1,{"finish_reason":3}],"usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
            ),
            (
                Dialect::OpenAI,
                None,
                r#"{"choices":[],"usage":{"prompt_tokens":4.5}}"#,
            ),
            (Dialect::OpenAI, None, r#"{"error":null,"choices":[]}"#),
            (Dialect::OpenAI, None, r#"{"error":{"message":"x"}}"#),
            (
                Dialect::OpenAI,
                None,
                r#"{"type":"response.output_text.delta","delta":"x"}"#,
            ),
            (
                Dialect::OpenAI,
                None,
                r#"{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":1}}}"#,
            ),
            (
                Dialect::OpenAI,
                None,
                r#"{"type":"response.failed","response":{}}"#,
            ),
            (Dialect::OpenAI, None, r#"{"a":1,"a":2}"#),
            (Dialect::OpenAI, None, r#"{"choices":[]} trailing"#),
            (Dialect::OpenAI, Some("error"), r#"{"message":"x"}"#),
            (Dialect::OpenAI, Some("error"), "{"),
            (Dialect::OpenAI, None, " [DONE] "),
        ];
        for &(dialect, name, data) in cases {
            let mut fast = UsageTracker::new(dialect);
            let mut full = UsageTracker::new(dialect);
            let got = fast.observe_data(name, data);
            let want = if dialect == Dialect::OpenAI && data.trim() == "[DONE]" {
                EventClass::Terminal
            } else {
                full.observe_value(name, data.trim())
            };
            assert_eq!(got, want, "{name:?} {data}");
            assert_eq!(fast.usage(), full.usage(), "{name:?} {data}");
            assert_eq!(fast.stop_reason(), full.stop_reason(), "{name:?} {data}");
            assert_eq!(fast.saw_usage(), full.saw_usage(), "{name:?} {data}");
        }
    }

    #[test]
    fn anthropic_type_without_event_line() {
        let mut t = UsageTracker::new(Dialect::Anthropic);
        assert_eq!(
            t.observe(&data(json!({"type":"message_stop"}))),
            EventClass::Terminal
        );
    }

    #[test]
    fn json_responses() {
        let openai = json!({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{},"finish_reason":"tool_calls"}],
            "usage":{"prompt_tokens":50,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":20}}});
        let (u, stop) = from_json_response(Dialect::OpenAI, openai.to_string().as_bytes()).unwrap();
        assert_eq!(
            (u.input_tokens, u.cache_read_tokens, u.output_tokens),
            (30, 20, 7)
        );
        assert_eq!(stop.as_deref(), Some("tool_calls"));

        let anthropic = json!({"type":"message","stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":4,"cache_creation_input_tokens":5,"cache_read_input_tokens":6}});
        let (u, stop) =
            from_json_response(Dialect::Anthropic, anthropic.to_string().as_bytes()).unwrap();
        assert_eq!(
            u,
            Usage {
                input_tokens: 3,
                output_tokens: 4,
                cache_read_tokens: 6,
                cache_write_tokens: 5,
                reasoning_tokens: 0
            }
        );
        assert_eq!(stop.as_deref(), Some("end_turn"));

        assert!(from_json_response(Dialect::OpenAI, b"{\"error\":{}}").is_none());
        assert!(from_json_response(Dialect::Anthropic, b"not json").is_none());
        // Only objects carry usage, even though a struct parses from an array.
        assert!(from_json_response(Dialect::OpenAI, br#"[{"prompt_tokens":1}]"#).is_none());
        // No choices, an empty list, or a non-string reason: usage without a stop reason.
        for body in [
            r#"{"usage":{"prompt_tokens":2}}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":2}}"#,
            r#"{"choices":[{"finish_reason":null,"message":{"content":"x"}}],"usage":{"prompt_tokens":2}}"#,
        ] {
            let (u, stop) = from_json_response(Dialect::OpenAI, body.as_bytes()).unwrap();
            assert_eq!((u.input_tokens, stop), (2, None), "{body}");
        }
    }
}
