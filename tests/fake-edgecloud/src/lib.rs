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
mod faults;
mod infer;
mod ondemand;
mod reply;
mod server;
mod sse;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use faults::{Fault, FaultKind, RouteMatch};
pub use state::RecordedRequest;

/// The on-demand API's host name; requests carrying it are served by the on-demand family.
pub const ONDEMAND_HOST: &str = "ondemand.thetaedgecloud.com";
/// The project every fake infer request belongs to.
pub const PROJECT_ID: &str = "prj_fake0000000000000000000001";
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
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            ondemand_token: "fake-ondemand-token".into(),
            sse_split: None,
            polls_until_done: 2,
            token_delay: Duration::from_millis(5),
            loopback_family: Some(Family::OnDemand),
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

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.state.clear_requests();
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
