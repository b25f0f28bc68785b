//! `embed-wit-docs --wit <dir> [--world <name>] <in.wasm> <out.wasm>`: writes `out.wasm`, the
//! component `in.wasm` with a `package-docs` section built from the WIT package in `<dir>` for
//! `<world>` (default `plugin`), shaped for Wassette (see the library's docs). Written to a
//! temporary file, then renamed, so readers never see half a file.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

fn main() -> Result<()> {
    let mut wit = None;
    let mut world = "plugin".to_string();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--wit" => {
                wit = Some(PathBuf::from(
                    args.next().context("--wit needs a directory")?,
                ))
            }
            "--world" => world = args.next().context("--world needs a name")?,
            _ if arg.starts_with("--") => bail!("unknown option {arg}"),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let (Some(wit), [input, output]) = (wit, files.as_slice()) else {
        bail!("usage: embed-wit-docs --wit <dir> [--world <name>] <in.wasm> <out.wasm>");
    };
    let component = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let payload = theta_wit_docs::wassette_payload(&wit, &world)?;
    let with_docs = theta_wit_docs::embed(&component, &payload)?;
    let name = output.file_name().context("output has no file name")?;
    let tmp = output.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, &with_docs).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, output).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}
