//! `theta-shrink IN.wasm OUT.wasm`: writes a smaller copy of a component. The component's core module
//! goes through binaryen's `wasm-opt -Oz` (its imports and exports keep their names, which is all
//! the component refers to them by), the `component-name` debugging section is dropped, and the
//! result must validate before it is written (atomically: a temporary file, then a rename). Without
//! `wasm-opt` on PATH the component is copied unchanged with a note, so a machine without binaryen
//! still builds. A component without `component-name` was shrunk already and is copied as it is.
//! Cargo puts its unshrunk artifact back on every build, so results are kept in `.shrink-cache/`
//! beside the output, keyed by the input's hash and length: an unchanged build costs no second
//! wasm-opt run.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use wasm_encoder::{Component, RawSection};
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// The section id of a core module inside a component.
const CORE_MODULE: u8 = 1;
/// The section id of a custom section.
const CUSTOM: u8 = 0;

/// What rustc enables for wasm32-wasip2; wasm-opt may use no feature beyond these.
const FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
];

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: theta-shrink IN.wasm OUT.wasm");
    };
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let optimise = wasm_opt_available();
    if !optimise {
        eprintln!(
            "theta-shrink: wasm-opt (binaryen) is not on PATH; {} keeps its unoptimised core module \
             (install binaryen, e.g. `apt-get install binaryen`)",
            output.display()
        );
    }
    if !has_component_name(&bytes)? {
        if input != output {
            std::fs::write(output, &bytes)?;
        }
        eprintln!("theta-shrink: {} is shrunk already", input.display());
        return Ok(());
    }
    let cached = cache_path(output, &bytes);
    let out = match std::fs::read(&cached) {
        Ok(out) if optimise => out,
        _ => {
            let out = shrink(&bytes, optimise)?;
            if optimise {
                let _ = std::fs::create_dir_all(cached.parent().expect("in a directory"));
                let _ = std::fs::write(&cached, &out);
            }
            out
        }
    };
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(&out)
        .context("the shrunk component does not validate; keeping the original")?;
    let tmp = output.with_extension("wasm.shrink-tmp");
    std::fs::write(&tmp, &out).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, output).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "theta-shrink: {} -> {} bytes ({})",
        bytes.len(),
        out.len(),
        output.display()
    );
    Ok(())
}

/// Where the shrunk form of `input` is kept.
fn cache_path(output: &Path, input: &[u8]) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let dir = output
        .parent()
        .unwrap_or(Path::new("."))
        .join(".shrink-cache");
    dir.join(format!("{:016x}-{}.wasm", h.finish(), input.len()))
}

fn wasm_opt_available() -> bool {
    Command::new("wasm-opt")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the component still has its top-level `component-name` section.
fn has_component_name(bytes: &[u8]) -> anyhow::Result<bool> {
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.context("not a valid WebAssembly component")? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(c) if depth == 0 && c.name() == "component-name" => {
                return Ok(true);
            }
            _ => {}
        }
    }
    Ok(false)
}

/// Copies the component's top-level sections, optimising core modules and dropping `component-name`.
fn shrink(bytes: &[u8], optimise: bool) -> anyhow::Result<Vec<u8>> {
    let mut component = Component::new();
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.context("not a valid WebAssembly component")?;
        match &payload {
            Payload::Version { encoding, .. }
                if depth == 0 && *encoding != wasmparser::Encoding::Component =>
            {
                bail!("not a component (a core module): nothing to shrink here");
            }
            Payload::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            _ => {}
        }
        let nested = matches!(
            payload,
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. }
        );
        if depth == 0
            && let Some((id, range)) = payload.as_section()
        {
            let data = &bytes[range];
            match (id, &payload) {
                (CORE_MODULE, _) if optimise => {
                    let optimised = wasm_opt(data)?;
                    component.section(&RawSection {
                        id,
                        data: &optimised,
                    });
                }
                // Dropped only when the module is optimised: its absence marks a shrunk component.
                (CUSTOM, Payload::CustomSection(c)) if optimise && c.name() == "component-name" => {
                }
                _ => {
                    component.section(&RawSection { id, data });
                }
            }
        }
        if nested {
            depth += 1;
        }
    }
    Ok(component.finish())
}

/// One core module through `wasm-opt -Oz`, in a private temporary directory.
fn wasm_opt(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("theta-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (input, output) = (dir.join("in.wasm"), dir.join("out.wasm"));
    std::fs::write(&input, module)?;
    let result = run_wasm_opt(&input, &output).and_then(|()| Ok(std::fs::read(&output)?));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_wasm_opt(input: &Path, output: &Path) -> anyhow::Result<()> {
    let out = Command::new("wasm-opt")
        .arg("-Oz")
        .args(FEATURES)
        .args(["--strip-debug", "--strip-producers"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .context("running wasm-opt")?;
    if !out.status.success() {
        bail!(
            "wasm-opt failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
