//! The typed WIT exports of the full `plugin` world (not just `commands.invoke`): bound with the host's
//! own wasmtime via bindgen, instantiated by the host (so the same policy hook applies), and called
//! against the fake EdgeCloud.

use crate::common::*;
use serde_json::Value;
use std::sync::Arc;
use theta_host::wasmtime;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "theta:edgecloud/plugin",
    exports: { default: async },
    require_store_data_send: true,
    wasmtime_crate: theta_host::wasmtime,
    with: {
        "wasi:io": theta_host::wasmtime_wasi::p2::bindings::io,
        "wasi:cli": theta_host::wasmtime_wasi::p2::bindings::cli,
        "wasi:clocks": theta_host::wasmtime_wasi::p2::bindings::clocks,
        "wasi:http": theta_host::wasmtime_wasi_http::p2::bindings::http,
    },
});

use exports::theta::edgecloud::ondemand::{ChatArgs, ChatMessage, InferArgs, ServiceCategory};
use exports::theta::edgecloud::types::ThetaError;

/// A fresh instance for one typed call of `command`: the host lets it make that command's requests.
async fn plugin(
    rt: &theta_host::Runtime,
    command: &str,
) -> (wasmtime::Store<theta_host::state::CallState>, Plugin) {
    let (mut store, instance) = rt
        .instantiate_raw_as("default", command, Arc::new(|_| {}))
        .await
        .expect("instantiates");
    let plugin = Plugin::new(&mut store, &instance).expect("exports the full plugin world");
    (store, plugin)
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_on_demand_functions_match_invoke() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;

    let (mut store, p) = plugin(&rt, "list_services").await;
    let images = p
        .theta_edgecloud_ondemand()
        .call_list_services(&mut store, Some(ServiceCategory::Image))
        .await
        .unwrap()
        .expect("list-services");
    assert!(images.iter().any(|s| s.alias == "flux"), "{images:?}");
    assert!(
        images.iter().all(|s| s.category == ServiceCategory::Image),
        "{images:?}"
    );
    // The same catalogue as the by-name command.
    let by_name = invoke(
        &rt,
        "list_services",
        serde_json::json!({"category": "image"}),
    )
    .await;
    let aliases: Vec<&str> = by_name
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["alias"].as_str().unwrap())
        .collect();
    let typed: Vec<&str> = images.iter().map(|s| s.alias.as_str()).collect();
    assert_eq!(typed, aliases);

    // A fresh instance per call, as the host does.
    let (mut store, p) = plugin(&rt, "infer").await;
    let done = p
        .theta_edgecloud_ondemand()
        .call_infer(
            &mut store,
            &InferArgs {
                service: "flux".into(),
                input: r#"{"prompt":"a typed kite"}"#.into(),
                wait: Some(5),
                prediction: None,
                variant: None,
                webhook: None,
                poll_until_done: None,
                poll_timeout_seconds: None,
            },
        )
        .await
        .unwrap()
        .expect("infer");
    assert_eq!(done.state, "success", "{done:?}");
    // wait 0 answers pending; poll-until-done polls it to the end inside the same typed call.
    let (mut store, p) = plugin(&rt, "infer").await;
    let polled = p
        .theta_edgecloud_ondemand()
        .call_infer(
            &mut store,
            &InferArgs {
                service: "flux".into(),
                input: r#"{"prompt":"a polled kite"}"#.into(),
                wait: Some(0),
                prediction: None,
                variant: None,
                webhook: None,
                poll_until_done: Some(true),
                poll_timeout_seconds: Some(30),
            },
        )
        .await
        .unwrap()
        .expect("infer");
    assert_eq!(polled.state, "success", "{polled:?}");
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert!(output.is_object(), "{output}");

    let (mut store, p) = plugin(&rt, "theta.ondemand.chat").await;
    let reply = p
        .theta_edgecloud_ondemand()
        .call_chat(
            &mut store,
            &ChatArgs {
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: "typed hello".into(),
                }],
                service: None,
                variant: None,
                max_tokens: None,
                temperature: None,
                top_p: None,
                reasoning_effort: None,
                stream: None,
                wait: None,
            },
        )
        .await
        .unwrap()
        .expect("chat");
    assert_eq!(reply.service, "qwen3");
    assert!(reply.streamed);
    assert!(reply.content.contains("typed hello"), "{reply:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_errors_are_the_same_variant() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let (mut store, p) = plugin(&rt, "get_request_status").await;
    let err = p
        .theta_edgecloud_ondemand()
        .call_get_request_status(&mut store, "")
        .await
        .unwrap()
        .expect_err("an empty id is refused");
    match err {
        ThetaError::InvalidArgument(a) => assert_eq!(a.field, "request_id", "{a:?}"),
        other => panic!("expected invalid-argument, got {other:?}"),
    }

    // Another family without its credential: missing-credential naming the variable.
    let (mut store, p) = plugin(&rt, "theta.deployments.list").await;
    let err = p
        .theta_edgecloud_deployments()
        .call_list_deployments(&mut store, None)
        .await
        .unwrap()
        .expect_err("no controller key or project");
    match err {
        ThetaError::MissingCredential(m) => {
            assert!(m.variable.starts_with("THETA_EC_"), "{m:?}");
            assert!(m.hint.contains("theta.auth.capabilities"), "{m:?}");
        }
        other => panic!("expected missing-credential, got {other:?}"),
    }

    // The capabilities report, typed: on-demand configured, controller not, no values anywhere.
    let (mut store, p) = plugin(&rt, "theta.auth.capabilities").await;
    let caps = p
        .theta_edgecloud_account()
        .call_capabilities(&mut store)
        .await
        .unwrap();
    let text = format!("{caps:?}");
    assert!(!text.contains(TOKEN), "capabilities show a secret");
    let ondemand = caps
        .iter()
        .find(|c| c.family.contains("ondemand") || c.family.contains("on-demand"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(ondemand.configured, "{text}");
    assert!(caps.iter().any(|c| !c.configured), "{text}");
}

mod deployments_typed {
    use super::*;
    use crate::families::*;
    use exports::theta::edgecloud::account::BalanceReading;
    use exports::theta::edgecloud::deployments::{CreateArgs, ValidateArgs};

    const TEMPLATE: &str = "img_gf070dbq0kttgz1atmiatyunhdxm";
    /// base64("typed-user:typed-pass-0123456789")
    const TYPED_BASIC: &str = "Basic dHlwZWQtdXNlcjp0eXBlZC1wYXNzLTAxMjM0NTY3ODk=";

    fn create_args(auth: bool) -> CreateArgs {
        CreateArgs {
            template_id: TEMPLATE.into(),
            container_image: None,
            vm_id: None,
            min_replicas: None,
            max_replicas: None,
            env_vars: None,
            annotations: None,
            auth_username: auth.then(|| "typed-user".into()),
            auth_password: auth.then(|| "typed-pass-0123456789".into()),
            route: None,
            pending_timeout_seconds: None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn typed_validate_disposable_probes_and_chats_with_the_auth_it_is_given() {
        let fake = fake_all(|_| {}).await;
        let rt = runtime(config_all(&fake)).await;
        let (mut store, p) = plugin(&rt, "theta.deployments.validateDisposable").await;
        let report = p
            .theta_edgecloud_deployments()
            .call_validate_disposable(
                &mut store,
                &ValidateArgs {
                    create: create_args(true),
                    probe: None,
                    ready_timeout_seconds: Some(10.0),
                    interval_seconds: Some(0.05),
                },
            )
            .await
            .unwrap()
            .expect("validation passes");
        assert!(report.readiness.ready, "{report:?}");
        assert_eq!(report.readiness.statuses, vec![404, 502, 200]);
        assert!(report.deleted);
        assert_eq!(report.auth_username, "typed-user");
        assert!(!report.auth_generated);
        assert!(
            report
                .chat_reply
                .as_deref()
                .is_some_and(|c| c.contains("OK")),
            "{report:?}"
        );
        assert_eq!(report.balance_before, Some(3421.300894));
        assert_eq!(report.balance_after, Some(3421.300894));
        assert!(!format!("{report:?}").contains("typed-pass-0123456789"));
        // Every request to the endpoint carried exactly the given credentials.
        let host = report
            .deployment
            .endpoint
            .as_deref()
            .unwrap()
            .trim_start_matches("https://")
            .to_owned();
        let on_endpoint: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|q| q.host == host)
            .collect();
        assert_eq!(on_endpoint.len(), 4, "three polls and one chat");
        assert!(
            on_endpoint
                .iter()
                .all(|q| q.header("authorization") == Some(TYPED_BASIC)),
            "{:?}",
            on_endpoint
                .iter()
                .map(|q| q.header("authorization"))
                .collect::<Vec<_>>()
        );
        assert!(fake.deployments().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn typed_start_stop_and_a_skipped_snapshot() {
        let fake = fake_all(|c| c.balance = None).await;
        let rt = runtime(config_all(&fake)).await;
        let (mut store, p) = plugin(&rt, "theta.deployments.create").await;
        let created = p
            .theta_edgecloud_deployments()
            .call_create_deployment(&mut store, &create_args(false))
            .await
            .unwrap()
            .expect("create");
        let d = created.deployment;
        let (mut store, p) = plugin(&rt, "theta.deployments.stop").await;
        let stopped = p
            .theta_edgecloud_deployments()
            .call_stop_deployment(&mut store, &d.shard, &d.suffix)
            .await
            .unwrap()
            .expect("stop");
        assert_eq!(
            (stopped.action.as_str(), stopped.route.as_str()),
            ("stopped", "deployments")
        );
        assert!(fake.billing_deployments().is_empty());
        let (mut store, p) = plugin(&rt, "theta.deployments.start").await;
        let started = p
            .theta_edgecloud_deployments()
            .call_start_deployment(&mut store, &d.shard, &d.suffix)
            .await
            .unwrap()
            .expect("start");
        assert_eq!(started.action, "started");
        assert_eq!(fake.billing_deployments().len(), 1);

        let (mut store, p) = plugin(&rt, "theta.billing.balanceSnapshot").await;
        let reading = p
            .theta_edgecloud_account()
            .call_balance_snapshot(&mut store, None)
            .await
            .unwrap()
            .expect("a skipped snapshot is not an error");
        match reading {
            BalanceReading::Skipped(why) => assert!(why.contains("no numeric balance"), "{why}"),
            other => panic!("expected skipped, got {other:?}"),
        }
    }
}
