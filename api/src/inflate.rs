//! Request bodies in gzip or deflate, decoded as they arrive, in bounded steps.
//!
//! actix-http's decoder inflates each chunk it receives whole before the JSON reader counts a
//! byte against the route's limit: a 62 KB gzip of zeros became 64 MB per request (32 such
//! requests held 1.8 GB at once) before the 413. Here the decoder is given at most
//! [`INPUT_STEP`] compressed bytes at a time and yields once [`OUTPUT_CHUNK`] decoded bytes are
//! out, so a request holds at most its route's limit and a chunk, and the reader's limit stops
//! the decoding as soon as it is passed.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{body::MessageBody, HttpMessage};
use futures_core::Stream;

/// Compressed bytes given to the decoder at a time. Deflate expands at most about 1032 to 1,
/// so one step adds at most about 66 KiB to the output.
const INPUT_STEP: usize = 64;

/// Decoded bytes gathered before they are handed on.
const OUTPUT_CHUNK: usize = 32 * 1024;

/// Decodes a gzip or deflate body as [`Inflate`] does, in place of actix's decoder: the
/// `Content-Encoding` header is taken off, so the JSON reader reads the decoded body as it is.
/// Runs after [`crate::middleware::known_content_encoding`], which has refused every coding
/// but these and identity, and after the body's deadline, which so counts the bytes as sent.
pub async fn decode_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let coding = req.headers().get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(decoder) = coding.and_then(Decoder::for_coding) {
        let body = req.take_payload();
        req.set_payload(Payload::Stream { payload: Box::pin(Inflate::new(body, decoder)) });
        // The length a client gave is the compressed body's, not the one the reader gets.
        req.headers_mut().remove(CONTENT_ENCODING);
        req.headers_mut().remove(CONTENT_LENGTH);
    }
    next.call(req).await
}

/// A decoder writing into its own buffer.
enum Decoder {
    /// gzip, every member of it (RFC 1952 lets a file hold several).
    Gzip(flate2::write::MultiGzDecoder<Vec<u8>>),
    /// deflate, as HTTP means it: zlib (RFC 9110 §8.4.1.2).
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
}

impl Decoder {
    /// The decoder of a `Content-Encoding` value, any case; none for identity.
    fn for_coding(coding: &str) -> Option<Self> {
        if coding.eq_ignore_ascii_case("gzip") {
            Some(Decoder::Gzip(flate2::write::MultiGzDecoder::new(Vec::new())))
        } else if coding.eq_ignore_ascii_case("deflate") {
            Some(Decoder::Zlib(flate2::write::ZlibDecoder::new(Vec::new())))
        } else {
            None
        }
    }

    fn write_all(&mut self, input: &[u8]) -> std::io::Result<()> {
        match self {
            Decoder::Gzip(d) => d.write_all(input),
            Decoder::Zlib(d) => d.write_all(input),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zlib(d) => d.get_mut(),
        }
    }
}

/// A compressed body decoded in bounded steps ([`decode_body`]).
struct Inflate {
    body: Payload,
    decoder: Decoder,
    /// What is left of the last chunk received, not yet given to the decoder.
    input: Bytes,
    ended: bool,
    failed: bool,
}

impl Inflate {
    fn new(body: Payload, decoder: Decoder) -> Self {
        Inflate { body, decoder, input: Bytes::new(), ended: false, failed: false }
    }

    fn fail(&mut self, error: PayloadError) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.failed = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for Inflate {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            while !this.input.is_empty() && this.decoder.output().len() < OUTPUT_CHUNK {
                let step = this.input.split_to(INPUT_STEP.min(this.input.len()));
                // Bytes the coding cannot hold (a plain body under a gzip header).
                if this.decoder.write_all(&step).is_err() {
                    return this.fail(PayloadError::EncodingCorrupted);
                }
            }
            let ready = this.decoder.output().len();
            if ready >= OUTPUT_CHUNK || (this.ended && ready > 0) {
                return Poll::Ready(Some(Ok(Bytes::from(std::mem::take(this.decoder.output())))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.body).poll_next(cx) {
                // What is decoded goes on while the rest is on its way.
                Poll::Pending if ready > 0 => {
                    return Poll::Ready(Some(Ok(Bytes::from(std::mem::take(this.decoder.output())))))
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.input = chunk,
                Poll::Ready(Some(Err(e))) => return this.fail(e),
                Poll::Ready(None) => {
                    // A stream that stops inside a member (a body cut short).
                    if let Err(e) = this.decoder.finish() {
                        let cut = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e.to_string());
                        return this.fail(PayloadError::Incomplete(Some(cut)));
                    }
                    this.ended = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// Every item of `coded` decoded through [`Inflate`], as chunks of `sent` bytes arrive.
    async fn decode(coding: &str, coded: Vec<u8>, sent: usize) -> Vec<Result<Bytes, PayloadError>> {
        let chunks: Vec<Result<Bytes, PayloadError>> =
            coded.chunks(sent).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(futures_util::stream::iter(chunks));
        let body = Payload::Stream { payload: stream };
        let inflate = Inflate::new(body, Decoder::for_coding(coding).unwrap());
        futures_util::StreamExt::collect(inflate).await
    }

    #[actix_web::test]
    async fn a_body_decodes_whole_in_chunks_no_larger_than_a_step_allows() {
        // 8 MB of zeros is 8 KB of gzip: sent as one chunk, it comes out in pieces.
        let zeros = vec![0u8; 8 << 20];
        let out = decode("GZIP", gzip(&zeros), 1 << 20).await;
        let chunks: Vec<Bytes> = out.into_iter().map(Result::unwrap).collect();
        let bound = OUTPUT_CHUNK + INPUT_STEP * 1032;
        assert!(chunks.iter().all(|c| c.len() <= bound), "a chunk past {bound} bytes");
        assert!(chunks.len() >= zeros.len() / bound, "{} chunks", chunks.len());
        assert_eq!(chunks.concat(), zeros);
        // Two gzip members are one body; deflate is zlib.
        let text = br#"{"query": "a tent for four"}"#;
        let two = [gzip(&text[..10]), gzip(&text[10..])].concat();
        let out: Vec<Bytes> = decode("gzip", two, 7).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(out.concat(), text);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(text).unwrap();
        let out: Vec<Bytes> =
            decode("deflate", zlib.finish().unwrap(), 3).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(out.concat(), text);
    }

    #[actix_web::test]
    async fn a_body_not_in_its_coding_or_cut_short_is_an_error_once() {
        let out = decode("gzip", br#"{"query": "tent"}"#.to_vec(), 64).await;
        assert!(matches!(out[..], [Err(PayloadError::EncodingCorrupted)]), "{out:?}");
        let mut cut = gzip(br#"{"query": "a tent for four people in the rain"}"#);
        cut.truncate(cut.len() / 2);
        let out = decode("gzip", cut, 64).await;
        assert!(matches!(out.last(), Some(Err(PayloadError::Incomplete(Some(_))))), "{out:?}");
        assert_eq!(out.iter().filter(|r| r.is_err()).count(), 1);
    }
}
