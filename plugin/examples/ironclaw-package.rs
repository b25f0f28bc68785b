//! Writes the IronClaw extension package (`reborn.extension_manifest.v3`) of the IronClaw build,
//! optionally for one dedicated endpoint host (v3 refuses wildcard audiences), and copies the
//! component in when given:
//!
//! ```sh
//! cargo run --release -p theta-plugin --example ironclaw-package -- --out /tmp/theta-ironclaw \
//!   --inference-host my-llm-abc.tec-s1.onthetaedgecloud.com \
//!   --wasm target/wasm32-wasip2/plugin-release/theta_plugin_ironclaw.wasm
//! ```

use theta_plugin::ironclaw_package::{MODULE_PATH, PackageOptions, files};

fn main() -> Result<(), String> {
    let mut out = None;
    let mut wasm = None;
    let mut opts = PackageOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = Some(value()?),
            "--wasm" => wasm = Some(value()?),
            "--inference-host" => opts.inference_host = Some(value()?),
            _ => {
                return Err(format!(
                    "unknown argument `{arg}`; expected --out DIR [--inference-host HOST] [--wasm FILE]"
                ));
            }
        }
    }
    let out = std::path::PathBuf::from(out.ok_or("--out DIR is required")?);
    for (path, text) in files(&theta_plugin::commands::describe(), &opts)? {
        let p = out.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(wasm) = wasm {
        let p = out.join(MODULE_PATH);
        std::fs::create_dir_all(p.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::copy(&wasm, &p).map_err(|e| format!("{wasm}: {e}"))?;
    }
    println!("wrote {}", out.display());
    Ok(())
}
