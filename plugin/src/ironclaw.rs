//! The IronClaw build (`--features ironclaw`): the same commands exported as IronClaw's
//! `near:agent/sandboxed-tool` world (0.4.0, wit/deps/near-agent/tool.wit). Only the edges differ from
//! the `theta:edgecloud/plugin` build: HTTP goes through the host's `http-request` import
//! ([`crate::transport::ironclaw_http`]), progress goes to the host's `log`, and the export is one tool
//! whose parameters name the command ([`crate::tool_shim`]). IronClaw injects credentials itself
//! (capabilities file, hosts/ironclaw/theta.capabilities.json), so the plugin never holds a key: it
//! only asks `secret-exists` to fail early with the secret's name. Streaming degrades to one response:
//! the host returns whole bodies, so SSE tokens are parsed after the fact and only the result is sent.

wit_bindgen::generate!({
    path: "../wit/deps/near-agent",
    world: "near:agent/sandboxed-tool",
});

use crate::client::Ctx;
use crate::config::Config;
use crate::error::ThetaError;
use crate::events::{Event, EventSink, LogLevel};
use crate::tool_shim;
use exports::near::agent::tool::{Guest, Request, Response};
use near::agent::host;

struct Tool;
// Native builds exist only for unit tests and clippy; only the wasm build exports.
#[cfg(target_arch = "wasm32")]
export!(Tool);

impl Guest for Tool {
    fn execute(req: Request) -> Response {
        // `req.context` (IronClaw's job context) is not needed: every command is stateless.
        match run(&req.params) {
            Ok(output) => Response {
                output: Some(output),
                error: None,
            },
            Err(e) => Response {
                output: None,
                error: Some(tool_shim::error_text(&e)),
            },
        }
    }

    fn schema() -> String {
        tool_shim::params_schema(&crate::commands::describe()).to_string()
    }

    fn description() -> String {
        tool_shim::description(&crate::commands::describe())
    }
}

fn run(params: &str) -> Result<String, ThetaError> {
    let call = tool_shim::parse_params(params)?;
    // IronClaw gives tools an empty environment; other settings may still come from it (our test host).
    let mut config = Config::load()?;
    config.host_injects_credentials = true;
    config.dry_run |= call.dry_run;
    if call.project_id.is_some() {
        config.project_id = call.project_id.clone();
    }
    if !config.dry_run {
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
