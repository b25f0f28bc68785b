//! The size of each built component artifact against its target.

use crate::common::{Row, root, row, wasm_dir};

pub fn run() -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (what, path, target) in [
        (
            "component size: full plugin (all commands, typed exports)",
            wasm_dir().join("theta_plugin.wasm"),
            250 * 1024,
        ),
        (
            "component size: commands-only (describe + invoke, all commands)",
            root().join("target/commands/wasm32-wasip2/plugin-release/theta_plugin.wasm"),
            250 * 1024,
        ),
        (
            "component size: IronClaw (near:agent@0.4.1)",
            wasm_dir().join("theta_plugin_ironclaw.wasm"),
            250 * 1024,
        ),
    ] {
        let Ok(meta) = std::fs::metadata(&path) else {
            println!("{what}: skipped ({} not built)", path.display());
            continue;
        };
        let size = meta.len();
        rows.push(row(
            what,
            format!("{:.1} KB ({size} bytes)", size as f64 / 1024.0),
            format!("target {} KB", target / 1024),
            size as f64 / target as f64,
            "≤ 1.00×",
        ));
    }
    Ok(rows)
}
