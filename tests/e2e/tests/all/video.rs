//! The Theta Video API, end to end: upload slot → transcode → poll through created/processing/success,
//! list, streams and ingestors, bad arguments, upstream errors, missing credentials, dry-run.

use crate::common::*;
use crate::families::*;
use fake_edgecloud::{Fault, FaultKind, RouteMatch};
use serde_json::json;
use theta_host::bindings::ThetaError;
use theta_host::credentials::Family;

const VIDEO_HOST: &str = "api.thetavideoapi.com";

#[tokio::test(flavor = "multi_thread")]
async fn upload_transcode_and_poll_to_success() {
    let fake = fake_all(|c| c.video_polls_until_done = 2).await;
    let rt = runtime(config_all(&fake)).await;
    let up = invoke(&rt, "theta.video.uploadCreate", json!({})).await;
    let upload = up.ok()["id"].as_str().unwrap().to_owned();
    assert!(
        up.ok()["presigned_url"]
            .as_str()
            .unwrap()
            .starts_with("https://storage.googleapis.com/")
    );
    // The host injected the service-account headers; the plugin never had the secret.
    let r = fake.requests().into_iter().last().unwrap();
    assert_eq!(r.header("x-tva-sa-id"), Some(VIDEO_ID));
    assert_eq!(r.header("x-tva-sa-secret"), Some(VIDEO_SECRET));

    let v = invoke(
        &rt,
        "theta.video.videoCreate",
        json!({"source_upload_id": upload, "file_name": "clip.mp4"}),
    )
    .await;
    let video = v.ok()["id"].as_str().unwrap().to_owned();
    assert_eq!(v.ok()["state"], "created");
    assert_eq!(v.ok()["done"], false);
    let p = invoke(&rt, "theta.video.videoGet", json!({"video_id": video})).await;
    assert_eq!(p.ok()["state"], "processing");
    let p = invoke(&rt, "theta.video.videoGet", json!({"videoId": video})).await;
    assert_eq!(p.ok()["state"], "success");
    assert_eq!(p.ok()["done"], true);
    assert!(
        p.ok()["playback_uri"]
            .as_str()
            .unwrap()
            .ends_with("master.m3u8")
    );
    let l = invoke(&rt, "theta.video.list", json!({"page": 1, "number": 5})).await;
    assert_eq!(l.ok()[0]["id"], video);
    let listed = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/list"))
        .unwrap();
    assert_eq!(listed.path, format!("/video/{VIDEO_ID}/list"));
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_and_ingestors() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    let s = invoke(
        &rt,
        "theta.video.streamCreate",
        json!({"name": "launch", "resolutions": ["360p", "720p"], "fps": 30}),
    )
    .await;
    let stream = s.ok()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.ok()["status"], "off");
    let ing = invoke(&rt, "theta.video.ingestor.list", json!({})).await;
    let ingestor = ing.ok()[0]["id"].as_str().unwrap().to_owned();
    let sel = invoke(
        &rt,
        "theta.video.ingestor.select",
        json!({"ingestor_id": ingestor, "stream_id": stream}),
    )
    .await;
    assert_eq!(
        sel.ok()["stream"]["stream_server"],
        "rtmp://live5in.thetavideoapi.com/live"
    );
    assert!(sel.ok()["stream"]["stream_key"].is_string());
    let sent = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap()["tva_stream"],
        stream.as_str()
    );
    let got = invoke(&rt, "theta.video.streamGet", json!({"stream_id": stream})).await;
    assert_eq!(got.ok()["name"], "launch");
    let list = invoke(&rt, "theta.video.streamList", json!({"status": "off"})).await;
    assert_eq!(list.ok().as_array().unwrap().len(), 1);
    let un = invoke(
        &rt,
        "theta.video.ingestor.unselect",
        json!({"ingestor_id": ingestor}),
    )
    .await;
    assert_eq!(un.ok()["selected"], false);
    // The fourth stream is refused by the API (3 per service account).
    for n in 0..2 {
        invoke(
            &rt,
            "theta.video.streamCreate",
            json!({"name": format!("s{n}")}),
        )
        .await
        .ok();
    }
    let c = invoke(
        &rt,
        "theta.video.streamCreate",
        json!({"name": "one too many"}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::Upstream(u) if u.status == 400 && u.message.contains("maximum")),
        "{}",
        c.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_upstream_errors_and_missing_credentials() {
    let fake = fake_all(|_| {}).await;
    let rt = runtime(config_all(&fake)).await;
    for (name, args, field) in [
        ("theta.video.videoCreate", json!({}), "source_upload_id"),
        (
            "theta.video.videoCreate",
            json!({"source_upload_id": "u", "source_uri": "https://x.y/v.mp4"}),
            "source_upload_id",
        ),
        (
            "theta.video.videoCreate",
            json!({"source_uri": "http://x.y/v.mp4"}),
            "source_uri",
        ),
        (
            "theta.video.videoCreate",
            json!({"source_upload_id": "u", "playback_policy": "secret"}),
            "playback_policy",
        ),
        ("theta.video.videoGet", json!({}), "video_id"),
        (
            "theta.video.streamCreate",
            json!({"name": "x", "resolutions": ["4k"]}),
            "resolutions",
        ),
        ("theta.video.streamCreate", json!({"name": " "}), "name"),
        (
            "theta.video.ingestor.select",
            json!({"ingestor_id": "i"}),
            "stream_id",
        ),
        ("theta.video.list", json!({"number": 500}), "number"),
    ] {
        assert_invalid_argument(&rt, name, args, field).await;
    }
    assert!(fake.requests().is_empty());
    let c = invoke(
        &rt,
        "theta.video.videoGet",
        json!({"video_id": "video_missing"}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::Upstream(u) if u.status == 404),
        "{}",
        c.err_json()
    );
    let c = invoke(
        &rt,
        "theta.video.videoCreate",
        json!({"source_upload_id": "upload_unknown"}),
    )
    .await;
    assert!(
        matches!(c.err(), ThetaError::Upstream(u) if u.status == 404),
        "{}",
        c.err_json()
    );
    fake.inject(Fault::once(
        RouteMatch::get("/ingestor/filter").on_host(VIDEO_HOST),
        FaultKind::error(401, "invalid service account credentials"),
    ));
    let c = invoke(&rt, "theta.video.ingestor.list", json!({})).await;
    assert!(
        matches!(c.err(), ThetaError::Upstream(u) if u.status == 401 && u.message.contains("THETA_VIDEO_SA_SECRET")),
        "{}",
        c.err_json()
    );
    // Without the service account: missing-credential, and the host would not even allow the video host.
    let rt = runtime(without(
        config_all(&fake),
        Family::Video,
        &["THETA_VIDEO_SA_ID"],
    ))
    .await;
    let c = invoke(&rt, "theta.video.list", json!({})).await;
    assert!(
        matches!(c.err(), ThetaError::MissingCredential(m) if m.variable == "THETA_VIDEO_SA_ID"),
        "{}",
        c.err_json()
    );
    let c = invoke(&rt, "theta.video.ingestor.list", json!({})).await;
    assert!(
        matches!(c.err(), ThetaError::MissingCredential(m) if m.variable == "THETA_VIDEO_SA_SECRET" && m.hint.contains("theta.auth.capabilities")),
        "{}",
        c.err_json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_previews_uploads_transcodes_and_streams() {
    let fake = fake_all(|_| {}).await;
    let mut cfg = config_all(&fake);
    cfg.policy.dry_run = true;
    let rt = runtime(cfg).await;
    for (name, args, method, path) in [
        ("theta.video.uploadCreate", json!({}), "POST", "/upload"),
        (
            "theta.video.videoCreate",
            json!({"source_uri": "https://example.com/v.mp4"}),
            "POST",
            "/video",
        ),
        (
            "theta.video.streamCreate",
            json!({"name": "x"}),
            "POST",
            "/stream",
        ),
        (
            "theta.video.ingestor.select",
            json!({"ingestor_id": "i", "stream_id": "s"}),
            "PUT",
            "/ingestor/i/select",
        ),
    ] {
        let c = invoke(&rt, name, args).await;
        match c.err() {
            ThetaError::DryRun(p) => {
                assert_eq!(p.method, method);
                assert_eq!(p.url, format!("https://{VIDEO_HOST}{path}"));
                assert!(!format!("{:?}", p.headers).contains(VIDEO_SECRET));
            }
            other => panic!("{name}: {}", theta_host::report::error_text(other)),
        }
    }
    assert!(fake.requests().is_empty());
    assert!(
        invoke(&rt, "theta.video.list", json!({}))
            .await
            .ok()
            .is_array()
    );
}
