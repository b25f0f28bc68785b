//! IronClaw's extension package for the IronClaw build (`reborn.extension_manifest.v3`), generated
//! from [`crate::commands::describe`] so it cannot drift from the commands: `manifest.toml` with one
//! `[[tools]]` per command (id [`tool_shim::tool_id`], effects, default permission, credentials per
//! API family with a literal HTTPS audience host), `schemas/theta/<name>.input.v1.json`
//! ([`tool_shim::tool_input_schema`]) and `prompts/theta/<name>.md`. The runtime passes the tool id
//! as the execute context's `capability_id`, and the component dispatches on it.
//!
//! The committed copy is `hosts/ironclaw/` (checked by the test below; regenerate with
//! `THETA_UPDATE_IRONCLAW_PACKAGE=1 cargo test --release -p theta-plugin --lib ironclaw_package`).
//! v3 refuses wildcard audiences, so the dedicated-endpoint family (`theta.inference.*`) gets its
//! token injected only when the package is generated for one endpoint host:
//! `cargo run --release -p theta-plugin --example ironclaw-package -- --out DIR --inference-host
//! NAME.onthetaedgecloud.com` (without it, those tools reach `*.onthetaedgecloud.com` with no
//! credential, which serves endpoints that need none). Native only: never part of the component.

use crate::commands::{CommandInfo, Effect};
use crate::tool_shim::{self, EXTENSION_ID};
use serde_json::Value;

/// Where the committed package lives, relative to the repository root.
pub const PACKAGE_DIR: &str = "hosts/ironclaw";

/// Where the runtime finds the component inside the package (scripts/build-wasm.sh copies it there
/// in the assembled package, target/wasm32-wasip2/plugin-release/ironclaw-theta/).
pub const MODULE_PATH: &str = "wasm/theta.wasm";

const ONDEMAND_HOST: &str = "ondemand.thetaedgecloud.com";
const CONTROLLER_HOST: &str = "controller.thetaedgecloud.com";
const PLATFORM_HOST: &str = "api.thetaedgecloud.com";
const VIDEO_HOST: &str = "api.thetavideoapi.com";
const DEPLOYMENT_HOSTS: &str = "*.onthetaedgecloud.com";

/// One `[auth.<name>]` section: name, display name, (handle, label) of each secret field.
type AuthSection = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// Options of one generated package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageOptions {
    /// The dedicated endpoint host (`name.onthetaedgecloud.com`) whose bearer token IronClaw
    /// injects for `theta.inference.*`; `None`: no credential for that family.
    pub inference_host: Option<String>,
}

/// One credential IronClaw injects into requests to one literal host.
struct Credential {
    handle: &'static str,
    host: String,
    header: &'static str,
    prefix: Option<&'static str>,
}

/// The API family of a command, by name, and what IronClaw must know of it: the credentials it
/// injects (per literal host) and the hosts reached without one.
fn family_access(info: &CommandInfo, opts: &PackageOptions) -> (Vec<Credential>, Vec<String>) {
    let name = info.name.as_str();
    let cred = |handle, host: &str, header, prefix| Credential {
        handle,
        host: host.to_owned(),
        header,
        prefix,
    };
    let ec_key = |host: &str| cred("theta_ec_api_key", host, "x-api-key", None);
    if name.starts_with("theta.auth.") {
        (Vec::new(), Vec::new())
    } else if name.starts_with("theta.deployments.") {
        let targets = if name == "theta.deployments.validateDisposable" {
            vec![DEPLOYMENT_HOSTS.to_owned()]
        } else {
            Vec::new()
        };
        (
            vec![ec_key(CONTROLLER_HOST), ec_key(PLATFORM_HOST)],
            targets,
        )
    } else if name.starts_with("theta.ai.agent.") {
        (vec![ec_key(CONTROLLER_HOST)], Vec::new())
    } else if name.starts_with("theta.billing.") {
        (vec![ec_key(PLATFORM_HOST)], Vec::new())
    } else if name.starts_with("theta.video.") {
        (
            vec![
                cred("theta_video_sa_id", VIDEO_HOST, "x-tva-sa-id", None),
                cred("theta_video_sa_secret", VIDEO_HOST, "x-tva-sa-secret", None),
            ],
            Vec::new(),
        )
    } else if name.starts_with("theta.inference.") {
        match &opts.inference_host {
            Some(host) => (
                vec![cred(
                    "theta_inference_auth_token",
                    host,
                    "authorization",
                    Some("Bearer "),
                )],
                Vec::new(),
            ),
            None => (Vec::new(), vec![DEPLOYMENT_HOSTS.to_owned()]),
        }
    } else if info.credentials.is_empty() {
        // The public on-demand catalogue.
        (Vec::new(), vec![ONDEMAND_HOST.to_owned()])
    } else {
        (
            vec![cred(
                "theta_ondemand_api_token",
                ONDEMAND_HOST,
                "authorization",
                Some("Bearer "),
            )],
            Vec::new(),
        )
    }
}

/// A TOML basic string (JSON's escapes are TOML's).
fn s(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

fn bare(info: &CommandInfo) -> String {
    tool_shim::tool_id(&info.name)[EXTENSION_ID.len() + 1..].to_owned()
}

fn effects(info: &CommandInfo, creds: &[Credential], targets: &[String]) -> Vec<&'static str> {
    let mut effects = Vec::new();
    if !creds.is_empty() || !targets.is_empty() {
        effects.push("network");
    }
    if !creds.is_empty() {
        effects.push("use_secret");
    }
    if info.effect != Effect::Read {
        effects.push("external_write");
    }
    if info.effect == Effect::Spend {
        effects.push("financial");
    }
    effects
}

/// Checks a dedicated endpoint host: a literal name under onthetaedgecloud.com.
pub fn check_inference_host(host: &str) -> Result<(), String> {
    let ok = host.ends_with(".onthetaedgecloud.com")
        && host.len() > ".onthetaedgecloud.com".len()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !host.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a dedicated endpoint host: expected a literal lower-case name.onthetaedgecloud.com (no wildcard, no scheme)"
        ))
    }
}

/// The package's files, `(path relative to the package, content)`, manifest first.
pub fn files(
    commands: &[CommandInfo],
    opts: &PackageOptions,
) -> Result<Vec<(String, String)>, String> {
    if let Some(host) = &opts.inference_host {
        check_inference_host(host)?;
    }
    let mut m = String::new();
    m.push_str(
        "# IronClaw extension package of the Theta EdgeCloud tool (the IronClaw build of theta-plugin,\n\
         # world near:agent/sandboxed-tool@0.4.1). Generated from the plugin's describe() by\n\
         # plugin/src/ironclaw_package.rs: do not edit; see README.md, \"IronClaw\".\n",
    );
    match &opts.inference_host {
        Some(host) => m.push_str(&format!(
            "# Dedicated endpoint: {host} (theta.inference.* get theta_inference_auth_token there).\n"
        )),
        None => m.push_str(
            "# No dedicated endpoint host: theta.inference.* reach *.onthetaedgecloud.com without a credential;\n\
             # generate the package with --inference-host to inject an endpoint's token.\n",
        ),
    }
    m.push_str(&format!(
        "schema_version = \"reborn.extension_manifest.v3\"\nid = {}\nname = \"Theta EdgeCloud\"\nversion = {}\n\
         description = {}\ntrust = \"untrusted\"\n\n[runtime]\nkind = \"wasm\"\nmodule = {}\n",
        s(EXTENSION_ID),
        s(env!("CARGO_PKG_VERSION")),
        s("Theta EdgeCloud: on-demand AI models (LLM chat, image, audio, video), dedicated deployments and their endpoints, AI agents, video, and billing."),
        s(MODULE_PATH),
    ));
    let mut out = Vec::new();
    let mut handles = std::collections::BTreeSet::new();
    for info in commands {
        let (creds, targets) = family_access(info, opts);
        let name = bare(info);
        let id = tool_shim::tool_id(&info.name);
        let schema_ref = format!("schemas/{EXTENSION_ID}/{name}.input.v1.json");
        let prompt_ref = format!("prompts/{EXTENSION_ID}/{name}.md");
        let effects = effects(info, &creds, &targets);
        let permission = if info.effect == Effect::Read {
            "allow"
        } else {
            "ask"
        };
        m.push_str(&format!(
            "\n[[tools]]\nid = {}\ndescription = {}\neffects = [{}]\ndefault_permission = {}\nvisibility = \"model\"\n\
             input_schema_ref = {}\nprompt_doc_ref = {}\n",
            s(&id),
            s(&info.summary),
            effects.iter().map(|e| s(e)).collect::<Vec<_>>().join(", "),
            s(permission),
            s(&schema_ref),
            s(&prompt_ref),
        ));
        if !targets.is_empty() {
            m.push_str(&format!(
                "network_targets = [{}]\n",
                targets
                    .iter()
                    .map(|t| format!("{{ scheme = \"https\", host_pattern = {} }}", s(t)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for c in &creds {
            handles.insert(c.handle);
            let prefix = c
                .prefix
                .map(|p| format!(", prefix = {}", s(p)))
                .unwrap_or_default();
            m.push_str(&format!(
                "\n[[tools.credentials]]\nhandle = {}\nvendor = \"theta\"\naudience = {{ scheme = \"https\", host = {} }}\n\
                 injection = {{ type = \"header\", name = {}{prefix} }}\n",
                s(c.handle),
                s(&c.host),
                s(c.header),
            ));
        }
        let schema = tool_shim::tool_input_schema(info);
        out.push((
            schema_ref,
            format!(
                "{}\n",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            ),
        ));
        out.push((prompt_ref, prompt_doc(info, &id, &schema, &creds)));
    }
    let auths: [AuthSection; 4] = [
        (
            "theta_ondemand",
            "Theta EdgeCloud on-demand API",
            &[(
                "theta_ondemand_api_token",
                "Access token (dashboard: On-demand model APIs)",
            )],
        ),
        (
            "theta_controller",
            "Theta EdgeCloud project API key (deployments, AI agents, billing)",
            &[("theta_ec_api_key", "Project API key")],
        ),
        (
            "theta_video",
            "Theta Video API service account",
            &[
                ("theta_video_sa_id", "Service account id (srvacc_…)"),
                ("theta_video_sa_secret", "Service account secret"),
            ],
        ),
        (
            "theta_inference",
            "Bearer token of your dedicated deployment's endpoint",
            &[("theta_inference_auth_token", "Endpoint token")],
        ),
    ];
    for (name, display, fields) in auths {
        if !fields.iter().any(|(h, _)| handles.contains(h)) {
            continue;
        }
        m.push_str(&format!(
            "\n[auth.{name}]\nmethod = \"api_key\"\ndisplay_name = {}\nfields = [ {} ]\n",
            s(display),
            fields
                .iter()
                .map(|(h, l)| format!("{{ handle = {}, label = {}, secret = true }}", s(h), s(l)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.insert(0, ("manifest.toml".into(), m));
    Ok(out)
}

/// The prompt doc of one tool: what it does, what it costs, its arguments, and how it fails.
fn prompt_doc(info: &CommandInfo, id: &str, schema: &Value, creds: &[Credential]) -> String {
    let mut d = format!("# {id}\n\n{}\n\n", info.summary);
    d.push_str(&match info.effect {
        Effect::Read => "Reads only: nothing is changed or charged.\n".to_owned(),
        Effect::Mutate => "Changes your Theta EdgeCloud account (an external write). Pass `\"dry_run\": true` to get the request it would send, without sending it.\n".to_owned(),
        Effect::Spend => "**Costs money** on Theta EdgeCloud (an external write). Pass `\"dry_run\": true` to get the request it would send, without sending it, and confirm with the user before running it for real.\n".to_owned(),
    });
    d.push_str(&format!(
        "\nTheta command: `{}`.\n\n## Arguments\n\n",
        info.name
    ));
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match schema["properties"].as_object().filter(|p| !p.is_empty()) {
        None => d.push_str("None: call it with `{}`.\n"),
        Some(props) => {
            for (key, prop) in props {
                let kind = prop["type"].as_str().unwrap_or("value");
                let req = if required.contains(&key.as_str()) {
                    ", required"
                } else {
                    ""
                };
                let about = prop["description"].as_str().unwrap_or("");
                d.push_str(&format!("- `{key}` ({kind}{req}): {about}\n"));
            }
            d.push_str("\nLeave an optional argument out rather than sending it empty. The full JSON Schema is the tool's input schema.\n");
        }
    }
    if !creds.is_empty() {
        let handles: std::collections::BTreeSet<&str> = creds.iter().map(|c| c.handle).collect();
        d.push_str(&format!(
            "\n## Credentials\n\nIronClaw injects {} into the request; the tool never sees it. A missing one fails with `auth-required` naming it.\n",
            handles.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(" and ")
        ));
    }
    d.push_str(
        "\n## Result and failures\n\nSuccess: the command's JSON result (a requested dry run: `{\"kind\": \"dry-run\", \"preview\": {...}}`). \
         Failure: `code` is the error kind (`invalid-argument`, `missing-credential`, `denied`, `dry-run`, `upstream-<status>`, \
         `capacity-exhausted`, `timeout`, `transport`) and `message` is one line, then the error as JSON. \
         `transport-after-send` / `timeout-after-send`: the request reached Theta before it failed, so it may have run and been \
         charged: check (e.g. `theta.get_request_status`, a list tool) before calling again.\n",
    );
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::describe;
    use std::path::{Path, PathBuf};

    fn package_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(PACKAGE_DIR)
    }

    /// Every file under `dir`, relative to it.
    fn tree(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                tree(&p, base, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn committed_ironclaw_package_is_up_to_date_with_describe() {
        let want = files(&describe(), &PackageOptions::default()).unwrap();
        let dir = package_dir();
        if std::env::var("THETA_UPDATE_IRONCLAW_PACKAGE").is_ok_and(|v| v == "1") {
            let _ = std::fs::remove_dir_all(dir.join("schemas"));
            let _ = std::fs::remove_dir_all(dir.join("prompts"));
            for (path, text) in &want {
                let p = dir.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, text).unwrap();
            }
            eprintln!("wrote {}", dir.display());
            return;
        }
        let hint = "regenerate with THETA_UPDATE_IRONCLAW_PACKAGE=1 cargo test --release -p theta-plugin --lib ironclaw_package and commit the result";
        let mut have = Vec::new();
        tree(&dir, &dir, &mut have);
        have.sort();
        let mut names: Vec<String> = want.iter().map(|(p, _)| p.clone()).collect();
        names.sort();
        assert_eq!(
            have, names,
            "{PACKAGE_DIR} has other files than the generator writes; {hint}"
        );
        for (path, text) in &want {
            let committed = std::fs::read_to_string(dir.join(path)).unwrap_or_default();
            assert!(
                committed == *text,
                "{PACKAGE_DIR}/{path} is out of date with describe(); {hint}"
            );
        }
    }

    #[test]
    fn tools_are_one_per_command_with_effects_permissions_and_literal_audiences() {
        let commands = describe();
        let manifest = &files(&commands, &PackageOptions::default()).unwrap()[0].1;
        assert!(manifest.contains("schema_version = \"reborn.extension_manifest.v3\""));
        assert_eq!(manifest.matches("\n[[tools]]\n").count(), commands.len());
        for c in &commands {
            let id = tool_shim::tool_id(&c.name);
            let start = manifest.find(&format!("\nid = \"{id}\"\n")).unwrap();
            let block = &manifest[start..];
            let block = &block[..block[1..]
                .find("\n[[tools]]")
                .map_or(block.len(), |i| i + 1)];
            let ask = block.contains("default_permission = \"ask\"");
            assert_eq!(ask, c.effect != Effect::Read, "{id}");
            assert_eq!(
                block.contains("\"external_write\""),
                c.effect != Effect::Read,
                "{id}"
            );
            assert_eq!(
                block.contains("\"financial\""),
                c.effect == Effect::Spend,
                "{id}"
            );
            for line in block.lines().filter(|l| l.starts_with("audience")) {
                assert!(
                    line.contains("scheme = \"https\"") && !line.contains('*'),
                    "{id}: {line}"
                );
            }
        }
        assert!(!manifest.contains("theta_inference_auth_token"));
        // For one dedicated endpoint: its token, injected there only.
        let opts = PackageOptions {
            inference_host: Some("my-llm-abc.tec-s1.onthetaedgecloud.com".into()),
        };
        let manifest = &files(&commands, &opts).unwrap()[0].1;
        assert!(manifest.contains("host = \"my-llm-abc.tec-s1.onthetaedgecloud.com\""));
        assert!(manifest.contains("[auth.theta_inference]"));
        for bad in [
            "*.onthetaedgecloud.com",
            "https://x.onthetaedgecloud.com",
            "evil.com",
            "onthetaedgecloud.com",
        ] {
            let opts = PackageOptions {
                inference_host: Some(bad.into()),
            };
            assert!(files(&commands, &opts).is_err(), "{bad}");
        }
    }
}
