//! Randomised tests of the event-stream decoder: a stable-toolchain fuzzer
//! with a fixed case count and fixed seeds, so CI runs it for a bounded time
//! and a failure reproduces. `SWITCHBOARD_FUZZ_CASES=N` runs N cases per
//! property instead of the default (e.g. a longer local run), and
//! `SWITCHBOARD_FUZZ_SEED=S` starts from another seed.
//!
//! Properties:
//! - random messages (every header type, payloads up to 4 KiB) encoded,
//!   concatenated and fed in random splits decode to the same messages;
//! - a stream with one byte changed yields the messages before the damaged
//!   one unchanged and then a framing error, never a different message
//!   (CRC32 detects every change of up to 32 bits);
//! - every truncated stream yields the whole messages before the cut and
//!   then `Truncated` at the end;
//! - random garbage never panics, never yields more than it was given, and
//!   never makes the decoder hold more than its limit plus one chunk.

use bytes::Bytes;

use super::*;

const DEFAULT_CASES: u64 = 1000;

fn cases() -> u64 {
    std::env::var("SWITCHBOARD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn rng(property: u64) -> fastrand::Rng {
    let base = std::env::var("SWITCHBOARD_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_b0c4_u64);
    fastrand::Rng::with_seed(base ^ property.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn random_string(rng: &mut fastrand::Rng, max: usize) -> String {
    let len = rng.usize(0..=max);
    (0..len)
        .map(|_| match rng.u8(0..10) {
            0 => 'é',
            1 => '\u{1F600}',
            _ => rng.alphanumeric(),
        })
        .collect()
}

fn random_header(rng: &mut fastrand::Rng) -> Header {
    let mut name = random_string(rng, 20);
    if name.is_empty() {
        name.push(':');
    }
    let value = match rng.u8(0..10) {
        0 => HeaderValue::Bool(rng.bool()),
        1 => HeaderValue::Byte(rng.i8(..)),
        2 => HeaderValue::Short(rng.i16(..)),
        3 => HeaderValue::Int(rng.i32(..)),
        4 => HeaderValue::Long(rng.i64(..)),
        5 => {
            let len = rng.usize(0..64);
            HeaderValue::Bytes(Bytes::from(
                (0..len).map(|_| rng.u8(..)).collect::<Vec<_>>(),
            ))
        }
        6 => HeaderValue::Timestamp(rng.i64(..)),
        7 => {
            let mut id = [0u8; 16];
            rng.fill(&mut id);
            HeaderValue::Uuid(id)
        }
        _ => HeaderValue::String(random_string(rng, 40)),
    };
    Header { name, value }
}

fn random_message(rng: &mut fastrand::Rng) -> Message {
    let headers = (0..rng.usize(0..6)).map(|_| random_header(rng)).collect();
    let len = rng.usize(0..4096);
    let payload = Bytes::from((0..len).map(|_| rng.u8(..)).collect::<Vec<_>>());
    Message { headers, payload }
}

/// Feeds `wire` in random pieces; returns the messages and the first error.
fn decode_split(
    rng: &mut fastrand::Rng,
    wire: &[u8],
    limit: usize,
) -> (Vec<Message>, Option<FrameError>) {
    let mut d = Decoder::new(limit);
    let mut out = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let n = rng.usize(1..=rest.len().min(300));
        d.feed(&rest[..n]);
        rest = &rest[n..];
        assert!(
            d.buffered() <= limit.max(OVERHEAD) + n,
            "the decoder holds at most one message and one chunk"
        );
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, d.finish().err())
}

#[test]
fn random_messages_in_random_splits_round_trip() {
    let mut rng = rng(1);
    for _ in 0..cases() {
        let msgs: Vec<Message> = (0..rng.usize(1..6))
            .map(|_| random_message(&mut rng))
            .collect();
        let wire: Vec<u8> = msgs.iter().flat_map(encode).collect();
        let (got, err) = decode_split(&mut rng, &wire, DEFAULT_MAX_MESSAGE);
        assert_eq!(err, None);
        assert_eq!(got, msgs);
    }
}

#[test]
fn one_changed_byte_is_always_detected() {
    let mut rng = rng(2);
    for _ in 0..cases() {
        let msgs: Vec<Message> = (0..rng.usize(1..5))
            .map(|_| random_message(&mut rng))
            .collect();
        let encoded: Vec<Vec<u8>> = msgs.iter().map(encode).collect();
        let mut wire: Vec<u8> = encoded.concat();
        let at = rng.usize(0..wire.len());
        let old = wire[at];
        wire[at] = loop {
            let b = rng.u8(..);
            if b != old {
                break b;
            }
        };
        // The index of the message holding the changed byte.
        let mut start = 0;
        let damaged = encoded
            .iter()
            .position(|e| {
                start += e.len();
                at < start
            })
            .unwrap();
        let (got, err) = decode_split(&mut rng, &wire, DEFAULT_MAX_MESSAGE);
        assert!(err.is_some(), "byte {at} of {}: no error", wire.len());
        assert!(got.len() <= damaged, "no message at or after the damage");
        assert_eq!(got, msgs[..got.len()], "messages before it are intact");
    }
}

#[test]
fn every_truncation_is_reported() {
    let mut rng = rng(3);
    for _ in 0..cases() / 4 {
        let msgs: Vec<Message> = (0..rng.usize(1..4))
            .map(|_| random_message(&mut rng))
            .collect();
        let encoded: Vec<Vec<u8>> = msgs.iter().map(encode).collect();
        let wire: Vec<u8> = encoded.concat();
        let cut = rng.usize(0..wire.len());
        let whole = encoded
            .iter()
            .scan(0, |end, e| {
                *end += e.len();
                Some(*end)
            })
            .take_while(|end| *end <= cut)
            .count();
        let at_boundary = encoded
            .iter()
            .scan(0, |end, e| {
                *end += e.len();
                Some(*end)
            })
            .any(|end| end == cut)
            || cut == 0;
        let (got, err) = decode_split(&mut rng, &wire[..cut], DEFAULT_MAX_MESSAGE);
        assert_eq!(got, msgs[..whole]);
        if at_boundary {
            assert_eq!(err, None);
        } else {
            assert!(matches!(err, Some(FrameError::Truncated { .. })), "{err:?}");
        }
    }
}

#[test]
fn random_garbage_never_panics_and_stays_bounded() {
    let mut rng = rng(4);
    let limit = 64 << 10;
    for _ in 0..cases() {
        let len = rng.usize(0..8192);
        let mut wire: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        // Sometimes a valid prelude in front, so the payload path is reached.
        if rng.bool() && len >= 16 {
            let total = rng.u32(16..(len as u32).max(17));
            let headers = rng.u32(0..total - 15);
            wire[0..4].copy_from_slice(&total.to_be_bytes());
            wire[4..8].copy_from_slice(&headers.to_be_bytes());
            let crc = crc32fast::hash(&wire[..8]);
            wire[8..12].copy_from_slice(&crc.to_be_bytes());
        }
        let (got, _) = decode_split(&mut rng, &wire, limit);
        let decoded: usize = got.iter().map(|m| encode(m).len()).sum();
        assert!(decoded <= wire.len());
    }
}

#[test]
fn valid_frames_with_random_headers_sections_never_panic() {
    // Valid prelude and CRCs around random header bytes: only the header
    // parser decides.
    let mut rng = rng(5);
    for _ in 0..cases() {
        let headers: Vec<u8> = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect();
        let payload: Vec<u8> = (0..rng.usize(0..32)).map(|_| rng.u8(..)).collect();
        let total = (OVERHEAD + headers.len() + payload.len()) as u32;
        let mut w = Vec::new();
        w.extend_from_slice(&total.to_be_bytes());
        w.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&w);
        w.extend_from_slice(&crc.to_be_bytes());
        w.extend_from_slice(&headers);
        w.extend_from_slice(&payload);
        let crc = crc32fast::hash(&w);
        w.extend_from_slice(&crc.to_be_bytes());
        let (got, err) = decode_split(&mut rng, &w, DEFAULT_MAX_MESSAGE);
        match err {
            None => {
                assert_eq!(got.len(), 1);
                assert_eq!(&got[0].payload[..], &payload[..]);
            }
            Some(e) => assert!(matches!(e, FrameError::BadHeader(_)), "{e:?}"),
        }
    }
}
