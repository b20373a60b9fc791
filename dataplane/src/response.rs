//! Response bodies and helpers shared by every endpoint.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::RequestError;
use crate::wire::{self, Dialect};

/// Errors a response body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the gateway sends.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why a body the gateway reads (a client's request body, an upstream's
/// answer) failed. A concrete type rather than a [`BoxError`], so generic
/// body wrappers instantiated inside `async fn`s stay `Send` (rustc cannot
/// prove `Box<dyn Error>: Into<Box<dyn Error>>` for every lifetime there).
#[derive(Debug)]
pub struct BodyError(pub BoxError);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl BodyError {
    /// Wraps any error.
    pub fn new(e: impl Into<BoxError>) -> Self {
        Self(e.into())
    }
}

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

/// A plain-text response with a computed body.
pub fn text_owned(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut resp = Response::new(full(body));
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
        | RequestError::WebhookUnavailable
        | RequestError::BodyBudgetExhausted => {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        RequestError::LimitExceeded(r) => {
            crate::teams::headers::add_retry_after(resp.headers_mut(), r.retry_after_secs());
            crate::teams::headers::add_ratelimit_headers(resp.headers_mut(), dialect, &r.limits());
        }
        RequestError::WebhookRejected {
            retry: Some(retry), ..
        } => {
            crate::teams::headers::add_retry_after(resp.headers_mut(), retry.secs);
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
