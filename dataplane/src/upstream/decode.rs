//! Compressed upstream answers, decoded as they arrive.
//!
//! The gateway asks every provider for `accept-encoding: identity`, since it
//! reads usage from answers and relays streams event by event. An upstream
//! (or a proxy in front of it) may compress anyway; the client never sees
//! the provider's `content-encoding` header, so the compressed bytes would
//! reach it undecodable and their usage would go uncharged. [`decoded`]
//! therefore undoes `gzip` (and `x-gzip`) and `deflate` (zlib) chunk by
//! chunk — whole answers and streams alike — and removes the header. Any
//! other encoding is reported by [`decoded`] so the try fails like a broken
//! answer instead of relaying bytes nobody can read.

use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use flate2::write::{GzDecoder, ZlibDecoder};
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;

use super::{BodyError, UpstreamBody};

/// An upstream answer in an encoding the gateway cannot decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream answered with unsupported content-encoding {0:?}")]
pub struct UnsupportedEncoding(pub String);

/// `resp` with its body decoded and `content-encoding` removed; as it is
/// when it is not encoded.
pub fn decoded(
    resp: http::Response<UpstreamBody>,
) -> Result<http::Response<UpstreamBody>, UnsupportedEncoding> {
    let Some(encoding) = resp.headers().get(CONTENT_ENCODING) else {
        return Ok(resp);
    };
    let name = encoding.to_str().unwrap_or("").trim().to_ascii_lowercase();
    let decoder = match name.as_str() {
        "" | "identity" => None,
        "gzip" | "x-gzip" => Some(Decoder::Gzip(GzDecoder::new(Vec::new()))),
        "deflate" => Some(Decoder::Zlib(ZlibDecoder::new(Vec::new()))),
        _ => return Err(UnsupportedEncoding(name)),
    };
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(CONTENT_ENCODING);
    let Some(decoder) = decoder else {
        return Ok(http::Response::from_parts(parts, body));
    };
    parts.headers.remove(CONTENT_LENGTH);
    let body = Decoding {
        inner: body,
        decoder: Some(decoder),
    };
    Ok(http::Response::from_parts(parts, body.boxed_unsync()))
}

enum Decoder {
    Gzip(GzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
}

impl Decoder {
    /// Feeds compressed bytes; returns what they decoded to.
    fn feed(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Decoder::Gzip(d) => {
                d.write_all(data)?;
                Ok(std::mem::take(d.get_mut()))
            }
            Decoder::Zlib(d) => {
                d.write_all(data)?;
                Ok(std::mem::take(d.get_mut()))
            }
        }
    }

    /// The end of the input: the rest, or an error if it was cut short.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Decoder::Gzip(d) => d.finish(),
            Decoder::Zlib(d) => d.finish(),
        }
    }
}

/// A body decoded chunk by chunk.
struct Decoding {
    inner: UpstreamBody,
    /// `None` once the end was decoded.
    decoder: Option<Decoder>,
}

fn broken(e: std::io::Error) -> BodyError {
    BodyError::new(format!("decoding the upstream answer: {e}"))
}

impl Body for Decoding {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            let Some(decoder) = this.decoder.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers of a compressed body: none expected
                    };
                    match decoder.feed(&data) {
                        Ok(out) if out.is_empty() => continue,
                        Ok(out) => return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out))))),
                        Err(e) => {
                            this.decoder = None;
                            return Poll::Ready(Some(Err(broken(e))));
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.decoder = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    let Some(decoder) = this.decoder.take() else {
                        return Poll::Ready(None);
                    };
                    return match decoder.finish() {
                        Ok(rest) if rest.is_empty() => Poll::Ready(None),
                        Ok(rest) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest))))),
                        Err(e) => Poll::Ready(Some(Err(broken(e)))),
                    };
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use http_body_util::StreamBody;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn response(encoding: &str, chunks: Vec<Vec<u8>>) -> http::Response<UpstreamBody> {
        let frames = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, BodyError>(Frame::data(Bytes::from(c)))),
        );
        http::Response::builder()
            .header(CONTENT_ENCODING, encoding)
            .header(CONTENT_LENGTH, "123")
            .body(StreamBody::new(frames).boxed_unsync())
            .unwrap()
    }

    async fn text(resp: http::Response<UpstreamBody>) -> Result<String, BodyError> {
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn gzip_split_anywhere_decodes_to_the_original_and_loses_its_headers() {
        let original = "data: {\"usage\":{\"prompt_tokens\":5}}\n\n".repeat(50);
        let packed = gzip(original.as_bytes());
        for cut in [1, 7, packed.len() / 2, packed.len() - 1] {
            let chunks = vec![packed[..cut].to_vec(), packed[cut..].to_vec()];
            let resp = decoded(response("gzip", chunks)).unwrap();
            assert!(resp.headers().get(CONTENT_ENCODING).is_none());
            assert!(resp.headers().get(CONTENT_LENGTH).is_none());
            assert_eq!(text(resp).await.unwrap(), original);
        }
    }

    #[tokio::test]
    async fn deflate_identity_and_unknown_encodings() {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"{\"a\":1}").unwrap();
        let resp = decoded(response("deflate", vec![z.finish().unwrap()])).unwrap();
        assert_eq!(text(resp).await.unwrap(), "{\"a\":1}");
        let resp = decoded(response("identity", vec![b"plain".to_vec()])).unwrap();
        assert_eq!(text(resp).await.unwrap(), "plain");
        assert_eq!(
            decoded(response("br", vec![])).err(),
            Some(UnsupportedEncoding("br".into()))
        );
    }

    #[tokio::test]
    async fn a_cut_or_corrupt_body_is_an_error_not_a_short_answer() {
        let packed = gzip(b"{\"a\":1}");
        let resp = decoded(response("gzip", vec![packed[..packed.len() - 4].to_vec()])).unwrap();
        assert!(text(resp).await.is_err());
        let resp = decoded(response("gzip", vec![b"not gzip at all".to_vec()])).unwrap();
        assert!(text(resp).await.is_err());
    }
}
