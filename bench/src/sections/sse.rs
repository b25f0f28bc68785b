//! Streamed qwen3 chat: time to first token and tokens per second, sandbox vs native SSE parsing on
//! the same fake. Paced: the fake sends one token per `THETA_BENCH_TOKEN_MS` (default 2 ms), as a
//! model does, so the figure is what a user sees. Burst: every token at once, which measures the
//! parser's throughput only.

use crate::common::{Row, TOKEN, config, count, median, median_f64, ms, native_client, row};
use anyhow::Context;
use fake_edgecloud::{FakeConfig, FakeEdgeCloud};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use theta_host::Runtime;
use theta_host::events::GuestEvent;

struct Sample {
    ttft: Duration,
    tokens_per_s: f64,
}

pub async fn run(wasm: &Path) -> anyhow::Result<Vec<Row>> {
    let paced_ms = count("THETA_BENCH_TOKEN_MS", 2) as u64;
    let mut rows = Vec::new();
    for (label, delay, words) in [
        (
            format!("paced, one token per {paced_ms} ms"),
            Duration::from_millis(paced_ms),
            200,
        ),
        ("burst".to_owned(), Duration::ZERO, 400),
    ] {
        let fake = FakeEdgeCloud::start(FakeConfig {
            ondemand_token: TOKEN.into(),
            token_delay: delay,
            ..FakeConfig::default()
        })
        .await?;
        let prompt = (0..words)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let sandbox = sandbox_samples(&fake, wasm, &prompt).await?;
        let native = native_samples(&fake, &prompt).await?;
        fake.shutdown().await;
        let st = median(&sandbox.iter().map(|s| s.ttft).collect::<Vec<_>>());
        let nt = median(&native.iter().map(|s| s.ttft).collect::<Vec<_>>());
        let sr = median_f64(&sandbox.iter().map(|s| s.tokens_per_s).collect::<Vec<_>>());
        let nr = median_f64(&native.iter().map(|s| s.tokens_per_s).collect::<Vec<_>>());
        rows.push(row(
            &format!("SSE chat ({label}): time to first token (incl. instantiate)"),
            ms(st),
            format!("native {}", ms(nt)),
            st.as_secs_f64() / nt.as_secs_f64(),
            "—",
        ));
        rows.push(row(
            &format!("SSE chat ({label}): tokens per second"),
            format!("{sr:.0} tok/s"),
            format!("native {nr:.0} tok/s"),
            sr / nr,
            if delay.is_zero() { "—" } else { "≥ 0.95×" },
        ));
    }
    Ok(rows)
}

async fn sandbox_samples(
    fake: &FakeEdgeCloud,
    wasm: &Path,
    prompt: &str,
) -> anyhow::Result<Vec<Sample>> {
    let rt = Runtime::new(config(fake), wasm).await?;
    let args = serde_json::json!({"messages": [{"role": "user", "content": prompt}]}).to_string();
    let mut out = Vec::new();
    for _ in 0..5 {
        let first: Arc<Mutex<Option<Instant>>> = Arc::default();
        let count = Arc::new(Mutex::new(0usize));
        let (f, c) = (first.clone(), count.clone());
        let t = Instant::now();
        rt.invoke(
            "theta.ondemand.chat",
            &args,
            Arc::new(move |e| {
                if let GuestEvent::Token { .. } = e {
                    f.lock().unwrap().get_or_insert_with(Instant::now);
                    *c.lock().unwrap() += 1;
                }
            }),
        )
        .await?
        .map_err(|e| anyhow::anyhow!(theta_host::report::error_text(&e)))?;
        let end = Instant::now();
        let first = first.lock().unwrap().context("no token arrived")?;
        let tokens = *count.lock().unwrap();
        out.push(Sample {
            ttft: first - t,
            tokens_per_s: tokens as f64 / (end - first).as_secs_f64().max(1e-9),
        });
    }
    Ok(out)
}

async fn native_samples(fake: &FakeEdgeCloud, prompt: &str) -> anyhow::Result<Vec<Sample>> {
    use futures_util::StreamExt;
    let client = native_client();
    let body = serde_json::json!({"input": {"messages": [{"role": "user", "content": prompt}], "stream": true}});
    let mut out = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let resp = client
            .post(format!("{}/infer_request/qwen3?wait=60", fake.base_url()))
            .header("host", "ondemand.thetaedgecloud.com")
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let mut stream = resp.bytes_stream();
        let mut buf = String::new();
        let mut first = None;
        let mut tokens = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk: bytes::Bytes = chunk?;
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                for line in event.lines() {
                    let Some(data) = line.strip_prefix("data: ") else {
                        continue;
                    };
                    if data == "[DONE]" {
                        continue;
                    }
                    let v: serde_json::Value = serde_json::from_str(data)?;
                    if v["choices"][0]["delta"]["content"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty())
                    {
                        first.get_or_insert_with(Instant::now);
                        tokens += 1;
                    }
                }
            }
        }
        let end = Instant::now();
        let first = first.context("no native token")?;
        out.push(Sample {
            ttft: first - t,
            tokens_per_s: tokens as f64 / (end - first).as_secs_f64().max(1e-9),
        });
    }
    Ok(out)
}
