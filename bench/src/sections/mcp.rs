//! What an MCP server adds to a `tools/call get_request_status`, ours against Theta's official Node
//! server on the same fake in the same run, with the same real client (the pinned TypeScript SDK,
//! tests/mcp-compat/overhead.mjs). The client and the fake alone (the same upstream request sent
//! directly from the client's runtime, alternating with the server's calls) are the floor; each
//! server's figure is what it adds over that floor, p50 and p95.

use crate::common::{Row, TOKEN, bench_store_path, count, plugin, root, theta_host_bin, us};
use fake_edgecloud::FakeEdgeCloud;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The official server and the client scripts, built by tests/mcp-compat/prepare.sh, or why not.
pub fn prepare() -> Result<(PathBuf, PathBuf), String> {
    let work = root().join("target/bench-mcp");
    let out = Command::new("bash")
        .arg(root().join("tests/mcp-compat/prepare.sh"))
        .arg(&work)
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("prepare.sh failed")
            .to_owned());
    }
    Ok((work.join("official/dist/index.js"), work.join("client")))
}

struct Overhead {
    floor: Vec<Duration>,
    server: Vec<Duration>,
    floor_failures: u64,
    server_failures: u64,
}

fn overhead(
    client: &Path,
    server: &[String],
    env: &[(&str, String)],
    status_url: &str,
    id: &str,
) -> anyhow::Result<Overhead> {
    let mut cmd = Command::new("node");
    cmd.current_dir(client)
        .arg("overhead.mjs")
        .env("MCP_COMPAT_SERVER", serde_json::to_string(server)?)
        .env("OVERHEAD_STATUS_URL", status_url)
        .env("OVERHEAD_TOKEN", TOKEN)
        .env("OVERHEAD_REQUEST_ID", id)
        .env(
            "OVERHEAD_CALLS",
            count("THETA_BENCH_MCP_CALLS", 300).to_string(),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "overhead.mjs failed against {server:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let durations = |k: &str| -> Vec<Duration> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_f64())
                    .map(|us| Duration::from_secs_f64(us / 1e6))
                    .collect()
            })
            .unwrap_or_default()
    };
    let o = Overhead {
        floor: durations("floor_us"),
        server: durations("server_us"),
        floor_failures: v["floor_failures"].as_u64().unwrap_or(u64::MAX),
        server_failures: v["server_failures"].as_u64().unwrap_or(u64::MAX),
    };
    anyhow::ensure!(!o.server.is_empty(), "no samples from overhead.mjs");
    Ok(o)
}

/// What the server adds over the floor at percentile `p` (never below zero).
fn added(o: &Overhead, p: f64) -> Duration {
    crate::common::percentile(&o.server, p).saturating_sub(crate::common::percentile(&o.floor, p))
}

pub fn run(fake: &FakeEdgeCloud, prepared: &Result<(PathBuf, PathBuf), String>, id: &str) -> Row {
    let what = "MCP `tools/call get_request_status`: added over client + fake alone, p50 / p95";
    let skipped = |why: String| Row {
        what: what.into(),
        sandbox: format!("skipped: {why}"),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "≤ 0.1× of what the official adds".into(),
    };
    let (index, client) = match prepared {
        Ok(p) => p,
        Err(why) => return skipped(why.clone()),
    };
    let status_url = format!("{}/infer_request/{id}", fake.base_url());
    let ours = vec![
        theta_host_bin().display().to_string(),
        "--env-file".into(),
        "/nonexistent/.env.local".into(),
        "--plugin".into(),
        plugin().display().to_string(),
        "--test-upstream".into(),
        fake.addr().to_string(),
        "mcp".into(),
    ];
    let ours_env = [
        ("THETA_ONDEMAND_API_KEY", TOKEN.to_owned()),
        (
            "THETA_STORE_URL",
            bench_store_path("mcp").display().to_string(),
        ),
        (
            "THETA_HOST_CACHE_DIR",
            std::env::temp_dir()
                .join("theta-bench-cache")
                .display()
                .to_string(),
        ),
    ];
    let official = vec!["node".to_owned(), index.display().to_string()];
    let official_env = [
        ("THETA_API_KEY", TOKEN.to_owned()),
        ("THETA_API_BASE_URL", format!("http://{}", fake.addr())),
    ];
    let result = (|| {
        let o = overhead(client, &ours, &ours_env, &status_url, id)?;
        let t = overhead(client, &official, &official_env, &status_url, id)?;
        anyhow::Ok((o, t))
    })();
    let (o, t) = match result {
        Ok(r) => r,
        Err(e) => return skipped(format!("{e:#}")),
    };
    let describe = |x: &Overhead| {
        format!(
            "+{} / +{} (server p50 {}, floor p50 {}; {} + {} failed of {})",
            us(added(x, 0.5)),
            us(added(x, 0.95)),
            us(crate::common::median(&x.server)),
            us(crate::common::median(&x.floor)),
            x.server_failures,
            x.floor_failures,
            x.server.len()
        )
    };
    let r50 = added(&o, 0.5).as_secs_f64() / added(&t, 0.5).as_secs_f64().max(1e-9);
    let r95 = added(&o, 0.95).as_secs_f64() / added(&t, 0.95).as_secs_f64().max(1e-9);
    Row {
        what: what.into(),
        sandbox: format!("ours {}", describe(&o)),
        baseline: format!("official {}", describe(&t)),
        ratio: format!(
            "{} / {}",
            crate::common::ratio_text(r50),
            crate::common::ratio_text(r95)
        ),
        target: "≤ 0.1× of what the official adds".into(),
    }
}
