//! Multi-tenant host: grants, spend caps with a persistent ledger, rate limits, per-tenant concurrency,
//! and isolation of a runaway tenant — all enforced in the host against the hostile guest, which sends
//! whatever it likes.

use crate::common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use theta_host::Runtime;
use theta_host::tenant::file::parse;

const POLICY: &str = r#"
[pricing.services]
flux = 0.01

[tenants.payer]
commands = ["*"]
effects = ["read", "mutate", "spend"]
spend_cap_usd = 0.025

[tenants.reader]
commands = ["list_services", "infer", "theta.deployments.list"]
effects = ["read"]
allowed_hosts = ["ondemand.thetaedgecloud.com"]

[tenants.limited]
commands = ["*"]
effects = ["read"]
requests_per_minute = 2

[tenants.runaway]
commands = ["*"]
effects = ["read"]
cpu_ms = 200
max_concurrent_calls = 1

[tenants.single]
commands = ["*"]
effects = ["read"]
max_concurrent_calls = 1

[tenants.bomber]
commands = ["*"]
effects = ["read"]
memory_mib = 16
"#;

async fn host(fake: &fake_edgecloud::FakeEdgeCloud, policy: &str) -> Runtime {
    // Each host its own store, unless the policy names one (the restart test).
    let policy = if policy.contains("store =") {
        policy.to_owned()
    } else {
        format!("store = {:?}\n{policy}", temp_store())
    };
    let file = parse(&policy, "e2e.toml").expect("policy parses");
    Runtime::with_tenants(config_for(fake), &hostile_wasm(), file)
        .await
        .expect("host starts")
}

async fn fetch_as(rt: &Runtime, tenant: &str, args: Value) -> Result<Value, String> {
    match rt
        .invoke_as(
            tenant,
            crate::hostile_guest::command_for(&args),
            &args.to_string(),
            Arc::new(|_| {}),
        )
        .await
        .expect("host survives")
    {
        Ok(json) => Ok(serde_json::from_str(&json).unwrap()),
        Err(e) => Err(theta_host::report::error_text(&e)),
    }
}

fn infer_flux() -> Value {
    json!({"scheme":"https","authority":"ondemand.thetaedgecloud.com","path":"/infer_request/flux","method":"POST","body":"{\"input\":{\"prompt\":\"x\"},\"wait\":5}"})
}

fn list() -> Value {
    json!({"scheme":"https","authority":"ondemand.thetaedgecloud.com","path":"/service/list","method":"GET"})
}

#[tokio::test(flavor = "multi_thread")]
async fn spend_cap_stops_paid_requests_before_they_are_sent() {
    let fake = fake().await;
    let rt = host(&fake, POLICY).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let out = fetch_as(&rt, "payer", infer_flux()).await.unwrap();
        statuses.push(out);
    }
    assert_eq!(statuses[0]["status"], 200, "{:?}", statuses[0]);
    assert_eq!(statuses[1]["status"], 200, "{:?}", statuses[1]);
    for refused in &statuses[2..] {
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            detail.contains("spend cap reached for tenant `payer`"),
            "{refused}"
        );
    }
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2, "only the two affordable requests reached Theta");
    assert!(
        (rt.spent_usd("payer").await - 0.02).abs() < 1e-9,
        "{}",
        rt.spent_usd("payer").await
    );
    // The audit trail records the spend of each allowed paid request and the refusals.
    let audit = audit_text(&rt);
    assert_eq!(
        audit
            .matches("\"outcome\":\"ok\",\"effect\":\"spend\",\"status\":200")
            .count(),
        2,
        "{audit}"
    );
    assert_eq!(audit.matches("\"outcome\":\"sent\"").count(), 2, "{audit}");
    assert_eq!(
        audit.matches("\"decision\":\"limit\"").count(),
        2,
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_theta_did_not_accept_give_the_money_back() {
    let fake = fake().await;
    let rt = host(&fake, POLICY).await;
    fake.inject(fake_edgecloud::Fault {
        matcher: fake_edgecloud::RouteMatch::any(),
        kind: fake_edgecloud::FaultKind::no_instances(),
        times: 5,
    });
    for _ in 0..5 {
        let out = fetch_as(&rt, "payer", infer_flux()).await.unwrap();
        assert_eq!(out["status"], 409, "{out}");
    }
    assert_eq!(rt.spent_usd("payer").await, 0.0, "409s are not charged");
    let out = fetch_as(&rt, "payer", infer_flux()).await.unwrap();
    assert_eq!(out["status"], 200, "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_calls_cannot_both_take_the_last_cent() {
    let fake = fake().await;
    let rt = Arc::new(host(&fake, &POLICY.replace("0.025", "0.015")).await);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move { fetch_as(&rt, "payer", infer_flux()).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        if out["status"] == 200 {
            ok += 1;
        } else {
            assert!(
                out["detail"].as_str().unwrap().contains("spend cap"),
                "{out}"
            );
        }
    }
    assert_eq!(
        ok, 1,
        "exactly one of two concurrent calls may spend the last cent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_spend_store_survives_a_restart() {
    let fake = fake().await;
    let policy = format!("store = {:?}\n{POLICY}", temp_store());
    {
        let rt = host(&fake, &policy).await;
        assert_eq!(
            fetch_as(&rt, "payer", infer_flux()).await.unwrap()["status"],
            200
        );
        assert_eq!(
            fetch_as(&rt, "payer", infer_flux()).await.unwrap()["status"],
            200
        );
    }
    // A new host process: the cap already holds two cents of spend.
    let rt = host(&fake, &policy).await;
    assert!((rt.spent_usd("payer").await - 0.02).abs() < 1e-9);
    let out = fetch_as(&rt, "payer", infer_flux()).await.unwrap();
    assert!(
        out["detail"].as_str().unwrap().contains("spend cap"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_are_checked_before_the_call_and_in_the_hook() {
    let fake = fake().await;
    let rt = host(&fake, POLICY).await;
    // Before the call: a command outside its grant, and a granted command whose routes pay
    // (decided by the host's route table, not by the guest's claim that everything is a read).
    let err = fetch_or_command(&rt, "reader", "get_upload_url").await;
    assert!(
        err.contains("not granted the command `get_upload_url`"),
        "{err}"
    );
    let err = fetch_or_command(&rt, "reader", "infer").await;
    assert!(err.contains("not granted paid commands (`infer`)"), "{err}");
    let err = fetch_or_command(&rt, "reader", "theta.ondemand.infer").await;
    assert!(
        err.contains("not granted"),
        "an alias needs the grant of what it runs: {err}"
    );
    let err = fetch_or_command(&rt, "reader", "fetch").await;
    assert!(err.contains("unknown command `fetch`"), "{err}");
    let out = fetch_as(&rt, "reader", json!({"scheme":"https","authority":"controller.thetaedgecloud.com","path":"/deployment/list","method":"GET"})).await.unwrap();
    assert!(
        out["detail"]
            .as_str()
            .unwrap()
            .contains("not an allowed Theta host"),
        "{out}"
    );
    assert_eq!(
        fetch_as(&rt, "reader", list()).await.unwrap()["status"],
        200
    );
    // Unknown tenants are an error, not a default.
    assert!(
        rt.invoke_as("mallory", "list_services", "{}", Arc::new(|_| {}))
            .await
            .is_err()
    );
}

async fn fetch_or_command(rt: &Runtime, tenant: &str, command: &str) -> String {
    match rt
        .invoke_as(tenant, command, "{}", Arc::new(|_| {}))
        .await
        .unwrap()
    {
        Ok(v) => panic!("expected a refusal, got {v}"),
        Err(e) => theta_host::report::error_text(&e),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_rate_is_limited_per_tenant() {
    let fake = fake().await;
    let rt = host(&fake, POLICY).await;
    assert_eq!(
        fetch_as(&rt, "limited", list()).await.unwrap()["status"],
        200
    );
    assert_eq!(
        fetch_as(&rt, "limited", list()).await.unwrap()["status"],
        200
    );
    let out = fetch_as(&rt, "limited", list()).await.unwrap();
    assert!(
        out["detail"]
            .as_str()
            .unwrap()
            .contains("request rate of 2 per minute"),
        "{out}"
    );
    // Another tenant is unaffected.
    assert_eq!(
        fetch_as(&rt, "reader", list()).await.unwrap()["status"],
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_tenant_does_not_break_other_tenants() {
    let fake = fake().await;
    let rt = Arc::new(host(&fake, POLICY).await);
    // An infinite loop and a memory bomb, from two tenants, beside a normal tenant's calls.
    let spinner = {
        let rt = rt.clone();
        tokio::spawn(async move {
            rt.invoke_as(
                "runaway",
                "list_services",
                r#"{"action":"spin"}"#,
                Arc::new(|_| {}),
            )
            .await
        })
    };
    let bomb = {
        let rt = rt.clone();
        tokio::spawn(async move {
            rt.invoke_as(
                "bomber",
                "list_services",
                r#"{"action":"alloc"}"#,
                Arc::new(|_| {}),
            )
            .await
        })
    };
    let mut served = 0;
    for _ in 0..20 {
        assert_eq!(
            fetch_as(&rt, "reader", list()).await.unwrap()["status"],
            200
        );
        served += 1;
    }
    let err = spinner.await.unwrap().expect_err("the spinner is stopped");
    assert!(format!("{err:#}").contains("CPU budget"), "{err:#}");
    let err = match bomb.await.unwrap() {
        Ok(Ok(v)) => panic!("the memory bomb finished: {v}"),
        Ok(Err(e)) => theta_host::report::error_text(&e),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("memory"),
        "the memory bomb was not stopped by its limit: {err}"
    );
    // The tenants' slots are free again and the others were never affected.
    assert_eq!(
        fetch_as(&rt, "runaway", list()).await.unwrap()["status"],
        200
    );
    println!("reader calls served while two runaway tenants spun and allocated: {served}/20");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_run_more_calls_at_once_than_granted() {
    use fake_edgecloud::{Fault, FaultKind, RouteMatch};
    let fake = fake().await;
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::SlowFirstByte(std::time::Duration::from_millis(800)),
    ));
    let rt = Arc::new(host(&fake, POLICY).await);
    let first = {
        let rt = rt.clone();
        tokio::spawn(async move { fetch_as(&rt, "single", list()).await })
    };
    // Once the first call's request is at the fake, the tenant's only slot is taken.
    while fake.requests().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let refused = fetch_as(&rt, "single", list()).await.unwrap_err();
    assert!(refused.contains("calls running"), "{refused}");
    // Another tenant is not limited by it, and the slot frees when the first call ends.
    assert_eq!(
        fetch_as(&rt, "reader", list()).await.unwrap()["status"],
        200
    );
    assert_eq!(first.await.unwrap().unwrap()["status"], 200);
    assert_eq!(
        fetch_as(&rt, "single", list()).await.unwrap()["status"],
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_cannot_make_more_requests_than_its_limit() {
    use fake_edgecloud::{Fault, FaultKind, RouteMatch};
    // The plugin retries 409 "no instances" (2 retries by default): the host lets only 2 requests out.
    let fake = fake().await;
    fake.inject(Fault::always(
        RouteMatch::post("/infer_request/flux"),
        FaultKind::no_instances(),
    ));
    let mut cfg = config_for(&fake);
    cfg.limits.max_requests = 2;
    cfg.passthrough
        .push(("THETA_HTTP_RETRY_BACKOFF_MS".into(), "25".into()));
    let rt = runtime(cfg).await;
    let out = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    )
    .await;
    let err = out.err_json();
    assert!(
        err.to_string().contains("the most one call may make"),
        "{err}"
    );
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        2,
        "the host let more requests out than the call's limit"
    );
    assert!(audit_text(&rt).contains("\"decision\":\"limit\""));
}
