//! The audit trail: one JSON line per outbound request and per refusal. Never a secret: records hold
//! the method, host and path (no query string, which could carry tokens), the decision and the counts.

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
    pub method: String,
    pub host: String,
    pub path: String,
    /// allowed, denied, dry-run, missing-credential, limit, error
    pub decision: String,
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
        tracing::debug!(target: "theta_host::audit", "{line}");
        if let Some(file) = &self.file {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = writeln!(f, "{line}") {
                tracing::error!("could not write the audit trail: {e}");
            }
        }
        if let Some(mem) = &self.memory {
            mem.lock().unwrap_or_else(|p| p.into_inner()).push(record);
        }
    }
}
