//! The fast mock upstream: answers `POST …/chat/completions` (OpenAI) and
//! `POST …/messages` (Anthropic), streaming when the body says
//! `"stream": true`, after a configurable latency and with a configurable
//! number of text chunks and pause between them. `GET /` answers `ok`.
//! Answers are built once at start; a request costs a body read and a copy
//! of reference-counted bytes.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Sleep;

use crate::wire::{self, Flavor};

/// How the mock answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockConfig {
    /// Delay before the response headers.
    pub latency: Duration,
    /// Text deltas in a streamed answer.
    pub chunks: usize,
    /// Pause before each streamed event after the first.
    pub chunk_delay: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunks: 50,
            chunk_delay: Duration::ZERO,
        }
    }
}

struct Answers {
    config: MockConfig,
    openai_json: Bytes,
    anthropic_json: Bytes,
    openai_events: Arc<[Bytes]>,
    anthropic_events: Arc<[Bytes]>,
}

/// Serves the mock on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, config: MockConfig) -> std::io::Result<()> {
    let answers = Arc::new(Answers {
        config,
        openai_json: wire::json_answer(Flavor::OpenAI),
        anthropic_json: wire::json_answer(Flavor::Anthropic),
        openai_events: wire::stream_events(Flavor::OpenAI, config.chunks).into(),
        anthropic_events: wire::stream_events(Flavor::Anthropic, config.chunks).into(),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let answers = answers.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(answers.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The body of every mock response.
type MockBody = http_body_util::Either<http_body_util::Full<Bytes>, EventBody>;

async fn answer(
    answers: Arc<Answers>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let flavor = Flavor::from_path(req.uri().path());
    let is_post = req.method() == http::Method::POST;
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "unreadable body\n")),
    };
    let Some(flavor) = flavor.filter(|_| is_post) else {
        return Ok(plain(StatusCode::OK, "ok\n"));
    };
    if !answers.config.latency.is_zero() {
        tokio::time::sleep(answers.config.latency).await;
    }
    if wire::wants_stream(&body) {
        let events = match flavor {
            Flavor::OpenAI => answers.openai_events.clone(),
            Flavor::Anthropic => answers.anthropic_events.clone(),
        };
        let mut resp = Response::new(MockBody::Right(EventBody::new(
            events,
            answers.config.chunk_delay,
        )));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        Ok(resp)
    } else {
        let json = match flavor {
            Flavor::OpenAI => answers.openai_json.clone(),
            Flavor::Anthropic => answers.anthropic_json.clone(),
        };
        let mut resp = Response::new(MockBody::Left(http_body_util::Full::new(json)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::Left(http_body_util::Full::new(
        Bytes::from_static(text.as_bytes()),
    )));
    *resp.status_mut() = status;
    resp
}

/// A streamed answer: one frame per event, with an optional pause before
/// every event after the first.
pub struct EventBody {
    events: Arc<[Bytes]>,
    next: usize,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl EventBody {
    /// Streams `events`, pausing `delay` between them.
    pub fn new(events: Arc<[Bytes]>, delay: Duration) -> Self {
        Self {
            events,
            next: 0,
            delay,
            sleep: None,
        }
    }
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let Some(event) = this.events.get(this.next).cloned() else {
            return Poll::Ready(None);
        };
        if this.next > 0 && !this.delay.is_zero() {
            let delay = this.delay;
            let sleep = this
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.events.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    async fn start(config: MockConfig) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, config));
        addr
    }

    async fn post(
        addr: std::net::SocketAddr,
        path: &str,
        body: &'static str,
    ) -> (StatusCode, String) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn answers_one_request_in_each_format() {
        let addr = start(MockConfig {
            chunks: 5,
            ..MockConfig::default()
        })
        .await;
        let (status, body) = post(addr, "/v1/chat/completions", r#"{"model":"m"}"#).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("chat.completion"));
        let (_, body) = post(addr, "/v1/messages", r#"{"model":"m","stream":true}"#).await;
        assert_eq!(
            body.matches("content_block_delta").count(),
            10,
            "event name and type per delta"
        );
        assert!(body.ends_with("data: {\"type\":\"message_stop\"}\n\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn paces_streamed_events() {
        let events: Arc<[Bytes]> = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")].into();
        let started = tokio::time::Instant::now();
        let body = EventBody::new(events, Duration::from_millis(20))
            .collect()
            .await
            .unwrap();
        assert_eq!(body.to_bytes(), Bytes::from_static(b"ab"));
        assert_eq!(started.elapsed(), Duration::from_millis(20));
    }
}
