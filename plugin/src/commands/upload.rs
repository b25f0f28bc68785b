//! `theta.ondemand.upload`: a file input in one call. It asks for a presigned upload URL (the same
//! request `get_upload_url` makes), PUTs the bytes to exactly that URL (on Theta's storage host,
//! outside its API domains; the host lets this one PUT through and nothing else) and returns the
//! `input` to pass to `infer`. The presigned URL's query is its signature: it never appears in a
//! result or an error.

use super::args::{Args, check_name};
use super::ondemand;
use super::{ToJson, object};
use crate::client::{Ctx, USER_AGENT};
use crate::error::{RequestPreview, Result, ThetaError};
use crate::transport::{HttpRequest, Timeouts, TransportError};
use serde_json::Value;

/// Largest file accepted, decoded: uploads are held whole in memory, on both sides of the boundary.
pub const MAX_UPLOAD_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// A storage answer's error text is cut here.
const MAX_STORAGE_ERROR_BYTES: usize = 16 * 1024;

pub const UPLOAD_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["service","input_field","data_base64"],"description":"Uploads one file for a service's file input and returns the `input` to pass to infer. At most 8 MiB (8388608 bytes) once decoded.","properties":{
"service":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Service alias, e.g. `blip`, `whisper`."},
"input_field":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The file input field, e.g. `input_img`, `image_filename`, `audio_filename` (see list_services)."},
"data_base64":{"type":"string","contentEncoding":"base64","description":"The file's bytes, standard base64 (padding optional); at most 8 MiB (8388608 bytes) decoded."},
"content_type":{"type":"string","description":"The file's media type, e.g. `image/png`; default application/octet-stream."},
"prediction":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Prediction method, when the service has several."}}}"#;

#[derive(Debug, Clone, PartialEq)]
pub struct UploadArgs {
    pub service: String,
    pub input_field: String,
    pub data: Vec<u8>,
    pub content_type: Option<String>,
    pub prediction: Option<String>,
}

/// What was uploaded, and the input that names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    pub service: String,
    pub input_field: String,
    pub filename: String,
    pub uploaded_bytes: u64,
}

pub fn parse_upload(args: Args) -> Result<UploadArgs> {
    args.allow_only(&[
        "service",
        "input_field",
        "data_base64",
        "content_type",
        "prediction",
    ])?;
    let encoded = args.required_string("data_base64")?;
    // Refused before decoding: the decoded size is at most 3/4 of the text.
    let at_least = encoded.trim_end_matches('=').len() / 4 * 3;
    if at_least > MAX_UPLOAD_BYTES {
        return Err(too_large(at_least));
    }
    Ok(UploadArgs {
        service: args.required_string("service")?,
        input_field: args.required_string("input_field")?,
        data: decode_base64(&encoded)?,
        content_type: args.string("content_type")?,
        prediction: args.string("prediction")?,
    })
}

fn too_large(size: usize) -> ThetaError {
    ThetaError::invalid(
        "data_base64",
        format!(
            "the file is {size} bytes; the most theta.ondemand.upload takes is {MAX_UPLOAD_BYTES} bytes (8 MiB)"
        ),
    )
}

/// Standard base64 (RFC 4648 §4), padding optional, whitespace ignored.
pub fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padding = 0;
    for (i, c) in text.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => {
                return Err(ThetaError::invalid(
                    "data_base64",
                    format!("not base64: byte {i} is `{}`", (c as char).escape_default()),
                ));
            }
        };
        if padding > 0 {
            return Err(ThetaError::invalid(
                "data_base64",
                "not base64: data after `=` padding",
            ));
        }
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 || padding > 2 {
        return Err(ThetaError::invalid(
            "data_base64",
            "not base64: its length does not end on a whole byte",
        ));
    }
    Ok(out)
}

/// A media type as a header may carry it: `type/subtype` and parameters, printable ASCII only.
fn check_content_type(value: &str) -> Result<()> {
    let ok = value.len() <= 200
        && value.contains('/')
        && value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ThetaError::invalid(
            "content_type",
            "expected a media type such as `image/png` (printable ASCII, at most 200 bytes)",
        ))
    }
}

/// `https://host/path` of a presigned URL: what may be shown of it (the query is the signature).
pub fn shown_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

/// Text about a request to `url`, with the URL's query removed wherever it appears.
fn scrubbed(text: &str, url: &str) -> String {
    let shown = shown_url(url);
    let mut out = text.replace(url, &shown);
    if let Some((_, query)) = url.split_once('?')
        && !query.is_empty()
    {
        out = out.replace(query, "[signed query]");
    }
    out
}

pub fn upload(ctx: &Ctx, args: UploadArgs) -> Result<Uploaded> {
    check_name("service", &args.service)?;
    check_name("input_field", &args.input_field)?;
    if args.data.len() > MAX_UPLOAD_BYTES {
        return Err(too_large(args.data.len()));
    }
    let content_type = args
        .content_type
        .clone()
        .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    check_content_type(&content_type)?;
    // The host's request-size limit, known up front: nothing is sent (no URL created) for a file
    // that could not pass it.
    if let Some(limit) = ctx.config.max_request_bytes
        && args.data.len() as u64 > limit
    {
        return Err(ThetaError::Denied {
            reason: format!(
                "limit: the file is {} bytes, over the host's request-size limit of {limit} bytes (max_request_bytes); nothing was sent",
                args.data.len()
            ),
        });
    }
    let urls = ondemand::get_upload_url(
        ctx,
        &args.service,
        std::slice::from_ref(&args.input_field),
        args.prediction.as_deref(),
    )?;
    let slot = urls
        .into_iter()
        .find(|u| u.field == args.input_field)
        .ok_or_else(|| {
            ThetaError::transport(format!(
                "the upload-URL answer has no URL for `{}`",
                args.input_field
            ))
        })?;
    put(ctx, &slot.upload_url, &content_type, args.data.clone())?;
    Ok(Uploaded {
        service: args.service,
        input_field: args.input_field,
        filename: slot.filename,
        uploaded_bytes: args.data.len() as u64,
    })
}

/// One PUT to the presigned URL, never retried: the host grants the URL for a single request.
fn put(ctx: &Ctx, url: &str, content_type: &str, data: Vec<u8>) -> Result<()> {
    let shown = shown_url(url);
    if !url.starts_with("https://") {
        return Err(ThetaError::transport(format!(
            "the upload URL `{shown}` is not HTTPS; nothing was sent"
        )));
    }
    let timeout = ctx.config.timeout_ms;
    let request = HttpRequest {
        method: "PUT".into(),
        url: url.to_owned(),
        headers: vec![
            ("user-agent".into(), USER_AGENT.into()),
            ("content-type".into(), content_type.to_owned()),
            ("content-length".into(), data.len().to_string()),
        ],
        body: Some(data),
        timeouts: Timeouts::uniform(timeout),
    };
    let mut response = match ctx.transport.send(&request) {
        Ok(response) => response,
        Err(e) => return Err(send_error(e, url, content_type)),
    };
    let text = response
        .read_to_end(MAX_STORAGE_ERROR_BYTES)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if (200..300).contains(&response.status) {
        return Ok(());
    }
    let status = response.status;
    let reason = storage_error(&text);
    let hint = if status == 403 {
        "; the presigned URL may have expired or been used: call theta.ondemand.upload again for a new one"
    } else {
        ""
    };
    Err(ThetaError::Upstream {
        status,
        message: scrubbed(
            &format!("the storage host refused the upload to {shown} ({reason}){hint}"),
            url,
        ),
        retriable: false,
    })
}

fn send_error(e: TransportError, url: &str, content_type: &str) -> ThetaError {
    let clean = |m: String| scrubbed(&m, url);
    let shown = shown_url(url);
    match e {
        TransportError::Timeout(m) => ThetaError::Timeout {
            message: format!("PUT {shown}: {}", clean(m)),
        },
        TransportError::Denied(reason) => ThetaError::Denied {
            reason: clean(reason),
        },
        TransportError::DryRun => ThetaError::DryRun {
            preview: RequestPreview {
                method: "PUT".into(),
                url: shown,
                headers: vec![("content-type".into(), content_type.to_owned())],
                body: Some("[file bytes]".into()),
            },
        },
        TransportError::MissingCredential { variable, hint } => {
            ThetaError::MissingCredential { variable, hint }
        }
        TransportError::Failed(m) | TransportError::NotSent(m) | TransportError::AfterSend(m) => {
            ThetaError::transport(format!("PUT {shown}: {}", clean(m)))
        }
    }
}

/// GCS answers errors as XML `<Error><Code>…</Code><Message>…</Message>…`; only those two are
/// quoted (the rest can echo the signed request).
fn storage_error(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(crate::client::truncate(text[start..end].trim(), 300))
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ if text.trim().is_empty() => "no error message".into(),
        _ => "an error answer that is not GCS XML".into(),
    }
}

impl ToJson for Uploaded {
    fn to_json(&self) -> Value {
        let mut input = serde_json::Map::new();
        input.insert(
            self.input_field.clone(),
            Value::String(self.filename.clone()),
        );
        object(vec![
            ("service", Value::String(self.service.clone())),
            ("input_field", Value::String(self.input_field.clone())),
            ("filename", Value::String(self.filename.clone())),
            ("uploaded_bytes", Value::from(self.uploaded_bytes)),
            ("input", Value::Object(input)),
        ])
    }
}
