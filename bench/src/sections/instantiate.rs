//! A fresh store + instance per call, pooling vs on-demand allocation. Each sample includes dropping
//! the store, where the pooling allocator does its reset work.

use crate::common::{Row, median, pooled_config, row, us};
use fake_edgecloud::FakeEdgeCloud;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use theta_host::Runtime;

pub async fn run(fake: &FakeEdgeCloud, wasm: &Path) -> anyhow::Result<Row> {
    let pooled = Runtime::new(pooled_config(fake), wasm).await?;
    let on_demand = Runtime::new(crate::common::config(fake), wasm).await?;
    let time = |rt: Runtime| async move {
        let n = 2000;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let pair = rt.instantiate("bench", Arc::new(|_| {})).await?;
            drop(pair);
            samples.push(t.elapsed());
        }
        anyhow::Ok(median(&samples))
    };
    let p = time(pooled).await?;
    let o = time(on_demand).await?;
    Ok(row(
        "instantiate + tear down per call (fresh Store + instance), pooling",
        us(p),
        format!("on-demand allocator {}", us(o)),
        p.as_secs_f64() / o.as_secs_f64(),
        "pooled ≤ 15 µs",
    ))
}
