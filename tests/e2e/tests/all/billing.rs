//! Billing and auth, end to end: the org balance, the balance snapshot (a number, or `skipped` with
//! the reason when the answer has none), and theta.auth.capabilities (names only, never values), per family.

use crate::common::*;
use crate::families::*;
use fake_edgecloud::{Fault, FaultKind, RouteMatch};
use serde_json::{Value, json};
use theta_host::bindings::ThetaError;
use theta_host::credentials::Family;

#[tokio::test(flavor = "multi_thread")]
async fn balance_and_snapshot() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let b = invoke(&rt, "theta.billing.balance", json!({})).await;
    assert_eq!(b.ok()["balance"], 3421.300894);
    assert_eq!(b.ok()["org_id"], fake_edgecloud::ORG_ID);
    let r = fake.requests().into_iter().last().unwrap();
    assert_eq!(r.host, "api.thetaedgecloud.com");
    assert_eq!(
        r.query_param("orgID").as_deref(),
        Some(fake_edgecloud::ORG_ID)
    );
    assert_eq!(r.header("x-api-key"), Some(EC_KEY));
    let s = invoke(&rt, "theta.billing.balanceSnapshot", json!({})).await;
    assert_eq!(
        s.ok(),
        &json!({"balance": 3421.300894, "skipped": false}),
        "{}",
        s.ok()
    );
    // Another org: the API's 403.
    let o = invoke(&rt, "theta.billing.balance", json!({"org_id": "org_other"})).await;
    assert!(
        matches!(o.err(), ThetaError::Upstream(u) if u.status == 403 && u.message.contains("THETA_EC_API_KEY")),
        "{}",
        o.err_json()
    );
    let bad = invoke(&rt, "theta.billing.balance", json!({"org_id": "org/../x"})).await;
    assert!(matches!(bad.err(), ThetaError::InvalidArgument(a) if a.field == "org_id"));
    fake.inject(Fault::once(RouteMatch::get("/balance"), FaultKind::BadJson));
    let j = invoke(&rt, "theta.billing.balanceSnapshot", json!({})).await;
    assert!(
        matches!(j.err(), ThetaError::Transport(_)),
        "{}",
        j.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_is_skipped_with_the_reason_when_the_answer_has_no_number() {
    let fake = fake_all(|c| c.balance = None).await;
    let rt = runtime(config_all(&fake)).await;
    let b = invoke(&rt, "theta.billing.balance", json!({})).await;
    assert_eq!(b.ok()["balance"], Value::Null);
    fake.clear_requests();
    let s = invoke(&rt, "theta.billing.balanceSnapshot", json!({})).await;
    let r = s.ok();
    assert_eq!(r["skipped"], true, "{r}");
    assert_eq!(r["balance"], Value::Null, "{r}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("no numeric balance") && reason.contains(fake_edgecloud::ORG_ID),
        "{reason}"
    );
    // One read of the balance, nothing else.
    assert_eq!(
        seen(&fake),
        vec![("GET".to_owned(), "/balance".to_owned())],
        "{:?}",
        seen(&fake)
    );
    // Without THETA_ORG_ID.
    let rt = runtime(without(
        config_all(&fake),
        Family::OnDemand,
        &["THETA_ORG_ID"],
    ))
    .await;
    let s = invoke(&rt, "theta.billing.balance", json!({})).await;
    assert!(
        matches!(s.err(), ThetaError::MissingCredential(m) if m.variable == "THETA_ORG_ID"),
        "{}",
        s.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_show_names_per_family_never_values() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let all = invoke(&rt, "theta.auth.capabilities", json!({})).await;
    let text = all.ok().to_string();
    for secret in [TOKEN, EC_KEY, VIDEO_SECRET, ENDPOINT_TOKEN] {
        assert!(!text.contains(secret), "{text}");
    }
    let fam = |v: &Value, name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|f| f["family"] == name)
            .cloned()
            .unwrap()
    };
    for f in [
        "ondemand",
        "deployments",
        "inference",
        "ai-agents",
        "video",
        "billing",
    ] {
        assert_eq!(fam(all.ok(), f)["configured"], true, "{f}: {text}");
    }
    assert!(
        fam(all.ok(), "video")["commands"]
            .as_array()
            .unwrap()
            .contains(&json!("theta.video.videoCreate"))
    );
    // Take the video account and the controller key away.
    let cfg = without(
        without(config_all(&fake), Family::Video, &["THETA_VIDEO_SA_ID"]),
        Family::Controller,
        &[],
    );
    let rt = runtime(cfg).await;
    let some = invoke(&rt, "theta.auth.capabilities", json!({})).await;
    let v = fam(some.ok(), "video");
    assert_eq!(v["configured"], false);
    assert_eq!(
        v["missing"],
        json!(["THETA_VIDEO_SA_ID", "THETA_VIDEO_SA_SECRET"])
    );
    assert_eq!(
        fam(some.ok(), "deployments")["missing"],
        json!(["THETA_EC_API_KEY"])
    );
    assert_eq!(fam(some.ok(), "ondemand")["configured"], true);
    assert_eq!(fam(some.ok(), "inference")["configured"], true);
    // describe() lists each command's own credentials only.
    let commands = rt.describe().await.unwrap();
    let creds = |n: &str| {
        commands
            .iter()
            .find(|c| c.name == n)
            .unwrap()
            .credentials
            .clone()
    };
    assert_eq!(
        creds("theta.video.list"),
        ["THETA_VIDEO_SA_ID", "THETA_VIDEO_SA_SECRET"]
    );
    assert_eq!(
        creds("theta.billing.balance"),
        ["THETA_EC_API_KEY", "THETA_ORG_ID"]
    );
    assert_eq!(creds("theta.inference.chat"), ["THETA_INFERENCE_ENDPOINT"]);
    assert!(creds("theta.auth.capabilities").is_empty());
    let effect = |n: &str| {
        theta_host::report::effect_label(commands.iter().find(|c| c.name == n).unwrap().effect)
    };
    assert_eq!(effect("theta.deployments.create"), "spend");
    assert_eq!(effect("theta.deployments.delete"), "mutate");
    assert_eq!(effect("theta.video.videoCreate"), "spend");
    assert_eq!(effect("theta.ai.agent.document.create"), "mutate");
    assert_eq!(effect("theta.inference.ready"), "read");
}
