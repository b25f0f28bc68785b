//! Fault injection: queued faults that change how matching requests are answered.

use crate::state::RecordedRequest;
use std::time::Duration;

/// Which requests a fault applies to: an optional method and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// `None` matches every method; compared case-insensitively.
    pub method: Option<String>,
    /// Matches paths starting with this (`""` or `"/"` matches all). The query is not part of it.
    pub path_prefix: String,
    /// `None` matches every host; else compared case-insensitively with the `Host` (port removed).
    pub host: Option<String>,
    /// `None` matches every body; else the body must contain this text (e.g. one VM type's create).
    pub body_contains: Option<String>,
}

impl RouteMatch {
    /// Every request.
    pub fn any() -> RouteMatch {
        RouteMatch {
            method: None,
            path_prefix: String::new(),
            host: None,
            body_contains: None,
        }
    }

    /// Any method on paths starting with `path_prefix`.
    pub fn path(path_prefix: impl Into<String>) -> RouteMatch {
        RouteMatch {
            path_prefix: path_prefix.into(),
            ..RouteMatch::any()
        }
    }

    /// `method` on paths starting with `path_prefix`.
    pub fn method(method: &str, path_prefix: impl Into<String>) -> RouteMatch {
        RouteMatch {
            method: Some(method.to_ascii_uppercase()),
            ..RouteMatch::path(path_prefix)
        }
    }

    /// `GET` on paths starting with `path_prefix`.
    pub fn get(path_prefix: impl Into<String>) -> RouteMatch {
        RouteMatch::method("GET", path_prefix)
    }

    /// `POST` on paths starting with `path_prefix`.
    pub fn post(path_prefix: impl Into<String>) -> RouteMatch {
        RouteMatch::method("POST", path_prefix)
    }

    /// Restrict to one host (e.g. [`crate::ONDEMAND_HOST`]).
    pub fn on_host(mut self, host: impl Into<String>) -> RouteMatch {
        self.host = Some(host.into());
        self
    }

    /// Restrict to requests whose body contains `text`.
    pub fn with_body_containing(mut self, text: impl Into<String>) -> RouteMatch {
        self.body_contains = Some(text.into());
        self
    }

    /// Whether `request` is affected.
    pub fn matches(&self, request: &RecordedRequest) -> bool {
        self.method
            .as_ref()
            .is_none_or(|m| m.eq_ignore_ascii_case(&request.method))
            && self
                .host
                .as_ref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&request.host))
            && request.path.starts_with(&self.path_prefix)
            && self
                .body_contains
                .as_ref()
                .is_none_or(|t| String::from_utf8_lossy(&request.body).contains(t.as_str()))
    }
}

/// What happens to a matching request. The request is always recorded first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status and body (JSON or not) instead of the real answer, plus a
    /// `Retry-After` header when given.
    Status {
        status: u16,
        body: String,
        retry_after: Option<u32>,
    },
    /// Wait this long before the response head, then answer normally.
    SlowFirstByte(Duration),
    /// Handle the request at once (a create creates, a delete deletes), then wait this long before
    /// sending the answer: the client sees a request that took effect but has no answer yet (a
    /// client killed meanwhile never learns what it created).
    SlowAnswer(Duration),
    /// Answer normally but pause between body chunks (between SSE events; a JSON body is sent in
    /// several chunks).
    SlowBody { delay_between_chunks: Duration },
    /// SSE: close the connection after this many `data:` events, without `[DONE]` and without the
    /// terminating chunk. JSON: send a truncated body with correct chunked framing, then abort.
    CutStream { after_events: usize },
    /// `200` with `Content-Type: application/json` and a body that is not JSON.
    BadJson,
    /// A redirect (301/302/307/308) to `location`: clients must not follow it off the allowlist.
    Redirect { status: u16, location: String },
    /// `200` with a JSON-typed body of this many bytes (for response-size limits).
    HugeBody(usize),
    /// Never answer (until the fake shuts down).
    Hang,
    /// SSE: the same stream in another framing that real servers use ([`SseFraming`]).
    SseFraming(SseFraming),
}

/// Framings of a chat stream seen from OpenAI-compatible servers, proxies and Theta's own routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseFraming {
    /// The same frames under this `Content-Type` (`None`: no content type at all).
    ContentType(Option<String>),
    /// Every line ends with CRLF.
    Crlf,
    /// A comment line (`: ping`) before every event.
    Comments,
    /// Each event's JSON pretty-printed over several `data:` lines.
    MultiLineData,
    /// After this many events, an `event: error` frame with a JSON error, then a clean end.
    ErrorEvent { after_events: usize },
    /// A JSON error object (`200`, `text/event-stream`) in place of the stream.
    JsonErrorInsteadOfStream,
    /// The stream ends cleanly without `[DONE]` and with no `finish_reason` anywhere.
    NoDoneNoFinish,
}

impl FaultKind {
    /// `409 {"status":"error","message":"No instances available - try again later"}`: no worker
    /// capacity (seen live on qwen3 and llama).
    pub fn no_instances() -> FaultKind {
        FaultKind::error(409, "No instances available - try again later")
    }

    /// A JSON error body with the status' reason phrase, e.g. `502 Bad Gateway`.
    pub fn server_error(status: u16) -> FaultKind {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Server Error");
        FaultKind::error(status, reason)
    }

    /// `429 "10 minute quota reached"` with `Retry-After`.
    pub fn quota_reached(retry_after_secs: u32) -> FaultKind {
        FaultKind::Status {
            status: 429,
            body: error_body("10 minute quota reached"),
            retry_after: Some(retry_after_secs),
        }
    }

    /// Any status with the on-demand error envelope `{"status":"error","message":...}`.
    pub fn error(status: u16, message: &str) -> FaultKind {
        FaultKind::Status {
            status,
            body: error_body(message),
            retry_after: None,
        }
    }
}

fn error_body(message: &str) -> String {
    serde_json::json!({"status": "error", "message": message}).to_string()
}

/// A queued fault: `kind` applies to the next `times` requests that `matcher` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub matcher: RouteMatch,
    pub kind: FaultKind,
    pub times: u32,
}

impl Fault {
    /// A fault for the next matching request only.
    pub fn once(matcher: RouteMatch, kind: FaultKind) -> Fault {
        Fault::new(matcher, kind, 1)
    }

    /// A fault for the next `times` matching requests.
    pub fn new(matcher: RouteMatch, kind: FaultKind, times: u32) -> Fault {
        Fault {
            matcher,
            kind,
            times,
        }
    }

    /// A fault for every matching request (until cleared).
    pub fn always(matcher: RouteMatch, kind: FaultKind) -> Fault {
        Fault::new(matcher, kind, u32::MAX)
    }
}
