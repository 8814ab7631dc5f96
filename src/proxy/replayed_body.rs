//! An answer body that was partly (or wholly) read, passed on as it came.
//!
//! Reading a vendor's answer to learn from it must not change what the
//! agent receives: the frames already taken are replayed first, in order,
//! then the error that stopped the reading (if one did), then whatever the
//! vendor still sends.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// Frames already read, then the error or the rest of the body.
pub(crate) struct ReplayedBody {
    read: VecDeque<Frame<Bytes>>,
    broken: Option<hyper::Error>,
    rest: Option<Incoming>,
}

impl ReplayedBody {
    /// `read` are the frames taken so far; `broken` the error that ended
    /// the reading, or `rest` the body still to come (at most one of them).
    pub(crate) fn new(
        read: VecDeque<Frame<Bytes>>,
        broken: Option<hyper::Error>,
        rest: Option<Incoming>,
    ) -> Self {
        Self { read, broken, rest }
    }
}

impl Body for ReplayedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(frame) = this.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = this.broken.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match this.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty()
            && self.broken.is_none()
            && self.rest.as_ref().is_none_or(|rest| rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self
            .read
            .iter()
            .filter_map(|f| f.data_ref())
            .map(|d| d.len() as u64)
            .sum();
        match &self.rest {
            None => SizeHint::with_exact(read),
            Some(rest) => {
                let rest = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(read.saturating_add(rest.lower()));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(read.saturating_add(upper));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn frames_read_whole_come_out_in_order_with_their_trailers() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-done", "1".parse().unwrap());
        let frames = VecDeque::from([
            Frame::data(Bytes::from_static(b"{\"a\":")),
            Frame::data(Bytes::from_static(b"1}")),
            Frame::trailers(trailers),
        ]);
        let body = ReplayedBody::new(frames, None, None);
        assert_eq!(body.size_hint().exact(), Some(7));
        assert!(!body.is_end_stream());
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-done"], "1");
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"{\"a\":1}"));
    }
}
