//! The access-log line of an answered request (`request finished`).
//!
//! With the JSON log format (what production runs), the line is written
//! straight into the log writer's buffer: constant member names, each
//! string escaped once, numbers with `itoa`. Through `tracing` the same line
//! cost about 7,900 instructions per request, most of it the per-field
//! dispatch of the event's visitor: the largest single item of a
//! passthrough request (docs/benchmarks.md). The line stays byte for byte
//! what [`crate::log_json::JsonLines`] writes for the `tracing` event, which
//! is still what runs with the text format and under a test's own
//! subscriber; a test formats records both ways and compares the lines.
//!
//! The line is written only when the log filter (`RUST_LOG`) enables
//! `switchboard::access` at `info`, as the event would be.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::log_json::{write_escaped, write_timestamp};
use crate::log_writer::NonBlocking;

/// The target of access-log lines.
pub const TARGET: &str = "switchboard::access";

/// The log writer that JSON access lines go to directly; set once, by
/// [`crate::telemetry::init`] with the JSON format.
static DIRECT: OnceLock<NonBlocking> = OnceLock::new();

/// Writes JSON access lines straight to `writer` from now on (the JSON log
/// format's writer; see the module docs).
pub fn write_json_to(writer: NonBlocking) {
    let _ = DIRECT.set(writer);
}

thread_local! {
    /// The line being written, reused by every request of the thread.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The most a thread's line buffer keeps between lines (a line with long
/// client-chosen names is not held for the life of the thread).
const LINE_KEPT: usize = 4 * 1024;

/// The fields of one access-log line, in the order they are written.
pub struct AccessLine<'a> {
    /// The client's `x-request-id` (empty without one).
    pub request_id: &'a str,
    /// The route's id.
    pub route: &'a str,
    /// The client's API (`chat_completions`, `messages`, …).
    pub api: &'a str,
    /// The authenticated caller.
    pub subject: &'a str,
    /// The caller's team (empty without teams).
    pub team: &'a str,
    /// The agent session id (empty without one).
    pub session: &'a str,
    /// The model as the client sent it (cut with [`super::accounting::for_log`]).
    pub requested_model: &'a str,
    /// The model that answered (cut likewise).
    pub model: &'a str,
    /// The backend that answered.
    pub backend: &'a str,
    /// Its provider kind.
    pub provider: &'a str,
    /// The HTTP status sent to the client.
    pub status: u16,
    /// How the answer ended (`completed`, `client_gone`, …).
    pub outcome: &'a str,
    /// The client asked for a stream.
    pub stream: bool,
    /// Upstream attempts made.
    pub attempts: u32,
    /// The upstream request carried the caller's own provider key.
    pub byok: bool,
    /// Input tokens charged.
    pub input_tokens: u64,
    /// Output tokens charged.
    pub output_tokens: u64,
    /// Input tokens read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// The usage is an estimate (the stream ended before the upstream reported it).
    pub usage_estimated: bool,
    /// Time from the request's arrival to its end.
    pub latency_ms: u64,
}

impl AccessLine<'_> {
    /// Logs the line: written directly with the JSON format, else as a
    /// `tracing` event.
    pub fn log(&self) {
        let Some(sink) = DIRECT.get() else {
            self.event();
            return;
        };
        if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
            return;
        }
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                self.write_json(&mut line, SystemTime::now());
                sink.write_line(line.as_bytes());
                if line.capacity() > LINE_KEPT {
                    *line = String::new();
                }
            }
            Err(_) => {
                let mut line = String::new();
                self.write_json(&mut line, SystemTime::now());
                sink.write_line(line.as_bytes());
            }
        });
    }

    /// The line as a `tracing` event (the text format, tests).
    fn event(&self) {
        tracing::info!(
            target: TARGET,
            request_id = %self.request_id,
            route = %self.route,
            api = self.api,
            subject = %self.subject,
            team = self.team,
            session = self.session,
            requested_model = %self.requested_model,
            model = %self.model,
            backend = %self.backend,
            provider = self.provider,
            status = self.status,
            outcome = self.outcome,
            stream = self.stream,
            attempts = self.attempts,
            byok = self.byok,
            input_tokens = self.input_tokens,
            output_tokens = self.output_tokens,
            cache_read_tokens = self.cache_read_tokens,
            cache_write_tokens = self.cache_write_tokens,
            usage_estimated = self.usage_estimated,
            latency_ms = self.latency_ms,
            "request finished"
        );
    }

    /// The line as [`crate::log_json::JsonLines`] formats [`Self::event`],
    /// with its newline, stamped `at`.
    fn write_json(&self, out: &mut String, at: SystemTime) {
        let text = |out: &mut String, key: &str, value: &str| {
            out.push_str(key);
            write_escaped(out, value);
        };
        let number = |out: &mut String, key: &str, value: u64| {
            out.push_str(key);
            out.push_str(itoa::Buffer::new().format(value));
        };
        let flag = |out: &mut String, key: &str, value: bool| {
            out.push_str(key);
            out.push_str(if value { "true" } else { "false" });
        };
        out.reserve(512);
        out.push_str("{\"timestamp\":\"");
        write_timestamp(out, at);
        out.push_str("\",\"level\":\"INFO\",\"message\":\"request finished\"");
        text(out, ",\"request_id\":", self.request_id);
        text(out, ",\"route\":", self.route);
        text(out, ",\"api\":", self.api);
        text(out, ",\"subject\":", self.subject);
        text(out, ",\"team\":", self.team);
        text(out, ",\"session\":", self.session);
        text(out, ",\"requested_model\":", self.requested_model);
        text(out, ",\"model\":", self.model);
        text(out, ",\"backend\":", self.backend);
        text(out, ",\"provider\":", self.provider);
        number(out, ",\"status\":", u64::from(self.status));
        text(out, ",\"outcome\":", self.outcome);
        flag(out, ",\"stream\":", self.stream);
        number(out, ",\"attempts\":", u64::from(self.attempts));
        flag(out, ",\"byok\":", self.byok);
        number(out, ",\"input_tokens\":", self.input_tokens);
        number(out, ",\"output_tokens\":", self.output_tokens);
        number(out, ",\"cache_read_tokens\":", self.cache_read_tokens);
        number(out, ",\"cache_write_tokens\":", self.cache_write_tokens);
        flag(out, ",\"usage_estimated\":", self.usage_estimated);
        number(out, ",\"latency_ms\":", self.latency_ms);
        out.push_str(",\"target\":\"switchboard::access\"}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(odd: &'a str, numbers: u64, flags: bool) -> AccessLine<'a> {
        AccessLine {
            request_id: odd,
            route: "ns/route",
            api: "chat_completions",
            subject: odd,
            team: "",
            session: "s-1",
            requested_model: odd,
            model: "gpt-4o",
            backend: "ns/openai",
            provider: "openai",
            status: u16::try_from(numbers % 1000).unwrap(),
            outcome: "completed",
            stream: flags,
            attempts: u32::try_from(numbers % 100).unwrap(),
            byok: !flags,
            input_tokens: numbers,
            output_tokens: numbers / 3,
            cache_read_tokens: 0,
            cache_write_tokens: u64::MAX,
            usage_estimated: flags,
            latency_ms: numbers % 60_000,
        }
    }

    #[test]
    fn the_direct_line_is_the_events_json_line() {
        let odd = "quote \" backslash \\ newline \n nul \0 del \x7f é 🙂 \u{2028}";
        let cases = [
            record("r-1", 0, false),
            record(odd, 1_234_567, true),
            record("", u64::MAX, false),
        ];
        for line in &cases {
            let (logs, guard) = super::super::testing::capture_logs();
            line.event();
            drop(guard);
            let through_tracing = logs.text();
            let mut direct = String::new();
            line.write_json(&mut direct, SystemTime::now());
            assert_eq!(
                without_timestamp(&direct),
                without_timestamp(&through_tracing)
            );
        }
    }

    /// The line after its timestamp's value (the two lines are stamped at
    /// different instants; `log_json`'s tests cover the timestamp).
    fn without_timestamp(line: &str) -> &str {
        let stamp: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        let ts = stamp["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2026-12-07T03:49:30.167303Z".len(), "{ts}");
        line.strip_prefix("{\"timestamp\":\"")
            .and_then(|rest| rest.strip_prefix(ts))
            .unwrap()
    }
}
