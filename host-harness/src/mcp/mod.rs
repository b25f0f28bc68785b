//! `theta-host mcp`: every command of the sandboxed plugin as a Model Context Protocol tool, over stdio,
//! built on `rmcp` (the official Rust MCP SDK). `theta-host serve` serves the same handler over
//! streamable HTTP to many tenants, each signed in with its own bearer token ([`http`], [`auth`]).
//!
//! - `tools/list`: one tool per command of `describe()` in the `--tools` selection ([`presets`]) that
//!   the host's tenant is granted (the check the runtime applies before a call), with the command's
//!   JSON Schema, flat (no top-level combinator, no `$schema`), and hints from its effect ([`tools`]).
//!   Tools are named by names that model APIs accept (`theta_ondemand_chat`), or with
//!   `--tool-names exact` after their commands ([`names`]).
//! - `tools/call`: runs the command in a fresh sandboxed store through [`Runtime::invoke`], under the
//!   host's policy and tenant (the same flags as `theta-host call`). The official on-demand server's four
//!   tool names answer in that server's format ([`official`]).
//! - Progress: with a `progressToken`, streamed tokens, poll/retry progress and, for `infer` with a
//!   `wait`, the wait itself are sent as `notifications/progress` ([`progress`]).
//! - Tenant: under stdio, the host's `--tenant`; over HTTP, the tenant whose token the request carries
//!   (every request is authenticated; the tools listed and the policy a call runs under are its).
//! - Transport: stdio lines are checked before the SDK sees them, so an unparseable line gets `-32700`
//!   and an invalid `tools/call` `-32602` ([`jsonrpc`]).
//! - Cancellation: `notifications/cancelled` drops the call's future, which drops the wasmtime store and
//!   its guest (and the guest's outbound requests) at the next yield point.
//! - Errors are tool results with `isError: true`: `Error: <kind>: <message>` (and the error as JSON in
//!   `structuredContent`, except for the official four without `--structured-content`). Nothing a
//!   call does brings the server down.

pub mod auth;
pub mod http;
pub mod jsonrpc;
pub mod names;
pub mod official;
pub mod presets;
pub mod progress;
pub mod tools;

pub use names::ToolNames;
pub use presets::ToolSet;

/// How `theta-host mcp` serves the plugin.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Tool names (`--tool-names`, default safe).
    pub names: ToolNames,
    /// Which commands are tools (`--tools`, default all).
    pub tools: ToolSet,
    /// The plugin's JSON as `structuredContent` for the official four too (`--structured-content`).
    pub structured: bool,
}

use crate::bindings::{CommandInfo, ThetaError};
use crate::report;
use crate::runtime::Runtime;
use auth::Authenticated;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    InitializeRequestParams, InitializeResult, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The server's instructions, naming only the tools offered (`tool` gives a command's tool name if the
/// tenant may run it).
fn instructions(tool: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::from(
        "Theta EdgeCloud (on-demand AI models: chat, image, vision, audio, video) through a sandboxed \
         WebAssembly plugin.",
    );
    if let Some(t) = tool("list_services") {
        out.push_str(&format!(" Start with {t}."));
    }
    if let Some(t) = tool("infer") {
        out.push_str(&format!(" {t} runs a model (paid"));
        if let Some(status) = tool("get_request_status") {
            out.push_str(&format!(
                "; wait 0 returns a request id to poll with {status}"
            ));
        }
        out.push_str(").");
    }
    if let Some(t) = tool("get_upload_url") {
        out.push_str(&format!(
            " {t} gives presigned upload URLs for file inputs."
        ));
    }
    if let Some(t) = tool("theta.ondemand.chat") {
        out.push_str(&format!(
            " {t} chats with an LLM and streams its tokens as progress notifications."
        ));
    }
    if let Some(t) = tool("theta.route") {
        out.push_str(&format!(
            " To cut cost, ask {t} which service does a kind of work (chat, vision, transcription, ...) and what \
             the host reserves per call."
        ));
    }
    out.push_str(
        " Routing rule: on-demand services and the video API are the production default (paid per request); \
         dedicated deployments bill hourly until deleted and need readiness retries while they warm up.",
    );
    out.push_str(
        " Only the tools this tenant may run are listed. Credentials stay in the host; the host may \
         run in dry-run, in which case paid and mutating tools return a preview of the request instead of \
         sending it.",
    );
    out
}

/// One command and its tool.
struct Entry {
    command: String,
    tool: Tool,
}

/// Whose tools a request sees and whose policy its call runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tenancy {
    /// The host's tenant (`--tenant`): stdio, one client.
    Host,
    /// The tenant the request authenticated as ([`Authenticated`] in its HTTP parts, put there by
    /// [`http`]). A request without one is refused, never run as the host's tenant.
    PerRequest,
}

/// The MCP server: the runtime and the tools derived from its `describe()`.
#[derive(Clone)]
pub struct ThetaMcp {
    runtime: Arc<Runtime>,
    /// Every command the plugin describes, granted or not, with its tool.
    entries: Arc<Vec<Entry>>,
    tenancy: Tenancy,
    structured: bool,
    /// Every tool call holds a token of this tracker while it runs (graceful shutdown waits for them).
    calls: TaskTracker,
    /// Set when shutting down: new calls are refused.
    draining: CancellationToken,
    /// Set when the shutdown grace is over: running calls are cancelled (their stores dropped).
    stop: CancellationToken,
}

impl ThetaMcp {
    /// Reads the plugin's commands once and names their tools; fails if two commands would get the same
    /// tool name. The tool list does not change while the server runs.
    pub async fn new(runtime: Runtime, options: Options) -> anyhow::Result<Self> {
        Self::shared(Arc::new(runtime), options, Tenancy::Host).await
    }

    /// A server over a runtime others share (every HTTP session gets a clone of one server).
    pub async fn shared(
        runtime: Arc<Runtime>,
        options: Options,
        tenancy: Tenancy,
    ) -> anyhow::Result<Self> {
        let commands: Vec<CommandInfo> = runtime
            .describe()
            .await?
            .into_iter()
            .filter(|c| options.tools.includes(&c.name))
            .collect();
        let tool_names =
            names::tool_names(commands.iter().map(|c| c.name.as_str()), options.names)?;
        let entries: Vec<Entry> = commands
            .iter()
            .zip(tool_names)
            .map(|(command, name)| {
                let mut tool = tools::tool(command);
                tool.name = name.into();
                Entry {
                    command: command.name.clone(),
                    tool,
                }
            })
            .collect();
        Ok(Self {
            runtime,
            entries: Arc::new(entries),
            tenancy,
            structured: options.structured,
            calls: TaskTracker::new(),
            draining: CancellationToken::new(),
            stop: CancellationToken::new(),
        })
    }

    /// The server's instructions for `tenant`, naming only its tools.
    fn instructions_for(&self, tenant: &str) -> String {
        instructions(|command| {
            self.offered(tenant)
                .find(|e| e.command == command)
                .map(|e| e.tool.name.to_string())
        })
    }

    /// The tenant a request is served as; `None` for an HTTP request that did not authenticate.
    fn tenant_of<'a>(&'a self, extensions: &'a rmcp::model::Extensions) -> Option<&'a str> {
        match self.tenancy {
            Tenancy::Host => Some(self.runtime.config().tenant.as_str()),
            Tenancy::PerRequest => extensions
                .get::<::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Authenticated>())
                .map(|a| a.0.as_str()),
        }
    }

    fn tenant_or_refuse<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
    ) -> Result<&'a str, ErrorData> {
        self.tenant_of(&context.extensions).ok_or_else(|| {
            ErrorData::invalid_request("the request is not authenticated as a tenant", None)
        })
    }

    /// The entries of the commands `tenant` may run: the same check the runtime applies before a
    /// call, so no tool is offered that would be denied.
    fn offered<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a Entry> {
        self.entries
            .iter()
            .filter(move |e| self.runtime.is_granted(tenant, &e.command))
    }

    /// The tools offered to the host's tenant in `tools/list`.
    pub fn tools(&self) -> Vec<Tool> {
        self.tools_for(&self.runtime.config().tenant)
    }

    /// The tools offered to `tenant`.
    pub fn tools_for(&self, tenant: &str) -> Vec<Tool> {
        self.offered(tenant).map(|e| e.tool.clone()).collect()
    }

    /// Stops taking calls; running ones go on.
    pub fn drain(&self) {
        self.draining.cancel();
        self.calls.close();
    }

    /// Waits until no call runs, at most `limit`. True if none does.
    pub async fn calls_finished(&self, limit: std::time::Duration) -> bool {
        self.calls.close();
        tokio::time::timeout(limit, self.calls.wait()).await.is_ok()
    }

    /// How many calls are running.
    pub fn calls_running(&self) -> usize {
        self.calls.len()
    }

    /// Cancels every running call, as a client's `notifications/cancelled` would.
    pub fn cancel_calls(&self) {
        self.stop.cancel();
    }

    /// Runs one tool call to its result, or to cancellation. A command the tenant is not granted still
    /// reaches the runtime, which answers `denied`.
    async fn call(
        &self,
        tenant: &str,
        tool: &str,
        args: Value,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let _running = self.calls.token();
        if self.draining.is_cancelled() {
            let mut r = CallToolResult::error(vec![ContentBlock::text(
                "Error: unavailable: the server is shutting down; retry on another instance or after its restart",
            )]);
            if self.structured {
                r.structured_content = Some(json!({"error": {"kind": "unavailable"}}));
            }
            return r;
        }
        let Some(entry) = self.entries.iter().find(|e| e.tool.name == tool) else {
            let known: Vec<&str> = self.offered(tenant).map(|e| e.tool.name.as_ref()).collect();
            return error_result(
                &ThetaError::InvalidArgument(
                    crate::bindings::exports::theta::edgecloud::types::InvalidArgument {
                        field: "name".into(),
                        reason: format!(
                            "unknown tool `{tool}`; the tools are: {}",
                            known.join(", ")
                        ),
                    },
                ),
                true,
                &[],
            );
        };
        let name = entry.command.as_str();
        let mut args = args;
        let known: Vec<&str> = entry
            .tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let after = official::adapt_args(name, &mut args, &known);
        let structured = self.structured || !official::is_official(name);
        let (events, forwarder) = progress::Forwarder::start(
            context.peer.clone(),
            context.meta.get_progress_token(),
            name,
        );
        // `infer` holds the call while Theta waits for the result: say so, and keep saying so.
        let heartbeat = (name == "infer" && context.meta.get_progress_token().is_some())
            .then(|| progress::wait_heartbeat(events.clone(), &args));
        let args_json = args.to_string();
        let outcome = {
            // Dropping this future (on cancellation) drops the call's store: the guest stops, its
            // outbound requests are aborted, and the tenant's call slot is released.
            let call = self.runtime.invoke_as(tenant, name, &args_json, events);
            tokio::select! {
                outcome = call => Some(outcome),
                () = context.ct.cancelled() => None,
                () = self.stop.cancelled() => None,
            }
        };
        if let Some(h) = heartbeat {
            h.abort();
            let _ = h.await;
        }
        forwarder.finish().await;
        let notes = official::notes_text(&after.notes);
        match outcome {
            None => {
                let by = if self.stop.is_cancelled() {
                    "the server's shutdown"
                } else {
                    "the client"
                };
                tracing::info!(
                    tool = name,
                    tenant,
                    "call cancelled by {by}; the plugin was stopped"
                );
                let mut r = CallToolResult::error(vec![ContentBlock::text(format!(
                    "Error: cancelled: {by} cancelled the call; the plugin was stopped"
                ))]);
                if structured {
                    r.structured_content = Some(json!({"error": {"kind": "cancelled"}}));
                }
                r
            }
            Some(Ok(Ok(result))) => success_result(name, &args, &result, &after, structured),
            Some(Ok(Err(err))) => error_result(&err, structured, &after.notes),
            Some(Err(host)) => {
                // A host-side failure of this one call (wall clock, CPU budget, trap): still a tool result.
                let message = format!("{host:#}");
                let mut r = CallToolResult::error(vec![ContentBlock::text(format!(
                    "Error: host: {message}{notes}"
                ))]);
                if structured {
                    r.structured_content =
                        Some(json!({"error": {"kind": "host", "reason": message}}));
                }
                r
            }
        }
    }
}

/// A successful result: the official format for the official four tools, pretty JSON otherwise; the
/// plugin's JSON as structured content (an object, as MCP requires) when `structured`.
fn success_result(
    name: &str,
    args: &Value,
    result: &str,
    after: &official::After,
    structured: bool,
) -> CallToolResult {
    let value: Value =
        serde_json::from_str(result).unwrap_or_else(|_| Value::String(result.to_owned()));
    let (text, content) = match official::render(name, args, &value, after) {
        Some(rendered) => rendered,
        None => {
            let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| result.to_owned());
            let content = match value {
                Value::Object(_) => value,
                other => json!({ "result": other }),
            };
            (text, content)
        }
    };
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    if structured {
        r.structured_content = Some(content);
    }
    r
}

/// The plugin's error as a tool error: its kind and actionable message (and any notes on the
/// arguments), and the error as JSON when `structured`.
pub fn error_result(err: &ThetaError, structured: bool, notes: &[String]) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!(
        "Error: {}: {}{}",
        report::error_kind(err),
        report::error_text(err),
        official::notes_text(notes)
    ))]);
    if structured {
        r.structured_content = Some(json!({ "error": report::error_json(err) }));
    }
    r
}

impl ServerHandler for ThetaMcp {
    fn get_info(&self) -> ServerConfig {
        let info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("theta-host", env!("CARGO_PKG_VERSION")));
        match self.tenancy {
            Tenancy::Host => {
                info.with_instructions(self.instructions_for(&self.runtime.config().tenant))
            }
            // Named per tenant in `initialize`; without one (a stateless `server/discover`), none.
            Tenancy::PerRequest => info.with_instructions(instructions(|_| None)),
        }
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let tenant = self.tenant_or_refuse(&context)?.to_owned();
        context.peer.set_peer_info(request.clone());
        let mut info = self.negotiate_initialize(&request)?;
        info.instructions = Some(self.instructions_for(&tenant));
        Ok(info)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tenant = self.tenant_or_refuse(&context)?;
        Ok(ListToolsResult::with_all_items(self.tools_for(tenant)))
    }

    /// The tool's schema, for rmcp's checks of a request's headers: over HTTP it is asked without
    /// the request's tenant, so every tool answers (the call itself is checked against the grants).
    fn get_tool(&self, name: &str) -> Option<Tool> {
        let tenant = &self.runtime.config().tenant;
        self.entries
            .iter()
            .filter(|e| {
                self.tenancy == Tenancy::PerRequest || self.runtime.is_granted(tenant, &e.command)
            })
            .find(|e| e.tool.name == name)
            .map(|e| e.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tenant = self.tenant_or_refuse(&context)?.to_owned();
        let args = tools::arguments(request.arguments);
        Ok(self
            .call(&tenant, &request.name, args, context)
            .await
            .into())
    }
}

/// Serves the runtime's commands over stdin/stdout until the client disconnects. Logs go to stderr;
/// stdout carries only the protocol.
pub async fn serve_stdio(runtime: Runtime, options: Options) -> anyhow::Result<()> {
    let server = ThetaMcp::new(runtime, options).await?;
    tracing::info!(
        tools = server.tools().len(),
        of = server.entries.len(),
        "MCP server ready on stdio"
    );
    let stdio = jsonrpc::checked_stdio();
    let running = server
        .serve((stdio.reader, stdio.writer))
        .await
        .map_err(|e| anyhow::anyhow!("MCP initialization failed: {e}"))?;
    running.waiting().await?;
    jsonrpc::drain(stdio.done).await;
    // A call cancelled just before the client left may still be releasing its slot and holds.
    crate::background::drain(std::time::Duration::from_secs(5)).await;
    Ok(())
}
