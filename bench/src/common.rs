//! What every section shares: the table row, statistics, the sandbox's configuration against the fake,
//! the native client, throwaway stores and per-section peak memory.

use fake_edgecloud::FakeEdgeCloud;
use std::path::PathBuf;
use std::time::Duration;
use theta_host::HostConfig;
use theta_host::credentials::{Credential, Credentials, Family, Injection, Secret};
use theta_host::net::Upstream;

pub const TOKEN: &str = "bench-token-0123456789";

pub struct Row {
    pub what: String,
    pub sandbox: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
}

pub fn row(what: &str, sandbox: String, baseline: String, ratio: f64, target: &str) -> Row {
    Row {
        what: what.into(),
        sandbox,
        baseline,
        ratio: ratio_text(ratio),
        target: target.into(),
    }
}

/// Small ratios keep two significant digits instead of printing 0.00×.
pub fn ratio_text(ratio: f64) -> String {
    if ratio < 0.01 {
        format!("{ratio:.1e}×")
    } else {
        format!("{ratio:.2}×")
    }
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn median(v: &[Duration]) -> Duration {
    percentile(v, 0.5)
}

pub fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub fn median_f64(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// An environment override of a sample count.
pub fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn wasm_dir() -> PathBuf {
    root().join("target/wasm32-wasip2/plugin-release")
}

pub fn plugin() -> PathBuf {
    wasm_dir().join("theta_plugin.wasm")
}

pub fn theta_host_bin() -> PathBuf {
    std::env::var_os("THETA_HOST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/theta-host"))
}

/// The sandbox against the fake: its on-demand token, a throwaway compile cache and spend store.
pub fn config(fake: &FakeEdgeCloud) -> HostConfig {
    let mut cfg = HostConfig::empty();
    let mut creds = Credentials::default();
    creds.insert(
        Family::OnDemand,
        Credential {
            variable: "THETA_ONDEMAND_API_TOKEN",
            injection: Injection::Bearer(Secret::new(TOKEN)),
        },
    );
    cfg.credentials = creds;
    cfg.upstream = Upstream::TestServer(fake.addr());
    cfg.cache_dir = Some(std::env::temp_dir().join("theta-bench-cache"));
    // Paid calls reserve in a spend store: a throwaway one, never the user's default store.
    cfg.store = Some(bench_store_path("calls").display().to_string());
    cfg
}

/// [`config`] with the pooling allocator, as a long-running host uses it.
pub fn pooled_config(fake: &FakeEdgeCloud) -> HostConfig {
    let mut cfg = config(fake);
    cfg.pooling_instances = Some(64);
    cfg.limits.memory_bytes = 64 << 20;
    cfg
}

/// A fresh SQLite spend store file for this run.
pub fn bench_store_path(name: &str) -> PathBuf {
    let dir = bench_dir("store");
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// A directory of this run (removed by nobody: under the system's temp directory).
pub fn bench_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("theta-bench-{}/{name}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The native baseline: a keep-alive HTTP client as an agent would use it.
pub fn native_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

/// The native request of the one-call rows: the status of an on-demand request, checked as the
/// plugin checks it (so a failure is counted, not timed as a fast call).
pub async fn native_status(
    client: &reqwest::Client,
    fake: &FakeEdgeCloud,
    id: &str,
) -> anyhow::Result<()> {
    let resp = client
        .get(format!("{}/infer_request/{id}", fake.base_url()))
        .header("host", "ondemand.thetaedgecloud.com")
        .bearer_auth(TOKEN)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
    let body = resp.bytes().await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    anyhow::ensure!(v["body"]["infer_requests"][0]["id"] == id);
    Ok(())
}

/// Peak resident memory of one section: the kernel's high-water mark is reset (`clear_refs` 5) when
/// the section starts and read when it ends, so earlier sections do not count.
pub struct PeakRss;

impl PeakRss {
    pub fn start() -> Self {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        PeakRss
    }

    pub fn mib(&self) -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            })
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }
}
