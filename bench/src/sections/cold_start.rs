//! Loading the precompiled component from disk vs compiling it from scratch, in-process.

use crate::common::{Row, median, ms, row};
use std::path::Path;
use std::time::Instant;

pub fn run(wasm: &Path) -> anyhow::Result<Row> {
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true).epoch_interruption(true);
    let engine = wasmtime::Engine::new(&cfg)?;
    let bytes = std::fs::read(wasm)?;
    let compile = (0..3)
        .map(|_| {
            let t = Instant::now();
            wasmtime::component::Component::new(&engine, &bytes).map(|_| t.elapsed())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let compile = median(&compile);
    let component = wasmtime::component::Component::new(&engine, &bytes)?;
    let file = crate::common::bench_dir("cold-start").join("plugin.cwasm");
    std::fs::write(&file, component.serialize()?)?;
    let mut loads = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        // SAFETY: written just above by this process with the same engine configuration.
        let c = unsafe { wasmtime::component::Component::deserialize_file(&engine, &file)? };
        loads.push(t.elapsed());
        drop(c);
    }
    let load = median(&loads);
    Ok(row(
        "cold start in-process: load precompiled component",
        ms(load),
        format!("compile from scratch {}", ms(compile)),
        load.as_secs_f64() / compile.as_secs_f64(),
        "≪ 1",
    ))
}
