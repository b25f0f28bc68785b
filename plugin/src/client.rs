//! The Theta EdgeCloud HTTP client: URLs, headers, credentials, dry-run previews, retries and the
//! mapping of HTTP answers onto `ThetaError`. Independent of how bytes travel (see `transport`).

use crate::config::{
    CONTROLLER_KEY_VAR, Config, INFERENCE_PASS_VAR, INFERENCE_TOKEN_VAR, INFERENCE_USER_VAR,
    ONDEMAND_TOKEN_VAR, VIDEO_ID_VAR, VIDEO_SECRET_VAR,
};
use crate::error::{RequestPreview, Result, ThetaError};
use crate::events::{Event, EventSink};
use crate::transport::{HttpRequest, HttpResponse, Timeouts, Transport, TransportError};
use serde_json::Value;

pub const USER_AGENT: &str = "theta-edgecloud-plugin/0.1";
/// JSON answers larger than this are refused rather than buffered.
const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;
/// Error messages quoted from Theta are cut here.
const MAX_MESSAGE_CHARS: usize = 500;
/// The longest `Retry-After` we honour before retrying.
const MAX_RETRY_AFTER_MS: u64 = 30_000;

pub const CONTROLLER_BASE: &str = "https://controller.thetaedgecloud.com";
pub const PLATFORM_BASE: &str = "https://api.thetaedgecloud.com";
pub const VIDEO_BASE: &str = "https://api.thetavideoapi.com";

/// Which API a call goes to; each has its own base URL and its own credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// `ondemand.thetaedgecloud.com` (or its configured override): Bearer token.
    OnDemand,
    /// `controller.thetaedgecloud.com`: deployments, templates, AI agents; `x-api-key`.
    Controller,
    /// `api.thetaedgecloud.com`: VM types, org balance; `x-api-key`.
    Platform,
    /// The dedicated endpoint of `THETA_INFERENCE_ENDPOINT` (validated base): Bearer or Basic, optional.
    Inference(String),
    /// `api.thetavideoapi.com`: service-account headers.
    Video,
    /// Any other validated Theta base, without credentials (a disposable deployment's own endpoint).
    Public(String),
}

/// The credential a family needs, by the variable that names it, and how to get it configured.
pub fn credential_hint(var: &str) -> String {
    let how = match var {
        CONTROLLER_KEY_VAR => {
            "set THETA_EC_API_KEY to a project API key (EdgeCloud dashboard: Settings → Projects → Create API Key)"
        }
        VIDEO_SECRET_VAR | VIDEO_ID_VAR => {
            "set THETA_VIDEO_SA_ID and THETA_VIDEO_SA_SECRET to a Theta Video API service account"
        }
        "THETA_EC_PROJECT_ID" => {
            "set THETA_EC_PROJECT_ID to the project id (prj_…) the API key belongs to"
        }
        "THETA_ORG_ID" => "set THETA_ORG_ID to the organisation id (org_…), or pass org_id",
        "THETA_INFERENCE_ENDPOINT" => {
            "set THETA_INFERENCE_ENDPOINT in the host's configuration to the deployment's https:// endpoint \
             (under thetaedgecloud.com / onthetaedgecloud.com); it is never taken from call arguments"
        }
        _ => {
            "set THETA_ONDEMAND_API_TOKEN (or THETA_ONDEMAND_API_KEY / THETA_API_KEY) to the on-demand access \
             token from the EdgeCloud dashboard (On-demand model APIs → Access Token)"
        }
    };
    format!("{how}; theta.auth.capabilities shows what each command family has")
}

/// `missing-credential` for a variable.
pub fn missing(var: &str) -> ThetaError {
    ThetaError::MissingCredential {
        variable: var.into(),
        hint: credential_hint(var),
    }
}

/// What a command gets to work with.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub transport: &'a dyn Transport,
    pub events: &'a dyn EventSink,
}

/// One API call, before credentials and retries.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    /// Path and query, starting with `/`, segments already encoded.
    pub path: String,
    pub body: Option<Value>,
    /// A non-JSON body: (content type, bytes, what a preview shows instead of the bytes).
    pub raw_body: Option<(String, Vec<u8>, String)>,
    pub api: Api,
    /// Needs the family's credential (everything but public reads such as the catalogue).
    pub needs_credential: bool,
    /// Overrides `THETA_HTTP_MAX_RETRIES` (polls that retry by themselves use 0).
    pub retries: Option<u32>,
    /// Overrides `THETA_HTTP_TIMEOUT_MS` (chat, long `wait`).
    pub timeout_ms: Option<u64>,
    pub accept: &'static str,
    /// The service alias the call is about, for 404 and capacity messages.
    pub service: Option<String>,
    /// What a 404 means for this call, e.g. "unknown service `x`: see list_services".
    pub not_found: Option<String>,
    /// Basic-auth (user, password) a disposable deployment's own endpoint requires (`Api::Public`
    /// only). A host that injects credentials adds it itself, from the create it let through.
    pub basic_auth: Option<(String, String)>,
}

impl Call {
    pub fn get(path: String) -> Self {
        Self {
            method: "GET",
            path,
            body: None,
            raw_body: None,
            api: Api::OnDemand,
            needs_credential: true,
            retries: None,
            timeout_ms: None,
            accept: "application/json",
            service: None,
            not_found: None,
            basic_auth: None,
        }
    }

    pub fn post(path: String, body: Value) -> Self {
        Self {
            method: "POST",
            body: Some(body),
            ..Self::get(path)
        }
    }

    /// The same call to another API.
    pub fn on(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
}

/// Appended to the error of a paid or mutating request that failed after the host sent it: it is
/// not retried, and the caller is told why.
pub const SENT_NOTE: &str = "; the request was sent before it failed, so Theta may have run (and charged) it: \
                              check its result (e.g. get_request_status, a list command) before sending it again";

/// A retry that may follow an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    /// The connection failed (not a timeout, not a policy refusal), maybe after the request was sent.
    TransportFailure,
    /// The host says the request never left: nothing ran, so any method may be sent again.
    NotSent,
}

/// The retry table. Reads are retried on transient statuses and broken connections. Paid or
/// mutating POSTs are retried only when Theta certainly did not run them: 409 (no instances, not
/// accepted) and 429 (rate limited); a 5xx or a broken connection may mean it ran, so never again.
pub fn should_retry(method: &str, outcome: Outcome) -> bool {
    let read = matches!(method, "GET" | "HEAD");
    match outcome {
        Outcome::Status(s) if read => matches!(s, 408 | 425 | 429 | 500 | 502 | 503 | 504),
        Outcome::Status(s) => matches!(s, 409 | 429),
        Outcome::TransportFailure => read,
        Outcome::NotSent => true,
    }
}

/// How the request is authenticated.
#[derive(Debug, Clone, PartialEq)]
enum Auth {
    None,
    /// We send these headers from our own environment.
    Own(Vec<(String, String)>),
    /// The host adds it at the HTTP boundary.
    Host,
    /// Nobody has it.
    Missing,
}

pub struct Client<'a> {
    ctx: &'a Ctx<'a>,
}

impl<'a> Client<'a> {
    pub fn new(ctx: &'a Ctx<'a>) -> Self {
        Self { ctx }
    }

    fn config(&self) -> &Config {
        self.ctx.config
    }

    pub fn url(&self, call: &Call) -> String {
        let base = match &call.api {
            Api::OnDemand => self.config().ondemand_base.as_str(),
            Api::Controller => CONTROLLER_BASE,
            Api::Platform => PLATFORM_BASE,
            Api::Video => VIDEO_BASE,
            Api::Inference(base) | Api::Public(base) => base.as_str(),
        };
        format!("{base}{}", call.path)
    }

    /// The variable naming the credential of this call's family (for errors and the host check).
    pub fn credential_var(&self, call: &Call) -> Option<&'static str> {
        if !call.needs_credential {
            return None;
        }
        match call.api {
            Api::OnDemand => Some(ONDEMAND_TOKEN_VAR),
            Api::Controller | Api::Platform => Some(CONTROLLER_KEY_VAR),
            Api::Video => Some(VIDEO_SECRET_VAR),
            Api::Inference(_) => Some(INFERENCE_TOKEN_VAR),
            Api::Public(_) => None,
        }
    }

    fn auth(&self, call: &Call) -> Auth {
        let cfg = self.config();
        if let (Api::Public(_), Some((user, password))) = (&call.api, &call.basic_auth) {
            // Guest-set credential headers are refused by an injecting host: it adds them itself.
            return if cfg.host_injects_credentials {
                Auth::Host
            } else {
                Auth::Own(vec![(
                    "authorization".into(),
                    format!("Basic {}", base64(&format!("{user}:{password}"))),
                )])
            };
        }
        let Some(var) = self.credential_var(call) else {
            return Auth::None;
        };
        let own = |k: &str, v: String| Auth::Own(vec![(k.to_owned(), v)]);
        match call.api {
            Api::OnDemand => {
                if let Some((_, value)) = &cfg.ondemand_token {
                    return own("authorization", format!("Bearer {value}"));
                }
            }
            Api::Controller | Api::Platform => {
                if let Some(key) = cfg.own(CONTROLLER_KEY_VAR) {
                    return own("x-api-key", key.to_owned());
                }
            }
            Api::Video => {
                if let (Some(id), Some(secret)) = (&cfg.video_sa_id, cfg.own(VIDEO_SECRET_VAR)) {
                    return Auth::Own(vec![
                        ("x-tva-sa-id".into(), id.clone()),
                        ("x-tva-sa-secret".into(), secret.to_owned()),
                    ]);
                }
            }
            Api::Inference(_) => {
                if let Some(token) = cfg.own(INFERENCE_TOKEN_VAR) {
                    return own("authorization", format!("Bearer {token}"));
                }
                if let (Some(u), Some(p)) =
                    (cfg.own(INFERENCE_USER_VAR), cfg.own(INFERENCE_PASS_VAR))
                {
                    return own(
                        "authorization",
                        format!("Basic {}", base64(&format!("{u}:{p}"))),
                    );
                }
                // A dedicated endpoint may have no auth at all: the host adds it when it has it.
                return if cfg.host_injects_credentials {
                    Auth::Host
                } else {
                    Auth::None
                };
            }
            Api::Public(_) => return Auth::None,
        }
        if cfg.host_injects_credentials && cfg.has(var) {
            Auth::Host
        } else {
            Auth::Missing
        }
    }

    /// The request as it would be sent (credential value included, when ours).
    fn request(&self, call: &Call, auth: &Auth) -> HttpRequest {
        let mut headers = vec![
            ("user-agent".to_owned(), USER_AGENT.to_owned()),
            ("accept".to_owned(), call.accept.to_owned()),
        ];
        let (content_type, body) = match &call.raw_body {
            Some((ct, bytes, _)) => (ct.clone(), Some(bytes.clone())),
            None => (
                "application/json".to_owned(),
                call.body.as_ref().map(|b| b.to_string().into_bytes()),
            ),
        };
        if let Some(body) = &body {
            headers.push(("content-type".into(), content_type));
            // An explicit length: some servers and CDNs refuse chunked request bodies.
            headers.push(("content-length".into(), body.len().to_string()));
        }
        if let Auth::Own(own) = auth {
            headers.extend(own.iter().cloned());
        }
        let timeout = call.timeout_ms.unwrap_or(self.config().timeout_ms);
        HttpRequest {
            method: call.method.to_owned(),
            url: self.url(call),
            headers,
            body,
            timeouts: Timeouts {
                connect_ms: timeout.min(self.config().timeout_ms),
                first_byte_ms: timeout,
                between_bytes_ms: timeout,
            },
        }
    }

    /// What the request would have been, with credentials redacted.
    fn preview(&self, call: &Call, auth: &Auth) -> RequestPreview {
        let request = self.request(call, auth);
        let mut headers: Vec<(String, String)> = request
            .headers
            .into_iter()
            .map(|(k, v)| {
                if is_credential_header(&k) {
                    (k, "[redacted]".to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        if *auth == Auth::Host {
            let name = match call.api {
                Api::Controller | Api::Platform => "x-api-key",
                Api::Video => "x-tva-sa-secret",
                _ => "authorization",
            };
            headers.push((name.into(), "[injected by host]".into()));
        }
        let body = match &call.raw_body {
            Some((_, _, shown)) => Some(shown.clone()),
            None => call.body.as_ref().map(|b| redact_body(b).to_string()),
        };
        RequestPreview {
            method: request.method,
            url: request.url,
            headers,
            body,
        }
    }

    /// Sends the call with retries; returns a 2xx response whose body is not read yet.
    pub fn send(&self, call: &Call) -> Result<HttpResponse> {
        let auth = self.auth(call);
        let read = matches!(call.method, "GET" | "HEAD");
        if self.config().dry_run && !read {
            return Err(ThetaError::DryRun {
                preview: self.preview(call, &auth),
            });
        }
        if auth == Auth::Missing {
            return Err(missing(
                self.credential_var(call).unwrap_or(ONDEMAND_TOKEN_VAR),
            ));
        }
        let request = self.request(call, &auth);
        if let (Some(limit), Some(body)) = (self.config().max_request_bytes, &request.body)
            && body.len() as u64 > limit
        {
            return Err(ThetaError::Denied {
                reason: request_too_big(body.len() as u64, limit, call),
            });
        }
        let attempts = call.retries.unwrap_or(self.config().max_retries) + 1;
        let mut attempt = 1;
        loop {
            let last = attempt >= attempts;
            let (failure, retry_after) = match self.ctx.transport.send(&request) {
                Ok(response) if (200..300).contains(&response.status) => return Ok(response),
                Ok(mut response) => {
                    let status = response.status;
                    let retry_after = response
                        .header("retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    // A short error body: read what we can, a failure here changes nothing.
                    let text = response
                        .read_to_end(64 * 1024)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let mut message = self.scrub(&error_message(&text));
                    if let Some((_, password)) = &call.basic_auth {
                        message = message.replace(password.as_str(), "[redacted]");
                    }
                    if last || !should_retry(call.method, Outcome::Status(status)) {
                        return Err(self.status_error(call, status, message, attempt));
                    }
                    (format!("HTTP {status} {message}"), retry_after)
                }
                Err(e) => {
                    let (failure, outcome, sent) = match e {
                        TransportError::Failed(m) => (m, Outcome::TransportFailure, false),
                        TransportError::AfterSend(m) => (m, Outcome::TransportFailure, true),
                        TransportError::NotSent(m) => (m, Outcome::NotSent, false),
                        other => return Err(self.transport_error(call, &auth, other)),
                    };
                    if last || !should_retry(call.method, outcome) {
                        let after = if sent && !matches!(call.method, "GET" | "HEAD") {
                            SENT_NOTE
                        } else {
                            ""
                        };
                        return Err(ThetaError::transport(format!(
                            "{} {}: {}{after}",
                            call.method,
                            request.url,
                            self.scrub(&failure)
                        )));
                    }
                    (failure, None)
                }
            };
            let mut delay = self.config().backoff_for(attempt);
            if let Some(secs) = retry_after {
                delay = delay.max(secs.saturating_mul(1000)).min(MAX_RETRY_AFTER_MS);
            }
            self.ctx.events.emit(Event::Progress {
                message: format!(
                    "{} {}: {}; retry {attempt} of {} in {delay} ms",
                    call.method,
                    call.path,
                    truncate(&failure, 200),
                    attempts - 1
                ),
                attempt,
            });
            self.ctx.transport.sleep_ms(delay);
            attempt += 1;
        }
    }

    /// Sends the call and returns its JSON answer, without the `{"status","body"}` envelope.
    pub fn json(&self, call: &Call) -> Result<Value> {
        let mut response = self.send(call)?;
        let bytes = response
            .read_to_end(MAX_JSON_BYTES)
            .map_err(|e| self.transport_error(call, &Auth::None, e))?;
        parse_json_body(&bytes)
    }

    /// Maps a transport failure of a body read or a send.
    fn transport_error(&self, call: &Call, auth: &Auth, e: TransportError) -> ThetaError {
        match e {
            TransportError::Timeout(m) => ThetaError::Timeout {
                message: format!("{} {}: {m}", call.method, call.path),
            },
            TransportError::Failed(m) | TransportError::NotSent(m) => {
                ThetaError::transport(self.scrub(&m))
            }
            TransportError::AfterSend(m) if !matches!(call.method, "GET" | "HEAD") => {
                ThetaError::transport(format!("{}{SENT_NOTE}", self.scrub(&m)))
            }
            TransportError::AfterSend(m) => ThetaError::transport(self.scrub(&m)),
            TransportError::Denied(reason) => ThetaError::Denied { reason },
            TransportError::DryRun => ThetaError::DryRun {
                preview: self.preview(call, auth),
            },
            TransportError::MissingCredential { variable, hint } => {
                ThetaError::MissingCredential { variable, hint }
            }
        }
    }

    /// Maps a transport failure while reading a streamed body.
    pub fn body_error(&self, call: &Call, e: TransportError) -> ThetaError {
        self.transport_error(call, &Auth::None, e)
    }

    fn status_error(&self, call: &Call, status: u16, message: String, attempts: u32) -> ThetaError {
        let service = call.service.clone();
        match status {
            401 | 403 if call.api == Api::OnDemand => {
                let variable = self
                    .config()
                    .ondemand_token
                    .as_ref()
                    .map_or(ONDEMAND_TOKEN_VAR, |(v, _)| v.as_str());
                ThetaError::Upstream {
                    status,
                    message: format!(
                        "Theta EdgeCloud refused the credential ({message}); check {variable}: it must be the \
                         on-demand access token from the EdgeCloud dashboard"
                    ),
                    retriable: false,
                }
            }
            401 | 403 => {
                let check = match call.api {
                    Api::Controller | Api::Platform => {
                        "check THETA_EC_API_KEY: it must be an API key of the project THETA_EC_PROJECT_ID (prj_…)"
                    }
                    Api::Video => "check THETA_VIDEO_SA_ID and THETA_VIDEO_SA_SECRET",
                    _ => "check THETA_INFERENCE_AUTH_TOKEN or THETA_INFERENCE_AUTH_USER / _PASS",
                };
                ThetaError::Upstream {
                    status,
                    message: format!("Theta refused the request ({message}); {check}"),
                    retriable: false,
                }
            }
            404 if call.not_found.is_some() => ThetaError::Upstream {
                status,
                message: format!(
                    "{} ({message})",
                    call.not_found.as_deref().unwrap_or_default()
                ),
                retriable: false,
            },
            409 if call.method == "POST" => ThetaError::CapacityExhausted {
                service: service.unwrap_or_else(|| call.path.clone()),
                attempts,
                message,
            },
            _ => ThetaError::Upstream {
                status,
                message,
                retriable: matches!(status, 408 | 425 | 429) || status >= 500,
            },
        }
    }

    /// Removes our own credential from any text we pass on.
    fn scrub(&self, text: &str) -> String {
        let cfg = self.config();
        cfg.ondemand_token
            .iter()
            .chain(cfg.own_secrets.iter())
            .map(|(_, v)| v)
            .filter(|v| v.len() >= 4)
            .fold(text.to_owned(), |t, v| t.replace(v.as_str(), "[redacted]"))
    }
}

fn is_credential_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "authorization"
            | "x-api-key"
            | "x-tva-sa-id"
            | "x-tva-sa-secret"
            | "cookie"
            | "proxy-authorization"
    )
}

/// A body for previews: password-like fields replaced.
fn redact_body(body: &Value) -> Value {
    match body {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let secret = k.contains("password") || k.contains("secret");
                out.insert(
                    k.clone(),
                    if secret {
                        Value::String("[redacted]".into())
                    } else {
                        redact_body(v)
                    },
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Standard base64 with padding (Basic auth from our own environment).
pub fn base64(text: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Parses a JSON body and removes Theta's envelope.
pub fn parse_json_body(bytes: &[u8]) -> Result<Value> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ThetaError::transport(format!(
            "response was not JSON: {e}: {}",
            truncate(&String::from_utf8_lossy(bytes), 200)
        ))
    })?;
    unwrap_envelope(value)
}

/// `{"status":"success","body":X}` → X; `{"status":"error","message":M}` (even with HTTP 200) → an
/// upstream error; anything else is returned as it is (OpenAI-style answers have no envelope).
pub fn unwrap_envelope(value: Value) -> Result<Value> {
    match value.get("status").and_then(Value::as_str) {
        Some("success") if value.get("body").is_some() => {
            let mut value = value;
            Ok(value["body"].take())
        }
        Some("error") => Err(ThetaError::Upstream {
            status: 200,
            message: error_message(&value.to_string()),
            retriable: false,
        }),
        _ => Ok(value),
    }
}

/// Theta's error text: `message`, else `error` (a string or an object with a message), else the raw
/// text; cut to a readable length.
pub fn error_message(text: &str) -> String {
    let from_json = serde_json::from_slice::<Value>(text.as_bytes())
        .ok()
        .and_then(|v| {
            let pick = |v: &Value| -> Option<String> {
                match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                }
            };
            v.get("message")
                .and_then(pick)
                .or_else(|| v.get("error").and_then(pick))
                .or_else(|| v.get("body").and_then(|b| b.get("message")).and_then(pick))
        });
    let text = from_json.unwrap_or_else(|| text.trim().to_owned());
    if text.is_empty() {
        "no error message".into()
    } else {
        truncate(&text, MAX_MESSAGE_CHARS)
    }
}

/// Cuts at a character boundary, marking the cut.
pub fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Percent-encodes one path segment or query value (everything but RFC 3986 unreserved characters).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `limit:` refusal of a request body over the host's limit (docs/host-guest-contract.md).
pub fn request_too_big(size: u64, limit: u64, call: &Call) -> String {
    format!(
        "limit: the request body of {} {} is {size} bytes, over the host's request-size limit of {limit} \
         bytes (max_request_bytes); nothing was sent",
        call.method, call.path
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_table() {
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert!(should_retry("GET", Outcome::Status(s)), "GET {s}");
        }
        for s in [400, 401, 403, 404, 409, 501] {
            assert!(!should_retry("GET", Outcome::Status(s)), "GET {s}");
        }
        assert!(should_retry("GET", Outcome::TransportFailure));
        assert!(should_retry("POST", Outcome::Status(409)));
        assert!(should_retry("POST", Outcome::Status(429)));
        for s in [400, 404, 408, 500, 502, 503, 504] {
            assert!(!should_retry("POST", Outcome::Status(s)), "POST {s}");
        }
        assert!(!should_retry("POST", Outcome::TransportFailure));
    }

    #[test]
    fn envelope_unwrapping() {
        let v: Value = serde_json::from_str(r#"{"status":"success","body":{"a":1}}"#).unwrap();
        assert_eq!(unwrap_envelope(v).unwrap(), serde_json::json!({"a":1}));
        let v: Value = serde_json::from_str(r#"{"id":"chatcmpl","choices":[]}"#).unwrap();
        assert_eq!(unwrap_envelope(v.clone()).unwrap(), v);
        let v: Value =
            serde_json::from_str(r#"{"status":"error","message":"10 minute quota reached"}"#)
                .unwrap();
        match unwrap_envelope(v).unwrap_err() {
            ThetaError::Upstream { message, .. } => assert_eq!(message, "10 minute quota reached"),
            e => panic!("{e}"),
        }
        let e = parse_json_body(b"<html>oops</html>").unwrap_err();
        assert!(
            matches!(e, ThetaError::Transport { ref message } if message.starts_with("response was not JSON")),
            "{e}"
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(r#"{"status":"error","message":"service not found"}"#),
            "service not found"
        );
        assert_eq!(error_message(r#"{"error":"bad"}"#), "bad");
        assert_eq!(error_message(r#"{"error":{"message":"deep"}}"#), "deep");
        assert_eq!(error_message("plain text\n"), "plain text");
        assert_eq!(error_message(""), "no error message");
        let long = "é".repeat(900);
        assert_eq!(error_message(&long).chars().count(), 501);
    }

    #[test]
    fn base64_encodes() {
        assert_eq!(base64("user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64("a"), "YQ==");
        assert_eq!(base64("ab"), "YWI=");
    }

    #[test]
    fn encoding() {
        assert_eq!(encode("flux"), "flux");
        assert_eq!(encode("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
    }
}
