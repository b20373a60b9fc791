//! Incremental event-stream decoder (see the module docs of
//! [`super`](crate::wire::eventstream) for the layout).

use bytes::{Buf, Bytes, BytesMut};

use super::{DEFAULT_MAX_MESSAGE, Header, HeaderValue, Message, OVERHEAD, PRELUDE_LEN};

/// Why the framing could not be read. Every error is final: the decoder
/// cannot find the next message boundary after it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The prelude's CRC does not match its first 8 bytes.
    #[error(
        "event-stream prelude CRC mismatch (expected {expected:#010x}, computed {computed:#010x})"
    )]
    PreludeCrc {
        /// CRC in the prelude.
        expected: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The message CRC does not match the message.
    #[error(
        "event-stream message CRC mismatch (expected {expected:#010x}, computed {computed:#010x})"
    )]
    MessageCrc {
        /// CRC at the end of the message.
        expected: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The message is larger than the decoder's bound.
    #[error("event-stream message of {length} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// `total_length` of the message.
        length: usize,
        /// The bound.
        limit: usize,
    },
    /// The lengths in the prelude are inconsistent.
    #[error("event-stream prelude has inconsistent lengths (total {total}, headers {headers})")]
    BadLengths {
        /// `total_length`.
        total: usize,
        /// `headers_length`.
        headers: usize,
    },
    /// A header could not be read.
    #[error("event-stream header is malformed: {0}")]
    BadHeader(String),
    /// The stream ended inside a message.
    #[error("event-stream ended inside a message ({buffered} bytes left over)")]
    Truncated {
        /// Bytes of the unfinished message.
        buffered: usize,
    },
}

/// Decodes messages from chunks of bytes split anywhere.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_message: usize,
    /// `total_length` of the message at the front, once its prelude was checked.
    pending: Option<usize>,
    failed: Option<FrameError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Decoder {
    /// A decoder refusing messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_message: max_message.max(OVERHEAD),
            pending: None,
            failed: None,
        }
    }

    /// Appends bytes from the network. Ignored once the decoder failed.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Bytes buffered and not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or
    /// the framing error (returned again on every later call).
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(m) => Ok(m),
            Err(e) => {
                self.buf = BytesMut::new();
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Ends the stream: an error when a message was cut short.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buf.len(),
            })
        }
    }

    fn step(&mut self) -> Result<Option<Message>, FrameError> {
        let total = match self.pending {
            Some(t) => t,
            None => {
                if self.buf.len() < PRELUDE_LEN {
                    return Ok(None);
                }
                let t = check_prelude(&self.buf[..PRELUDE_LEN], self.max_message)?;
                self.pending = Some(t);
                t
            }
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        self.pending = None;
        let frame = self.buf.split_to(total).freeze();
        parse_message(frame).map(Some)
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks a prelude; returns the message's total length.
fn check_prelude(prelude: &[u8], max_message: usize) -> Result<usize, FrameError> {
    let total = be32(&prelude[0..4]) as usize;
    let headers = be32(&prelude[4..8]) as usize;
    let expected = be32(&prelude[8..12]);
    let computed = crc32fast::hash(&prelude[..8]);
    if expected != computed {
        return Err(FrameError::PreludeCrc { expected, computed });
    }
    if total < OVERHEAD || headers > total - OVERHEAD {
        return Err(FrameError::BadLengths { total, headers });
    }
    if total > max_message {
        return Err(FrameError::TooLarge {
            length: total,
            limit: max_message,
        });
    }
    Ok(total)
}

/// Parses one whole message whose prelude was checked.
fn parse_message(frame: Bytes) -> Result<Message, FrameError> {
    let total = frame.len();
    let expected = be32(&frame[total - 4..]);
    let computed = crc32fast::hash(&frame[..total - 4]);
    if expected != computed {
        return Err(FrameError::MessageCrc { expected, computed });
    }
    let headers_len = be32(&frame[4..8]) as usize;
    let headers_end = PRELUDE_LEN + headers_len;
    let headers = parse_headers(frame.slice(PRELUDE_LEN..headers_end))?;
    let payload = frame.slice(headers_end..total - 4);
    Ok(Message { headers, payload })
}

fn bad(what: impl Into<String>) -> FrameError {
    FrameError::BadHeader(what.into())
}

fn take(buf: &mut Bytes, n: usize, what: &str) -> Result<Bytes, FrameError> {
    if buf.len() < n {
        return Err(bad(format!("{what} runs past the header section")));
    }
    Ok(buf.split_to(n))
}

fn parse_headers(mut buf: Bytes) -> Result<Vec<Header>, FrameError> {
    let mut headers = Vec::new();
    while buf.has_remaining() {
        let name_len = buf.get_u8() as usize;
        if name_len == 0 {
            return Err(bad("empty header name"));
        }
        let name = take(&mut buf, name_len, "header name")?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| bad("header name is not UTF-8"))?;
        if !buf.has_remaining() {
            return Err(bad(format!("header {name:?} has no value type")));
        }
        let kind = buf.get_u8();
        let fixed = |buf: &mut Bytes, n: usize| take(buf, n, &format!("value of header {name:?}"));
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(fixed(&mut buf, 1)?.get_i8()),
            3 => HeaderValue::Short(fixed(&mut buf, 2)?.get_i16()),
            4 => HeaderValue::Int(fixed(&mut buf, 4)?.get_i32()),
            5 => HeaderValue::Long(fixed(&mut buf, 8)?.get_i64()),
            6 | 7 => {
                let len = fixed(&mut buf, 2)?.get_u16() as usize;
                let bytes = fixed(&mut buf, len)?;
                if kind == 6 {
                    HeaderValue::Bytes(bytes)
                } else {
                    HeaderValue::String(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| bad(format!("header {name:?} is not UTF-8")))?,
                    )
                }
            }
            8 => HeaderValue::Timestamp(fixed(&mut buf, 8)?.get_i64()),
            9 => {
                let mut id = [0u8; 16];
                id.copy_from_slice(&fixed(&mut buf, 16)?);
                HeaderValue::Uuid(id)
            }
            other => return Err(bad(format!("header {name:?} has unknown type {other}"))),
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::super::encode::{encode, event_message};
    use super::*;

    #[test]
    fn decodes_a_message_fed_byte_by_byte() {
        let msg = event_message("chunk", "application/json", br#"{"bytes":"e30="}"#);
        let wire = encode(&msg);
        let mut d = Decoder::default();
        for (i, b) in wire.iter().enumerate() {
            d.feed(&[*b]);
            let got = d.next_message().unwrap();
            if i + 1 < wire.len() {
                assert_eq!(got, None, "complete only at the last byte");
            } else {
                assert_eq!(got, Some(msg.clone()));
            }
        }
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn a_corrupt_length_is_refused_before_buffering() {
        let mut wire = encode(&event_message("chunk", "application/json", b"{}"));
        // A huge total length with a recomputed prelude CRC.
        wire[0..4].copy_from_slice(&(1u32 << 30).to_be_bytes());
        let crc = crc32fast::hash(&wire[..8]);
        wire[8..12].copy_from_slice(&crc.to_be_bytes());
        let mut d = Decoder::new(1 << 20);
        d.feed(&wire[..12]);
        assert!(matches!(
            d.next_message(),
            Err(FrameError::TooLarge { length, limit }) if length == 1 << 30 && limit == 1 << 20
        ));
        d.feed(&wire[12..]);
        assert_eq!(d.buffered(), 0, "a failed decoder keeps nothing");
        assert!(d.next_message().is_err(), "and stays failed");
    }

    #[test]
    fn lengths_smaller_than_the_framing_are_refused() {
        for (total, headers) in [(0u32, 0u32), (15, 0), (16, 1), (20, 5)] {
            let mut p = Vec::new();
            p.extend_from_slice(&total.to_be_bytes());
            p.extend_from_slice(&headers.to_be_bytes());
            let crc = crc32fast::hash(&p);
            p.extend_from_slice(&crc.to_be_bytes());
            let mut d = Decoder::default();
            d.feed(&p);
            assert!(
                matches!(d.next_message(), Err(FrameError::BadLengths { .. })),
                "{total}/{headers}"
            );
        }
    }

    #[test]
    fn truncation_is_reported_at_the_end() {
        let wire = encode(&event_message("chunk", "application/json", b"{}"));
        let mut d = Decoder::default();
        d.feed(&wire[..wire.len() - 1]);
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(
            d.finish(),
            Err(FrameError::Truncated {
                buffered: wire.len() - 1
            })
        );
    }

    #[test]
    fn unknown_header_types_and_bad_utf8_are_errors() {
        let build = |headers: &[u8]| {
            let total = (OVERHEAD + headers.len()) as u32;
            let mut w = Vec::new();
            w.extend_from_slice(&total.to_be_bytes());
            w.extend_from_slice(&(headers.len() as u32).to_be_bytes());
            let crc = crc32fast::hash(&w);
            w.extend_from_slice(&crc.to_be_bytes());
            w.extend_from_slice(headers);
            let crc = crc32fast::hash(&w);
            w.extend_from_slice(&crc.to_be_bytes());
            w
        };
        for (headers, want) in [
            (&b"\x01a\x0a"[..], "unknown type 10"),
            (&b"\x01a\x07\x00\x02\xff\xfe"[..], "not UTF-8"),
            (&b"\x00"[..], "empty header name"),
            (&b"\x01a\x04\x00\x00"[..], "runs past"),
            (&b"\x05abc"[..], "runs past"),
            (&b"\x01a"[..], "no value type"),
        ] {
            let mut d = Decoder::default();
            d.feed(&build(headers));
            match d.next_message() {
                Err(FrameError::BadHeader(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{headers:?}: {other:?}"),
            }
        }
    }
}
