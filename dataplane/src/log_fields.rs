//! Field formatting of the text log format that cannot be forged.
//!
//! Field values can hold what clients sent (a model name, a subject). The
//! default text formatter writes `%`-recorded values as they are, so a
//! newline in a model name starts a fake log line and escape codes reach
//! the terminal or log viewer. [`EscapedFields`] writes every field like the
//! default formatter (`name=value`, the message first without its name),
//! with each control character escaped the way Rust's `Debug` does
//! (`\n`, `\r`, `\t`, `\u{1b}`, …), so one event is always one line and
//! carries no raw escape codes. The JSON format escapes control characters
//! by itself.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// The text format's field formatter (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // `r#type` style names are written without their raw prefix.
        let name = name.strip_prefix("r#").unwrap_or(name);
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{sep}{}", Escaped(value))
        } else if name.starts_with("log.") {
            Ok(())
        } else {
            write!(self.writer, "{sep}{name}={}", Escaped(value))
        };
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Like the default formatter: strings quoted (their `Debug` form,
        // which escapes control characters already), the message bare.
        if field.name() == "message" {
            self.write(field, value);
        } else {
            self.write(field, &format!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

/// Writes a string with every control character escaped.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(char::is_control) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            for e in c.escape_debug() {
                f.write_char(e)?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(ansi: bool, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let out = buf.clone();
        let layer = crate::telemetry::text_layer(move || buf.clone(), ansi);
        let subscriber =
            tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), layer);
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_newline_or_escape_code_in_a_field_cannot_forge_a_line() {
        let forged = "claude\n2026-01-01T00:00:00Z  INFO switchboard::access: request finished \x1b[31mstatus=200";
        let out = logged(false, || {
            tracing::info!(
                target: "switchboard::access",
                model = %forged,
                subject = forged,
                debug = ?forged,
                "request finished"
            );
        });
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\x1b'), "{out:?}");
        assert!(out.contains(r"model=claude\n2026-01-01"), "{out}");
        assert!(out.contains(r"\u{1b}[31mstatus=200"), "{out}");
        assert!(out.contains("request finished model="), "{out}");
    }

    #[test]
    fn colours_stay_when_asked_for_but_field_values_are_escaped() {
        let out = logged(true, || tracing::info!(model = %"a\x1b[2Jb", "hello"));
        assert!(out.contains(r"a\u{1b}[2Jb"), "{out:?}");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(Escaped("café ünïcode").to_string(), "café ünïcode");
        assert_eq!(Escaped("a\tb\r\n").to_string(), r"a\tb\r\n");
        assert_eq!(Escaped("\u{7f}\u{85}").to_string(), r"\u{7f}\u{85}");
    }
}
