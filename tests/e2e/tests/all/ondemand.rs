//! Every on-demand command, end to end: the built plugin in the real host against the fake EdgeCloud,
//! success and failure paths, retries, timeouts, SSE across arbitrary chunk splits, dry-run.

use crate::common::*;
use fake_edgecloud::{FakeConfig, Fault, FaultKind, RouteMatch};
use serde_json::{Value, json};
use std::time::Duration;
use theta_host::bindings::ThetaError;

fn body_of(fake: &fake_edgecloud::FakeEdgeCloud, method: &str, path_prefix: &str) -> Value {
    let r = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == method && r.path.starts_with(path_prefix))
        .unwrap_or_else(|| panic!("no {method} {path_prefix} seen: {:?}", seen(fake)));
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn query_of(fake: &fake_edgecloud::FakeEdgeCloud, method: &str, path_prefix: &str) -> String {
    fake.requests()
        .into_iter()
        .rev()
        .find(|r| r.method == method && r.path.starts_with(path_prefix))
        .map(|r| r.query)
        .unwrap_or_default()
}

fn count(fake: &fake_edgecloud::FakeEdgeCloud, method: &str, path_prefix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(path_prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_lists_every_on_demand_command_with_schema_and_effect() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let commands = rt.describe().await.unwrap();
    let effect = |name: &str| {
        let c = commands
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let schema: Value = serde_json::from_str(&c.args_schema).expect("schema is JSON");
        assert_eq!(schema["type"], "object", "{name}: {schema}");
        theta_host::report::effect_label(c.effect)
    };
    assert_eq!(effect("list_services"), "read");
    assert_eq!(effect("get_request_status"), "read");
    assert_eq!(effect("infer"), "spend");
    assert_eq!(effect("get_upload_url"), "mutate");
    assert_eq!(effect("theta.ondemand.chat"), "spend");
    // An unknown command is refused by the host before the plugin runs: its route table has none.
    let called = invoke(&rt, "no.such.command", json!({})).await;
    assert!(
        matches!(called.err(), ThetaError::Denied(why) if why.contains("unknown command `no.such.command`")),
        "{}",
        called.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_services_filters_by_category_and_hides_internal_services() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let all = invoke(&rt, "list_services", json!({})).await;
    let all = all.ok().as_array().expect("a list").clone();
    let aliases: Vec<&str> = all.iter().map(|s| s["alias"].as_str().unwrap()).collect();
    for expected in ["qwen3", "gpt_oss_120b", "flux", "whisper", "llava"] {
        assert!(
            aliases.contains(&expected),
            "{expected} missing from {aliases:?}"
        );
    }
    let images = invoke(&rt, "list_services", json!({"category": "image"})).await;
    let images = images.ok().as_array().unwrap().clone();
    assert!(!images.is_empty());
    assert!(
        images.iter().all(|s| s["category"] == "image"),
        "{images:?}"
    );
    assert!(images.iter().any(|s| s["alias"] == "flux"));
    assert!(images.len() < all.len());
    let bad = invoke(&rt, "list_services", json!({"category": "music"})).await;
    assert!(
        matches!(bad.err(), ThetaError::InvalidArgument(a) if a.field == "category"),
        "{}",
        bad.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_are_retried_on_5xx_and_bad_json_is_a_clear_error() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    fake.inject(Fault {
        matcher: RouteMatch::get("/service/list"),
        kind: FaultKind::server_error(503),
        times: 2,
    });
    let ok = invoke(&rt, "list_services", json!({})).await;
    assert!(ok.ok().as_array().is_some());
    assert_eq!(
        count(&fake, "GET", "/service/list"),
        3,
        "two 503s then success"
    );
    assert!(
        ok.events
            .iter()
            .any(|e| matches!(e, theta_host::events::GuestEvent::Progress { .. })),
        "retries are reported as progress"
    );

    fake.inject(Fault {
        matcher: RouteMatch::get("/service/list"),
        kind: FaultKind::BadJson,
        times: 1,
    });
    let bad = invoke(&rt, "list_services", json!({})).await;
    assert!(
        matches!(bad.err(), ThetaError::Transport(t) if t.contains("JSON")),
        "{}",
        bad.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn infer_waits_for_the_result_and_promotes_variant_and_webhook() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let called = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "a blue cloud"}, "wait": 10, "variant": "quantized", "webhook": "https://example.com/hook"}),
    )
    .await;
    let r = called.ok();
    assert_eq!(r["state"], "success", "{r}");
    assert!(r["id"].as_str().unwrap().starts_with("infr_rqst_"), "{r}");
    assert!(r["output"].to_string().contains("image_url"), "{r}");
    let body = body_of(&fake, "POST", "/infer_request/flux");
    assert_eq!(body["input"]["prompt"], "a blue cloud");
    assert_eq!(body["variant"], "quantized");
    assert_eq!(body["webhook"], "https://example.com/hook");
    assert!(query_of(&fake, "POST", "/infer_request/flux").contains("wait=10"));
    // The host injected the token; the audit trail shows the request but never the token.
    let req = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(
        req.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {TOKEN}"))
    );
    assert!(!audit_text(&rt).contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn async_inference_is_polled_to_completion() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let created = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}, "wait": 0}),
    )
    .await;
    let created = created.ok();
    assert_eq!(created["state"], "pending", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let mut states = Vec::new();
    for _ in 0..6 {
        let s = invoke(&rt, "get_request_status", json!({"request_id": id})).await;
        let state = s.ok()["state"].as_str().unwrap().to_owned();
        states.push(state.clone());
        if state == "success" {
            assert!(s.ok()["output"].to_string().contains("image_url"));
            break;
        }
    }
    assert_eq!(
        states.last().map(String::as_str),
        Some("success"),
        "{states:?}"
    );
    assert!(states.iter().any(|s| s == "processing"), "{states:?}");
    // camelCase alias of the argument works too.
    let again = invoke(&rt, "get_request_status", json!({"requestId": id})).await;
    assert_eq!(again.ok()["state"], "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_inference_reports_its_error_message() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let r = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "FAIL please"}, "wait": 10}),
    )
    .await;
    let r = r.ok();
    assert_eq!(r["state"], "error", "{r}");
    assert!(
        r["error_message"].as_str().is_some_and(|m| !m.is_empty()),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn infer_argument_errors_name_the_field() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let cases = [
        (json!({"input": {}}), "service"),
        (json!({"service": "flux"}), "input"),
        (json!({"service": "flux", "input": "text"}), "input"),
        (json!({"service": "flux", "input": {}, "wait": 99}), "wait"),
        (
            json!({"service": "flux", "input": {}, "webhook": "http://example.com"}),
            "webhook",
        ),
        (json!({"service": "../admin", "input": {}}), "service"),
    ];
    for (args, field) in cases {
        let c = invoke(&rt, "infer", args.clone()).await;
        match c.err() {
            ThetaError::InvalidArgument(a) => assert_eq!(a.field, field, "{args}: {}", a.reason),
            other => panic!("{args}: {}", theta_host::report::error_text(other)),
        }
    }
    let bad_json = rt
        .invoke("infer", "{not json", std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    assert!(matches!(bad_json, Err(ThetaError::InvalidArgument(_))));
    assert_eq!(
        count(&fake, "POST", "/infer_request"),
        0,
        "nothing was sent for bad arguments"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_service_is_a_clear_404() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let c = invoke(
        &rt,
        "infer",
        json!({"service": "no_such_model", "input": {"prompt": "x"}}),
    )
    .await;
    match c.err() {
        ThetaError::Upstream(u) => {
            assert_eq!(u.status, 404);
            assert!(u.message.contains("no_such_model"), "{}", u.message);
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    let s = invoke(
        &rt,
        "get_request_status",
        json!({"request_id": "infr_rqst_nope"}),
    )
    .await;
    assert!(
        matches!(s.err(), ThetaError::Upstream(u) if u.status == 404),
        "{}",
        s.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_instances_is_retried_then_reported_as_capacity_exhausted() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    fake.inject(Fault {
        matcher: RouteMatch::post("/infer_request/flux"),
        kind: FaultKind::no_instances(),
        times: 2,
    });
    let ok = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}, "wait": 5}),
    )
    .await;
    assert_eq!(ok.ok()["state"], "success");
    assert_eq!(
        count(&fake, "POST", "/infer_request/flux"),
        3,
        "409, 409, then accepted"
    );

    fake.clear_requests();
    fake.inject(Fault {
        matcher: RouteMatch::post("/infer_request/flux"),
        kind: FaultKind::no_instances(),
        times: 10,
    });
    let exhausted = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    )
    .await;
    match exhausted.err() {
        ThetaError::CapacityExhausted(c) => {
            assert_eq!(c.service, "flux");
            assert_eq!(
                c.attempts, 3,
                "default THETA_HTTP_MAX_RETRIES=2 → 3 attempts"
            );
            assert!(c.message.contains("No instances"), "{}", c.message);
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
    fake.clear_faults();
}

#[tokio::test(flavor = "multi_thread")]
async fn paid_posts_are_not_retried_on_5xx() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    fake.inject(Fault {
        matcher: RouteMatch::post("/infer_request/flux"),
        kind: FaultKind::server_error(502),
        times: 5,
    });
    let c = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::Upstream(u) if u.status == 502),
        "{}",
        c.err_json()
    );
    assert_eq!(
        count(&fake, "POST", "/infer_request/flux"),
        1,
        "a paid POST that may have run is never retried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_urls_accept_every_argument_spelling() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    for args in [
        json!({"service": "whisper", "input_field": "audio_filename"}),
        json!({"service": "whisper", "input_fields": ["audio_filename"]}),
        json!({"service": "whisper", "inputFields": ["audio_filename"]}),
    ] {
        let c = invoke(&rt, "get_upload_url", args.clone()).await;
        let urls = c
            .ok()
            .as_array()
            .unwrap_or_else(|| panic!("{args}: {}", c.ok()))
            .clone();
        assert_eq!(urls.len(), 1, "{args}");
        assert_eq!(urls[0]["field"], "audio_filename");
        assert!(
            urls[0]["upload_url"]
                .as_str()
                .unwrap()
                .starts_with("https://"),
            "{urls:?}"
        );
        assert!(!urls[0]["filename"].as_str().unwrap().is_empty());
    }
    let body = body_of(&fake, "POST", "/infer_request/whisper/input_presigned_urls");
    assert_eq!(body["input_fields"], json!(["audio_filename"]));
    let bad = invoke(&rt, "get_upload_url", json!({"service": "whisper"})).await;
    assert!(
        matches!(bad.err(), ThetaError::InvalidArgument(_)),
        "{}",
        bad.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn qwen3_chat_streams_tokens_as_they_arrive() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let c = invoke(
        &rt,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hello there"}]}),
    )
    .await;
    let reply = c.ok();
    assert_eq!(reply["service"], "qwen3");
    assert_eq!(reply["streamed"], true);
    let content = reply["content"].as_str().unwrap();
    assert!(!content.is_empty());
    assert_eq!(
        c.tokens(),
        content,
        "every token was emitted as an event, in order"
    );
    assert!(
        c.events.len() > 2,
        "tokens arrived one by one: {:?}",
        c.events
    );
    let body = body_of(&fake, "POST", "/infer_request/qwen3");
    assert_eq!(body["input"]["stream"], true);
    assert_eq!(body["input"]["messages"][0]["content"], "hello there");
    assert!(query_of(&fake, "POST", "/infer_request/qwen3").contains("wait=60"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_parsing_survives_every_chunk_split() {
    for split in [1, 2, 3, 7, 13] {
        let fake = fake_with(FakeConfig {
            ondemand_token: TOKEN.into(),
            sse_split: Some(split),
            ..FakeConfig::default()
        })
        .await;
        let rt = runtime(config_for(&fake)).await;
        let c = invoke(
            &rt,
            "theta.ondemand.chat",
            json!({"messages": [{"role": "user", "content": "split me into pieces"}]}),
        )
        .await;
        let content = c.ok()["content"].as_str().unwrap().to_owned();
        assert!(
            content.contains("split me into pieces"),
            "split {split}: {content}"
        );
        assert_eq!(c.tokens(), content, "split {split}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn qwen3_parallax_variant_uses_the_prediction_route() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let c = invoke(
        &rt,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hi"}], "variant": "parallax_32b_fp8"}),
    )
    .await;
    assert!(!c.ok()["content"].as_str().unwrap().is_empty());
    let q = query_of(&fake, "POST", "/infer_request/qwen3");
    assert!(q.contains("prediction=completions"), "{q}");
    assert_eq!(
        body_of(&fake, "POST", "/infer_request/qwen3")["variant"],
        "parallax_32b_fp8"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gpt_oss_returns_content_and_reasoning_apart() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let c = invoke(&rt, "theta.ondemand.chat", json!({"service": "gpt_oss_120b", "messages": [{"role": "user", "content": "why is the sky blue"}]})).await;
    let r = c.ok();
    assert!(!r["content"].as_str().unwrap().is_empty(), "{r}");
    assert!(
        !r["reasoning"].as_str().unwrap_or_default().is_empty(),
        "{r}"
    );
    let body = body_of(&fake, "POST", "/infer_request/chat/completions");
    assert_eq!(body["model"], "gpt_oss_120b");
    assert_eq!(body["max_tokens"], 1800);
    assert_eq!(body["reasoning_effort"], "low");

    let low = invoke(&rt, "theta.ondemand.chat", json!({"service": "gpt_oss_120b", "max_tokens": 48, "messages": [{"role": "user", "content": "hi"}]})).await;
    let low = low.ok();
    assert_eq!(low["content"], "", "{low}");
    assert!(
        low["note"]
            .as_str()
            .is_some_and(|n| n.contains("max_tokens")),
        "the empty answer is explained: {low}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_stream_is_an_error_not_a_short_answer() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    fake.inject(Fault {
        matcher: RouteMatch::post("/infer_request/qwen3"),
        kind: FaultKind::CutStream { after_events: 2 },
        times: 1,
    });
    let c = invoke(
        &rt,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "a long answer please"}]}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::Transport(_)),
        "{}",
        c.err_json()
    );
}

/// Each framing the fake can serve, through the real component and host: the same answer, an error
/// with the server's message, or a complete answer with a note; never a short answer as if whole.
#[tokio::test(flavor = "multi_thread")]
async fn chat_streams_survive_framing_differences() {
    use fake_edgecloud::SseFraming;
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let chat = |framing: SseFraming| {
        fake.inject(Fault::once(
            RouteMatch::post("/infer_request/qwen3"),
            FaultKind::SseFraming(framing),
        ));
        invoke(
            &rt,
            "theta.ondemand.chat",
            json!({"messages": [{"role": "user", "content": "hello there"}]}),
        )
    };
    let plain = invoke(
        &rt,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hello there"}]}),
    )
    .await;
    let plain = plain.ok();
    assert!(!plain["content"].as_str().unwrap_or_default().is_empty());
    for framing in [
        SseFraming::ContentType(Some("application/json".into())),
        SseFraming::ContentType(None),
        SseFraming::Crlf,
        SseFraming::Comments,
        SseFraming::MultiLineData,
    ] {
        let label = format!("{framing:?}");
        let out = chat(framing).await;
        let out = out.ok();
        assert_eq!(out["content"], plain["content"], "{label}: {out}");
        assert_eq!(out["streamed"], true, "{label}");
        assert!(out["note"].is_null(), "{label}: {out}");
    }
    let out = chat(SseFraming::NoDoneNoFinish).await;
    let out = out.ok();
    assert_eq!(out["content"], plain["content"], "{out}");
    assert!(
        out["note"]
            .as_str()
            .unwrap_or_default()
            .contains("without [DONE]"),
        "a clean end without [DONE] is complete with a note: {out}"
    );
    for (framing, message) in [
        (
            SseFraming::ErrorEvent { after_events: 2 },
            "model worker crashed",
        ),
        (
            SseFraming::JsonErrorInsteadOfStream,
            "No instances available",
        ),
    ] {
        let label = format!("{framing:?}");
        let err = chat(framing).await.err_json();
        assert_eq!(err["kind"], "upstream", "{label}: {err}");
        assert!(
            err["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message),
            "{label}: {err}"
        );
    }
    // Every one of them reached the fake: eight framed calls and the plain one.
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/infer_request/qwen3")
        .count();
    assert_eq!(posts, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_upstream_times_out_with_the_limit_named() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.limits.max_request_time = Duration::from_millis(500);
    let rt = runtime(cfg).await;
    fake.inject(Fault {
        matcher: RouteMatch::get("/service/list"),
        kind: FaultKind::SlowFirstByte(Duration::from_secs(3)),
        times: 10,
    });
    let c = invoke(&rt, "list_services", json!({})).await;
    assert!(
        matches!(c.err(), ThetaError::Timeout(_)),
        "{}",
        c.err_json()
    );
    fake.clear_faults();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_reported_by_variable_name() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.credentials = {
        use theta_host::credentials::*;
        let mut c = Credentials::default();
        c.insert(
            Family::OnDemand,
            Credential {
                variable: "THETA_ONDEMAND_API_TOKEN",
                injection: Injection::Bearer(Secret::new("wrong-token-value")),
            },
        );
        c
    };
    let rt = runtime(cfg).await;
    let c = invoke(
        &rt,
        "get_request_status",
        json!({"request_id": "infr_rqst_1"}),
    )
    .await;
    match c.err() {
        ThetaError::Upstream(u) => {
            assert_eq!(u.status, 401);
            assert!(
                u.message.contains("THETA_ONDEMAND_API_TOKEN"),
                "{}",
                u.message
            );
            assert!(!u.message.contains("wrong-token-value"));
        }
        other => panic!("{}", theta_host::report::error_text(other)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_paid_commands_name_the_missing_variable() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.credentials = Default::default();
    let rt = runtime(cfg).await;
    let c = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::MissingCredential(m) if m.variable == "THETA_ONDEMAND_API_TOKEN"),
        "{}",
        c.err_json()
    );
    // The public catalogue still works.
    assert!(
        invoke(&rt, "list_services", json!({}))
            .await
            .ok()
            .is_array()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_previews_paid_calls_and_sends_nothing() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.policy.dry_run = true;
    let rt = runtime(cfg).await;
    for (name, args, path) in [
        (
            "infer",
            json!({"service": "flux", "input": {"prompt": "x"}}),
            "/infer_request/flux",
        ),
        (
            "theta.ondemand.chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            "/infer_request/qwen3",
        ),
        (
            "get_upload_url",
            json!({"service": "whisper", "input_field": "audio_filename"}),
            "/input_presigned_urls",
        ),
    ] {
        let c = invoke(&rt, name, args).await;
        match c.err() {
            ThetaError::DryRun(p) => {
                assert_eq!(p.method, "POST");
                assert!(
                    p.url.starts_with("https://ondemand.thetaedgecloud.com")
                        && p.url.contains(path),
                    "{}",
                    p.url
                );
                let shown = format!("{:?}", p.headers);
                assert!(!shown.contains(TOKEN), "{shown}");
            }
            other => panic!("{name}: {}", theta_host::report::error_text(other)),
        }
    }
    assert_eq!(
        count(&fake, "POST", "/"),
        0,
        "nothing mutating reached the fake"
    );
    assert!(
        invoke(&rt, "list_services", json!({}))
            .await
            .ok()
            .is_array(),
        "reads work under dry-run"
    );
}

/// `theta.route`: the command and services for a kind of work, their live catalogue entries (one
/// public catalogue read), and what the host reserves per call from its own price
/// table, which a tenant's `[pricing]` changes and the guest cannot state.
#[tokio::test(flavor = "multi_thread")]
async fn route_names_command_services_catalogue_and_the_hosts_reservation() {
    let fake = fake().await;
    let policy = format!(
        "store = {:?}\n[pricing.services]\nblip = 0.07\n[tenants.router]\ncommands = [\"theta.route\"]\neffects = [\"read\"]\n",
        temp_store()
    );
    let file = theta_host::tenant::file::parse(&policy, "route.toml").unwrap();
    let rt = theta_host::runtime::Runtime::with_tenants(config_for(&fake), &plugin_wasm(), file)
        .await
        .unwrap();
    let vision = rt
        .invoke_as(
            "router",
            "theta.route",
            r#"{"workload":"vision"}"#,
            std::sync::Arc::new(|_| {}),
        )
        .await
        .unwrap()
        .expect("route");
    let vision: Value = serde_json::from_str(&vision).unwrap();
    assert_eq!(vision["command"], "infer", "{vision}");
    assert_eq!(
        vision["services"],
        json!(["blip", "llava", "grounding_dino"])
    );
    let catalogue = vision["catalogue"].as_array().expect("catalogue read");
    assert!(
        catalogue
            .iter()
            .all(|c| c["available"] == true && c["entry"]["alias"] == c["alias"]),
        "{vision}"
    );
    assert_eq!(
        vision["host_reserves"]["per_call_usd"]["blip"], 0.07,
        "the tenant's price"
    );
    assert_eq!(
        vision["host_reserves"]["per_call_usd"]["llava"], 0.01,
        "the default table"
    );
    assert!(
        vision["rule"]
            .as_str()
            .unwrap()
            .contains("readiness retries")
    );
    let lists: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/service/list")
        .collect();
    assert_eq!(lists.len(), 1, "one catalogue read");
    assert_eq!(
        (lists[0].method.as_str(), lists[0].host.as_str()),
        ("GET", "ondemand.thetaedgecloud.com")
    );
    // A GPU job routes to a deployment (priced per hour), offline.
    let gpu = rt
        .invoke_as(
            "router",
            "theta.route",
            r#"{"workload":"gpu_job"}"#,
            std::sync::Arc::new(|_| {}),
        )
        .await
        .unwrap()
        .expect("route");
    let gpu: Value = serde_json::from_str(&gpu).unwrap();
    assert_eq!(gpu["command"], "theta.deployments.create");
    assert_eq!(gpu["host_reserves"]["per_hour_usd"], 2.0, "{gpu}");
    assert!(gpu["catalogue"].is_null());
    assert_eq!(fake.requests().len(), 1, "nothing more was sent");
    // An unknown kind names the known ones.
    let bad = rt
        .invoke_as(
            "router",
            "theta.route",
            r#"{"workload":"mining"}"#,
            std::sync::Arc::new(|_| {}),
        )
        .await
        .unwrap()
        .expect_err("unknown workload");
    let bad = theta_host::report::error_json(&bad);
    assert_eq!(bad["kind"], "invalid-argument");
    assert!(
        bad["reason"].as_str().unwrap().contains("transcription"),
        "{bad}"
    );
}

/// `infer` with `poll_until_done`: a `wait 0` request is polled to its end inside the call, one
/// progress event per poll (counted at the fake); a window that cannot fit in the host's per-call
/// wall clock is refused before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn infer_polls_until_done_with_progress_inside_the_call_limits() {
    let fake = fake_with(FakeConfig {
        ondemand_token: TOKEN.into(),
        polls_until_done: 3,
        ..FakeConfig::default()
    })
    .await;
    let mut cfg = config_for(&fake);
    cfg.passthrough
        .push(("THETA_POLL_INTERVAL_SECONDS".into(), "0.05".into()));
    cfg.limits.wall_clock = Duration::from_secs(60);
    let rt = runtime(cfg).await;
    let c = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}, "wait": 0, "poll_until_done": true, "poll_timeout_seconds": 20}),
    )
    .await;
    assert_eq!(c.ok()["state"], "success", "{}", c.ok());
    let polls = count(&fake, "GET", "/infer_request/");
    assert_eq!(polls, 3, "{:?}", seen(&fake));
    let progress = c
        .events
        .iter()
        .filter(|e| matches!(e, theta_host::events::GuestEvent::Progress { message, .. } if message.contains("poll")))
        .count();
    assert_eq!(progress, polls, "one progress event per poll");
    // Without poll_until_done the request comes back pending, as the official server answers.
    let pending = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}, "wait": 0}),
    )
    .await;
    assert_eq!(pending.ok()["state"], "pending");
    // 30 s of waiting plus 40 s of polling cannot fit in a 60 s call (less its reserve): refused, nothing sent.
    fake.clear_requests();
    let refused = invoke(
        &rt,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}, "wait": 30, "poll_until_done": true, "poll_timeout_seconds": 40}),
    )
    .await;
    let err = refused.err_json();
    assert_eq!(err["kind"], "invalid-argument", "{err}");
    assert!(
        err["reason"]
            .as_str()
            .unwrap()
            .contains("does not fit in this call"),
        "{err}"
    );
    assert!(fake.requests().is_empty());
}
