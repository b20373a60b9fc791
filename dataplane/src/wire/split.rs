//! Cuts an SSE byte stream into whole raw events, so the relay can forward
//! each event as it completes (byte for byte) and drop the malformed ones.
//!
//! Lines end in `\n`, `\r\n` or `\r`; a blank line ends an event. A `\r` at
//! the end of the data seen so far waits for the next chunk, which may start
//! with the `\n` of the same line ending.

use bytes::{Bytes, BytesMut};

/// What [`EventSplitter::push`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Complete raw events, each with its terminating blank line: slices of
    /// [`Split::all`], in order.
    pub events: Vec<Bytes>,
    /// The complete events back to back, as one buffer (no copy).
    pub all: Bytes,
    /// Events dropped because they outgrew the size limit.
    pub oversized: u64,
}

/// Incremental splitter of an SSE stream into raw events.
#[derive(Debug)]
pub struct EventSplitter {
    buf: BytesMut,
    /// Where scanning for the next line ending resumes.
    scan: usize,
    /// Start of the current line in `buf`.
    line_start: usize,
    /// Discarding an oversized event until its blank line.
    skipping: bool,
    max_event_bytes: usize,
}

impl EventSplitter {
    /// A splitter that drops events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scan: 0,
            line_start: 0,
            skipping: false,
            max_event_bytes,
        }
    }

    /// Adds a chunk and returns the events it completed.
    pub fn push(&mut self, data: &[u8]) -> Split {
        let mut out = Split::default();
        self.buf.extend_from_slice(data);
        // Events found, as ranges of `buf`; the first kept one starts at
        // `first` (after the rest of an oversized event), the last ends at `end`.
        let mut bounds: Vec<(usize, usize)> = Vec::new();
        let mut first = 0;
        let mut end = 0;
        loop {
            let rest = &self.buf[self.scan..];
            let Some(rel) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.scan = self.buf.len();
                break;
            };
            let pos = self.scan + rel;
            let term = if self.buf[pos] == b'\r' {
                match self.buf.get(pos + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None => {
                        // `\r` or `\r\n`: the next chunk tells.
                        self.scan = pos;
                        break;
                    }
                }
            } else {
                1
            };
            let next = pos + term;
            if pos == self.line_start {
                if std::mem::take(&mut self.skipping) {
                    first = next;
                } else {
                    bounds.push((end, next));
                }
                end = next;
            }
            self.line_start = next;
            self.scan = next;
        }
        if end > 0 {
            let all = self.buf.split_to(end).freeze();
            self.scan -= end;
            // Set by the blank line at `end - term` or by a later line ending.
            self.line_start -= end;
            out.events = bounds.iter().map(|&(a, b)| all.slice(a..b)).collect();
            out.all = all.slice(first..);
        }
        if self.buf.len() > self.max_event_bytes {
            // Drop what is buffered and skip to this event's blank line. The
            // current line began before the (now empty) buffer, so no line
            // starts at 0 until the next line ending.
            self.buf.clear();
            self.scan = 0;
            self.line_start = usize::MAX;
            if !self.skipping {
                out.oversized += 1;
            }
            self.skipping = true;
        }
        out
    }

    /// True when no partial event is buffered.
    pub fn at_boundary(&self) -> bool {
        self.buf.is_empty() && !self.skipping
    }

    /// The end of the stream: what is left of an unfinished event, if any
    /// (never part of an oversized one).
    pub fn finish(&mut self) -> Option<Bytes> {
        let rest = std::mem::take(&mut self.buf).freeze();
        self.scan = 0;
        self.line_start = 0;
        if std::mem::take(&mut self.skipping) || rest.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        Some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> (Vec<Bytes>, u64, Option<Bytes>) {
        let mut s = EventSplitter::new(64);
        let mut events = Vec::new();
        let mut oversized = 0;
        for c in chunks {
            let out = s.push(c);
            events.extend(out.events);
            oversized += out.oversized;
        }
        let rest = s.finish();
        (events, oversized, rest)
    }

    #[test]
    fn splits_on_blank_lines_with_every_line_ending() {
        let text = b"event: a\ndata: 1\n\ndata: 2\r\n\r\ndata: 3\r\rdata: 4\n\n";
        let (events, _, rest) = split_all(&[text]);
        assert_eq!(
            events,
            vec![
                Bytes::from_static(b"event: a\ndata: 1\n\n"),
                Bytes::from_static(b"data: 2\r\n\r\n"),
                Bytes::from_static(b"data: 3\r\r"),
                Bytes::from_static(b"data: 4\n\n"),
            ]
        );
        assert_eq!(rest, None);
    }

    #[test]
    fn every_cut_position_gives_the_same_events() {
        let text: &[u8] = b": ping\n\nevent: x\r\ndata: {\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n";
        let (whole, _, _) = split_all(&[text]);
        assert_eq!(whole.len(), 3);
        for cut in 0..=text.len() {
            let (events, _, rest) = split_all(&[&text[..cut], &text[cut..]]);
            assert_eq!(events, whole, "cut at {cut}");
            assert_eq!(rest, None);
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split_all(&bytes).0, whole);
    }

    #[test]
    fn unfinished_event_is_returned_at_the_end() {
        let (events, _, rest) = split_all(&[b"data: 1\n\ndata: 2"]);
        assert_eq!(events.len(), 1);
        assert_eq!(rest, Some(Bytes::from_static(b"data: 2")));
    }

    #[test]
    fn oversized_events_are_dropped_and_the_stream_continues() {
        let big = vec![b'a'; 100];
        let mut first = b"data: ".to_vec();
        first.extend_from_slice(&big);
        let (events, oversized, rest) =
            split_all(&[b"data: ok\n\n", &first, b"\n\ndata: next\n\n"]);
        assert_eq!(oversized, 1);
        assert_eq!(
            events,
            vec![
                Bytes::from_static(b"data: ok\n\n"),
                Bytes::from_static(b"data: next\n\n")
            ]
        );
        assert_eq!(rest, None);
    }
}
