//! The deployment lifecycle beyond create/delete, end to end: start/stop (with the route-spelling
//! fallback; stop ends billing and keeps the endpoint), the VM fallback when capacity is short
//! silently (a create accepted but never scheduled), and validateDisposable as the skill does it
//! (Basic auth, balance before/after, one chat, delete, verified gone, nothing secret anywhere).

use crate::common::*;
use crate::families::*;
use fake_edgecloud::{Fault, FaultKind, RouteMatch};
use serde_json::{Value, json};
use theta_host::bindings::ThetaError;
use theta_host::events::GuestEvent;

const TEMPLATE: &str = "img_gf070dbq0kttgz1atmiatyunhdxm";
const CTL: &str = "controller.thetaedgecloud.com";

fn posts_on(fake: &fake_edgecloud::FakeEdgeCloud, host: &str) -> Vec<String> {
    seen_on(fake, host)
        .into_iter()
        .filter(|(m, _)| m == "POST")
        .map(|(_, p)| p)
        .collect()
}

fn count(fake: &fake_edgecloud::FakeEdgeCloud, method: &str, path_prefix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(path_prefix))
        .count()
}

fn progress(events: &[GuestEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            GuestEvent::Progress { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_ends_billing_keeps_the_endpoint_and_start_resumes_on_the_other_route_spelling() {
    // The project lists under /deployment/..., the controller has start/stop only under
    // /deployments/...: both commands must fall back.
    let fake = fake_all(|c| c.endpoint_warmup = vec![]).await;
    let rt = runtime(config_all(&fake)).await;
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE, "vm_id": "vm_gt1", "auth_username": "owner",
               "auth_password": "owner-pass-0123456789"}),
    )
    .await;
    let d = c.ok()["deployment"].clone();
    let (shard, suffix) = (
        d["shard"].as_str().unwrap().to_owned(),
        d["suffix"].as_str().unwrap().to_owned(),
    );
    let key = format!("{shard}/{suffix}");
    assert_eq!(fake.billing_deployments(), vec![key.clone()]);

    fake.clear_requests();
    let s = invoke(
        &rt,
        "theta.deployments.stop",
        json!({"shard": shard, "suffix": suffix}),
    )
    .await;
    let stopped = s.ok();
    assert_eq!(stopped["action"], "stopped", "{stopped}");
    assert_eq!(stopped["route"], "deployments", "{stopped}");
    assert_eq!(stopped["tried_first"].as_array().unwrap().len(), 1);
    assert!(
        stopped["billing"]
            .as_str()
            .unwrap()
            .contains("endpoint and its credentials are kept")
    );
    // Exactly one POST per spelling, the first refused as not found.
    assert_eq!(
        posts_on(&fake, CTL),
        vec![
            format!("/deployment/{shard}/{suffix}/stop"),
            format!("/deployments/{shard}/{suffix}/stop")
        ]
    );
    assert!(fake.billing_deployments().is_empty(), "stop ends billing");
    // Kept: the deployment, its endpoint and its credentials.
    let kept = fake.deployments();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["Endpoint"], d["endpoint"]);
    assert_eq!(kept[0]["AuthUsername"], "owner");
    let got = invoke(
        &rt,
        "theta.deployments.get",
        json!({"shard": shard, "suffix": suffix}),
    )
    .await;
    assert_eq!(got.ok()["status"], "Stopped");
    assert_eq!(got.ok()["endpoint"], d["endpoint"]);

    fake.clear_requests();
    let s = invoke(
        &rt,
        "theta.deployments.start",
        json!({"shard": shard, "suffix": suffix, "route": "deployment"}),
    )
    .await;
    assert_eq!(s.ok()["action"], "started", "{}", s.ok());
    assert_eq!(
        posts_on(&fake, CTL),
        vec![
            format!("/deployment/{shard}/{suffix}/start"),
            format!("/deployments/{shard}/{suffix}/start")
        ]
    );
    assert_eq!(fake.billing_deployments(), vec![key]);
    // Start is paid: the host's audit marks the request that worked as spend; stop's as mutate.
    let effect_of = |path: String| {
        rt.audit()
            .records()
            .iter()
            .filter(|r| r.path == path && r.outcome.as_deref() == Some("sent"))
            .map(|r| serde_json::to_value(r.effect).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        effect_of(format!("/deployments/{shard}/{suffix}/start")),
        vec![json!("spend")]
    );
    assert_eq!(
        effect_of(format!("/deployments/{shard}/{suffix}/stop")),
        vec![json!("mutate")]
    );

    // Neither spelling knows the deployment: one clear not-found, nothing else sent.
    fake.clear_requests();
    let s = invoke(
        &rt,
        "theta.deployments.stop",
        json!({"shard": shard, "suffix": "nosuchdeployment", "route": "deployment"}),
    )
    .await;
    match s.err() {
        ThetaError::Upstream(u) => {
            assert_eq!(u.status, 404);
            assert!(
                u.message.contains("theta.deployments.list"),
                "{}",
                u.message
            );
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    assert_eq!(posts_on(&fake, CTL).len(), 2);
    // Bad arguments never reach the fake.
    fake.clear_requests();
    for (args, field) in [
        (json!({"shard": "1"}), "suffix"),
        (json!({"shard": "1", "suffix": "a/b"}), "suffix"),
        (json!({"shard": "1", "suffix": "x", "bogus": 1}), "bogus"),
    ] {
        assert_invalid_argument(&rt, "theta.deployments.start", args, field).await;
    }
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_accepted_but_never_scheduled_is_deleted_and_the_next_type_tried() {
    // vm_gt1 accepts creates but never schedules them; vm_gt2 answers 409; vm_gv1 works.
    let fake = fake_all(|c| {
        c.unschedulable_vms = vec!["vm_gt1".into()];
        c.endpoint_warmup = vec![];
    })
    .await;
    let rt = runtime(config_all(&fake)).await;
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE, "pending_timeout_seconds": 0.3}),
    )
    .await;
    // First round: gt1 pending → deleted, gt2 created (it schedules).
    let created = c.ok().clone();
    assert_eq!(created["vm_id"], "vm_gt2", "{created}");
    let first = &created["attempts"][0];
    assert_eq!(first["vm_id"], "vm_gt1");
    let outcome = first["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("pending") && outcome.contains("deleted"),
        "{outcome}"
    );
    assert!(
        created["reason"].as_str().unwrap().contains("vm_gt1"),
        "{created}"
    );
    assert_eq!(count(&fake, "POST", "/deployment"), 2);
    assert_eq!(count(&fake, "DELETE", "/deployment"), 1);
    let left = fake.deployments();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["VmID"], "vm_gt2");
    assert!(
        progress(&c.events).iter().any(|m| m.contains("pending")),
        "{:?}",
        progress(&c.events)
    );

    // Second round, all three behaviours: gt1 pending, gt2 409, gv1 created.
    fake.clear_requests();
    fake.inject(Fault::once(
        RouteMatch::post("/deployment")
            .on_host(CTL)
            .with_body_containing("\"vm_gt2\""),
        FaultKind::error(409, "Insufficient capacity for vm_gt2"),
    ));
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE, "pending_timeout_seconds": 0.3}),
    )
    .await;
    let created = c.ok().clone();
    assert_eq!(created["vm_id"], "vm_gv1", "{created}");
    let outcomes: Vec<(String, String)> = created["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["vm_id"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(outcomes[0].0 == "vm_gt1" && outcomes[0].1.contains("pending"));
    assert!(outcomes[1].0 == "vm_gt2" && outcomes[1].1.contains("no capacity"));
    assert!(outcomes[2].0 == "vm_gv1" && outcomes[2].1 == "created");
    assert_eq!(count(&fake, "POST", "/deployment"), 3);
    assert_eq!(count(&fake, "DELETE", "/deployment"), 1);
    assert_eq!(fake.deployments().len(), 2);

    // An exact vm_id is used as given: no waiting, no delete.
    fake.clear_requests();
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE, "vm_id": "vm_gt1", "pending_timeout_seconds": 0.3}),
    )
    .await;
    assert_eq!(c.ok()["vm_id"], "vm_gt1");
    assert_eq!(count(&fake, "DELETE", "/deployment"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_short_silently_is_capacity_exhausted_with_nothing_left_behind() {
    let fake = fake_all(|c| {
        c.unschedulable_vms = vec!["vm_gt1".into(), "vm_gt2".into(), "vm_gv1".into()];
    })
    .await;
    let rt = runtime(config_all(&fake)).await;
    let c = invoke(
        &rt,
        "theta.deployments.create",
        json!({"template_id": TEMPLATE, "pending_timeout_seconds": 0.2}),
    )
    .await;
    match c.err() {
        ThetaError::CapacityExhausted(e) => {
            for vm in ["vm_gt1", "vm_gt2", "vm_gv1"] {
                assert!(e.message.contains(vm), "{}", e.message);
            }
            assert!(e.message.contains("pending"), "{}", e.message);
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    assert_eq!(count(&fake, "POST", "/deployment"), 3);
    assert_eq!(count(&fake, "DELETE", "/deployment"), 3);
    assert!(fake.deployments().is_empty(), "{:?}", fake.deployments());
}

#[tokio::test(flavor = "multi_thread")]
async fn windows_longer_than_the_calls_wall_clock_are_refused_naming_the_limit() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    for (name, args, field) in [
        (
            "theta.deployments.create",
            json!({"template_id": TEMPLATE, "pending_timeout_seconds": 600}),
            "pending_timeout_seconds",
        ),
        (
            "theta.deployments.validateDisposable",
            json!({"template_id": TEMPLATE, "ready_timeout_seconds": 600}),
            "ready_timeout_seconds",
        ),
        (
            // Each fits, together they do not (60 s pending + 250 s readiness).
            "theta.deployments.validateDisposable",
            json!({"template_id": TEMPLATE, "pending_timeout_seconds": 60,
                   "ready_timeout_seconds": 250}),
            "ready_timeout_seconds",
        ),
        (
            "theta.inference.models",
            json!({"ready_timeout_seconds": 1000}),
            "ready_timeout_seconds",
        ),
        (
            "theta.inference.ready",
            json!({"timeout_seconds": 1000}),
            "timeout_seconds",
        ),
    ] {
        let c = invoke(&rt, name, args).await;
        match c.err() {
            ThetaError::InvalidArgument(a) => {
                assert_eq!(a.field, field, "{name}");
                assert!(
                    a.reason.contains("THETA_CALL_WALL_CLOCK_MS"),
                    "{}",
                    a.reason
                );
                assert!(a.reason.contains("300000"), "{}", a.reason);
            }
            other => panic!("{name}: {}", theta_host::report::error_text(other)),
        }
    }
    assert!(fake.requests().is_empty(), "{:?}", seen(&fake));
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_disposable_as_the_skill_does_it_with_generated_basic_auth() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let v = invoke(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE, "ready_timeout_seconds": 10, "interval_seconds": 0.05}),
    )
    .await;
    let r = v.ok().clone();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["readiness"]["statuses"], json!([404, 502, 200]), "{r}");
    assert_eq!(r["deleted"], true);
    assert_eq!(r["verified_gone"], true);
    assert_eq!(r["auth"]["generated"], true);
    assert_eq!(r["auth"]["password"], "[redacted]");
    let user = r["auth"]["username"].as_str().unwrap().to_owned();
    assert!(user.starts_with("validate-"), "{user}");
    assert!(r["chat"]["content"].as_str().unwrap().contains("OK"), "{r}");
    assert_eq!(r["balance"]["before"]["balance"], 3421.300894, "{r}");
    assert_eq!(r["balance"]["after"]["balance"], 3421.300894, "{r}");
    assert_eq!(r["balance"]["spent"], 0.0);

    // The create asked for the generated credentials...
    let create = fake
        .requests()
        .into_iter()
        .find(|q| q.method == "POST" && q.host == CTL)
        .unwrap();
    let body: Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(body["auth_username"], user.as_str());
    let password = body["auth_password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 32, "a random password of 24 bytes");
    // ...and every request to the endpoint carried them (the fake answers 401 otherwise): three
    // readiness polls and one chat.
    let endpoint_host = r["deployment"]["endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_owned();
    let on_endpoint: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|q| q.host == endpoint_host)
        .collect();
    let paths: Vec<(&str, &str)> = on_endpoint
        .iter()
        .map(|q| (q.method.as_str(), q.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("GET", "/v1/models"),
            ("GET", "/v1/models"),
            ("GET", "/v1/models"),
            ("POST", "/v1/chat/completions")
        ]
    );
    assert!(
        on_endpoint.iter().all(|q| q
            .header("authorization")
            .is_some_and(|a| a.starts_with("Basic "))),
        "every endpoint request has Basic auth"
    );
    // Balance read before and after; deleted once; gone from the list.
    assert_eq!(count(&fake, "GET", "/balance"), 2);
    assert_eq!(count(&fake, "DELETE", "/deployment"), 1);
    assert!(fake.deployments().is_empty());
    // The password is nowhere: result, events, audit.
    let events = format!("{:?}", v.events);
    let audit = audit_text(&rt);
    for (what, text) in [
        ("result", r.to_string()),
        ("events", events),
        ("audit", audit),
    ] {
        assert!(
            !text.contains(&password),
            "the password leaked into the {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_disposable_with_given_auth_and_without_an_org() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![503, 404]).await;
    let rt = runtime(without(
        config_all(&fake),
        theta_host::credentials::Family::OnDemand,
        &["THETA_ORG_ID"],
    ))
    .await;
    let v = invoke(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE, "auth_username": "me", "auth_password": "given-pass-0123456789",
               "ready_timeout_seconds": 5, "interval_seconds": 0.05}),
    )
    .await;
    let r = v.ok();
    assert_eq!(r["auth"]["generated"], false, "{r}");
    assert_eq!(r["auth"]["username"], "me");
    assert_eq!(r["balance"]["before"]["skipped"], "THETA_ORG_ID is not set");
    assert_eq!(count(&fake, "GET", "/balance"), 0);
    assert!(!r.to_string().contains("given-pass-0123456789"));
    // Only one of the two: refused before anything is sent.
    fake.clear_requests();
    assert_invalid_argument(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE, "auth_username": "me"}),
        "auth_password",
    )
    .await;
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_validation_names_no_password_and_still_deletes() {
    // The endpoint never gets past warm-up: timeout, deleted, and the error holds no password.
    let fake = fake_all(|c| c.endpoint_warmup = vec![502; 1000]).await;
    let rt = runtime(config_all(&fake)).await;
    let v = invoke(
        &rt,
        "theta.deployments.validateDisposable",
        json!({"template_id": TEMPLATE, "auth_username": "me", "auth_password": "leak-check-0123456789",
               "ready_timeout_seconds": 0.3, "interval_seconds": 0.05}),
    )
    .await;
    let text = v.err_json().to_string();
    assert!(matches!(v.err(), ThetaError::Timeout(_)), "{text}");
    assert!(text.contains("was deleted"), "{text}");
    assert!(!text.contains("leak-check-0123456789"), "{text}");
    assert!(!audit_text(&rt).contains("leak-check-0123456789"));
    assert!(fake.deployments().is_empty());
}
