//! `theta-host serve`: the real binary on an ephemeral loopback port against the fake EdgeCloud,
//! driven by rmcp's streamable-HTTP client (and by raw HTTP for what a client would not send), with
//! three tenants: `alpha` (everything, one call at a time), `beta` (the catalogue only) and `gamma`
//! (revoked). Each tenant sees its own tools and runs under its own grants; a request without a
//! valid token or from a foreign Origin runs nothing; progress and cancellation work over HTTP;
//! SIGTERM lets a running call finish, cancels one past the grace, releases its hold and exits 0.
//! An independent client, the official TypeScript SDK's (tests/mcp-compat/serve-client.mjs), signs in
//! as two tenants too.

use crate::common::{TOKEN, fake, seen, temp_store};
use crate::mcp::{host_command, theta_host_bin};
use fake_edgecloud::{FakeEdgeCloud, Fault, FaultKind, RouteMatch};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestHandle, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN_ALPHA: &str = "alpha-bearer-token-5f0c1e7a9b2d4c6e8f01";
const TOKEN_BETA: &str = "beta-bearer-token-9a8b7c6d5e4f3a2b1c0d";
const TOKEN_GAMMA: &str = "gamma-bearer-token-0f1e2d3c4b5a69788796";

const BETA_TOOLS: [&str; 2] = ["get_request_status", "list_services"];

/// `theta-host token hash` for `token`: the line to paste, from the binary itself.
fn hash_line(token: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(theta_host_bin())
        .args(["token", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("theta-host token hash runs");
    writeln!(child.stdin.take().unwrap(), "{token}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "token hash failed");
    let line = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(line.starts_with("token_sha256 = \""), "{line}");
    assert!(!line.contains(token));
    line
}

/// The tenants file: three tenants, each with its own token; `gamma` is revoked.
fn tenants_file(dir: &Path) -> PathBuf {
    let path = dir.join("tenants.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[tenants.alpha]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 1.0
max_concurrent_calls = 1
{}

[tenants.beta]
commands = ["list_services", "get_request_status"]
effects = ["read"]
{}

[tenants.gamma]
commands = ["*"]
effects = ["read"]
revoked = true
{}
"#,
            hash_line(TOKEN_ALPHA),
            hash_line(TOKEN_BETA),
            hash_line(TOKEN_GAMMA)
        ),
    )
    .unwrap();
    path
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("theta-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `theta-host serve`.
struct Serve {
    child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`
    base: String,
    log: PathBuf,
    audit: PathBuf,
    tenants: PathBuf,
    store: String,
}

impl Serve {
    async fn start(fake: &FakeEdgeCloud, name: &str, serve_flags: &[&str]) -> Serve {
        let dir = tempdir(name);
        let tenants = tenants_file(&dir);
        let audit = dir.join("audit.jsonl");
        let store = temp_store();
        let mut flags = vec!["--listen", "127.0.0.1:0"];
        flags.extend_from_slice(serve_flags);
        let (mut cmd, log) = host_command(
            fake,
            &[
                "--tenants",
                tenants.to_str().unwrap(),
                "--audit-log",
                audit.to_str().unwrap(),
            ],
            "serve",
            &flags,
            &[("THETA_STORE_URL", &store)],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true);
        let child = cmd.spawn().expect("theta-host serve starts");
        let mut serve = Serve {
            child,
            base: String::new(),
            log,
            audit,
            tenants,
            store,
        };
        let started = Instant::now();
        loop {
            let log = serve.log_text();
            if let Some(at) = log.find("listening on http") {
                let rest = &log[at + "listening on ".len()..];
                let url = rest.split_whitespace().next().unwrap();
                serve.base = url.trim_end_matches("/mcp").to_owned();
                break;
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("theta-host serve exited ({status}):\n{log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "theta-host serve did not start:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        serve
    }

    fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn client(&self, token: &str) -> RunningService<RoleClient, Recorder> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(self.url()).auth_header(token),
        );
        match Recorder::default().serve(transport).await {
            Ok(client) => client,
            Err(e) => panic!("MCP initialize over HTTP: {e}\n{}", self.log_text()),
        }
    }

    fn sigterm(&self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; the logs and the audit trail never show a token.
    async fn exited(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().await.unwrap();
        let log = self.log_text();
        let audit = std::fs::read_to_string(&self.audit).unwrap_or_default();
        for secret in [TOKEN, TOKEN_ALPHA, TOKEN_BETA, TOKEN_GAMMA] {
            assert!(!log.contains(secret), "a token leaked into the log");
            assert!(!audit.contains(secret), "a token leaked into the audit");
        }
        (status, log)
    }

    async fn stop(self) -> String {
        self.sigterm();
        let (status, log) = self.exited().await;
        assert!(status.success(), "serve exited with {status}:\n{log}");
        log
    }
}

/// Records every progress notification the server sends.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

fn args(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("arguments must be an object"),
    }
}

async fn call(
    client: &RunningService<RoleClient, Recorder>,
    name: &str,
    a: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args(a)))
        .await
        .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
}

async fn start_call(
    client: &RunningService<RoleClient, Recorder>,
    name: &str,
    a: Value,
) -> RequestHandle<RoleClient> {
    client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new(name.to_owned()).with_arguments(args(a)),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .expect("request sent")
}

async fn response(handle: RequestHandle<RoleClient>) -> CallToolResult {
    match handle.await_response().await.expect("a response") {
        ServerResult::CallToolResult(r) => r,
        other => panic!("expected a tool result, got {other:?}"),
    }
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

async fn tool_names(client: &RunningService<RoleClient, Recorder>) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

fn count(fake: &FakeEdgeCloud, method: &str, path: &str) -> usize {
    seen(fake)
        .iter()
        .filter(|(m, p)| m == method && p.starts_with(path))
        .count()
}

async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A raw JSON-RPC POST to `/mcp`, with the headers a streamable-HTTP client sends.
fn raw_post(url: &str, token: Option<&str>, body: Value) -> reqwest::RequestBuilder {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    req
}

fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}})
}

fn list_services_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "list_services", "arguments": {}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tenant_sees_its_own_tools_and_its_calls_are_its_own() {
    let fake = fake().await;
    let serve = Serve::start(&fake, "tenants", &[]).await;

    // The liveness probe: no token, nothing about tenants.
    let health = reqwest::get(format!("{}/healthz", serve.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let alpha = serve.client(TOKEN_ALPHA).await;
    let beta = serve.client(TOKEN_BETA).await;
    let alpha_tools = tool_names(&alpha).await;
    let beta_tools = tool_names(&beta).await;
    assert_eq!(beta_tools, BETA_TOOLS, "beta sees only its grants");
    for t in ["infer", "theta_ondemand_chat", "list_services"] {
        assert!(alpha_tools.contains(&t.to_owned()), "{t}: {alpha_tools:?}");
    }
    assert!(alpha_tools.len() > 10, "{alpha_tools:?}");
    // The instructions name only the tenant's tools.
    let beta_info = beta.peer_info().expect("initialize result");
    let instructions = beta_info.instructions.clone().unwrap_or_default();
    assert!(instructions.contains("list_services"), "{instructions}");
    assert!(!instructions.contains("infer runs"), "{instructions}");

    // alpha's call reaches the fake once and is alpha's in the audit trail.
    let r = call(&alpha, "list_services", json!({})).await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).starts_with("Found "), "{}", text(&r));
    assert_eq!(count(&fake, "GET", "/service/list"), 1);
    let audit = serve.audit_lines();
    let sent: Vec<&Value> = audit
        .iter()
        .filter(|l| {
            l["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/service/list"))
        })
        .collect();
    assert!(!sent.is_empty(), "{audit:?}");
    assert!(sent.iter().all(|l| l["tenant"] == "alpha"), "{sent:?}");

    // beta may not run a paid command, even by name: denied before anything is sent.
    let r = call(
        &beta,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("denied"), "{}", text(&r));
    assert!(text(&r).contains("beta"), "{}", text(&r));
    assert_eq!(count(&fake, "POST", "/infer_request"), 0);

    // A paid call by alpha is alpha's spend.
    let r = call(
        &alpha,
        "infer",
        json!({"service": "flux", "input": {"prompt": "a blue cloud"}, "wait": 0}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    assert_eq!(count(&fake, "POST", "/infer_request/flux"), 1);
    let audit = serve.audit_lines();
    let paid: Vec<&Value> = audit
        .iter()
        .filter(|l| {
            l["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/infer_request/flux"))
        })
        .collect();
    assert!(!paid.is_empty());
    assert!(paid.iter().all(|l| l["tenant"] == "alpha"), "{paid:?}");
    assert!(
        paid.iter().any(|l| l["spend_usd"].as_f64() > Some(0.0)),
        "{paid:?}"
    );

    let _ = alpha.cancel().await;
    let _ = beta.cancel().await;
    serve.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_a_wrong_token_a_revoked_tenant_or_a_foreign_origin_runs_nothing() {
    let fake = fake().await;
    let serve = Serve::start(&fake, "refusals", &[]).await;
    let url = serve.url();

    for (token, why) in [
        (None, "no Authorization header"),
        (
            Some("not-a-tenant-token-000000000000"),
            "the token is no tenant's",
        ),
        (Some(TOKEN_GAMMA), "tenant `gamma` is revoked"),
    ] {
        for body in [initialize_body(), list_services_body()] {
            let r = raw_post(&url, token, body).send().await.unwrap();
            assert_eq!(r.status(), 401, "{why}");
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.starts_with("Bearer "), "{challenge}");
        }
        let lines = serve.audit_lines();
        assert!(
            lines.iter().any(|l| l["command"] == "mcp-http"
                && l["decision"] == "denied"
                && l["reason"] == why),
            "{why}: {lines:?}"
        );
    }
    // The SDK's client with a wrong token does not get a session.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.clone())
            .auth_header("wrong-token-000000000000000"),
    );
    assert!(Recorder::default().serve(transport).await.is_err());

    // A browser page on another site, even with a valid token: 403.
    let r = raw_post(&url, Some(TOKEN_ALPHA), list_services_body())
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A Host that is not this server's (DNS rebinding): 403 from rmcp.
    let r = raw_post(&url, Some(TOKEN_ALPHA), initialize_body())
        .header("host", "rebound.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A loopback origin is fine; the session it opens is alpha's, and beta's token cannot use it.
    let r = raw_post(&url, Some(TOKEN_ALPHA), initialize_body())
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let r = raw_post(&url, Some(TOKEN_BETA), list_services_body())
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Revoked while the server runs: beta's token works, then, once the file says so, it does not.
    let r = raw_post(&url, Some(TOKEN_BETA), initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = std::fs::read_to_string(&serve.tenants).unwrap();
    let revoked = text.replace("[tenants.beta]\n", "[tenants.beta]\nrevoked = true\n");
    assert_ne!(text, revoked);
    std::fs::write(&serve.tenants, revoked).unwrap();
    let r = raw_post(&url, Some(TOKEN_BETA), initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        serve
            .audit_lines()
            .iter()
            .any(|l| l["reason"] == "tenant `beta` is revoked")
    );
    assert!(
        seen(&fake).is_empty(),
        "the fake received {:?}",
        seen(&fake)
    );
    serve.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_reaches_the_http_client_and_a_cancel_stops_the_call() {
    let fake = fake().await;
    let serve = Serve::start(&fake, "progress", &[]).await;
    let alpha = serve.client(TOKEN_ALPHA).await;

    // infer with a wait: the wait is reported as progress on the call's SSE stream.
    let handle = start_call(
        &alpha,
        "infer",
        json!({"service": "flux", "input": {"prompt": "a red cloud"}, "wait": 5}),
    )
    .await;
    let token = handle.progress_token.clone();
    let r = response(handle).await;
    assert_ne!(r.is_error, Some(true), "{r:?}");
    // The client may handle a notification after the response it preceded.
    wait_until("the wait's progress notification", || {
        alpha.service().progress.lock().unwrap().iter().any(|p| {
            p.progress_token == token
                && p.message
                    .as_deref()
                    .is_some_and(|m| m.contains("infer flux"))
        })
    })
    .await;

    // A call hung on a silent upstream, cancelled by the client: its store is dropped (the hung
    // request is abandoned in the audit) and alpha's one call slot is free for the next call.
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::Hang,
    ));
    let handle = start_call(&alpha, "list_services", json!({})).await;
    wait_until("the hung request", || {
        count(&fake, "GET", "/service/list") == 1
    })
    .await;
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    wait_until("the hung request abandoned", || {
        serve.audit_lines().iter().any(|l| {
            l["tenant"] == "alpha"
                && l["outcome"] == "abandoned"
                && l["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/service/list"))
        })
    })
    .await;
    let r = call(&alpha, "list_services", json!({})).await;
    assert_ne!(r.is_error, Some(true), "the slot was released: {r:?}");
    assert_eq!(count(&fake, "GET", "/service/list"), 2);

    let _ = alpha.cancel().await;
    let log = serve.stop().await;
    assert!(log.contains("call cancelled by the client"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_running_call_finish_then_exits_zero() {
    let fake = fake().await;
    let serve = Serve::start(&fake, "drain", &["--shutdown-grace-secs", "60"]).await;
    let alpha = serve.client(TOKEN_ALPHA).await;
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::SlowFirstByte(Duration::from_millis(1500)),
    ));
    let handle = start_call(&alpha, "list_services", json!({})).await;
    wait_until("the slow request", || {
        count(&fake, "GET", "/service/list") == 1
    })
    .await;
    serve.sigterm();
    let r = response(handle).await;
    assert_ne!(r.is_error, Some(true), "the call finished: {r:?}");
    assert!(text(&r).starts_with("Found "), "{}", text(&r));
    drop(alpha);
    let (status, log) = serve.exited().await;
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(!log.contains("cancelling them"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_cancels_a_call_past_the_grace_and_releases_its_reservation() {
    let fake = fake().await;
    let serve = Serve::start(&fake, "cancel", &["--shutdown-grace-secs", "1"]).await;
    let alpha = serve.client(TOKEN_ALPHA).await;
    fake.inject(Fault::once(
        RouteMatch::post("/infer_request/flux"),
        FaultKind::Hang,
    ));
    let handle = start_call(
        &alpha,
        "infer",
        json!({"service": "flux", "input": {"prompt": "never answered"}, "wait": 0}),
    )
    .await;
    wait_until("the hung paid request", || {
        count(&fake, "POST", "/infer_request/flux") == 1
    })
    .await;
    serve.sigterm();
    let r = response(handle).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains("shutdown"), "{}", text(&r));
    let (tenants, store) = (serve.tenants.clone(), serve.store.clone());
    let (status, log) = serve.exited().await;
    assert!(status.success(), "{status}:\n{log}");
    assert!(log.contains("cancelling them"), "{log}");

    // The hold of the cancelled paid request is not left open in the spend store.
    let out = std::process::Command::new(theta_host_bin())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("THETA_STORE_URL", &store)
        .args(["--env-file", "/nonexistent/.env.local", "--tenants"])
        .arg(&tenants)
        .args(["spend", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spend: Value = serde_json::from_slice(&out.stdout).unwrap();
    let alpha_row = spend["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "alpha")
        .unwrap()
        .clone();
    assert_eq!(alpha_row["open_reservations"], 0, "{alpha_row}");
    assert_eq!(alpha_row["reserved_usd"], 0.0, "{alpha_row}");
}

/// The official TypeScript SDK's `StreamableHTTPClientTransport` (tests/mcp-compat/serve-client.mjs):
/// for each token, tools/list and one call. Skipped, with a message, without node/npm or the registry.
#[tokio::test(flavor = "multi_thread")]
async fn the_typescript_sdk_client_signs_in_per_tenant() {
    let works = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works("node") || !works("npm") {
        println!("SKIPPED serve TypeScript client: node and npm are not installed");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let client = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-serve-client");
    std::fs::create_dir_all(&client).unwrap();
    for f in ["package.json", "package-lock.json", "serve-client.mjs"] {
        std::fs::copy(root.join("tests/mcp-compat").join(f), client.join(f)).unwrap();
    }
    if !client
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
    {
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&client)
            .output()
            .unwrap();
        if !out.status.success() {
            println!(
                "SKIPPED serve TypeScript client: npm ci failed (registry unreachable?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
    }

    let fake = fake().await;
    let serve = Serve::start(&fake, "ts", &[]).await;
    let out = tokio::process::Command::new("node")
        .arg("serve-client.mjs")
        .current_dir(&client)
        .env("SERVE_URL", serve.url())
        .env(
            "SERVE_TOKENS",
            json!([TOKEN_ALPHA, TOKEN_BETA, "not-a-tenant-token-000000000000"]).to_string(),
        )
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "serve-client.mjs: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{report}");
    let names = |run: &Value| -> Vec<String> {
        let mut n: Vec<String> = run["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    // alpha: everything; its call ran.
    assert!(names(&runs[0]).contains(&"infer".to_owned()), "{report}");
    assert_eq!(runs[0]["call"]["isError"], false, "{report}");
    assert!(
        runs[0]["call"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Found ")
    );
    // beta: the catalogue only; its call ran too.
    assert_eq!(names(&runs[1]), BETA_TOOLS, "{report}");
    assert_eq!(runs[1]["call"]["isError"], false, "{report}");
    // An unknown token: no session, HTTP 401.
    assert_eq!(runs[2]["status"], 401, "{report}");
    assert!(runs[2].get("tools").is_none(), "{report}");
    assert_eq!(
        count(&fake, "GET", "/service/list"),
        2,
        "one call per tenant"
    );
    serve.stop().await;
}

/// `--tls-cert`/`--tls-key`: the listener speaks TLS (rustls), checked with a rustls client that trusts
/// only the test's self-signed certificate. Skipped, with a message, without the openssl CLI.
#[tokio::test(flavor = "multi_thread")]
async fn tls_serves_healthz_and_refuses_without_a_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempdir("tls-cert");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        println!("SKIPPED serve TLS: the openssl CLI could not make a certificate");
        return;
    }
    let fake = fake().await;
    let serve = Serve::start(
        &fake,
        "tls",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        serve.base.starts_with("https://127.0.0.1:"),
        "{}",
        serve.base
    );
    let addr = serve.base.trim_start_matches("https://").to_owned();

    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let request = |head: &str| {
        let (connector, addr, head) = (connector.clone(), addr.clone(), head.to_owned());
        async move {
            let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
            tls.write_all(head.as_bytes()).await.unwrap();
            let mut answer = String::new();
            tls.read_to_string(&mut answer).await.unwrap_or_default();
            answer
        }
    };
    let health =
        request("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok"), "{health}");
    let body = list_services_body().to_string();
    let refused = request(&format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
    .await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{refused}"
    );
    // Plain HTTP to the TLS port gets no answer from the MCP endpoint.
    let plain = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    assert!(seen(&fake).is_empty());
    serve.stop().await;
}
