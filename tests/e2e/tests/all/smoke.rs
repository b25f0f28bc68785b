//! `theta-host smoke` against the fake: one cheap call per service, polled to the end, stopping before
//! the budget cap would be passed, with a table.

use crate::common::*;
use std::sync::Arc;
use std::time::Duration;
use theta_host::smoke::{SmokeOptions, run, table};
use theta_host::tenant::pricing::PriceTable;

#[tokio::test(flavor = "multi_thread")]
async fn one_cheap_call_per_service_within_the_budget() {
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    let mut opts = SmokeOptions::new(
        vec![
            "qwen3".into(),
            "flux".into(),
            "whisper".into(),
            "stable_diffusion_xl_turbo".into(),
        ],
        Some(0.045),
        |k| (k == "THETA_WAIT_SECONDS").then(|| "0".to_owned()),
    )
    .unwrap();
    opts.poll_interval = Duration::from_millis(20);
    let rows = run(&rt, &opts, &PriceTable::default(), Arc::new(|_| {}))
        .await
        .unwrap();
    let by = |s: &str| rows.iter().find(|r| r.service == s).unwrap().clone();
    // qwen3 (est. $0.03) and flux ($0.01) fit; whisper has no cheap input; sdxl would pass $0.045.
    assert_eq!(by("qwen3").outcome, "ok", "{rows:?}");
    assert_eq!(by("flux").outcome, "ok", "{rows:?}");
    assert_eq!(
        by("flux").state.as_deref(),
        Some("success"),
        "polled until done: {rows:?}"
    );
    assert_eq!(by("whisper").outcome, "skipped");
    let sdxl = by("stable_diffusion_xl_turbo");
    assert_eq!(sdxl.outcome, "skipped");
    assert!(sdxl.note.contains("budget"), "{}", sdxl.note);
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2, "nothing past the cap was sent");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.starts_with("/infer_request/infr_rqst_"))
    );
    let text = table(&rows, opts.max_budget_usd);
    assert!(
        text.contains("estimated total $0.0400") && text.contains("2 ok, 0 error, 2 skipped"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn file_input_services_upload_a_generated_file_first() {
    use theta_host::smoke_inputs::{tiny_png, tiny_wav};
    let fake = fake().await;
    let rt = runtime(config_for(&fake)).await;
    // As the skill runs it: SERVICES and the budget from the environment, no flags.
    let env = |k: &str| match k {
        "SERVICES" => Some("blip,grounding_dino,whisper".to_owned()),
        "THETA_MAX_BUDGET_USD" => Some("0.03".to_owned()),
        "THETA_WAIT_SECONDS" => Some("0".to_owned()),
        "THETA_POLL_INTERVAL_SECONDS" => Some("0.02".to_owned()),
        _ => None,
    };
    let opts = SmokeOptions::new(vec![], None, env).unwrap();
    let rows = run(&rt, &opts, &PriceTable::default(), Arc::new(|_| {}))
        .await
        .unwrap();
    for row in &rows {
        assert_eq!(row.outcome, "ok", "{rows:?}");
        assert_eq!(row.state.as_deref(), Some("success"), "{rows:?}");
    }
    assert_eq!(rows.len(), 3);
    let puts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.host == fake_edgecloud::STORAGE_HOST)
        .collect();
    assert_eq!(puts.len(), 3, "one upload per service");
    assert!(
        puts.iter()
            .all(|r| r.method == "PUT" && r.header("authorization").is_none())
    );
    assert_eq!(puts[0].body, tiny_png());
    assert_eq!(puts[1].body, tiny_png());
    assert_eq!(puts[2].body, tiny_wav());
    // Each infer names the file its upload stored.
    for (put, service, field) in [
        (&puts[0], "blip", "input_img"),
        (&puts[1], "grounding_dino", "input_img"),
        (&puts[2], "whisper", "audio_filename"),
    ] {
        let filename = put.path.rsplit('/').next().unwrap();
        let infer = fake
            .requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path == format!("/infer_request/{service}"))
            .unwrap_or_else(|| panic!("no infer for {service}"));
        let body: serde_json::Value = serde_json::from_slice(&infer.body).unwrap();
        assert_eq!(body["input"][field], filename, "{service}");
    }
}
