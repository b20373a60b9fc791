//! A scriptable upstream for in-process tests: a [`Transport`] that answers
//! from a script instead of the network, so the whole request pipeline can
//! be driven through every failure class with tokio's paused clock and no
//! sockets.
//!
//! Each backend is told apart by its endpoint's host (`http://primary`,
//! `http://secondary`, …). A host answers the replies queued with
//! [`FakeUpstream::script`] first, then its default
//! ([`FakeUpstream::set_default`], else [`Reply::ok`]). Every request is
//! recorded ([`FakeUpstream::requests`]). [`Reply::Ok`] answers in the
//! wire format of the request's path: Anthropic (`/messages`), Bedrock
//! (`/model/{id}/…`, event-stream framing for streams), Vertex AI
//! (`/v1/projects/…/publishers/…`: Claude's or Gemini's), the Gemini API
//! (`/v1beta/models/…`) or OpenAI.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::Value;

use super::{BodyError, BoxFuture, SendError, SendResult, Transport};
use crate::wire::Dialect;
use crate::wire::mock::{MockReply, MockResponse};

/// One step of a scripted response body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes as one frame.
    Data(Bytes),
    /// Wait before the next step.
    Wait(Duration),
    /// The connection breaks: the body ends with an error.
    Cut,
    /// Nothing more, ever (the body never ends).
    Stall,
    /// Forever: wait, then send these bytes (a keep-alive that never stops).
    Every(Duration, Bytes),
}

/// How a host answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An answer like the real provider's for the request: the built-in
    /// mock's exact wire format (JSON or SSE, by the request's `stream`
    /// flag) with this text.
    Ok(String),
    /// No connection (refused, DNS, TLS).
    Refuse,
    /// The connection breaks before the response head.
    Reset,
    /// The response head never comes.
    Hang,
    /// Waits, then answers the inner reply.
    After(Duration, Box<Reply>),
    /// A status with headers and a scripted body.
    Respond {
        /// Status code.
        status: u16,
        /// Response headers.
        headers: Vec<(&'static str, String)>,
        /// The body, step by step.
        body: Vec<Step>,
    },
    /// Like [`Reply::Ok`], with the body's steps transformed (e.g. cut or
    /// delayed) after the real answer was built.
    Shaped(String, fn(Vec<Step>) -> Vec<Step>),
}

impl Reply {
    /// [`Reply::Ok`] with `text`.
    pub fn ok(text: &str) -> Self {
        Reply::Ok(text.to_string())
    }

    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Self {
        Reply::Respond {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: vec![Step::Data(Bytes::from(body.to_string()))],
        }
    }

    /// An SSE answer of these raw events (each a complete event).
    pub fn sse(events: &[&str]) -> Self {
        Reply::Respond {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            body: events
                .iter()
                .map(|e| Step::Data(Bytes::copy_from_slice(e.as_bytes())))
                .collect(),
        }
    }

    /// A status with a provider-shaped error body (OpenAI shape; Anthropic
    /// clients get it translated like any upstream error).
    pub fn status(status: u16) -> Self {
        Reply::json(
            status,
            &serde_json::json!({"error": {"message": format!("upstream says {status}"), "type": "server_error"}}),
        )
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Host of the URI (the backend).
    pub host: String,
    /// Path and query.
    pub path: String,
    /// Request headers.
    pub headers: http::HeaderMap,
    /// The body, parsed.
    pub body: Value,
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    defaults: HashMap<String, Reply>,
    requests: Vec<Recorded>,
}

/// The scriptable fake upstream; clones share state.
#[derive(Clone, Default)]
pub struct FakeUpstream {
    state: Arc<Mutex<State>>,
}

impl FakeUpstream {
    /// A fake where every host answers [`Reply::ok`] until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues replies for `host`, answered in order before its default.
    pub fn script(&self, host: &str, replies: Vec<Reply>) {
        let mut st = self.state.lock().unwrap();
        st.scripts
            .entry(host.to_string())
            .or_default()
            .extend(replies);
    }

    /// What `host` answers once its script is used up.
    pub fn set_default(&self, host: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .defaults
            .insert(host.to_string(), reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many requests `host` received.
    pub fn count(&self, host: &str) -> usize {
        self.requests().iter().filter(|r| r.host == host).count()
    }

    fn next_reply(&self, host: &str) -> Reply {
        let mut st = self.state.lock().unwrap();
        if let Some(r) = st.scripts.get_mut(host).and_then(VecDeque::pop_front) {
            return r;
        }
        st.defaults
            .get(host)
            .cloned()
            .unwrap_or_else(|| Reply::ok("hello from the fake"))
    }
}

impl Transport for FakeUpstream {
    fn send(&self, req: Request<Full<Bytes>>) -> BoxFuture<SendResult> {
        let this = self.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let host = parts.uri.host().unwrap_or_default().to_string();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            this.state.lock().unwrap().requests.push(Recorded {
                host: host.clone(),
                path: path.clone(),
                headers: parts.headers,
                body: json.clone(),
            });
            let reply = this.next_reply(&host);
            answer(reply, &path, &json).await
        })
    }
}

fn answer<'a>(reply: Reply, path: &'a str, request: &'a Value) -> BoxFuture<SendResult> {
    let path = path.to_string();
    let request = request.clone();
    Box::pin(async move {
        match reply {
            Reply::Refuse => Err(SendError::Connect("connection refused (fake)".into())),
            Reply::Reset => Err(SendError::Failed("connection reset (fake)".into())),
            Reply::Hang => std::future::pending().await,
            Reply::After(d, inner) => {
                tokio::time::sleep(d).await;
                answer(*inner, &path, &request).await
            }
            Reply::Ok(text) => Ok(provider_answer(&path, &request, &text, |s| s)),
            Reply::Shaped(text, shape) => Ok(provider_answer(&path, &request, &text, shape)),
            Reply::Respond {
                status,
                headers,
                body,
            } => Ok(respond(status, &headers, body)),
        }
    })
}

/// The real provider's answer for `request` at `path`, with `text`.
fn provider_answer(
    path: &str,
    request: &Value,
    text: &str,
    shape: fn(Vec<Step>) -> Vec<Step>,
) -> Response<super::UpstreamBody> {
    if let Some((model, op)) = crate::translate::bedrock::parse_front_path(path) {
        return bedrock_answer(&model, op, request, text, shape);
    }
    if let Some(answer) = google_answer(path, request, text, shape) {
        return answer;
    }
    let dialect = if path.contains("/messages") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAI
    };
    let settings = MockReply {
        reply: text.to_string(),
    };
    match crate::wire::mock::respond(dialect, request, &settings) {
        MockResponse::Json(bytes) => respond(
            200,
            &[("content-type", "application/json".into())],
            shape(vec![Step::Data(bytes)]),
        ),
        MockResponse::Sse(events) => respond(
            200,
            &[("content-type", "text/event-stream".into())],
            shape(events.into_iter().map(Step::Data).collect()),
        ),
    }
}

/// Bedrock's answer (InvokeModel or Converse, JSON or event stream) for
/// `request`, as the Mock emulating Bedrock gives it.
fn bedrock_answer(
    model: &str,
    op: crate::translate::bedrock::FrontOp,
    request: &Value,
    text: &str,
    shape: fn(Vec<Step>) -> Vec<Step>,
) -> Response<super::UpstreamBody> {
    use crate::providers::bedrock::mock::{BedrockMockResponse, respond_bedrock};
    use crate::translate::bedrock::{BedrockApi, FrontOp};
    let api = match op {
        FrontOp::Invoke | FrontOp::InvokeStream => BedrockApi::InvokeModel,
        FrontOp::Converse | FrontOp::ConverseStream => BedrockApi::Converse,
    };
    let settings = MockReply {
        reply: text.to_string(),
    };
    match respond_bedrock(api, request, model, op.streams(), &settings) {
        Ok(BedrockMockResponse::Json(bytes)) => respond(
            200,
            &[("content-type", "application/json".into())],
            shape(vec![Step::Data(bytes)]),
        ),
        Ok(BedrockMockResponse::EventStream(frames)) => respond(
            200,
            &[(
                "content-type",
                crate::wire::eventstream::CONTENT_TYPE.into(),
            )],
            shape(frames.into_iter().map(Step::Data).collect()),
        ),
        Err(e) => respond(
            400,
            &[
                ("content-type", "application/json".into()),
                ("x-amzn-errortype", "ValidationException".into()),
            ],
            vec![Step::Data(Bytes::from(
                serde_json::json!({"message": e.to_string()}).to_string(),
            ))],
        ),
    }
}

/// Vertex AI's or the Gemini API's answer for `request` at `path`, as
/// the Mock emulating them gives it; `None` for another path.
fn google_answer(
    path: &str,
    request: &Value,
    text: &str,
    shape: fn(Vec<Step>) -> Vec<Step>,
) -> Option<Response<super::UpstreamBody>> {
    use crate::google::VertexOp;
    use crate::google::mock::{respond_count_tokens, respond_gemini, respond_vertex_claude};
    use crate::google::vertex::{parse_gemini_api_path, parse_path};
    let path = path.split('?').next().unwrap_or_default();
    let settings = MockReply {
        reply: text.to_string(),
    };
    let json = |bytes: Bytes| {
        respond(
            200,
            &[("content-type", "application/json".into())],
            shape(vec![Step::Data(bytes)]),
        )
    };
    let answered = if let Some((model, op)) = parse_path(path) {
        match op {
            VertexOp::CountTokens => Ok(MockResponse::Json(Bytes::from(
                serde_json::json!({"input_tokens": crate::wire::mock::count_tokens(request)})
                    .to_string(),
            ))),
            VertexOp::CountGeminiTokens => respond_count_tokens(request).map(MockResponse::Json),
            VertexOp::RawPredict | VertexOp::StreamRawPredict => {
                respond_vertex_claude(request, &model, op.streams(), &settings)
            }
            _ => respond_gemini(request, &model, op.streams(), &settings),
        }
    } else {
        let (model, op) = parse_gemini_api_path(path)?;
        match op {
            crate::google::GeminiOp::CountTokens => {
                respond_count_tokens(request).map(MockResponse::Json)
            }
            op => respond_gemini(
                request,
                &model,
                op == crate::google::GeminiOp::StreamGenerateContent,
                &settings,
            ),
        }
    };
    Some(match answered {
        Ok(MockResponse::Json(bytes)) => json(bytes),
        Ok(MockResponse::Sse(events)) => respond(
            200,
            &[("content-type", "text/event-stream".into())],
            shape(events.into_iter().map(Step::Data).collect()),
        ),
        Err(e) => respond(
            400,
            &[("content-type", "application/json".into())],
            vec![Step::Data(crate::google::mock::error_body(
                400,
                &e.to_string(),
            ))],
        ),
    })
}

fn respond(
    status: u16,
    headers: &[(&'static str, String)],
    steps: Vec<Step>,
) -> Response<super::UpstreamBody> {
    let stream = futures_util::stream::unfold(VecDeque::from(steps), |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Data(b) => return Some((Ok(Frame::data(b)), steps)),
                Step::Wait(d) => tokio::time::sleep(d).await,
                Step::Cut => {
                    steps.clear();
                    return Some((Err(BodyError::new("connection reset (fake)")), steps));
                }
                Step::Stall => std::future::pending::<()>().await,
                Step::Every(d, b) => {
                    tokio::time::sleep(d).await;
                    steps.push_front(Step::Every(d, b.clone()));
                    return Some((Ok(Frame::data(b)), steps));
                }
            }
        }
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for (name, value) in headers {
        resp.headers_mut()
            .append(*name, http::HeaderValue::from_str(value).unwrap());
    }
    resp
}
