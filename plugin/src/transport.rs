//! The one thing command logic needs from the outside world: send an HTTP request and read the answer
//! in chunks. Kept as a trait so the same commands run over `wasi:http` (here), over another host's HTTP
//! import (IronClaw's `http-request`), and over an in-memory fake in native unit tests.

pub mod ironclaw_http;
#[cfg(not(feature = "ironclaw"))]
pub mod wasi_http;

/// Time limits of one request, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect_ms: u64,
    pub first_byte_ms: u64,
    pub between_bytes_ms: u64,
}

impl Timeouts {
    pub fn uniform(ms: u64) -> Self {
        Self {
            connect_ms: ms,
            first_byte_ms: ms,
            between_bytes_ms: ms,
        }
    }
}

/// An outgoing request, already validated by the client (HTTPS, allowed host).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    /// Full URL: `https://host/path?query`.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeouts: Timeouts,
}

/// A response whose body is read incrementally, so streamed answers are handled as they arrive.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn BodyStream>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, TransportError> {
        let mut all = Vec::new();
        while let Some(chunk) = self.body.next_chunk()? {
            all.extend_from_slice(&chunk);
            if all.len() > limit {
                return Err(TransportError::Failed(format!(
                    "response body is larger than {limit} bytes"
                )));
            }
        }
        Ok(all)
    }
}

/// A response body, read chunk by chunk.
pub trait BodyStream {
    /// The next chunk of bytes (never empty), or `None` at the end of the body.
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError>;
}

/// Why a request failed below HTTP.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportError {
    /// A time limit was reached; the text names it.
    Timeout(String),
    /// The connection failed or broke; whether the request reached the server is not known, so a
    /// paid or mutating request is treated as possibly run.
    Failed(String),
    /// The host reports that the request never left (refused or failed before sending): it is safe
    /// to send it again, whatever its method.
    NotSent(String),
    /// The host reports that the request was sent before the exchange failed (IronClaw's
    /// `http-failure.request-sent`): Theta may have run and charged it, so only reads are retried.
    AfterSend(String),
    /// The host's policy refused the request (`theta-policy denied:` / `limit:`).
    Denied(String),
    /// The host runs in dry-run mode and refused a non-read request.
    DryRun,
    /// The host has no credential for this request.
    MissingCredential { variable: String, hint: String },
}

impl TransportError {
    /// Maps a host refusal text (`theta-policy ...`, see docs/host-guest-contract.md) to its error;
    /// `None` when the text is not a policy refusal.
    pub fn from_policy_text(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix("theta-policy ")?;
        if let Some(reason) = rest.strip_prefix("denied:") {
            return Some(Self::Denied(reason.trim().to_owned()));
        }
        if let Some(reason) = rest.strip_prefix("limit:") {
            // Kept as `limit: ...`: hosts report it as a `limit` error (docs/host-guest-contract.md).
            return Some(Self::Denied(format!("limit: {}", reason.trim())));
        }
        if rest.starts_with("dry-run") {
            return Some(Self::DryRun);
        }
        if let Some(rest) = rest.strip_prefix("missing-credential") {
            let (variable, hint) = rest.split_once(':').unwrap_or((rest, ""));
            return Some(Self::MissingCredential {
                variable: variable.trim().to_owned(),
                hint: hint.trim().to_owned(),
            });
        }
        Some(Self::Denied(rest.trim().to_owned()))
    }
}

/// Sends requests and waits between retries.
pub trait Transport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError>;
    /// Blocks for `ms` milliseconds (backoff between retries).
    fn sleep_ms(&self, ms: u64);
    /// `n` cryptographically secure random bytes (`wasi:random`), e.g. for generated credentials.
    fn random_bytes(&self, n: usize) -> Vec<u8>;
}

/// A body already in memory, served in chunks of the given sizes (the last size repeats).
pub struct MemoryBody {
    data: Vec<u8>,
    pos: usize,
    chunk_sizes: Vec<usize>,
    next: usize,
}

impl MemoryBody {
    pub fn new(data: Vec<u8>, chunk_sizes: Vec<usize>) -> Self {
        Self {
            data,
            pos: 0,
            chunk_sizes,
            next: 0,
        }
    }
}

impl BodyStream for MemoryBody {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let size = self
            .chunk_sizes
            .get(self.next)
            .or(self.chunk_sizes.last())
            .copied()
            .unwrap_or(usize::MAX)
            .max(1);
        self.next += 1;
        let end = self.pos.saturating_add(size).min(self.data.len());
        let chunk = self.data[self.pos..end].to_vec();
        self.pos = end;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refusals_are_recognised() {
        assert_eq!(
            TransportError::from_policy_text("theta-policy denied: host not allowed"),
            Some(TransportError::Denied("host not allowed".into()))
        );
        assert_eq!(
            TransportError::from_policy_text("theta-policy limit: too many requests"),
            Some(TransportError::Denied("limit: too many requests".into()))
        );
        assert_eq!(
            TransportError::from_policy_text("theta-policy dry-run: POST https://x/y"),
            Some(TransportError::DryRun)
        );
        assert_eq!(
            TransportError::from_policy_text(
                "theta-policy missing-credential THETA_ONDEMAND_API_TOKEN: set it"
            ),
            Some(TransportError::MissingCredential {
                variable: "THETA_ONDEMAND_API_TOKEN".into(),
                hint: "set it".into()
            })
        );
        assert_eq!(TransportError::from_policy_text("connection reset"), None);
    }

    #[test]
    fn memory_body_serves_the_given_chunk_sizes() {
        let mut b = MemoryBody::new(b"abcdefg".to_vec(), vec![1, 2]);
        let mut seen = Vec::new();
        while let Some(c) = b.next_chunk().unwrap() {
            seen.push(String::from_utf8(c).unwrap());
        }
        assert_eq!(seen, ["a", "bc", "de", "fg"]);
    }
}
