//! A body wrapper that enforces a size cap and a between-frames timeout, and reports the byte count
//! when the body ends or is dropped (for the audit trail).

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::Sleep;
use wasmtime_wasi_http::Error as HttpError;

/// Called once with the bytes seen and whether the body ended cleanly.
pub type OnFinish = Box<dyn FnOnce(u64, bool) + Send>;

pub struct GuardedBody<B> {
    inner: B,
    max_bytes: u64,
    seen: u64,
    idle_timeout: Option<Duration>,
    idle: Option<Pin<Box<Sleep>>>,
    too_big: fn(Option<u64>) -> HttpError,
    on_finish: Option<OnFinish>,
}

impl<B> GuardedBody<B> {
    /// A response body: over `max_bytes` ends with `HttpResponseBodySize`.
    pub fn response(inner: B, max_bytes: u64, idle_timeout: Option<Duration>) -> Self {
        Self::new(
            inner,
            max_bytes,
            idle_timeout,
            HttpError::HttpResponseBodySize,
        )
    }

    /// A request body: over `max_bytes` ends with `HttpRequestBodySize`.
    pub fn request(inner: B, max_bytes: u64) -> Self {
        Self::new(inner, max_bytes, None, HttpError::HttpRequestBodySize)
    }

    fn new(
        inner: B,
        max_bytes: u64,
        idle_timeout: Option<Duration>,
        too_big: fn(Option<u64>) -> HttpError,
    ) -> Self {
        Self {
            inner,
            max_bytes,
            seen: 0,
            idle_timeout,
            idle: None,
            too_big,
            on_finish: None,
        }
    }

    pub fn on_finish(mut self, f: OnFinish) -> Self {
        self.on_finish = Some(f);
        self
    }

    fn finish(&mut self, clean: bool) {
        if let Some(f) = self.on_finish.take() {
            f(self.seen, clean);
        }
    }
}

impl<B> Drop for GuardedBody<B> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<HttpError>,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if let Some(timeout) = this.idle_timeout {
                    let sleep = this
                        .idle
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    ready!(sleep.as_mut().poll(cx));
                    this.finish(false);
                    return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.finish(true);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(false);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.idle = None;
                if let Some(data) = frame.data_ref() {
                    this.seen += data.len() as u64;
                    if this.seen > this.max_bytes {
                        this.finish(false);
                        return Poll::Ready(Some(Err((this.too_big)(Some(this.max_bytes)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future;
