//! `Transport` over IronClaw's `near:agent/host.http-request` import (the IronClaw build). The host
//! checks its allowlist, injects credentials and returns the whole response, so a body is one chunk:
//! streamed (SSE) answers are parsed once they are complete. Backoff sleeps use
//! `wasi:clocks/monotonic-clock`, which IronClaw provides to every wasm32-wasip2 tool.

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
        .map_err(|text| host_error(&text))?;
        Ok(HttpResponse {
            status: response.status,
            headers: parse_headers(&response.headers_json),
            body: Box::new(MemoryBody::new(response.body, Vec::new())),
        })
    }

    fn sleep_ms(&self, ms: u64) {
        wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
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

/// Maps the host's error text: our host's `theta-policy ...` refusals (docs/host-guest-contract.md),
/// else IronClaw's own wording (allowlist, rate limit, leak detector, timeouts).
pub fn host_error(text: &str) -> TransportError {
    if let Some(e) = TransportError::from_policy_text(text) {
        return e;
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        TransportError::Timeout(text.to_owned())
    } else if lower.contains("not allowed")
        || lower.contains("rate limit")
        || lower.contains("leak")
        || lower.contains("may not be set")
    {
        TransportError::Denied(text.to_owned())
    } else {
        TransportError::Failed(text.to_owned())
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
    fn host_errors_are_classified() {
        assert_eq!(
            host_error("theta-policy dry-run: POST https://ondemand.thetaedgecloud.com/x"),
            TransportError::DryRun
        );
        assert!(matches!(
            host_error("theta-policy missing-credential THETA_ONDEMAND_API_TOKEN: set it"),
            TransportError::MissingCredential { .. }
        ));
        assert!(matches!(
            host_error("HTTP not allowed: host evil.com is not in the allowlist"),
            TransportError::Denied(_)
        ));
        assert!(matches!(
            host_error("Rate limit exceeded: 60 per minute"),
            TransportError::Denied(_)
        ));
        assert!(matches!(
            host_error("HTTP request failed: operation timed out"),
            TransportError::Timeout(_)
        ));
        assert!(matches!(
            host_error("HTTP request failed: connection reset"),
            TransportError::Failed(_)
        ));
    }
}
