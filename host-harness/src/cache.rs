//! The on-disk cache of compiled plugin code, so that only the first start on a machine (or
//! `theta-host precompile`, which `scripts/setup.sh` runs) pays for Cranelift.
//!
//! An entry is named by the SHA-256 of the component and of the engine's compatibility hash, so a
//! new plugin build or different engine settings never pick up old code. Its contents carry their own
//! SHA-256: wasmtime checks a precompiled file's header against the engine but not the machine code in
//! it, and the cache directory outlives the process, so a torn write, a flipped bit or an edited file
//! is detected, deleted and rebuilt, never executed.

use anyhow::{Context, anyhow};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Marks an entry written by this version of the cache format.
const MAGIC: &[u8; 8] = b"THETACW1";
const HEADER: usize = MAGIC.len() + 32;

/// How the component was loaded, for `--verbose` output, `precompile` and benchmarks.
#[derive(Clone, Debug)]
pub struct LoadReport {
    pub from_cache: bool,
    pub load_time: Duration,
    pub cache_file: Option<PathBuf>,
    /// Why an existing cache entry was not used (corrupt, unreadable, ...), if one was there.
    pub rejected_cache: Option<String>,
}

/// Loads a component, from the cache when a valid entry is there; else compiles it and stores it.
pub fn load_component(
    engine: &Engine,
    wasm_path: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, LoadReport)> {
    let started = Instant::now();
    let bytes = std::fs::read(wasm_path).with_context(|| {
        format!(
            "reading the plugin {} (build it with scripts/build-wasm.sh)",
            wasm_path.display()
        )
    })?;
    let cache_file = cache_dir.map(|dir| dir.join(format!("{}.cwasm", cache_key(engine, &bytes))));
    let mut rejected_cache = None;
    if let Some(file) = cache_file.as_ref().filter(|f| f.exists()) {
        match read_entry(engine, file) {
            Ok(component) => {
                return Ok((
                    component,
                    LoadReport {
                        from_cache: true,
                        load_time: started.elapsed(),
                        cache_file,
                        rejected_cache,
                    },
                ));
            }
            Err(e) => {
                tracing::warn!("rebuilding the cache entry {}: {e:#}", file.display());
                let _ = std::fs::remove_file(file);
                rejected_cache = Some(format!("{e:#}"));
            }
        }
    }
    let component = Component::new(engine, &bytes).map_err(|e| {
        anyhow!(
            "{} is not a loadable WebAssembly component: {e:#}",
            wasm_path.display()
        )
    })?;
    if let Some(file) = &cache_file
        && let Err(e) = write_entry(&component, file)
    {
        tracing::warn!(
            "could not cache the compiled plugin at {}: {e:#}",
            file.display()
        );
    }
    Ok((
        component,
        LoadReport {
            from_cache: false,
            load_time: started.elapsed(),
            cache_file,
            rejected_cache,
        },
    ))
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut engine_hash = Sha256::new();
    std::hash::Hash::hash(
        &engine.precompile_compatibility_hash(),
        &mut HashWriter(&mut engine_hash),
    );
    let engine_hex = hex(&engine_hash.finalize()[..8]);
    format!("{}-{engine_hex}", hex(&Sha256::digest(wasm)[..16]))
}

/// Feeds `Hash` output into a SHA-256 (stable across Rust versions, unlike `DefaultHasher`).
struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_entry(engine: &Engine, file: &Path) -> anyhow::Result<Component> {
    let data = std::fs::read(file).context("reading the cache entry")?;
    if data.len() < HEADER || &data[..MAGIC.len()] != MAGIC {
        anyhow::bail!("not a cache entry of this version (bad header)");
    }
    let (digest, code) = data[MAGIC.len()..].split_at(32);
    if Sha256::digest(code).as_slice() != digest {
        anyhow::bail!("its contents do not match their checksum (torn write or corruption)");
    }
    // SAFETY: `code` is exactly what `write_entry` serialised with an engine of the same
    // compatibility hash (the file name) and it is unchanged since (the checksum above); wasmtime
    // checks its header against this engine as well.
    unsafe { Component::deserialize(engine, code) }
        .map_err(|e| anyhow!("wasmtime refused the entry: {e:#}"))
}

fn write_entry(component: &Component, file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().context("cache file has no directory")?;
    std::fs::create_dir_all(dir)?;
    let code = component.serialize()?;
    let mut data = Vec::with_capacity(HEADER + code.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&Sha256::digest(&code));
    data.extend_from_slice(&code);
    // A unique temporary name, then rename: a concurrent reader sees the old entry or the whole new one.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = file.with_extension(format!("tmp{}-{nanos}", std::process::id()));
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: enough to compile, serialise and deserialise.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn setup() -> (Engine, PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "theta-cache-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let wasm = dir.join("c.wasm");
        std::fs::write(&wasm, EMPTY_COMPONENT).unwrap();
        (Engine::default(), dir.join("cache"), wasm)
    }

    #[test]
    fn second_load_comes_from_the_cache() {
        let (engine, cache, wasm) = setup();
        let (_, first) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        assert!(!first.from_cache);
        let (_, second) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        assert!(second.from_cache);
        assert_eq!(first.cache_file, second.cache_file);
    }

    #[test]
    fn corrupt_truncated_or_foreign_entries_are_rebuilt_not_trusted() {
        let (engine, cache, wasm) = setup();
        let (_, first) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        let file = first.cache_file.unwrap();
        let good = std::fs::read(&file).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        let mut foreign = b"XXXXXXXX".to_vec();
        foreign.extend_from_slice(&good[MAGIC.len()..]);
        for (what, bytes) in [
            ("flipped", flipped),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("empty", Vec::new()),
            ("foreign", foreign),
        ] {
            std::fs::write(&file, &bytes).unwrap();
            let (_, report) = load_component(&engine, &wasm, Some(&cache)).unwrap();
            assert!(!report.from_cache, "{what}: a bad entry was used");
            assert!(report.rejected_cache.is_some(), "{what}: not reported");
            assert_eq!(
                std::fs::read(&file).unwrap(),
                good,
                "{what}: entry not rebuilt"
            );
        }
    }

    #[test]
    fn a_different_component_gets_a_different_entry() {
        let (engine, cache, wasm) = setup();
        let (_, a) = load_component(&engine, &wasm, Some(&cache)).unwrap();
        let other = wasm.with_file_name("d.wasm");
        // The same component with a custom section: other bytes, other key.
        let mut bytes = EMPTY_COMPONENT.to_vec();
        bytes.extend_from_slice(b"\0\x02\x01x");
        std::fs::write(&other, &bytes).unwrap();
        let (_, b) = load_component(&engine, &other, Some(&cache)).unwrap();
        assert!(!b.from_cache);
        assert_ne!(a.cache_file, b.cache_file);
    }
}
