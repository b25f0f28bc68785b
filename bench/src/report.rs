//! The table and BENCHMARKS.md around it.

use crate::common::Row;
use anyhow::Context;
use std::path::Path;

pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| measurement | sandbox | baseline (same run) | ratio | target |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.what, r.sandbox, r.baseline, r.ratio, r.target
        ));
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem} RAM, {}, load average {load} at the end of the run",
        std::env::consts::OS
    )
}

pub fn write(path: &Path, table: &str) -> anyhow::Result<()> {
    let text = format!(
        "# Benchmarks\n\nProduced by `cargo run --release -p theta-bench -- --write BENCHMARKS.md` \
         (after `scripts/build-wasm.sh` and `cargo build --release -p theta-host`). Every ratio is \
         against a baseline measured in the same run, on the same machine.\n\n\
         Machine: {}.\n\n{table}\n{NOTES}",
        machine()
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// How to read the table; fixed text with no figures of its own (every number is in the table).
const NOTES: &str = "\
## How each row is measured

- **First start**: a new `theta-host` process to the first answer of `call list_services` or of
  MCP `tools/list` (initialize, initialized, tools/list on stdin). `scripts/setup.sh` runs
  `theta-host precompile`, so a user's first start is the precompiled row; the empty-cache rows
  show what a missing or rebuilt cache costs. The baseline is the official Node server's first
  `tools/list` when it can be built here (else the 300 ms target).
- **One call**: guest → policy hook → fake against the same request from native reqwest
  keep-alive, calls alternating between the two sides; the ratio is the median of the runs' median
  ratios, with the lowest and highest run beside it. Failures on either side are counted.
- **Instantiate**: a fresh store and instance, then dropping them (where the pooling allocator
  resets the slot), per sample.
- **SSE**: paced rows get one token per interval from the fake, as from a model; the burst rows send
  every token at once and measure parsing only.
- **1,000 concurrent calls**: peak RSS is this section's own (the kernel's high-water mark is reset
  when the section starts).
- **MCP**: the pinned TypeScript SDK client drives each server over stdio; the floor is the same
  upstream request from the client's own runtime, alternating with the server's calls. The ratio is
  what ours adds over the floor divided by what the official adds, at p50 and p95.
- **Spend store**: reserve + settle pairs one after the other on one handle, and a paid `infer`
  end to end through a host on that store (`--only spend`; PostgreSQL needs `THETA_TEST_PG_URL`).
- **Component size**: the files as `scripts/build-wasm.sh` writes them.
";
