//! An HTTP body adapter: upstream SSE in, translated SSE out, for a
//! provider whose stream is SSE of another dialect than the translation
//! layer reads (Gemini's `streamGenerateContent?alt=sse` → Anthropic SSE).
//!
//! Every upstream data frame is fed to an [`SseParser`]; each whole event
//! goes through the [`StreamTranslator`], whose output is yielded as one
//! frame (nothing is yielded for a chunk that completed no event). An event
//! larger than the parser's limit yields the translator's in-band error and
//! ends the body (the upstream is dropped). When the upstream ends, an
//! event whose lines were complete is still translated; nothing else is
//! added, so a stream cut short reaches the relay above without its
//! terminal event and is reported as truncated. Body errors pass through.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::translate::StreamTranslator;
use crate::upstream::{BodyError, UpstreamBody};
use crate::wire::ErrorKind;
use crate::wire::sse::SseParser;

/// See the module docs.
pub struct TranslatedSse {
    inner: Option<UpstreamBody>,
    parser: SseParser,
    translator: Box<dyn StreamTranslator>,
}

impl TranslatedSse {
    /// Wraps `body`, translating its events with `translator`.
    pub fn new(body: UpstreamBody, translator: Box<dyn StreamTranslator>) -> Self {
        Self {
            inner: Some(body),
            parser: SseParser::default(),
            translator,
        }
    }

    /// Translates the events of `data` into `out`; `false` when an event
    /// could not be parsed (the body ends after the in-band error).
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        for event in self.parser.feed(data) {
            match event {
                Ok(e) => self.translator.event(&e, out),
                Err(e) => {
                    tracing::warn!(error = %e, "upstream SSE event refused");
                    if !self
                        .translator
                        .error_event(ErrorKind::Api, &e.to_string(), out)
                    {
                        tracing::debug!("the translator has no in-band error event");
                    }
                    return false;
                }
            }
        }
        true
    }
}

impl Body for TranslatedSse {
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
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let mut out = Vec::new();
                    if !this.feed(&data, &mut out) {
                        this.inner = None;
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Poll::Ready(None) => {
                    this.inner = None;
                    let mut out = Vec::new();
                    if let Some(Ok(event)) = this.parser.finish() {
                        this.translator.event(&event, &mut out);
                    }
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
    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::wire::sse::SseEvent;

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
        let b = TranslatedSse::new(
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
        let mut t = TranslatedSse::new(
            body(vec![Ok(b"data: 1\n\n"), Ok(b"data: xxxxxxxxxxxxxxxx\n\n")]),
            Box::new(Echo),
        );
        t.parser = SseParser::new(8);
        let (out, _) = frames(t).await;
        assert_eq!(out, ["-:1\n", "error:SSE event exceeds 8 bytes\n"]);
    }

    #[tokio::test]
    async fn body_errors_pass_through() {
        let b = TranslatedSse::new(
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
