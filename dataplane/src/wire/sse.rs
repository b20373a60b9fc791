//! An incremental Server-Sent Events parser.
//!
//! Feed it byte chunks exactly as they come off the network, split anywhere;
//! it yields complete events. It follows the WHATWG event-stream rules the
//! providers rely on:
//! - lines end in `\n`, `\r\n` or `\r` (a `\r` at the end of one chunk and a
//!   `\n` at the start of the next are one line ending);
//! - a blank line dispatches the event; an event without `data` is dropped;
//! - `data` lines are joined with `\n`; one space after the colon is removed
//!   (`data:x` and `data: x` are the same);
//! - lines starting with `:` are comments (keepalives) and are ignored;
//! - `id` and `retry` fields are ignored (the gateway never reconnects).
//!
//! An event larger than the size limit is reported once as
//! [`SseError::EventTooLarge`] and skipped; parsing continues with the next
//! event. Memory use is bounded by the limit.
//!
//! [`parse_whole`] reads one complete raw event (as cut by the relay's
//! splitter) in place, with the same rules and without copying.

use std::borrow::Cow;

/// Default largest event the parser accepts, in bytes (lines of one event).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// An event the parser could not deliver.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// The event exceeded the size limit and was skipped.
    #[error("SSE event exceeds {limit} bytes")]
    EventTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// The parser state between chunks.
#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The current line has at least one byte (tracked even when oversized).
    line_nonempty: bool,
    /// The previous chunk ended with `\r`; a leading `\n` belongs to it.
    after_cr: bool,
    /// The current event's name.
    event: Option<String>,
    /// The current event's data lines, each followed by `\n`.
    data: String,
    /// At least one data line was seen in the current event.
    has_data: bool,
    /// At least one field line was seen in the current event.
    in_event: bool,
    /// Bytes accounted to the current event.
    event_bytes: usize,
    /// The current event exceeded the limit and is being skipped.
    oversized: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that rejects events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            line_nonempty: false,
            after_cr: false,
            event: None,
            data: String::new(),
            has_data: false,
            in_event: false,
            event_bytes: 0,
            oversized: false,
        }
    }

    /// Parses `chunk` and returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Result<SseEvent, SseError>> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(i) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.append(&rest[..i]);
            let was_cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.end_line(&mut out);
        }
        self.append(rest);
        out
    }

    /// Ends the stream. An event whose lines were complete but which lacked
    /// the final blank line is dispatched (lenient: some upstreams close
    /// right after the last `data:` line); a partial last line is processed
    /// as if it had been terminated.
    pub fn finish(&mut self) -> Option<Result<SseEvent, SseError>> {
        let mut out = Vec::new();
        if self.line_nonempty {
            self.end_line(&mut out);
        }
        self.after_cr = false;
        self.end_line(&mut out);
        out.pop()
    }

    /// No partial line or undispatched event is pending: bytes appended now
    /// start a fresh event.
    pub fn at_boundary(&self) -> bool {
        !self.line_nonempty && !self.in_event && !self.oversized
    }

    fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.line_nonempty = true;
        if self.oversized {
            return;
        }
        self.event_bytes += bytes.len();
        if self.event_bytes > self.max_event_bytes {
            self.start_skipping();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn start_skipping(&mut self) {
        self.oversized = true;
        self.line = Vec::new();
        self.data = String::new();
        self.event = None;
        self.has_data = false;
    }

    fn end_line(&mut self, out: &mut Vec<Result<SseEvent, SseError>>) {
        let nonempty = std::mem::take(&mut self.line_nonempty);
        if !nonempty {
            self.dispatch(out);
            return;
        }
        if self.oversized {
            return;
        }
        self.in_event = true;
        let line = std::mem::take(&mut self.line);
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Result<SseEvent, SseError>>) {
        let oversized = std::mem::take(&mut self.oversized);
        let has_data = std::mem::take(&mut self.has_data);
        let mut data = std::mem::take(&mut self.data);
        let event = self.event.take();
        self.in_event = false;
        self.event_bytes = 0;
        self.line.clear();
        if oversized {
            out.push(Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            }));
        } else if has_data {
            if data.ends_with('\n') {
                data.pop();
            }
            out.push(Ok(SseEvent { event, data }));
        }
    }
}

/// One whole event borrowed from its raw bytes (see [`parse_whole`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// The `event:` field, if the event had one.
    pub event: Option<&'a str>,
    /// The `data:` lines joined with `\n` (borrowed when there is one line).
    pub data: Cow<'a, str>,
}

/// What [`parse_whole`] found in one raw event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WholeEvent<'a> {
    /// An event with data.
    Event(EventRef<'a>),
    /// No data line (comments, keepalives, or fields without data): the
    /// incremental parser would dispatch nothing.
    NoData,
    /// Not UTF-8: left to [`SseParser`], which replaces invalid bytes.
    NotUtf8,
}

/// Parses one complete raw event, as cut by
/// [`EventSplitter`](super::split::EventSplitter) (its lines and the blank
/// line that ends it), without copying. Same rules as [`SseParser`]: for a
/// whole UTF-8 event both give the same event.
pub fn parse_whole(raw: &[u8]) -> WholeEvent<'_> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return WholeEvent::NotUtf8;
    };
    let mut event = None;
    let mut data: Option<Cow<'_, str>> = None;
    for line in Lines(text) {
        if line.is_empty() {
            // The blank line that ends the event.
            break;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value),
            "data" => {
                data = Some(match data {
                    None => Cow::Borrowed(value),
                    Some(d) => {
                        let mut joined = d.into_owned();
                        joined.push('\n');
                        joined.push_str(value);
                        Cow::Owned(joined)
                    }
                })
            }
            _ => {}
        }
    }
    match data {
        Some(data) => WholeEvent::Event(EventRef { event, data }),
        None => WholeEvent::NoData,
    }
}

/// Lines of a text ending in `\n`, `\r\n` or `\r` (a last line without an
/// ending is yielded too).
struct Lines<'a>(&'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let bytes = self.0.as_bytes();
        let Some(i) = bytes.iter().position(|b| *b == b'\n' || *b == b'\r') else {
            return Some(std::mem::take(&mut self.0));
        };
        let end = if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i + 2
        } else {
            i + 1
        };
        let line = &self.0[..i];
        self.0 = &self.0[end..];
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> Result<SseEvent, SseError> {
        Ok(SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        })
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<Result<SseEvent, SseError>> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.feed(c));
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn basic_events_and_names() {
        let got = parse_all(&[b"event: message_start\ndata: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(
            got,
            vec![ev(Some("message_start"), "{\"a\":1}"), ev(None, "[DONE]")]
        );
    }

    #[test]
    fn all_line_endings() {
        for input in [
            &b"event: x\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n"[..],
            &b"event: x\rdata: 1\r\rdata: 2\r\r"[..],
            &b"event: x\ndata: 1\n\ndata: 2\n\n"[..],
        ] {
            assert_eq!(
                parse_all(&[input]),
                vec![ev(Some("x"), "1"), ev(None, "2")],
                "{input:?}"
            );
        }
    }

    #[test]
    fn cr_at_chunk_end_then_lf() {
        let got = parse_all(&[b"data: 1\r", b"\n\r", b"\ndata: 2\r", b"\r"]);
        assert_eq!(got, vec![ev(None, "1"), ev(None, "2")]);
    }

    #[test]
    fn multi_line_data_and_space_rule() {
        let got = parse_all(&[b"data:a\ndata: b\ndata:  c\n\n"]);
        assert_eq!(got, vec![ev(None, "a\nb\n c")]);
    }

    #[test]
    fn comments_and_other_fields_ignored() {
        let got =
            parse_all(&[b": keepalive\n\n:ping\nid: 7\nretry: 100\ndata: x\n\nevent: lonely\n\n"]);
        assert_eq!(got, vec![ev(None, "x")]);
    }

    #[test]
    fn field_without_colon() {
        let got = parse_all(&[b"data\n\n"]);
        assert_eq!(got, vec![ev(None, "")]);
    }

    #[test]
    fn unterminated_last_event_is_flushed_at_finish() {
        assert_eq!(parse_all(&[b"data: [DONE]\n"]), vec![ev(None, "[DONE]")]);
        assert_eq!(parse_all(&[b"data: [DONE]"]), vec![ev(None, "[DONE]")]);
        assert_eq!(parse_all(&[b"data: 1\n\n"]), vec![ev(None, "1")]);
    }

    #[test]
    fn boundary_tracking() {
        let mut p = SseParser::default();
        assert!(p.at_boundary());
        p.feed(b"data: {\"par");
        assert!(!p.at_boundary());
        p.feed(b"tial\"}\n");
        assert!(!p.at_boundary());
        p.feed(b"\n");
        assert!(p.at_boundary());
    }

    #[test]
    fn oversized_event_skipped_and_parser_continues() {
        let mut p = SseParser::new(16);
        let mut out = p.feed(b"data: small\n\ndata: ");
        out.extend(p.feed(&[b'x'; 40]));
        out.extend(p.feed(b"\ndata: more\n\nevent: e\ndata: ok\n\n"));
        assert_eq!(
            out,
            vec![
                ev(None, "small"),
                Err(SseError::EventTooLarge { limit: 16 }),
                ev(Some("e"), "ok")
            ]
        );
    }

    fn fixture_events(bytes: &[u8]) -> Vec<Result<SseEvent, SseError>> {
        let whole = parse_all(&[bytes]);
        assert!(!whole.is_empty());
        whole
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        for name in super::super::relay::tests_support::CAPTURES {
            let bytes =
                std::fs::read(super::super::relay::tests_support::capture_path(name)).unwrap();
            let whole = fixture_events(&bytes);
            let mut p = SseParser::default();
            let mut split = Vec::new();
            for b in &bytes {
                split.extend(p.feed(std::slice::from_ref(b)));
            }
            split.extend(p.finish());
            assert_eq!(whole, split, "{name}");
            // Every split point of a CRLF version too.
            let crlf: Vec<u8> = String::from_utf8(bytes.clone())
                .unwrap()
                .replace('\n', "\r\n")
                .into_bytes();
            for cut in 0..crlf.len() {
                let got = parse_all(&[&crlf[..cut], &crlf[cut..]]);
                assert_eq!(whole, got, "{name} cut at {cut}");
            }
        }
    }

    #[test]
    fn whole_events_parse_like_the_incremental_parser() {
        let cases: &[&[u8]] = &[
            b"event: message_start\ndata: {\"a\":1}\n\n",
            b"data: [DONE]\r\n\r\n",
            b"event: x\rdata: 1\r\r",
            b"data:a\ndata: b\ndata:  c\n\n",
            b": keepalive\n\n",
            b":ping\nid: 7\nretry: 100\ndata: x\n\n",
            b"event: lonely\n\n",
            b"data\n\n",
            b"\n",
            b"event: a\nevent: b\ndata: {}\n\n",
        ];
        for raw in cases {
            let mut p = SseParser::default();
            let mut old = p.feed(raw);
            old.extend(p.finish());
            let new = match parse_whole(raw) {
                WholeEvent::Event(e) => vec![ev(e.event, &e.data)],
                WholeEvent::NoData => vec![],
                WholeEvent::NotUtf8 => panic!("{raw:?} is UTF-8"),
            };
            assert_eq!(new, old, "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(parse_whole(b"data: \xff\n\n"), WholeEvent::NotUtf8);
    }

    #[test]
    fn whole_events_of_the_captures_match() {
        for name in super::super::relay::tests_support::CAPTURES {
            let bytes =
                std::fs::read(super::super::relay::tests_support::capture_path(name)).unwrap();
            let mut splitter = super::super::split::EventSplitter::new(DEFAULT_MAX_EVENT_BYTES);
            let mut new = Vec::new();
            let mut raws = splitter.push(&bytes::Bytes::from(bytes.clone())).events;
            raws.extend(splitter.finish());
            for raw in &raws {
                if let WholeEvent::Event(e) = parse_whole(raw) {
                    new.push(ev(e.event, &e.data));
                }
            }
            assert_eq!(new, parse_all(&[&bytes]), "{name}");
        }
    }
}
