//! AI agents and their knowledge documents, end to end: create/get/update/list, multipart documents
//! whose content is a given string, bad arguments, upstream errors, missing credentials, dry-run.

use crate::common::*;
use crate::families::*;
use fake_edgecloud::{Fault, FaultKind, RouteMatch};
use serde_json::{Value, json};
use theta_host::bindings::ThetaError;
use theta_host::credentials::Family;

#[tokio::test(flavor = "multi_thread")]
async fn agents_and_documents_round_trip() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let a = invoke(
        &rt,
        "theta.ai.agent.create",
        json!({"name": "Yosemite guide", "system_prompt": "Be brief.", "temperature": 0.3}),
    )
    .await;
    let agent = a.ok().clone();
    let id = agent["id"].as_str().unwrap().to_owned();
    assert_eq!(agent["name"], "Yosemite guide");
    assert_eq!(agent["project_id"], fake_edgecloud::PROJECT_ID);
    // The plugin added the project id.
    let sent: Value = serde_json::from_slice(&fake.requests().last().unwrap().body).unwrap();
    assert_eq!(sent["project_id"], fake_edgecloud::PROJECT_ID);

    let u = invoke(
        &rt,
        "theta.ai.agent.update",
        json!({"chatbot_id": id, "system_prompt": "Be kind."}),
    )
    .await;
    assert_eq!(u.ok()["system_prompt"], "Be kind.");
    assert_eq!(u.ok()["name"], "Yosemite guide");
    let g = invoke(&rt, "theta.ai.agent.get", json!({"chatbotId": id})).await;
    assert_eq!(g.ok()["system_prompt"], "Be kind.");
    let l = invoke(&rt, "theta.ai.agent.list", json!({})).await;
    assert_eq!(l.ok().as_array().unwrap().len(), 1);

    let content = "name,activity\nHalf Dome,hike\n--not-a-boundary--\n";
    let d = invoke(
        &rt,
        "theta.ai.agent.document.create",
        json!({"chatbot_id": id, "file": {"filename": "activities.csv", "content": content, "content_type": "text/csv"},
               "metadata": {"query_type": "text", "description": "things to do"}}),
    )
    .await;
    let doc = d.ok()["id"].as_str().unwrap().to_owned();
    let req = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(
        req.header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    let got = invoke(
        &rt,
        "theta.ai.agent.document.get",
        json!({"chatbot_id": id, "document_id": doc}),
    )
    .await;
    assert_eq!(got.ok()["content"], content, "{}", got.ok());
    assert_eq!(got.ok()["metadata"]["filename"], "activities.csv");
    assert_eq!(got.ok()["metadata"]["description"], "things to do");

    let up = invoke(
        &rt,
        "theta.ai.agent.document.update",
        json!({"chatbot_id": id, "document_id": doc, "file": {"filename": "activities.csv", "content": "new"}}),
    )
    .await;
    assert_eq!(up.ok()["id"], doc);
    let got = invoke(
        &rt,
        "theta.ai.agent.document.get",
        json!({"chatbot_id": id, "document_id": doc}),
    )
    .await;
    assert_eq!(got.ok()["content"], "new");
    let list = invoke(
        &rt,
        "theta.ai.agent.document.list",
        json!({"chatbot_id": id}),
    )
    .await;
    assert_eq!(list.ok()["total_documents"], 1);
    assert_eq!(list.ok()["documents"][0]["id"], doc);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_upstream_errors_and_missing_credentials() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    for (name, args, field) in [
        ("theta.ai.agent.create", json!({}), "name"),
        (
            "theta.ai.agent.create",
            json!({"name": "x", "temperature": 9}),
            "temperature",
        ),
        (
            "theta.ai.agent.create",
            json!({"name": "x", "colour": "red"}),
            "colour",
        ),
        (
            "theta.ai.agent.get",
            json!({"chatbot_id": "a/b"}),
            "chatbot_id",
        ),
        ("theta.ai.agent.update", json!({"chatbot_id": "c1"}), "name"),
        (
            "theta.ai.agent.document.create",
            json!({"chatbot_id": "c1"}),
            "file",
        ),
        (
            "theta.ai.agent.document.create",
            json!({"chatbot_id": "c1", "file": {"filename": "../etc/passwd", "content": "x"}}),
            "file.filename",
        ),
        (
            "theta.ai.agent.document.create",
            json!({"chatbot_id": "c1", "file": {"filename": "a.txt"}}),
            "file.content",
        ),
        (
            "theta.ai.agent.document.update",
            json!({"chatbot_id": "c1", "file": {"filename": "a.txt", "content": "x"}}),
            "document_id",
        ),
        (
            "theta.ai.agent.document.get",
            json!({"chatbot_id": "c1"}),
            "document_id",
        ),
    ] {
        assert_invalid_argument(&rt, name, args, field).await;
    }
    assert!(fake.requests().is_empty());
    let c = invoke(
        &rt,
        "theta.ai.agent.get",
        json!({"chatbot_id": "chatbot_missing"}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::Upstream(u) if u.status == 404 && u.message.contains("theta.ai.agent.list")),
        "{}",
        c.err_json()
    );
    fake.inject(Fault::once(
        RouteMatch::post("/chatbot"),
        FaultKind::server_error(500),
    ));
    let c = invoke(&rt, "theta.ai.agent.create", json!({"name": "x"})).await;
    assert!(
        matches!(c.err(), ThetaError::Upstream(u) if u.status == 500),
        "{}",
        c.err_json()
    );
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        1,
        "a mutating POST is not retried"
    );
    let rt = runtime(without(config_all(&fake), Family::Controller, &[])).await;
    let c = invoke(&rt, "theta.ai.agent.list", json!({})).await;
    assert!(
        matches!(c.err(), ThetaError::MissingCredential(m) if m.variable == "THETA_EC_API_KEY"),
        "{}",
        c.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_previews_writes_without_the_document_text() {
    let fake = fake_all(|_| {}).await;
    let mut cfg = config_all(&fake);
    cfg.policy.dry_run = true;
    let rt = runtime(cfg).await;
    let c = invoke(&rt, "theta.ai.agent.create", json!({"name": "x"})).await;
    assert!(
        matches!(c.err(), ThetaError::DryRun(p) if p.url.ends_with("/chatbot")),
        "{}",
        c.err_json()
    );
    let d = invoke(
        &rt,
        "theta.ai.agent.document.create",
        json!({"chatbot_id": "c1", "file": {"filename": "a.txt", "content": "top secret plans"}}),
    )
    .await;
    match d.err() {
        ThetaError::DryRun(p) => {
            let body = p.body.as_deref().unwrap();
            assert!(!body.contains("top secret plans"), "{body}");
            assert!(body.contains("redacted: 16 bytes"), "{body}");
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    assert!(fake.requests().is_empty());
    assert!(
        invoke(&rt, "theta.ai.agent.list", json!({}))
            .await
            .ok()
            .is_array()
    );
}
