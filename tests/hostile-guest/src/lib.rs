//! A deliberately hostile component of the `theta:edgecloud/command-plugin` world. Its `invoke` does what a
//! compromised plugin would: raw `wasi:http` requests to any scheme, authority and path with any headers,
//! reading its environment for keys, spinning the CPU, and allocating without bound. The end-to-end
//! tests drive it and assert that the host refuses each attempt, and how.

use exports::theta::edgecloud::commands::{CommandInfo, Guest as Commands};
use exports::theta::edgecloud::types::{Effect, ThetaError};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

wit_bindgen::generate!({
    path: "../../wit",
    world: "theta:edgecloud/command-plugin",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:cli/environment@0.2.12": wasip2::cli::environment,
        "wasi:cli/stderr@0.2.12": wasip2::cli::stderr,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
    },
});

struct Hostile;
export!(Hostile);

impl Commands for Hostile {
    fn describe() -> Vec<CommandInfo> {
        ["fetch", "env", "spin", "alloc"]
            .into_iter()
            .map(|name| CommandInfo {
                name: name.into(),
                summary: "hostile test action".into(),
                args_schema: "{}".into(),
                effect: Effect::Read,
                credentials: vec![],
            })
            .collect()
    }

    fn invoke(name: String, args_json: String) -> Result<String, ThetaError> {
        match name.as_str() {
            "fetch" => Ok(fetch(&args_json)),
            "env" => Ok(env_dump()),
            "spin" => spin(),
            "alloc" => Ok(alloc(&args_json)),
            other => Err(ThetaError::Denied(format!(
                "unknown hostile action {other}"
            ))),
        }
    }
}

/// Minimal JSON string-field reader, so the hostile guest has no dependencies of its own.
fn field(json: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":\"");
    let start = json.find(&pat)? + pat.len();
    let mut out = String::new();
    let mut chars = json[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn outcome(kind: &str, detail: &str) -> String {
    format!("{{\"outcome\":\"{kind}\",\"detail\":\"{}\"}}", esc(detail))
}

/// One raw request. Args: scheme, authority, path, method, optional header `hname`/`hvalue`, optional
/// `body` (sent as is), optional `body_repeat` (the body repeated N times, for huge bodies).
fn fetch(args: &str) -> String {
    let headers = Fields::new();
    if let (Some(name), Some(value)) = (field(args, "hname"), field(args, "hvalue"))
        && let Err(e) = headers.append(&name, value.as_bytes())
    {
        return outcome("header-error", &format!("{e:?}"));
    }
    let req = OutgoingRequest::new(headers);
    let method = match field(args, "method").as_deref().unwrap_or("GET") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "TRACE" => Method::Trace,
        other => Method::Other(other.into()),
    };
    if req.set_method(&method).is_err() {
        return outcome("setup-error", "method");
    }
    let scheme = match field(args, "scheme").as_deref() {
        None => None,
        Some("https") => Some(Scheme::Https),
        Some("http") => Some(Scheme::Http),
        Some(other) => Some(Scheme::Other(other.into())),
    };
    if req.set_scheme(scheme.as_ref()).is_err() {
        return outcome("setup-error", "scheme");
    }
    if req
        .set_authority(field(args, "authority").as_deref())
        .is_err()
    {
        return outcome("setup-error", "authority");
    }
    if req
        .set_path_with_query(field(args, "path").as_deref())
        .is_err()
    {
        return outcome("setup-error", "path");
    }
    let body = field(args, "body");
    let repeat: usize = field(args, "body_repeat")
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let outgoing = if body.is_some() {
        req.body().ok()
    } else {
        None
    };
    let future = match outgoing_handler::handle(req, None) {
        Ok(f) => f,
        Err(e) => return outcome("handle-error", &format!("{e:?}")),
    };
    if let (Some(outgoing), Some(body)) = (outgoing, body) {
        let stream = outgoing.write().expect("body stream");
        for _ in 0..repeat {
            if stream.blocking_write_and_flush(body.as_bytes()).is_err() {
                break;
            }
        }
        drop(stream);
        let _ = OutgoingBody::finish(outgoing, None);
    }
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(resp))) => {
            let status = resp.status();
            // Read the whole body (a hostile guest would), keeping the first MiB to report.
            let mut text = Vec::new();
            let mut bytes = 0usize;
            let mut body_error = String::new();
            if let Ok(body) = resp.consume()
                && let Ok(stream) = body.stream()
            {
                loop {
                    match stream.blocking_read(64 * 1024) {
                        Ok(chunk) => {
                            bytes += chunk.len();
                            if text.len() < 1 << 20 {
                                text.extend_from_slice(&chunk);
                            }
                        }
                        Err(StreamError::Closed) => break,
                        Err(StreamError::LastOperationFailed(e)) => {
                            body_error = e.to_debug_string();
                            break;
                        }
                    }
                }
            }
            format!(
                "{{\"outcome\":\"response\",\"status\":{status},\"bytes\":{bytes},\"body_error\":\"{}\",\"detail\":\"{}\"}}",
                esc(&body_error),
                esc(&String::from_utf8_lossy(&text))
            )
        }
        Some(Ok(Err(code))) => outcome("error-code", &format!("{code:?}")),
        other => outcome("future-error", &format!("{other:?}")),
    }
}

/// Everything the guest can see of its environment: where a careless host would leak keys.
fn env_dump() -> String {
    let vars: Vec<String> = wasip2::cli::environment::get_environment()
        .into_iter()
        .map(|(k, v)| format!("[\"{}\",\"{}\"]", esc(&k), esc(&v)))
        .collect();
    let args: Vec<String> = wasip2::cli::environment::get_arguments()
        .into_iter()
        .map(|a| format!("\"{}\"", esc(&a)))
        .collect();
    format!(
        "{{\"env\":[{}],\"args\":[{}]}}",
        vars.join(","),
        args.join(",")
    )
}

/// Burns CPU forever: the host's CPU budget must stop it.
fn spin() -> Result<String, ThetaError> {
    let mut x: u64 = 1;
    loop {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x == 0 {
            return Ok(x.to_string());
        }
    }
}

/// Allocates `mib` MiB (default: without bound): the host's memory limit must stop it.
fn alloc(args: &str) -> String {
    let mib: usize = field(args, "mib")
        .and_then(|m| m.parse().ok())
        .unwrap_or(usize::MAX);
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        let mut block = vec![0u8; 1 << 20];
        block[0] = 1;
        blocks.push(block);
    }
    format!("{{\"allocated_mib\":{}}}", blocks.len())
}
