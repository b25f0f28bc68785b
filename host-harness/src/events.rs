//! The guest's stderr, read line by line: `theta-event {json}` lines become [`GuestEvent`]s (streamed
//! tokens, progress), anything else is a plain log line. Bounded, so a guest cannot flood the host.

use bytes::Bytes;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept; longer lines are cut.
const MAX_LINE: usize = 64 * 1024;
/// Most stderr bytes one call may write; the rest is dropped.
const MAX_TOTAL: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GuestEvent {
    Token {
        text: String,
    },
    Reasoning {
        text: String,
    },
    Progress {
        message: String,
        #[serde(default)]
        attempt: Option<u32>,
    },
    Log {
        #[serde(default)]
        level: Option<String>,
        message: String,
    },
    /// A stderr line that is not an event.
    #[serde(skip)]
    Stderr(String),
}

/// Receives events as they arrive.
pub type EventCallback = Arc<dyn Fn(GuestEvent) + Send + Sync>;

struct LineState {
    buf: Vec<u8>,
    total: usize,
}

/// A `StdoutStream` for the guest's stderr that parses events.
#[derive(Clone)]
pub struct EventStream {
    state: Arc<Mutex<LineState>>,
    callback: EventCallback,
}

impl EventStream {
    pub fn new(callback: EventCallback) -> Self {
        Self {
            state: Arc::new(Mutex::new(LineState {
                buf: Vec::new(),
                total: 0,
            })),
            callback,
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut lines = Vec::new();
        {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let room = MAX_TOTAL.saturating_sub(st.total);
            let bytes = &bytes[..bytes.len().min(room)];
            st.total += bytes.len();
            for &b in bytes {
                if b == b'\n' {
                    lines.push(std::mem::take(&mut st.buf));
                } else if st.buf.len() < MAX_LINE {
                    st.buf.push(b);
                }
            }
        }
        for line in lines {
            (self.callback)(parse_line(&line));
        }
    }
}

pub fn parse_line(line: &[u8]) -> GuestEvent {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    if let Some(json) = text.strip_prefix("theta-event ")
        && let Ok(event) = serde_json::from_str::<GuestEvent>(json)
    {
        return event;
    }
    GuestEvent::Stderr(text.to_owned())
}

impl IsTerminal for EventStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for EventStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for EventStream {
    async fn ready(&mut self) {}
}

impl OutputStream for EventStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for EventStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_writes_are_reassembled() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let stream = EventStream::new(Arc::new(move |e| sink.lock().unwrap().push(e)));
        stream.push(b"theta-event {\"kind\":\"tok");
        stream.push(b"en\",\"text\":\"Hel\"}\nplain line\r\ntheta-event {bad json}\n");
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            vec![
                GuestEvent::Token { text: "Hel".into() },
                GuestEvent::Stderr("plain line".into()),
                GuestEvent::Stderr("theta-event {bad json}".into()),
            ]
        );
    }
}
