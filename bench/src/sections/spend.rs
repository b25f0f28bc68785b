//! The spend store on the paid path: reservations per second and the latency one paid request adds
//! (a reserve before it is sent and a settle after), SQLite and PostgreSQL, against an in-memory
//! check-and-add measured in the same run; and a paid call end to end through the host per backend.

use crate::common::{Row, bench_store_path, count, median, ms, percentile, pooled_config, row, us};
use fake_edgecloud::FakeEdgeCloud;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use theta_host::Runtime;

/// A tenant's counters as the in-memory baseline keeps them: the cap check and the add under one
/// lock, as a single-process host without a store would.
#[derive(Default)]
struct MemoryCounters {
    by_tenant: Mutex<std::collections::HashMap<String, (u64, u64)>>,
}

impl MemoryCounters {
    fn reserve(&self, tenant: &str, micros: u64, cap: u64) -> bool {
        let mut all = self.by_tenant.lock().unwrap();
        let (settled, reserved) = all.entry(tenant.to_owned()).or_default();
        if *settled + *reserved + micros > cap {
            return false;
        }
        *reserved += micros;
        true
    }

    fn settle(&self, tenant: &str, micros: u64) {
        let mut all = self.by_tenant.lock().unwrap();
        let (settled, reserved) = all.entry(tenant.to_owned()).or_default();
        *reserved -= micros;
        *settled += micros;
    }
}

/// Reserve + settle pairs, one after the other (what one paid request costs the boundary).
async fn store_pairs(
    store: &theta_host::tenant::store::SpendStore,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = store
            .reserve("bench", 10_000, u64::MAX / 4, "POST bench", "bench")
            .await?;
        store.settle(&r, None).await?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

fn memory_pairs(n: usize) -> Vec<Duration> {
    let counters = MemoryCounters::default();
    (0..n)
        .map(|_| {
            let t = Instant::now();
            assert!(counters.reserve(std::hint::black_box("bench"), 10_000, u64::MAX / 4));
            counters.settle(std::hint::black_box("bench"), 10_000);
            t.elapsed()
        })
        .collect()
}

/// A fresh schema of `THETA_TEST_PG_URL` (made with psql) as a store URL, or why not.
fn pg_bench_store() -> Result<(String, String, String), String> {
    let base =
        std::env::var("THETA_TEST_PG_URL").map_err(|_| "THETA_TEST_PG_URL not set".to_owned())?;
    let schema = format!("bench_{}", std::process::id());
    let psql = psql();
    let out = std::process::Command::new(&psql)
        .arg(&base)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .output()
        .map_err(|e| format!("{}: {e}", psql.display()))?;
    if !out.status.success() {
        return Err(format!(
            "psql: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok((
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        base,
        schema,
    ))
}

/// Debian's newest versioned psql, else `psql` on PATH.
fn psql() -> PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dirs| {
            let mut found: Vec<PathBuf> = dirs
                .filter_map(|e| e.ok().map(|e| e.path().join("bin/psql")))
                .filter(|p| p.exists())
                .collect();
            found.sort();
            found.pop()
        })
        .unwrap_or_else(|| PathBuf::from("psql"))
}

fn pg_drop_schema(base: &str, schema: &str) {
    let _ = std::process::Command::new(psql())
        .arg(base)
        .args([
            "-q",
            "-c",
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ])
        .output();
}

pub async fn run(fake: &FakeEdgeCloud, wasm: &Path) -> anyhow::Result<Vec<Row>> {
    let n = count("THETA_BENCH_PAIRS", 1000);
    let memory = memory_pairs(n.max(10_000));
    let mem_median = median(&memory);
    let mem_total: Duration = memory.iter().sum();
    let mem_rate = memory.len() as f64 / mem_total.as_secs_f64();
    let mut backends = vec![(
        "SQLite (WAL, synchronous=FULL)".to_owned(),
        format!("sqlite:{}", bench_store_path("pairs").display()),
        None,
    )];
    match pg_bench_store() {
        Ok((url, base, schema)) => backends.push((
            "PostgreSQL (loopback)".to_owned(),
            url,
            Some((base, schema)),
        )),
        Err(why) => println!("spend store on PostgreSQL: skipped ({why})"),
    }
    let mut rows = Vec::new();
    for (label, url, pg) in &backends {
        let store = theta_host::tenant::store::SpendStore::open(url).await?;
        store_pairs(&store, 20).await?; // warm-up: connections, statements, pages
        let samples = store_pairs(&store, n).await?;
        let total: Duration = samples.iter().sum();
        let rate = n as f64 / total.as_secs_f64();
        let med = median(&samples);
        rows.push(row(
            &format!(
                "spend store: reservations per second (reserve + settle, one handle), {label}"
            ),
            format!("{rate:.0} /s"),
            format!("in-memory Mutex<HashMap> check-and-add {mem_rate:.0} /s"),
            rate / mem_rate,
            "figures only",
        ));

        // The same paid request end to end, through a host on this store.
        let store_value = if pg.is_some() {
            url.clone()
        } else {
            bench_store_path("paid-calls").display().to_string()
        };
        let policy = format!(
            "store = {}\n[tenants.payer]\ncommands = [\"*\"]\neffects = [\"read\", \"mutate\", \"spend\"]\nspend_cap_usd = 100000.0\n",
            serde_json::Value::String(store_value)
        );
        let file = theta_host::tenant::file::parse(&policy, "bench")?;
        let rt = Runtime::with_tenants(pooled_config(fake), wasm, file).await?;
        let calls = count("THETA_BENCH_CALLS", 200);
        let paid_args = r#"{"service":"flux","input":{"prompt":"bench"},"wait":5}"#;
        let mut paid = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            rt.invoke_as("payer", "infer", paid_args, Arc::new(|_| {}))
                .await?
                .map_err(|e| anyhow::anyhow!(theta_host::report::error_text(&e)))?;
            paid.push(t.elapsed());
        }
        let paid_median = median(&paid);
        rows.push(row(
            &format!("spend store: added latency per paid call (reserve before send + settle after), {label}"),
            format!(
                "{} median, p99 {} ({:.1}% of a paid infer call here, {})",
                us(med),
                us(percentile(&samples, 0.99)),
                100.0 * med.as_secs_f64() / paid_median.as_secs_f64(),
                ms(paid_median)
            ),
            format!("in-memory check-and-add {}", us(mem_median)),
            med.as_secs_f64() / mem_median.as_secs_f64(),
            "figures only",
        ));
        if let Some((base, schema)) = pg {
            drop(rt);
            drop(store);
            pg_drop_schema(base, schema);
        }
    }
    Ok(rows)
}
