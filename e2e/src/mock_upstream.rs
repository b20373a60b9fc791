//! A scriptable mock provider upstream (OpenAI, Anthropic, Bedrock, Gemini, Vertex AI or Azure
//! OpenAI wire format) on `127.0.0.1:0`.
//!
//! Every request is recorded. Generation and `count_tokens` requests consume one scripted
//! [`Behaviour`] each (falling back to the default); `GET …/models` always answers. A small
//! control API under `/__mock/` (not recorded) lets out-of-process tests script the mock:
//! `POST /__mock/script` (JSON array of behaviours, replaces the queue), `POST /__mock/default`,
//! `GET /__mock/requests`, `POST /__mock/reset`, `POST /__mock/release` (one held stream goes on).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

mod azure;
mod bedrock;
mod google;
mod plan;

use crate::behaviour::{Behaviour, DEFAULT_TEXT};
use crate::wire::{self, Flavor, Reply, SseFrame};
use plan::Plan;

/// How long [`MockUpstream::wait_for_requests`] waits before panicking.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// JSON body; `Null` when empty, a JSON string when the body was not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive) if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// JSON form used by the control API: headers become an object of lowercase names.
    pub fn to_json(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    Value::String(String::from_utf8_lossy(v.as_bytes()).into()),
                )
            })
            .collect();
        json!({"method": self.method, "path": self.path, "query": self.query,
            "headers": headers, "body": self.body})
    }
}

#[derive(Debug)]
struct Inner {
    requests: Vec<RecordedRequest>,
    script: VecDeque<Behaviour>,
    default: Behaviour,
    /// Bedrock: the region signatures must name, and the secret key that
    /// verifies them (`None`: the header's form is checked, not the signature).
    aws_region: String,
    aws_secret: Option<String>,
}

#[derive(Debug)]
struct Shared {
    flavor: Flavor,
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
    shutdown: watch::Sender<bool>,
    /// One permit per [`MockUpstream::release`]: a held stream takes one and goes on.
    release: Semaphore,
}

impl Shared {
    /// The state of a fresh mock: nothing recorded or scripted, the default behaviour.
    fn new(flavor: Flavor) -> Self {
        Shared {
            flavor,
            inner: Mutex::new(Inner {
                requests: Vec::new(),
                script: VecDeque::new(),
                default: Behaviour::default(),
                aws_region: "us-east-1".to_string(),
                aws_secret: None,
            }),
            count: watch::channel(0).0,
            shutdown: watch::channel(false).0,
            release: Semaphore::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running mock provider. Stops accepting (and closes open connections) on drop.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockUpstream {
    /// Starts a mock of `flavor` on a free port of 127.0.0.1.
    pub async fn start(flavor: Flavor) -> MockUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock upstream");
        let addr = listener.local_addr().expect("mock upstream local addr");
        let shared = Arc::new(Shared::new(flavor));
        tokio::spawn(accept_loop(listener, shared.clone()));
        MockUpstream { addr, shared }
    }

    /// Bedrock flavour: requests must be signed for `region` (SigV4, checked with `secret`
    /// when given) or carry a bearer API key; others get Bedrock's 403.
    pub fn set_bedrock_auth(&self, region: &str, secret: Option<&str>) {
        let mut inner = self.shared.lock();
        inner.aws_region = region.to_string();
        inner.aws_secret = secret.map(str::to_string);
    }

    /// The flavor this mock speaks.
    pub fn flavor(&self) -> Flavor {
        self.shared.flavor
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL with the conventional `/v1` suffix, e.g. `http://127.0.0.1:41234/v1`.
    pub fn url_v1(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// All requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        *self.shared.count.borrow()
    }

    /// Waits until at least `n` requests arrived; panics after [`WAIT_TIMEOUT`].
    pub async fn wait_for_requests(&self, n: usize) -> Vec<RecordedRequest> {
        self.wait_for_requests_within(n, WAIT_TIMEOUT).await
    }

    /// Waits until at least `n` requests arrived; panics after `timeout`.
    pub async fn wait_for_requests_within(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        let mut rx = self.shared.count.subscribe();
        if tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            let seen: Vec<String> = self
                .requests()
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            panic!(
                "mock upstream {} ({:?}): expected at least {n} requests within {timeout:?}, got {}: {seen:?}",
                self.url(),
                self.flavor(),
                seen.len()
            );
        }
        self.requests()
    }

    /// Replaces the behaviour queue; each generation request consumes one entry.
    pub fn script(&self, behaviours: Vec<Behaviour>) {
        self.shared.lock().script = behaviours.into();
    }

    /// Sets the behaviour used once the script is empty.
    pub fn set_default(&self, behaviour: Behaviour) {
        self.shared.lock().default = behaviour;
    }

    /// Lets one [`Behaviour::HeldStream`] (waiting now or later) send the rest of its events.
    pub fn release(&self) {
        self.shared.release.add_permits(1);
    }

    /// Forgets recorded requests and the script; the default goes back to `Ok`.
    pub fn reset(&self) {
        let mut inner = self.shared.lock();
        inner.requests.clear();
        inner.script.clear();
        inner.default = Behaviour::default();
        drop(inner);
        self.shared.count.send_replace(0);
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let mut shutdown = shared.shutdown.subscribe();
            let service = {
                let kill = kill.clone();
                let shared = shared.clone();
                service_fn(move |req| handle(shared.clone(), kill.clone(), req))
            };
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

type MockBody = BoxBody<Bytes, std::io::Error>;

/// A response body fed frame by frame through a channel; an `Err` aborts the connection.
/// Before surfacing the error the body yields a few times so hyper flushes the frames already
/// written (otherwise the abort could discard them).
struct ChannelBody {
    rx: mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
    error: Option<std::io::Error>,
    yields: u8,
}

impl ChannelBody {
    fn new(rx: mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>) -> Self {
        ChannelBody {
            rx,
            error: None,
            yields: 0,
        }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.error.is_none() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Err(e))) => self.error = Some(e),
                other => return other,
            }
        }
        if self.yields < 3 {
            self.yields += 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.error.take().map(Err))
    }
}

fn full(bytes: impl Into<Bytes>) -> MockBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn json_response(status: u16, body: &Value, flavor: Flavor) -> Response<MockBody> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_request_id(headers, flavor);
    response
}

fn add_request_id(headers: &mut HeaderMap, flavor: Flavor) {
    let (name, value) = match flavor {
        Flavor::OpenAI => ("x-request-id", "req_mock_0001"),
        Flavor::Anthropic => ("request-id", "req_mock_0001"),
        Flavor::Bedrock => ("x-amzn-requestid", "00000000-0000-4000-8000-000000000001"),
        // Google names no request id; `x-goog-…` headers only carry diagnostics.
        Flavor::Gemini | Flavor::Vertex => ("x-goog-mock-request", "0001"),
        Flavor::Azure => ("apim-request-id", "00000000-0000-4000-8000-000000000001"),
    };
    headers.insert(name, HeaderValue::from_static(value));
}

/// How the stream should misbehave after some events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamEnd {
    Complete,
    Cut(usize),
    Stall(usize),
    Malformed,
    /// Wait for a release after this many events (with an upstream keep-alive first).
    Held(usize, bool),
}

fn sse_response(
    frames: Vec<SseFrame>,
    end: StreamEnd,
    flavor: Flavor,
    shared: Arc<Shared>,
) -> Response<MockBody> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let send = |text: String| tx.send(Ok(Frame::data(Bytes::from(text))));
        let total = frames.len();
        let limit = match end {
            StreamEnd::Cut(n) | StreamEnd::Stall(n) => n.min(total),
            StreamEnd::Complete | StreamEnd::Malformed | StreamEnd::Held(..) => total,
        };
        for (i, frame) in frames.into_iter().take(limit).enumerate() {
            if let StreamEnd::Held(n, ping) = end
                && i == n
            {
                if ping {
                    let keepalive = match flavor {
                        Flavor::Anthropic => "event: ping\ndata: {\"type\": \"ping\"}\n\n",
                        Flavor::OpenAI
                        | Flavor::Bedrock
                        | Flavor::Gemini
                        | Flavor::Vertex
                        | Flavor::Azure => ": keep-alive\n\n",
                    };
                    if send(keepalive.to_string()).await.is_err() {
                        return;
                    }
                }
                let mut shutdown = shared.shutdown.subscribe();
                tokio::select! {
                    permit = shared.release.acquire() => match permit {
                        Ok(p) => p.forget(),
                        Err(_) => return,
                    },
                    _ = tx.closed() => return,
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            if send(frame.encode()).await.is_err() {
                return;
            }
            if i == 0 && matches!(end, StreamEnd::Malformed) {
                let bad = match flavor {
                    Flavor::OpenAI
                    | Flavor::Bedrock
                    | Flavor::Gemini
                    | Flavor::Vertex
                    | Flavor::Azure => "data: {\"id\": \"broken\", this is not json\n\n",
                    Flavor::Anthropic => {
                        "event: content_block_delta\ndata: {\"type\": broken not json\n\n"
                    }
                };
                if send(bad.to_string()).await.is_err() {
                    return;
                }
            }
        }
        match end {
            StreamEnd::Complete | StreamEnd::Malformed | StreamEnd::Held(..) => {}
            StreamEnd::Cut(_) => {
                let _ = tx
                    .send(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "mock cut",
                    )))
                    .await;
            }
            StreamEnd::Stall(_) => {
                let mut shutdown = shared.shutdown.subscribe();
                tokio::select! {
                    _ = tx.closed() => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
            }
        }
    });
    let mut response = Response::new(ChannelBody::new(rx).boxed());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    add_request_id(headers, flavor);
    response
}

/// Which provider endpoint a path addresses (matched by suffix so any base path works).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Bedrock(crate::bedrock_wire::Op),
    Google,
    Azure,
    ChatCompletions,
    Messages,
    CountTokens,
    Responses,
    Models,
    /// Vertex flavour: the GCE metadata server's token endpoint (GKE Workload Identity).
    MetadataToken,
    Unknown,
}

fn endpoint(flavor: Flavor, method: &Method, path: &str) -> Endpoint {
    let path = path.trim_end_matches('/');
    if flavor == Flavor::Bedrock {
        return match (method, crate::bedrock_wire::parse_path(path)) {
            (&Method::POST, Some((_, op))) => Endpoint::Bedrock(op),
            _ => Endpoint::Unknown,
        };
    }
    match (flavor, method) {
        (Flavor::Vertex, &Method::GET) if crate::google_wire::is_metadata_token_path(path) => {
            Endpoint::MetadataToken
        }
        (Flavor::Gemini | Flavor::Vertex, &Method::POST)
            if crate::google_wire::parse_path(path).is_some() =>
        {
            Endpoint::Google
        }
        (Flavor::Azure, &Method::POST) if crate::azure_wire::parse_path(path).is_some() => {
            Endpoint::Azure
        }
        (Flavor::Gemini | Flavor::Vertex | Flavor::Azure, &Method::POST) => Endpoint::Unknown,
        (Flavor::OpenAI, &Method::POST) if path.ends_with("/chat/completions") => {
            Endpoint::ChatCompletions
        }
        (Flavor::OpenAI, &Method::POST) if path.ends_with("/responses") => Endpoint::Responses,
        (Flavor::Anthropic, &Method::POST) if path.ends_with("/messages/count_tokens") => {
            Endpoint::CountTokens
        }
        (Flavor::Anthropic, &Method::POST) if path.ends_with("/messages") => Endpoint::Messages,
        (_, &Method::GET) if path.ends_with("/models") => Endpoint::Models,
        _ => Endpoint::Unknown,
    }
}

async fn handle(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    let path = parts.uri.path().to_string();
    let flavor = shared.flavor;
    if let Some(control) = path.strip_prefix("/__mock/") {
        return Ok(control_api(&shared, &parts.method, control, body));
    }
    let headers = parts.headers.clone();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body: body.clone(),
    };
    let endpoint = endpoint(flavor, &parts.method, &path);
    let behaviour = {
        let mut inner = shared.lock();
        inner.requests.push(recorded);
        let count = inner.requests.len();
        let behaviour = match endpoint {
            Endpoint::Bedrock(_)
            | Endpoint::Google
            | Endpoint::Azure
            | Endpoint::ChatCompletions
            | Endpoint::Messages
            | Endpoint::CountTokens
            | Endpoint::Responses => {
                let default = inner.default.clone();
                Some(inner.script.pop_front().unwrap_or(default))
            }
            Endpoint::Models | Endpoint::MetadataToken | Endpoint::Unknown => None,
        };
        drop(inner);
        shared.count.send_replace(count);
        behaviour
    };
    let Some(behaviour) = behaviour else {
        return Ok(match endpoint {
            Endpoint::Models => json_response(200, &models_body(flavor), flavor),
            Endpoint::MetadataToken => google::metadata_token(&headers),
            _ => json_response(404, &wire::default_error_body(flavor, 404), flavor),
        });
    };
    if let Endpoint::Bedrock(op) = endpoint {
        let request = bedrock::Received {
            path: &path,
            headers: &headers,
            raw: &bytes,
            body: &body,
        };
        return Ok(bedrock::answer(shared, kill, op, request, behaviour).await);
    }
    if endpoint == Endpoint::Google {
        let request = google::Received {
            path: &path,
            query: parts.uri.query(),
            headers: &headers,
            body: &body,
        };
        return Ok(google::answer(shared, kill, request, behaviour).await);
    }
    if endpoint == Endpoint::Azure {
        let request = azure::Received {
            path: &path,
            query: parts.uri.query(),
            headers: &headers,
            body: &body,
        };
        return Ok(azure::answer(shared, kill, request, behaviour).await);
    }
    Ok(answer(shared, kill, endpoint, &body, behaviour).await)
}

fn models_body(flavor: Flavor) -> Value {
    match flavor {
        Flavor::OpenAI => json!({"object": "list", "data": [
            {"id": "mock-gpt", "object": "model", "created": wire::CREATED, "owned_by": "mock"}]}),
        Flavor::Anthropic => {
            json!({"data": [{"type": "model", "id": "mock-claude", "display_name": "Mock Claude",
            "created_at": "2025-01-01T00:00:00Z"}], "has_more": false, "first_id": "mock-claude", "last_id": "mock-claude"})
        }
        Flavor::Bedrock => json!({"modelSummaries": []}),
        Flavor::Gemini | Flavor::Vertex => json!({"models": [{"name": "models/gemini-2.5-pro",
            "displayName": "Gemini 2.5 Pro", "supportedGenerationMethods": ["generateContent", "countTokens"]}]}),
        Flavor::Azure => {
            json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": wire::CREATED, "owned_by": "system"}]})
        }
    }
}

async fn answer(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    endpoint: Endpoint,
    body: &Value,
    behaviour: Behaviour,
) -> Response<MockBody> {
    let flavor = shared.flavor;
    let (reply, usage, end) = match plan::plan(behaviour, &shared, &kill).await {
        Plan::Status {
            status,
            body: error_body,
            headers,
        } => {
            let error_body = if error_body.is_null() {
                wire::default_error_body(flavor, status)
            } else {
                error_body
            };
            return plan::with_headers(json_response(status, &error_body, flavor), headers);
        }
        Plan::Answer { reply, usage, end } => (reply, usage, end),
        Plan::Exception {
            after_events,
            exception,
            message,
        } => {
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("mock-model");
            let usage = wire::default_usage(body, &Reply::Text(DEFAULT_TEXT.to_string()));
            let mut frames = match flavor {
                Flavor::Anthropic => {
                    wire::anthropic_stream(model, &Reply::Text(DEFAULT_TEXT.to_string()), usage)
                }
                _ => {
                    wire::openai_stream(model, &Reply::Text(DEFAULT_TEXT.to_string()), usage, false)
                }
            };
            frames.truncate(after_events);
            frames.push(wire::stream_error_frame(flavor, &exception, &message));
            return sse_response(frames, StreamEnd::Complete, flavor, shared);
        }
    };
    let usage = usage.unwrap_or_else(|| wire::default_usage(body, &reply));
    if endpoint == Endpoint::CountTokens {
        let input = if usage.input == 0 {
            wire::estimate_tokens(body)
        } else {
            usage.input
        };
        return json_response(200, &json!({"input_tokens": input}), flavor);
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_string();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if stream {
        let frames = match flavor {
            // Azure serves OpenAI's Responses API (`/openai/v1/responses`, `/openai/responses`).
            Flavor::OpenAI | Flavor::Azure if endpoint == Endpoint::Responses => {
                crate::responses_wire::responses_stream(&model, &reply, usage)
            }
            // Bedrock, Google and Azure requests are answered by their modules before this point.
            Flavor::OpenAI | Flavor::Bedrock | Flavor::Gemini | Flavor::Vertex | Flavor::Azure => {
                let include_usage = body
                    .pointer("/stream_options/include_usage")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                wire::openai_stream(&model, &reply, usage, include_usage)
            }
            Flavor::Anthropic => wire::anthropic_stream(&model, &reply, usage),
        };
        return sse_response(frames, end, flavor, shared);
    }
    let json = match flavor {
        Flavor::OpenAI | Flavor::Azure if endpoint == Endpoint::Responses => {
            crate::responses_wire::responses_body(&model, &reply, usage)
        }
        Flavor::OpenAI | Flavor::Bedrock | Flavor::Gemini | Flavor::Vertex | Flavor::Azure => {
            wire::openai_completion(&model, &reply, usage)
        }
        Flavor::Anthropic => wire::anthropic_message(&model, &reply, usage),
    };
    match end {
        StreamEnd::Complete => json_response(200, &json, flavor),
        StreamEnd::Malformed => {
            let mut response = json_response(200, &json, flavor);
            *response.body_mut() = full("{\"id\": \"broken\", this is not json");
            response
        }
        StreamEnd::Held(..) => json_response(200, &json, flavor),
        StreamEnd::Cut(_) | StreamEnd::Stall(_) => {
            // A non-streaming request: send half of the JSON body, then cut or hang.
            let text = json.to_string();
            let half = Bytes::from(text[..text.len() / 2].to_string());
            let (tx, rx) = mpsc::channel(2);
            let cut = matches!(end, StreamEnd::Cut(_));
            tokio::spawn(async move {
                if tx.send(Ok(Frame::data(half))).await.is_err() {
                    return;
                }
                if cut {
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "mock cut",
                        )))
                        .await;
                } else {
                    let mut shutdown = shared.shutdown.subscribe();
                    tokio::select! {
                        _ = tx.closed() => {}
                        _ = shutdown.wait_for(|stop| *stop) => {}
                    }
                }
            });
            let mut response = Response::new(ChannelBody::new(rx).boxed());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            add_request_id(response.headers_mut(), flavor);
            response
        }
    }
}

fn control_api(shared: &Shared, method: &Method, path: &str, body: Value) -> Response<MockBody> {
    let flavor = shared.flavor;
    let ok = || json_response(200, &json!({"ok": true}), flavor);
    let bad = |message: String| json_response(400, &json!({"error": message}), flavor);
    match (method, path) {
        (&Method::POST, "script") => match serde_json::from_value::<Vec<Behaviour>>(body) {
            Ok(list) => {
                shared.lock().script = list.into();
                ok()
            }
            Err(e) => bad(format!("script: {e}")),
        },
        (&Method::POST, "default") => match serde_json::from_value::<Behaviour>(body) {
            Ok(behaviour) => {
                shared.lock().default = behaviour;
                ok()
            }
            Err(e) => bad(format!("default: {e}")),
        },
        (&Method::GET, "requests") => {
            let list: Vec<Value> = shared
                .lock()
                .requests
                .iter()
                .map(RecordedRequest::to_json)
                .collect();
            json_response(200, &Value::Array(list), flavor)
        }
        (&Method::POST, "release") => {
            shared.release.add_permits(1);
            ok()
        }
        (&Method::POST, "reset") => {
            let mut inner = shared.lock();
            inner.requests.clear();
            inner.script.clear();
            inner.default = Behaviour::default();
            drop(inner);
            shared.count.send_replace(0);
            ok()
        }
        _ => json_response(404, &json!({"error": "unknown control path"}), flavor),
    }
}
