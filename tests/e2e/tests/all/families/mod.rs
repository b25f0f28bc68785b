//! Setup shared by the end-to-end tests of the families beyond on-demand: a fake with every family's
//! credentials, and a host holding them (the guest sees names and non-secret settings only).
#![allow(dead_code)]

use crate::common::{TOKEN, config_for, fake_with, invoke};
use fake_edgecloud::{FakeConfig, FakeEdgeCloud, ORG_ID, PROJECT_ID};
use theta_host::bindings::ThetaError;
use theta_host::credentials::{Credential, Family, Injection, Secret};
use theta_host::{HostConfig, Runtime};

pub const EC_KEY: &str = "e2e-controller-key-0123456789";
pub const VIDEO_ID: &str = "srvacc_e2e00000000000000001";
pub const VIDEO_SECRET: &str = "e2e-video-secret-0123456789";
pub const ENDPOINT_TOKEN: &str = "e2e-endpoint-token-0123456789";
pub const ENDPOINT_HOST: &str = "llm-e2e-0123456789abcdef.tec-s1.onthetaedgecloud.com";

/// A fake whose families accept the e2e credentials; `tweak` adjusts it further.
pub async fn fake_all(tweak: impl FnOnce(&mut FakeConfig)) -> FakeEdgeCloud {
    let mut config = FakeConfig {
        ondemand_token: TOKEN.into(),
        controller_key: EC_KEY.into(),
        video_account: (VIDEO_ID.into(), VIDEO_SECRET.into()),
        endpoint_token: Some(ENDPOINT_TOKEN.into()),
        ..FakeConfig::default()
    };
    tweak(&mut config);
    fake_with(config).await
}

/// Every family configured: controller key, project, org, video account, the dedicated endpoint.
pub fn config_all(fake: &FakeEdgeCloud) -> HostConfig {
    let mut cfg = config_for(fake);
    cfg.credentials.insert(
        Family::Controller,
        Credential {
            variable: "THETA_EC_API_KEY",
            injection: Injection::ApiKey(Secret::new(EC_KEY)),
        },
    );
    cfg.credentials.insert(
        Family::Video,
        Credential {
            variable: "THETA_VIDEO_SA_SECRET",
            injection: Injection::VideoServiceAccount {
                id: Secret::new(VIDEO_ID),
                secret: Secret::new(VIDEO_SECRET),
            },
        },
    );
    cfg.credentials.insert(
        Family::DedicatedInference,
        Credential {
            variable: "THETA_INFERENCE_AUTH_TOKEN",
            injection: Injection::Bearer(Secret::new(ENDPOINT_TOKEN)),
        },
    );
    cfg.policy.allowlist = cfg.policy.allowlist.clone().with_video_api();
    cfg.policy.inference_host = Some(ENDPOINT_HOST.into());
    cfg.passthrough.extend([
        ("THETA_EC_PROJECT_ID".into(), PROJECT_ID.into()),
        ("THETA_ORG_ID".into(), ORG_ID.into()),
        ("THETA_VIDEO_SA_ID".into(), VIDEO_ID.into()),
        (
            "THETA_INFERENCE_ENDPOINT".into(),
            format!("https://{ENDPOINT_HOST}"),
        ),
    ]);
    cfg
}

/// Removes one family's credential (and the settings named), keeping the rest.
pub fn without(mut cfg: HostConfig, family: Family, settings: &[&str]) -> HostConfig {
    let mut creds = theta_host::credentials::Credentials::default();
    for f in [
        Family::OnDemand,
        Family::Controller,
        Family::DedicatedInference,
        Family::Video,
    ] {
        if f != family
            && let Some(c) = cfg.credentials.get(f)
        {
            creds.insert(f, c.clone());
        }
    }
    cfg.credentials = creds;
    cfg.passthrough
        .retain(|(k, _)| !settings.contains(&k.as_str()));
    cfg
}

/// Requests the fake saw on one host, as (method, path).
pub fn seen_on(fake: &FakeEdgeCloud, host: &str) -> Vec<(String, String)> {
    fake.requests()
        .into_iter()
        .filter(|r| r.host == host)
        .map(|r| (r.method, r.path))
        .collect()
}

/// `name` with `args` is refused as an invalid argument naming `field` (tables of bad arguments).
pub async fn assert_invalid_argument(
    rt: &Runtime,
    name: &str,
    args: serde_json::Value,
    field: &str,
) {
    let c = invoke(rt, name, args).await;
    assert!(
        matches!(c.err(), ThetaError::InvalidArgument(a) if a.field == field),
        "{name}: {}",
        c.err_json()
    );
}
