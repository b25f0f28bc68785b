//! `theta-bench`: what the sandbox costs. Every figure is a ratio against a baseline measured in the same
//! run on the same machine (native Rust against the same fake EdgeCloud, the other allocator, or
//! Theta's official MCP server), so the numbers compare across machines.
//! Run: `cargo run --release -p theta-bench -- [--only SECTION] [--write BENCHMARKS.md]`.

mod common;
mod report;
mod sections;

use common::{TOKEN, plugin};
use fake_edgecloud::{FakeConfig, FakeEdgeCloud};
use sections::*;
use std::path::PathBuf;
use std::time::Duration;

const SECTIONS: &[&str] = &[
    "first-start",
    "cold-start",
    "instantiate",
    "one-call",
    "sse",
    "concurrent",
    "mcp",
    "spend",
    "size",
];

/// What the sandbox costs, each figure against a baseline measured in the same run.
#[derive(clap::Parser)]
struct Args {
    /// Run one section only (e.g. under a profiler).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SECTIONS))]
    only: Option<String>,
    /// Write the report as Markdown to this file (BENCHMARKS.md).
    #[arg(long)]
    write: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let Args { only, write } = <Args as clap::Parser>::parse();
    let run = |section: &str| only.as_deref().is_none_or(|o| o == section);
    let wasm = plugin();
    anyhow::ensure!(
        wasm.exists(),
        "build the plugin first: scripts/build-wasm.sh"
    );
    let fake = FakeEdgeCloud::start(FakeConfig {
        ondemand_token: TOKEN.into(),
        token_delay: Duration::ZERO,
        ..FakeConfig::default()
    })
    .await?;
    // The official server, built once for the sections that compare against it.
    let official = if run("first-start") || run("mcp") {
        let p = tokio::task::spawn_blocking(mcp::prepare).await?;
        if let Err(why) = &p {
            println!("official MCP server: not available ({why}); its comparisons are skipped");
        }
        p
    } else {
        Err("not needed".into())
    };
    let mut rows = Vec::new();
    if run("first-start") {
        let index = official.as_ref().ok().map(|(i, _)| i.clone());
        rows.extend(first_start::run(&fake, index.as_deref())?);
    }
    if run("cold-start") {
        rows.push(cold_start::run(&wasm)?);
    }
    if run("instantiate") {
        rows.push(instantiate::run(&fake, &wasm).await?);
    }
    if run("one-call") {
        rows.push(one_call::run(&fake, &wasm).await?);
    }
    if run("sse") {
        rows.extend(sse::run(&wasm).await?);
    }
    if run("concurrent") {
        rows.push(concurrent::run(&fake, &wasm).await?);
    }
    if run("mcp") {
        let rt = theta_host::Runtime::new(common::config(&fake), &wasm).await?;
        let id = one_call::make_request(&rt).await?;
        drop(rt);
        let fake = &fake;
        let official = &official;
        rows.push(tokio::task::block_in_place(|| {
            mcp::run(fake, official, &id)
        }));
    }
    if run("spend") {
        rows.extend(spend::run(&fake, &wasm).await?);
    }
    if run("size") {
        rows.extend(size::run()?);
    }

    let table = report::render(&rows);
    println!("{table}");
    if let Some(path) = write {
        report::write(&path, &table)?;
        println!("wrote {}", path.display());
    }
    fake.shutdown().await;
    Ok(())
}
