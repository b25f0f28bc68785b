//! `theta-host demo`: a short session against the embedded FAKE EdgeCloud on loopback. No keys, no
//! network, no cost: it shows the sandbox, the policy and the commands working end to end.

use crate::credentials::{Credential, Credentials, Family, Injection, Secret};
use crate::events::GuestEvent;
use crate::net::Upstream;
use crate::{HostConfig, Runtime, report};
use fake_edgecloud::{FakeConfig, FakeEdgeCloud};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub async fn run(mut cfg: HostConfig, plugin: &Path) -> anyhow::Result<u8> {
    let fake_cfg = FakeConfig::default();
    let demo_token = fake_cfg.ondemand_token.clone();
    let fake = FakeEdgeCloud::start(fake_cfg).await?;
    println!("== DEMO: the plugin runs sandboxed in this host against a FAKE Theta EdgeCloud ==");
    println!(
        "   fake server: {} (loopback). No real keys are used and nothing leaves this machine.",
        fake.base_url()
    );
    println!("   plugin: {}\n", plugin.display());

    // Only the fake's demo token; real keys from the environment are never sent to the fake.
    let mut creds = Credentials::default();
    creds.insert(
        Family::OnDemand,
        Credential {
            variable: "THETA_ONDEMAND_API_TOKEN",
            injection: Injection::Bearer(Secret::new(demo_token)),
        },
    );
    cfg.credentials = creds;
    cfg.upstream = Upstream::TestServer(fake.addr());
    cfg.passthrough
        .retain(|(k, _)| k.starts_with("THETA_HTTP_"));

    let rt = Runtime::new(cfg.clone(), plugin).await?;
    let load = rt.load_report();
    println!(
        "loaded the component in {:.1} ms ({})",
        load.load_time.as_secs_f64() * 1e3,
        if load.from_cache {
            "precompiled, from cache"
        } else {
            "compiled; cached for next time"
        }
    );
    let commands = rt.describe().await?;
    println!(
        "{} commands available:\n{}",
        commands.len(),
        report::commands_table(&commands)
    );

    step("theta-host call list_services --args '{\"category\":\"text\"}'");
    if let Some(v) = call(&rt, "list_services", r#"{"category":"text"}"#).await? {
        let services = v.as_array().cloned().unwrap_or_default();
        for s in &services {
            println!(
                "  {:<16} {}",
                s["alias"].as_str().unwrap_or("?"),
                s["name"].as_str().unwrap_or("")
            );
        }
    }

    step(
        "theta-host call theta.ondemand.chat  (qwen3, SSE streaming; tokens appear as they arrive)",
    );
    print!("  assistant: ");
    let _ = std::io::stdout().flush();
    if let Some(v) = call(
        &rt,
        "theta.ondemand.chat",
        r#"{"messages":[{"role":"user","content":"Say hello to Theta EdgeCloud"}]}"#,
    )
    .await?
    {
        println!(
            "\n  finish_reason: {}, usage: {}",
            v["finish_reason"],
            v.get("usage").cloned().unwrap_or(Value::Null)
        );
    }

    step(
        "theta-host call infer --args '{\"service\":\"flux\",\"input\":{\"prompt\":\"a blue cloud\"},\"wait\":0}'",
    );
    if let Some(v) = call(
        &rt,
        "infer",
        r#"{"service":"flux","input":{"prompt":"a blue cloud"},"wait":0}"#,
    )
    .await?
    {
        let id = v["id"].as_str().unwrap_or_default().to_owned();
        println!("  request {id}: {}", v["state"]);
        for _ in 0..5 {
            let args = serde_json::json!({ "request_id": id }).to_string();
            let Some(s) = call(&rt, "get_request_status", &args).await? else {
                break;
            };
            println!(
                "  poll: {} {}",
                s["state"],
                s.get("output").cloned().unwrap_or(Value::Null)
            );
            if s["state"] == "success" || s["state"] == "error" {
                break;
            }
        }
    }

    step(
        "theta-host --dry-run call infer ...  (paid: refused at the host, the plugin shows the request)",
    );
    let mut dry = cfg.clone();
    dry.policy.dry_run = true;
    let dry_rt = Runtime::new(dry, plugin).await?;
    match dry_rt
        .invoke(
            "infer",
            r#"{"service":"flux","input":{"prompt":"a blue cloud"}}"#,
            Arc::new(|_| {}),
        )
        .await?
    {
        Ok(v) => println!("  unexpected: {v}"),
        Err(e) => println!("  {}\n  {}", report::error_text(&e), report::error_json(&e)),
    }

    println!(
        "\n== end of demo. Against the real Theta EdgeCloud: put THETA_ONDEMAND_API_TOKEN=... in .env.local"
    );
    println!(
        "   and run e.g. `theta-host call list_services` (reads are free; add --dry-run to preview paid calls). =="
    );
    fake.shutdown().await;
    Ok(0)
}

fn step(title: &str) {
    println!("\n$ {title}");
}

/// Runs a command, streaming tokens to stdout; prints errors; returns the JSON result.
async fn call(rt: &Runtime, name: &str, args: &str) -> anyhow::Result<Option<Value>> {
    let events = Arc::new(|e: GuestEvent| {
        if let GuestEvent::Token { text } = e {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    });
    match rt.invoke(name, args, events).await? {
        Ok(json) => Ok(Some(serde_json::from_str(&json)?)),
        Err(e) => {
            println!("  error: {}", report::error_text(&e));
            Ok(None)
        }
    }
}
