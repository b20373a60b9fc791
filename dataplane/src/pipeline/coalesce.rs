//! Stream events that arrive in a burst, written to the client together.
//!
//! hyper flushes a response after each body frame, and its client hands
//! over one upstream chunk per frame, so an upstream that sends a burst of
//! events (one HTTP chunk each, as providers do) costs one `writev` per
//! event, and on a loaded machine each write may wake the client's CPU. A
//! 50-event burst made 57 writes (docs/benchmarks.md).
//!
//! [`Coalesce`] sends a frame at once unless it came within [`BURST_GAP`]
//! of the previous one: the first event of a stream, and every event of a
//! paced stream (a model generating tokens), goes out as it arrives, with no
//! extra work. Inside a burst, before sending what it holds, it lets the
//! runtime run the other ready tasks (`yield_now`, no timer) up to
//! [`EMPTY_ROUNDS`] times in a row: the upstream connection needs two rounds
//! to hand over its next buffered chunk, which then joins the held bytes.
//! When the rounds bring nothing, or [`COALESCE_LIMIT`] bytes are held,
//! they are sent as one frame. An event therefore waits only for tasks that
//! are ready to run, never for the network.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// Most bytes sent as one frame.
pub const COALESCE_LIMIT: usize = 32 * 1024;

/// A frame that comes within this time of the previous one is part of a burst.
pub const BURST_GAP: Duration = Duration::from_millis(1);

/// Scheduling rounds without a new frame before the held bytes are sent.
pub const EMPTY_ROUNDS: u32 = 3;

/// A frame (or the end) that came after held bytes: given after them.
type Held<E> = Option<Result<Frame<Bytes>, E>>;

/// See the module docs.
pub struct Coalesce<B: Body> {
    inner: B,
    held_bytes: BytesMut,
    /// What came after the held bytes: `Some(None)` is the end.
    held_after: Option<Held<B::Error>>,
    last_frame_at: Option<Instant>,
    empty_rounds: u32,
    yielding: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

// Nothing is pinned but `inner`, which is `Unpin` itself.
impl<B: Body + Unpin> Unpin for Coalesce<B> {}

impl<B: Body> Coalesce<B> {
    /// Wraps a stream's body.
    pub fn new(inner: B) -> Self {
        Coalesce {
            inner,
            held_bytes: BytesMut::new(),
            held_after: None,
            last_frame_at: None,
            empty_rounds: 0,
            yielding: None,
        }
    }

    fn send_held(&mut self) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        self.empty_rounds = 0;
        Poll::Ready(Some(Ok(Frame::data(self.held_bytes.split().freeze()))))
    }
}

impl<B> Body for Coalesce<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if this.held_bytes.is_empty()
            && let Some(after) = this.held_after.take()
        {
            return Poll::Ready(after);
        }
        loop {
            if let Some(round) = this.yielding.as_mut() {
                if round.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.yielding = None;
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let now = Instant::now();
                        let burst = this
                            .last_frame_at
                            .is_some_and(|at| now.saturating_duration_since(at) < BURST_GAP);
                        this.last_frame_at = Some(now);
                        if !burst && this.held_bytes.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        this.held_bytes.extend_from_slice(&data);
                        this.empty_rounds = 0;
                        if this.held_bytes.len() >= COALESCE_LIMIT {
                            return this.send_held();
                        }
                    }
                    Err(frame) if this.held_bytes.is_empty() => {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Err(frame) => {
                        this.held_after = Some(Some(Ok(frame)));
                        return this.send_held();
                    }
                },
                // An error or the end: after the held bytes.
                Poll::Ready(end) => {
                    if this.held_bytes.is_empty() {
                        return Poll::Ready(end);
                    }
                    this.held_after = Some(end);
                    return this.send_held();
                }
                Poll::Pending if this.held_bytes.is_empty() => return Poll::Pending,
                Poll::Pending if this.empty_rounds < EMPTY_ROUNDS => {
                    this.empty_rounds += 1;
                    this.yielding = Some(Box::pin(tokio::task::yield_now()));
                }
                Poll::Pending => return this.send_held(),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held_bytes.is_empty() && self.held_after.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    type Item = Result<Frame<Bytes>, std::io::Error>;

    /// A body fed by another task one frame at a time (a channel of one
    /// slot, as hyper's client hands over upstream chunks).
    fn fed() -> (
        mpsc::Sender<Item>,
        impl Body<Data = Bytes, Error = std::io::Error> + Unpin,
    ) {
        let (tx, mut rx) = mpsc::channel::<Item>(1);
        let frames = Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        (tx, http_body_util::StreamBody::new(frames))
    }

    fn send_all(tx: mpsc::Sender<Item>, items: Vec<Item>) {
        tokio::spawn(async move {
            for item in items {
                tx.send(item).await.unwrap();
            }
        });
    }

    fn event(text: &str) -> Item {
        Ok(Frame::data(Bytes::from(text.to_owned())))
    }

    async fn frames<B>(body: B) -> Vec<Item>
    where
        B: Body<Data = Bytes, Error = std::io::Error> + Unpin,
    {
        let mut body = Coalesce::new(body);
        let mut out = Vec::new();
        while let Some(f) = body.frame().await {
            out.push(f);
        }
        out
    }

    fn texts(out: &[Item]) -> Vec<String> {
        out.iter()
            .filter_map(|f| f.as_ref().ok()?.data_ref())
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    /// The events of a burst go out as one frame, after the first, which
    /// goes out alone and at once.
    #[tokio::test]
    async fn a_burst_is_sent_as_one_frame_after_the_first() {
        let (tx, body) = fed();
        send_all(tx, (0..10).map(|i| event(&format!("e{i};"))).collect());
        let got = texts(&frames(body).await);
        let all: String = (0..10).map(|i| format!("e{i};")).collect();
        assert_eq!(got.concat(), all);
        assert_eq!(got[0], "e0;");
        assert!(got.len() <= 3, "not coalesced: {got:?}");
    }

    /// Events that come apart in time are each sent when they arrive: none
    /// waits for the next.
    #[tokio::test(start_paused = true)]
    async fn events_apart_in_time_are_not_held_back() {
        let (tx, body) = fed();
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<String>();
        let reader = tokio::spawn(async move {
            let mut body = Coalesce::new(body);
            while let Some(Ok(f)) = body.frame().await {
                if let Ok(d) = f.into_data() {
                    seen_tx
                        .send(String::from_utf8_lossy(&d).into_owned())
                        .unwrap();
                }
            }
        });
        for i in 0..5 {
            tx.send(event(&format!("e{i}"))).await.unwrap();
            // The event reaches the client before the upstream sends the next.
            let got = tokio::time::timeout(Duration::from_millis(5), seen_rx.recv())
                .await
                .expect("an event was held back")
                .unwrap();
            assert_eq!(got, format!("e{i}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(tx);
        reader.await.unwrap();
    }

    /// Trailers, an error and the end come after the bytes held before
    /// them; the limit cuts a long burst.
    #[tokio::test]
    async fn what_follows_held_bytes_comes_after_them() {
        let (tx, body) = fed();
        let mut items: Vec<Item> = (0..3).map(|i| event(&format!("e{i}"))).collect();
        items.push(Ok(Frame::trailers(http::HeaderMap::new())));
        items.push(event("late"));
        items.push(Err(std::io::Error::other("cut")));
        send_all(tx, items);
        let out = frames(body).await;
        let trailers = out
            .iter()
            .position(|f| f.as_ref().is_ok_and(Frame::is_trailers))
            .expect("trailers");
        assert_eq!(texts(&out[..trailers]).concat(), "e0e1e2");
        assert_eq!(texts(&out[trailers..]).concat(), "late");
        assert!(out.last().unwrap().is_err(), "the error comes last");

        let (tx, body) = fed();
        let chunk = "x".repeat(10_000);
        send_all(tx, (0..10).map(|_| event(&chunk)).collect());
        let got = texts(&frames(body).await);
        assert_eq!(got.concat().len(), 100_000);
        assert!(got.len() > 1, "the limit cuts the burst");
        assert!(
            got.iter().all(|d| d.len() < COALESCE_LIMIT + chunk.len()),
            "{:?}",
            got.iter().map(String::len).collect::<Vec<_>>()
        );
    }
}
