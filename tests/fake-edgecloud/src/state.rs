//! Interior state shared by all connections: the request log, the fault queue and the store of
//! on-demand infer requests.

use crate::faults::{Fault, FaultKind};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// One request as the fake received it, recorded before it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The `Host` header without the port, lower-cased (e.g. `ondemand.thetaedgecloud.com`).
    pub host: String,
    /// The path, without the query (e.g. `/infer_request/flux`).
    pub path: String,
    /// The raw query string without `?` (empty when there is none).
    pub query: String,
    /// Every header, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The request body (empty when it was refused as too large).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of a query parameter (no percent-decoding beyond `+` → space and `%XX`).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k) == name).then(|| percent_decode(v))
            })
            .next()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// How an infer request ends: `Ok((output, (usage input, usage output)))` or `Err(error_message)`.
pub(crate) type Outcome = Result<(Value, (u64, u64)), String>;

/// One on-demand infer request and where it is in its lifecycle.
#[derive(Debug, Clone)]
pub(crate) struct StoredInfer {
    /// The InferRequest object as last served.
    pub object: Value,
    /// Polls received so far.
    pub polls: u32,
    /// How it ends.
    pub outcome: Outcome,
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    faults: VecDeque<Fault>,
    infers: HashMap<String, StoredInfer>,
    infer_order: Vec<String>,
    next_infer: u64,
    next_chat: u64,
    next_upload: u64,
    /// Upload file name → the signature of the presigned URL issued for it.
    issued_uploads: HashMap<String, String>,
    /// Upload file name → the bytes PUT to its presigned URL.
    uploads: HashMap<String, Vec<u8>>,
    quota_used: HashMap<String, u32>,
    store: crate::store::Store,
}

/// Thread-safe state; every method takes the lock briefly and never across an await.
#[derive(Default)]
pub(crate) struct State {
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not wedge the fake for the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record(&self, request: RecordedRequest) {
        self.lock().requests.push(request);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().faults.push_back(fault);
        }
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// The first queued fault matching this request, consuming one of its uses.
    pub fn take_fault(&self, request: &RecordedRequest) -> Option<FaultKind> {
        let mut inner = self.lock();
        let index = inner
            .faults
            .iter()
            .position(|f| f.matcher.matches(request))?;
        let fault = &mut inner.faults[index];
        fault.times -= 1;
        let kind = fault.kind.clone();
        if fault.times == 0 {
            inner.faults.remove(index);
        }
        Some(kind)
    }

    /// Runs `f` on the other families' store, under the lock.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut crate::store::Store) -> T) -> T {
        f(&mut self.lock().store)
    }

    /// A fresh `infr_rqst_…` id.
    pub fn next_infer_id(&self) -> String {
        let mut inner = self.lock();
        inner.next_infer += 1;
        format!("infr_rqst_fake{:016}", inner.next_infer)
    }

    /// A fresh `chatcmpl-…` id.
    pub fn next_chat_id(&self) -> String {
        let mut inner = self.lock();
        inner.next_chat += 1;
        format!("chatcmpl-fake{:08}", inner.next_chat)
    }

    /// A fresh sequence number for upload file names.
    pub fn next_upload(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_upload += 1;
        inner.next_upload
    }

    /// Remember the signature issued for an upload file name.
    pub fn issue_upload(&self, filename: &str, signature: &str) {
        self.lock()
            .issued_uploads
            .insert(filename.to_owned(), signature.to_owned());
    }

    /// Store an upload when its signature is the one issued for that name; false otherwise.
    pub fn accept_upload(&self, filename: &str, signature: &str, bytes: Vec<u8>) -> bool {
        let mut inner = self.lock();
        if inner.issued_uploads.get(filename).map(String::as_str) != Some(signature) {
            return false;
        }
        inner.uploads.insert(filename.to_owned(), bytes);
        true
    }

    /// Whether a presigned URL was issued for this file name.
    pub fn upload_issued(&self, filename: &str) -> bool {
        self.lock().issued_uploads.contains_key(filename)
    }

    /// The bytes uploaded under a file name.
    pub fn upload(&self, filename: &str) -> Option<Vec<u8>> {
        self.lock().uploads.get(filename).cloned()
    }

    /// Count one use of a template's quota; returns the uses so far.
    pub fn use_quota(&self, template_id: &str) -> u32 {
        let mut inner = self.lock();
        let used = inner.quota_used.entry(template_id.to_owned()).or_default();
        *used += 1;
        *used
    }

    pub fn store_infer(&self, id: &str, infer: StoredInfer) {
        let mut inner = self.lock();
        if inner.infers.insert(id.to_owned(), infer).is_none() {
            inner.infer_order.push(id.to_owned());
        }
    }

    /// Apply `f` to a stored request (under the lock) and return its new object.
    pub fn update_infer(&self, id: &str, f: impl FnOnce(&mut StoredInfer)) -> Option<Value> {
        let mut inner = self.lock();
        let stored = inner.infers.get_mut(id)?;
        f(stored);
        Some(stored.object.clone())
    }

    /// Every stored request's object, oldest first.
    pub fn infers(&self) -> Vec<Value> {
        let inner = self.lock();
        inner
            .infer_order
            .iter()
            .filter_map(|id| inner.infers.get(id).map(|s| s.object.clone()))
            .collect()
    }
}
