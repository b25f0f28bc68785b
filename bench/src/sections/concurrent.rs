//! 1,000 concurrent calls from 20 tenants: throughput, p50/p99 and this section's peak RSS, vs 1,000
//! concurrent native requests on the same fake. Failures are counted on both sides.

use crate::common::{PeakRss, Row, TOKEN, config, ms, native_client, percentile, row};
use anyhow::Context;
use fake_edgecloud::FakeEdgeCloud;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use theta_host::Runtime;

pub async fn run(fake: &FakeEdgeCloud, wasm: &Path) -> anyhow::Result<Row> {
    let peak = PeakRss::start();
    let tenants = 20;
    let mut policy = String::new();
    for t in 0..tenants {
        policy.push_str(&format!(
            "[tenants.t{t}]\ncommands = [\"*\"]\neffects = [\"read\", \"mutate\", \"spend\"]\nspend_cap_usd = 100.0\nmax_concurrent_calls = 1000\n"
        ));
    }
    let file = theta_host::tenant::file::parse(&policy, "bench")?;
    let rt = Arc::new(Runtime::with_tenants(config(fake), wasm, file).await?);
    let id = {
        let out = rt
            .invoke_as(
                "t0",
                "infer",
                r#"{"service":"flux","input":{"prompt":"b"},"wait":5}"#,
                Arc::new(|_| {}),
            )
            .await?
            .map_err(|e| anyhow::anyhow!(theta_host::report::error_text(&e)))?;
        serde_json::from_str::<serde_json::Value>(&out)?["id"]
            .as_str()
            .context("id")?
            .to_owned()
    };
    let args = Arc::new(serde_json::json!({ "request_id": id }).to_string());
    let n = 1000;
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (rt, args) = (rt.clone(), args.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                let out = rt
                    .invoke_as(
                        &format!("t{}", i % tenants),
                        "get_request_status",
                        &args,
                        Arc::new(|_| {}),
                    )
                    .await;
                (start.elapsed(), matches!(out, Ok(Ok(_))))
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(n);
    let mut ok = 0;
    for task in tasks {
        let (d, good) = task.await?;
        lat.push(d);
        ok += usize::from(good);
    }
    let sandbox_wall = t.elapsed();
    let rss = peak.mib();

    let client = native_client();
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, id) = (client.clone(), id.clone());
            let fake_url = fake.base_url();
            tokio::spawn(async move {
                let resp = client
                    .get(format!("{fake_url}/infer_request/{id}"))
                    .header("host", "ondemand.thetaedgecloud.com")
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status());
                match resp {
                    Ok(r) => r
                        .bytes()
                        .await
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .is_some_and(|v| v["body"]["infer_requests"][0]["id"] == id.as_str()),
                    Err(_) => false,
                }
            })
        })
        .collect();
    let mut native_ok = 0;
    for task in tasks {
        native_ok += usize::from(task.await?);
    }
    let native_wall = t.elapsed();
    let sandbox_tput = n as f64 / sandbox_wall.as_secs_f64();
    let native_tput = n as f64 / native_wall.as_secs_f64();
    Ok(row(
        "1,000 concurrent calls, 20 tenants: throughput",
        format!(
            "{sandbox_tput:.0} calls/s ({ok}/{n} ok), p50 {}, p99 {}, peak RSS of this section {rss:.0} MiB",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
        format!("native {native_tput:.0} req/s ({native_ok}/{n} ok)"),
        sandbox_tput / native_tput,
        "peak RSS < 1024 MiB",
    ))
}
