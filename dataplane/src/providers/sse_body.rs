//! An HTTP body adapter for upstream SSE streams: every upstream data
//! frame is fed to an [`SseParser`] and each whole event goes through an
//! [`SseRewriter`], whose output is yielded as one frame (nothing is yielded
//! for a chunk that completed no event). Body errors pass through. Two
//! rewriters use it:
//!
//! - [`TranslatedSse`]: SSE of another dialect than the translation layer
//!   reads, translated by a [`StreamTranslator`] (Gemini's
//!   `streamGenerateContent?alt=sse` → Anthropic SSE). An event larger than
//!   the parser's limit yields the translator's in-band error and ends the
//!   body (the upstream is dropped). When the upstream ends, an event whose
//!   lines were complete is still translated; nothing else is added, so a
//!   stream cut short reaches the relay above without its terminal event and
//!   is reported as truncated.
//! - Azure OpenAI's annotation filter (`azure_openai::filter`).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::translate::StreamTranslator;
use crate::upstream::{BodyError, UpstreamBody};
use crate::wire::ErrorKind;
use crate::wire::sse::{SseError, SseEvent, SseParser};

/// What an [`SseBody`] does with the events of its upstream.
pub trait SseRewriter: Send {
    /// Writes what one whole event becomes into `out`.
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>);
    /// An event the parser refused (too large): `Ok` after writing an
    /// in-band error into `out` (the body then ends after `out`), or the
    /// error the body ends with (what is in `out` is dropped).
    fn refused(&mut self, error: &SseError, out: &mut Vec<u8>) -> Result<(), BodyError>;
    /// The event still open when the upstream ended (no blank line after it).
    fn last(&mut self, event: &SseEvent, out: &mut Vec<u8>);
}

/// Upstream SSE rewritten event by event (see the module docs).
pub struct SseBody<R> {
    inner: Option<UpstreamBody>,
    parser: SseParser,
    rewriter: R,
}

impl<R: SseRewriter> SseBody<R> {
    /// Wraps `body`, rewriting its events with `rewriter`.
    pub fn new(body: UpstreamBody, rewriter: R) -> Self {
        Self {
            inner: Some(body),
            parser: SseParser::default(),
            rewriter,
        }
    }
}

fn frame(out: Vec<u8>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
    Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
}

impl<R: SseRewriter + Unpin> Body for SseBody<R> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.inner = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(data))) => {
                    let Ok(data) = data.into_data() else {
                        continue;
                    };
                    let mut out = Vec::new();
                    for event in this.parser.feed(&data) {
                        match event {
                            Ok(event) => this.rewriter.event(&event, &mut out),
                            Err(e) => {
                                this.inner = None;
                                match this.rewriter.refused(&e, &mut out) {
                                    Ok(()) => break,
                                    Err(e) => return Poll::Ready(Some(Err(e))),
                                }
                            }
                        }
                    }
                    if !out.is_empty() {
                        return frame(out);
                    }
                }
                Poll::Ready(None) => {
                    this.inner = None;
                    let mut out = Vec::new();
                    if let Some(Ok(event)) = this.parser.finish() {
                        this.rewriter.last(&event, &mut out);
                    }
                    if !out.is_empty() {
                        return frame(out);
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

/// Events translated by a [`StreamTranslator`].
pub struct Translating(Box<dyn StreamTranslator>);

impl SseRewriter for Translating {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        self.0.event(event, out);
    }

    fn refused(&mut self, error: &SseError, out: &mut Vec<u8>) -> Result<(), BodyError> {
        tracing::warn!(error = %error, "upstream SSE event refused");
        if !self.0.error_event(ErrorKind::Api, &error.to_string(), out) {
            tracing::debug!("the translator has no in-band error event");
        }
        Ok(())
    }

    fn last(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        self.0.event(event, out);
    }
}

/// Upstream SSE translated by a [`StreamTranslator`] (see the module docs).
pub type TranslatedSse = SseBody<Translating>;

impl TranslatedSse {
    /// Wraps `body`, translating its events with `translator`.
    pub fn translating(body: UpstreamBody, translator: Box<dyn StreamTranslator>) -> Self {
        SseBody::new(body, Translating(translator))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    /// Writes `name:data` per event; errors as `error:message`.
    struct Echo;
    impl StreamTranslator for Echo {
        fn event(&mut self, e: &SseEvent, out: &mut Vec<u8>) {
            out.extend_from_slice(
                format!("{}:{}\n", e.event.as_deref().unwrap_or("-"), e.data).as_bytes(),
            );
        }
        fn error_event(&mut self, _: ErrorKind, message: &str, out: &mut Vec<u8>) -> bool {
            out.extend_from_slice(format!("error:{message}\n").as_bytes());
            true
        }
    }

    fn body(chunks: Vec<Result<&'static [u8], BodyError>>) -> UpstreamBody {
        StreamBody::new(futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| c.map(|b| Frame::data(Bytes::from_static(b)))),
        ))
        .boxed_unsync()
    }

    async fn frames(b: TranslatedSse) -> (Vec<String>, bool) {
        let mut b = b;
        let mut out = Vec::new();
        while let Some(f) = b.frame().await {
            match f {
                Ok(f) => out.push(String::from_utf8(f.into_data().unwrap().to_vec()).unwrap()),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    #[tokio::test]
    async fn events_split_across_chunks_are_translated_once_whole() {
        let b = TranslatedSse::translating(
            body(vec![
                Ok(b"data: {\"a\":"),
                Ok(b"1}\r\n\r\ndata: 2\r\n\r\n"),
                Ok(b"data: last"),
            ]),
            Box::new(Echo),
        );
        let (out, failed) = frames(b).await;
        assert!(!failed);
        assert_eq!(out, ["-:{\"a\":1}\n-:2\n", "-:last\n"]);
    }

    #[tokio::test]
    async fn an_oversized_event_ends_the_body_with_the_in_band_error() {
        let mut t = TranslatedSse::translating(
            body(vec![Ok(b"data: 1\n\n"), Ok(b"data: xxxxxxxxxxxxxxxx\n\n")]),
            Box::new(Echo),
        );
        t.parser = SseParser::new(8);
        let (out, _) = frames(t).await;
        assert_eq!(out, ["-:1\n", "error:SSE event exceeds 8 bytes\n"]);
    }

    #[tokio::test]
    async fn body_errors_pass_through() {
        let b = TranslatedSse::translating(
            body(vec![
                Ok(b"data: 1\n\n"),
                Err(BodyError::new(std::io::Error::other("reset"))),
            ]),
            Box::new(Echo),
        );
        let (out, failed) = frames(b).await;
        assert_eq!(out, ["-:1\n"]);
        assert!(failed);
    }
}
