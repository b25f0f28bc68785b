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
        0.045,
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
