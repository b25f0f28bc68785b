//! Shared setup for the end-to-end tests: the built components, the fake EdgeCloud, and a host
//! configured to reach the fake through its explicit test-upstream setting.
#![allow(dead_code)]

use fake_edgecloud::{FakeConfig, FakeEdgeCloud};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use theta_host::audit::AuditRecord;
use theta_host::bindings::ThetaError;
use theta_host::credentials::{Credential, Credentials, Family, Injection, Secret};
use theta_host::events::GuestEvent;
use theta_host::net::Upstream;
use theta_host::{HostConfig, Runtime};

fn component(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join(format!("target/wasm32-wasip2/plugin-release/{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-wasm.sh first (scripts/test.sh does)",
        path.display()
    );
    path
}

pub fn plugin_wasm() -> PathBuf {
    component("theta_plugin")
}

/// The same commands built for IronClaw's `near:agent/sandboxed-tool` world (`--features ironclaw`).
pub fn ironclaw_wasm() -> PathBuf {
    component("theta_plugin_ironclaw")
}

pub fn hostile_wasm() -> PathBuf {
    component("hostile_guest")
}

pub const TOKEN: &str = "e2e-ondemand-token-0123456789";

/// A fake EdgeCloud with the e2e token.
pub async fn fake() -> FakeEdgeCloud {
    fake_with(FakeConfig {
        ondemand_token: TOKEN.into(),
        ..FakeConfig::default()
    })
    .await
}

pub async fn fake_with(config: FakeConfig) -> FakeEdgeCloud {
    FakeEdgeCloud::start(config)
        .await
        .expect("fake EdgeCloud starts")
}

/// A spend store of its own (a fresh SQLite file), so tests never share money with each other or
/// with the user's default store.
pub fn temp_store() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("theta-e2e-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(format!("spend-{}.db", N.fetch_add(1, Ordering::SeqCst)))
        .display()
        .to_string()
}

/// Host config pointed at the fake, holding the on-demand token (as the host, never the guest).
pub fn config_for(fake: &FakeEdgeCloud) -> HostConfig {
    let mut cfg = HostConfig::empty();
    cfg.store = Some(temp_store());
    let mut creds = Credentials::default();
    creds.insert(
        Family::OnDemand,
        Credential {
            variable: "THETA_ONDEMAND_API_TOKEN",
            injection: Injection::Bearer(Secret::new(TOKEN)),
        },
    );
    cfg.credentials = creds;
    cfg.upstream = Upstream::TestServer(fake.addr());
    cfg.audit_in_memory = true;
    // Fast retries in tests.
    cfg.passthrough = vec![
        ("THETA_HTTP_RETRY_BACKOFF_MS".into(), "25".into()),
        ("THETA_HTTP_TIMEOUT_MS".into(), "5000".into()),
    ];
    cfg
}

pub async fn runtime(cfg: HostConfig) -> Runtime {
    Runtime::new(cfg, &plugin_wasm())
        .await
        .expect("plugin loads")
}

/// The outcome of one invoke, with the events it emitted.
pub struct Called {
    pub result: Result<Value, ThetaError>,
    pub events: Vec<GuestEvent>,
}

impl Called {
    pub fn ok(&self) -> &Value {
        match &self.result {
            Ok(v) => v,
            Err(e) => panic!(
                "expected success, got {}",
                theta_host::report::error_text(e)
            ),
        }
    }

    pub fn err(&self) -> &ThetaError {
        match &self.result {
            Ok(v) => panic!("expected an error, got {v}"),
            Err(e) => e,
        }
    }

    pub fn err_json(&self) -> Value {
        theta_host::report::error_json(self.err())
    }

    pub fn tokens(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                GuestEvent::Token { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

pub async fn invoke(rt: &Runtime, name: &str, args: Value) -> Called {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let out = rt
        .invoke(
            name,
            &args.to_string(),
            Arc::new(move |e| sink.lock().unwrap().push(e)),
        )
        .await
        .expect("the host runs the call");
    let result = out.map(|json| serde_json::from_str(&json).expect("plugin returns JSON"));
    let events = events.lock().unwrap().clone();
    Called { result, events }
}

/// Requests the fake saw, as (method, path).
pub fn seen(fake: &FakeEdgeCloud) -> Vec<(String, String)> {
    fake.requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

pub fn audit_text(rt: &Runtime) -> String {
    rt.audit()
        .records()
        .iter()
        .map(|r: &AuditRecord| serde_json::to_string(r).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}
