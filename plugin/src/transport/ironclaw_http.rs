//! `Transport` over IronClaw's `near:agent/host.http-request` import (near:agent@0.4.1, the IronClaw
//! build). The host checks its allowlist, injects credentials and returns the whole response, so a
//! body is one chunk: streamed (SSE) answers are parsed once they are complete. A failure is the
//! host's typed `http-failure` ([`host_failure`]); its `request-sent` decides retries: a request that
//! never left may be sent again whatever its method, one that was sent before failing is retried only
//! if it is a read (a paid POST may have run). Backoff sleeps use `wasi:clocks/monotonic-clock`, which
//! IronClaw provides to every wasm32-wasip2 tool.

use super::TransportError;
#[cfg(feature = "ironclaw")]
use super::{HttpRequest, HttpResponse, MemoryBody, Transport};
#[cfg(feature = "ironclaw")]
use crate::ironclaw::near::agent::host;
#[cfg(feature = "ironclaw")]
use serde_json::Map;
use serde_json::Value;

#[cfg(feature = "ironclaw")]
pub struct HostHttp;

#[cfg(feature = "ironclaw")]
impl Transport for HostHttp {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let headers: Map<String, Value> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let t = request.timeouts;
        // One limit for the whole exchange: the longest of ours (the host caps it anyway).
        let timeout = t.first_byte_ms.max(t.between_bytes_ms).max(t.connect_ms);
        let response = host::http_request(
            &request.method,
            &request.url,
            &Value::Object(headers).to_string(),
            request.body.as_deref(),
            Some(u32::try_from(timeout).unwrap_or(u32::MAX)),
        )
        .map_err(|f| {
            let kind = match f.kind {
                host::HttpErrorKind::AuthRequired => HttpFailureKind::AuthRequired,
                host::HttpErrorKind::Input => HttpFailureKind::Input,
                host::HttpErrorKind::OutputTooLarge => HttpFailureKind::OutputTooLarge,
                host::HttpErrorKind::Executor => HttpFailureKind::Executor,
                host::HttpErrorKind::NetworkDenied => HttpFailureKind::NetworkDenied,
                host::HttpErrorKind::Client => HttpFailureKind::Client,
                host::HttpErrorKind::OperationFailed => HttpFailureKind::OperationFailed,
            };
            host_failure(
                &request.method,
                kind,
                f.code.as_deref(),
                f.message.as_deref(),
                f.request_sent,
            )
        })?;
        Ok(HttpResponse {
            status: response.status,
            headers: parse_headers(&response.headers_json),
            body: Box::new(MemoryBody::new(response.body, Vec::new())),
        })
    }

    fn sleep_ms(&self, ms: u64) {
        wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        wasip2::random::random::get_random_bytes(n as u64)
    }
}

/// `{"name": "value", ...}`; values that are not strings (or a malformed object) are skipped.
pub fn parse_headers(json: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The host's `http-error-kind`, mirrored so that [`host_failure`] is tested natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFailureKind {
    AuthRequired,
    Input,
    OutputTooLarge,
    Executor,
    NetworkDenied,
    Client,
    OperationFailed,
}

/// Maps the host's `http-failure` (kind, code, message, request-sent) of a `method` request.
/// Our host's `theta-policy ...` refusals (docs/host-guest-contract.md) in `message` keep their
/// meaning; otherwise the kind decides: `network-denied` / `input` / `client` are refusals (nothing
/// to retry), `auth-required` is a missing credential, timeouts (by code or message) are timeouts,
/// and the rest are connection failures, [`TransportError::NotSent`] or
/// [`TransportError::AfterSend`] by `request-sent`. A paid or mutating request that timed out
/// after it was sent says so: Theta may have run it.
pub fn host_failure(
    method: &str,
    kind: HttpFailureKind,
    code: Option<&str>,
    message: Option<&str>,
    request_sent: bool,
) -> TransportError {
    let text = match (code, message) {
        (Some(c), Some(m)) => format!("{m} ({c})"),
        (None, Some(m)) => m.to_owned(),
        (Some(c), None) => c.to_owned(),
        (None, None) => format!("{kind:?}"),
    };
    if let Some(e) = message.and_then(TransportError::from_policy_text) {
        return e;
    }
    let lower = text.to_ascii_lowercase();
    let timed_out = lower.contains("timed out") || lower.contains("timeout");
    let read = matches!(method, "GET" | "HEAD");
    match kind {
        HttpFailureKind::NetworkDenied | HttpFailureKind::Input | HttpFailureKind::Client => {
            TransportError::Denied(text)
        }
        HttpFailureKind::AuthRequired => TransportError::MissingCredential {
            variable: code.unwrap_or("credential").to_owned(),
            hint: format!(
                "IronClaw has no credential for this request ({text}); store the tool's secret in IronClaw"
            ),
        },
        _ if timed_out && request_sent && !read => {
            TransportError::Timeout(format!("{text}{}", crate::client::SENT_NOTE))
        }
        _ if timed_out => TransportError::Timeout(text),
        _ if request_sent => TransportError::AfterSend(text),
        _ => TransportError::NotSent(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_json_is_read_leniently() {
        assert_eq!(
            parse_headers(r#"{"content-type":"text/event-stream","x-n":3}"#),
            vec![("content-type".to_owned(), "text/event-stream".to_owned())]
        );
        assert!(parse_headers("not json").is_empty());
    }

    #[test]
    fn host_failures_are_classified() {
        use HttpFailureKind::*;
        let f = |method, kind, code, message, sent| host_failure(method, kind, code, message, sent);
        // Our host's policy texts keep their meaning whatever the kind.
        assert_eq!(
            f(
                "POST",
                NetworkDenied,
                Some("dry-run"),
                Some("theta-policy dry-run: POST https://ondemand.thetaedgecloud.com/x"),
                false
            ),
            TransportError::DryRun
        );
        assert!(matches!(
            f("GET", AuthRequired, None, Some("theta-policy missing-credential THETA_ONDEMAND_API_TOKEN: set it"), false),
            TransportError::MissingCredential { ref variable, .. } if variable == "THETA_ONDEMAND_API_TOKEN"
        ));
        assert!(matches!(
            f(
                "GET",
                NetworkDenied,
                None,
                Some("host evil.com is not in the allowlist"),
                false
            ),
            TransportError::Denied(_)
        ));
        assert!(matches!(
            f("GET", Client, Some("rate_limited"), None, false),
            TransportError::Denied(_)
        ));
        assert!(matches!(
            f("GET", AuthRequired, None, None, false),
            TransportError::MissingCredential { .. }
        ));
        // Never sent: safe to send again. Sent, then failed: only reads are resent.
        assert!(matches!(
            f(
                "POST",
                OperationFailed,
                None,
                Some("connection refused"),
                false
            ),
            TransportError::NotSent(_)
        ));
        assert!(matches!(
            f(
                "POST",
                OperationFailed,
                None,
                Some("connection reset"),
                true
            ),
            TransportError::AfterSend(_)
        ));
        assert!(matches!(
            f("GET", OutputTooLarge, None, None, true),
            TransportError::AfterSend(_)
        ));
        // Timeouts: a paid request that timed out after it was sent says it may have run.
        match f(
            "POST",
            Executor,
            Some("timeout"),
            Some("no response within 30 s"),
            true,
        ) {
            TransportError::Timeout(m) => assert!(m.ends_with(crate::client::SENT_NOTE), "{m}"),
            e => panic!("{e:?}"),
        }
        match f("GET", Executor, Some("timeout"), None, true) {
            TransportError::Timeout(m) => assert_eq!(m, "timeout"),
            e => panic!("{e:?}"),
        }
    }
}
