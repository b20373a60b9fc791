//! Vertex AI and Gemini API request paths (`protocols.md` §5.1, §5.6).
//!
//! Vertex: `/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{method}`.
//! The publisher comes from the model id ([`Publisher::of`]): ids starting
//! with `claude` are Anthropic's, every other id is Google's; an explicit
//! `anthropic/` or `google/` prefix overrides the guess. Claude ids use `@`
//! before the date on Vertex (`claude-sonnet-4@20250514`):
//! [`claude_model_id`] turns the Anthropic spelling `claude-sonnet-4-20250514`
//! into it, so a routed Anthropic name works unchanged (undated ids such as
//! `claude-opus-4-6` pass as they are).
//!
//! | operation | Anthropic publisher | Google publisher |
//! |---|---|---|
//! | answer | `{model}:rawPredict` | `{model}:generateContent` |
//! | stream | `{model}:streamRawPredict` | `{model}:streamGenerateContent?alt=sse` |
//! | count tokens | `count-tokens:rawPredict` (the model in the body) | `{model}:countTokens` |
//!
//! Gemini API: `/v1beta/models/{model}:{method}`; a model id may be given as
//! `models/x` (the prefix is dropped) or `tunedModels/x` (kept as the
//! collection).

use super::GeminiOp;

/// Who publishes a model on Vertex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Publisher {
    /// Claude models (`rawPredict`, Anthropic bodies).
    Anthropic,
    /// Gemini models (`generateContent`).
    Google,
}

impl Publisher {
    /// The publisher of `model_id` and the id without an explicit
    /// `anthropic/` / `google/` prefix.
    pub fn of(model_id: &str) -> (Self, &str) {
        if let Some(rest) = model_id.strip_prefix("anthropic/") {
            (Self::Anthropic, rest)
        } else if let Some(rest) = model_id.strip_prefix("google/") {
            (Self::Google, rest)
        } else if model_id.starts_with("claude") {
            (Self::Anthropic, model_id)
        } else {
            (Self::Google, model_id)
        }
    }

    /// The path segment.
    pub fn segment(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Google => "google",
        }
    }
}

/// A Vertex AI operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VertexOp {
    /// Claude, whole answer.
    RawPredict,
    /// Claude, streamed (the body keeps `"stream": true`).
    StreamRawPredict,
    /// Claude token count (`count-tokens:rawPredict`).
    CountTokens,
    /// Gemini, whole answer.
    GenerateContent,
    /// Gemini, streamed as SSE.
    StreamGenerateContent,
    /// Gemini token count.
    CountGeminiTokens,
}

impl VertexOp {
    /// The operation answering `model_id` (whole, streamed, or a token count).
    pub fn for_model(model_id: &str, stream: bool, count_tokens: bool) -> Self {
        match (Publisher::of(model_id).0, stream, count_tokens) {
            (Publisher::Anthropic, _, true) => Self::CountTokens,
            (Publisher::Anthropic, true, false) => Self::StreamRawPredict,
            (Publisher::Anthropic, false, false) => Self::RawPredict,
            (Publisher::Google, _, true) => Self::CountGeminiTokens,
            (Publisher::Google, true, false) => Self::StreamGenerateContent,
            (Publisher::Google, false, false) => Self::GenerateContent,
        }
    }

    /// The publisher the operation belongs to.
    pub fn publisher(self) -> Publisher {
        match self {
            Self::RawPredict | Self::StreamRawPredict | Self::CountTokens => Publisher::Anthropic,
            _ => Publisher::Google,
        }
    }

    /// Whether the answer is a stream.
    pub fn streams(self) -> bool {
        matches!(self, Self::StreamRawPredict | Self::StreamGenerateContent)
    }

    fn method(self) -> &'static str {
        match self {
            Self::RawPredict | Self::CountTokens => ":rawPredict",
            Self::StreamRawPredict => ":streamRawPredict",
            Self::GenerateContent => GeminiOp::GenerateContent.suffix(),
            Self::StreamGenerateContent => GeminiOp::StreamGenerateContent.suffix(),
            Self::CountGeminiTokens => GeminiOp::CountTokens.suffix(),
        }
    }
}

/// `claude-x-YYYYMMDD` → `claude-x@YYYYMMDD`; other ids unchanged.
pub fn claude_model_id(id: &str) -> String {
    if id.contains('@') {
        return id.to_string();
    }
    match id.rsplit_once('-') {
        Some((head, date)) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{head}@{date}")
        }
        _ => id.to_string(),
    }
}

/// A model id as one path segment: bytes other than `A-Za-z0-9-_.~@` are
/// percent-encoded.
pub fn encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The model id as it goes into a Vertex URL or a count-tokens body:
/// without a publisher prefix, Claude ids in their `@` spelling.
pub fn vertex_model_id(model_id: &str) -> String {
    match Publisher::of(model_id) {
        (Publisher::Anthropic, id) => claude_model_id(id),
        (Publisher::Google, id) => id.to_string(),
    }
}

/// The Vertex path of `op` on `model_id`.
pub fn path(project: &str, region: &str, model_id: &str, op: VertexOp) -> String {
    let model = match op {
        VertexOp::CountTokens => "count-tokens".to_string(),
        _ => encode_segment(&vertex_model_id(model_id)),
    };
    format!(
        "/v1/projects/{project}/locations/{region}/publishers/{}/models/{model}{}",
        op.publisher().segment(),
        op.method()
    )
}

/// The Gemini API path of `op` on `model_id`.
pub fn gemini_api_path(model_id: &str, op: GeminiOp) -> String {
    let (collection, id) = if let Some(rest) = model_id.strip_prefix("tunedModels/") {
        ("tunedModels", rest)
    } else {
        (
            "models",
            model_id.strip_prefix("models/").unwrap_or(model_id),
        )
    };
    format!("/v1beta/{collection}/{}{}", encode_segment(id), op.suffix())
}

/// Percent-decodes a path segment (the inverse of [`encode_segment`]);
/// `None` when the result is not UTF-8.
fn decode_segment(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The model id (percent-decoded) and operation of a Vertex path built by
/// [`path`] (without its query); `None` for any other path. The Mock's
/// Vertex emulation reads requests with it.
pub fn parse_path(path: &str) -> Option<(String, VertexOp)> {
    let rest = path.strip_prefix("/v1/projects/")?;
    let (_project, rest) = rest.split_once("/locations/")?;
    let (_location, rest) = rest.split_once("/publishers/")?;
    let (publisher, rest) = rest.split_once("/models/")?;
    let (model, method) = rest.rsplit_once(':')?;
    let model = decode_segment(model)?;
    let op = match (publisher, method) {
        ("anthropic", "rawPredict") if model == "count-tokens" => VertexOp::CountTokens,
        ("anthropic", "rawPredict") => VertexOp::RawPredict,
        ("anthropic", "streamRawPredict") => VertexOp::StreamRawPredict,
        ("google", "generateContent") => VertexOp::GenerateContent,
        ("google", "streamGenerateContent") => VertexOp::StreamGenerateContent,
        ("google", "countTokens") => VertexOp::CountGeminiTokens,
        _ => return None,
    };
    Some((model, op))
}

/// The model id (percent-decoded, `tunedModels/` kept) and operation of a
/// Gemini API path built by [`gemini_api_path`] (without its query);
/// `None` for any other path.
pub fn parse_gemini_api_path(path: &str) -> Option<(String, GeminiOp)> {
    let rest = path.strip_prefix("/v1beta/")?;
    let (collection, rest) = rest.split_once('/')?;
    let (model, method) = rest.rsplit_once(':')?;
    let model = decode_segment(model)?;
    let model = match collection {
        "models" => model,
        "tunedModels" => format!("tunedModels/{model}"),
        _ => return None,
    };
    let op = match method {
        "generateContent" => GeminiOp::GenerateContent,
        "streamGenerateContent" => GeminiOp::StreamGenerateContent,
        "countTokens" => GeminiOp::CountTokens,
        _ => return None,
    };
    Some((model, op))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishers_and_claude_ids() {
        assert_eq!(
            Publisher::of("claude-sonnet-4@20250514"),
            (Publisher::Anthropic, "claude-sonnet-4@20250514")
        );
        assert_eq!(
            Publisher::of("gemini-2.5-pro"),
            (Publisher::Google, "gemini-2.5-pro")
        );
        assert_eq!(
            Publisher::of("anthropic/my-tuned"),
            (Publisher::Anthropic, "my-tuned")
        );
        assert_eq!(
            Publisher::of("google/claude-lookalike"),
            (Publisher::Google, "claude-lookalike")
        );
        assert_eq!(
            claude_model_id("claude-sonnet-4-20250514"),
            "claude-sonnet-4@20250514"
        );
        assert_eq!(
            claude_model_id("claude-3-5-sonnet-v2@20241022"),
            "claude-3-5-sonnet-v2@20241022"
        );
        assert_eq!(claude_model_id("claude-opus-4-6"), "claude-opus-4-6");
        assert_eq!(claude_model_id("claude-x-2025051"), "claude-x-2025051");
    }

    #[test]
    fn vertex_paths() {
        let p = |model: &str, stream, count| {
            path(
                "my-project",
                "us-east5",
                model,
                VertexOp::for_model(model, stream, count),
            )
        };
        assert_eq!(
            p("claude-sonnet-4-20250514", false, false),
            "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:rawPredict"
        );
        assert_eq!(
            p("claude-sonnet-4@20250514", true, false),
            "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        assert_eq!(
            p("claude-sonnet-4@20250514", false, true),
            "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"
        );
        assert_eq!(
            p("gemini-2.5-flash", true, false),
            "/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            p("google/gemini-2.5-pro", false, false),
            "/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            p("gemini-2.5-pro", false, true),
            "/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-pro:countTokens"
        );
        assert_eq!(
            path("p", "global", "odd/id:x", VertexOp::GenerateContent),
            "/v1/projects/p/locations/global/publishers/google/models/odd%2Fid%3Ax:generateContent"
        );
        assert!(VertexOp::StreamRawPredict.streams() && !VertexOp::CountTokens.streams());
    }

    #[test]
    fn paths_parse_back() {
        for (model, stream, count) in [
            ("claude-sonnet-4-20250514", false, false),
            ("claude-sonnet-4@20250514", true, false),
            ("claude-opus-4-6", false, true),
            ("gemini-2.5-flash", true, false),
            ("gemini-2.5-pro", false, false),
            ("gemini-2.5-pro", false, true),
            ("google/odd/id:x", false, false),
        ] {
            let op = VertexOp::for_model(model, stream, count);
            let p = path("p", "global", model, op);
            let p = p.split('?').next().unwrap();
            let want = match op {
                VertexOp::CountTokens => "count-tokens".to_string(),
                _ => vertex_model_id(model),
            };
            assert_eq!(parse_path(p), Some((want, op)), "{p}");
        }
        assert_eq!(parse_path("/v1/messages"), None);
        assert_eq!(
            parse_path("/v1/projects/p/locations/l/publishers/google/models/m:rawPredict"),
            None
        );
        for (model, op) in [
            ("gemini-2.5-pro", GeminiOp::GenerateContent),
            ("gemini-2.5-flash", GeminiOp::StreamGenerateContent),
            ("tunedModels/my-model-1", GeminiOp::CountTokens),
        ] {
            let p = gemini_api_path(model, op);
            let p = p.split('?').next().unwrap();
            assert_eq!(parse_gemini_api_path(p), Some((model.to_string(), op)));
        }
        assert_eq!(parse_gemini_api_path("/v1beta/files/x:get"), None);
    }

    #[test]
    fn gemini_api_paths() {
        assert_eq!(
            gemini_api_path("gemini-2.5-pro", GeminiOp::GenerateContent),
            "/v1beta/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            gemini_api_path("models/gemini-2.5-flash", GeminiOp::StreamGenerateContent),
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            gemini_api_path("tunedModels/my-model-1", GeminiOp::CountTokens),
            "/v1beta/tunedModels/my-model-1:countTokens"
        );
    }
}
