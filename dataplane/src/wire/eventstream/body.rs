//! An HTTP body adapter: upstream event-stream bytes in, SSE bytes out.
//!
//! Every upstream data frame is fed to a [`Decoder`]; each whole message
//! goes through the [`FrameTranslator`], whose output is yielded as one
//! frame (nothing is yielded for a chunk that completed no message). A
//! framing error yields the translator's in-band error and ends the body
//! (the upstream is dropped: the stream cannot be resynchronised). When the
//! upstream ends, the translator's held-back bytes are yielded; a message cut
//! short yields nothing more, so the relay above sees a stream without its
//! terminal event and reports the truncation. Body errors pass through.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{Decoder, FrameTranslator};

/// See the module docs.
pub struct SseFromFrames<B> {
    inner: Option<Pin<Box<B>>>,
    decoder: Decoder,
    translator: Box<dyn FrameTranslator>,
}

impl<B> SseFromFrames<B> {
    /// Wraps `body`, decoding messages of at most `max_message` bytes.
    pub fn new(body: B, translator: Box<dyn FrameTranslator>, max_message: usize) -> Self {
        Self {
            inner: Some(Box::pin(body)),
            decoder: Decoder::new(max_message),
            translator,
        }
    }
}

impl<B> SseFromFrames<B> {
    /// Decodes what is buffered into `out`; `false` when the framing broke.
    fn drain(&mut self, out: &mut Vec<u8>) -> bool {
        loop {
            match self.decoder.next_message() {
                Ok(Some(msg)) => self.translator.message(&msg, out),
                Ok(None) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, "upstream event stream is malformed");
                    self.translator.frame_error(&e, out);
                    return false;
                }
            }
        }
    }
}

impl<B> Body for SseFromFrames<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        // `B` is boxed and pinned, so `Self` is `Unpin`.
        let this = self.get_mut();
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.inner = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    this.decoder.feed(&data);
                    let mut out = Vec::new();
                    if !this.drain(&mut out) {
                        this.inner = None;
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Poll::Ready(None) => {
                    this.inner = None;
                    let mut out = Vec::new();
                    if let Err(e) = this.decoder.finish() {
                        tracing::debug!(error = %e, "upstream event stream ended inside a message");
                    }
                    this.translator.end(&mut out);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::{BodyExt, StreamBody};

    use super::super::{FrameError, Message, encode, event_message};
    use super::*;

    /// Writes `event-type payload` lines; errors as `error: …`.
    struct Lines;
    impl FrameTranslator for Lines {
        fn message(&mut self, msg: &Message, out: &mut Vec<u8>) {
            let kind = msg.string_header(":event-type").unwrap_or("?");
            out.extend_from_slice(
                format!("{kind} {}\n", String::from_utf8_lossy(&msg.payload)).as_bytes(),
            );
        }
        fn frame_error(&mut self, error: &FrameError, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("error: {error}\n").as_bytes());
        }
        fn end(&mut self, out: &mut Vec<u8>) {
            out.extend_from_slice(b"end\n");
        }
    }

    async fn run(chunks: Vec<Vec<u8>>) -> String {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = chunks
            .into_iter()
            .map(|c| Ok(Frame::data(Bytes::from(c))))
            .collect();
        let body = SseFromFrames::new(
            StreamBody::new(futures_util::stream::iter(frames)),
            Box::new(Lines),
            1 << 20,
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn messages_split_across_chunks_come_out_whole() {
        let mut wire = encode(&event_message("a", "application/json", b"1"));
        wire.extend(encode(&event_message("b", "application/json", b"2")));
        let chunks: Vec<Vec<u8>> = wire.chunks(5).map(<[u8]>::to_vec).collect();
        assert_eq!(run(chunks).await, "a 1\nb 2\nend\n");
    }

    #[tokio::test]
    async fn a_broken_frame_ends_the_body_with_an_error() {
        let good = encode(&event_message("a", "application/json", b"1"));
        let mut bad = encode(&event_message("b", "application/json", b"2"));
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let after = encode(&event_message("c", "application/json", b"3"));
        let out = run(vec![good, bad, after]).await;
        assert!(
            out.starts_with("a 1\nerror: event-stream message CRC mismatch"),
            "{out}"
        );
        assert!(!out.contains("c 3"), "nothing after the break: {out}");
        assert!(!out.contains("end"), "{out}");
    }
}
