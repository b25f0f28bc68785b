//! `theta-host mcp`, driven over stdio by a real MCP client (rmcp's, with the child-process transport),
//! against the fake EdgeCloud: initialize, tools/list, calls in the official server's format, progress
//! notifications, cancellation that stops the guest, and errors as `isError` tool results.

use crate::common::{TOKEN, fake, plugin_wasm, seen};
use fake_edgecloud::{FakeEdgeCloud, Fault, FaultKind, RouteMatch};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
    ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestHandle, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `theta-host` binary, built by cargo for this very workspace state (a no-op when it is fresh).
/// `THETA_HOST_BIN` overrides it.
pub(crate) fn theta_host_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("THETA_HOST_BIN") {
            return PathBuf::from(bin);
        }
        // This test runs from <target>/<profile>/deps/; the binary lands in <target>/<profile>/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .current_dir(&root)
            .args(["build", "-p", "theta-host", "--bin", "theta-host"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        let status = build.status().expect("running cargo build for theta-host");
        assert!(status.success(), "cargo build -p theta-host failed");
        let bin = profile_dir.join(format!("theta-host{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} is missing after the build", bin.display());
        bin
    })
    .clone()
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

struct Server {
    client: RunningService<RoleClient, Recorder>,
    log: PathBuf,
}

/// `theta-host [flags] mcp [mcp_flags]` against the fake, holding the on-demand token in its
/// environment only, and the file its stderr goes to.
pub(crate) fn command(
    fake: &FakeEdgeCloud,
    flags: &[&str],
    mcp_flags: &[&str],
    env: &[(&str, &str)],
) -> (tokio::process::Command, PathBuf) {
    host_command(fake, flags, "mcp", mcp_flags, env)
}

/// `theta-host [flags] <subcommand> [sub_flags]` against the fake, as [`command`].
pub(crate) fn host_command(
    fake: &FakeEdgeCloud,
    flags: &[&str],
    subcommand: &str,
    sub_flags: &[&str],
    env: &[(&str, &str)],
) -> (tokio::process::Command, PathBuf) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!("theta-mcp-{}-{n}.log", std::process::id()));
    let mut cmd = tokio::process::Command::new(theta_host_bin());
    // Only what the test gives: no THETA_* from the developer's environment, no .env.local.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("THETA_STORE_URL", crate::common::temp_store())
        .env("THETA_ONDEMAND_API_KEY", TOKEN)
        .env("THETA_HTTP_RETRY_BACKOFF_MS", "25")
        .env("THETA_HTTP_TIMEOUT_MS", "5000")
        .args(["--env-file", "/nonexistent/.env.local", "--log", "info"])
        .arg("--plugin")
        .arg(plugin_wasm())
        .args(["--test-upstream", &fake.addr().to_string()])
        .args(flags)
        .arg(subcommand)
        .args(sub_flags);
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd, log)
}

impl Server {
    /// `theta-host [flags] mcp` against the fake, holding the on-demand token in its environment only.
    /// With `--structured-content`, so results carry the plugin's JSON beside the text.
    async fn start(fake: &FakeEdgeCloud, flags: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_with(fake, flags, &["--structured-content"], env).await
    }

    /// `theta-host [flags] mcp [mcp_flags]`.
    async fn start_with(
        fake: &FakeEdgeCloud,
        flags: &[&str],
        mcp_flags: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let (cmd, log) = command(fake, flags, mcp_flags, env);
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("theta-host mcp starts");
        let client = match Recorder::default().serve(transport).await {
            Ok(client) => client,
            Err(e) => panic!(
                "MCP initialize: {e}; the server said:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        Server { client, log }
    }

    async fn call(&self, name: &str, args: Value) -> CallToolResult {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
            .await
            .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
    }

    /// Sends a call and returns its handle (with the progress token the client put in `_meta`).
    async fn start_call(&self, name: &str, args: Value) -> RequestHandle<RoleClient> {
        let Value::Object(args) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(
                    CallToolRequestParams::new(name.to_owned()).with_arguments(args),
                )),
                PeerRequestOptions::no_options(),
            )
            .await
            .expect("request sent")
    }

    fn progress(&self) -> Vec<ProgressNotificationParam> {
        self.client.service().progress.lock().unwrap().clone()
    }

    /// Closes the session; the server's stderr must never show the token.
    async fn stop(self) -> String {
        let _ = self.client.cancel().await;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        assert!(!log.contains(TOKEN), "the token leaked into the server log");
        log
    }
}

async fn response(handle: RequestHandle<RoleClient>) -> CallToolResult {
    match handle.await_response().await.expect("a response") {
        ServerResult::CallToolResult(r) => r,
        other => panic!("expected a tool result, got {other:?}"),
    }
}

fn text(r: &CallToolResult) -> String {
    assert_eq!(r.content.len(), 1, "one text item: {r:?}");
    r.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .expect("a text item")
}

fn ok(r: &CallToolResult) -> (String, Value) {
    assert_ne!(r.is_error, Some(true), "expected success: {r:?}");
    (text(r), r.structured_content.clone().expect("structured"))
}

fn err(r: &CallToolResult) -> (String, Value) {
    assert_eq!(r.is_error, Some(true), "expected a tool error: {r:?}");
    (
        text(r),
        r.structured_content.clone().expect("structured")["error"].clone(),
    )
}

fn count(fake: &FakeEdgeCloud, method: &str, path: &str) -> usize {
    seen(fake)
        .iter()
        .filter(|(m, p)| m == method && p.starts_with(path))
        .count()
}

async fn wait_until(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn initialize_and_every_command_is_a_tool_with_schema_and_hints() {
    let fake = fake().await;
    let server = Server::start(&fake, &[], &[]).await;
    let info = server.client.peer_info().expect("initialize result");
    assert_eq!(info.server_info.as_ref().unwrap().name, "theta-host");
    assert!(info.capabilities.tools.is_some());

    let tools = server.client.list_all_tools().await.expect("tools/list");
    // The same commands the plugin describes in-process.
    let rt = crate::common::runtime(crate::common::config_for(&fake)).await;
    let commands = rt.describe().await.unwrap();
    assert_eq!(tools.len(), commands.len());
    for official in [
        "list_services",
        "infer",
        "get_request_status",
        "get_upload_url",
    ] {
        assert!(tools.iter().any(|t| t.name == official), "{official}");
    }
    for c in &commands {
        let name = safe_name(&c.name);
        let tool = tools
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tool {name} for {}", c.name));
        let schema: Value = serde_json::from_str(&c.args_schema).unwrap();
        let input = Value::Object((*tool.input_schema).clone());
        assert_flat(&name, &input);
        let keys = |v: &Value| {
            let mut k: Vec<String> = v["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        };
        match c.name.as_str() {
            // The official server's required fields.
            "list_services" => assert_eq!(input["required"], json!([])),
            "infer" => assert_eq!(input["required"], json!(["service", "input"])),
            "get_request_status" => assert_eq!(input["required"], json!(["request_id"])),
            "get_upload_url" => assert_eq!(input["required"], json!(["service", "input_field"])),
            _ => {
                assert_eq!(input["required"], schema["required"], "{}", c.name);
                assert_eq!(keys(&input), keys(&schema), "{}", c.name);
            }
        }
        let a = tool.annotations.as_ref().expect("annotations");
        let effect = theta_host::report::effect_label(c.effect);
        let read = effect == "read";
        assert_eq!(a.read_only_hint, Some(read), "{}", c.name);
        assert_eq!(a.destructive_hint, Some(!read), "{}", c.name);
        assert_eq!(a.open_world_hint, Some(true), "{}", c.name);
        assert_eq!(
            tool.meta.as_ref().unwrap().get("theta/effect"),
            Some(&json!(effect))
        );
    }
    // The official `infer` takes a fractional `wait`, 30 by default, and any category string.
    let infer = tools.iter().find(|t| t.name == "infer").unwrap();
    assert_eq!(infer.input_schema["properties"]["wait"]["type"], "number");
    assert_eq!(infer.input_schema["properties"]["wait"]["default"], 30);
    assert_eq!(
        infer.annotations.as_ref().unwrap().read_only_hint,
        Some(false)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn official_tools_answer_in_the_official_servers_format() {
    let fake = fake().await;
    let server = Server::start(&fake, &[], &[]).await;

    let (text_all, structured) = ok(&server.call("list_services", json!({})).await);
    let services = structured["services"].as_array().unwrap();
    assert!(!services.is_empty());
    assert!(
        text_all.starts_with(&format!(
            "Found {} available services:\n\n## ",
            services.len()
        )),
        "{text_all}"
    );
    assert!(text_all.contains("### "), "{text_all}");
    assert!(text_all.contains("(flux)\n"), "{text_all}");
    assert!(text_all.contains("Example input: {"), "{text_all}");
    assert!(seen(&fake).contains(&("GET".into(), "/service/list".into())));

    // The official server lower-cases the category and lists nothing for unknown ones.
    let (image, structured) = ok(&server
        .call("list_services", json!({"category": "IMAGE"}))
        .await);
    let images = structured["services"].as_array().unwrap();
    assert!(!images.is_empty() && images.len() < services.len());
    assert!(images.iter().all(|s| s["category"] == "image"));
    assert!(
        image.contains("## IMAGE\n") && !image.contains("## AUDIO"),
        "{image}"
    );
    let (none, _) = ok(&server
        .call("list_services", json!({"category": "music"}))
        .await);
    assert_eq!(none, "Found 0 available services:\n\n");

    // infer with wait 0: pending, with the official hint; then the status.
    let (pending, request) = ok(&server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "a blue cloud"}, "wait": 0}),
        )
        .await);
    let id = request["id"].as_str().unwrap().to_owned();
    assert!(
        pending.starts_with("Inference request is still processing.\n\nRequest ID: "),
        "{pending}"
    );
    assert!(
        pending.contains(&format!("get_request_status(request_id=\"{id}\")")),
        "{pending}"
    );
    let fake_auth = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.starts_with("/infer_request/flux"))
        .expect("the infer request reached the fake");
    assert_eq!(
        fake_auth.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str()),
        "the host injected the token"
    );
    let (status, _) = ok(&server
        .call("get_request_status", json!({"request_id": id}))
        .await);
    assert!(
        status.starts_with(&format!("Request ID: {id}\nState: ")),
        "{status}"
    );

    // A fractional wait (the official schema's `number`) is accepted and completes.
    let (done, request) = ok(&server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "a red cloud"}, "wait": 10.5}),
        )
        .await);
    assert_eq!(request["state"], "success", "{done}");
    assert!(
        done.starts_with("Inference completed successfully!\n\nRequest ID: "),
        "{done}"
    );

    let (upload, urls) = ok(&server
        .call(
            "get_upload_url",
            json!({"service": "whisper", "input_field": "audio_filename"}),
        )
        .await);
    let filename = urls["urls"][0]["filename"].as_str().unwrap();
    assert!(
        upload
            .starts_with("**Upload URL Generated**\n\nUpload your file using a PUT request to:\n`"),
        "{upload}"
    );
    assert!(
        upload.contains(&format!("input={{\"audio_filename\": \"{filename}\"}}")),
        "{upload}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_chat_tokens_arrive_as_progress_notifications() {
    let fake = fake().await;
    let server = Server::start(&fake, &[], &[]).await;
    let handle = server
        .start_call(
            "theta_ondemand_chat",
            json!({"messages": [{"role": "user", "content": "tell me about blue clouds"}]}),
        )
        .await;
    let token = handle.progress_token.clone();
    let (answer, reply) = ok(&response(handle).await);
    let content = reply["content"].as_str().unwrap();
    assert_eq!(reply["streamed"], true);
    assert!(answer.contains(content));

    // The client may handle notifications concurrently: their `progress` numbers give the order.
    // A plain streamed chat reports only its tokens, one notification each.
    let tokens = |progress: &[ProgressNotificationParam]| -> String {
        let mut sorted: Vec<&ProgressNotificationParam> = progress.iter().collect();
        sorted.sort_by(|a, b| a.progress.total_cmp(&b.progress));
        sorted.iter().filter_map(|p| p.message.clone()).collect()
    };
    let started = Instant::now();
    while tokens(&server.progress()) != content {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "every token as a notification: {content:?} != {:?} from {:?}",
            tokens(&server.progress()),
            server.progress()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let progress = server.progress();
    assert!(progress.len() > 1, "several notifications: {progress:?}");
    assert!(progress.iter().all(|p| p.progress_token == token));
    let mut numbers: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    numbers.sort_by(f64::total_cmp);
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        progress.len(),
        "each notification has its own progress value"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancellation_stops_the_guest_and_the_server_keeps_serving() {
    let fake = fake().await;
    // One call at a time: a next call runs only if the cancelled one released its slot.
    let tenants =
        std::env::temp_dir().join(format!("theta-mcp-tenants-{}.toml", std::process::id()));
    std::fs::write(
        &tenants,
        "[tenants.agent]\ncommands = [\"*\"]\neffects = [\"read\", \"mutate\", \"spend\"]\nmax_concurrent_calls = 1\nspend_cap_usd = 1.0\n",
    )
    .unwrap();
    let server = Server::start(
        &fake,
        &["--tenants", tenants.to_str().unwrap(), "--tenant", "agent"],
        &[
            ("THETA_HTTP_MAX_RETRIES", "6"),
            ("THETA_HTTP_RETRY_BACKOFF_MS", "200"),
        ],
    )
    .await;

    // 1. A guest in its retry loop (every catalogue request answers 503): retries are reported as
    //    progress, then the client cancels. No request may leave the sandbox after that.
    fake.inject(Fault::new(
        RouteMatch::get("/service/list"),
        FaultKind::server_error(503),
        1000,
    ));
    let handle = server.start_call("list_services", json!({})).await;
    wait_until(
        "a retry progress notification",
        Duration::from_secs(20),
        || {
            server
                .progress()
                .iter()
                .any(|p| p.message.as_deref().is_some_and(|m| m.contains("retry")))
        },
    )
    .await;
    let started = count(&fake, "GET", "/service/list");
    assert!(started >= 1);
    handle
        .cancel(Some("the user changed their mind".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at_cancel = count(&fake, "GET", "/service/list");
    // Unstopped, the guest would retry 6 times over ~12 s (backoff 200, 400, 800, 1600 ms ...).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        count(&fake, "GET", "/service/list"),
        at_cancel,
        "the cancelled guest kept sending requests"
    );
    assert!(
        at_cancel < 7,
        "the call was stopped before it ran out of retries"
    );
    fake.clear_faults();

    // 2. A call hung on a silent upstream is cancelled; the next call runs at once, long before the
    //    5 s request timeout, so the hung call's slot (limit 1) was released.
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::Hang,
    ));
    let before = count(&fake, "GET", "/service/list");
    let handle = server.start_call("list_services", json!({})).await;
    wait_until("the hung request", Duration::from_secs(20), || {
        count(&fake, "GET", "/service/list") > before
    })
    .await;
    handle.cancel(None).await.unwrap();
    let next = Instant::now();
    let (listing, _) = ok(&server.call("list_services", json!({})).await);
    assert!(listing.starts_with("Found "), "{listing}");
    assert!(
        next.elapsed() < Duration::from_secs(4),
        "the next call waited for the cancelled one: {:?}",
        next.elapsed()
    );
    let log = server.stop().await;
    assert!(log.contains("call cancelled by the client"), "{log}");
    let _ = std::fs::remove_file(&tenants);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_tool_results_and_the_server_survives_them() {
    let fake = fake().await;
    let server = Server::start(&fake, &[], &[]).await;

    // Upstream 404 for an unknown service.
    let r = server
        .call(
            "infer",
            json!({"service": "no_such_service", "input": {"prompt": "x"}}),
        )
        .await;
    let (message, error) = err(&r);
    assert_eq!(error["kind"], "upstream");
    assert_eq!(error["status"], 404);
    assert!(message.starts_with("Error: upstream: "), "{message}");
    assert!(message.contains("404"), "{message}");
    assert!(message.contains("no_such_service"), "{message}");

    // Bad arguments are the plugin's invalid-argument, as a tool error.
    let (message, error) = err(&server
        .call("get_request_status", json!({"request_id": 42}))
        .await);
    assert_eq!(error["kind"], "invalid-argument");
    assert_eq!(error["field"], "request_id");
    assert!(
        message.starts_with("Error: invalid-argument: "),
        "{message}"
    );
    let (_, error) = err(&server
        .call("infer", json!({"service": "flux", "bogus": 1}))
        .await);
    assert_eq!(error["kind"], "invalid-argument");

    // An unknown tool, too.
    let (message, error) = err(&server.call("no.such.tool", json!({})).await);
    assert_eq!(error["kind"], "invalid-argument");
    assert!(message.contains("list_services"), "{message}");

    // And the server still serves.
    let (listing, _) = ok(&server.call("list_services", json!({})).await);
    assert!(listing.starts_with("Found "));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_is_a_tool_error_with_the_request_preview() {
    let fake = fake().await;
    let server = Server::start(&fake, &["--dry-run"], &[]).await;
    let (message, error) = err(&server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "x"}}),
        )
        .await);
    assert_eq!(error["kind"], "dry-run");
    assert_eq!(error["request"]["method"], "POST");
    assert!(message.starts_with("Error: dry-run: "), "{message}");
    assert_eq!(
        count(&fake, "POST", "/infer_request"),
        0,
        "nothing was sent"
    );
    server.stop().await;
}

/// A fresh directory for one test's files.
fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("theta-mcp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The command's tool name by default: anything outside [A-Za-z0-9_-] becomes `_`.
pub(crate) fn safe_name(command: &str) -> String {
    command
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                ch
            } else {
                '_'
            }
        })
        .collect()
}

/// A tool's input schema as model APIs take it: an object, no top-level combinator, no `$schema`.
pub(crate) fn assert_flat(tool: &str, schema: &Value) {
    assert_eq!(schema["type"], "object", "{tool}: {schema}");
    for key in [
        "oneOf", "anyOf", "allOf", "not", "if", "then", "else", "$schema",
    ] {
        assert!(
            schema.get(key).is_none(),
            "{tool}: top-level `{key}` in {schema}"
        );
    }
    assert!(schema["properties"].is_object(), "{tool}: {schema}");
}

fn is_safe_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[tokio::test(flavor = "multi_thread")]
async fn safe_tool_names_are_the_default_and_reach_their_commands() {
    let fake = fake().await;
    // No --tool-names: safe names are the default.
    let server = Server::start_with(&fake, &[], &["--structured-content"], &[]).await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let rt = crate::common::runtime(crate::common::config_for(&fake)).await;
    let commands = rt.describe().await.unwrap();
    assert_eq!(tools.len(), commands.len());
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for name in &names {
        assert!(
            is_safe_tool_name(name),
            "`{name}` is not ^[a-zA-Z0-9_-]{{1,64}}$"
        );
    }
    // Every command is there under its name with `.` (and anything else) turned into `_`.
    for c in &commands {
        let safe: String = c
            .name
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '-' {
                    ch
                } else {
                    '_'
                }
            })
            .collect();
        assert!(
            names.contains(&safe.as_str()),
            "no tool {safe} for {}",
            c.name
        );
    }
    assert!(
        commands.iter().any(|c| c.name.contains('.')),
        "the plugin has dotted names"
    );
    for official in [
        "list_services",
        "infer",
        "get_request_status",
        "get_upload_url",
    ] {
        assert!(names.contains(&official), "{official}");
    }
    let chat = tools
        .iter()
        .find(|t| t.name == "theta_ondemand_chat")
        .expect("the chat tool under its safe name");
    assert!(chat.description.as_deref().unwrap().contains("PAID"));
    assert!(
        server
            .client
            .peer_info()
            .and_then(|i| i.instructions.clone())
            .is_some_and(
                |i| i.contains("theta_ondemand_chat") && !i.contains("theta.ondemand.chat")
            ),
        "the instructions name the safe tool"
    );

    // A call through the safe name runs `theta.ondemand.chat`: it reaches the chat endpoint and
    // streams.
    let (answer, reply) = ok(&server
        .call(
            "theta_ondemand_chat",
            json!({"messages": [{"role": "user", "content": "tell me about blue clouds"}]}),
        )
        .await);
    assert_eq!(reply["streamed"], true, "{reply}");
    assert!(answer.contains(reply["content"].as_str().unwrap()));
    assert_eq!(
        seen(&fake),
        [("POST".to_owned(), "/infer_request/qwen3".to_owned())],
        "the chat's one streamed request (qwen3 by default)"
    );
    // The official tools keep their names and format.
    let (listing, _) = ok(&server.call("list_services", json!({})).await);
    assert!(listing.starts_with("Found "), "{listing}");
    // The dotted name is not a tool in this mode.
    let (message, error) = err(&server.call("theta.ondemand.chat", json!({})).await);
    assert_eq!(error["kind"], "invalid-argument");
    assert!(message.contains("theta_ondemand_chat"), "{message}");
    assert_eq!(count(&fake, "POST", "/infer_request"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_server_lists_only_the_granted_tools() {
    let fake = fake().await;
    let dir = tempdir("grants");
    let policy = dir.join("tenants.toml");
    // Commands by name and by prefix, but only reads: paid and mutating commands are not granted,
    // even where their names are.
    let granted_names = ["list_services", "get_request_status", "infer"];
    std::fs::write(
        &policy,
        r#"
[tenants.reader]
commands = ["list_services", "get_request_status", "infer", "theta.ondemand.*"]
effects = ["read"]

[tenants.other]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 1.0
"#,
    )
    .unwrap();
    let server = Server::start(
        &fake,
        &["--tenants", policy.to_str().unwrap(), "--tenant", "reader"],
        &[],
    )
    .await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let mut listed: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    listed.sort();

    let rt = crate::common::runtime(crate::common::config_for(&fake)).await;
    let commands = rt.describe().await.unwrap();
    let mut expected: Vec<String> = commands
        .iter()
        .filter(|c| {
            (granted_names.contains(&c.name.as_str()) || c.name.starts_with("theta.ondemand."))
                && theta_host::report::effect_label(c.effect) == "read"
        })
        .map(|c| safe_name(&c.name))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(listed.contains(&"list_services".to_owned()));
    assert!(listed.contains(&"get_request_status".to_owned()));
    // `infer` and the chat are paid: named or matched, but not granted.
    assert!(!listed.contains(&"infer".to_owned()), "{listed:?}");
    assert!(
        !listed.contains(&"theta_ondemand_chat".to_owned()),
        "{listed:?}"
    );
    assert!(listed.len() < commands.len());

    // A granted tool runs; an ungranted one is still the runtime's `denied`, and sends nothing.
    let (listing, _) = ok(&server.call("list_services", json!({})).await);
    assert!(listing.starts_with("Found "), "{listing}");
    let (message, error) = err(&server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "x"}, "wait": 0}),
        )
        .await);
    assert_eq!(error["kind"], "denied");
    assert!(message.starts_with("Error: denied: "), "{message}");
    assert!(message.contains("tenant `reader`"), "{message}");
    let (_, error) = err(&server
        .call(
            "theta_ondemand_chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await);
    assert_eq!(error["kind"], "denied");
    assert_eq!(
        count(&fake, "POST", "/infer_request"),
        0,
        "nothing was sent"
    );
    server.stop().await;

    // The other tenant of the same file is offered everything.
    let server = Server::start(
        &fake,
        &["--tenants", policy.to_str().unwrap(), "--tenant", "other"],
        &[],
    )
    .await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), commands.len());
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_has_one_line_per_outbound_request_and_no_token() {
    let fake = fake().await;
    let dir = tempdir("audit");
    let audit = dir.join("audit.jsonl");
    let policy = dir.join("tenants.toml");
    std::fs::write(
        &policy,
        "[tenants.agent]\ncommands = [\"*\"]\neffects = [\"read\", \"mutate\", \"spend\"]\nspend_cap_usd = 1.0\n",
    )
    .unwrap();
    let server = Server::start(
        &fake,
        &[
            "--tenants",
            policy.to_str().unwrap(),
            "--tenant",
            "agent",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let _ = ok(&server.call("list_services", json!({})).await);
    let (_, request) = ok(&server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "a green cloud"}, "wait": 0}),
        )
        .await);
    let id = request["id"].as_str().unwrap().to_owned();
    let _ = ok(&server
        .call("get_request_status", json!({"request_id": id}))
        .await);
    server.stop().await;

    let text = std::fs::read_to_string(&audit).expect("the audit log was written");
    assert!(!text.contains(TOKEN), "the audit log holds the token");
    assert!(!text.to_ascii_lowercase().contains("bearer"), "{text}");
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect();
    // Each request has a `sent` line (written before it left) and one outcome line.
    let (sent_lines, lines): (Vec<Value>, Vec<Value>) =
        all.into_iter().partition(|l| l["outcome"] == "sent");
    assert_eq!(sent_lines.len(), lines.len(), "{text}");
    // One outcome line per request that reached the fake, with the same method and path.
    let mut sent: Vec<(String, String)> = seen(&fake);
    let mut audited: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["method"].as_str().unwrap().to_owned(),
                l["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    sent.sort();
    audited.sort();
    assert_eq!(audited, sent, "{text}");
    assert!(sent.len() >= 3, "{sent:?}");
    for line in &lines {
        assert_eq!(line["tenant"], "agent", "{line}");
        assert_eq!(line["host"], "ondemand.thetaedgecloud.com", "{line}");
        assert_eq!(line["decision"], "allowed", "{line}");
        assert_eq!(line["status"], 200, "{line}");
    }
    let commands_of = |method: &str, path: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["method"] == method && l["path"].as_str().unwrap().starts_with(path))
            .map(|l| l["command"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(commands_of("GET", "/service/list"), ["list_services"]);
    assert_eq!(commands_of("POST", "/infer_request/flux"), ["infer"]);
    assert_eq!(
        commands_of("GET", &format!("/infer_request/{id}")),
        ["get_request_status"]
    );
    let paid = lines.iter().find(|l| l["method"] == "POST").unwrap();
    assert!(
        paid["spend_usd"].as_f64().is_some_and(|usd| usd > 0.0),
        "{paid}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn exact_tool_names_are_an_opt_in() {
    let fake = fake().await;
    let server = Server::start_with(&fake, &[], &["--tool-names", "exact"], &[]).await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "theta.ondemand.chat"));
    assert!(!tools.iter().any(|t| t.name == "theta_ondemand_chat"));
    for t in &tools {
        assert_flat(&t.name, &Value::Object((*t.input_schema).clone()));
    }
    server.stop().await;
}

/// The query parameter `wait` of the `n`-th infer request the fake saw.
fn infer_wait(fake: &FakeEdgeCloud, n: usize) -> Option<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/infer_request/"))
        .nth(n)
        .and_then(|r| r.query_param("wait"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_four_take_the_official_arguments_defaults_and_tolerance() {
    let fake = fake().await;
    // The defaults: no --structured-content, safe names.
    let server = Server::start_with(&fake, &[], &[], &[]).await;

    // Text first: the official four answer with text only, like the official server.
    let listing = server.call("list_services", json!({})).await;
    assert!(listing.structured_content.is_none(), "{listing:?}");
    let all = text(&listing);
    // The official categories: chat models that are not called llama/llm/text/chat are `other`.
    assert!(all.contains("## OTHER\n\n### Qwen3 (qwen3)\n"), "{all}");
    assert!(
        all.contains("## TEXT\n\n### Llama 3.1 70B Instruct (llama_3_1_70b)\n"),
        "{all}"
    );
    // The prediction's instructions, as the official server shows them.
    assert!(
        all.contains("(flux)\n{\"unit\":\"image\"}\nVariants: default, quantized\n"),
        "{all}"
    );
    // Example inputs typed from the declared type and default.
    for typed in [
        "\"height\": 1024",
        "\"guidance\": 3.5",
        "\"stream\": true",
        "\"temperature\": 0.7",
        "\"max_tokens\": 500",
        "\"voice\": \"af_sky\"",
        "\"speed\": 1,",
    ] {
        assert!(all.contains(typed), "{typed} in {all}");
    }
    let (other, _) = (
        text(
            &server
                .call("list_services", json!({"category": "Other"}))
                .await,
        ),
        (),
    );
    assert!(other.starts_with("Found "), "{other}");
    assert!(
        !other.starts_with("Found 0 "),
        "`other` is not empty: {other}"
    );
    assert!(
        other.contains("(qwen3)") && !other.contains("(flux)"),
        "{other}"
    );

    // `infer` requires `input`, as the official schema says.
    let r = server.call("infer", json!({"service": "flux"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("input"), "{}", text(&r));

    // No `wait`: the official default of 30 s.
    let r = server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "a"}}),
        )
        .await;
    assert!(
        text(&r).starts_with("Inference completed successfully!"),
        "{}",
        text(&r)
    );
    assert_eq!(infer_wait(&fake, 0).as_deref(), Some("30"));

    // `wait: "10"` is read as 10; an unknown argument is ignored with a note.
    let r = server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "b"}, "wait": "10", "style": "noir"}),
        )
        .await;
    let t = text(&r);
    assert_ne!(r.is_error, Some(true), "{t}");
    assert!(t.starts_with("Inference completed successfully!"), "{t}");
    assert!(
        t.contains("\n\nNote: the argument `style` is not one of infer's"),
        "{t}"
    );
    assert_eq!(infer_wait(&fake, 1).as_deref(), Some("10"));

    // Above 60 s: clamped, with a note.
    let t = text(
        &server
            .call(
                "infer",
                json!({"service": "flux", "input": {"prompt": "c"}, "wait": 600}),
            )
            .await,
    );
    assert!(t.contains("Note: wait 600 is more than"), "{t}");
    assert_eq!(infer_wait(&fake, 2).as_deref(), Some("60"));

    // get_request_status answers in text, with a note for an unknown argument.
    let pending = text(
        &server
            .call(
                "infer",
                json!({"service": "flux", "input": {"prompt": "d"}, "wait": 0}),
            )
            .await,
    );
    let id = pending
        .lines()
        .find_map(|l| l.strip_prefix("Request ID: "))
        .expect("a request id")
        .to_owned();
    let status = server
        .call(
            "get_request_status",
            json!({"request_id": id, "verbose": true}),
        )
        .await;
    assert!(status.structured_content.is_none());
    let t = text(&status);
    assert!(t.starts_with(&format!("Request ID: {id}\nState: ")), "{t}");
    assert!(t.contains("Note: the argument `verbose`"), "{t}");

    // Errors of the four are text too.
    let e = server
        .call("get_request_status", json!({"request_id": "no/such"}))
        .await;
    assert_eq!(e.is_error, Some(true));
    assert!(e.structured_content.is_none());
    assert!(
        text(&e).starts_with("Error: invalid-argument: "),
        "{}",
        text(&e)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_request_size_limit_is_a_limit_error_before_anything_is_sent() {
    let fake = fake().await;
    let dir = tempdir("limit");
    let policy = dir.join("tenants.toml");
    std::fs::write(
        &policy,
        "[tenants.small]\ncommands = [\"*\"]\neffects = [\"read\", \"mutate\", \"spend\"]\nspend_cap_usd = 1.0\nmax_request_bytes = 2000\n",
    )
    .unwrap();
    let server = Server::start(
        &fake,
        &["--tenants", policy.to_str().unwrap(), "--tenant", "small"],
        &[],
    )
    .await;
    let prompt = "a very long prompt ".repeat(300);
    let r = server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": prompt}, "wait": 0}),
        )
        .await;
    let (message, error) = err(&r);
    assert_eq!(error["kind"], "limit", "{message}");
    assert!(message.starts_with("Error: limit: "), "{message}");
    assert!(message.contains("limit of 2000 bytes"), "{message}");
    let size = json!({"input": {"prompt": prompt}}).to_string().len();
    assert!(message.contains(&format!("is {size} bytes")), "{message}");
    assert_eq!(
        count(&fake, "POST", "/infer_request"),
        0,
        "nothing was sent"
    );
    // A small body still goes through.
    let (_, request) = ok(&server
        .call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "x"}, "wait": 0}),
        )
        .await);
    assert!(request["id"].is_string());
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The size of a `tools/list` answer, as the client received it (JSON bytes).
async fn tools_list_bytes(server: &Server) -> (usize, usize) {
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let bytes = serde_json::to_string(&json!({ "tools": tools }))
        .unwrap()
        .len();
    (tools.len(), bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_presets_narrow_the_list() {
    let fake = fake().await;
    let mut sizes = Vec::new();
    for (preset, expect) in [
        ("official", Some(4)),
        ("ondemand", Some(6)),
        ("video,billing", None),
        ("all", None),
    ] {
        let server = Server::start_with(&fake, &[], &["--tools", preset], &[]).await;
        let tools = server.client.list_all_tools().await.expect("tools/list");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        if let Some(n) = expect {
            assert_eq!(tools.len(), n, "{preset}: {names:?}");
        }
        match preset {
            "official" => assert_eq!(
                names,
                [
                    "list_services",
                    "infer",
                    "get_request_status",
                    "get_upload_url"
                ]
            ),
            "video,billing" => assert!(
                names
                    .iter()
                    .all(|n| n.starts_with("theta_video_") || n.starts_with("theta_billing_")),
                "{names:?}"
            ),
            _ => {}
        }
        let (n, bytes) = tools_list_bytes(&server).await;
        sizes.push(format!("--tools {preset}: {n} tools, {bytes} bytes"));
        if preset == "official" {
            // A tool outside the preset is not there at all.
            let (message, _) = err(&server
                .call("theta_ondemand_chat", json!({"messages": []}))
                .await);
            assert!(message.contains("unknown tool"), "{message}");
            let listing = text(&server.call("list_services", json!({})).await);
            assert!(listing.starts_with("Found "), "{listing}");
        }
        server.stop().await;
    }
    println!("tools/list sizes:\n{}", sizes.join("\n"));
    let bad = tokio::process::Command::new(theta_host_bin())
        .args(["mcp", "--tools", "music"])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown tool family `music`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_json_rpc_lines_get_the_spec_error_codes() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let fake = fake().await;
    let (mut cmd, log) = command(&fake, &[], &[], &[]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |line: &str| {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    };
    send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#).await;
    send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    send("{this is not json").await;
    send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#).await;
    send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_services","arguments":[1,2]}}"#).await;
    send(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"list_services","arguments":{}}}"#).await;
    let mut answers: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while answers.len() < 5 {
        let line = tokio::time::timeout_at(deadline.into(), stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("timed out; got {answers:?}"))
            .unwrap()
            .expect("a line");
        answers.push(serde_json::from_str(&line).expect("every stdout line is JSON"));
    }
    let by_id = |id: Value| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer for id {id}: {answers:?}"))
            .clone()
    };
    assert!(by_id(json!(1))["result"]["serverInfo"].is_object());
    assert_eq!(by_id(Value::Null)["error"]["code"], -32700);
    assert_eq!(by_id(json!(2))["error"]["code"], -32602);
    assert!(
        by_id(json!(2))["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name")
    );
    assert_eq!(by_id(json!(3))["error"]["code"], -32602);
    assert!(
        by_id(json!(3))["error"]["message"]
            .as_str()
            .unwrap()
            .contains("arguments")
    );
    let listing = by_id(json!(4));
    assert!(
        listing["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Found "),
        "{listing}"
    );
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server exits at EOF")
        .unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_for_infer_with_wait_retries_and_readiness_polls() {
    let fake = crate::families::fake_all(|_| {}).await;
    let server = Server::start(
        &fake,
        &[],
        &[
            (
                "THETA_INFERENCE_ENDPOINT",
                &format!("https://{}", crate::families::ENDPOINT_HOST),
            ),
            (
                "THETA_INFERENCE_AUTH_TOKEN",
                crate::families::ENDPOINT_TOKEN,
            ),
            ("THETA_EC_API_KEY", crate::families::EC_KEY),
            ("THETA_EC_PROJECT_ID", fake_edgecloud::PROJECT_ID),
        ],
    )
    .await;
    let messages = |server: &Server, token| -> Vec<String> {
        let mut p: Vec<ProgressNotificationParam> = server
            .progress()
            .into_iter()
            .filter(|p| p.progress_token == token)
            .collect();
        p.sort_by(|a, b| a.progress.total_cmp(&b.progress));
        p.into_iter().filter_map(|p| p.message).collect()
    };
    // infer with a wait, whose first attempt finds no free instance (409, retried).
    fake.inject(Fault::once(
        RouteMatch::post("/infer_request/flux"),
        FaultKind::no_instances(),
    ));
    let handle = server
        .start_call(
            "infer",
            json!({"service": "flux", "input": {"prompt": "a"}, "wait": 20}),
        )
        .await;
    let token = handle.progress_token.clone();
    let (done, _) = ok(&response(handle).await);
    assert!(done.starts_with("Inference completed"), "{done}");
    let infer = messages(&server, token.clone());
    wait_until("the infer progress", Duration::from_secs(5), || {
        messages(&server, token.clone()).len() >= 2
    })
    .await;
    let infer = if infer.len() >= 2 {
        infer
    } else {
        messages(&server, token.clone())
    };
    assert!(
        infer[0].contains("infer flux: request sent; Theta holds it up to 20 s"),
        "{infer:?}"
    );
    assert!(infer.iter().any(|m| m.contains("retry 1 of")), "{infer:?}");

    // theta.inference.ready: one notification per poll that was not ready yet (404, 502, then 200).
    let handle = server
        .start_call(
            "theta_inference_ready",
            json!({"timeout_seconds": 5, "interval_seconds": 0.05}),
        )
        .await;
    let token = handle.progress_token.clone();
    let (_, ready) = ok(&response(handle).await);
    assert_eq!(ready["statuses"], json!([404, 502, 200]), "{ready}");
    wait_until("the readiness progress", Duration::from_secs(5), || {
        messages(&server, token.clone()).len() >= 2
    })
    .await;
    let polls = messages(&server, token.clone());
    assert_eq!(polls.len(), 2, "{polls:?}");
    assert!(polls[0].contains("404, not ready yet"), "{polls:?}");
    assert!(polls[1].contains("502, not ready yet"), "{polls:?}");

    // theta.deployments.validateDisposable: the deployment, then its warm-up polls.
    let handle = server
        .start_call(
            "theta_deployments_validateDisposable",
            json!({"template_id": "img_gf070dbq0kttgz1atmiatyunhdxm", "ready_timeout_seconds": 10, "interval_seconds": 0.05}),
        )
        .await;
    let token = handle.progress_token.clone();
    let (_, validated) = ok(&response(handle).await);
    assert_eq!(validated["ok"], true, "{validated}");
    wait_until("the validation progress", Duration::from_secs(5), || {
        messages(&server, token.clone())
            .iter()
            .filter(|m| m.contains("not ready yet"))
            .count()
            >= 2
    })
    .await;
    let steps = messages(&server, token.clone());
    assert!(
        steps.iter().any(|m| m.contains("deployment created on")),
        "{steps:?}"
    );
    server.stop().await;
}
