//! A body adapter for Azure OpenAI Chat Completions streams: SSE in, SSE
//! out through [`AzureChunks`], which drops Azure's content-filter
//! annotation chunks (the `choices: []` prompt-filter chunk, choices with
//! filter results but no `delta`) and re-frames every other event with its
//! data untouched.
//!
//! An event still open when the upstream ends (no blank line after it) is
//! passed on only when its data is complete (`[DONE]` or a JSON value): a
//! stream cut inside an event must look cut to the relay above, not end
//! with a repaired chunk. An event larger than the SSE parser's limit ends
//! the body with an error (the relay reports the stream as broken) rather
//! than silently missing from the answer.

use crate::response::BodyError;
use crate::translate::StreamTranslator;
use crate::translate::azure::AzureChunks;
use crate::upstream::UpstreamBody;
use crate::wire::sse::{SseError, SseEvent};

use super::super::sse_body::{SseBody, SseRewriter};

/// Azure's annotation chunks dropped (see the module docs).
pub struct Filtering(AzureChunks);

impl SseRewriter for Filtering {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        self.0.event(event, out);
    }

    fn refused(&mut self, error: &SseError, _: &mut Vec<u8>) -> Result<(), BodyError> {
        Err(BodyError::new(error.clone()))
    }

    fn last(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        if complete(event) {
            self.0.event(event, out);
        }
    }
}

/// See the module docs.
pub type FilteredChunks = SseBody<Filtering>;

/// Wraps an Azure Chat Completions stream.
pub fn filtered(body: UpstreamBody) -> FilteredChunks {
    SseBody::new(body, Filtering(AzureChunks))
}

/// Whether an event left open at the end of the stream is whole.
fn complete(event: &SseEvent) -> bool {
    let data = event.data.trim();
    data == "[DONE]" || serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn body(chunks: &[&'static str]) -> UpstreamBody {
        let frames: Vec<Result<Frame<Bytes>, BodyError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    async fn read(chunks: &[&'static str]) -> String {
        let out = filtered(body(chunks)).collect().await.unwrap().to_bytes();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn annotation_chunks_are_dropped_across_any_split() {
        let wire = concat!(
            "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"content_filter_results\":{}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"content_filter_offsets\":{},\"content_filter_results\":{\"hate\":{\"filtered\":false}}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
            "data: [DONE]\n\n",
        );
        let want = concat!(
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"content_filter_results\":{}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
            "data: [DONE]\n\n",
        );
        assert_eq!(read(&[wire]).await, want);
        // Split at every byte boundary class: one byte at a time.
        let leaked: &'static str = Box::leak(wire.to_string().into_boxed_str());
        let bytes: Vec<&'static str> = (0..leaked.len()).map(|i| &leaked[i..=i]).collect();
        assert_eq!(read(&bytes).await, want);
    }

    #[tokio::test]
    async fn an_event_cut_by_the_end_of_the_stream_is_not_repaired() {
        let out = read(&[
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"ind",
        ])
        .await;
        assert_eq!(
            out,
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
        );
        // A whole last event without its blank line is kept.
        assert_eq!(read(&["data: [DONE]"]).await, "data: [DONE]\n\n");
    }
}
