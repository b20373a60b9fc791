//! Event-stream encoder and constructors for Bedrock's three message kinds.

use bytes::{BufMut, Bytes};

use super::{Header, HeaderValue, Message, OVERHEAD, PRELUDE_LEN};

/// Appends one header's wire form. Names longer than 255 bytes and byte or
/// string values longer than 65,535 bytes are cut to fit (the gateway only
/// encodes its own short headers).
fn put_header(out: &mut Vec<u8>, h: &Header) {
    let name = &h.name.as_bytes()[..h.name.len().min(255)];
    out.put_u8(name.len() as u8);
    out.put_slice(name);
    let var = |out: &mut Vec<u8>, kind: u8, b: &[u8]| {
        let b = &b[..b.len().min(u16::MAX as usize)];
        out.put_u8(kind);
        out.put_u16(b.len() as u16);
        out.put_slice(b);
    };
    match &h.value {
        HeaderValue::Bool(true) => out.put_u8(0),
        HeaderValue::Bool(false) => out.put_u8(1),
        HeaderValue::Byte(v) => {
            out.put_u8(2);
            out.put_i8(*v);
        }
        HeaderValue::Short(v) => {
            out.put_u8(3);
            out.put_i16(*v);
        }
        HeaderValue::Int(v) => {
            out.put_u8(4);
            out.put_i32(*v);
        }
        HeaderValue::Long(v) => {
            out.put_u8(5);
            out.put_i64(*v);
        }
        HeaderValue::Bytes(b) => var(out, 6, b),
        HeaderValue::String(s) => var(out, 7, s.as_bytes()),
        HeaderValue::Timestamp(v) => {
            out.put_u8(8);
            out.put_i64(*v);
        }
        HeaderValue::Uuid(id) => {
            out.put_u8(9);
            out.put_slice(id);
        }
    }
}

/// The wire form of `msg`.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut headers = Vec::new();
    for h in &msg.headers {
        put_header(&mut headers, h);
    }
    let total = OVERHEAD + headers.len() + msg.payload.len();
    let mut out = Vec::with_capacity(total);
    out.put_u32(total as u32);
    out.put_u32(headers.len() as u32);
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.put_u32(prelude_crc);
    debug_assert_eq!(out.len(), PRELUDE_LEN);
    out.extend_from_slice(&headers);
    out.extend_from_slice(&msg.payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    out
}

/// An `event` message (`:event-type`, `:content-type`, payload).
pub fn event_message(event_type: &str, content_type: &str, payload: &[u8]) -> Message {
    Message {
        headers: vec![
            Header::string(":event-type", event_type),
            Header::string(":content-type", content_type),
            Header::string(":message-type", "event"),
        ],
        payload: Bytes::copy_from_slice(payload),
    }
}

/// An `exception` message: a modelled error such as `throttlingException`
/// with a JSON payload `{"message": …}`.
pub fn exception_message(exception_type: &str, message: &str) -> Message {
    let payload = serde_json::json!({ "message": message }).to_string();
    Message {
        headers: vec![
            Header::string(":exception-type", exception_type),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "exception"),
        ],
        payload: Bytes::from(payload),
    }
}

/// An `error` message (an unmodelled error; no payload).
pub fn error_message(code: &str, message: &str) -> Message {
    Message {
        headers: vec![
            Header::string(":error-code", code),
            Header::string(":error-message", message),
            Header::string(":message-type", "error"),
        ],
        payload: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, Kind};
    use super::*;

    fn json_of(value: &HeaderValue) -> serde_json::Value {
        use serde_json::json;
        match value {
            HeaderValue::Bool(b) => json!(b),
            HeaderValue::Byte(v) => json!(v),
            HeaderValue::Short(v) => json!(v),
            HeaderValue::Int(v) => json!(v),
            HeaderValue::Long(v) | HeaderValue::Timestamp(v) => json!(v),
            HeaderValue::Bytes(b) => json!({"bytes": hex::encode(b)}),
            HeaderValue::Uuid(b) => json!({"bytes": hex::encode(b)}),
            HeaderValue::String(s) => json!(s),
        }
    }

    /// `testdata/reference.bin` was built from the spec by an independent
    /// Python encoder and decoded by botocore into `reference.json`
    /// (`testdata/gen_reference.py`): every header type, an exception, an
    /// error, a message without headers.
    #[test]
    fn reference_frames_decode_like_botocore() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/wire/eventstream/testdata");
        let wire = std::fs::read(dir.join("reference.bin")).unwrap();
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
                .unwrap();
        let mut d = Decoder::default();
        d.feed(&wire);
        let mut got = Vec::new();
        let mut reencoded = Vec::new();
        while let Some(m) = d.next_message().unwrap() {
            reencoded.extend(encode(&m));
            let headers: serde_json::Map<String, serde_json::Value> = m
                .headers
                .iter()
                .map(|h| (h.name.clone(), json_of(&h.value)))
                .collect();
            got.push(serde_json::json!({
                "headers": headers,
                "payload": std::str::from_utf8(&m.payload).unwrap(),
            }));
        }
        assert_eq!(d.finish(), Ok(()));
        assert_eq!(serde_json::Value::Array(got), want);
        assert_eq!(reencoded, wire, "the encoder writes the same bytes");
    }

    #[test]
    fn kinds_round_trip() {
        for (msg, kind) in [
            (
                event_message("contentBlockDelta", "application/json", b"{}"),
                Kind::Event("contentBlockDelta"),
            ),
            (
                exception_message("throttlingException", "slow down"),
                Kind::Exception("throttlingException"),
            ),
            (
                error_message("InternalFailure", "boom"),
                Kind::Error {
                    code: "InternalFailure",
                    message: "boom",
                },
            ),
        ] {
            let mut d = Decoder::default();
            d.feed(&encode(&msg));
            let got = d.next_message().unwrap().unwrap();
            assert_eq!(got, msg);
            assert_eq!(got.kind(), kind);
        }
    }
}
