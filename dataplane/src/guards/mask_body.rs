//! Response body transformers that mask text: event by event for SSE
//! streams ([`MaskedSseBody`]), whole-document for JSON ([`MaskedJsonBody`]).
//! Both wrap the final, client-format body, so they see exactly what the
//! client would.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};

use super::mask::Masker;
use super::mask_stream::{SseMasker, encode_all};
use crate::response::{BoxError, ResponseBody};
use crate::wire::Dialect;
use crate::wire::sse::{DEFAULT_MAX_EVENT_BYTES, SseParser};

/// JSON bodies larger than this end with an error rather than go out unmasked.
const JSON_MASK_LIMIT: usize = 8 << 20;

/// An SSE body with masked text deltas.
pub struct MaskedSseBody {
    inner: ResponseBody,
    parser: SseParser,
    masker: SseMasker,
    queue: VecDeque<Frame<Bytes>>,
    done: bool,
}

impl MaskedSseBody {
    /// Wraps a client-format SSE body.
    pub fn new(inner: ResponseBody, masker: Arc<Masker>, dialect: Dialect) -> Self {
        Self {
            inner,
            parser: SseParser::new(DEFAULT_MAX_EVENT_BYTES),
            masker: SseMasker::new(masker, dialect),
            queue: VecDeque::new(),
            done: false,
        }
    }
}

impl Body for MaskedSseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(f) = this.queue.pop_front() {
                return Poll::Ready(Some(Ok(f)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let mut out = Vec::new();
                        for ev in this.parser.feed(&data).into_iter().flatten() {
                            out.extend(this.masker.on_event(ev));
                        }
                        let bytes = encode_all(&out);
                        if !bytes.is_empty() {
                            this.queue.push_back(Frame::data(bytes));
                        }
                    }
                    Err(other) => this.queue.push_back(other),
                },
                Poll::Ready(None) => {
                    this.done = true;
                    let mut out = Vec::new();
                    if let Some(Ok(ev)) = this.parser.finish() {
                        out.extend(this.masker.on_event(ev));
                    }
                    out.extend(this.masker.finish());
                    let bytes = encode_all(&out);
                    if !bytes.is_empty() {
                        this.queue.push_back(Frame::data(bytes));
                    }
                }
            }
        }
    }
}

/// A JSON body masked as a whole once it is complete.
pub struct MaskedJsonBody {
    inner: ResponseBody,
    masker: Arc<Masker>,
    buf: BytesMut,
    done: bool,
}

impl MaskedJsonBody {
    /// Wraps a client-format JSON body.
    pub fn new(inner: ResponseBody, masker: Arc<Masker>) -> Self {
        Self {
            inner,
            masker,
            buf: BytesMut::new(),
            done: false,
        }
    }

    fn masked(&mut self) -> Bytes {
        let raw = std::mem::take(&mut self.buf).freeze();
        match serde_json::from_slice::<serde_json::Value>(&raw) {
            Ok(mut v) => {
                self.masker.mask_json(&mut v);
                Bytes::from(v.to_string())
            }
            Err(_) => Bytes::from(self.masker.mask(&String::from_utf8_lossy(&raw))),
        }
    }
}

impl Body for MaskedJsonBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        if this.buf.len() + data.len() > JSON_MASK_LIMIT {
                            tracing::warn!(
                                limit = JSON_MASK_LIMIT,
                                "response too large to mask; refusing to pass it unmasked"
                            );
                            this.done = true;
                            return Poll::Ready(Some(Err("response too large to mask".into())));
                        }
                        this.buf.extend_from_slice(data);
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(Ok(Frame::data(this.masked()))));
                }
            }
        }
    }
}
