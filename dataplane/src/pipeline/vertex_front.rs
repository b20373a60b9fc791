//! The Vertex AI front door: clients configured for Claude on Vertex AI
//! (Claude Code with `CLAUDE_CODE_USE_VERTEX=1` and
//! `ANTHROPIC_VERTEX_BASE_URL`, the `anthropic` SDK's `AnthropicVertex`)
//! call the gateway as if it were Vertex:
//!
//! | path below the route prefix | served as |
//! |---|---|
//! | `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict` | Messages, whole answer |
//! | `POST …/models/{model}:streamRawPredict` | Messages, streamed |
//! | `POST …/models/count-tokens:rawPredict` | count_tokens (the model is the body's `model`) |
//!
//! The project and location are not used: the route decides where the
//! request goes. At the edge only, the rest of the pipeline serves an
//! ordinary Anthropic request ([`to_anthropic`]): the body is Vertex's
//! Messages body (`anthropic_version`, no `model`); `anthropic_version` is
//! dropped (each upstream gets the version it expects), an `anthropic_beta`
//! body array joins the `anthropic-beta` header (so every backend's beta
//! allowlist applies), `stream` follows the operation, and the model comes
//! from the path ([`routing_model`]). Answers need no re-shaping: Vertex
//! answers Claude requests in Anthropic's own format (the message, the SSE
//! events, `{"input_tokens"}`, Anthropic error bodies), which is what the
//! pipeline gives a Messages client whatever backend served it.
//!
//! Authentication is the gateway's own, as on every endpoint:
//! `Authorization: Bearer <gateway token>` (what `AnthropicVertex` sends
//! with `access_token=`, or Claude Code with `CLAUDE_CODE_SKIP_VERTEX_AUTH=1`
//! and `ANTHROPIC_CUSTOM_HEADERS`), `x-api-key`, or the route's JWT
//! `tokenHeader`.

use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::body::RequestJson;
use crate::error::RequestError;
use crate::runtime::{ApiFormat, RouteRuntime};
use crate::translate::TranslateError;
use crate::translate::bedrock::invoke;

/// A Vertex operation on Claude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VertexFrontOp {
    /// `{model}:rawPredict`.
    RawPredict,
    /// `{model}:streamRawPredict`.
    StreamRawPredict,
    /// `count-tokens:rawPredict`.
    CountTokens,
}

impl VertexFrontOp {
    /// The API the pipeline serves it as.
    pub fn format(self) -> ApiFormat {
        match self {
            Self::RawPredict | Self::StreamRawPredict => ApiFormat::Messages,
            Self::CountTokens => ApiFormat::CountTokens,
        }
    }
}

/// A front-door call: the operation and the model id of its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexCall {
    /// The operation.
    pub op: VertexFrontOp,
    /// The Vertex model id of the path, percent-decoded (`None` for
    /// count-tokens, whose model is in the body).
    pub model: Option<String>,
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads `/v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:{method}`
/// (the path below the route prefix).
pub fn parse_path(path: &str) -> Option<VertexCall> {
    let rest = path.strip_prefix("/v1/projects/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let [
        project,
        "locations",
        location,
        "publishers",
        "anthropic",
        "models",
        last,
    ] = segments.as_slice()
    else {
        return None;
    };
    if project.is_empty() || location.is_empty() {
        return None;
    }
    let last = percent_decode(last)?;
    let (model, method) = last.rsplit_once(':')?;
    let op = match (model, method) {
        ("count-tokens", "rawPredict") => VertexFrontOp::CountTokens,
        (_, "rawPredict") => VertexFrontOp::RawPredict,
        (_, "streamRawPredict") => VertexFrontOp::StreamRawPredict,
        _ => return None,
    };
    if model.is_empty() {
        return None;
    }
    let model = (op != VertexFrontOp::CountTokens).then(|| model.to_string());
    Some(VertexCall { op, model })
}

/// The front-door call of a full request path (any route prefix before
/// `/v1/projects/`), if it is one.
pub fn detect(path: &str) -> Option<VertexCall> {
    let path = path.trim_end_matches('/');
    super::endpoint::segment_starts(path, "/v1/projects/").find_map(|at| parse_path(&path[at..]))
}

/// A Vertex Claude id in Anthropic's spelling: `claude-sonnet-4@20250514` →
/// `claude-sonnet-4-20250514` (a date of eight digits after `@`); other ids
/// unchanged.
pub fn anthropic_model_id(vertex_id: &str) -> String {
    match vertex_id.rsplit_once('@') {
        Some((head, date))
            if !head.is_empty() && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{head}-{date}")
        }
        _ => vertex_id.to_string(),
    }
}

/// The model name routed for a Vertex id: its Anthropic spelling
/// ([`anthropic_model_id`]), so routes written for Anthropic's ids serve
/// Vertex clients unchanged — unless the route matches the Vertex spelling
/// more closely ([`match_rank`]: an alias for `claude-…@date` where the
/// Anthropic spelling has none, or a rule where it has none), in which case
/// the id is kept as it is. `rank(name)` is the route's [`match_rank`].
pub fn routing_model(vertex_id: &str, rank: impl Fn(&str) -> u8) -> String {
    let anthropic = anthropic_model_id(vertex_id);
    if anthropic != vertex_id && rank(vertex_id) > rank(&anthropic) {
        return vertex_id.to_string();
    }
    anthropic
}

/// How `route` matches `model`: 2 when an alias does, 1 when only a rule
/// does, 0 when nothing does.
pub fn match_rank(route: &RouteRuntime, model: &str) -> u8 {
    if route.aliases.resolve(model) != model {
        2
    } else if route.rules.select(model).is_some() {
        1
    } else {
        0
    }
}

/// The client's Vertex body as the Anthropic request the pipeline serves;
/// a body `anthropic_beta` array is appended to `headers`' `anthropic-beta`.
pub fn to_anthropic(
    call: &VertexCall,
    route: &RouteRuntime,
    json: RequestJson,
    headers: &mut HeaderMap,
) -> Result<RequestJson, RequestError> {
    let body: Value = serde_json::from_slice(json.bytes())
        .map_err(|e| RequestError::Internal(format!("re-parsing the body: {e}")))?;
    let vertex_model = match &call.model {
        Some(m) => m.clone(),
        None => body
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| TranslateError::invalid("model", "model: Field required"))?
            .to_string(),
    };
    let model = routing_model(&vertex_model, |m| match_rank(route, m));
    let stream = call.op == VertexFrontOp::StreamRawPredict;
    let (request, betas) = invoke::request_to_messages(&body, &model, stream)?;
    if !betas.is_empty() {
        let mut all: Vec<String> = headers
            .get_all("anthropic-beta")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        all.extend(betas);
        if let Ok(v) = HeaderValue::from_str(&all.join(",")) {
            headers.insert("anthropic-beta", v);
        }
    }
    Ok(RequestJson::from_value(&request)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models";

    #[test]
    fn vertex_paths() {
        assert_eq!(
            parse_path(&format!("{BASE}/claude-sonnet-4@20250514:rawPredict")),
            Some(VertexCall {
                op: VertexFrontOp::RawPredict,
                model: Some("claude-sonnet-4@20250514".into())
            })
        );
        assert_eq!(
            parse_path(&format!(
                "{BASE}/claude-sonnet-4%4020250514%3AstreamRawPredict"
            )),
            Some(VertexCall {
                op: VertexFrontOp::StreamRawPredict,
                model: Some("claude-sonnet-4@20250514".into())
            })
        );
        assert_eq!(
            parse_path(&format!("{BASE}/count-tokens:rawPredict")),
            Some(VertexCall {
                op: VertexFrontOp::CountTokens,
                model: None
            })
        );
        assert_eq!(
            detect(&format!("/team-a{BASE}/claude-opus-4-1:streamRawPredict")).map(|c| c.op),
            Some(VertexFrontOp::StreamRawPredict)
        );
        for not_ours in [
            format!("{BASE}/claude-sonnet-4:predict"),
            format!("{BASE}/claude-sonnet-4"),
            format!("{BASE}/:rawPredict"),
            format!("{BASE}/a/b:rawPredict"),
            "/v1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:generateContent"
                .into(),
            "/v1/projects//locations/l/publishers/anthropic/models/c:rawPredict".into(),
            "/v1/messages".into(),
        ] {
            assert_eq!(parse_path(&not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn vertex_ids_route_by_their_anthropic_spelling_unless_only_the_vertex_one_routes() {
        assert_eq!(
            anthropic_model_id("claude-sonnet-4@20250514"),
            "claude-sonnet-4-20250514"
        );
        assert_eq!(
            anthropic_model_id("claude-3-5-haiku@20241022"),
            "claude-3-5-haiku-20241022"
        );
        assert_eq!(anthropic_model_id("claude-opus-4-1"), "claude-opus-4-1");
        assert_eq!(anthropic_model_id("claude-x@latest"), "claude-x@latest");
        // A `claude-*` rule matches both spellings: Anthropic's is routed.
        let claude_rule = |m: &str| u8::from(m.starts_with("claude-"));
        assert_eq!(
            routing_model("claude-sonnet-4@20250514", claude_rule),
            "claude-sonnet-4-20250514"
        );
        // An alias for the Vertex id beats the rule matching Anthropic's spelling.
        let vertex_alias = |m: &str| match m {
            "claude-sonnet-4@20250514" => 2,
            m => u8::from(m.starts_with("claude-")),
        };
        assert_eq!(
            routing_model("claude-sonnet-4@20250514", vertex_alias),
            "claude-sonnet-4@20250514"
        );
        let vertex_rule = |m: &str| u8::from(m.contains('@'));
        assert_eq!(
            routing_model("claude-sonnet-4@20250514", vertex_rule),
            "claude-sonnet-4@20250514"
        );
        assert_eq!(
            routing_model("claude-sonnet-4@20250514", |_| 0),
            "claude-sonnet-4-20250514",
            "an unknown model is reported in its Anthropic spelling"
        );
    }
}
