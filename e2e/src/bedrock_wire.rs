//! The Amazon Bedrock Runtime wire format spoken by the Bedrock-flavoured mock upstream
//! (`reference/protocols.md` §4): Converse and InvokeModel bodies, the binary
//! `application/vnd.amazon.eventstream` framing, Bedrock's error shape, what Bedrock refuses in
//! a request body, and a check of the SigV4 `Authorization` header.
//!
//! Written independently of the data plane's codec and signer (its own encoder and its own
//! canonical request), so a test through the mock checks the gateway against a second
//! implementation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::wire::{
    Reply, SseFrame, TOOL_CALL_ID, Usage, anthropic_message, anthropic_stream, split_deltas,
};

/// Content type of an event-stream body.
pub const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// The Bedrock Runtime operation a path addresses: `/model/{id}/{op}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `/invoke`.
    Invoke,
    /// `/invoke-with-response-stream`.
    InvokeStream,
    /// `/converse`.
    Converse,
    /// `/converse-stream`.
    ConverseStream,
}

impl Op {
    /// Whether the answer is an event stream.
    pub fn streams(self) -> bool {
        matches!(self, Op::InvokeStream | Op::ConverseStream)
    }
}

/// Splits a request path into the (still encoded) model id and the operation.
pub fn parse_path(path: &str) -> Option<(String, Op)> {
    let rest = path.split("/model/").nth(1)?;
    let (id, op) = rest.rsplit_once('/')?;
    let op = match op {
        "invoke" => Op::Invoke,
        "invoke-with-response-stream" => Op::InvokeStream,
        "converse" => Op::Converse,
        "converse-stream" => Op::ConverseStream,
        _ => return None,
    };
    (!id.is_empty()).then(|| (id.to_string(), op))
}

/// One event-stream message: string headers and a payload.
pub fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// One decoded event-stream message: its string headers and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// String headers (other value types are skipped), in wire order.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The value of string header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The payload as JSON (`Null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// Decodes a whole event-stream body, checking both CRCs; an error names
/// the first problem (a client of the gateway's front door reads with this).
pub fn decode_frames(mut bytes: &[u8]) -> Result<Vec<Frame>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 16 {
            return Err(format!("{} bytes left: a truncated message", bytes.len()));
        }
        let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let headers_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let prelude_crc = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
        if crc32fast::hash(&bytes[..8]) != prelude_crc {
            return Err("prelude CRC mismatch".into());
        }
        if total < 16 + headers_len || total > bytes.len() {
            return Err(format!("bad lengths: total {total}, headers {headers_len}"));
        }
        let crc = u32::from_be_bytes(bytes[total - 4..total].try_into().unwrap());
        if crc32fast::hash(&bytes[..total - 4]) != crc {
            return Err("message CRC mismatch".into());
        }
        let mut h = &bytes[12..12 + headers_len];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8_lossy(&h[1..1 + n]).into_owned();
            let kind = h[1 + n];
            h = &h[2 + n..];
            let skip = match kind {
                0 | 1 => 0,
                2 => 1,
                3 => 2,
                4 => 4,
                5 | 8 => 8,
                9 => 16,
                6 | 7 => {
                    let len = u16::from_be_bytes([h[0], h[1]]) as usize;
                    if kind == 7 {
                        headers.push((name, String::from_utf8_lossy(&h[2..2 + len]).into_owned()));
                    }
                    2 + len
                }
                other => return Err(format!("unknown header type {other}")),
            };
            h = &h[skip..];
        }
        out.push(Frame {
            headers,
            payload: bytes[12 + headers_len..total - 4].to_vec(),
        });
        bytes = &bytes[total..];
    }
    Ok(out)
}

/// An `event` message with a JSON payload.
pub fn event(event_type: &str, payload: &Value) -> Vec<u8> {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

/// An `exception` message (`throttlingException`, …).
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

fn converse_usage(usage: Usage) -> Value {
    let mut u = json!({"inputTokens": usage.input, "outputTokens": usage.output,
        "totalTokens": usage.input + usage.output + usage.cached});
    if usage.cached > 0 {
        u["cacheReadInputTokens"] = json!(usage.cached);
        u["cacheWriteInputTokens"] = json!(0);
    }
    u
}

/// A Converse answer.
pub fn converse_body(reply: &Reply, usage: Usage) -> Value {
    let (content, stop) = match reply {
        Reply::Text(text) => (json!([{"text": text}]), "end_turn"),
        Reply::ToolCall { name, arguments } => (
            json!([{"toolUse": {"toolUseId": TOOL_CALL_ID, "name": name, "input": arguments}}]),
            "tool_use",
        ),
    };
    json!({"output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop, "usage": converse_usage(usage), "metrics": {"latencyMs": 42}})
}

/// ConverseStream messages: messageStart, the block's deltas, contentBlockStop, messageStop,
/// metadata. Payloads carry Bedrock's `p` padding field.
pub fn converse_stream(reply: &Reply, usage: Usage) -> Vec<Vec<u8>> {
    let mut out = vec![event(
        "messageStart",
        &json!({"role": "assistant", "p": "abcdefgh"}),
    )];
    let stop = match reply {
        Reply::Text(text) => {
            for piece in split_deltas(text) {
                out.push(event(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"text": piece}, "p": "ab"}),
                ));
            }
            "end_turn"
        }
        Reply::ToolCall { name, arguments } => {
            out.push(event(
                "contentBlockStart",
                &json!({"contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": TOOL_CALL_ID, "name": name}}}),
            ));
            let args = arguments.to_string();
            let mid = args.len() / 2;
            let (a, b) = args.split_at(
                args.char_indices()
                    .map(|(i, _)| i)
                    .find(|i| *i >= mid)
                    .unwrap_or(args.len()),
            );
            for part in [a, b] {
                out.push(event(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": part}}}),
                ));
            }
            "tool_use"
        }
    };
    out.push(event("contentBlockStop", &json!({"contentBlockIndex": 0})));
    out.push(event("messageStop", &json!({"stopReason": stop})));
    out.push(event(
        "metadata",
        &json!({"usage": converse_usage(usage), "metrics": {"latencyMs": 42}}),
    ));
    out
}

/// The InvokeModel answer (an Anthropic message without the `model` Bedrock leaves out of ids).
pub fn invoke_body(model: &str, reply: &Reply, usage: Usage) -> Value {
    let mut m = anthropic_message(model, reply, usage);
    m["id"] = json!("msg_bdrk_mock_0001");
    m
}

/// InvokeModel stream messages: each Anthropic event as a `chunk` with base64 bytes; the last
/// carries `amazon-bedrock-invocationMetrics` as Bedrock's does.
pub fn invoke_stream(model: &str, reply: &Reply, usage: Usage) -> Vec<Vec<u8>> {
    let frames: Vec<SseFrame> = anthropic_stream(model, reply, usage);
    frames
        .iter()
        .map(|f| {
            let mut data: Value = serde_json::from_str(&f.data).unwrap_or(Value::Null);
            if data["type"] == "message_start" {
                data["message"]["id"] = json!("msg_bdrk_mock_0001");
            }
            if data["type"] == "message_stop" {
                data["amazon-bedrock-invocationMetrics"] = json!({"inputTokenCount": usage.input,
                    "outputTokenCount": usage.output, "invocationLatency": 42, "firstByteLatency": 7});
            }
            event("chunk", &json!({"bytes": B64.encode(data.to_string()), "p": "abc"}))
        })
        .collect()
}

/// The exception name and HTTP status Bedrock uses for an error status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        401 | 403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// A Bedrock error body.
pub fn error_body(message: &str) -> Value {
    json!({"message": message})
}

/// The 400 Bedrock sends for a prompt over the context window.
pub fn context_length_message() -> &'static str {
    "Input is too long for requested model."
}

/// What Bedrock would refuse in a request body for `op`, as its ValidationException message.
pub fn refuse_body(op: Op, body: &Value) -> Option<String> {
    let Some(obj) = body.as_object() else {
        return Some("Malformed input request, please reformat your input and try again.".into());
    };
    let extraneous = |keys: &[&str]| {
        keys.iter()
            .find(|k| obj.contains_key(**k))
            .map(|k| format!("Malformed input request: #: extraneous key [{k}] is not permitted, please reformat your input and try again."))
    };
    match op {
        Op::Invoke | Op::InvokeStream => {
            if let Some(m) = extraneous(&[
                "model",
                "stream",
                "metadata",
                "service_tier",
                "container",
                "mcp_servers",
            ]) {
                return Some(m);
            }
            if obj.get("anthropic_version").and_then(Value::as_str) != Some("bedrock-2023-05-31") {
                return Some("Malformed input request: #: required key [anthropic_version] not found or invalid".into());
            }
            if obj.get("anthropic_beta").is_some_and(|b| !b.is_array()) {
                return Some(
                    "Malformed input request: #/anthropic_beta: expected type: JSONArray".into(),
                );
            }
            if !obj.get("max_tokens").is_some_and(Value::is_u64) {
                return Some(
                    "Malformed input request: #: required key [max_tokens] not found".into(),
                );
            }
            None
        }
        Op::Converse | Op::ConverseStream => {
            let allowed = [
                "messages",
                "system",
                "inferenceConfig",
                "toolConfig",
                "guardrailConfig",
                "additionalModelRequestFields",
                "promptVariables",
                "additionalModelResponseFieldPaths",
                "requestMetadata",
                "performanceConfig",
            ];
            if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Some(format!("Unknown parameter in input: \"{k}\""));
            }
            let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
                return Some("A conversation must start with a user message.".into());
            };
            let mut last = "";
            for m in messages {
                let role = m["role"].as_str().unwrap_or_default();
                if role == last {
                    return Some(
                        "A conversation must alternate between user and assistant roles.".into(),
                    );
                }
                last = role;
                for block in m["content"].as_array().into_iter().flatten() {
                    if block.as_object().is_none_or(|b| b.len() != 1) {
                        return Some("Each content block must set exactly one member.".into());
                    }
                }
            }
            None
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Checks a SigV4 `Authorization` header for Bedrock in `region`: the algorithm, a credential
/// scope `AKID/yyyymmdd/region/bedrock/aws4_request` matching `x-amz-date`, signed headers
/// including `host` and `x-amz-date` (and `x-amz-security-token` when sent), a 64-hex signature
/// and, when `secret` is given, the signature itself (recomputed from `path`, the headers and
/// `body`). Returns the access key id.
pub fn check_sigv4(
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
    region: &str,
    secret: Option<&str>,
) -> Result<String, String> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let auth = text("authorization").ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization is not AWS4-HMAC-SHA256")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => return Err(format!("unexpected Authorization part {part:?}")),
        }
    }
    let (credential, signed, signature) = (
        credential.ok_or("no Credential")?,
        signed.ok_or("no SignedHeaders")?,
        signature.ok_or("no Signature")?,
    );
    let amz_date = text("x-amz-date").ok_or("no x-amz-date")?;
    let valid_date = amz_date.len() == 16
        && amz_date.as_bytes()[8] == b'T'
        && amz_date.ends_with('Z')
        && amz_date[..8]
            .bytes()
            .chain(amz_date[9..15].bytes())
            .all(|b| b.is_ascii_digit());
    if !valid_date {
        return Err(format!("x-amz-date {amz_date:?} is not YYYYMMDDTHHMMSSZ"));
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, r, service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("credential scope {credential:?} is malformed"));
    };
    if *date != &amz_date[..8] || *r != region || *service != "bedrock" {
        return Err(format!(
            "credential scope {credential:?} does not match {amz_date} / {region} / bedrock"
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !names.contains(&required) {
            return Err(format!("{required} is not signed ({signed})"));
        }
    }
    if headers.contains_key("x-amz-security-token") && !names.contains(&"x-amz-security-token") {
        return Err("x-amz-security-token is sent but not signed".into());
    }
    if names.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("SignedHeaders {signed:?} are not sorted"));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err("the signature is not 64 lower-case hex digits".into());
    }
    if let Some(secret) = secret {
        let mut canonical_headers = String::new();
        for name in &names {
            let values: Vec<String> = headers
                .get_all(*name)
                .iter()
                .map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            if values.is_empty() {
                return Err(format!("signed header {name} is missing"));
            }
            canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        // The path as received, encoded once more (non-S3 services).
        let mut canonical_path = String::new();
        for b in path.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                canonical_path.push(b as char);
            } else {
                canonical_path.push_str(&format!("%{b:02X}"));
            }
        }
        let canonical = format!(
            "{method}\n{canonical_path}\n\n{canonical_headers}\n{signed}\n{}",
            hex::encode(Sha256::digest(body))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/bedrock/aws4_request\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k = mac(format!("AWS4{secret}").as_bytes(), date);
        let k = mac(&k, region);
        let k = mac(&k, "bedrock");
        let k = mac(&k, "aws4_request");
        let expected = hex::encode(mac(&k, &to_sign));
        if expected != signature {
            return Err(
                "The request signature we calculated does not match the signature you provided."
                    .into(),
            );
        }
    }
    Ok((*akid).to_string())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("/model/us.anthropic.claude-v1%3A0/invoke-with-response-stream"),
            Some(("us.anthropic.claude-v1%3A0".into(), Op::InvokeStream))
        );
        assert_eq!(
            parse_path("/prefix/model/m/converse"),
            Some(("m".into(), Op::Converse))
        );
        assert_eq!(parse_path("/v1/messages"), None);
    }

    #[test]
    fn frames_follow_the_layout() {
        let f = event("messageStart", &json!({"role": "assistant"}));
        let total = u32::from_be_bytes([f[0], f[1], f[2], f[3]]) as usize;
        assert_eq!(total, f.len());
        assert_eq!(
            u32::from_be_bytes([f[8], f[9], f[10], f[11]]),
            crc32fast::hash(&f[..8])
        );
        let n = f.len();
        assert_eq!(
            u32::from_be_bytes([f[n - 4], f[n - 3], f[n - 2], f[n - 1]]),
            crc32fast::hash(&f[..n - 4])
        );
    }

    #[test]
    fn refused_bodies() {
        assert!(
            refuse_body(
                Op::Invoke,
                &json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []})
            )
            .is_none()
        );
        assert!(
            refuse_body(
                Op::Invoke,
                &json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "model": "x"})
            )
            .unwrap()
            .contains("[model]")
        );
        assert!(
            refuse_body(Op::Invoke, &json!({"max_tokens": 5}))
                .unwrap()
                .contains("anthropic_version")
        );
        assert!(
            refuse_body(
                Op::Converse,
                &json!({"messages": [{"role": "user", "content": [{"text": "a"}]}]})
            )
            .is_none()
        );
        assert!(refuse_body(Op::Converse, &json!({"messages": [], "model": "m"})).is_some());
        let twice =
            json!({"messages": [{"role": "user", "content": []}, {"role": "user", "content": []}]});
        assert!(
            refuse_body(Op::ConverseStream, &twice)
                .unwrap()
                .contains("alternate")
        );
    }

    /// The AWS SigV4 suite's `get-vanilla` case (method GET, empty body, service `service`)
    /// adapted to the checker's `bedrock` scope: a botocore-signed POST (see the data plane's
    /// `src/aws/testdata/sigv4.json`, case `bedrock-invoke-profile-id`).
    #[test]
    fn a_botocore_signature_verifies() {
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            HeaderValue::from_static("bedrock-runtime.us-east-1.amazonaws.com"),
        );
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("x-amz-date", HeaderValue::from_static("20231114T221320Z"));
        h.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=59bd90f3aad9608b83ef63096f9eb1245b8ad318be13f06ca921099848531af2"));
        let body = br#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
        let path =
            "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream";
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            check_sigv4(&h, "POST", path, body, "us-east-1", Some(secret)),
            Ok("AKIDEXAMPLE".into())
        );
        assert!(
            check_sigv4(&h, "POST", path, b"{}", "us-east-1", Some(secret))
                .unwrap_err()
                .contains("does not match")
        );
        assert!(check_sigv4(&h, "POST", path, body, "eu-west-1", None).is_err());
        h.insert("x-amz-security-token", HeaderValue::from_static("t"));
        assert!(
            check_sigv4(&h, "POST", path, body, "us-east-1", None)
                .unwrap_err()
                .contains("not signed")
        );
    }
}
