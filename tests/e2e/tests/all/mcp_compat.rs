//! Compatibility with Theta's official on-demand MCP server: one client script
//! (`tests/mcp-compat/client.mjs`, the official TypeScript MCP SDK, pinned) runs against the official
//! server (built from `../shared/peers/theta-on-demand-api-mcp`) and against `theta-host mcp`, each on a
//! fresh fake EdgeCloud, and every difference in the official four must be one of the deliberate ones
//! listed in `docs/mcp-differences.md`.
//!
//! Skipped, with a message, when node/npm, the official source or the npm registry is unavailable.

use crate::common::{TOKEN, fake, plugin_wasm};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn skip(why: &str) {
    println!("SKIPPED mcp_compat: {why}");
    eprintln!("SKIPPED mcp_compat: {why}");
}

fn works(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a command in `dir`; `Err` with its output when it fails.
fn run(dir: &Path, cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{cmd} {}` in {} failed: {}{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "node_modules" || name == "dist" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name))?;
        } else {
            std::fs::copy(&path, to.join(&name))?;
        }
    }
    Ok(())
}

/// The official server built outside its source tree, and the client script with its pinned SDK.
fn prepare() -> Result<(PathBuf, PathBuf), String> {
    let peer = std::env::var_os("THETA_OFFICIAL_MCP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/peers/theta-on-demand-api-mcp"));
    if !peer.join("package.json").exists() {
        return Err(format!("no official server source at {}", peer.display()));
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-compat");
    let official = work.join("official");
    let index = official.join("dist/index.js");
    if !index.exists() {
        let _ = std::fs::remove_dir_all(&official);
        copy_dir(&peer, &official).map_err(|e| format!("copying the official source: {e}"))?;
        // Its package-lock.json pins every version.
        run(&official, "npm", &["ci", "--no-audit", "--no-fund"])?;
        run(&official, "npx", &["tsc"])?;
    }
    let client = work.join("client");
    std::fs::create_dir_all(&client).map_err(|e| e.to_string())?;
    let ours = root().join("tests/mcp-compat");
    for f in ["package.json", "package-lock.json", "client.mjs"] {
        std::fs::copy(ours.join(f), client.join(f)).map_err(|e| format!("{f}: {e}"))?;
    }
    if !client
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
    {
        run(&client, "npm", &["ci", "--no-audit", "--no-fund"])?;
    }
    Ok((index, client))
}

/// Runs the script against one server and returns its JSON transcript.
fn transcript(client: &Path, server: &[String], env: &[(&str, String)]) -> Value {
    let mut cmd = Command::new("node");
    cmd.current_dir(client)
        .arg("client.mjs")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("MCP_COMPAT_SERVER", serde_json::to_string(server).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node runs");
    assert!(
        out.status.success(),
        "the client script failed against {server:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Times differ between two runs of the fake; nothing else should.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| {
            for prefix in ["Created: ", "Updated: "] {
                if l.starts_with(prefix) {
                    return format!("{prefix}<time>");
                }
            }
            l.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text without our `Note: ...` paragraphs.
fn without_notes(text: &str) -> String {
    match text.find("\n\nNote: ") {
        Some(i) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

/// The text without our `Cost: <x> USD` line.
fn without_cost(text: &str) -> String {
    match text.rfind("\n\nCost: ") {
        Some(i) if text[i..].trim_end().ends_with(" USD") => text[..i].to_owned(),
        _ => text.to_owned(),
    }
}

/// The deliberate differences (tags of docs/mcp-differences.md) that explain `ours` against
/// `official`, or `None` when the difference is not deliberate.
fn explain(step: &str, official: &Value, ours: &Value) -> Option<Vec<&'static str>> {
    let text = |v: &Value| normalize(v["text"].as_str().unwrap_or(""));
    let err = |v: &Value| v["isError"] == true;
    let (a, b) = (text(official), text(ours));
    if a == b && err(official) == err(ours) {
        return Some(Vec::new());
    }
    if err(official) && err(ours) && a.starts_with("Error: ") && b.starts_with("Error: ") {
        return Some(vec!["error-text"]);
    }
    if err(official) == err(ours) {
        let mut tags = Vec::new();
        let mut b = b.clone();
        if without_notes(&b) != b {
            b = without_notes(&b);
            tags.push("notes");
        }
        if without_cost(&b) != b {
            b = without_cost(&b);
            tags.push("cost-usd");
        }
        if a == b {
            return Some(tags);
        }
    }
    match step {
        "infer chat model"
            if !a.starts_with("Inference completed") && b.starts_with("Inference completed") =>
        {
            Some(vec!["chat-json"])
        }
        // The official server reads `urls[field]`, which the live answer has not: it throws.
        "upload url" if a.starts_with("Error: ") && b.starts_with("**Upload URL Generated**") => {
            Some(vec!["upload-shape"])
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_four_answer_like_the_official_server() {
    if !works("node", "--version") || !works("npm", "--version") {
        return skip("node and npm are not installed");
    }
    let (official_index, client) = match tokio::task::spawn_blocking(prepare).await.unwrap() {
        Ok(paths) => paths,
        Err(why) => {
            return skip(&format!(
                "cannot build the official server or the client: {why}"
            ));
        }
    };
    let differences = std::fs::read_to_string(root().join("docs/mcp-differences.md"))
        .expect("docs/mcp-differences.md");

    let fake_a = fake().await;
    let official = {
        let server = vec![
            "node".to_owned(),
            official_index.to_string_lossy().into_owned(),
        ];
        let env = [
            ("THETA_API_KEY", TOKEN.to_owned()),
            ("THETA_API_BASE_URL", format!("http://{}", fake_a.addr())),
        ];
        let client = client.clone();
        tokio::task::spawn_blocking(move || transcript(&client, &server, &env))
            .await
            .unwrap()
    };
    let fake_b = fake().await;
    let ours = {
        let server = vec![
            crate::mcp::theta_host_bin().to_string_lossy().into_owned(),
            "--env-file".into(),
            "/nonexistent/.env.local".into(),
            "--plugin".into(),
            plugin_wasm().to_string_lossy().into_owned(),
            "--test-upstream".into(),
            fake_b.addr().to_string(),
            "mcp".into(),
        ];
        let env = [
            ("THETA_ONDEMAND_API_KEY", TOKEN.to_owned()),
            ("THETA_STORE_URL", crate::common::temp_store()),
            ("THETA_HTTP_RETRY_BACKOFF_MS", "25".to_owned()),
        ];
        let client = client.clone();
        tokio::task::spawn_blocking(move || transcript(&client, &server, &env))
            .await
            .unwrap()
    };

    let mut failures = Vec::new();
    let mut used = Vec::new();
    // tools/list: the same four, with the same required fields, property types and defaults.
    let tools = |t: &Value| t["tools"].as_array().cloned().unwrap_or_default();
    assert_eq!(tools(&official).len(), 4, "{official}");
    let size = |t: &Value| {
        serde_json::to_string(&serde_json::json!({"tools": t["tools"]}))
            .unwrap()
            .len()
    };
    println!(
        "the official four in tools/list: official server {} bytes, theta-host {} bytes",
        size(&official),
        size(&ours)
    );
    for o in tools(&official) {
        let name = o["name"].as_str().unwrap();
        let Some(w) = tools(&ours).into_iter().find(|t| t["name"] == name) else {
            failures.push(format!("tools/list: no tool {name}"));
            continue;
        };
        let sorted = |v: &Value| {
            let mut r: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect();
            r.sort();
            r
        };
        let (os, ws) = (&o["inputSchema"], &w["inputSchema"]);
        if sorted(&os["required"]) != sorted(&ws["required"]) {
            failures.push(format!(
                "tools/list {name}: required {} vs {}",
                os["required"], ws["required"]
            ));
        }
        for (prop, spec) in os["properties"].as_object().unwrap() {
            for key in ["type", "default", "minimum", "maximum"] {
                if spec.get(key).is_some() && spec.get(key) != ws["properties"][prop].get(key) {
                    failures.push(format!(
                        "tools/list {name}.{prop}.{key}: {} vs {}",
                        spec[key], ws["properties"][prop][key]
                    ));
                }
            }
        }
        if ws != os || w["description"] != o["description"] {
            used.push("schema-extras");
        }
    }
    // Every step: the same text, or a listed difference.
    let steps = |t: &Value| t["steps"].as_array().cloned().unwrap_or_default();
    let (os, ws) = (steps(&official), steps(&ours));
    assert_eq!(os.len(), ws.len());
    let mut report = Vec::new();
    for (o, w) in os.iter().zip(&ws) {
        let step = o["name"].as_str().unwrap();
        assert_eq!(o["name"], w["name"]);
        if w["structured"] != Value::Null {
            failures.push(format!(
                "{step}: structuredContent without --structured-content"
            ));
        }
        match explain(step, o, w) {
            Some(tags) if tags.is_empty() => report.push(format!("{step}: identical")),
            Some(tags) => {
                report.push(format!("{step}: differs as listed: {}", tags.join(", ")));
                used.extend(tags);
            }
            None => failures.push(format!(
                "{step}: not a deliberate difference\n--- official (isError {}):\n{}\n--- ours (isError {}):\n{}",
                o["isError"],
                o["text"].as_str().unwrap_or(""),
                w["isError"],
                w["text"].as_str().unwrap_or("")
            )),
        }
    }
    for tag in &used {
        assert!(
            differences.contains(&format!("| `{tag}` |")),
            "the difference `{tag}` is not in docs/mcp-differences.md"
        );
    }
    println!(
        "compatibility with the official server:\n{}",
        report.join("\n")
    );
    assert!(
        report.iter().filter(|r| r.ends_with("identical")).count() >= 5,
        "most steps are identical: {report:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
