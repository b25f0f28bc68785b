//! The `theta-host` binary as a user runs it: the README's demo, `call` against the fake EdgeCloud
//! (through `--test-upstream`), dry-run, the audit log file, `auth` and `commands`, and bad input.
//! Needs the guest component: `scripts/build-wasm.sh`.

use fake_edgecloud::{FakeConfig, FakeEdgeCloud};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const TOKEN: &str = "cli-test-token-0d9b27";

fn plugin() -> PathBuf {
    let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/plugin-release/theta_plugin.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: run scripts/build-wasm.sh",
        wasm.display()
    );
    wasm
}

/// `theta-host` with a clean environment: no keys or settings leak in from the machine running the
/// tests, and no `.env.local` is read.
fn theta_host(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_theta-host"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .current_dir(dir)
        .arg("--plugin")
        .arg(plugin())
        .arg("--env-file")
        .arg(dir.join("no-such.env"));
    cmd
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("theta-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn fake() -> FakeEdgeCloud {
    FakeEdgeCloud::start(FakeConfig {
        ondemand_token: TOKEN.into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap()
}

#[test]
fn the_demo_lists_services_and_streams_a_qwen3_chat() {
    let dir = tempdir("demo");
    let out = theta_host(&dir).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("FAKE Theta EdgeCloud"), "{stdout}");
    // list_services with category text shows the chat models of the fake's catalogue.
    assert!(stdout.contains("qwen3"), "{stdout}");
    assert!(stdout.contains("gpt_oss_120b"), "{stdout}");
    // The streamed chat echoes the prompt; the async infer reaches a final state.
    assert!(stdout.contains("Say hello to Theta EdgeCloud"), "{stdout}");
    assert!(stdout.contains("finish_reason"), "{stdout}");
    assert!(stdout.contains("\"success\""), "{stdout}");
    assert!(stdout.contains("dry-run"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn call_runs_against_the_test_upstream_and_writes_the_audit_log() {
    let fake = fake().await;
    let dir = tempdir("call");
    let audit = dir.join("audit.jsonl");
    let out = theta_host(&dir)
        .env("THETA_ONDEMAND_API_TOKEN", TOKEN)
        .args(["--test-upstream", &fake.addr().to_string()])
        .arg("--audit-log")
        .arg(&audit)
        .args(["call", "list_services", "--args", r#"{"category":"image"}"#])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let services = stdout_json(&out);
    let aliases: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["alias"].as_str().unwrap())
        .collect();
    assert!(aliases.contains(&"flux"), "{aliases:?}");
    assert!(
        !aliases.contains(&"qwen3"),
        "category filter ignored: {aliases:?}"
    );

    // A paid call: the fake sees the host's bearer token, the audit line has every field, no secret.
    let out = theta_host(&dir)
        .env("THETA_ONDEMAND_API_TOKEN", TOKEN)
        .args(["--test-upstream", &fake.addr().to_string()])
        .arg("--audit-log")
        .arg(&audit)
        .args([
            "call",
            "infer",
            "--quiet",
            "--args",
            r#"{"service":"flux","input":{"prompt":"a red kite"},"wait":5}"#,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout_json(&out)["state"], "success");
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the infer request reached the fake");
    assert_eq!(
        post.headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains(TOKEN), "the audit log holds the token");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect();
    // Each request: a `sent` line before it left, then its outcome.
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[2]["outcome"], "sent", "{text}");
    assert_eq!(lines[2]["command"], "infer", "{text}");
    let paid = &lines[3];
    assert_eq!(paid["outcome"], "ok", "{text}");
    for field in [
        "ts_unix_ms",
        "tenant",
        "command",
        "method",
        "host",
        "path",
        "decision",
        "status",
        "bytes_in",
        "duration_ms",
        "spend_usd",
    ] {
        assert!(
            paid.get(field).is_some(),
            "audit line lacks `{field}`: {paid}"
        );
    }
    assert_eq!(paid["command"], "infer");
    assert_eq!(paid["host"], "ondemand.thetaedgecloud.com");
    assert_eq!(paid["decision"], "allowed");
    assert_eq!(paid["status"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_refuses_a_paid_call_and_shows_the_redacted_request() {
    let fake = fake().await;
    let dir = tempdir("dry");
    let out = theta_host(&dir)
        .env("THETA_ONDEMAND_API_TOKEN", TOKEN)
        .args(["--test-upstream", &fake.addr().to_string(), "--dry-run"])
        .args([
            "call",
            "infer",
            "--args",
            r#"{"service":"flux","input":{"prompt":"x"}}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = &stdout_json(&out)["error"];
    assert_eq!(err["kind"], "dry-run", "{err}");
    let preview = err.to_string();
    assert!(preview.contains("/infer_request/flux"), "{preview}");
    assert!(!preview.contains(TOKEN), "the preview shows the token");
    assert!(
        fake.requests().iter().all(|r| r.method != "POST"),
        "a paid request left the host under --dry-run"
    );
}

#[test]
fn auth_reports_configured_families_without_values() {
    let dir = tempdir("auth");
    let out = theta_host(&dir)
        .env("THETA_ONDEMAND_API_TOKEN", TOKEN)
        .args(["auth", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(TOKEN), "auth printed the token: {text}");
    let rows = stdout_json(&out);
    let rows = rows.as_array().unwrap();
    let ondemand = rows
        .iter()
        .find(|r| r["family"].as_str().unwrap().contains("on-demand"))
        .unwrap_or_else(|| panic!("no on-demand row: {text}"));
    assert_eq!(ondemand["status"], "configured", "{ondemand}");
    assert!(
        rows.iter().any(|r| r["status"] != "configured"),
        "families without keys must say so: {text}"
    );
}

#[test]
fn commands_json_lists_every_command_with_a_schema() {
    let dir = tempdir("commands");
    let out = theta_host(&dir)
        .args(["commands", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let all = stdout_json(&out);
    let all = all.as_array().unwrap();
    for name in [
        "list_services",
        "infer",
        "get_request_status",
        "get_upload_url",
        "theta.ondemand.chat",
    ] {
        let cmd = all
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            cmd["args_schema"]["type"], "object",
            "{name}: schema is not an object schema: {cmd}"
        );
    }
}

#[test]
fn bad_input_gets_a_clear_error_not_a_panic() {
    let dir = tempdir("bad");
    // Arguments that are not JSON.
    let out = theta_host(&dir)
        .args(["call", "infer", "--args", "{service: flux"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = &stdout_json(&out)["error"];
    assert_eq!(err["kind"], "invalid-argument", "{err}");

    // An unknown command names itself.
    let out = theta_host(&dir)
        .args(["call", "no_such_command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no_such_command"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A missing credential names the variable.
    let out = theta_host(&dir)
        .args([
            "call",
            "infer",
            "--args",
            r#"{"service":"flux","input":{}}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = &stdout_json(&out)["error"];
    assert_eq!(err["kind"], "missing-credential", "{err}");

    // A plugin path that does not exist, and a file that is not a component.
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    for path in [dir.join("absent.wasm"), junk] {
        let out = Command::new(env!("CARGO_BIN_EXE_theta-host"))
            .env_clear()
            .arg("--plugin")
            .arg(&path)
            .args(["commands"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error:"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_runs_one_call_per_service_and_stops_at_the_budget() {
    let fake = fake().await;
    let dir = tempdir("smoke");
    // Without --live or a test upstream it refuses to spend.
    let out = theta_host(&dir)
        .env("THETA_ONDEMAND_API_TOKEN", TOKEN)
        .args(["smoke", "--services", "flux"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--live"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A budget that covers the image calls but not the chat after them.
    let out = theta_host(&dir)
        .env("THETA_ONDEMAND_API_TOKEN", TOKEN)
        .args(["--test-upstream", &fake.addr().to_string()])
        .args([
            "smoke",
            "--services",
            "flux,stable_diffusion_xl_turbo,qwen3",
            "--max-budget-usd",
            "0.025",
            "--json",
        ])
        .output()
        .unwrap();
    let rows = stdout_json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["outcome"], "ok", "{rows:?}");
    assert_eq!(rows[1]["outcome"], "ok", "{rows:?}");
    assert_eq!(rows[2]["outcome"], "skipped", "{rows:?}");
    assert!(rows[1]["total_usd"].as_f64().unwrap() <= 0.025);
    // The skipped service was never called.
    assert!(
        fake.requests().iter().all(|r| !r.path.contains("qwen3")),
        "a service past the budget was called"
    );
}

/// A hostile plugin's text (describe summaries, stderr, its answer) reaches the terminal with every
/// escape sequence neutralised, and a forged `theta-event` line cannot start a line of its own.
#[test]
fn guest_text_cannot_drive_the_terminal() {
    let dir = tempdir("escapes");
    let hostile = plugin().with_file_name("hostile_guest.wasm");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_theta-host"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .current_dir(&dir)
            .arg("--plugin")
            .arg(&hostile)
            .arg("--env-file")
            .arg(dir.join("no-such.env"))
            .args(args);
        cmd.output().unwrap()
    };
    let listed = run(&["commands"]);
    let printed = run(&["call", "list_services", "--args", r#"{"action":"print"}"#]);
    for (what, out) in [("commands", &listed), ("call print", &printed)] {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !bytes.contains(&0x1b) && !bytes.contains(&0x07) && !bytes.contains(&b'\r'),
                "{what}: an escape byte reached {stream}: {:?}",
                String::from_utf8_lossy(bytes)
            );
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text
                    .lines()
                    .any(|l| l.starts_with("theta-event") || l.starts_with("[error]")),
                "{what}: a forged line on {stream}: {text}"
            );
        }
    }
    let stderr = String::from_utf8_lossy(&printed.stderr);
    assert!(
        stderr.contains("[plugin"),
        "guest lines are tagged: {stderr}"
    );
}

/// `theta-host setup --non-interactive`: values from the environment, each family checked with a
/// free read through the sandbox (counted at the fake), `.env.local` written with mode 0600 keeping
/// what it had, and no value on the terminal. A wrong token fails its check (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn setup_checks_each_family_and_writes_a_private_env_file() {
    let fake = fake().await;
    let dir = tempdir("setup");
    let env_file = dir.join(".env.local");
    std::fs::write(&env_file, "# my settings\nTHETA_EC_PROJECT_ID=prj_kept\n").unwrap();
    let setup = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_theta-host"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .env("THETA_ONDEMAND_API_TOKEN", token)
            .current_dir(&dir)
            .arg("--plugin")
            .arg(plugin())
            .arg("--env-file")
            .arg(&env_file)
            .args(["--test-upstream", &fake.addr().to_string()])
            .args(["setup", "--non-interactive"])
            .output()
            .unwrap()
    };
    let out = setup(TOKEN);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("on-demand") && l.ends_with(" ok")),
        "{stdout}"
    );
    assert!(stdout.contains("not configured"), "{stdout}");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "a value was printed"
    );
    let checks: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/infer_request/theta-setup-check")
        .collect();
    assert_eq!(checks.len(), 1, "one free read checked the token");
    assert_eq!(checks[0].method, "GET");
    let text = std::fs::read_to_string(&env_file).unwrap();
    assert_eq!(
        text,
        format!("# my settings\nTHETA_EC_PROJECT_ID=prj_kept\nTHETA_ONDEMAND_API_TOKEN={TOKEN}\n")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A wrong token: the check fails by name, exit 2, and the token is still not shown.
    let out = setup("wrong-token-value");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("FAILED") && stdout.contains("THETA_ONDEMAND_API_TOKEN"),
        "{stdout}"
    );
    assert!(!stdout.contains("wrong-token-value"));
    let _ = std::fs::remove_dir_all(&dir);
}
