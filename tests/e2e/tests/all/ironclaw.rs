//! The IronClaw build of the plugin (`theta_plugin_ironclaw.wasm`, world `near:agent/sandboxed-tool`,
//! exactly `near:agent@0.4.1`) in `IronclawRuntime`, whose `http-request` import goes through the same
//! policy boundary as `wasi:http` and answers typed `http-failure`s, against the fake EdgeCloud. Also: the committed IronClaw capabilities manifest is
//! generated from the plugin itself and must stay in sync.

use crate::common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use theta_host::HostConfig;
use theta_host::events::GuestEvent;
use theta_host::ironclaw::{ErrorKind, IronclawRuntime, Response, WIT_VERSION};

fn ironclaw(cfg: HostConfig) -> IronclawRuntime {
    IronclawRuntime::new(cfg, &ironclaw_wasm())
        .expect("the IronClaw build loads in the IronClaw world")
}

/// One `execute`: `Ok(output JSON)` or `Err((first line, error JSON))`, the `guest-failure`'s kind
/// and code, and the logged events.
struct Executed {
    result: Result<Value, (String, Value)>,
    failure: Option<(ErrorKind, String)>,
    events: Vec<GuestEvent>,
}

impl Executed {
    fn ok(&self) -> &Value {
        match &self.result {
            Ok(v) => v,
            Err((line, _)) => panic!("expected output, got error: {line}"),
        }
    }

    fn err(&self) -> &Value {
        match &self.result {
            Ok(v) => panic!("expected an error, got {v}"),
            Err((_, json)) => json,
        }
    }

    /// The `guest-failure` kind and code.
    fn failure(&self) -> (ErrorKind, &str) {
        match &self.failure {
            Some((kind, code)) => (*kind, code.as_str()),
            None => panic!("expected a failure, got {:?}", self.result),
        }
    }

    fn err_line(&self) -> &str {
        match &self.result {
            Ok(v) => panic!("expected an error, got {v}"),
            Err((line, _)) => line,
        }
    }
}

async fn execute(rt: &IronclawRuntime, params: Value) -> Executed {
    execute_raw(rt, &params.to_string()).await
}

async fn execute_raw(rt: &IronclawRuntime, params: &str) -> Executed {
    execute_in(rt, params, None).await
}

/// One `execute` of the per-command tool `capability_id` (IronClaw's extension-package dispatch).
async fn execute_tool(rt: &IronclawRuntime, capability_id: &str, params: Value) -> Executed {
    let context = json!({"capability_id": capability_id}).to_string();
    execute_in(rt, &params.to_string(), Some(&context)).await
}

async fn execute_in(rt: &IronclawRuntime, params: &str, context: Option<&str>) -> Executed {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let response = rt
        .execute_with_context(
            params,
            context,
            Arc::new(move |e| sink.lock().unwrap().push(e)),
        )
        .await
        .expect("the host runs the call");
    let (result, failure) = match response {
        Response::Success(out) => (
            Ok(serde_json::from_str(&out).expect("a successful output is JSON")),
            None,
        ),
        Response::Failure(f) => {
            let message = f.message.expect("a failure carries a message");
            let (line, json) = message
                .split_once('\n')
                .unwrap_or_else(|| panic!("the message is a line then JSON: {message}"));
            (
                Err((
                    line.to_owned(),
                    serde_json::from_str(json).expect("error JSON"),
                )),
                Some((f.kind, f.code.expect("a failure carries a code"))),
            )
        }
    };
    let events = events.lock().unwrap().clone();
    Executed {
        result,
        failure,
        events,
    }
}

fn requests(fake: &fake_edgecloud::FakeEdgeCloud, method: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_and_description_come_from_the_same_command_registry() {
    let fake = fake().await;
    let commands = runtime(config_for(&fake)).await.describe().await.unwrap();
    let rt = ironclaw(config_for(&fake));

    let schema: Value = serde_json::from_str(&rt.schema().await.unwrap()).expect("schema is JSON");
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["command"]));
    let names: Vec<&str> = schema["properties"]["command"]["enum"]
        .as_array()
        .expect("command is an enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        commands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()
    );
    // Each command's args schema is exactly the one describe() gives.
    let rules = schema["allOf"].as_array().expect("per-command rules");
    for c in &commands {
        let rule = rules
            .iter()
            .find(|r| r["if"]["properties"]["command"]["const"] == c.name.as_str())
            .unwrap_or_else(|| panic!("no args schema for {}", c.name));
        let own: Value = serde_json::from_str(&c.args_schema).unwrap();
        assert_eq!(rule["then"]["properties"]["args"], own, "{}", c.name);
    }

    let description = rt.description().await.unwrap();
    for c in &commands {
        assert!(
            description.contains(&format!("- {} (", c.name)),
            "{} missing from the description: {description}",
            c.name
        );
    }
    assert!(description.contains("infer (spend)"), "{description}");
    assert!(description.contains("one response"), "{description}");
    assert!(
        description.len() <= 4096,
        "IronClaw truncates descriptions past 4096 bytes"
    );
    assert_eq!(
        requests(&fake, "GET") + requests(&fake, "POST"),
        0,
        "nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_ironclaw_build_fits_the_ironclaw_world() {
    // The IronClaw world has no wasi:http: the main build (which imports it and exports the
    // theta:edgecloud world) must not load there, and the IronClaw build loading proves it needs none.
    let err = IronclawRuntime::new(HostConfig::empty(), &plugin_wasm())
        .err()
        .expect("the wasi:http build does not fit near:agent/sandboxed-tool");
    assert!(format!("{err:#}").contains("sandboxed-tool"), "{err:#}");
    let rt = IronclawRuntime::new(HostConfig::empty(), &ironclaw_wasm()).unwrap();
    assert!(!rt.description().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn list_services_runs_through_execute_and_the_policy_boundary() {
    let fake = fake().await;
    let rt = ironclaw(config_for(&fake));
    let images = execute(
        &rt,
        json!({"command": "list_services", "args": {"category": "image"}}),
    )
    .await;
    let images = images.ok().as_array().expect("a list").clone();
    assert!(!images.is_empty());
    assert!(
        images.iter().all(|s| s["category"] == "image"),
        "{images:?}"
    );
    assert!(images.iter().any(|s| s["alias"] == "flux"));
    assert!(
        seen(&fake)
            .iter()
            .any(|(m, p)| m == "GET" && p.starts_with("/service/list"))
    );

    // Flattened arguments and the camelCase alias work too.
    let all = execute(&rt, json!({"command": "theta.ondemand.listServices"})).await;
    assert!(all.ok().as_array().unwrap().len() > images.len());

    // Every request passed the host's boundary and was audited there.
    let audit = rt.audit().records();
    assert!(!audit.is_empty());
    assert!(
        audit
            .iter()
            .all(|r| r.decision == "allowed" && r.host == "ondemand.thetaedgecloud.com"),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn infer_and_chat_get_the_credential_injected_by_the_host() {
    let fake = fake().await;
    let rt = ironclaw(config_for(&fake));
    let r = execute(
        &rt,
        json!({"command": "infer", "args": {"service": "flux", "input": {"prompt": "a blue cloud"}, "wait": 10}}),
    )
    .await;
    let r = r.ok();
    assert_eq!(r["state"], "success", "{r}");
    assert!(r["output"].to_string().contains("image_url"), "{r}");
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the infer POST reached the fake");
    assert!(
        post.path.starts_with("/infer_request/flux"),
        "{}",
        post.path
    );
    assert!(
        post.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {TOKEN}")),
        "the host injected the token"
    );
    let audit = serde_json::to_string(&rt.audit().records()).unwrap();
    assert!(!audit.contains(TOKEN));

    // Streaming degrades to one response: the SSE answer arrives whole, tokens are not logged, and
    // the result holds the full content.
    let chat = execute(
        &rt,
        json!({"command": "theta.ondemand.chat", "args": {"messages": [{"role": "user", "content": "hello there"}]}}),
    )
    .await;
    let reply = chat.ok();
    assert_eq!(reply["service"], "qwen3");
    assert_eq!(reply["streamed"], true);
    assert!(
        reply["content"].as_str().unwrap().contains("hello there"),
        "{reply}"
    );
    assert!(
        !chat
            .events
            .iter()
            .any(|e| matches!(e, GuestEvent::Token { .. })),
        "{:?}",
        chat.events
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spending_is_refused_under_dry_run_and_requests_over_the_limit_are_refused_by_the_host() {
    let fake = fake().await;
    // The tool's own dry_run parameter: nothing is sent, the preview is the (successful) answer.
    let rt = ironclaw(config_for(&fake));
    let preview = execute(
        &rt,
        json!({"command": "infer", "args": {"service": "flux", "input": {"prompt": "x"}}, "dry_run": true}),
    )
    .await;
    let e = preview.ok();
    assert_eq!(e["kind"], "dry-run", "{e}");
    assert_eq!(e["preview"]["method"], "POST");
    assert!(
        e["preview"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://ondemand.thetaedgecloud.com/infer_request/flux"),
        "{e}"
    );
    assert!(!e.to_string().contains(TOKEN));

    // The host in dry-run mode: the paid POST never leaves the host.
    let mut cfg = config_for(&fake);
    cfg.policy.dry_run = true;
    let rt = ironclaw(cfg);
    let refused = execute(
        &rt,
        json!({"command": "infer", "args": {"service": "flux", "input": {"prompt": "x"}}}),
    )
    .await;
    assert_eq!(refused.err()["kind"], "dry-run", "{}", refused.err());
    assert!(
        refused.err_line().starts_with("dry-run"),
        "{}",
        refused.err_line()
    );
    assert_eq!(refused.failure(), (ErrorKind::NetworkDenied, "dry-run"));
    assert_eq!(requests(&fake, "POST"), 0, "{:?}", seen(&fake));

    // A host limit applies to http-request exactly as to wasi:http: no request at all is allowed here.
    let mut cfg = config_for(&fake);
    cfg.limits.max_requests = 0;
    let rt = ironclaw(cfg);
    let denied = execute(&rt, json!({"command": "list_services"})).await;
    let e = denied.err();
    assert_eq!(e["kind"], "denied", "{e}");
    assert!(e["reason"].as_str().unwrap().contains("requests"), "{e}");
    assert_eq!(denied.failure(), (ErrorKind::NetworkDenied, "denied"));
    let audit = rt.audit().records();
    assert!(
        audit.iter().any(|r| r.decision != "allowed"),
        "the refusal is audited: {audit:?}"
    );
    assert_eq!(requests(&fake, "GET"), 0, "{:?}", seen(&fake));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_credential_names_the_ironclaw_secret_and_sends_nothing() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.credentials = Default::default();
    let rt = ironclaw(cfg);
    let missing = execute(
        &rt,
        json!({"command": "get_request_status", "args": {"request_id": "infr_rqst_1"}}),
    )
    .await;
    let e = missing.err();
    assert_eq!(e["kind"], "missing-credential", "{e}");
    assert_eq!(
        missing.failure(),
        (ErrorKind::AuthRequired, "missing-credential")
    );
    assert_eq!(e["variable"], "THETA_ONDEMAND_API_TOKEN");
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("theta_ondemand_api_token"),
        "{e}"
    );
    assert!(fake.requests().is_empty(), "{:?}", seen(&fake));
    // The public catalogue needs no credential.
    let ok = execute(&rt, json!({"command": "list_services"})).await;
    assert!(!ok.ok().as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_params_are_actionable_errors() {
    let rt = ironclaw(HostConfig::empty());
    let e = execute_raw(&rt, "not json").await;
    assert_eq!(e.err()["kind"], "invalid-argument");
    assert_eq!(e.failure(), (ErrorKind::Input, "invalid-argument"));
    assert_eq!(e.err()["field"], "params");
    let e = execute(&rt, json!({"args": {}})).await;
    assert_eq!(e.err()["field"], "command");
    assert!(
        e.err()["reason"]
            .as_str()
            .unwrap()
            .contains("list_services")
    );
    let e = execute(&rt, json!({"command": "no.such.command"})).await;
    assert_eq!(e.err()["field"], "name");
    assert!(e.err()["reason"].as_str().unwrap().contains("infer"));
    let e = execute(
        &rt,
        json!({"command": "list_services", "args": {"category": "music"}}),
    )
    .await;
    assert_eq!(e.err()["field"], "category");
}

/// The committed IronClaw extension package (hosts/ironclaw/manifest.toml; its freshness against
/// describe() is checked by the plugin's `ironclaw_package` test).
fn package_manifest() -> toml::Table {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../hosts/ironclaw/manifest.toml");
    let text = std::fs::read_to_string(&path).expect("hosts/ironclaw/manifest.toml");
    text.parse::<toml::Table>().expect("the manifest is TOML")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tool_of_the_extension_package_dispatches_to_its_command_in_the_artifact() {
    let manifest = package_manifest();
    assert_eq!(
        manifest["schema_version"].as_str(),
        Some("reborn.extension_manifest.v3")
    );
    assert_eq!(manifest["runtime"]["kind"].as_str(), Some("wasm"));
    let commands = runtime(HostConfig::empty()).await.describe().await.unwrap();
    let tools = manifest["tools"].as_array().expect("[[tools]]");
    assert_eq!(tools.len(), commands.len(), "one tool per command");
    let rt = ironclaw(HostConfig::empty());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../hosts/ironclaw");
    for tool in tools {
        let id = tool["id"].as_str().unwrap();
        assert!(id.starts_with("theta."), "{id}");
        let effects: Vec<&str> = tool["effects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        if effects.contains(&"financial") || effects.contains(&"external_write") {
            assert_eq!(tool["default_permission"].as_str(), Some("ask"), "{id}");
        }
        for c in tool
            .get("credentials")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let host = c["audience"]["host"].as_str().unwrap();
            assert_eq!(c["audience"]["scheme"].as_str(), Some("https"), "{id}");
            assert!(
                !host.contains('*') && host.contains('.'),
                "{id}: literal host, got {host}"
            );
        }
        // The tool's input schema, as the runtime hands it to the model: every property it adds
        // (dry_run, project_id, endpoint) is accepted by the artifact; the command itself refuses
        // the call (an unknown key or a missing required argument), proving the id dispatched to
        // it, and nothing was sent.
        let schema_ref = tool["input_schema_ref"].as_str().unwrap();
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(schema_ref)).unwrap()).unwrap();
        let props = schema["properties"].as_object().unwrap();
        let mut params = json!({"zz_probe": 1});
        if props.contains_key("dry_run") {
            params["dry_run"] = json!(true);
        }
        if props.contains_key("project_id") {
            params["project_id"] = json!("prj_probe");
        }
        if props.contains_key("endpoint") {
            params["endpoint"] = json!("https://probe.tec-s1.onthetaedgecloud.com");
        }
        let e = execute_tool(&rt, id, params).await;
        assert_eq!(
            e.failure(),
            (ErrorKind::Input, "invalid-argument"),
            "{id}: {:?}",
            e.result
        );
        // The command's own check answered: the unknown key, or a required argument of this
        // tool's schema (never one of the keys the tool schema adds).
        let field = e.err()["field"].as_str().unwrap_or_default().to_owned();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            field == "zz_probe" || required.contains(&field.as_str()),
            "{id}: {}",
            e.err()
        );
        assert!(
            root.join(tool["prompt_doc_ref"].as_str().unwrap()).exists(),
            "{id}"
        );
    }
    assert_eq!(WIT_VERSION, "0.4.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_tool_call_without_its_credential_gets_auth_required_from_the_host() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.credentials = Default::default();
    let rt = ironclaw(cfg);
    let e = execute_tool(
        &rt,
        "theta.get_request_status",
        json!({"request_id": "infr_rqst_1"}),
    )
    .await;
    assert_eq!(
        e.failure(),
        (ErrorKind::AuthRequired, "missing-credential"),
        "{:?}",
        e.result
    );
    assert_eq!(e.err()["variable"], "THETA_ONDEMAND_API_TOKEN");
    assert!(fake.requests().is_empty(), "{:?}", seen(&fake));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_project_id_comes_with_the_call_since_ironclaw_gives_no_environment() {
    let fake = crate::families::fake_all(|_| {}).await;
    // The controller key is an IronClaw secret; the project id is not configured anywhere.
    let mut cfg = crate::families::config_all(&fake);
    cfg.passthrough.retain(|(k, _)| k != "THETA_EC_PROJECT_ID");
    let rt = ironclaw(cfg);

    let missing = execute(&rt, json!({"command": "theta.deployments.list"})).await;
    assert_eq!(
        missing.err()["kind"],
        "missing-credential",
        "{}",
        missing.err()
    );
    assert_eq!(missing.err()["variable"], "THETA_EC_PROJECT_ID");

    let listed = execute(
        &rt,
        json!({"command": "theta.deployments.list", "project_id": fake_edgecloud::PROJECT_ID}),
    )
    .await;
    assert!(listed.ok()["deployments"].is_array(), "{}", listed.ok());
    let seen = fake.requests();
    let list = seen
        .iter()
        .find(|r| r.host == "controller.thetaedgecloud.com")
        .expect("the list reached the controller");
    assert!(
        list.query.contains(fake_edgecloud::PROJECT_ID),
        "{}",
        list.query
    );

    let bad = execute(
        &rt,
        json!({"command": "theta.deployments.list", "project_id": "prj/../x"}),
    )
    .await;
    assert_eq!(bad.err()["kind"], "invalid-argument", "{}", bad.err());
    assert_eq!(bad.err()["field"], "project_id");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_request_that_failed_after_it_was_sent_is_reported_not_retried() {
    use fake_edgecloud::{Fault, FaultKind, RouteMatch};
    let fake = fake().await;
    let rt = ironclaw(config_for(&fake));
    // The POST reaches Theta, then the answer is cut: http-failure with request-sent = true.
    fake.inject(Fault::once(
        RouteMatch::post("/infer_request/flux"),
        FaultKind::CutStream { after_events: 0 },
    ));
    let r = execute(
        &rt,
        json!({"command": "infer", "args": {"service": "flux", "input": {"prompt": "x"}}}),
    )
    .await;
    let e = r.err();
    assert_eq!(e["kind"], "transport", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("was sent before it failed"), "{message}");
    assert!(message.contains("get_request_status"), "{message}");
    assert_eq!(
        r.failure(),
        (ErrorKind::OperationFailed, "transport-after-send")
    );
    assert_eq!(
        requests(&fake, "POST"),
        1,
        "not sent again: {:?}",
        seen(&fake)
    );

    // A read cut the same way is simply sent again.
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::CutStream { after_events: 0 },
    ));
    let listed = execute(&rt, json!({"command": "list_services"})).await;
    assert!(!listed.ok().as_array().unwrap().is_empty());
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/service/list"))
            .count(),
        2
    );

    // A paid request that got no answer in time: a timeout that says it may have run.
    fake.inject(Fault::once(
        RouteMatch::post("/infer_request/flux"),
        FaultKind::Hang,
    ));
    let mut cfg = config_for(&fake);
    cfg.limits.max_request_time = std::time::Duration::from_millis(300);
    let rt = ironclaw(cfg);
    let r = execute(
        &rt,
        json!({"command": "infer", "args": {"service": "flux", "input": {"prompt": "x"}}}),
    )
    .await;
    let e = r.err();
    assert_eq!(e["kind"], "timeout", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("was sent before it failed"),
        "{e}"
    );
    assert_eq!(r.failure(), (ErrorKind::Executor, "timeout-after-send"));
    assert_eq!(requests(&fake, "POST"), 2, "{:?}", seen(&fake));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_map_onto_guest_failure_kinds() {
    use fake_edgecloud::{Fault, FaultKind, RouteMatch};
    let fake = fake().await;
    let rt = ironclaw(config_for(&fake));
    fake.inject(Fault::always(
        RouteMatch::post("/infer_request/flux"),
        FaultKind::server_error(502),
    ));
    let r = execute(
        &rt,
        json!({"command": "infer", "args": {"service": "flux", "input": {"prompt": "x"}}}),
    )
    .await;
    assert_eq!(r.err()["kind"], "upstream", "{}", r.err());
    assert_eq!(r.failure(), (ErrorKind::OperationFailed, "upstream-502"));
    assert_eq!(
        requests(&fake, "POST"),
        1,
        "a paid POST is not retried on 5xx"
    );

    let e = execute(
        &rt,
        json!({"command": "get_request_status", "args": {"request_id": "infr_rqst_missing"}}),
    )
    .await;
    let (kind, code) = e.failure();
    assert_eq!(
        (kind, code),
        (ErrorKind::Client, "upstream-404"),
        "{:?}",
        e.result
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_dispatches_on_the_capability_id_of_its_context() {
    let fake = fake().await;
    let rt = ironclaw(config_for(&fake));
    // The params are the command's own arguments: IronClaw's per-tool input schema.
    let images = execute_tool(&rt, "theta.list_services", json!({"category": "image"})).await;
    let images = images.ok().as_array().expect("a list").clone();
    assert!(!images.is_empty() && images.iter().all(|s| s["category"] == "image"));

    // A preview asked for is the answer; nothing paid is sent.
    let preview = execute_tool(
        &rt,
        "theta.infer",
        json!({"service": "flux", "input": {"prompt": "x"}, "dry_run": true}),
    )
    .await;
    assert_eq!(preview.ok()["kind"], "dry-run", "{}", preview.ok());
    assert_eq!(requests(&fake, "POST"), 0);

    // The context decides: a `command` key in the params is an unknown argument, not a dispatch.
    let e = execute_tool(&rt, "theta.list_services", json!({"command": "infer"})).await;
    assert_eq!(e.failure(), (ErrorKind::Input, "invalid-argument"));
    assert_eq!(e.err()["field"], "command", "{}", e.err());

    let e = execute_tool(&rt, "theta.no_such_tool", json!({})).await;
    assert_eq!(e.failure(), (ErrorKind::Input, "invalid-argument"));
    assert_eq!(e.err()["field"], "context.capability_id");
    assert!(
        e.err()["reason"]
            .as_str()
            .unwrap()
            .contains("theta.deployments_list"),
        "{}",
        e.err()
    );
    // A context without a capability id (IronClaw's job state only): the params name the command.
    let legacy = execute_in(
        &rt,
        &json!({"command": "list_services"}).to_string(),
        Some(r#"{"job_id":"j-1"}"#),
    )
    .await;
    assert!(!legacy.ok().as_array().unwrap().is_empty());
}
