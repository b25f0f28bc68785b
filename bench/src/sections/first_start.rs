//! First start of the real `theta-host` binary, as a user meets it: a new process, to the first
//! answer of `call list_services` and of MCP `tools/list`. With an empty compile cache (Cranelift
//! compiles the component first) and after `theta-host precompile` (what `scripts/setup.sh` runs).
//! The baseline is Theta's official Node MCP server's first `tools/list`, when it can be built here.

use crate::common::{Row, TOKEN, bench_dir, bench_store_path, median, ms, plugin, theta_host_bin};
use fake_edgecloud::FakeEdgeCloud;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `theta-host` against the fake, with its own compile cache and a throwaway store.
fn theta_host(fake: &FakeEdgeCloud, cache: &Path) -> Command {
    let mut cmd = Command::new(theta_host_bin());
    cmd.args(["--env-file", "/nonexistent/.env.local", "--plugin"])
        .arg(plugin())
        .args(["--test-upstream", &fake.addr().to_string()])
        .env("THETA_HOST_CACHE_DIR", cache)
        .env("THETA_ONDEMAND_API_KEY", TOKEN)
        .env("THETA_STORE_URL", bench_store_path("first-start"));
    cmd
}

fn call_list_services(fake: &FakeEdgeCloud, cache: &Path) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = theta_host(fake, cache)
        .args(["call", "list_services", "--quiet"])
        .stdin(Stdio::null())
        .output()?;
    let took = t.elapsed();
    anyhow::ensure!(
        out.status.success() && !out.stdout.is_empty(),
        "call list_services failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(took)
}

/// Spawns an MCP stdio server and times it to the answer of its first `tools/list`.
pub fn first_tools_list(mut cmd: Command) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let lines = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"theta-bench","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ];
    for line in lines {
        writeln!(stdin, "{line}")?;
    }
    stdin.flush()?;
    let mut reader = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    let took = loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            anyhow::bail!("the server closed stdout before answering tools/list");
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["id"] == 2 {
            anyhow::ensure!(v["result"]["tools"].is_array(), "tools/list failed: {line}");
            break t.elapsed();
        }
    };
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    Ok(took)
}

fn fresh_cache(name: &str) -> PathBuf {
    let dir = bench_dir("first-start").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn precompiled_cache(fake: &FakeEdgeCloud, name: &str) -> anyhow::Result<PathBuf> {
    let cache = fresh_cache(name);
    let out = theta_host(fake, &cache).arg("precompile").output()?;
    anyhow::ensure!(
        out.status.success(),
        "theta-host precompile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(cache)
}

pub fn run(fake: &FakeEdgeCloud, official: Option<&Path>) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(
        theta_host_bin().exists(),
        "build the host first: cargo build --release -p theta-host"
    );
    let official_first = official.map(|index| {
        let samples = (0..5)
            .map(|_| {
                let mut cmd = Command::new("node");
                cmd.arg(index)
                    .env("THETA_API_KEY", TOKEN)
                    .env("THETA_API_BASE_URL", format!("http://{}", fake.addr()));
                first_tools_list(cmd)
            })
            .collect::<anyhow::Result<Vec<_>>>();
        samples.map(|s| median(&s))
    });
    let baseline = |what: &str| match &official_first {
        Some(Ok(d)) => (
            format!("official Node server, first tools/list {}", ms(*d)),
            Some(*d),
        ),
        Some(Err(e)) => (format!("official server failed: {e}"), None),
        None => (format!("{what}; official server not built here"), None),
    };

    let empty: Vec<Duration> = (0..3)
        .map(|i| call_list_services(fake, &fresh_cache(&format!("empty-{i}"))))
        .collect::<anyhow::Result<_>>()?;
    let cache = precompiled_cache(fake, "warm")?;
    let warm: Vec<Duration> = (0..5)
        .map(|_| call_list_services(fake, &cache))
        .collect::<anyhow::Result<_>>()?;
    let mcp_empty: Vec<Duration> = (0..3)
        .map(|i| {
            let mut cmd = theta_host(fake, &fresh_cache(&format!("mcp-empty-{i}")));
            cmd.arg("mcp");
            first_tools_list(cmd)
        })
        .collect::<anyhow::Result<_>>()?;
    let mcp_warm: Vec<Duration> = (0..5)
        .map(|_| {
            let mut cmd = theta_host(fake, &cache);
            cmd.arg("mcp");
            first_tools_list(cmd)
        })
        .collect::<anyhow::Result<_>>()?;

    let target = Duration::from_millis(300);
    let mut rows = Vec::new();
    for (what, samples) in [
        (
            "first start: `call list_services`, after `theta-host precompile` (setup.sh)",
            &warm,
        ),
        (
            "first start: `call list_services`, empty cache (compiles first)",
            &empty,
        ),
        (
            "first start: MCP `tools/list`, after `theta-host precompile` (setup.sh)",
            &mcp_warm,
        ),
        (
            "first start: MCP `tools/list`, empty cache (compiles first)",
            &mcp_empty,
        ),
    ] {
        let d = median(samples);
        let (text, base) = baseline("target 300 ms");
        let ratio = d.as_secs_f64() / base.unwrap_or(target).as_secs_f64();
        rows.push(Row {
            what: what.into(),
            sandbox: ms(d),
            baseline: text,
            ratio: crate::common::ratio_text(ratio),
            target: "≤ 300 ms".into(),
        });
    }
    Ok(rows)
}
