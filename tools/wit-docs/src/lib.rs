//! The `package-docs` custom section: the `///` comments of a WIT package, stored in a component so
//! that tools can show them. Wassette takes its MCP tool descriptions from it.
//!
//! **Format** (wit-parser `src/metadata.rs`, `PackageMetadata::{encode, decode}`, 0.254 here, what
//! wasm-tools and `wit-docs-inject` write): one version byte (`1`), then the JSON of
//! `PackageMetadata` (`{"docs"?, "worlds": {name: WorldMetadata}, "interfaces": {name:
//! {"docs"?, "funcs": {name: {"docs"}}, "types": ...}}}`).
//!
//! **Wassette's reader** (microsoft/wassette `crates/component2json/src/lib.rs`,
//! `extract_package_docs` + `find_function_docs`, called from `crates/wassette/src/lib.rs`
//! `compile_and_register_component`): the first `package-docs` section met by
//! `wasmparser::Parser::parse_all` (any nesting depth), its first byte skipped unchecked, the rest
//! parsed as a `serde_json::Value`; a tool's description is `worlds.<any world>.func_exports.<bare
//! function name>.docs`. It never looks at `interfaces`, so the standard section describes none of
//! the functions a component exports through interfaces, which is all of ours. [`wassette_payload`]
//! therefore adds, to the standard metadata, each function of the world's exported interfaces under
//! the world's `func_exports`, keyed by its bare name as Wassette looks it up.
//!
//! **Cost**: wit-parser's own decoder (`wit_parser::decoding::decode`, i.e. `wit_component::decode`,
//! used by `wasm-tools component wit` and by jco's transpiler) injects the section into the
//! component's synthesized `root` world and rejects it, standard or not (`missing world
//! "command-plugin"`). So the docs go into a copy of the component for Wassette, never into the
//! artifact the other hosts load; see `scripts/build-wasm.sh`.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use wasmparser::{Parser, Payload};
use wit_parser::{PackageMetadata, Resolve, WorldItem};

pub use wit_parser;

/// The custom section's name: `package-docs`.
pub const SECTION: &str = PackageMetadata::SECTION_NAME;

/// The WIT package in `wit_dir` (with its `deps/`), parsed.
pub fn load_wit(wit_dir: &Path) -> Result<(Resolve, wit_parser::PackageId)> {
    let mut resolve = Resolve::new();
    let (pkg, _) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("parsing the WIT package in {}", wit_dir.display()))?;
    Ok((resolve, pkg))
}

/// The section's content for a component built for `world` of the package in `wit_dir`: wit-parser's
/// own `PackageMetadata` of the package, plus the world's exported interface functions under the
/// world's `func_exports` for Wassette. Several exported interfaces with a function of the same
/// name (`ondemand.chat`, `inference.chat`) share one Wassette description, which then gives
/// each one's docs under its `interface.function` name.
pub fn wassette_payload(wit_dir: &Path, world: &str) -> Result<Vec<u8>> {
    let (resolve, pkg) = load_wit(wit_dir)?;
    let world_id = resolve
        .select_world(&[pkg], Some(world))
        .with_context(|| format!("no world `{world}` in {}", wit_dir.display()))?;

    // wit-parser's own encoding: version byte + JSON.
    let standard = PackageMetadata::extract(&resolve, pkg).encode()?;
    let (version, json) = standard.split_first().context("empty package-docs")?;
    let mut meta: Value = serde_json::from_slice(json)?;

    // Exported interface functions by bare name: (interface, docs + agent notes) for each.
    let mut by_name: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for item in resolve.worlds[world_id].exports.values() {
        let WorldItem::Interface { id, .. } = item else {
            continue;
        };
        let iface = &resolve.interfaces[*id];
        let iface_name = iface.name.clone().unwrap_or_default();
        for (name, func) in &iface.functions {
            if let Some(docs) = func
                .docs
                .contents
                .as_deref()
                .filter(|d| !d.trim().is_empty())
            {
                let notes = agent_notes(&resolve, func);
                by_name
                    .entry(name.clone())
                    .or_default()
                    .push((iface_name.clone(), format!("{docs}{notes}")));
            }
        }
    }

    let worlds = object(&mut meta, "worlds")?;
    let world_meta = worlds
        .entry(resolve.worlds[world_id].name.clone())
        .or_insert_with(|| json!({}));
    let func_exports = object(world_meta, "func_exports")?;
    for (name, docs) in by_name {
        if func_exports.contains_key(&name) {
            continue; // a world-level function of that name: wit-parser already recorded its docs
        }
        let text = match docs.as_slice() {
            [(_, only)] => only.clone(),
            several => several
                .iter()
                .map(|(iface, d)| format!("`{iface}.{name}`: {d}"))
                .collect::<Vec<_>>()
                .join("\n\n"),
        };
        func_exports.insert(name, json!({ "docs": text }));
    }

    let mut out = vec![*version];
    serde_json::to_writer(&mut out, &meta)?;
    Ok(out)
}

/// Said after a function's docs in its Wassette description, since Wassette's argument conversion
/// (component2json) marks every parameter and every record field required, `option` ones included,
/// and returns a WIT `err` as a successful MCP result (`{"result": {"err": {"tag": ..., "val": ...}}}`).
pub const NULL_NOTE: &str = "Wassette: every argument and record field is required; pass null for each option you leave out.";
/// See [`NULL_NOTE`].
pub const ERR_NOTE: &str = "A failure is still a successful tool result: read result.err first (tag = what went wrong, val = what to do).";

/// The notes for one function: [`NULL_NOTE`] when an `option` appears anywhere in its parameters,
/// [`ERR_NOTE`] when it returns a `result` with an error.
pub fn agent_notes(resolve: &Resolve, func: &wit_parser::Function) -> String {
    let mut notes = String::new();
    if func.params.iter().any(|p| has_option(resolve, &p.ty, 0)) {
        notes.push_str("\n\n");
        notes.push_str(NULL_NOTE);
    }
    let fails = match func.result {
        Some(wit_parser::Type::Id(id)) => matches!(
            &resolve.types[id].kind,
            wit_parser::TypeDefKind::Result(r) if r.err.is_some()
        ),
        _ => false,
    };
    if fails {
        notes.push_str("\n\n");
        notes.push_str(ERR_NOTE);
    }
    notes
}

fn has_option(resolve: &Resolve, ty: &wit_parser::Type, depth: usize) -> bool {
    use wit_parser::TypeDefKind as K;
    let wit_parser::Type::Id(id) = ty else {
        return false;
    };
    if depth > 16 {
        return false;
    }
    let deeper = |t: &wit_parser::Type| has_option(resolve, t, depth + 1);
    match &resolve.types[*id].kind {
        K::Option(_) => true,
        K::Record(r) => r.fields.iter().any(|f| deeper(&f.ty)),
        K::List(t) | K::Type(t) | K::FixedLengthList(t, _) => deeper(t),
        K::Tuple(t) => t.types.iter().any(deeper),
        K::Variant(v) => v.cases.iter().filter_map(|c| c.ty.as_ref()).any(deeper),
        _ => false,
    }
}

fn object<'a>(value: &'a mut Value, key: &str) -> Result<&'a mut Map<String, Value>> {
    let Value::Object(map) = value else {
        bail!("package-docs: expected an object around `{key}`");
    };
    match map.entry(key).or_insert_with(|| json!({})) {
        Value::Object(inner) => Ok(inner),
        _ => bail!("package-docs: `{key}` is not an object"),
    }
}

/// `component` with its top-level `package-docs` sections (if any) replaced by one holding
/// `payload`, appended at the end (custom sections may be anywhere; this keeps every other byte).
pub fn embed(component: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
    // Component preamble: magic, version 0x0d, layer 1.
    if component.len() < 8 || component[..4] != *b"\0asm" || component[6..8] != [1, 0] {
        bail!("not a WebAssembly component");
    }
    let mut out = component[..8].to_vec();
    let mut pos = 8;
    while pos < component.len() {
        let start = pos;
        let (size, body) = read_u32(component, pos + 1).context("truncated section header")?;
        let end = body
            .checked_add(size as usize)
            .filter(|&e| e <= component.len())
            .context("section runs past the end of the component")?;
        let is_docs = component[start] == 0 && custom_name(&component[body..end]) == Some(SECTION);
        if !is_docs {
            out.extend_from_slice(&component[start..end]);
        }
        pos = end;
    }
    let mut content = Vec::new();
    write_u32(SECTION.len() as u32, &mut content);
    content.extend_from_slice(SECTION.as_bytes());
    content.extend_from_slice(payload);
    out.push(0);
    write_u32(u32::try_from(content.len())?, &mut out);
    out.extend_from_slice(&content);
    Ok(out)
}

fn custom_name(content: &[u8]) -> Option<&str> {
    let (len, start) = read_u32(content, 0)?;
    std::str::from_utf8(content.get(start..start.checked_add(len as usize)?)?).ok()
}

/// LEB128 u32 at `pos`: (value, position after it).
fn read_u32(bytes: &[u8], mut pos: usize) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(pos)?;
        pos += 1;
        value |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some((value, pos));
        }
    }
    None
}

fn write_u32(mut n: u32, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Every `package-docs` section's content, at any depth, in the order `Parser::parse_all` meets
/// them (the order Wassette reads; it takes the first).
pub fn package_docs_sections(wasm: &[u8]) -> Result<Vec<&[u8]>> {
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CustomSection(reader) = payload?
            && reader.name() == SECTION
        {
            found.push(reader.data());
        }
    }
    Ok(found)
}

/// What Wassette makes of a component: the `package-docs` JSON it reads (the first section, first
/// byte skipped), or `None` where Wassette finds none.
pub fn wassette_docs(wasm: &[u8]) -> Result<Option<Value>> {
    let Some(data) = package_docs_sections(wasm)?.first().copied() else {
        return Ok(None);
    };
    if data.len() < 2 {
        return Ok(None);
    }
    Ok(serde_json::from_slice(&data[1..]).ok())
}

/// The description Wassette gives the tool for an exported function named `function` (bare name,
/// as it appears in its interface): `worlds.<any>.func_exports.<function>.docs`.
pub fn wassette_description(docs: &Value, function: &str) -> Option<String> {
    docs.get("worlds")?.as_object()?.values().find_map(|world| {
        let text = world.get("func_exports")?.get(function)?.get("docs")?;
        text.as_str().map(str::to_string)
    })
}
