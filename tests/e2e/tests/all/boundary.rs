//! The host boundary fails closed (issue 10): canonical paths on every API host, grants by route from
//! the host's own table, audit before send, host-side work inside the call's limits, headers that
//! change meaning, deployment hosts, terminal escapes, and `describe()` offline. Every case asserts
//! the refusal kind and what the fake upstream actually received.

use crate::common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use theta_host::{HostConfig, Runtime};

async fn hostile(cfg: HostConfig) -> Runtime {
    Runtime::new(cfg, &hostile_wasm())
        .await
        .expect("hostile guest loads")
}

/// The hostile guest, called as `command`, doing `args`.
async fn run_as(rt: &Runtime, command: &str, args: Value) -> Value {
    let out = rt
        .invoke(command, &args.to_string(), Arc::new(|_| {}))
        .await
        .expect("host survives");
    match out {
        Ok(json) => serde_json::from_str(&json).unwrap(),
        Err(e) => {
            json!({"outcome": "refused-before-call", "detail": theta_host::report::error_text(&e)})
        }
    }
}

fn raw(authority: &str, method: &str, path: &str) -> Value {
    json!({"scheme": "https", "authority": authority, "path": path, "method": method, "body": "{\"input\":{}}"})
}

fn video_config(fake: &fake_edgecloud::FakeEdgeCloud) -> HostConfig {
    let mut cfg = config_for(fake);
    cfg.policy.allowlist = cfg.policy.allowlist.clone().with_video_api();
    cfg
}

#[tokio::test(flavor = "multi_thread")]
async fn non_canonical_paths_are_refused_on_every_api_host() {
    let fake = fake().await;
    let rt = hostile(video_config(&fake)).await;
    let shapes = |route: &str| -> Vec<String> {
        let tail = &route[1..];
        let first = tail.split('/').next().unwrap();
        let rest = &tail[first.len()..];
        let upper = format!("/{}{}", first[..1].to_ascii_uppercase() + &first[1..], rest);
        let encoded_first = format!("/%{:02X}{}{rest}", first.as_bytes()[0], &first[1..]);
        vec![
            format!("/{tail}/"),
            format!("//{tail}"),
            format!("/./{tail}"),
            format!("/service/../{tail}"),
            encoded_first,
            format!("/{}", tail.replacen('/', "%2F", 1)),
            upper,
            format!("/{first};p=1{rest}"),
        ]
        .into_iter()
        .filter(|p| p != route)
        .collect()
    };
    let hosts = [
        (
            "ondemand.thetaedgecloud.com",
            "infer",
            "/infer_request/flux",
        ),
        (
            "controller.thetaedgecloud.com",
            "theta.deployments.create",
            "/deployment",
        ),
        ("api.thetavideoapi.com", "theta.video.videoCreate", "/video"),
    ];
    let mut tried = 0;
    for (host, command, route) in hosts {
        let mut paths = shapes(&format!("{route}/x"));
        if route.matches('/').count() == 1 {
            // One-segment routes: the same spellings of the route itself.
            paths.extend(shapes(route));
        }
        for path in paths {
            tried += 1;
            fake.clear_requests();
            let out = run_as(&rt, command, raw(host, "POST", &path)).await;
            let detail = out["detail"].as_str().unwrap_or_default();
            // wasi:http itself may refuse to form some spellings (`setup-error`): also a refusal.
            assert!(
                out["outcome"] == "setup-error"
                    || (detail.contains("theta-policy denied")
                        && (detail.contains("not canonical")
                            || detail.contains("not a request the plugin makes"))),
                "{host} POST {path} was not refused as non-canonical: {out}"
            );
            assert!(
                fake.requests().is_empty(),
                "{host} POST {path} reached the fake"
            );
        }
    }
    let spent = rt.spent_micros("default").await;
    assert_eq!(spent, 0, "a refused request was charged");
    println!("canonical-path battery: {tried} spellings on 3 API hosts, all refused, none sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_requests_are_never_sent_and_never_free() {
    let fake = fake().await;
    let rt = hostile(video_config(&fake)).await;
    for (command, host, method, path) in [
        (
            "infer",
            "ondemand.thetaedgecloud.com",
            "POST",
            "/infer_request/flux/cancel/now",
        ),
        (
            "infer",
            "ondemand.thetaedgecloud.com",
            "PATCH",
            "/infer_request/flux",
        ),
        (
            "theta.deployments.create",
            "controller.thetaedgecloud.com",
            "POST",
            "/deployment/1/x/restart",
        ),
        (
            "theta.deployments.create",
            "api.thetaedgecloud.com",
            "POST",
            "/gpu-deployments",
        ),
        (
            "theta.video.videoCreate",
            "api.thetavideoapi.com",
            "POST",
            "/video/v1/transcode",
        ),
        (
            "list_services",
            "ondemand.thetaedgecloud.com",
            "GET",
            "/admin",
        ),
    ] {
        let out = run_as(&rt, command, raw(host, method, path)).await;
        let detail = out["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("not a request the plugin makes"),
            "{method} {host}{path}: {out}"
        );
    }
    assert!(
        fake.requests().is_empty(),
        "an unknown request reached the fake"
    );
    let audit = audit_text(&rt);
    assert!(!audit.contains("\"outcome\":\"sent\""), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_may_only_make_its_own_commands_requests() {
    let fake = fake().await;
    // The documented example's read-only tenant: list_services and get_request_status only.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/tenants.example.toml"),
    )
    .unwrap()
    .replace(
        "store = \"theta-spend.db\"",
        &format!("store = {:?}", temp_store()),
    );
    let file = theta_host::tenant::file::parse(&example, "tenants.example.toml").unwrap();
    let mut cfg = config_for(&fake);
    cfg.credentials.insert(
        theta_host::credentials::Family::Controller,
        theta_host::credentials::Credential {
            variable: "THETA_EC_API_KEY",
            injection: theta_host::credentials::Injection::ApiKey(
                theta_host::credentials::Secret::new("ec-key"),
            ),
        },
    );
    let rt = Runtime::with_tenants(cfg, &hostile_wasm(), file)
        .await
        .unwrap();
    let as_reader = |args: Value| {
        let rt = &rt;
        async move {
            let out = rt
                .invoke_as(
                    "catalogue-only",
                    "get_request_status",
                    &args.to_string(),
                    Arc::new(|_| {}),
                )
                .await
                .unwrap()
                .unwrap();
            serde_json::from_str::<Value>(&out).unwrap()
        }
    };
    for (host, path) in [
        ("api.thetaedgecloud.com", "/balance?orgID=o1"),
        (
            "controller.thetaedgecloud.com",
            "/deployment/list?project_id=p",
        ),
        (
            "controller.thetaedgecloud.com",
            "/chatbot/list?project_id=p",
        ),
        ("ondemand.thetaedgecloud.com", "/service/list"),
    ] {
        let out =
            as_reader(json!({"scheme":"https","authority":host,"path":path,"method":"GET"})).await;
        let detail = out["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("not to `get_request_status`"),
            "{host}{path} under get_request_status: {out}"
        );
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    // Its own route goes through.
    let out = as_reader(json!({"scheme":"https","authority":"ondemand.thetaedgecloud.com","path":"/infer_request/infr_rqst_1","method":"GET"})).await;
    assert_eq!(out["outcome"], "response", "{out}");
    assert_eq!(fake.requests().len(), 1);
    // The guest's describe() claims every command is a read; the host's table says otherwise.
    assert!(!rt.is_granted("catalogue-only", "infer"));
    assert!(!rt.is_granted("catalogue-only", "theta.ondemand.infer"));
    assert!(!rt.is_granted("catalogue-only", "theta.billing.balance"));
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_runs_with_no_outbound_access() {
    let fake = fake().await;
    // The hostile describe() tries a request before it answers.
    let rt = hostile(config_for(&fake)).await;
    let listed = rt.describe_all().await.unwrap();
    assert!(!listed.is_empty());
    assert!(fake.requests().is_empty(), "describe() reached the network");
    let audit = audit_text(&rt);
    assert!(
        audit.contains("\"command\":\"describe\"") && audit.contains("\"decision\":\"denied\""),
        "{audit}"
    );
    // Its summaries reach a terminal neutralised.
    let table = theta_host::report::commands_table(&listed);
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    assert!(
        !table.contains("\ntheta-event"),
        "a forged line starts a line: {table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_plugin_and_the_host_table_agree() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let all = rt.describe_all().await.unwrap();
    let known = theta_host::policy::routes::commands();
    for c in &all {
        assert!(
            known.contains(&c.name.as_str()),
            "the host does not know `{}`",
            c.name
        );
        let plugin_effect = match c.effect {
            theta_host::bindings::Effect::Read => theta_host::policy::Effect::Read,
            theta_host::bindings::Effect::Mutate => theta_host::policy::Effect::Mutate,
            theta_host::bindings::Effect::Spend => theta_host::policy::Effect::Spend,
        };
        assert_eq!(
            theta_host::policy::routes::command_effect(&c.name),
            plugin_effect,
            "`{}`: the host's route table and the plugin disagree on its effect",
            c.name
        );
    }
    assert_eq!(rt.describe().await.unwrap().len(), all.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_response_future_is_still_audited_and_charged() {
    let fake = fake().await;
    fake.inject(fake_edgecloud::Fault::once(
        fake_edgecloud::RouteMatch::post("/infer_request/flux"),
        fake_edgecloud::FaultKind::SlowFirstByte(std::time::Duration::from_millis(1500)),
    ));
    let rt = hostile(config_for(&fake)).await;
    let mut args = raw(
        "ondemand.thetaedgecloud.com",
        "POST",
        "/infer_request/flux?wait=5&api_key=SECRETQ",
    );
    args["action"] = json!("drop");
    let out = run_as(&rt, "infer", args).await;
    assert_eq!(out["outcome"], "dropped", "{out}");
    // Give the background settle a moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(fake.requests().len(), 1, "the request left the host");
    let records = rt.audit().records();
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.path == "/infer_request/flux")
        .collect();
    let outcomes: Vec<_> = mine
        .iter()
        .map(|r| r.outcome.clone().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["sent", "abandoned"], "{mine:?}");
    assert_eq!(mine[0].request, mine[1].request);
    let query = mine[0].query.as_deref().unwrap_or_default();
    assert!(
        query.contains("api_key=[redacted]") && !query.contains("SECRETQ"),
        "{query}"
    );
    // It may have run: the money stays counted.
    assert_eq!(rt.spent_micros("default").await, 10_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_knocking_guest_is_stopped_and_its_audit_is_bounded() {
    let fake = fake().await;
    let rt = hostile(config_for(&fake)).await;
    let err = rt
        .invoke(
            "list_services",
            r#"{"action":"knock","n":"50000"}"#,
            Arc::new(|_| {}),
        )
        .await;
    let text = match err {
        Err(e) => format!("{e:#}"),
        Ok(Ok(v)) => panic!("the knocking call finished: {v}"),
        Ok(Err(e)) => theta_host::report::error_text(&e),
    };
    assert!(text.contains("limit") && text.contains("refused"), "{text}");
    let lines = rt.audit().records().len();
    assert!(
        lines <= theta_host::hooks::MAX_REFUSALS_PER_CALL as usize + 2,
        "{lines} audit lines for one knocking call"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn host_work_on_the_guests_behalf_counts_against_its_cpu_budget() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.limits.cpu = std::time::Duration::from_millis(300);
    let rt = hostile(cfg).await;
    // Huge single asks are refused by the host at once.
    let err = rt
        .invoke(
            "list_services",
            r#"{"action":"random","len":"1073741824","n":"1"}"#,
            Arc::new(|_| {}),
        )
        .await
        .expect_err("a 1 GiB random ask must fail");
    assert!(format!("{err:#}").contains("exceeds limit"), "{err:#}");
    // Many small asks: the host CPU they use is charged, and the call is stopped.
    let started = std::time::Instant::now();
    let err = rt
        .invoke(
            "list_services",
            r#"{"action":"random","len":"65536"}"#,
            Arc::new(|_| {}),
        )
        .await
        .expect_err("endless random asks must be stopped");
    assert!(format!("{err:#}").contains("CPU budget"), "{err:#}");
    println!(
        "endless wasi:random asks under a 300 ms CPU budget stopped after {:.2} s of wall time",
        started.elapsed().as_secs_f64()
    );
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test(flavor = "multi_thread")]
async fn host_side_resources_stay_inside_the_memory_budget() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.limits.memory_bytes = 16 << 20;
    let limits = cfg.limits.clone();
    let rt = hostile(cfg).await;
    let before = rss_bytes();
    let out = rt
        .invoke(
            "list_services",
            r#"{"action":"hoard","n":"100000"}"#,
            Arc::new(|_| {}),
        )
        .await;
    let grown = rss_bytes().saturating_sub(before);
    let text = match &out {
        Ok(Ok(v)) => v.clone(),
        Ok(Err(e)) => theta_host::report::error_text(e),
        Err(e) => format!("{e:#}"),
    };
    if let Ok(Ok(v)) = &out {
        let v: Value = serde_json::from_str(v).unwrap();
        assert!(
            v["kept"].as_u64().unwrap() as usize <= limits.max_resources(),
            "{v}"
        );
        assert!(
            !v["header_error"].as_str().unwrap().is_empty(),
            "a 512 KiB header map was accepted: {v}"
        );
    }
    assert!(
        grown < 64 << 20,
        "a 16 MiB tenant made the host grow by {} MiB ({text})",
        grown >> 20
    );
    println!(
        "host-side hoard under memory_mib = 16: host RSS grew {} MiB; outcome: {}",
        grown >> 20,
        text.chars().take(160).collect::<String>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_and_queries_that_change_meaning_are_refused() {
    let fake = fake().await;
    let rt = hostile(config_for(&fake)).await;
    for name in [
        "x-http-method-override",
        "X-Method-Override",
        "x-http-method",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-host",
        "x-forwarded-proto",
        "forwarded",
    ] {
        let args = json!({"scheme":"https","authority":"ondemand.thetaedgecloud.com","path":"/service/list","hname":name,"hvalue":"DELETE"});
        let out = run_as(&rt, "list_services", args).await;
        assert_eq!(out["outcome"], "header-error", "{name}: {out}");
    }
    for query in [
        "_method=DELETE",
        "%5Fmethod=POST",
        "x-http-method-override=PUT",
    ] {
        let path = format!("/service/list?{query}");
        let out = run_as(
            &rt,
            "list_services",
            raw("ondemand.thetaedgecloud.com", "GET", &path),
        )
        .await;
        assert!(
            out["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("overrides the method"),
            "{query}: {out}"
        );
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_configured_or_own_deployment_hosts_are_reachable() {
    let fake = fake().await;
    let evil = "attacker.tec-s1.onthetaedgecloud.com";
    // No dedicated endpoint configured: no deployment host at all.
    let rt = hostile(config_for(&fake)).await;
    let out = run_as(
        &rt,
        "theta.inference.models",
        raw(evil, "GET", "/v1/models"),
    )
    .await;
    assert!(
        out["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not an API this call may reach"),
        "{out}"
    );
    // With an endpoint configured, that host only.
    let mut cfg = config_for(&fake);
    cfg.policy.inference_host = Some("mine.tec-s1.onthetaedgecloud.com".into());
    let rt = hostile(cfg).await;
    let out = run_as(
        &rt,
        "theta.inference.models",
        raw(evil, "GET", "/v1/models"),
    )
    .await;
    assert!(
        out["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not an API this call may reach"),
        "{out}"
    );
    assert!(fake.requests().is_empty());
    let out = run_as(
        &rt,
        "theta.inference.models",
        raw("mine.tec-s1.onthetaedgecloud.com", "GET", "/v1/models"),
    )
    .await;
    assert_eq!(out["outcome"], "response", "{out}");
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0].host, "mine.tec-s1.onthetaedgecloud.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_names_its_rule_and_nothing_else_reaches_the_fake() {
    // The hostile URL battery still passes with real command names (see hostile_guest.rs); here,
    // one request per route-table entry the guest is *not* running is refused.
    let fake = fake().await;
    let rt = hostile(video_config(&fake)).await;
    let mut refused = 0;
    for route in theta_host::policy::routes::ROUTES {
        let host = match route.api {
            theta_host::policy::Api::OnDemand => "ondemand.thetaedgecloud.com",
            theta_host::policy::Api::Controller => "controller.thetaedgecloud.com",
            theta_host::policy::Api::Video => "api.thetavideoapi.com",
            _ => continue,
        };
        let path = route
            .path
            .split('/')
            .map(|s| {
                if s == "{}" {
                    "id1"
                } else {
                    s.split('|').next().unwrap()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let args = raw(host, route.methods[0], &path);
        // `theta.auth.capabilities` has no route at all.
        let out = run_as(&rt, "theta.auth.capabilities", args.clone()).await;
        assert!(
            out["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("belongs to"),
            "{} {host}{path}: {out}",
            route.methods[0]
        );
        refused += 1;
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    println!("route battery: {refused} routes tried from a command that owns none, all refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ondemand_base_url_override_is_the_ondemand_family() {
    let fake = fake().await;
    let vars = |base: &str| {
        std::collections::HashMap::from([
            ("THETA_ONDEMAND_API_TOKEN".to_owned(), TOKEN.to_owned()),
            ("THETA_ONDEMAND_API_BASE_URL".to_owned(), base.to_owned()),
            ("THETA_STORE_URL".to_owned(), temp_store()),
        ])
    };
    // Another family's host, or a path prefix: refused at start-up with the reason.
    for (base, why) in [
        (
            "https://controller.thetaedgecloud.com",
            "not an on-demand host",
        ),
        (
            "https://ondemand-beta.thetaedgecloud.com/v2",
            "give only the scheme and host",
        ),
    ] {
        let err = HostConfig::from_vars(&vars(base))
            .expect_err(base)
            .to_string();
        assert!(err.contains(why), "{base}: {err}");
    }
    let mut cfg = HostConfig::from_vars(&vars("https://ondemand-beta.thetaedgecloud.com")).unwrap();
    cfg.upstream = theta_host::net::Upstream::TestServer(fake.addr());
    cfg.audit_in_memory = true;
    let rt = runtime(cfg).await;
    let out = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}, "wait": 0}),
    )
    .await;
    out.ok();
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("sent");
    assert_eq!(post.host, "ondemand-beta.thetaedgecloud.com");
    assert!(
        post.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {TOKEN}")),
        "the override host got no on-demand credential"
    );
    assert_eq!(
        rt.spent_micros("default").await,
        10_000,
        "its paid calls are priced"
    );
}

/// A tenant file with its own store and a `payer` that may spend up to `cap` dollars.
async fn paying_host(fake: &fake_edgecloud::FakeEdgeCloud, cap: f64, extra: &str) -> Runtime {
    let policy = format!(
        "store = {:?}\n[tenants.payer]\ncommands = [\"*\"]\neffects = [\"read\", \"mutate\", \"spend\"]\nspend_cap_usd = {cap}\n{extra}",
        temp_store()
    );
    let file = theta_host::tenant::file::parse(&policy, "boundary.toml").unwrap();
    Runtime::with_tenants(config_for(fake), &hostile_wasm(), file)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_max_tokens_cannot_ride_on_a_small_per_call_price() {
    let fake = fake().await;
    // qwen3 is $0.03 a call; 2,000,000 output tokens are priced at $1.00, over a $0.50 cap.
    let rt = paying_host(&fake, 0.5, "").await;
    let body = |max_tokens: u64| {
        json!({"scheme":"https","authority":"ondemand.thetaedgecloud.com","path":"/infer_request/qwen3?wait=0","method":"POST",
               "body": json!({"input": {"messages": [{"role":"user","content":"hi"}], "max_tokens": max_tokens}}).to_string()})
    };
    let out = rt
        .invoke_as(
            "payer",
            "infer",
            &body(2_000_000).to_string(),
            Arc::new(|_| {}),
        )
        .await
        .unwrap()
        .unwrap();
    let out: Value = serde_json::from_str(&out).unwrap();
    assert!(
        out["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("spend cap reached"),
        "{out}"
    );
    assert!(
        fake.requests().is_empty(),
        "the over-cap request reached the fake"
    );
    assert_eq!(rt.spent_micros("payer").await, 0);
    // A small max_tokens costs the per-call price and goes through.
    let out = rt
        .invoke_as("payer", "infer", &body(100).to_string(), Arc::new(|_| {}))
        .await
        .unwrap()
        .unwrap();
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["outcome"], "response", "{out}");
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(rt.spent_micros("payer").await, 30_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_engine_never_lowers_a_tenants_memory_limit() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    // The engine's default is 16 MiB; the tenant is given 96 MiB and uses 40 of it.
    cfg.pooling_instances = Some(4);
    cfg.limits.memory_bytes = 16 << 20;
    let policy = format!(
        "store = {:?}\n[tenants.big]\ncommands = [\"*\"]\neffects = [\"read\"]\nmemory_mib = 96\n",
        temp_store()
    );
    let file = theta_host::tenant::file::parse(&policy, "pool.toml").unwrap();
    let rt = Runtime::with_tenants(cfg, &hostile_wasm(), file)
        .await
        .unwrap();
    let out = rt
        .invoke_as(
            "big",
            "list_services",
            r#"{"action":"alloc","mib":"40"}"#,
            Arc::new(|_| {}),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(out.contains("\"allocated_mib\":40"), "{out}");
}
