//! What a route answers ([`Reply`]), and how it goes on the wire (normal, slow, or cut).

use crate::faults::SseFraming;
use crate::sse::{self, Frame, StreamedBody};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use serde_json::{Value, json};
use std::io;
use std::time::Duration;

/// The body type of every response.
pub(crate) type RespBody = UnsyncBoxBody<Bytes, io::Error>;

/// A response body before delivery.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// A complete body (JSON unless the content type says otherwise).
    Whole(Bytes),
    /// A server-sent-event stream.
    Events(Vec<Frame>),
}

/// A route's answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload,
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json; charset=utf-8".into())],
            payload: Payload::Whole(Bytes::from(value.to_string())),
        }
    }

    /// `200 {"status":"success","body":...}`.
    pub fn success(body: Value) -> Reply {
        Reply::json(200, &json!({"status": "success", "body": body}))
    }

    /// `status {"status":"error","message":...}`.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(
            status,
            &json!({"status": "error", "message": message.into()}),
        )
    }

    /// A raw body with its content type.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            payload: Payload::Whole(body.into()),
        }
    }

    /// `200 text/event-stream` carrying these frames.
    pub fn events(frames: Vec<Frame>) -> Reply {
        Reply {
            status: 200,
            headers: vec![
                ("content-type", "text/event-stream; charset=utf-8".into()),
                ("cache-control", "no-cache".into()),
                ("x-accel-buffering", "no".into()),
            ],
            payload: Payload::Events(frames),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// How a reply's body is delivered.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delivery {
    /// SSE: split every write into pieces of this many bytes.
    pub split: Option<usize>,
    /// SSE: pause before each token event after the first.
    pub token_delay: Duration,
    /// Extra pause between chunks ([`crate::FaultKind::SlowBody`]).
    pub slow: Option<Duration>,
    /// Abort after this many SSE events; a whole body is cut in half
    /// ([`crate::FaultKind::CutStream`]).
    pub cut_after: Option<usize>,
    /// SSE: another framing of the same stream ([`crate::FaultKind::SseFraming`]).
    pub framing: Option<SseFraming>,
}

/// Pieces a whole body is sent in under [`Delivery::slow`].
const SLOW_PIECES: usize = 4;

/// Turn a reply into a hyper response.
pub(crate) fn render(mut reply: Reply, delivery: &Delivery) -> Response<RespBody> {
    if let (Payload::Events(frames), Some(framing)) = (&mut reply.payload, &delivery.framing) {
        let set_type = |reply: &mut Reply, value: Option<&str>| {
            reply.headers.retain(|(name, _)| *name != "content-type");
            if let Some(value) = value {
                reply.headers.push(("content-type", value.to_owned()));
            }
        };
        match framing {
            SseFraming::ContentType(value) => {
                let value = value.clone();
                set_type(&mut reply, value.as_deref());
            }
            SseFraming::JsonErrorInsteadOfStream => {
                reply.payload = Payload::Whole(Bytes::from(
                    json!({"status": "error", "message": "No instances available - try again later"})
                        .to_string(),
                ));
            }
            other => *frames = sse::reframe(std::mem::take(frames), other),
        }
    }
    let body = match reply.payload {
        Payload::Events(frames) => sse::stream(frames, delivery.clone()),
        Payload::Whole(bytes) if delivery.cut_after.is_some() => {
            // Half the body as one chunk (chunked framing, no Content-Length), then abort.
            let half = bytes.slice(..bytes.len() / 2);
            StreamedBody::boxed(|tx| async move {
                if !half.is_empty() {
                    let _ = tx.send(Ok(half)).await;
                }
                let _ = tx.send(Err(sse::cut_error())).await;
            })
        }
        Payload::Whole(bytes) => match delivery.slow {
            Some(delay) if bytes.len() > 1 => {
                let piece = bytes.len().div_ceil(SLOW_PIECES);
                StreamedBody::boxed(|tx| async move {
                    let mut rest = bytes;
                    let mut first = true;
                    while !rest.is_empty() {
                        if !first {
                            tokio::time::sleep(delay).await;
                        }
                        first = false;
                        let chunk = rest.split_to(piece.min(rest.len()));
                        if tx.send(Ok(chunk)).await.is_err() {
                            return;
                        }
                    }
                })
            }
            _ => Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
        },
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    response
}
