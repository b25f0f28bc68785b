//! A tiny raw HTTP/1.1 client (so tests can see chunk framing and cut connections) and helpers.
#![allow(dead_code)]

use fake_edgecloud::{FakeConfig, FakeEdgeCloud};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TOKEN: &str = "test-ondemand-token";
pub const HOST: &str = "ondemand.thetaedgecloud.com";

pub async fn fake() -> FakeEdgeCloud {
    fake_with(FakeConfig::default()).await
}

/// A fake with the test token and no pause between tokens.
pub async fn fake_with(config: FakeConfig) -> FakeEdgeCloud {
    FakeEdgeCloud::start(FakeConfig {
        ondemand_token: TOKEN.into(),
        token_delay: std::time::Duration::ZERO,
        ..config
    })
    .await
    .expect("the fake starts")
}

/// A response as it came off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The HTTP chunks of a chunked body (empty for a Content-Length body).
    pub chunks: Vec<Vec<u8>>,
    pub body: Vec<u8>,
    /// Whether the body ended properly (terminating chunk, or Content-Length reached).
    pub complete: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// `{"status":"error","message":...}` → message.
    pub fn error_message(&self) -> String {
        let v = self.json();
        assert_eq!(v["status"], "error", "{v}");
        v["message"].as_str().expect("a message").to_owned()
    }

    /// The SSE blocks of the body, in order (each block's lines joined by `\n`).
    pub fn sse_blocks(&self) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The `data:` payloads of the SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.sse_blocks()
            .iter()
            .filter_map(|b| b.strip_prefix("data: ").map(str::to_owned))
            .collect()
    }

    /// The JSON `data:` events (everything but `[DONE]`).
    pub fn sse_events(&self) -> Vec<Value> {
        self.sse_data()
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("bad event {d}: {e}")))
            .collect()
    }
}

/// A request for [`send`].
pub struct Req<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Vec<u8>,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, target: &'a str) -> Req<'a> {
        Req {
            method,
            target,
            headers: vec![("host", HOST.to_owned())],
            body: Vec::new(),
        }
    }

    pub fn get(target: &'a str) -> Req<'a> {
        Req::new("GET", target)
    }

    pub fn post(target: &'a str, body: &Value) -> Req<'a> {
        Req::new("POST", target)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Req<'a> {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name, value.into()));
        self
    }

    pub fn auth(self) -> Req<'a> {
        self.header("authorization", format!("Bearer {TOKEN}"))
    }

    pub fn body(mut self, body: Vec<u8>) -> Req<'a> {
        self.body = body;
        self
    }
}

/// Send one request on a fresh connection (`Connection: close`) and read until the server closes.
pub async fn send(addr: SocketAddr, req: Req<'_>) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !req
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("content-length: {}\r\n", req.body.len()));
    }
    head.push_str("connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(&req.body).await.expect("write body");
    let mut wire = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => wire.extend_from_slice(&buf[..n]),
        }
    }
    parse(&wire)
}

/// Parse a raw HTTP/1.1 response (possibly cut short).
pub fn parse(wire: &[u8]) -> Raw {
    let end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(wire)));
    let head = String::from_utf8_lossy(&wire[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = &wire[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut raw = Raw {
        status,
        headers,
        chunks: Vec::new(),
        body: Vec::new(),
        complete: false,
    };
    if chunked {
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&rest[..eol]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            rest = &rest[eol + 2..];
            if size == 0 {
                raw.complete = rest.starts_with(b"\r\n");
                break;
            }
            if rest.len() < size + 2 {
                // Cut inside a chunk: keep what arrived.
                raw.body.extend_from_slice(&rest[..rest.len().min(size)]);
                break;
            }
            raw.chunks.push(rest[..size].to_vec());
            raw.body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        raw.body = rest.to_vec();
        let length = raw
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok());
        raw.complete = length.is_none_or(|n| n == raw.body.len());
    }
    raw
}
