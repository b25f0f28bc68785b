//! The dedicated inference endpoint, end to end: readiness through the warm-up pattern (404, 502, 200)
//! with both probes, models, chat, the endpoint only from host config, bad arguments, upstream errors
//! and dry-run.

use crate::common::*;
use crate::families::*;
use fake_edgecloud::{Fault, FaultKind, RouteMatch};
use serde_json::json;
use theta_host::bindings::ThetaError;

#[tokio::test(flavor = "multi_thread")]
async fn ready_rides_out_404_then_502_then_answers() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let r = invoke(
        &rt,
        "theta.inference.ready",
        json!({"timeout_seconds": 5, "interval_seconds": 0.05}),
    )
    .await;
    let r = r.ok().clone();
    assert_eq!(r["ready"], true, "{r}");
    assert_eq!(r["statuses"], json!([404, 502, 200]));
    assert_eq!(r["path"], "/v1/models");
    // The host injected the endpoint's bearer token.
    let last = fake
        .requests()
        .into_iter()
        .rev()
        .find(|q| q.host == ENDPOINT_HOST)
        .unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {ENDPOINT_TOKEN}").as_str())
    );
    // The gradio probe reads /config.
    let g = invoke(
        &rt,
        "theta.inference.ready",
        json!({"probe": "gradio", "timeout_seconds": 1}),
    )
    .await;
    assert_eq!(g.ok()["path"], "/config");
    assert_eq!(g.ok()["answer"]["version"], "3.41.2");
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_gives_up_after_its_window_with_what_it_saw() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![502; 1000]).await;
    let rt = runtime(config_all(&fake)).await;
    let r = invoke(
        &rt,
        "theta.inference.ready",
        json!({"timeout_seconds": 0.2, "interval_seconds": 0.05}),
    )
    .await;
    match r.err() {
        ThetaError::Timeout(m) => assert!(m.contains("502") && m.contains("/v1/models"), "{m}"),
        other => panic!("{}", theta_host::report::error_text(other)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn models_and_chat() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![]).await;
    let rt = runtime(config_all(&fake)).await;
    let m = invoke(&rt, "theta.inference.models", json!({})).await;
    assert_eq!(m.ok()[0]["id"], "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B");
    let c = invoke(
        &rt,
        "theta.inference.chat",
        json!({"messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}),
    )
    .await;
    assert_eq!(c.ok()["content"], "Dedicated answer to: ping", "{}", c.ok());
    assert_eq!(c.ok()["service"], "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B");
    let unknown = invoke(
        &rt,
        "theta.inference.chat",
        json!({"messages": [{"role": "user", "content": "x"}], "model": "nope"}),
    )
    .await;
    assert!(
        matches!(unknown.err(), ThetaError::Upstream(u) if u.status == 404),
        "{}",
        unknown.err_json()
    );
    // A wrong token: 401 naming the variables to check.
    fake.inject(Fault::once(
        RouteMatch::get("/v1/models"),
        FaultKind::error(401, "Unauthorized"),
    ));
    let e = invoke(&rt, "theta.inference.models", json!({})).await;
    assert!(
        matches!(e.err(), ThetaError::Upstream(u) if u.status == 401 && u.message.contains("THETA_INFERENCE_AUTH")),
        "{}",
        e.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_endpoint_comes_only_from_host_config() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![]).await;
    let rt = runtime(config_all(&fake)).await;
    for args in [
        json!({"endpoint": "https://evil.example"}),
        json!({"url": "https://other.tec-s1.onthetaedgecloud.com"}),
    ] {
        let c = invoke(&rt, "theta.inference.models", args).await;
        assert!(
            matches!(c.err(), ThetaError::InvalidArgument(a) if a.reason.contains("THETA_INFERENCE_ENDPOINT")),
            "{}",
            c.err_json()
        );
    }
    // Not configured: missing-credential naming THETA_INFERENCE_ENDPOINT.
    let rt = runtime(without(
        config_all(&fake),
        theta_host::credentials::Family::DedicatedInference,
        &["THETA_INFERENCE_ENDPOINT"],
    ))
    .await;
    let c = invoke(&rt, "theta.inference.ready", json!({})).await;
    assert!(
        matches!(c.err(), ThetaError::MissingCredential(m) if m.variable == "THETA_INFERENCE_ENDPOINT" && m.hint.contains("theta.auth.capabilities")),
        "{}",
        c.err_json()
    );
    assert!(!fake.requests().iter().any(|r| r.host.contains("evil")));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_and_dry_run() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![]).await;
    let mut cfg = config_all(&fake);
    cfg.policy.dry_run = true;
    let rt = runtime(cfg).await;
    for (name, args, field) in [
        ("theta.inference.ready", json!({"probe": "grpc"}), "probe"),
        (
            "theta.inference.ready",
            json!({"timeout_seconds": -1}),
            "timeout_seconds",
        ),
        ("theta.inference.chat", json!({"messages": []}), "messages"),
        (
            "theta.inference.chat",
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            "theta.inference.chat",
            json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "max_tokens",
        ),
    ] {
        assert_invalid_argument(&rt, name, args, field).await;
    }
    // Chat is paid: a preview, nothing sent. Reads still work.
    let c = invoke(
        &rt,
        "theta.inference.chat",
        json!({"messages": [{"role": "user", "content": "x"}], "model": "m"}),
    )
    .await;
    match c.err() {
        ThetaError::DryRun(p) => {
            assert_eq!(
                p.url,
                format!("https://{ENDPOINT_HOST}/v1/chat/completions")
            );
            assert!(!format!("{:?}", p.headers).contains(ENDPOINT_TOKEN));
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    assert!(
        invoke(&rt, "theta.inference.models", json!({}))
            .await
            .ok()
            .is_array()
    );
}

fn endpoint_requests(fake: &fake_edgecloud::FakeEdgeCloud) -> Vec<(String, String)> {
    seen_on(fake, ENDPOINT_HOST)
}

fn warming_events(c: &Called) -> usize {
    c.events
        .iter()
        .filter(|e| {
            matches!(e, theta_host::events::GuestEvent::Progress { message, .. }
                if message.contains("warming up"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn models_ride_out_503_404_502_within_the_window() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![503, 404, 502]).await;
    let rt = runtime(config_all(&fake)).await;
    let m = invoke(
        &rt,
        "theta.inference.models",
        json!({"ready_timeout_seconds": 5, "interval_seconds": 0.05}),
    )
    .await;
    assert_eq!(m.ok()[0]["id"], "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B");
    // Three warm-up answers, then the list: four requests, one progress event per wait.
    assert_eq!(endpoint_requests(&fake).len(), 4, "{:?}", seen(&fake));
    assert_eq!(warming_events(&m), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn models_give_up_after_the_window_with_the_last_status() {
    let fake = fake_all(|c| c.endpoint_warmup = vec![503; 1000]).await;
    let rt = runtime(config_all(&fake)).await;
    let m = invoke(
        &rt,
        "theta.inference.models",
        json!({"ready_timeout_seconds": 0.2, "interval_seconds": 0.05}),
    )
    .await;
    match m.err() {
        ThetaError::Upstream(u) => {
            assert_eq!(u.status, 503);
            assert!(u.message.contains("still warming up"), "{}", u.message);
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    // 0.2 s in pauses of 0.05 s: the first try and four more.
    assert_eq!(endpoint_requests(&fake).len(), 5, "{:?}", seen(&fake));
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_rides_out_warm_up_but_not_an_unknown_model() {
    // A given model: the POST itself meets the warm-up (503, then 404 while /v1/models is not up
    // either), and is sent again.
    let fake = fake_all(|c| c.endpoint_warmup = vec![503, 404, 502]).await;
    let rt = runtime(config_all(&fake)).await;
    let c = invoke(
        &rt,
        "theta.inference.chat",
        json!({"messages": [{"role": "user", "content": "warm"}],
               "model": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
               "ready_timeout_seconds": 5, "interval_seconds": 0.05}),
    )
    .await;
    assert_eq!(c.ok()["content"], "Dedicated answer to: warm", "{}", c.ok());
    // POST 503, POST 404 + GET /v1/models 502 (not serving: warm-up), POST 200.
    let on_endpoint = endpoint_requests(&fake);
    let posts = on_endpoint.iter().filter(|(m, _)| m == "POST").count();
    let gets = on_endpoint.iter().filter(|(m, _)| m == "GET").count();
    assert_eq!((posts, gets), (3, 1), "{on_endpoint:?}");
    assert_eq!(warming_events(&c), 2);
    // An endpoint that serves /v1/models answers 404 for an unknown model at once.
    fake.clear_requests();
    let unknown = invoke(
        &rt,
        "theta.inference.chat",
        json!({"messages": [{"role": "user", "content": "x"}], "model": "nope",
               "ready_timeout_seconds": 5, "interval_seconds": 0.05}),
    )
    .await;
    assert!(
        matches!(unknown.err(), ThetaError::Upstream(u) if u.status == 404),
        "{}",
        unknown.err_json()
    );
    let on_endpoint = endpoint_requests(&fake);
    assert_eq!(on_endpoint.len(), 2, "one POST, one GET: {on_endpoint:?}");
    // Without a model: /v1/models rides out the warm-up first, then one POST.
    let fake = fake_all(|c| c.endpoint_warmup = vec![502, 503]).await;
    let rt = runtime(config_all(&fake)).await;
    let c = invoke(
        &rt,
        "theta.inference.chat",
        json!({"messages": [{"role": "user", "content": "hi"}], "interval_seconds": 0.05}),
    )
    .await;
    assert_eq!(c.ok()["content"], "Dedicated answer to: hi");
    let on_endpoint = endpoint_requests(&fake);
    assert_eq!(
        on_endpoint
            .iter()
            .map(|(m, _)| m.as_str())
            .collect::<Vec<_>>(),
        vec!["GET", "GET", "GET", "POST"]
    );
}
