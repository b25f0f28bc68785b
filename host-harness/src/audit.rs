//! The audit trail: JSON lines, one per refusal, and two per request that leaves the host: `sent`,
//! written before the request goes out, and its outcome (`ok`, `upstream-error`, `abandoned`,
//! `timeout`, `error`) with the same `call_id` and `request`. Never a secret: query values under
//! secret-looking keys are redacted, and configured credentials are scrubbed from every text.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditRecord {
    pub ts_unix_ms: u128,
    pub tenant: String,
    pub command: String,
    pub call_id: u64,
    /// The request's number within its call (1, 2, ...): links `sent` to its outcome.
    pub request: u32,
    pub method: String,
    pub host: String,
    pub path: String,
    /// The query string, with the values of secret-looking keys redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// allowed, denied, dry-run, missing-credential, limit, error
    pub decision: String,
    /// For allowed requests: sent, then ok, upstream-error, abandoned, timeout or error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<crate::policy::Effect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub bytes_in: u64,
    /// USD reserved for a paid request (settled unless the request was not accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend_usd: Option<f64>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `query` with the value of every key that could carry a secret replaced by `[redacted]`.
pub fn redact_query(query: &str) -> String {
    const SECRET_KEYS: [&str; 10] = [
        "token",
        "key",
        "secret",
        "signature",
        "sig",
        "password",
        "auth",
        "credential",
        "session",
        "x-amz-",
    ];
    query
        .split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = key.to_ascii_lowercase();
            let shown_key = crate::text::for_terminal(key);
            if SECRET_KEYS.iter().any(|s| lower.contains(s)) && !value.is_empty() {
                format!("{shown_key}=[redacted]")
            } else if pair.contains('=') {
                format!("{shown_key}={}", crate::text::for_terminal(value))
            } else {
                shown_key
            }
        })
        .collect::<Vec<_>>()
        .join("&")
        .chars()
        .take(1024)
        .collect()
}

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Where audit records go: a file (appended, one line per record), memory (tests), or the log.
#[derive(Clone, Default)]
pub struct AuditSink {
    file: Option<Arc<Mutex<File>>>,
    memory: Option<Arc<Mutex<Vec<AuditRecord>>>>,
}

impl AuditSink {
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Some(Arc::new(Mutex::new(file))),
            memory: None,
        })
    }

    /// Keeps records in memory as well; `records()` returns them.
    pub fn with_memory(mut self) -> Self {
        self.memory = Some(Arc::default());
        self
    }

    pub fn records(&self) -> Vec<AuditRecord> {
        self.memory
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }

    pub fn record(&self, record: AuditRecord) {
        let line = serde_json::to_string(&record).unwrap_or_default();
        // One write(2) per line on an O_APPEND file: a `sent` line is in the kernel before the
        // request leaves, so it survives a kill -9 of the host (not a power cut: the spend store is
        // the durable record of money).
        tracing::debug!(target: "theta_host::audit", "{line}");
        if let Some(file) = &self.file {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            let written = f.write_all(format!("{line}\n").as_bytes());
            if let Err(e) = written {
                tracing::error!("could not write the audit trail: {e}");
            }
        }
        if let Some(mem) = &self.memory {
            mem.lock().unwrap_or_else(|p| p.into_inner()).push(record);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_query_values_are_redacted() {
        assert_eq!(
            super::redact_query("orgID=o1&api_key=abc&X-Amz-Signature=zz&wait=3&flag"),
            "orgID=o1&api_key=[redacted]&X-Amz-Signature=[redacted]&wait=3&flag"
        );
    }
}
