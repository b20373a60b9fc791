//! The Bedrock front door: Bedrock-format clients (boto3 `bedrock-runtime`,
//! the `anthropic` SDK's `AnthropicBedrock`, Claude Code in Bedrock mode)
//! call `POST {prefix}/model/{modelId}/invoke`, `/invoke-with-response-stream`,
//! `/converse` or `/converse-stream` on the traffic port as if the gateway
//! were Bedrock.
//!
//! At the edges only; the stages in between serve an ordinary Anthropic
//! Messages request:
//!
//! - **in** ([`to_messages`]): the body becomes a Messages request for the
//!   model id of the path (percent-decoded; it then goes through aliases and
//!   rules like any model) with `stream` from the operation — an InvokeModel
//!   body already is one (`anthropic_version` dropped, the upstream gets the
//!   value it expects), a Converse body is translated — and the body's
//!   `anthropic_beta` flags join the `anthropic-beta` header, so every
//!   backend's beta allowlist applies to them;
//! - **out** ([`encode`]): whatever backend answered, the answer goes back
//!   in Bedrock's shape — an InvokeModel answer is the Anthropic message, a
//!   Converse answer is built from it; streams are re-framed as AWS event
//!   stream messages (`chunk`s carrying the Anthropic events, or typed
//!   Converse events; keep-alive `ping`s become chunks, so Claude Code's
//!   stall watchdog stays quiet; an in-band error becomes an exception
//!   message); every error answer becomes Bedrock's error shape (the
//!   status, `x-amzn-ErrorType: <Name>` and `{"message": …}`).
//!
//! The caller authenticates with the gateway's own credential like on any
//! endpoint (`Authorization: Bearer`, `x-api-key`, or the route's JWT
//! `tokenHeader`, e.g. a header set through Claude Code's
//! `ANTHROPIC_CUSTOM_HEADERS`); a SigV4 `Authorization` header from a
//! signing client (boto3 over http) is not a bearer token and is ignored.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::body::RequestJson;
use crate::error::RequestError;
use crate::response::{self, BoxError, ResponseBody};
use crate::translate::StreamTranslator;
use crate::translate::bedrock::errors::{front_error, kind_of_anthropic};
use crate::translate::bedrock::front_stream::{MessagesToConverseFrames, MessagesToInvokeFrames};
use crate::translate::bedrock::{
    FrontOp, converse_response, front_request, invoke, parse_front_path,
};
use crate::wire::ErrorKind;
use crate::wire::sse::SseParser;

/// A front-door call: the operation and the model id of its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontDoor {
    /// The Bedrock operation.
    pub op: FrontOp,
    /// The model id, percent-decoded.
    pub model: String,
}

/// The front-door call of a request path (`…/model/{id}/{operation}`, any
/// route prefix before it), if it is one.
pub fn detect(path: &str) -> Option<FrontDoor> {
    let at = super::endpoint::segment_starts(path, "/model/").next()?;
    let (model, op) = parse_front_path(&path[at..])?;
    Some(FrontDoor { op, model })
}

/// The client's Bedrock body as the Messages request the pipeline serves;
/// the body's betas are appended to `headers`' `anthropic-beta`.
pub fn to_messages(
    front: &FrontDoor,
    json: RequestJson,
    headers: &mut HeaderMap,
) -> Result<RequestJson, RequestError> {
    let body: Value = serde_json::from_slice(json.bytes())
        .map_err(|e| RequestError::Internal(format!("re-parsing the body: {e}")))?;
    let stream = front.op.streams();
    let (messages, betas) = match front.op {
        FrontOp::Invoke | FrontOp::InvokeStream => {
            invoke::request_to_messages(&body, &front.model, stream)?
        }
        FrontOp::Converse | FrontOp::ConverseStream => {
            front_request::request_to_messages(&body, &front.model, stream)?
        }
    };
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
    Ok(RequestJson::from_value(&messages)?)
}

/// The gateway's answer (Anthropic shape) in Bedrock's shape for `op`.
pub async fn encode(op: FrontOp, resp: Response<ResponseBody>) -> Response<ResponseBody> {
    let (mut parts, body) = resp.into_parts();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if parts.status.is_success() && content_type.starts_with("text/event-stream") {
        let translator: Box<dyn StreamTranslator> = match op {
            FrontOp::Converse | FrontOp::ConverseStream => {
                Box::new(MessagesToConverseFrames::new())
            }
            FrontOp::Invoke | FrontOp::InvokeStream => Box::new(MessagesToInvokeFrames::new()),
        };
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::wire::eventstream::CONTENT_TYPE),
        );
        return Response::from_parts(parts, FramesFromSse::new(body, translator).boxed_unsync());
    }
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return bedrock_error(
                StatusCode::BAD_GATEWAY,
                HeaderMap::new(),
                ErrorKind::Api,
                "the answer could not be read",
            );
        }
    };
    if parts.status.is_success() {
        if matches!(op, FrontOp::Converse | FrontOp::ConverseStream) {
            let converse = serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    converse_response::response_from_messages(&m).map_err(|e| e.to_string())
                });
            return match converse {
                Ok(v) => {
                    let mut resp = response::json(StatusCode::OK, v.to_string());
                    copy_headers(&parts.headers, resp.headers_mut());
                    resp
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an answer could not be shaped for a Converse client");
                    bedrock_error(StatusCode::BAD_GATEWAY, parts.headers, ErrorKind::Api, &e)
                }
            };
        }
        return Response::from_parts(parts, response::full(bytes));
    }
    let (kind, message) = error_of(&bytes, parts.status);
    let status = match parts.status.as_u16() {
        // Not a status Bedrock clients know.
        529 => StatusCode::SERVICE_UNAVAILABLE,
        _ => parts.status,
    };
    let mut resp = bedrock_error(status, parts.headers, kind, &message);
    // Markers for the server (e.g. a body left unread) stay.
    *resp.extensions_mut() = parts.extensions;
    resp
}

/// The kind and message of an Anthropic or OpenAI error body.
fn error_of(body: &[u8], status: StatusCode) -> (ErrorKind, String) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the gateway answered {}", status.as_u16()));
    let kind = match v.pointer("/error/type").and_then(Value::as_str) {
        Some(t) if v.get("type").and_then(Value::as_str) == Some("error") => kind_of_anthropic(t),
        _ => crate::providers::mock::kind_of_status(status),
    };
    (kind, message)
}

/// Bedrock's error answer: `status`, `x-amzn-ErrorType`, `{"message"}`,
/// with the gateway's `retry-after` and rate-limit headers kept.
fn bedrock_error(
    status: StatusCode,
    from: HeaderMap,
    kind: ErrorKind,
    message: &str,
) -> Response<ResponseBody> {
    let (_, name, body) = front_error(kind, message);
    let mut resp = response::json(status, body);
    copy_headers(&from, resp.headers_mut());
    resp.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(name));
    resp
}

/// Headers of the gateway's answer a Bedrock client may see.
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let n = name.as_str();
        if n == "retry-after"
            || n == "x-should-retry"
            || n.starts_with("x-ratelimit-")
            || n.starts_with("anthropic-ratelimit-")
            || n.starts_with("x-switchboard-")
            || n == "request-id"
            || n == "x-request-id"
        {
            to.append(name.clone(), value.clone());
        }
    }
}

/// A body adapter: the gateway's Anthropic SSE in, event-stream messages out.
struct FramesFromSse {
    inner: ResponseBody,
    parser: SseParser,
    translator: Box<dyn StreamTranslator>,
    done: bool,
}

impl FramesFromSse {
    fn new(inner: ResponseBody, translator: Box<dyn StreamTranslator>) -> Self {
        Self {
            inner,
            parser: SseParser::default(),
            translator,
            done: false,
        }
    }
}

impl Body for FramesFromSse {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let mut out = Vec::new();
                    for event in this.parser.feed(&data).into_iter().flatten() {
                        this.translator.event(&event, &mut out);
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let mut out = Vec::new();
                    if let Some(Ok(event)) = this.parser.finish() {
                        this.translator.event(&event, &mut out);
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_paths_below_any_prefix() {
        assert_eq!(
            detect("/bedrock/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke"),
            Some(FrontDoor {
                op: FrontOp::Invoke,
                model: "us.anthropic.claude-sonnet-4-20250514-v1:0".into()
            })
        );
        assert_eq!(
            detect("/model/gpt-4.1/converse-stream").map(|f| f.op),
            Some(FrontOp::ConverseStream)
        );
        assert_eq!(detect("/v1/messages"), None);
        assert_eq!(detect("/model/x/count-tokens"), None);
    }

    #[test]
    fn invoke_bodies_become_messages_requests_with_their_betas_as_headers() {
        let front = FrontDoor {
            op: FrontOp::InvokeStream,
            model: "claude-sonnet-4".into(),
        };
        let json = RequestJson::parse(Bytes::from_static(
            br#"{"anthropic_version":"2026-10-21","anthropic_beta":["interleaved-thinking-2025-05-14"],"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "anthropic-beta",
            HeaderValue::from_static("claude-code-20250219"),
        );
        let out = to_messages(&front, json, &mut headers).unwrap();
        let v: Value = serde_json::from_slice(out.bytes()).unwrap();
        assert_eq!(v["model"], "claude-sonnet-4");
        assert_eq!(v["stream"], true);
        assert!(v.get("anthropic_version").is_none() && v.get("anthropic_beta").is_none());
        assert_eq!(
            headers["anthropic-beta"],
            "claude-code-20250219,interleaved-thinking-2025-05-14"
        );
    }

    #[tokio::test]
    async fn errors_take_bedrocks_shape() {
        let resp = response::json(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        );
        let mut resp = resp;
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from_static("7"));
        let out = encode(FrontOp::Converse, resp).await;
        assert_eq!(out.status(), 429);
        assert_eq!(out.headers()["x-amzn-errortype"], "ThrottlingException");
        assert_eq!(out.headers()["retry-after"], "7");
        let body = out.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"message":"slow down"}"#);

        let resp = response::json(
            StatusCode::UNAUTHORIZED,
            r#"{"type":"error","error":{"type":"authentication_error","message":"missing credential"}}"#,
        );
        let out = encode(FrontOp::InvokeStream, resp).await;
        assert_eq!(out.status(), 401);
        assert_eq!(
            out.headers()["x-amzn-errortype"],
            "UnrecognizedClientException"
        );
    }
}
