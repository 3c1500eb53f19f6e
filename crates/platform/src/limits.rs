//! Bounded request messages: a request body is read as gRPC frames (a flag
//! byte, a 4-byte length, the message), and a frame announcing more than the
//! limit ends the call with RESOURCE_EXHAUSTED before its bytes are buffered.
//! Streams may be long; each of their messages is bounded.

use std::{
    collections::HashMap,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use http_body::Frame;
use tonic::{Code, Status, body::Body};
use tonic_types::{ErrorDetails, StatusExt};

pub struct FrameLimit {
    inner: Body,
    max: usize,
    /// Header bytes of the frame being read (up to 5).
    header: [u8; 5],
    have: usize,
    /// Message bytes of the current frame still to pass.
    remaining: usize,
    failed: bool,
}

impl FrameLimit {
    pub fn new(inner: Body, max: usize) -> Self {
        Self { inner, max, header: [0; 5], have: 0, remaining: 0, failed: false }
    }

    /// Walks the frame boundaries in `data`; the length of the first frame
    /// over the limit, if any.
    fn scan(&mut self, data: &Bytes) -> Option<usize> {
        let mut buf = data.clone();
        while buf.has_remaining() {
            if self.remaining > 0 {
                let n = self.remaining.min(buf.remaining());
                buf.advance(n);
                self.remaining -= n;
                continue;
            }
            self.header[self.have] = buf.get_u8();
            self.have += 1;
            if self.have == 5 {
                self.have = 0;
                let len = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]) as usize;
                if len > self.max {
                    return Some(len);
                }
                self.remaining = len;
            }
        }
        None
    }
}

impl http_body::Body for FrameLimit {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Some(len) = self.scan(data)
        {
            self.failed = true;
            let max = self.max;
            let details =
                ErrorDetails::with_error_info("MESSAGE_TOO_LARGE", crate::error::ERROR_DOMAIN, HashMap::new());
            return Poll::Ready(Some(Err(Status::with_error_details(
                Code::ResourceExhausted,
                format!("a request message of {len} bytes is larger than the limit of {max} bytes"),
                details,
            ))));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut v = vec![0u8];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend(std::iter::repeat_n(7u8, len as usize));
        v
    }

    #[test]
    fn frames_within_the_limit_pass_and_a_larger_one_is_caught_across_chunks() {
        let mut f = FrameLimit::new(Body::empty(), 10);
        let mut bytes = frame(10);
        bytes.extend(frame(3));
        assert_eq!(f.scan(&Bytes::from(bytes)), None);
        // A header split over two chunks announcing 11 bytes.
        let big = frame(11);
        assert_eq!(f.scan(&Bytes::copy_from_slice(&big[..3])), None);
        assert_eq!(f.scan(&Bytes::copy_from_slice(&big[3..])), Some(11));
    }
}
