//! One client connection: what it has done (bytes seen, requests in
//! flight, when it last changed) and when it must close.
//!
//! A connection closes (gracefully: HTTP/1 when idle, HTTP/2 with GOAWAY)
//! when it sent no byte within the first-byte timeout after it was
//! accepted, or had no request in flight for the idle timeout. The idle
//! clock restarts when a request starts and when one ends, not on every
//! byte, so a client trickling bytes that never make a request is closed
//! too. A connection that does not finish closing within
//! [`CLOSE_GRACE`] is dropped.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How long a connection told to close may take before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why a connection was closed by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No byte arrived within the first-byte timeout.
    FirstByte,
    /// No request was in flight for the idle timeout.
    Idle,
}

impl Expiry {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Expiry::FirstByte => "first_byte_timeout",
            Expiry::Idle => "idle_timeout",
        }
    }
}

/// The activity of one connection, shared by its IO, its requests and its
/// watchdog.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    got_byte: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` of the last request start or end.
    changed_ms: AtomicU64,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            got_byte: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            changed_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed_ms.store(ms, Ordering::Relaxed);
    }

    /// A request started on this connection.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// When the connection must close, given its timeouts: `Err(expiry)`
    /// when that moment has passed, else the instant to check again.
    pub fn check(
        &self,
        now: Instant,
        first_byte: Duration,
        idle: Duration,
    ) -> Result<Instant, Expiry> {
        if !self.got_byte.load(Ordering::Relaxed) {
            let at = self.opened + first_byte;
            return if now >= at {
                Err(Expiry::FirstByte)
            } else {
                Ok(at)
            };
        }
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Ok(now + idle);
        }
        let at =
            self.opened + Duration::from_millis(self.changed_ms.load(Ordering::Relaxed)) + idle;
        if now >= at { Err(Expiry::Idle) } else { Ok(at) }
    }
}

/// One request in flight; ends when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
pub struct TrackedBody<B> {
    inner: B,
    in_flight: Option<InFlight>,
}

impl<B> TrackedBody<B> {
    /// Wraps `inner`; `in_flight` ends with the body.
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            in_flight: Some(in_flight),
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for TrackedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.in_flight = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that records its first received byte.
pub struct TrackedIo<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> TrackedIo<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && !self.activity.got_byte.load(Ordering::Relaxed) {
            self.activity.got_byte.store(true, Ordering::Relaxed);
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn silent_connections_expire_at_the_first_byte_timeout() {
        let a = Activity::new();
        let t0 = Instant::now();
        assert_eq!(a.check(t0, 10 * S, 60 * S), Ok(t0 + 10 * S));
        assert_eq!(a.check(t0 + 10 * S, 10 * S, 60 * S), Err(Expiry::FirstByte));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_is_counted_from_the_last_request_and_never_while_one_runs() {
        let a = Activity::new();
        a.got_byte.store(true, Ordering::Relaxed);
        tokio::time::advance(5 * S).await;
        let req = a.request_started();
        tokio::time::advance(600 * S).await;
        let now = Instant::now();
        assert_eq!(a.check(now, 10 * S, 60 * S), Ok(now + 60 * S), "busy");
        drop(req);
        assert_eq!(a.check(now, 10 * S, 60 * S), Ok(now + 60 * S));
        assert_eq!(a.check(now + 60 * S, 10 * S, 60 * S), Err(Expiry::Idle));
    }
}
