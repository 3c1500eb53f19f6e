//! Talking to the services as any client could: channels, bearer tokens, and
//! calls with bytes of our choosing to any path in any shape (a raw codec,
//! or a hand-framed HTTP/2 body for broken framing).

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes};
use http_body::{Body as _, Frame};
use tonic::{
    Code, Status,
    client::GrpcService,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::{Channel, Endpoint},
};

use crate::Error;

/// A lazily connected channel to `url`: it reconnects by itself after the
/// server comes back, as a long-lived client's would.
pub fn channel(url: &str) -> Result<Channel, Error> {
    Ok(Endpoint::from_shared(url.to_string())?.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true).connect_lazy())
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0u8; buf.remaining()];
        buf.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// What came back from one call.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub code: Code,
    pub message: String,
    /// The first response message, if any.
    pub first: Option<Vec<u8>>,
    pub started: Instant,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == Code::Ok
    }
}

/// How a call is made.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions {
    /// The deadline sent as `grpc-timeout`, also enforced here.
    pub timeout: Duration,
    /// Read at most this many response messages (server streams).
    pub max_messages: usize,
    /// Stop reading a server stream that sends nothing for this long.
    pub stream_wait: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), max_messages: 4, stream_wait: Duration::from_millis(300) }
    }
}

fn status_outcome(s: &Status, started: Instant) -> Outcome {
    Outcome { code: s.code(), message: s.message().chars().take(300).collect(), first: None, started }
}

/// Sends `messages` (already encoded) to `path` as one call of any shape:
/// gRPC framing is the same for unary and streaming methods, so a unary
/// method gets its one message, an upload its several.
pub async fn call(
    channel: Channel,
    path: &str,
    token: Option<&str>,
    messages: Vec<Vec<u8>>,
    opts: CallOptions,
) -> Outcome {
    let started = Instant::now();
    let path = match http::uri::PathAndQuery::try_from(path) {
        Ok(p) => p,
        Err(e) => return status_outcome(&Status::invalid_argument(format!("client: bad path: {e}")), started),
    };
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20);
    let work = async {
        grpc.ready().await.map_err(|e| Status::unavailable(format!("client: not ready: {e}")))?;
        let mut req = tonic::Request::new(tokio_stream::iter(messages));
        req.set_timeout(opts.timeout);
        if let Some(t) = token
            && let Ok(v) = format!("Bearer {t}").parse()
        {
            req.metadata_mut().insert("authorization", v);
        }
        let mut stream = grpc.streaming(req, path, RawCodec).await?.into_inner();
        let mut read = 0usize;
        let mut first = None;
        loop {
            match tokio::time::timeout(opts.stream_wait, stream.message()).await {
                Err(_) => return Ok(first),
                Ok(Ok(Some(m))) => {
                    read += 1;
                    if first.is_none() {
                        first = Some(m);
                    }
                    if read >= opts.max_messages {
                        return Ok(first);
                    }
                }
                Ok(Ok(None)) => return Ok(first),
                Ok(Err(s)) => return Err(s),
            }
        }
    };
    // The server enforces the deadline; this guard only keeps a hung
    // connection from hanging the suite.
    match tokio::time::timeout(opts.timeout + Duration::from_secs(5), work).await {
        Err(_) => status_outcome(&Status::deadline_exceeded("client: no answer"), started),
        Ok(Err(s)) => status_outcome(&s, started),
        Ok(Ok(first)) => Outcome { code: Code::Ok, message: String::new(), first, started },
    }
}

/// A request body sent exactly as given: no gRPC framing added.
struct OnceBody(Option<Bytes>);

impl http_body::Body for OnceBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }
}

/// Sends `body` as the raw HTTP/2 request body of a gRPC call (framing and
/// all, as a broken client might) and reads the grpc-status it gets.
pub async fn call_framed(
    mut channel: Channel,
    authority: &str,
    path: &str,
    token: Option<&str>,
    body: Bytes,
) -> Outcome {
    let started = Instant::now();
    let mut builder = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("http://{authority}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "5S");
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    let req = match builder.body(tonic::body::Body::new(OnceBody(Some(body)))) {
        Ok(r) => r,
        Err(e) => return status_outcome(&Status::invalid_argument(format!("client: {e}")), started),
    };
    let work = async {
        std::future::poll_fn(|cx| GrpcService::poll_ready(&mut channel, cx))
            .await
            .map_err(|e| Status::unavailable(format!("client: {e}")))?;
        let resp =
            GrpcService::call(&mut channel, req).await.map_err(|e| Status::unavailable(format!("client: {e}")))?;
        let (parts, mut body) = resp.into_parts();
        if let Some(s) = Status::from_header_map(&parts.headers) {
            return Ok::<Status, Status>(s);
        }
        let mut read = 0usize;
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            match frame {
                None => return Ok(Status::unknown("client: no grpc-status")),
                Some(Err(e)) => return Err(e),
                Some(Ok(f)) => match f.into_trailers() {
                    Ok(t) => return Ok(Status::from_header_map(&t).unwrap_or_else(|| Status::unknown("no status"))),
                    Err(data) => {
                        read += data.data_ref().map(Buf::remaining).unwrap_or(0);
                        if read > 64 << 20 {
                            return Err(Status::resource_exhausted("client: response too large"));
                        }
                    }
                },
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), work).await {
        Err(_) => status_outcome(&Status::deadline_exceeded("client: no answer"), started),
        Ok(Ok(s)) | Ok(Err(s)) => status_outcome(&s, started),
    }
}

/// The gRPC frame of one message: flag byte, 4-byte length, bytes.
pub fn frame(flag: u8, declared_len: u32, body: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(5 + body.len());
    b.push(flag);
    b.extend_from_slice(&declared_len.to_be_bytes());
    b.extend_from_slice(body);
    Bytes::from(b)
}

/// The p-th percentile (0..=100) of `samples`, in milliseconds.
pub fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v: Vec<Duration> = samples.to_vec();
    v.sort();
    let rank = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v.get(rank.min(v.len() - 1)).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_from_the_sorted_samples() {
        let ms: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&ms, 50.0).round(), 51.0);
        assert_eq!(percentile_ms(&ms, 99.0).round(), 99.0);
        assert_eq!(percentile_ms(&ms, 100.0).round(), 100.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }

    #[test]
    fn frames_carry_flag_and_declared_length() {
        let f = frame(1, 300, b"abc");
        assert_eq!(&f[..], &[1, 0, 0, 1, 44, b'a', b'b', b'c']);
    }
}
