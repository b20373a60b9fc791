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
        let meta = event.metadata();
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(meta.level().as_str())?;
        writer.write_char('"')?;
        let mut fields = Fields {
            out: &mut writer,
            scratch: String::new(),
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        write_escaped(&mut writer, meta.target())?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    /// Reused for values formatted with `Debug` / `Display`.
    scratch: String,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.out.write_char(',')?;
        write_escaped(self.out, field.name())?;
        self.out.write_char(':')
    }

    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut Self) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self));
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, |f| write_escaped(f.out, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |f| {
            f.out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |f| write!(f.out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |f| write!(f.out, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // As serde_json: finite numbers in their shortest form, others null.
        self.entry(field, |f| match serde_json::Number::from_f64(value) {
            Some(n) => write!(f.out, "{n}"),
            None => f.out.write_str("null"),
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |f| {
            f.scratch.clear();
            write!(f.scratch, "{value:?}")?;
            write_escaped(f.out, &f.scratch)
        });
    }
}

/// `s` as a JSON string, escaped as `serde_json` does.
fn write_escaped(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        if escape.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(escape)?;
        }
        start = i + 1;
    }
    out.write_str(&s[start..])?;
    out.write_char('"')
}

/// `at` as RFC 3339 in UTC with microseconds: `2026-12-07T03:49:30.167303Z`.
fn write_timestamp(out: &mut impl fmt::Write, at: SystemTime) -> fmt::Result {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_micros()
    )
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
        assert!(ours[0].contains(
            r#""model":"quote \" backslash \\ newline \n tab \t nul \u0000 bell \u0007 del"#
        ));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut s = String::new();
        write_timestamp(&mut s, UNIX_EPOCH).unwrap();
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        for (secs, micros, want) in [
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            (1_796_614_170, 167_303, "2026-12-07T03:29:30.167303Z"),
            (4_102_444_799, 999_999, "2099-12-31T23:59:59.999999Z"),
        ] {
            s.clear();
            let at = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            write_timestamp(&mut s, at).unwrap();
            assert_eq!(s, want);
        }
    }
}
