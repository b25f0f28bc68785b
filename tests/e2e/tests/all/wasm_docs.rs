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
    let described = theta_wit_docs::wassette_description(&json, "invoke").unwrap();
    assert!(described.starts_with(&invoke), "{described}");
    // What an agent needs to know of Wassette's conversion: absent options are null, and a WIT
    // `err` is a successful result whose body holds it.
    assert!(described.ends_with(theta_wit_docs::ERR_NOTE), "{described}");
    assert!(
        !described.contains(theta_wit_docs::NULL_NOTE),
        "invoke has no option: {described}"
    );
    let list = theta_wit_docs::wassette_description(&json, "list-services").unwrap();
    assert!(list.contains(theta_wit_docs::NULL_NOTE), "{list}");
    let describe = theta_wit_docs::wassette_description(&json, "describe").unwrap();
    assert!(
        !describe.contains(theta_wit_docs::ERR_NOTE),
        "describe cannot fail: {describe}"
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

/// Wassette's `tools/list` for a component, rebuilt the way Wassette 0.8 builds it (microsoft/wassette
/// `crates/component2json`: one tool per exported function, named `<interface>_<function>` with
/// `:`, `/`, `.`, `@` made `_`; `inputSchema` an object of every parameter, all required;
/// `outputSchema` `{"result": <result type>}`; records with every field required, variants as
/// `{"tag", "val"}`, options as `anyOf [null, T]`, results as `oneOf [{"ok"}, {"err"}]`), with the
/// descriptions Wassette reads from package-docs.
fn wassette_tools_list(path: &Path) -> serde_json::Value {
    use serde_json::{Value, json};
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{Component, Type};
    fn schema(t: &Type) -> Value {
        match t {
            Type::Bool => json!({"type": "boolean"}),
            Type::S8
            | Type::S16
            | Type::S32
            | Type::S64
            | Type::U8
            | Type::U16
            | Type::U32
            | Type::U64
            | Type::Float32
            | Type::Float64 => json!({"type": "number"}),
            Type::Char => json!({"type": "string", "description": "1 unicode codepoint"}),
            Type::String => json!({"type": "string"}),
            Type::List(l) => json!({"type": "array", "items": schema(&l.ty())}),
            Type::Record(r) => {
                let mut props = serde_json::Map::new();
                let mut required = Vec::new();
                for f in r.fields() {
                    required.push(json!(f.name));
                    props.insert(f.name.to_owned(), schema(&f.ty));
                }
                json!({"type": "object", "properties": props, "required": required})
            }
            Type::Tuple(t) => {
                let items: Vec<Value> = t.types().map(|t| schema(&t)).collect();
                let n = items.len();
                json!({"type": "array", "prefixItems": items, "minItems": n, "maxItems": n})
            }
            Type::Variant(v) => json!({"oneOf": v.cases().map(|c| match &c.ty {
                Some(ty) => json!({"type": "object", "properties": {"tag": {"const": c.name}, "val": schema(ty)}, "required": ["tag", "val"]}),
                None => json!({"type": "object", "properties": {"tag": {"const": c.name}}, "required": ["tag"]}),
            }).collect::<Vec<_>>()}),
            Type::Enum(e) => json!({"type": "string", "enum": e.names().collect::<Vec<_>>()}),
            Type::Option(o) => json!({"anyOf": [{"type": "null"}, schema(&o.ty())]}),
            Type::Result(r) => {
                let ok = r
                    .ok()
                    .map(|t| schema(&t))
                    .unwrap_or(json!({"type": "null"}));
                let err = r
                    .err()
                    .map(|t| schema(&t))
                    .unwrap_or(json!({"type": "null"}));
                json!({"oneOf": [
                    {"type": "object", "properties": {"ok": ok}, "required": ["ok"]},
                    {"type": "object", "properties": {"err": err}, "required": ["err"]}
                ]})
            }
            Type::Flags(f) => {
                json!({"type": "object", "properties": f.names().map(|n| (n.to_owned(), json!({"type": "boolean"}))).collect::<serde_json::Map<_, _>>()})
            }
            other => json!({"type": "string", "description": format!("{other:?}")}),
        }
    }
    let norm = |s: &str| -> String {
        s.to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let wasm = read(path);
    let docs = theta_wit_docs::wassette_docs(&wasm)
        .unwrap()
        .unwrap_or(Value::Null);
    let engine = wasmtime::Engine::default();
    let component = Component::new(&engine, &wasm).expect("wasmtime compiles the component");
    let mut tools = Vec::new();
    for (iface, item) in component.component_type().exports(&engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        for (name, item) in instance.exports(&engine) {
            let ComponentItem::ComponentFunc(func) = item.ty else {
                continue;
            };
            let tool = format!("{}_{}", norm(iface), norm(name));
            let mut props = serde_json::Map::new();
            let mut required = Vec::new();
            for (p, t) in func.params() {
                required.push(json!(p));
                props.insert(p.to_owned(), schema(&t));
            }
            let results: Vec<Type> = func.results().collect();
            let description = theta_wit_docs::wassette_description(&docs, name)
                .unwrap_or_else(|| format!("Auto-generated schema for function '{tool}'"));
            let mut t = json!({
                "name": tool,
                "description": description,
                "inputSchema": {"type": "object", "properties": props, "required": required},
            });
            if let [result] = results.as_slice() {
                t["outputSchema"] = json!({"type": "object", "properties": {"result": schema(result)}, "required": ["result"]});
            }
            tools.push(t);
        }
    }
    json!({ "tools": tools })
}

fn wassette_commands_wasm() -> PathBuf {
    wassette_wasm().with_file_name("theta_plugin_wassette_commands.wasm")
}

/// (tools, total bytes) of Wassette's tools/list for a component, printed with its parts.
fn measure(path: &Path) -> (Vec<serde_json::Value>, usize) {
    let list = wassette_tools_list(path);
    let tools = list["tools"].as_array().unwrap().clone();
    let total = list.to_string().len();
    let part = |key: &str| -> usize { tools.iter().map(|t| t[key].to_string().len()).sum() };
    eprintln!(
        "Wassette tools/list of {}: {} tools, {total} bytes (output schemas {}, input schemas {}, descriptions {})",
        path.file_name().unwrap().to_string_lossy(),
        tools.len(),
        part("outputSchema"),
        part("inputSchema"),
        part("description"),
    );
    assert!(
        tools.iter().all(|t| !t["description"]
            .as_str()
            .unwrap()
            .starts_with("Auto-generated")),
        "every tool is described"
    );
    (tools, total)
}

#[test]
fn wassette_tools_list_size_is_measured_and_the_commands_artifact_is_small() {
    let (typed, typed_bytes) = measure(&wassette_wasm());
    assert!(
        typed
            .iter()
            .any(|t| t["name"].as_str().unwrap().ends_with("_invoke"))
    );
    let (small, small_bytes) = measure(&wassette_commands_wasm());
    let mut names: Vec<&str> = small.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "theta_edgecloud_commands_0_1_0_describe",
            "theta_edgecloud_commands_0_1_0_invoke"
        ]
    );
    assert!(
        small_bytes * 10 < typed_bytes,
        "{small_bytes} vs {typed_bytes}"
    );
    assert!(small_bytes < 8 * 1024, "{small_bytes}");
    let invoke = small
        .iter()
        .find(|t| t["name"].as_str().unwrap().ends_with("_invoke"))
        .unwrap();
    let text = invoke["description"].as_str().unwrap();
    assert!(
        text.contains("describe") && text.contains(theta_wit_docs::ERR_NOTE),
        "{text}"
    );
}

#[tokio::test]
async fn the_commands_artifact_runs_every_command_by_name() {
    let small = Runtime::new(HostConfig::empty(), &wassette_commands_wasm())
        .await
        .expect("theta-host loads the command-plugin world");
    let full = Runtime::new(HostConfig::empty(), &crate::common::plugin_wasm())
        .await
        .unwrap();
    let names = |c: Vec<theta_host::bindings::CommandInfo>| {
        c.into_iter().map(|c| c.name).collect::<Vec<_>>()
    };
    assert_eq!(
        names(small.describe().await.unwrap()),
        names(full.describe().await.unwrap())
    );
    let wasm = read(&wassette_commands_wasm());
    let docs = theta_wit_docs::wassette_docs(&wasm)
        .unwrap()
        .expect("package-docs");
    assert!(theta_wit_docs::wassette_description(&docs, "invoke").is_some());
    assert!(
        theta_wit_docs::wassette_description(&docs, "list-services").is_none(),
        "only the command-plugin world"
    );
}
