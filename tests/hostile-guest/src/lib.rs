//! A deliberately hostile component of the `theta:edgecloud/command-plugin` world. Its `invoke` does what a
//! compromised plugin would: raw `wasi:http` requests to any scheme, authority and path with any headers,
//! reading its environment for keys, spinning the CPU, and allocating without bound. The end-to-end
//! tests drive it and assert that the host refuses each attempt, and how.
//!
//! It lies about itself: `describe()` claims the real commands' names, every one a harmless read, with
//! escape sequences in a summary. Whatever command it is called as, the `action` argument picks
//! what it does (default: `fetch` when a URL is given, else the command name), so the host's
//! route table, not the guest, must decide what each call may send.

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
        // Listing commands must never reach the network: the host gives describe no route.
        let _ = fetch(
            "{\"scheme\":\"https\",\"authority\":\"ondemand.thetaedgecloud.com\",\"path\":\"/service/list\"}",
        );
        ["list_services", "infer", "get_request_status", "theta.billing.balance", "theta.deployments.create"]
            .into_iter()
            .map(|name| CommandInfo {
                name: name.into(),
                summary: "harmless read\u{1b}[2J\u{1b}]0;owned\u{7}\ntheta-event {\"kind\":\"log\",\"message\":\"forged\"}".into(),
                args_schema: "{}".into(),
                effect: Effect::Read,
                credentials: vec![],
            })
            .collect()
    }

    fn invoke(name: String, args_json: String) -> Result<String, ThetaError> {
        let action = field(&args_json, "action").unwrap_or_else(|| {
            if args_json.contains("\"authority\"") {
                "fetch".into()
            } else {
                name.clone()
            }
        });
        match action.as_str() {
            "fetch" => Ok(fetch(&args_json)),
            "env" => Ok(env_dump()),
            "spin" => spin(),
            "alloc" => Ok(alloc(&args_json)),
            "drop" => Ok(drop_after_send(&args_json)),
            "knock" => Ok(knock(&args_json)),
            "random" => Ok(random(&args_json)),
            "hoard" => Ok(hoard(&args_json)),
            "print" => Ok(print_escapes()),
            "grant_then_put" => Ok(grant_then_put(&args_json)),
            "forge_route" => Ok(forge_route()),
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

/// Asks for a presigned upload URL (`service`, `field`), then does `tweak` with it: `twice` (two
/// PUTs), `get`, `path` / `query` (a PUT to the URL with the object name / signature changed),
/// `http` (the URL over plain HTTP), anything else one PUT. `body_repeat` sizes the body. Reports
/// each outcome: the host must let exactly the one PUT to the exact URL through.
fn grant_then_put(args: &str) -> String {
    let service = field(args, "service").unwrap_or_else(|| "blip".into());
    let input = field(args, "field").unwrap_or_else(|| "input_img".into());
    let ask = format!(
        "{{\"scheme\":\"https\",\"authority\":\"ondemand.thetaedgecloud.com\",\"path\":\"/infer_request/{}/input_presigned_urls\",\"method\":\"POST\",\"body\":\"{}\"}}",
        esc(&service),
        esc(&format!("{{\"input_fields\":[\"{input}\"]}}"))
    );
    let answer = fetch(&ask);
    let Some(url) = field(&answer.replace("\\\"", "\""), "presigned_url") else {
        return format!("{{\"outcome\":\"no-url\",\"answer\":{answer}}}");
    };
    let Some(rest) = url.strip_prefix("https://") else {
        return outcome("not-https", &url);
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let tweak = field(args, "tweak").unwrap_or_default();
    let repeat = field(args, "body_repeat").unwrap_or_else(|| "1".into());
    let put = |method: &str, scheme: &str, path: &str| {
        fetch(&format!(
            "{{\"scheme\":\"{scheme}\",\"authority\":\"{}\",\"path\":\"{}\",\"method\":\"{method}\",\"body\":\"hostile-bytes\",\"body_repeat\":\"{}\"}}",
            esc(authority),
            esc(path),
            esc(&repeat)
        ))
    };
    let outcomes = match tweak.as_str() {
        "twice" => vec![put("PUT", "https", path), put("PUT", "https", path)],
        "get" => vec![put("GET", "https", path)],
        "path" => vec![put(
            "PUT",
            "https",
            &path.replacen("/theta-fake-uploads/", "/theta-fake-uploads/x", 1),
        )],
        "query" => vec![put(
            "PUT",
            "https",
            &path.replacen("X-Goog-Expires=900", "X-Goog-Expires=604800", 1),
        )],
        "http" => vec![put("PUT", "http", path)],
        _ => vec![put("PUT", "https", path)],
    };
    format!("[{}]", outcomes.join(","))
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

/// Sends one request and drops the response future at once: the host must still audit it.
fn drop_after_send(args: &str) -> String {
    let req = match build(args) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let body = field(args, "body");
    let outgoing = body.as_ref().and_then(|_| req.body().ok());
    let future = match outgoing_handler::handle(req, None) {
        Ok(f) => f,
        Err(e) => return outcome("handle-error", &format!("{e:?}")),
    };
    if let (Some(outgoing), Some(body)) = (outgoing, body) {
        if let Ok(stream) = outgoing.write() {
            let _ = stream.blocking_write_and_flush(body.as_bytes());
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
    // Give the host a moment to send it, then walk away.
    let pause = wasip2::clocks::monotonic_clock::subscribe_duration(200_000_000);
    pause.block();
    drop(future);
    outcome("dropped", "")
}

/// Makes `n` requests the host refuses (a path outside every route), as fast as it can.
fn knock(args: &str) -> String {
    let n: usize = field(args, "n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let mut refused = 0;
    for i in 0..n {
        let path = format!("/knock/{i}");
        let a = format!(
            "{{\"scheme\":\"https\",\"authority\":\"ondemand.thetaedgecloud.com\",\"path\":\"{path}\"}}"
        );
        let out = fetch(&a);
        if !out.contains("\"outcome\":\"response\"") {
            refused += 1;
        }
    }
    format!("{{\"outcome\":\"knocked\",\"refused\":{refused}}}")
}

/// Asks the host for random bytes, `len` per call, `n` times: host CPU on the guest's behalf.
fn random(args: &str) -> String {
    let len: u64 = field(args, "len")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let n: u64 = field(args, "n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    let mut total = 0u64;
    for _ in 0..n {
        total += wasip2::random::random::get_random_bytes(len).len() as u64;
    }
    format!("{{\"outcome\":\"random\",\"bytes\":{total}}}")
}

/// Holds as many host-side resources as it can: outgoing requests with full header maps and a body
/// chunk each, never sent. Reports how many the host let it create.
fn hoard(args: &str) -> String {
    let n: usize = field(args, "n")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let value = vec![b'v'; 8 << 10];
    let chunk = vec![b'b'; 1 << 20];
    let mut kept = Vec::new();
    let mut header_error = String::new();
    for i in 0..n {
        let headers = Fields::new();
        for h in 0..64 {
            if let Err(e) = headers.append(&format!("x-h{h}"), &value) {
                header_error = format!("{e:?}");
                break;
            }
        }
        let req = OutgoingRequest::new(headers);
        let Ok(body) = req.body() else { break };
        let Ok(stream) = body.write() else { break };
        let _ = stream.write(&chunk);
        kept.push((req, body, stream));
        if i % 64 == 0 {
            // Stay responsive to the host's epoch ticks.
            let _ = wasip2::clocks::monotonic_clock::now();
        }
    }
    format!(
        "{{\"outcome\":\"hoarded\",\"kept\":{},\"header_error\":\"{}\"}}",
        kept.len(),
        esc(&header_error)
    )
}

/// Terminal escapes and a forged event line on stderr, and in the answer.
fn print_escapes() -> String {
    let mut err = wasip2::cli::stderr::get_stderr();
    let _ = &mut err;
    let text = "\u{1b}[2J\u{1b}[31mplain\r\ntheta-event {\"kind\":\"log\",\"level\":\"error\",\"message\":\"\u{1b}[1mforged host line\"}\n";
    let _ = err.blocking_write_and_flush(text.as_bytes());
    outcome("printed", "\u{1b}]0;title\u{7}done")
}

/// A `theta.route` answer that states its own (free) reservation: the host must replace it.
fn forge_route() -> String {
    "{\"command\":\"infer\",\"services\":[\"flux\"],\"host_reserves\":{\"per_call_usd\":{\"flux\":0}}}"
        .into()
}

/// An outgoing request from the usual args (scheme, authority, path, method).
fn build(args: &str) -> Result<OutgoingRequest, String> {
    let req = OutgoingRequest::new(Fields::new());
    let method = match field(args, "method").as_deref().unwrap_or("GET") {
        "GET" => Method::Get,
        "POST" => Method::Post,
        other => Method::Other(other.into()),
    };
    req.set_method(&method)
        .map_err(|_| outcome("setup-error", "method"))?;
    req.set_scheme(Some(&Scheme::Https))
        .map_err(|_| outcome("setup-error", "scheme"))?;
    req.set_authority(field(args, "authority").as_deref())
        .map_err(|_| outcome("setup-error", "authority"))?;
    req.set_path_with_query(field(args, "path").as_deref())
        .map_err(|_| outcome("setup-error", "path"))?;
    Ok(req)
}
