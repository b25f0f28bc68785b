//! State of the families beyond on-demand: deployments and their endpoints, chatbots and documents,
//! videos, uploads and streams. Kept as JSON objects, as the API serves them.

use crate::reply::Reply;
use crate::state::RecordedRequest;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Default)]
pub(crate) struct Store {
    pub deployments: Vec<Value>,
    /// Machines in use per VM type.
    pub vm_used: HashMap<String, u32>,
    /// Requests seen per dedicated endpoint host (for the warm-up pattern).
    pub endpoint_hits: HashMap<String, u32>,
    /// Hosts of deployments that were deleted.
    pub deleted_hosts: Vec<String>,
    /// Basic auth (user, password) a deployment's endpoint requires, by endpoint host (kept while
    /// it is stopped; never listed).
    pub endpoint_auth: HashMap<String, (String, String)>,
    /// `shard/suffix` of deployments that are stopped (not billing).
    pub stopped: Vec<String>,
    pub chatbots: Vec<Value>,
    /// (chatbot id, document object with `content`).
    pub documents: Vec<(String, Value)>,
    pub uploads: Vec<String>,
    pub videos: Vec<(Value, u32)>,
    pub streams: Vec<Value>,
    pub next_id: u64,
}

impl Store {
    /// A fresh id with this prefix, e.g. `chatbot_fake0000000001`.
    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}fake{:010}", self.next_id)
    }
}

/// The path's segments (an empty segment makes the path unknown).
pub(crate) fn segments(path: &str) -> Option<Vec<&str>> {
    let s: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    (!s.iter().any(|x| x.is_empty())).then_some(s)
}

pub(crate) fn not_found(req: &RecordedRequest) -> Reply {
    Reply::error(404, format!("not found: {} {}", req.method, req.path))
}

/// `x-api-key` must be the project key: 401 without one, 403 (the live message) with another.
pub(crate) fn api_key(req: &RecordedRequest, key: &str) -> Result<(), Reply> {
    match req.header("x-api-key").map(str::trim) {
        None | Some("") => Err(Reply::error(401, "Unauthorized: missing x-api-key")),
        Some(k) if k == key => Ok(()),
        Some(_) => Err(Reply::error(
            403,
            "You are not allowed to perform this action",
        )),
    }
}

/// `project_id` (query or body) must be the fake's project: the live 403 otherwise.
pub(crate) fn project(req: &RecordedRequest, body: Option<&Value>) -> Result<(), Reply> {
    let given = req
        .query_param("project_id")
        .or_else(|| body.and_then(|b| b["project_id"].as_str().map(str::to_owned)));
    match given {
        Some(p) if p == crate::PROJECT_ID => Ok(()),
        Some(_) => Err(Reply::error(
            403,
            "You are not allowed to perform this action",
        )),
        None => Err(Reply::error(400, "project_id is required")),
    }
}

/// The body as a JSON object; an empty body is `{}`.
pub(crate) fn json_body(req: &RecordedRequest) -> Result<Value, Reply> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Reply::error(
            400,
            "invalid request body: expected a JSON object",
        )),
        Err(e) => Err(Reply::error(400, format!("invalid JSON body: {e}"))),
    }
}

/// One part of a `multipart/form-data` body: (name, filename, content type, bytes as text).
pub(crate) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: String,
}

/// Parses a `multipart/form-data` body; an error reply when it is not one.
pub(crate) fn multipart(req: &RecordedRequest) -> Result<Vec<Part>, Reply> {
    let ct = req.header("content-type").unwrap_or_default();
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .filter(|_| ct.starts_with("multipart/form-data"))
        .ok_or_else(|| Reply::error(400, "expected a multipart/form-data body"))?
        .trim_matches('"')
        .to_owned();
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let delimiter = format!("--{boundary}");
    if !body.contains(&format!("{delimiter}--")) {
        return Err(Reply::error(
            400,
            "malformed multipart body: no closing boundary",
        ));
    }
    let mut parts = Vec::new();
    for chunk in body.split(&delimiter).skip(1) {
        if chunk.starts_with("--") {
            break;
        }
        let chunk = chunk.strip_prefix("\r\n").unwrap_or(chunk);
        let (head, data) = chunk
            .split_once("\r\n\r\n")
            .ok_or_else(|| Reply::error(400, "malformed multipart part"))?;
        let data = data.strip_suffix("\r\n").unwrap_or(data);
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                for attr in line.split(';').skip(1) {
                    let (k, v) = attr.trim().split_once('=').unwrap_or((attr, ""));
                    let v = v.trim_matches('"').to_owned();
                    match k.trim() {
                        "name" => name = Some(v),
                        "filename" => filename = Some(v),
                        _ => {}
                    }
                }
            } else if lower.starts_with("content-type:") {
                content_type = Some(line[13..].trim().to_owned());
            }
        }
        parts.push(Part {
            name: name.ok_or_else(|| Reply::error(400, "a multipart part has no name"))?,
            filename,
            content_type,
            data: data.to_owned(),
        });
    }
    Ok(parts)
}

/// A 16-hex-digit suffix from a counter (stable across runs).
pub(crate) fn hex16(n: u64) -> String {
    format!("{:016x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Standard base64 with padding (the fake checks Basic auth against it).
pub(crate) fn base64(text: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `shard/suffix` of a deployment object.
pub(crate) fn deployment_key(d: &Value) -> String {
    let shard = match &d["Shard"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    format!("{shard}/{}", d["Suffix"].as_str().unwrap_or_default())
}
