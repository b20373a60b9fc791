//! Response bodies and helpers shared by every endpoint.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::RequestError;
use crate::wire::{self, Dialect};

/// Errors a response body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the gateway sends.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A JSON response.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A plain-text response.
pub fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The gateway's own error, in the client's dialect.
pub fn error(dialect: Dialect, err: &RequestError) -> Response<ResponseBody> {
    let body = wire::error_body(
        dialect,
        err.kind(),
        &err.client_message(),
        err.openai_code(),
    );
    let mut resp = json(err.status(), body);
    match err {
        RequestError::Unauthenticated(e) if e.is_unavailable() => {
            // Signing keys could not be fetched yet: a short, retryable outage.
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        RequestError::Unauthenticated(_) if dialect == Dialect::OpenAI => {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        RequestError::NotReady
        | RequestError::LimiterUnavailable
        | RequestError::WebhookUnavailable => {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        RequestError::LimitExceeded(r) => {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(r.retry_after_secs()));
            crate::teams::headers::add_ratelimit_headers(resp.headers_mut(), &r.admission);
        }
        _ => {}
    }
    resp
}

/// Marks a streaming response so proxies in front do not buffer it.
pub fn mark_streaming(resp: &mut Response<ResponseBody>) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// Forwards a non-streaming upstream body unchanged while keeping a cheap
/// (reference-counted) copy of its chunks, and hands the whole body to
/// `on_end` once it finished — or what was seen of it if the client left.
pub struct TapBody<B> {
    inner: B,
    seen: Vec<Bytes>,
    limit: usize,
    size: usize,
    on_end: Option<Box<dyn FnOnce(TapEnd) + Send>>,
}

/// What a [`TapBody`] saw.
pub struct TapEnd {
    /// The body, if it completed and stayed under the inspection limit.
    pub body: Option<Bytes>,
    /// The body finished cleanly.
    pub completed: bool,
}

impl<B> TapBody<B> {
    /// Wraps `inner`; bodies larger than `limit` bytes are forwarded but not inspected.
    pub fn new(inner: B, limit: usize, on_end: Box<dyn FnOnce(TapEnd) + Send>) -> Self {
        Self {
            inner,
            seen: Vec::new(),
            limit,
            size: 0,
            on_end: Some(on_end),
        }
    }

    fn finish(&mut self, completed: bool) {
        if let Some(f) = self.on_end.take() {
            let body = (completed && self.size <= self.limit).then(|| {
                let mut all = Vec::with_capacity(self.size);
                for chunk in self.seen.drain(..) {
                    all.extend_from_slice(&chunk);
                }
                Bytes::from(all)
            });
            f(TapEnd { body, completed });
        }
    }
}

impl<B> Drop for TapBody<B> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl<B> Body for TapBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.size += data.len();
                    if this.size <= this.limit {
                        this.seen.push(data.clone());
                    } else {
                        this.seen.clear();
                    }
                }
                // With a known length the server stops polling once every
                // byte was read: the body is complete now, not at `None`.
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(false);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.finish(true);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the tap reported: the body it saw and whether it completed.
    type Seen = Arc<Mutex<Option<(Option<Bytes>, bool)>>>;

    #[test]
    fn a_sized_body_is_complete_after_its_last_frame() {
        let seen: Seen = Arc::default();
        let sink = seen.clone();
        let inner = http_body_util::Full::new(Bytes::from_static(b"{\"usage\":{}}"));
        let on_end =
            Box::new(move |end: TapEnd| *sink.lock().unwrap() = Some((end.body, end.completed)));
        let mut tap = TapBody::new(inner, 1024, on_end);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let frame = Pin::new(&mut tap).poll_frame(&mut cx);
        assert!(matches!(frame, Poll::Ready(Some(Ok(_)))));
        assert!(tap.is_end_stream());
        // hyper drops the body here without polling for the end.
        drop(tap);
        let (body, completed) = seen.lock().unwrap().take().unwrap();
        assert!(completed);
        assert_eq!(body.as_deref(), Some(&b"{\"usage\":{}}"[..]));
    }
}
