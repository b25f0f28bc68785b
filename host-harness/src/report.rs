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
        // The host's effect (its route table), not the plugin's claim about itself.
        "effect": host_effect(&c.name),
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
            crate::text::for_terminal(&c.name),
            host_effect(&c.name),
            crate::text::for_terminal(&c.summary)
        ));
    }
    out
}

/// One line on how the plugin was loaded (`theta-host precompile`).
pub fn load_line(load: &crate::cache::LoadReport) -> String {
    let place = load.cache_file.as_ref().map_or_else(
        || "no cache directory".to_owned(),
        |f| f.display().to_string(),
    );
    let how = if load.from_cache {
        "already compiled for this machine; loaded"
    } else {
        "compiled"
    };
    let rebuilt = load
        .rejected_cache
        .as_ref()
        .map(|why| format!(" (the old cache entry was rebuilt: {why})"))
        .unwrap_or_default();
    format!(
        "{how} in {:.1} ms: {place}{rebuilt}\n",
        load.load_time.as_secs_f64() * 1e3
    )
}

/// A command's effect as the host's route table has it.
fn host_effect(name: &str) -> &'static str {
    crate::policy::routes::command_effect(name).label()
}

/// `theta-host spend`: per tenant, settled, reserved, cap and live leases; or release one open
/// reservation (`release`). Exit 0.
pub async fn spend(
    sandbox: &crate::sandbox::Sandbox,
    json_out: bool,
    release: Option<i64>,
) -> anyhow::Result<u8> {
    use crate::tenant::pricing::micros_to_usd;
    let store = sandbox.store().get().await?;
    if let Some(id) = release {
        let released = store.release_by_id(id).await?;
        println!(
            "reservation {id}: {}",
            if released {
                "released"
            } else {
                "was not open (nothing changed)"
            }
        );
        return Ok(0);
    }
    let mut names = sandbox.tenant_names();
    for (t, _) in store.all_totals().await? {
        if !names.contains(&t) {
            names.push(t);
        }
    }
    names.sort();
    let leases = store.leases(None, true).await?;
    let mut rows = Vec::new();
    for name in &names {
        let totals = store.totals(name).await?;
        let cap = sandbox
            .tenant(name)
            .ok()
            .map(|t| t.policy().spend_cap_micros)
            .filter(|c| *c != u64::MAX);
        let live: Vec<Value> = leases
            .iter()
            .filter(|l| &l.tenant == name)
            .map(|l| {
                json!({
                    "lease": l.id,
                    "state": l.state.as_str(),
                    "deployment": match (&l.shard, &l.suffix) {
                        (Some(a), Some(b)) => Value::String(format!("{a}/{b}")),
                        _ => Value::Null,
                    },
                    "project": l.project,
                    "vm_type": l.vm_type,
                    "hourly_usd": micros_to_usd(l.hourly_micros),
                    "disposable": l.disposable,
                    "expires_unix_ms": l.expires_at_unix_ms,
                })
            })
            .collect();
        let open: Vec<Value> = store
            .open_reservations(Some(name))
            .await?
            .into_iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "usd": micros_to_usd(r.micros),
                    "what": crate::text::for_terminal(&r.what),
                    "host": r.host_id,
                    "created_unix_ms": r.created_at_unix_ms,
                })
            })
            .collect();
        rows.push(json!({
            "tenant": name,
            "open": open,
            "spent_usd": micros_to_usd(totals.settled_micros),
            "reserved_usd": micros_to_usd(totals.reserved_micros),
            "open_reservations": totals.open_count,
            "cap_usd": cap.map(micros_to_usd),
            "leases": live,
        }));
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"store": sandbox.store().describe(), "tenants": rows})
            )?
        );
        return Ok(0);
    }
    println!("store: {}", sandbox.store().describe());
    println!(
        "{:<24}  {:>10}  {:>10}  {:>10}  LEASES",
        "TENANT", "SPENT", "RESERVED", "CAP"
    );
    for r in &rows {
        let cap = r["cap_usd"]
            .as_f64()
            .map_or("none".to_owned(), |c| format!("${c:.4}"));
        println!(
            "{:<24}  {:>10}  {:>10}  {:>10}  {}",
            crate::text::for_terminal(r["tenant"].as_str().unwrap_or("")),
            format!("${:.4}", r["spent_usd"].as_f64().unwrap_or(0.0)),
            format!("${:.4}", r["reserved_usd"].as_f64().unwrap_or(0.0)),
            cap,
            r["leases"].as_array().map_or(0, Vec::len)
        );
        for o in r["open"].as_array().into_iter().flatten() {
            println!(
                "    open reservation {} ${:.4} {} (host {}): release with `theta-host spend --release {}` once that host is gone",
                o["id"],
                o["usd"].as_f64().unwrap_or(0.0),
                o["what"].as_str().unwrap_or(""),
                crate::text::for_terminal(o["host"].as_str().unwrap_or("")),
                o["id"]
            );
        }
        for l in r["leases"].as_array().into_iter().flatten() {
            println!(
                "    lease {} {} {} on {} at ${:.2}/h, expires {}{}",
                l["lease"],
                l["state"].as_str().unwrap_or(""),
                l["deployment"]
                    .as_str()
                    .unwrap_or("(deployment not yet known)"),
                l["vm_type"].as_str().unwrap_or(""),
                l["hourly_usd"].as_f64().unwrap_or(0.0),
                l["expires_unix_ms"]
                    .as_i64()
                    .map(|ms| format!("in {} s", (ms - crate::audit::now_ms() as i64) / 1000))
                    .unwrap_or_else(|| "never".into()),
                if l["disposable"].as_bool() == Some(true) {
                    " (disposable)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(0)
}
