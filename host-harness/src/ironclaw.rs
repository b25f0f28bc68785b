//! A host for IronClaw's `near:agent/sandboxed-tool` world, bound to exactly `near:agent@0.4.1`
//! (wit/deps/near-agent/tool.wit, IronClaw main's file, the only version this host links), so the
//! IronClaw build of the plugin is exercised against the contract IronClaw main loads and under the
//! same rules as the main build: its `http-request` import goes through the same
//! [`crate::hooks::CallOutbound`] (allowlist, public addresses, credentials, dry-run, spend, audit)
//! and answers IronClaw's typed `http-failure`, with `request-sent` telling whether the request left.
//! IronClaw's own host does the same job in production; this one exists to test the artifact.

use crate::config::HostConfig;
use crate::events::{EventCallback, GuestEvent};
use crate::sandbox::{LoadReport, Sandbox, bounded};
use crate::state::CallState;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::path::Path;
use std::time::Duration;
use wasmtime::component::Linker;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/deps/near-agent",
        world: "near:agent/sandboxed-tool@0.4.1",
        imports: { default: async },
        exports: { default: async },
        require_store_data_send: true,
    });
}

pub use generated::exports::near::agent::tool::{ErrorKind, GuestFailure, Request, Response};
use generated::near::agent::host::{self, HttpErrorKind, HttpFailure, HttpResponse, LogLevel};
use generated::{SandboxedTool, SandboxedToolPre};

/// Largest response body handed to the tool (IronClaw caps responses too).
const MAX_BODY: usize = 16 << 20;

pub struct IronclawRuntime {
    sandbox: Sandbox,
    pre: SandboxedToolPre<CallState>,
    load: LoadReport,
}

impl IronclawRuntime {
    pub fn new(config: HostConfig, wasm_path: &Path) -> anyhow::Result<Self> {
        let sandbox = Sandbox::single_tenant(config)?;
        let (component, load) = sandbox.load(wasm_path)?;
        let mut linker: Linker<CallState> = Linker::new(&sandbox.engine);
        // Rust's std on wasm32-wasip2 imports wasi:cli and friends; IronClaw provides them without
        // networking, and so do we: no wasi:http here, the only way out is `http-request`.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        host::add_to_linker::<_, wasmtime::component::HasSelf<CallState>>(&mut linker, |s| s)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not fit IronClaw's near:agent/sandboxed-tool world",
                    wasm_path.display()
                )
            })?;
        let pre = SandboxedToolPre::new(pre).map_err(anyhow::Error::from)?;
        Ok(Self { sandbox, pre, load })
    }

    pub fn load_report(&self) -> &LoadReport {
        &self.load
    }

    async fn instance(
        &self,
        command: &str,
        events: EventCallback,
    ) -> anyhow::Result<(wasmtime::Store<CallState>, SandboxedTool)> {
        let tenant = self.sandbox.tenant(&self.sandbox.config.tenant)?;
        let mut store = self.sandbox.new_store(tenant, command, events);
        let tool = self.pre.instantiate_async(&mut store).await?;
        Ok((store, tool))
    }

    pub async fn schema(&self) -> anyhow::Result<String> {
        let (mut store, tool) = self.instance("schema", std::sync::Arc::new(|_| {})).await?;
        let limits = &self.sandbox.config.limits;
        bounded(limits, tool.near_agent_tool().call_schema(&mut store)).await
    }

    pub async fn description(&self) -> anyhow::Result<String> {
        let (mut store, tool) = self
            .instance("description", std::sync::Arc::new(|_| {}))
            .await?;
        let limits = &self.sandbox.config.limits;
        bounded(limits, tool.near_agent_tool().call_description(&mut store)).await
    }

    /// One `execute` in the one-tool form (no context: the params name the command).
    pub async fn execute(&self, params: &str, events: EventCallback) -> anyhow::Result<Response> {
        self.execute_with_context(params, None, events).await
    }

    /// One `execute` with IronClaw's execute context, e.g. `{"capability_id": "theta.infer"}` (what
    /// IronClaw passes for a tool of an extension package).
    pub async fn execute_with_context(
        &self,
        params: &str,
        context: Option<&str>,
        events: EventCallback,
    ) -> anyhow::Result<Response> {
        // The host reads which command the call runs itself (the context's tool id, else the
        // params' `command`): its route table then allows exactly that command's requests.
        let command = command_of(params, context).unwrap_or("execute");
        let (mut store, tool) = self.instance(command, events).await?;
        let limits = &self.sandbox.config.limits;
        let request = Request {
            params: params.to_owned(),
            context: context.map(str::to_owned),
        };
        bounded(
            limits,
            tool.near_agent_tool().call_execute(&mut store, &request),
        )
        .await
    }

    pub fn audit(&self) -> &crate::audit::AuditSink {
        self.sandbox.audit()
    }
}

impl host::Host for CallState {
    async fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        let message: String = message.chars().take(4096).collect();
        (self.events())(GuestEvent::Log {
            level: Some(level.into()),
            message,
        });
    }

    async fn now_millis(&mut self) -> u64 {
        crate::audit::now_ms() as u64
    }

    async fn workspace_read(&mut self, _path: String) -> Option<String> {
        // No workspace capability: the plugin reads no files.
        None
    }

    async fn http_request(
        &mut self,
        method: String,
        url: String,
        headers_json: String,
        body: Option<Vec<u8>>,
        timeout_ms: Option<u32>,
    ) -> Result<HttpResponse, HttpFailure> {
        let request = build_request(&method, &url, &headers_json, body)
            .map_err(|m| http_failure(HttpErrorKind::Input, "invalid-request", m, false))?;
        let timeout = Duration::from_millis(u64::from(timeout_ms.unwrap_or(30_000)));
        let options = wasmtime_wasi_http::RequestOptions {
            connect_timeout: Some(timeout),
            first_byte_timeout: Some(timeout),
            between_bytes_timeout: Some(timeout),
        };
        let outbound = self.outbound().clone();
        let response = outbound
            .send(request, Some(options))
            .await
            .map_err(send_failure)?;
        let status = response.status().as_u16();
        let headers: serde_json::Map<String, serde_json::Value> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str().ok().map(|v| {
                    (
                        k.as_str().to_owned(),
                        serde_json::Value::String(v.to_owned()),
                    )
                })
            })
            .collect();
        // From here on the request was sent: a failure says so (a paid request may have run).
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                let text = e.to_string();
                match policy_failure(&text) {
                    Some(mut f) => {
                        f.request_sent = true;
                        f
                    }
                    None if text.contains("timeout") || text.contains("Timeout") => http_failure(
                        HttpErrorKind::Executor,
                        "timeout",
                        format!("reading the response timed out: {text}"),
                        true,
                    ),
                    None => http_failure(
                        HttpErrorKind::OperationFailed,
                        "response-read",
                        format!("reading the response failed: {text}"),
                        true,
                    ),
                }
            })?
            .to_bytes();
        if body.len() > MAX_BODY {
            return Err(http_failure(
                HttpErrorKind::OutputTooLarge,
                "response-too-large",
                format!("response larger than {MAX_BODY} bytes"),
                true,
            ));
        }
        Ok(HttpResponse {
            status,
            headers_json: serde_json::Value::Object(headers).to_string(),
            body: body.to_vec(),
        })
    }

    async fn tool_invoke(&mut self, alias: String, _params_json: String) -> Result<String, String> {
        Err(format!(
            "tool-invoke is not granted to this tool (asked for `{alias}`)"
        ))
    }

    async fn secret_exists(&mut self, name: String) -> bool {
        // Existence only, never the value; the host injects it at the HTTP boundary.
        secret_variables(&name)
            .iter()
            .any(|v| self.outbound().credential_configured(v))
    }
}

fn http_failure(
    kind: HttpErrorKind,
    code: &str,
    message: impl Into<String>,
    request_sent: bool,
) -> HttpFailure {
    HttpFailure {
        kind,
        code: Some(code.to_owned()),
        message: Some(message.into()),
        request_sent,
    }
}

/// Our policy boundary's refusals (`theta-policy <kind>...`, docs/host-guest-contract.md): the text
/// travels as the message, the kind and code say what it is; nothing was sent.
fn policy_failure(text: &str) -> Option<HttpFailure> {
    let rest = text.trim().strip_prefix("theta-policy ")?;
    let (kind, code) = if rest.starts_with("missing-credential") {
        (HttpErrorKind::AuthRequired, "missing-credential")
    } else if rest.starts_with("dry-run") {
        (HttpErrorKind::NetworkDenied, "dry-run")
    } else if rest.starts_with("limit") {
        (HttpErrorKind::NetworkDenied, "limit")
    } else {
        (HttpErrorKind::NetworkDenied, "denied")
    };
    Some(http_failure(kind, code, text.trim(), false))
}

/// A failure of the shared send path, as IronClaw's `http-failure`. Refusals, refused connections
/// and failed lookups never left the host; a timeout waiting for the answer and any other
/// connection failure may have reached Theta (`request-sent: true`, as the spend ledger assumes).
fn send_failure(e: wasmtime_wasi_http::Error) -> HttpFailure {
    use wasmtime_wasi_http::Error as E;
    match e {
        E::InternalError(Some(text)) => policy_failure(&text).unwrap_or_else(|| {
            http_failure(HttpErrorKind::OperationFailed, "internal", text, false)
        }),
        E::ConnectionRefused => http_failure(
            HttpErrorKind::OperationFailed,
            "connection-refused",
            "connection refused",
            false,
        ),
        e @ (E::DnsError { .. } | E::DnsTimeout | E::DestinationNotFound) => {
            http_failure(HttpErrorKind::OperationFailed, "dns", e.to_string(), false)
        }
        E::HttpRequestUriInvalid => http_failure(
            HttpErrorKind::Input,
            "invalid-uri",
            "invalid request URI",
            false,
        ),
        // A connect timeout never reached Theta; waiting for the answer may follow a sent request.
        e @ E::ConnectionTimeout => http_failure(
            HttpErrorKind::Executor,
            "timeout",
            format!("connect timed out: {e}"),
            false,
        ),
        e @ (E::ConnectionReadTimeout | E::ConnectionWriteTimeout | E::HttpResponseTimeout) => {
            http_failure(
                HttpErrorKind::Executor,
                "timeout",
                format!("request timed out: {e}"),
                true,
            )
        }
        other => http_failure(
            HttpErrorKind::OperationFailed,
            "connection",
            format!("request failed: {other}"),
            true,
        ),
    }
}

/// Builds the `http::Request` the shared send path expects, refusing malformed input with a message.
fn build_request(
    method: &str,
    url: &str,
    headers_json: &str,
    body: Option<Vec<u8>>,
) -> Result<http::Request<wasmtime_wasi_http::WasiBody>, String> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let headers: serde_json::Map<String, serde_json::Value> = if headers_json.trim().is_empty() {
        Default::default()
    } else {
        serde_json::from_str(headers_json)
            .map_err(|e| format!("headers-json is not a JSON object: {e}"))?
    };
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        if crate::policy::header_forbidden(&name) {
            return Err(format!(
                "header `{name}` may not be set by the tool: the host injects credentials"
            ));
        }
        let value = value
            .as_str()
            .ok_or_else(|| format!("header `{name}` must be a string"))?;
        builder = builder.header(name, value);
    }
    let body = Full::new(Bytes::from(body.unwrap_or_default()))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder
        .body(body)
        .map_err(|e| format!("invalid request: {e}"))
}

/// The configuration variables behind an IronClaw secret name. IronClaw names secrets in lower case
/// (`theta_ondemand_api_token`); our host holds each family's credential under one of its variables.
pub fn secret_variables(secret: &str) -> &'static [&'static str] {
    use crate::credentials::*;
    let upper = secret.trim().to_ascii_uppercase();
    if ONDEMAND_TOKEN_VARS.contains(&upper.as_str()) {
        &ONDEMAND_TOKEN_VARS
    } else if upper == CONTROLLER_KEY_VAR {
        &[CONTROLLER_KEY_VAR]
    } else if [INFERENCE_TOKEN_VAR, INFERENCE_USER_VAR, INFERENCE_PASS_VAR]
        .contains(&upper.as_str())
    {
        &[INFERENCE_TOKEN_VAR, INFERENCE_USER_VAR, INFERENCE_PASS_VAR]
    } else if [VIDEO_ID_VAR, VIDEO_SECRET_VAR].contains(&upper.as_str()) {
        &[VIDEO_SECRET_VAR, VIDEO_ID_VAR]
    } else {
        &[]
    }
}

/// The IronClaw WIT version the `ironclaw` build of the plugin targets and [`IronclawRuntime`] binds
/// (wit/deps/near-agent/tool.wit).
pub const WIT_VERSION: &str = "0.4.1";

/// The command an IronClaw call runs, as the host reads it: the tool id in the context's
/// `capability_id` (`theta.` + the command in snake case), else `command` in the params.
fn command_of(params: &str, context: Option<&str>) -> Option<&'static str> {
    let capability = context
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|v| v.get("capability_id")?.as_str().map(str::to_owned));
    if let Some(id) = capability {
        return crate::policy::routes::commands()
            .into_iter()
            .find(|c| tool_id(c) == id.trim());
    }
    let named = serde_json::from_str::<serde_json::Value>(params)
        .ok()?
        .get("command")?
        .as_str()?
        .trim()
        .to_owned();
    crate::policy::routes::canonical_command(&named)
}

/// IronClaw's tool id of a command: `theta.deployments.listTemplates` → `theta.deployments_list_templates`.
fn tool_id(command: &str) -> String {
    let bare = command.strip_prefix("theta.").unwrap_or(command);
    let mut name = String::with_capacity(bare.len() + 4);
    for ch in bare.chars() {
        match ch {
            '.' | '-' => name.push('_'),
            c if c.is_ascii_uppercase() => {
                if !name.is_empty() && !name.ends_with('_') {
                    name.push('_');
                }
                name.push(c.to_ascii_lowercase());
            }
            c => name.push(c),
        }
    }
    format!("theta.{name}")
}
