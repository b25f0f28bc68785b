//! A faithful fake of Theta EdgeCloud's HTTP APIs, served over HTTP/1.1 on loopback.
//!
//! Used by the end-to-end tests (the host rewrites `https://ondemand.thetaedgecloud.com/...` to
//! `http://127.0.0.1:PORT/...`, keeping the original `Host` header) and as the CLI's demo backend.
//! Requests are routed by `Host` first, then by path. Only the on-demand model API
//! (`ondemand.thetaedgecloud.com`) is implemented so far; other families get sibling modules.
//!
//! Behaviour follows `/work/shared/theta-api-sources.md` (§2.1, §3, §4, §5): the `{status, body}`
//! envelope, `{status:"error", message}` errors, OpenAI-style SSE with keep-alives and `[DONE]`,
//! the pending → processing → success|error lifecycle, presigned upload URLs (live shape), and the
//! failure modes a client must survive (see [`Fault`]).

mod catalogue;
mod chat;
mod clock;
mod controller;
mod dedicated;
mod faults;
mod infer;
mod ondemand;
mod platform;
mod reply;
mod server;
mod sse;
mod state;
mod storage;
mod store;
mod video;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use faults::{Fault, FaultKind, RouteMatch, SseFraming};
pub use state::RecordedRequest;
pub use storage::STORAGE_HOST;

/// The on-demand API's host name; requests carrying it are served by the on-demand family.
pub const ONDEMAND_HOST: &str = "ondemand.thetaedgecloud.com";
/// The project every fake infer request belongs to.
pub const PROJECT_ID: &str = "prj_fake0000000000000000000001";
/// The controller (deployments, templates, chatbots) host.
pub const CONTROLLER_HOST: &str = "controller.thetaedgecloud.com";
/// The platform (VM types, balance) host.
pub const PLATFORM_HOST: &str = "api.thetaedgecloud.com";
/// The Theta Video API host.
pub const VIDEO_HOST: &str = "api.thetavideoapi.com";
/// The organisation of [`PROJECT_ID`].
pub const ORG_ID: &str = "org_fake0000000000000000000001";
/// Request bodies larger than this are answered with 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// An API family of the fake, chosen from the request's `Host` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Family {
    /// `ondemand.thetaedgecloud.com`: the on-demand model API.
    OnDemand,
    /// `controller.thetaedgecloud.com`: deployments, templates, AI agents (`x-api-key`).
    Controller,
    /// `api.thetaedgecloud.com`: VM types and the org balance (`x-api-key`).
    Platform,
    /// Any other `*.onthetaedgecloud.com` / `*.thetaedgecloud.com` host: a dedicated endpoint.
    Dedicated,
    /// `api.thetavideoapi.com`: the Theta Video API (service-account headers).
    Video,
    /// `storage.googleapis.com`: where presigned upload URLs point.
    Storage,
}

/// Which deployment route shapes the fake's controller answers (§8.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteShape {
    /// `/deployment/...` only (live-verified).
    Singular,
    /// `/deployments/...` only.
    Plural,
    Both,
}

/// How the fake behaves. Every field has a sensible default.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The bearer token the on-demand API accepts (default `"fake-ondemand-token"`).
    pub ondemand_token: String,
    /// Split every SSE write into pieces of this many bytes (each piece is its own HTTP chunk),
    /// to exercise parsers across chunk boundaries.
    pub sse_split: Option<usize>,
    /// How many `GET /infer_request/{id}` polls an async request takes to finish (default 2:
    /// pending → processing → success).
    pub polls_until_done: u32,
    /// Pause between SSE token events (default 5 ms).
    pub token_delay: Duration,
    /// Which family serves requests whose `Host` is a loopback address (`127.0.0.1`, `localhost`,
    /// `[::1]`), e.g. a plain `curl` against [`FakeEdgeCloud::base_url`]. `None`: such requests get
    /// the same 421 as any unknown host. Default `Some(Family::OnDemand)`.
    pub loopback_family: Option<Family>,
    /// The project API key the controller and platform accept (`x-api-key`).
    pub controller_key: String,
    pub route_shape: RouteShape,
    /// Free machines per VM type; a create takes one, a delete gives it back.
    pub vm_capacity: Vec<(String, u32)>,
    /// What a dedicated endpoint answers to its first requests before it is ready (default 404, 502).
    pub endpoint_warmup: Vec<u16>,
    /// The bearer token a configured dedicated endpoint requires (`None`: no auth).
    pub endpoint_token: Option<String>,
    /// Video API service account (id, secret).
    pub video_account: (String, String),
    /// `GET /video/{id}` polls until a transcode finishes (created → processing → success).
    pub video_polls_until_done: u32,
    /// The org balance; `None` answers a balances entry without a number.
    pub balance: Option<f64>,
    /// VM types whose creates are accepted but never scheduled: their deployments stay `Pending`
    /// (capacity that is short silently). On the others a deployment is `Running` from its first
    /// list on.
    pub unschedulable_vms: Vec<String>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            ondemand_token: "fake-ondemand-token".into(),
            sse_split: None,
            polls_until_done: 2,
            token_delay: Duration::from_millis(5),
            loopback_family: Some(Family::OnDemand),
            controller_key: "fake-controller-key".into(),
            route_shape: RouteShape::Singular,
            vm_capacity: vec![
                ("vm_gt1".into(), 2),
                ("vm_gt2".into(), 2),
                ("vm_gv1".into(), 1),
            ],
            endpoint_warmup: vec![404, 502],
            endpoint_token: None,
            video_account: (
                "srvacc_fake0000000000000001".into(),
                "fake-video-secret".into(),
            ),
            video_polls_until_done: 2,
            balance: Some(3421.300894),
            unschedulable_vms: Vec::new(),
        }
    }
}

/// A running fake. Shut down with [`FakeEdgeCloud::shutdown`] or by dropping it: either way the
/// listener and every connection task (including hung ones) are stopped.
pub struct FakeEdgeCloud {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    server: Option<server::ServerHandle>,
}

impl FakeEdgeCloud {
    /// Start on `127.0.0.1:0` (an ephemeral port).
    pub async fn start(config: FakeConfig) -> anyhow::Result<FakeEdgeCloud> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Start on a given address (the `fake-edgecloud` binary's `--port`).
    pub async fn start_on(config: FakeConfig, addr: SocketAddr) -> anyhow::Result<FakeEdgeCloud> {
        let shared = Arc::new(server::Shared::new(config));
        let (addr, server) = server::serve(addr, shared.clone()).await?;
        Ok(FakeEdgeCloud {
            addr,
            shared,
            server: Some(server),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queue a fault; matching requests are affected in queue order.
    pub fn inject(&self, fault: Fault) {
        self.shared.state.inject(fault);
    }

    /// Drop every queued fault.
    pub fn clear_faults(&self) {
        self.shared.state.clear_faults();
    }

    /// Every request received so far, in arrival order (including those that hit faults).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state.requests()
    }

    /// The bytes PUT to the presigned URL of an upload file name, if any arrived.
    pub fn uploaded(&self, filename: &str) -> Option<Vec<u8>> {
        self.shared.state.upload(filename)
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.state.clear_requests();
    }

    /// Deployments that currently exist, as the controller lists them.
    pub fn deployments(&self) -> Vec<serde_json::Value> {
        self.shared.state.with_store(|s| s.deployments.clone())
    }

    /// `shard/suffix` of the deployments that bill now: they exist and are not stopped.
    pub fn billing_deployments(&self) -> Vec<String> {
        self.shared.state.with_store(|s| {
            s.deployments
                .iter()
                .map(store::deployment_key)
                .filter(|k| !s.stopped.contains(k))
                .collect()
        })
    }

    /// Stop listening and end every connection, waiting until all tasks are gone.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl Drop for FakeEdgeCloud {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
