//! The IronClaw build (`--features ironclaw`): the same commands exported as IronClaw's
//! `near:agent/sandboxed-tool` world, exactly `near:agent@0.4.1` (wit/deps/near-agent/tool.wit is
//! IronClaw main's file). Only the edges differ from the `theta:edgecloud/plugin` build: HTTP goes
//! through the host's `http-request` import ([`crate::transport::ironclaw_http`], typed
//! `http-failure`), progress goes to the host's `log`, and errors are IronClaw's `guest-failure`
//! ([`tool_shim::failure`]). One component serves every command: IronClaw's extension package
//! (hosts/ironclaw/manifest.toml) declares one tool per command, and `execute` dispatches on the
//! `capability_id` of its context; without one, the params name the command (the one-tool form of
//! `schema()` / `description()`). IronClaw injects credentials itself, so the plugin never holds a key:
//! it only asks `secret-exists` to fail early with the secret's name. Streaming degrades to one
//! response: the host returns whole bodies, so SSE tokens are parsed after the fact.

wit_bindgen::generate!({
    path: "../wit/deps/near-agent",
    world: "near:agent/sandboxed-tool@0.4.1",
});

use crate::client::Ctx;
use crate::config::Config;
use crate::error::ThetaError;
use crate::events::{Event, EventSink, LogLevel};
use crate::tool_shim::{self, FailureKind, ToolCall};
use exports::near::agent::tool::{ErrorKind, Guest, GuestFailure, Request, Response};
use near::agent::host;

struct Tool;
// Native builds exist only for unit tests and clippy; only the wasm build exports.
#[cfg(target_arch = "wasm32")]
export!(Tool);

impl Guest for Tool {
    fn execute(req: Request) -> Response {
        let (call, per_tool) = match parse(&req) {
            Ok(parsed) => parsed,
            Err(e) => return failure(&e),
        };
        match run(&call, per_tool) {
            Ok(output) => Response::Success(output),
            // A preview the caller asked for is the answer, not a failure (same JSON as the error).
            Err(e @ ThetaError::DryRun { .. }) if call.dry_run => Response::Success(e.to_json()),
            Err(e) => failure(&e),
        }
    }

    fn schema() -> String {
        tool_shim::params_schema(&crate::commands::describe()).to_string()
    }

    fn description() -> String {
        tool_shim::description(&crate::commands::describe())
    }
}

fn failure(e: &ThetaError) -> Response {
    let f = tool_shim::failure(e);
    Response::Failure(GuestFailure {
        kind: match f.kind {
            FailureKind::AuthRequired => ErrorKind::AuthRequired,
            FailureKind::Input => ErrorKind::Input,
            FailureKind::OutputTooLarge => ErrorKind::OutputTooLarge,
            FailureKind::Executor => ErrorKind::Executor,
            FailureKind::NetworkDenied => ErrorKind::NetworkDenied,
            FailureKind::Client => ErrorKind::Client,
            FailureKind::OperationFailed => ErrorKind::OperationFailed,
        },
        code: Some(f.code),
        message: Some(f.message),
    })
}

/// The call: the command is the one the context's `capability_id` names (IronClaw's per-tool
/// dispatch, params = that command's arguments; `true`), else the one the params name.
fn parse(req: &Request) -> Result<(ToolCall, bool), ThetaError> {
    match tool_shim::capability_id(req.context.as_deref())? {
        Some(id) => {
            let commands = crate::commands::describe();
            let info = tool_shim::command_for_tool(&commands, &id)
                .and_then(|name| commands.iter().find(|c| c.name == name))
                .ok_or_else(|| {
                    ThetaError::invalid(
                        "context.capability_id",
                        format!(
                            "`{id}` is not a tool of this extension; one of: {}",
                            commands
                                .iter()
                                .map(|c| tool_shim::tool_id(&c.name))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
            Ok((tool_shim::parse_tool_params(info, &req.params)?, true))
        }
        None => Ok((tool_shim::parse_params(&req.params)?, false)),
    }
}

/// Runs the call. A per-command tool of the extension package has its credentials declared in the
/// manifest, and the host answers `auth-required` for a missing one before sending anything, so it
/// is not asked first; the one-tool form asks `secret-exists` to fail early with the secret's name.
fn run(call: &ToolCall, per_tool: bool) -> Result<String, ThetaError> {
    // IronClaw gives tools an empty environment; other settings may still come from it (our test host).
    let mut config = Config::load()?;
    config.host_injects_credentials = true;
    config.dry_run |= call.dry_run;
    if call.project_id.is_some() {
        config.project_id = call.project_id.clone();
    }
    if call.endpoint.is_some() {
        config.inference_endpoint = call.endpoint.clone();
    }
    if !config.dry_run && !per_tool {
        check_secrets(&call.command, &config)?;
    }
    let ctx = Ctx {
        config: &config,
        transport: &crate::transport::ironclaw_http::HostHttp,
        events: &HostLog,
    };
    crate::commands::invoke(&ctx, &call.command, &call.args_json)
}

/// Fails with the secret's name when a command needs a credential the host does not hold (IronClaw would
/// otherwise send the request without it and Theta would answer 401).
fn check_secrets(command: &str, config: &Config) -> Result<(), ThetaError> {
    if config.ondemand_token.is_some() {
        return Ok(());
    }
    let Some(canonical) = crate::commands::canonical_name(command) else {
        return Ok(()); // `invoke` names the valid commands.
    };
    let Some(info) = crate::commands::describe()
        .into_iter()
        .find(|c| c.name == canonical)
    else {
        return Ok(());
    };
    match info
        .credentials
        .iter()
        .filter(|v| tool_shim::SECRET_VARIABLES.contains(&v.as_str()))
        .find(|v| !host::secret_exists(&tool_shim::secret_name(v)))
    {
        Some(variable) => Err(tool_shim::missing_secret(variable)),
        None => Ok(()),
    }
}

/// Progress and log events go to the host's `log` (IronClaw shows them after the call). Streamed
/// tokens are not logged: the whole answer is in the result.
struct HostLog;

impl EventSink for HostLog {
    fn emit(&self, event: Event) {
        let (level, message) = match event {
            Event::Token { .. } | Event::Reasoning { .. } => return,
            Event::Progress { message, .. } => (host::LogLevel::Info, message),
            Event::Log { level, message } => (
                match level {
                    LogLevel::Info => host::LogLevel::Info,
                    LogLevel::Warn => host::LogLevel::Warn,
                    LogLevel::Debug => host::LogLevel::Debug,
                },
                message,
            ),
        };
        host::log(level, &message);
    }
}
