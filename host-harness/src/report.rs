//! Human and JSON renderings of plugin results and errors, shared by the CLI (and later the MCP server).

use crate::bindings::{CommandInfo, Effect, ThetaError};
use serde_json::{Value, json};

pub fn effect_label(effect: Effect) -> &'static str {
    match effect {
        Effect::Read => "read",
        Effect::Mutate => "mutate",
        Effect::Spend => "spend",
    }
}

/// The error as JSON: `{"kind": ..., ...fields}`.
pub fn error_json(err: &ThetaError) -> Value {
    match err {
        ThetaError::InvalidArgument(a) => {
            json!({"kind": "invalid-argument", "field": a.field, "reason": a.reason})
        }
        ThetaError::MissingCredential(m) => {
            json!({"kind": "missing-credential", "variable": m.variable, "hint": m.hint})
        }
        ThetaError::Denied(why) => match limit_reason(why) {
            Some(reason) => json!({"kind": "limit", "reason": reason}),
            None => json!({"kind": "denied", "reason": why}),
        },
        ThetaError::DryRun(p) => json!({
            "kind": "dry-run",
            "request": {
                "method": p.method,
                "url": p.url,
                "headers": p.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                "body": p.body.as_deref().map(|b| serde_json::from_str::<Value>(b).unwrap_or_else(|_| Value::String(b.to_owned()))),
            }
        }),
        ThetaError::Upstream(u) => json!({
            "kind": "upstream", "status": u.status, "message": u.message, "retriable": u.retriable
        }),
        ThetaError::CapacityExhausted(c) => json!({
            "kind": "capacity-exhausted", "service": c.service, "attempts": c.attempts,
            "message": c.message, "retriable": true
        }),
        ThetaError::Timeout(why) => json!({"kind": "timeout", "reason": why}),
        ThetaError::Transport(why) => json!({"kind": "transport", "reason": why}),
    }
}

/// A refusal for a limit (request size, count, rate, spend) comes as `denied` with a `limit: ` prefix
/// (docs/host-guest-contract.md); it is reported as its own kind, `limit`.
pub fn limit_reason(why: &str) -> Option<&str> {
    why.strip_prefix("limit: ")
        .or_else(|| why.strip_prefix("limit:"))
}

/// Short kind label of an error.
pub fn error_kind(err: &ThetaError) -> &'static str {
    match err {
        ThetaError::InvalidArgument(_) => "invalid-argument",
        ThetaError::MissingCredential(_) => "missing-credential",
        ThetaError::Denied(why) if limit_reason(why).is_some() => "limit",
        ThetaError::Denied(_) => "denied",
        ThetaError::DryRun(_) => "dry-run",
        ThetaError::Upstream(_) => "upstream",
        ThetaError::CapacityExhausted(_) => "capacity-exhausted",
        ThetaError::Timeout(_) => "timeout",
        ThetaError::Transport(_) => "transport",
    }
}

/// One line a person can act on.
pub fn error_text(err: &ThetaError) -> String {
    match err {
        ThetaError::InvalidArgument(a) => format!("invalid argument `{}`: {}", a.field, a.reason),
        ThetaError::MissingCredential(m) => {
            format!("missing credential {}: {}", m.variable, m.hint)
        }
        ThetaError::Denied(why) => match limit_reason(why) {
            Some(reason) => format!("over a limit of the host: {reason}"),
            None => format!("denied by policy: {why}"),
        },
        ThetaError::DryRun(p) => format!(
            "dry-run: nothing was sent; the plugin would have sent {} {}",
            p.method, p.url
        ),
        ThetaError::Upstream(u) => format!(
            "Theta EdgeCloud answered HTTP {}: {}{}",
            u.status,
            u.message,
            if u.retriable { " (retriable)" } else { "" }
        ),
        ThetaError::CapacityExhausted(c) => format!(
            "no capacity for `{}` after {} attempts: {} (retriable: try again later)",
            c.service, c.attempts, c.message
        ),
        ThetaError::Timeout(why) => format!("timed out: {why}"),
        ThetaError::Transport(why) => format!("transport error: {why}"),
    }
}

pub fn command_json(c: &CommandInfo) -> Value {
    json!({
        "name": c.name,
        "summary": c.summary,
        "effect": effect_label(c.effect),
        "credentials": c.credentials,
        "args_schema": serde_json::from_str::<Value>(&c.args_schema).unwrap_or(Value::Null),
    })
}

/// A plain-text table of commands.
pub fn commands_table(commands: &[CommandInfo]) -> String {
    let width = commands
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(7);
    let mut out = format!("{:<width$}  {:<6}  SUMMARY\n", "COMMAND", "EFFECT");
    for c in commands {
        out.push_str(&format!(
            "{:<width$}  {:<6}  {}\n",
            c.name,
            effect_label(c.effect),
            c.summary
        ));
    }
    out
}
