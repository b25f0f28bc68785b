//! One on-demand read through guest → policy hook → fake, vs the same request from native Rust
//! (reqwest keep-alive) on the same fake. Several runs, calls alternating between the two sides so
//! load on the machine falls on both alike; every failure on either side is counted.

use crate::common::{
    Row, count, median, median_f64, native_client, native_status, pooled_config, ratio_text, us,
};
use anyhow::Context;
use fake_edgecloud::FakeEdgeCloud;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use theta_host::Runtime;

/// A request id to read: one `infer` through the sandbox.
pub async fn make_request(rt: &Runtime) -> anyhow::Result<String> {
    let out = rt
        .invoke(
            "infer",
            r#"{"service":"flux","input":{"prompt":"bench"},"wait":5}"#,
            Arc::new(|_| {}),
        )
        .await?
        .map_err(|e| anyhow::anyhow!(theta_host::report::error_text(&e)))?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["id"].as_str().context("request id")?.to_owned())
}

pub async fn run(fake: &FakeEdgeCloud, wasm: &Path) -> anyhow::Result<Row> {
    let rt = Runtime::new(pooled_config(fake), wasm).await?;
    let id = make_request(&rt).await?;
    let args = serde_json::json!({ "request_id": id }).to_string();
    let runs = count("THETA_BENCH_RUNS", 5);
    let n = count("THETA_BENCH_CALLS", 300);
    let client = native_client();
    // Warm both sides (connections, caches) before measuring.
    for _ in 0..50 {
        let _ = rt
            .invoke("get_request_status", &args, Arc::new(|_| {}))
            .await;
        let _ = native_status(&client, fake, &id).await;
    }
    let (mut ratios, mut sandbox_all, mut native_all) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sandbox_failed, mut native_failed) = (0usize, 0usize);
    for _ in 0..runs {
        let (mut sandbox, mut native) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let t = Instant::now();
            let ok = matches!(
                rt.invoke("get_request_status", &args, Arc::new(|_| {}))
                    .await,
                Ok(Ok(_))
            );
            sandbox.push(t.elapsed());
            sandbox_failed += usize::from(!ok);
            let t = Instant::now();
            let ok = native_status(&client, fake, &id).await.is_ok();
            native.push(t.elapsed());
            native_failed += usize::from(!ok);
        }
        ratios.push(median(&sandbox).as_secs_f64() / median(&native).as_secs_f64());
        sandbox_all.extend(sandbox);
        native_all.extend(native);
    }
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let total = runs * n;
    Ok(Row {
        what: format!("one on-demand call (get_request_status), median of {runs} runs × {n}"),
        sandbox: format!(
            "{} ({}/{total} failed)",
            us(median(&sandbox_all)),
            sandbox_failed
        ),
        baseline: format!(
            "native reqwest keep-alive {} ({}/{total} failed)",
            us(median(&native_all)),
            native_failed
        ),
        ratio: format!(
            "{} (runs {}–{})",
            ratio_text(median_f64(&ratios)),
            ratio_text(lo),
            ratio_text(hi)
        ),
        target: "≤ 1.5×".into(),
    })
}
