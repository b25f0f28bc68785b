//! Uploads end to end: `theta.ondemand.upload` asks for a presigned URL and PUTs the bytes to it
//! through the real host, which lets exactly that one PUT reach the storage host (without any
//! credential) and refuses every other request there. Effects are counted at the fake.

use crate::common::*;
use fake_edgecloud::{FakeEdgeCloud, RecordedRequest, STORAGE_HOST};
use serde_json::{Value, json};
use std::sync::Arc;
use theta_host::Runtime;
use theta_host::bindings::ThetaError;

/// A 1×1 PNG, enough for the fake's vision services.
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0a, b'I', b'D', b'A', b'T',
    0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, b'I', b'E', b'N',
    b'D', 0xae, 0x42, 0x60, 0x82,
];

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn storage_requests(fake: &FakeEdgeCloud) -> Vec<RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|r| r.host == STORAGE_HOST)
        .collect()
}

fn signature_of(r: &RecordedRequest) -> String {
    r.query_param("X-Goog-Signature").expect("a signed URL")
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_puts_the_exact_bytes_once_without_a_credential_and_blip_reads_them() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let up = invoke(
        &rt,
        "theta.ondemand.upload",
        json!({"service": "blip", "input_field": "input_img", "data_base64": b64(PNG), "content_type": "image/png"}),
    )
    .await;
    let done = up.ok().clone();
    let filename = done["filename"].as_str().unwrap().to_owned();
    assert_eq!(
        done,
        json!({"service": "blip", "input_field": "input_img", "filename": filename,
               "uploaded_bytes": PNG.len(), "input": {"input_img": filename}})
    );
    let puts = storage_requests(&fake);
    assert_eq!(puts.len(), 1, "{:?}", seen(&fake));
    let put = &puts[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(put.path, format!("/theta-fake-uploads/{filename}"));
    assert_eq!(put.body, PNG);
    assert_eq!(put.header("content-type"), Some("image/png"));
    assert_eq!(put.header("authorization"), None, "no Bearer to storage");
    assert!(
        put.headers.iter().all(|(_, v)| !v.contains(TOKEN)),
        "the on-demand token never reaches the storage host"
    );
    assert_eq!(fake.uploaded(&filename).as_deref(), Some(PNG));
    // The URL request itself carried the host's credential, as every on-demand request does.
    let ask = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/infer_request/blip/input_presigned_urls")
        .expect("the upload URL was asked for");
    assert_eq!(
        ask.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    // The signature appears nowhere the caller or the operator reads.
    let signature = signature_of(put);
    assert!(!done.to_string().contains(&signature));
    let audit = audit_text(&rt);
    assert!(audit.contains(STORAGE_HOST), "{audit}");
    assert!(!audit.contains(&signature), "{audit}");

    let infer = invoke(
        &rt,
        "infer",
        json!({"service": "blip", "input": done["input"], "wait": 5}),
    )
    .await;
    let text = infer.ok()["output"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains(&format!("from a {}-byte upload", PNG.len())),
        "{}",
        infer.ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_feed_grounding_dino_llava_and_whisper() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    for (service, field, extra) in [
        (
            "grounding_dino",
            "input_img",
            json!({"detection_prompt": "cloud"}),
        ),
        ("llava", "input_img", json!({"question": "what is it?"})),
        ("whisper", "audio_filename", json!({})),
    ] {
        let up = invoke(
            &rt,
            "theta.ondemand.upload",
            json!({"service": service, "input_field": field, "data_base64": b64(b"0123456789")}),
        )
        .await;
        let mut input = extra.clone();
        input[field] = up.ok()["input"][field].clone();
        let out = invoke(
            &rt,
            "infer",
            json!({"service": service, "input": input, "wait": 5}),
        )
        .await;
        let output = out.ok()["output"].to_string();
        assert!(
            output.contains("10-byte upload") || output.contains("\"input_bytes\":10"),
            "{service}: {output}"
        );
    }
    assert_eq!(storage_requests(&fake).len(), 3);
    assert!(
        storage_requests(&fake)
            .iter()
            .all(|r| r.header("content-type") == Some("application/octet-stream"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_never_uploaded_is_refused_by_infer() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let urls = invoke(
        &rt,
        "get_upload_url",
        json!({"service": "blip", "input_field": "input_img"}),
    )
    .await;
    let filename = urls.ok()[0]["filename"].as_str().unwrap().to_owned();
    let out = invoke(
        &rt,
        "infer",
        json!({"service": "blip", "input": {"input_img": filename}, "wait": 5}),
    )
    .await;
    match out.err() {
        ThetaError::Upstream(u) => {
            assert_eq!(u.status, 400);
            assert!(u.message.contains("never uploaded"), "{}", u.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(storage_requests(&fake).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_uploads_are_refused_before_anything_is_sent() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.limits.max_request_bytes = 1000;
    let rt = runtime(cfg).await;
    let over_host_limit = invoke(
        &rt,
        "theta.ondemand.upload",
        json!({"service": "blip", "input_field": "input_img", "data_base64": b64(&[7u8; 1001])}),
    )
    .await;
    let text = over_host_limit.err_json().to_string();
    assert!(text.contains("1000") && text.contains("1001"), "{text}");
    let over_cap = invoke(
        &rt,
        "theta.ondemand.upload",
        json!({"service": "blip", "input_field": "input_img", "data_base64": b64(&vec![0u8; 8 * 1024 * 1024 + 3])}),
    )
    .await;
    match over_cap.err() {
        ThetaError::InvalidArgument(a) => {
            assert_eq!(a.field, "data_base64");
            assert!(a.reason.contains("8388608"), "{}", a.reason);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        fake.requests().is_empty(),
        "no URL asked, nothing PUT: {:?}",
        seen(&fake)
    );
}

async fn hostile(fake: &FakeEdgeCloud) -> Runtime {
    Runtime::new(config_for(fake), &hostile_wasm())
        .await
        .expect("hostile guest loads")
}

/// Runs the hostile guest as `command` with `args`; its report as JSON.
async fn hostile_call(rt: &Runtime, command: &str, args: Value) -> Value {
    let out = rt
        .invoke(command, &args.to_string(), Arc::new(|_| {}))
        .await
        .expect("host survives");
    serde_json::from_str(&out.expect("the guest reports")).unwrap()
}

fn refused(outcome: &Value, why: &str) {
    assert_eq!(outcome["outcome"], "error-code", "{outcome}");
    let detail = outcome["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(why), "want `{why}` in {detail}");
    assert!(
        !detail.contains("X-Goog-Signature"),
        "the signature is never echoed: {detail}"
    );
}

fn denied_at_storage(rt: &Runtime) -> usize {
    rt.audit()
        .records()
        .iter()
        .filter(|r| r.host == STORAGE_HOST && r.decision != "allowed")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_storage_host_takes_only_one_put_to_the_exact_granted_url() {
    let fake = fake().await;
    let rt = hostile(&fake).await;
    let upload = "theta.ondemand.upload";

    // Twice: the first PUT arrives, the second is refused.
    let twice = hostile_call(
        &rt,
        upload,
        json!({"action": "grant_then_put", "tweak": "twice"}),
    )
    .await;
    assert_eq!(twice[0]["outcome"], "response", "{twice}");
    assert_eq!(twice[0]["status"], 200, "{twice}");
    refused(&twice[1], "used already");
    assert_eq!(storage_requests(&fake).len(), 1);
    assert!(storage_requests(&fake)[0].header("authorization").is_none());

    // A GET, another object, another signed query, plain HTTP: refused, nothing arrives.
    for (tweak, why) in [
        ("get", "storage host takes only the one PUT"),
        ("path", "not a presigned upload URL this call was given"),
        ("query", "not a presigned upload URL this call was given"),
        ("http", "HTTPS only"),
    ] {
        let out = hostile_call(
            &rt,
            upload,
            json!({"action": "grant_then_put", "tweak": tweak}),
        )
        .await;
        refused(&out[0], why);
    }
    assert_eq!(storage_requests(&fake).len(), 1, "{:?}", seen(&fake));

    // No grant at all: a URL the guest made up.
    let invented = hostile_call(
        &rt,
        upload,
        json!({"action": "fetch", "scheme": "https", "authority": STORAGE_HOST,
               "path": "/theta-fake-uploads/x?X-Goog-Signature=00", "method": "PUT", "body": "x"}),
    )
    .await;
    refused(&invented, "not a presigned upload URL this call was given");

    // Another command that may ask for URLs may not PUT to them.
    let other = hostile_call(&rt, "get_upload_url", json!({"action": "grant_then_put"})).await;
    refused(&other[0], "belongs to theta.ondemand.upload");

    assert_eq!(storage_requests(&fake).len(), 1, "{:?}", seen(&fake));
    assert_eq!(denied_at_storage(&rt), 7, "{}", audit_text(&rt));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_granted_in_one_call_is_refused_in_the_next() {
    let fake = fake().await;
    let plugin = runtime(config_for(&fake)).await;
    let urls = invoke(
        &plugin,
        "get_upload_url",
        json!({"service": "blip", "input_field": "input_img"}),
    )
    .await;
    let url = urls.ok()[0]["upload_url"].as_str().unwrap().to_owned();
    let path = url
        .strip_prefix(&format!("https://{STORAGE_HOST}"))
        .unwrap();
    let rt = hostile(&fake).await;
    let later = hostile_call(
        &rt,
        "theta.ondemand.upload",
        json!({"action": "fetch", "scheme": "https", "authority": STORAGE_HOST,
               "path": path, "method": "PUT", "body": "late"}),
    )
    .await;
    refused(&later, "not a presigned upload URL this call was given");
    assert!(storage_requests(&fake).is_empty());
    assert_eq!(denied_at_storage(&rt), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_granted_put_over_the_size_limit_is_refused_before_it_is_sent() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.limits.max_request_bytes = 4096;
    let rt = Runtime::new(cfg, &hostile_wasm()).await.expect("loads");
    // 13 bytes × 1000 = 13000 bytes, over 4096.
    let out = hostile_call(
        &rt,
        "theta.ondemand.upload",
        json!({"action": "grant_then_put", "body_repeat": "1000"}),
    )
    .await;
    refused(&out[0], "request-size limit");
    assert!(storage_requests(&fake).is_empty(), "{:?}", seen(&fake));
    let limited = rt
        .audit()
        .records()
        .iter()
        .filter(|r| r.host == STORAGE_HOST && r.decision == "limit")
        .count();
    assert_eq!(limited, 1, "{}", audit_text(&rt));
}

/// A guest that states its own reservation in a `theta.route` answer: the host replaces it with its
/// price table's figure, so the guest cannot make a paid service look free.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_route_reservation_is_replaced_by_the_hosts_price() {
    let fake = fake().await;
    let rt = hostile(&fake).await;
    let out = hostile_call(&rt, "theta.route", json!({"action": "forge_route"})).await;
    assert_eq!(out["services"], json!(["flux"]), "{out}");
    assert_eq!(out["host_reserves"]["per_call_usd"]["flux"], 0.01, "{out}");
    assert!(fake.requests().is_empty());
}
