//! The JSON log-line format (`--log-format=json`), written straight into
//! the line buffer.
//!
//! The lines are exactly those of `tracing-subscriber`'s JSON formatter
//! with `flatten_event(true)` and no spans (the format the gateway always
//! had, and what collectors parse):
//! `{"timestamp":"2026-12-07T03:49:30.167303Z","level":"INFO","message":"…",<fields in order>,"target":"…"}`.
//! That formatter serializes every field through `serde_json` behind an
//! `io::Write` adaptor that re-checks UTF-8 for each piece; on the request
//! path the access-log line was the largest single item of the gateway's
//! CPU per request (docs/benchmarks.md). This one escapes each string once
//! into the buffer. A test formats the same events with both and compares
//! the lines.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::calendar::civil_from_days;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON event format (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

thread_local! {
    /// The line being formatted, reused by every event of the thread.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The most a thread's line buffer keeps between events: a rare long line
/// (a large error) is not held for the life of the thread.
const LINE_KEPT: usize = 16 * 1024;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The line is built in a plain `String` (direct pushes, no dynamic
        // `fmt::Write` call per piece) and handed over in one piece.
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                let written = format_line(&mut line, event, SystemTime::now())
                    .and_then(|()| writer.write_str(&line));
                if line.capacity() > LINE_KEPT {
                    *line = String::new();
                }
                written
            }
            // A field's `Debug` that logs: format that event on its own.
            Err(_) => {
                let mut line = String::new();
                format_line(&mut line, event, SystemTime::now())?;
                writer.write_str(&line)
            }
        })
    }
}

/// `event` as one JSON line, with its newline.
fn format_line(out: &mut String, event: &Event<'_>, at: SystemTime) -> fmt::Result {
    let meta = event.metadata();
    out.push_str("{\"timestamp\":\"");
    write_timestamp(out, at);
    out.push_str("\",\"level\":\"");
    out.push_str(meta.level().as_str());
    out.push('"');
    let mut fields = Fields {
        out,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    out.push_str(",\"target\":");
    write_escaped(out, meta.target());
    out.push_str("}\n");
    Ok(())
}

/// Writes each field as `,"name":value`.
struct Fields<'a> {
    out: &'a mut String,
    result: fmt::Result,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) {
        let name = field.name();
        // Field names are identifiers: nothing to escape, one copy.
        if name.bytes().all(|b| !NEEDS_ESCAPE[usize::from(b)]) {
            self.out.reserve(name.len() + 4);
            self.out.push_str(",\"");
            self.out.push_str(name);
            self.out.push_str("\":");
        } else {
            self.out.push(',');
            write_escaped(self.out, name);
            self.out.push(':');
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        write_escaped(self.out, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // As serde_json: finite numbers in their shortest form, others null.
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                let _ = write!(self.out, "{n}");
            }
            None => self.out.push_str("null"),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.key(field);
        self.out.push('"');
        self.result = write!(Escaping(self.out), "{value:?}");
        self.out.push('"');
    }
}

/// `s` as a JSON string, escaped as `serde_json` does.
pub(crate) fn write_escaped(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Escapes what is formatted into it, as [`write_escaped`] does (without
/// the quotes), so `Debug` and `Display` values need no copy.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// The content of `s` as a JSON string, without the quotes.
fn push_escaped(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    // Runs that need no escape (nearly every string) are copied whole.
    while let Some(offset) = first_to_escape(&bytes[start..]) {
        let i = start + offset;
        out.push_str(&s[start..i]);
        let b = bytes[i];
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Where the first byte of `bytes` that JSON escapes is. Blocks of 16 bytes
/// are tested without a branch per byte (the compiler vectorizes the test),
/// and only the block that holds one is searched byte by byte.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    for block in bytes.chunks(16) {
        let any = block.iter().fold(false, |any, &b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if any {
            return block
                .iter()
                .position(|&b| NEEDS_ESCAPE[usize::from(b)])
                .map(|i| at + i);
        }
        at += block.len();
    }
    None
}

/// The bytes JSON strings escape: control characters, `"` and `\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// `at` as RFC 3339 in UTC with microseconds: `2026-12-07T03:49:30.167303Z`.
pub(crate) fn write_timestamp(out: &mut String, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    // The text up to the second is the same for every line of that second:
    // each thread keeps the last one it wrote.
    SECOND.with(|cell| {
        let mut second = cell.borrow_mut();
        if second.0 != Some(secs) {
            second.1.clear();
            write_second(&mut second.1, secs);
            second.0 = Some(secs);
        }
        out.push_str(&second.1);
    });
    let mut micros = [b'0'; 6];
    let mut rest = since.subsec_micros();
    for digit in micros.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend(micros.iter().map(|&d| char::from(d)));
    out.push('Z');
}

thread_local! {
    /// The last second [`write_timestamp`] wrote on this thread, and its text.
    static SECOND: RefCell<(Option<u64>, String)> = const { RefCell::new((None, String::new())) };
}

/// `secs` since the epoch as `2026-12-07T03:49:30.` (the date and time up
/// to the fraction).
fn write_second(out: &mut String, secs: u64) {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let pieces: [(u64, usize, char); 6] = [
        (u64::try_from(year).unwrap_or(0), 4, '-'),
        (u64::from(month), 2, '-'),
        (u64::from(day), 2, 'T'),
        (rest / 3600, 2, ':'),
        (rest / 60 % 60, 2, ':'),
        (rest % 60, 2, '.'),
    ];
    for (value, width, then) in pieces {
        push_padded(out, value, width);
        out.push(then);
    }
}

/// `value` in decimal, zero-padded to at least `width` digits.
fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(value);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::Layer as _;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// Events covering every kind of field value and the characters JSON escapes.
    fn emit() {
        let odd = "quote \" backslash \\ newline \n tab \t nul \0 bell \x07 del \x7f é 🙂 \u{2028}";
        tracing::info!(
            target: "switchboard::access",
            request_id = %"r-1",
            route = %"ns/route",
            api = "chat_completions",
            team = "",
            model = %odd,
            status = 200u16,
            attempts = 1usize,
            stream = true,
            byok = false,
            delta = -5i64,
            ratio = 0.25f64,
            nan = f64::NAN,
            big = u128::MAX,
            error = %std::io::Error::other("broken \"pipe\""),
            debugged = ?vec!["a", "b"],
            "name \"quoted\"" = 1u64,
            "request finished"
        );
        tracing::warn!(listener = "traffic", "all connections {} drained", 3);
        tracing::error!(target: "switchboard_dataplane::x", "plain");
        tracing::debug!(n = 1u64, "below the level");
    }

    fn without_timestamp(line: &str) -> (String, String) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["timestamp"].as_str().unwrap().to_owned();
        let prefix = format!("{{\"timestamp\":\"{ts}\"");
        (ts, line.strip_prefix(&prefix).unwrap().to_owned())
    }

    #[test]
    fn a_long_line_is_written_whole_and_its_buffer_not_kept() {
        let out = Buf::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(out.clone()),
        );
        let big = "x".repeat(100_000);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(big = %big, "long");
            tracing::info!("short");
        });
        let lines = out.lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(&format!("\"big\":\"{big}\"")));
        assert!(LINE.with(|l| l.borrow().capacity()) <= LINE_KEPT);
    }

    #[test]
    fn lines_are_those_of_tracing_subscribers_json_format() {
        let ours = Buf::default();
        let theirs = Buf::default();
        let filter = tracing_subscriber::filter::LevelFilter::INFO;
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(ours.clone())
                    .with_filter(filter),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(theirs.clone())
                    .with_filter(filter),
            );
        tracing::subscriber::with_default(subscriber, emit);
        let (ours, theirs) = (ours.lines(), theirs.lines());
        assert_eq!(ours.len(), 3, "{ours:#?}");
        assert_eq!(ours.len(), theirs.len());
        for (o, t) in ours.iter().zip(&theirs) {
            let (ts_o, rest_o) = without_timestamp(o);
            let (ts_t, rest_t) = without_timestamp(t);
            assert_eq!(rest_o, rest_t);
            // Same shape: 2026-12-07T03:49:30.167303Z.
            assert_eq!(ts_o.len(), ts_t.len(), "{ts_o} / {ts_t}");
            assert_eq!(&ts_o[..16], &ts_t[..16], "{ts_o} / {ts_t}");
        }
        assert!(ours[0].contains(r#","name \"quoted\"":1,"#), "{}", ours[0]);
        assert!(ours[0].contains(
            r#""model":"quote \" backslash \\ newline \n tab \t nul \u0000 bell \u0007 del"#
        ));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut s = String::new();
        write_timestamp(&mut s, UNIX_EPOCH);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        for (secs, micros, want) in [
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            (1_796_614_170, 167_303, "2026-12-07T03:29:30.167303Z"),
            (4_102_444_799, 999_999, "2099-12-31T23:59:59.999999Z"),
        ] {
            s.clear();
            let at = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            write_timestamp(&mut s, at);
            assert_eq!(s, want);
        }
    }

    /// The text of a second is reused only within that second.
    #[test]
    fn timestamps_of_one_second_share_its_text_only() {
        let stamp = |secs: u64, micros: u64| {
            let mut s = String::new();
            write_timestamp(
                &mut s,
                UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros),
            );
            s
        };
        assert_eq!(stamp(1_796_614_170, 1), "2026-12-07T03:29:30.000001Z");
        assert_eq!(stamp(1_796_614_170, 999_999), "2026-12-07T03:29:30.999999Z");
        assert_eq!(stamp(1_796_614_171, 0), "2026-12-07T03:29:31.000000Z");
        // An earlier second after a later one (another thread's clock, a step back).
        assert_eq!(stamp(1_796_614_170, 5), "2026-12-07T03:29:30.000005Z");
        assert_eq!(stamp(0, 0), "1970-01-01T00:00:00.000000Z");
    }

    /// The block test finds the same first byte as a byte-by-byte search.
    #[test]
    fn the_first_byte_to_escape_is_found_in_any_block() {
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..5_000 {
            let bytes: Vec<u8> = (0..rng.usize(0..80))
                .map(|_| match rng.u8(0..12) {
                    0 => rng.u8(0..0x20),
                    1 => b'"',
                    2 => b'\\',
                    3 => rng.u8(0x80..),
                    _ => rng.u8(0x20..0x7f),
                })
                .collect();
            let want = bytes.iter().position(|&b| NEEDS_ESCAPE[usize::from(b)]);
            assert_eq!(first_to_escape(&bytes), want, "{bytes:?}");
        }
        assert_eq!(first_to_escape(&[b'a'; 47]), None);
        let mut late = vec![b'a'; 47];
        late[46] = b'\n';
        assert_eq!(first_to_escape(&late), Some(46));
    }
}
