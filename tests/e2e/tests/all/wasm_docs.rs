//! The WIT docs in the built components (`package-docs`, see tools/wit-docs): Wassette's copy
//! (`theta_plugin_wassette.wasm`) carries them in the form Wassette reads and still runs in wasmtime;
//! the main artifact carries none, so that jco and `wasm-tools component wit` (wit-component's
//! decoder, which rejects the section in a component) keep working on it.

use std::path::{Path, PathBuf};
use theta_host::{HostConfig, Runtime};
use theta_wit_docs::wit_parser::{PackageMetadata, Resolve, WorldItem, decoding};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wassette_wasm() -> PathBuf {
    let path = root().join("target/wasm32-wasip2/plugin-release/theta_plugin_wassette.wasm");
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-wasm.sh",
        path.display()
    );
    path
}

/// (interface, function, docs) for every function of an interface the `plugin` world exports,
/// straight from wit/ (not through tools/wit-docs).
fn wit_functions() -> Vec<(String, String, Option<String>)> {
    let mut resolve = Resolve::new();
    let (pkg, _) = resolve.push_dir(root().join("wit")).expect("wit/ parses");
    let world = resolve.select_world(&[pkg], Some("plugin")).unwrap();
    let mut out = Vec::new();
    for item in resolve.worlds[world].exports.values() {
        if let WorldItem::Interface { id, .. } = item {
            let iface = &resolve.interfaces[*id];
            for (name, f) in &iface.functions {
                out.push((
                    iface.name.clone().unwrap(),
                    name.clone(),
                    f.docs.contents.clone(),
                ));
            }
        }
    }
    out
}

fn docs_of(functions: &[(String, String, Option<String>)], iface: &str, func: &str) -> String {
    let (.., docs) = functions
        .iter()
        .find(|(i, f, _)| i == iface && f == func)
        .unwrap_or_else(|| panic!("wit/ has no exported {iface}.{func}"));
    let docs = docs.clone().unwrap_or_default();
    assert!(
        !docs.trim().is_empty(),
        "{iface}.{func} has no /// docs in wit/"
    );
    docs
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn wassette_copy_has_the_wit_docs_where_wassette_reads_them() {
    let wasm = read(&wassette_wasm());
    let main = read(&crate::common::plugin_wasm());
    assert!(
        wasm.starts_with(&main),
        "theta_plugin_wassette.wasm is not theta_plugin.wasm plus a section: rerun scripts/build-wasm.sh"
    );

    // Exactly one section, in wit-parser's own format: version byte 1 + JSON its decoder accepts.
    let sections = theta_wit_docs::package_docs_sections(&wasm).unwrap();
    assert_eq!(sections.len(), 1, "one package-docs section");
    assert_eq!(sections[0][0], 1, "package-docs format version");
    PackageMetadata::decode(sections[0]).expect("wit-parser decodes the section");

    let functions = wit_functions();
    let json = theta_wit_docs::wassette_docs(&wasm)
        .unwrap()
        .expect("Wassette finds package-docs");

    // The standard place (what `wit-docs-inject` writes): interfaces.<name>.funcs.<name>.docs.
    for (iface, func) in [("ondemand", "chat"), ("commands", "invoke")] {
        assert_eq!(
            json["interfaces"][iface]["funcs"][func]["docs"].as_str(),
            Some(docs_of(&functions, iface, func).as_str()),
            "interfaces.{iface}.funcs.{func}.docs"
        );
    }

    // Wassette's lookup: worlds.*.func_exports.<bare name>.docs.
    let invoke = docs_of(&functions, "commands", "invoke");
    assert_eq!(
        theta_wit_docs::wassette_description(&json, "invoke").as_deref(),
        Some(invoke.as_str())
    );
    // `chat` is exported by two interfaces; Wassette looks both up by the bare name, so the one
    // description gives each.
    let chat = theta_wit_docs::wassette_description(&json, "chat").expect("chat described");
    for iface in ["ondemand", "inference"] {
        let docs = docs_of(&functions, iface, "chat");
        assert!(
            chat.contains(&format!("`{iface}.chat`: {docs}")),
            "{iface}.chat in {chat:?}"
        );
    }
    // Every documented exported function gets its docs as its Wassette description.
    for (iface, func, docs) in &functions {
        let Some(docs) = docs.as_deref().filter(|d| !d.trim().is_empty()) else {
            continue;
        };
        let described = theta_wit_docs::wassette_description(&json, func)
            .unwrap_or_else(|| panic!("no Wassette description for {iface}.{func}"));
        assert!(described.contains(docs), "{iface}.{func}: {described:?}");
    }
}

#[test]
fn main_artifact_has_no_package_docs_and_stays_decodable() {
    let main = read(&crate::common::plugin_wasm());
    assert!(
        theta_wit_docs::package_docs_sections(&main)
            .unwrap()
            .is_empty(),
        "theta_plugin.wasm must not carry package-docs (jco and wasm-tools reject it)"
    );
    decoding::decode(&main)
        .expect("wit-component's decoder (jco, wasm-tools) reads theta_plugin.wasm");
    // Why the docs live in a copy: the same decoder rejects the component once it has them. If this
    // starts passing, a newer wit-parser accepts it and the two artifacts can become one.
    let err = decoding::decode(&read(&wassette_wasm()))
        .err()
        .expect("wit-parser 0.254 rejects package-docs in a component");
    assert!(format!("{err:#}").contains("missing world"), "{err:#}");
}

#[tokio::test]
async fn wassette_copy_loads_and_runs_in_wasmtime() {
    let with_docs = Runtime::new(HostConfig::empty(), &wassette_wasm())
        .await
        .expect("wasmtime loads theta_plugin_wassette.wasm");
    let plain = Runtime::new(HostConfig::empty(), &crate::common::plugin_wasm())
        .await
        .expect("plugin loads");
    let commands = with_docs.describe().await.expect("describe() runs");
    assert!(!commands.is_empty());
    assert_eq!(commands.len(), plain.describe().await.unwrap().len());
}
