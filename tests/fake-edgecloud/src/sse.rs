//! Server-sent events: frames, and the streamed body that delivers them (with pauses, splits
//! into small chunks, or a cut connection).

use crate::faults::SseFraming;
use crate::reply::{Delivery, RespBody};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame as BodyFrame, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// One SSE write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// `: text\n\n` (a comment, e.g. a keep-alive); not an event.
    Comment(String),
    /// `data: text\n\n` (text is one line of JSON).
    Data(String),
    /// `data: [DONE]\n\n`.
    Done,
    /// Bytes exactly as given (another framing of an event).
    Raw(String),
}

impl Frame {
    pub fn data(value: &serde_json::Value) -> Frame {
        Frame::Data(value.to_string())
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            Frame::Comment(text) => Bytes::from(format!(": {text}\n\n")),
            Frame::Data(text) => Bytes::from(format!("data: {text}\n\n")),
            Frame::Done => Bytes::from_static(b"data: [DONE]\n\n"),
            Frame::Raw(text) => Bytes::from(text.clone()),
        }
    }
}

/// `frames` in another framing (the content type is the caller's).
pub(crate) fn reframe(frames: Vec<Frame>, framing: &SseFraming) -> Vec<Frame> {
    let text = |f: &Frame| String::from_utf8_lossy(&f.to_bytes()).into_owned();
    match framing {
        SseFraming::ContentType(_) | SseFraming::JsonErrorInsteadOfStream => frames,
        SseFraming::Crlf => frames
            .iter()
            .map(|f| Frame::Raw(text(f).replace('\n', "\r\n")))
            .collect(),
        SseFraming::Comments => frames
            .into_iter()
            .flat_map(|f| [Frame::Comment("ping".into()), f])
            .collect(),
        SseFraming::MultiLineData => frames
            .into_iter()
            .map(|f| match &f {
                Frame::Data(json) => match serde_json::from_str::<serde_json::Value>(json) {
                    Ok(v) => {
                        let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
                        let lines: String =
                            pretty.lines().map(|l| format!("data: {l}\n")).collect();
                        Frame::Raw(format!("{lines}\n"))
                    }
                    Err(_) => f,
                },
                _ => f,
            })
            .collect(),
        SseFraming::ErrorEvent { after_events } => {
            let mut out = Vec::new();
            let mut events = 0;
            for f in frames {
                if !matches!(f, Frame::Comment(_)) {
                    if events == *after_events {
                        break;
                    }
                    events += 1;
                }
                out.push(f);
            }
            out.push(Frame::Raw(
                "event: error\ndata: {\"status\":\"error\",\"message\":\"model worker crashed\"}\n\n".into(),
            ));
            out
        }
        SseFraming::NoDoneNoFinish => frames
            .into_iter()
            .filter(|f| !matches!(f, Frame::Done))
            .map(|f| match &f {
                Frame::Data(json) => match serde_json::from_str::<serde_json::Value>(json) {
                    Ok(mut v) => {
                        if let Some(choices) = v["choices"].as_array_mut() {
                            for c in choices {
                                c["finish_reason"] = serde_json::Value::Null;
                            }
                        }
                        Frame::Data(v.to_string())
                    }
                    Err(_) => f,
                },
                _ => f,
            })
            .collect(),
    }
}

/// The whole stream as text (tests and non-streaming callers).
#[cfg(test)]
pub(crate) fn concat(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| String::from_utf8_lossy(&f.to_bytes()).into_owned())
        .collect()
}

/// The error that makes hyper drop the connection mid-body.
pub(crate) fn cut_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "fake-edgecloud: stream cut by fault",
    )
}

type Item = Result<Bytes, io::Error>;
type Producer = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A body fed by a producer future that runs *inside* the body (polled from `poll_frame`), so
/// no task is spawned: when the connection ends, the producer is dropped with it.
pub(crate) struct StreamedBody {
    producer: Option<Producer>,
    rx: mpsc::Receiver<Item>,
}

impl StreamedBody {
    /// A boxed body whose chunks `produce` sends; an `Err` aborts the connection.
    pub fn boxed<F, Fut>(produce: F) -> RespBody
    where
        F: FnOnce(mpsc::Sender<Item>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(16);
        StreamedBody {
            producer: Some(Box::pin(produce(tx))),
            rx,
        }
        .boxed_unsync()
    }
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<BodyFrame<Bytes>, io::Error>>> {
        if let Some(producer) = self.producer.as_mut()
            && producer.as_mut().poll(cx).is_ready()
        {
            // Dropping the producer drops its sender: the channel ends once drained.
            self.producer = None;
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                // The producer may be parked on a full channel: give it a turn next time.
                Poll::Ready(Some(item.map(BodyFrame::data)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Stream `frames` according to `delivery`.
pub(crate) fn stream(frames: Vec<Frame>, delivery: Delivery) -> RespBody {
    StreamedBody::boxed(move |tx| async move {
        let mut events = 0usize;
        let mut seen_event = false;
        for frame in frames {
            let is_event = !matches!(frame, Frame::Comment(_));
            if is_event {
                let cut =
                    matches!(frame, Frame::Done) || delivery.cut_after.is_some_and(|n| events >= n);
                if cut && delivery.cut_after.is_some() {
                    let _ = tx.send(Err(cut_error())).await;
                    return;
                }
                if seen_event && !delivery.token_delay.is_zero() {
                    tokio::time::sleep(delivery.token_delay).await;
                }
                seen_event = true;
            }
            if let Some(delay) = delivery.slow {
                tokio::time::sleep(delay).await;
            }
            let bytes = frame.to_bytes();
            for piece in split(bytes, delivery.split) {
                if tx.send(Ok(piece)).await.is_err() {
                    return;
                }
            }
            if is_event {
                events += 1;
            }
        }
    })
}

/// `bytes` in pieces of at most `size` bytes (all of it when `None` or 0).
pub(crate) fn split(mut bytes: Bytes, size: Option<usize>) -> Vec<Bytes> {
    match size {
        Some(size) if size > 0 => {
            let mut pieces = Vec::with_capacity(bytes.len().div_ceil(size));
            while !bytes.is_empty() {
                pieces.push(bytes.split_to(size.min(bytes.len())));
            }
            pieces
        }
        _ => vec![bytes],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_framed_like_openai() {
        let frames = vec![
            Frame::Comment("keep-alive".into()),
            Frame::Data("{\"a\":1}".into()),
            Frame::Done,
        ];
        assert_eq!(
            concat(&frames),
            ": keep-alive\n\ndata: {\"a\":1}\n\ndata: [DONE]\n\n"
        );
    }

    #[test]
    fn split_keeps_every_byte_in_order() {
        let pieces = split(Bytes::from_static(b"abcdefg"), Some(3));
        assert_eq!(pieces, vec!["abc", "def", "g"]);
        assert_eq!(split(Bytes::from_static(b"abc"), None), vec!["abc"]);
        assert_eq!(split(Bytes::from_static(b"abc"), Some(0)), vec!["abc"]);
    }
}
