//! Deployments on the controller, end to end: list/get/create/delete, VM types, templates, the route
//! probe (singular vs plural), VM fallback with its reason, validateDisposable (always deletes), bad
//! arguments, upstream errors, missing credentials and dry-run.

use crate::common::*;
use crate::families::*;
use fake_edgecloud::{Fault, FaultKind, RouteMatch, RouteShape};
use serde_json::{Value, json};
use theta_host::bindings::ThetaError;
use theta_host::credentials::Family;

const TEMPLATE: &str = "img_gf070dbq0kttgz1atmiatyunhdxm";
const CTL: &str = "controller.thetaedgecloud.com";

#[tokio::test(flavor = "multi_thread")]
async fn route_probe_finds_the_shape_the_project_answers_and_commands_use_it() {
    for (shape, expected) in [
        (RouteShape::Singular, "deployment"),
        (RouteShape::Plural, "deployments"),
    ] {
        let fake = fake_all(|c| c.route_shape = shape).await;
        let rt = runtime(config_all(&fake)).await;
        let probe = invoke(&rt, "theta.deployments.routeProbe", json!({})).await;
        let p = probe.ok();
        assert_eq!(p["route"], expected, "{p}");
        if shape == RouteShape::Plural {
            assert_eq!(p["attempts"][0]["status"], 404, "{p}");
            assert_eq!(p["attempts"][1]["ok"], true, "{p}");
        }
        let list = invoke(&rt, "theta.deployments.list", json!({})).await;
        assert_eq!(list.ok()["route"], expected);
        assert_eq!(list.ok()["deployments"], json!([]));
        // The given route is used without probing.
        fake.clear_requests();
        let list = invoke(&rt, "theta.deployments.list", json!({"route": expected})).await;
        assert!(list.ok()["deployments"].is_array());
        assert_eq!(seen_on(&fake, CTL).len(), 1, "{:?}", seen_on(&fake, CTL));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_prefers_vm_gt1_then_falls_back_and_says_why() {
    let fake = fake_all(|c| {
        c.vm_capacity = vec![
            ("vm_gt1".into(), 0),
            ("vm_gt2".into(), 1),
            ("vm_gv1".into(), 1),
        ];
    })
    .await;
    let rt = runtime(config_all(&fake)).await;
    let vms = invoke(&rt, "theta.deployments.listVm", json!({})).await;
    let gt1 = vms
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "vm_gt1")
        .cloned()
        .unwrap();
    assert_eq!(gt1["available"], 0);
    assert_eq!(gt1["gpu"], "T4");

    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE}),
    )
    .await;
    let created = c.ok().clone();
    assert_eq!(created["vm_id"], "vm_gt2", "{created}");
    let reason = created["reason"].as_str().unwrap();
    assert!(
        reason.contains("vm_gt1") && reason.contains("capacity"),
        "{reason}"
    );
    assert!(
        created["deployment"]["endpoint"]
            .as_str()
            .unwrap()
            .ends_with(".onthetaedgecloud.com")
    );
    // vm_gt2 is now full too: the next create goes to the V100 type.
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE}),
    )
    .await;
    assert_eq!(c.ok()["vm_id"], "vm_gv1", "{}", c.ok());
    // Every type full: capacity-exhausted, nothing created.
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::CapacityExhausted(_)),
        "{}",
        c.err_json()
    );
    assert_eq!(fake.deployments().len(), 2);

    // The list and get see them; delete removes one.
    let shard = created["deployment"]["shard"].as_str().unwrap().to_owned();
    let suffix = created["deployment"]["suffix"].as_str().unwrap().to_owned();
    let got = invoke(
        &rt,
        "theta.deployments.get",
        json!({"shard": shard, "suffix": suffix}),
    )
    .await;
    assert_eq!(got.ok()["vm_id"], "vm_gt2");
    let del = invoke(
        &rt,
        "theta.deployments.delete",
        json!({"shard": shard, "suffix": suffix}),
    )
    .await;
    assert_eq!(del.ok()["deleted"], true);
    assert_eq!(fake.deployments().len(), 1);
    let gone = invoke(
        &rt,
        "theta.deployments.get",
        json!({"shard": shard, "suffix": suffix}),
    )
    .await;
    assert!(
        matches!(gone.err(), ThetaError::Upstream(u) if u.status == 404),
        "{}",
        gone.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_409_on_create_moves_to_the_next_vm_type_without_retrying_the_same() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    fake.inject(Fault::once(
        RouteMatch::post("/deployment").on_host(CTL),
        FaultKind::error(409, "Insufficient capacity for vm_gt1"),
    ));
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE}),
    )
    .await;
    assert_eq!(c.ok()["vm_id"], "vm_gt2", "{}", c.ok());
    assert_eq!(c.ok()["attempts"][0]["vm_id"], "vm_gt1");
    let posts = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2);
    // An explicit vm_id is used as given, with no fallback.
    fake.inject(Fault::once(
        RouteMatch::post("/deployment").on_host(CTL),
        FaultKind::error(409, "Insufficient capacity for vm_gt1"),
    ));
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE, "vm_id": "vm_gt1"}),
    )
    .await;
    assert!(
        matches!(
            c.err(),
            ThetaError::CapacityExhausted(_) | ThetaError::Upstream(_)
        ),
        "{}",
        c.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_standard_and_custom() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let t = invoke(
        &rt,
        "theta.deployments.listTemplates",
        json!({"category": "serving"}),
    )
    .await;
    let names: Vec<&str> = t
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Grounding Dino"), "{names:?}");
    assert!(!names.contains(&"Jupyter Notebook"));
    let t = invoke(
        &rt,
        "theta.deployments.listTemplates",
        json!({"custom": true}),
    )
    .await;
    assert_eq!(t.ok()[0]["name"], "My vLLM");
    let bad = invoke(
        &rt,
        "theta.deployments.listTemplates",
        json!({"category": "gaming"}),
    )
    .await;
    assert!(matches!(bad.err(), ThetaError::InvalidArgument(a) if a.field == "category"));
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_disposable_rides_out_warm_up_and_deletes() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let v = invoke(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE, "ready_timeout_seconds": 10, "interval_seconds": 0.05}),
    )
    .await;
    let r = v.ok();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["readiness"]["statuses"], json!([404, 502, 200]), "{r}");
    assert_eq!(r["vm_id"], "vm_gt1");
    assert_eq!(r["deleted"], true);
    assert!(fake.deployments().is_empty(), "{:?}", fake.deployments());
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_disposable_deletes_even_when_the_endpoint_never_gets_ready() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![502; 1000]).await;
    let rt = runtime(config_all(&fake)).await;
    let v = invoke(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE, "ready_timeout_seconds": 0.3, "interval_seconds": 0.05}),
    )
    .await;
    match v.err() {
        ThetaError::Timeout(m) => assert!(m.contains("was deleted"), "{m}"),
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    assert!(
        fake.deployments().is_empty(),
        "left behind: {:?}",
        fake.deployments()
    );
    assert!(fake.requests().iter().any(|r| r.method == "DELETE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_disposable_reports_a_failed_delete_as_a_leftover() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![]).await;
    let rt = runtime(config_all(&fake)).await;
    fake.inject(Fault::always(
        RouteMatch::method("DELETE", "/deployment").on_host(CTL),
        FaultKind::server_error(500),
    ));
    let v = invoke(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE, "ready_timeout_seconds": 2, "interval_seconds": 0.05}),
    )
    .await;
    match v.err() {
        ThetaError::Upstream(u) => {
            assert!(
                u.message.contains("may still exist")
                    && u.message.contains("theta.deployments.delete"),
                "{}",
                u.message
            )
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_refused_before_anything_is_sent() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    for (name, args, field) in [
        ("theta.deployments.create", json!({}), "template_id"),
        (
            "theta.deployments.create",
            json!({"template_id": "../x"}),
            "template_id",
        ),
        (
            "theta.deployments.create",
            json!({"template_id": TEMPLATE, "max_replicas": 99}),
            "max_replicas",
        ),
        (
            "theta.deployments.create",
            json!({"template_id": TEMPLATE, "env_vars": {"A": 1}}),
            "env_vars.A",
        ),
        ("theta.deployments.get", json!({"shard": 1}), "suffix"),
        (
            "theta.deployments.delete",
            json!({"shard": "1", "suffix": "a/b"}),
            "suffix",
        ),
        (
            "theta.deployments.list",
            json!({"route": "deploymentz"}),
            "route",
        ),
        (
            "theta.deployments.validateDisposable",
            json!({"template_id": TEMPLATE, "probe": "grpc"}),
            "probe",
        ),
        ("theta.deployments.list", json!({"bogus": 1}), "bogus"),
    ] {
        assert_invalid_argument(&rt, name, args, field).await;
    }
    assert!(seen_on(&fake, CTL).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_and_missing_credentials_name_what_to_fix() {
    let fake = fake_all(|_| {}).await;
    // A wrong key: the controller's 403, with the variable to check.
    let mut cfg = config_all(&fake);
    cfg.credentials.insert(
        Family::Controller,
        theta_host::credentials::Credential {
            variable: "THETA_EC_API_KEY",
            injection: theta_host::credentials::Injection::ApiKey(
                theta_host::credentials::Secret::new("wrong-key-value"),
            ),
        },
    );
    let rt = runtime(cfg).await;
    let c = invoke(
        &rt,
        "theta.deployments.list",
        json!({"route": "deployment"}),
    )
    .await;
    match c.err() {
        ThetaError::Upstream(u) => {
            assert_eq!(u.status, 403);
            assert!(u.message.contains("THETA_EC_API_KEY"), "{}", u.message);
            assert!(!u.message.contains("wrong-key-value"));
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    // 5xx on a read is retried.
    let rt = runtime(config_all(&fake)).await;
    fake.inject(Fault::new(
        RouteMatch::get("/deployment/list"),
        FaultKind::server_error(503),
        1,
    ));
    assert!(
        invoke(
            &rt,
            "theta.deployments.list",
            json!({"route": "deployment"})
        )
        .await
        .ok()["deployments"]
            .is_array()
    );
    // No key: missing-credential naming it and pointing at theta.auth.capabilities; nothing sent.
    fake.clear_requests();
    let rt = runtime(without(config_all(&fake), Family::Controller, &[])).await;
    let c = invoke(&rt, "theta.deployments.list", json!({})).await;
    match c.err() {
        ThetaError::MissingCredential(m) => {
            assert_eq!(m.variable, "THETA_EC_API_KEY");
            assert!(m.hint.contains("theta.auth.capabilities"), "{}", m.hint);
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    assert!(seen_on(&fake, CTL).is_empty());
    // The public VM list still works without the key.
    assert!(
        invoke(&rt, "theta.deployments.listVm", json!({}))
            .await
            .ok()
            .is_array()
    );
    // No project id.
    let rt = runtime(without(
        config_all(&fake),
        Family::OnDemand,
        &["THETA_EC_PROJECT_ID"],
    ))
    .await;
    let c = invoke(&rt, "theta.deployments.list", json!({})).await;
    assert!(
        matches!(c.err(), ThetaError::MissingCredential(m) if m.variable == "THETA_EC_PROJECT_ID"),
        "{}",
        c.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_previews_create_and_delete_and_sends_neither() {
    let fake = fake_all(|_| {}).await;
    let mut cfg = config_all(&fake);
    cfg.policy.dry_run = true;
    let rt = runtime(cfg).await;
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE, "auth_username": "u", "auth_password": "hunter2-secret"}),
    )
    .await;
    match c.err() {
        ThetaError::DryRun(p) => {
            assert_eq!(p.method, "POST");
            assert_eq!(p.url, "https://controller.thetaedgecloud.com/deployment");
            let body: Value = serde_json::from_str(p.body.as_deref().unwrap()).unwrap();
            assert_eq!(body["vm_id"], "vm_gt1");
            assert_eq!(body["auth_password"], "[redacted]");
            assert!(!format!("{:?}", p.headers).contains(EC_KEY));
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    let d = invoke(
        &rt,
        "theta.deployments.delete",
        json!({"shard": "1", "suffix": "abc"}),
    )
    .await;
    assert!(
        matches!(d.err(), ThetaError::DryRun(p) if p.method == "DELETE"),
        "{}",
        d.err_json()
    );
    let v = invoke(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE}),
    )
    .await;
    assert!(matches!(v.err(), ThetaError::DryRun(_)), "{}", v.err_json());
    assert!(
        fake.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        seen(&fake)
    );
    assert!(fake.deployments().is_empty());
    // Reads work.
    assert!(invoke(&rt, "theta.deployments.list", json!({})).await.ok()["deployments"].is_array());
}
