//! The janitor: deletes deployments whose lease ran out, and the disposable deployments of calls that
//! ended (finished, failed, cancelled, timed out, or whose host was killed). It talks to the controller
//! itself, with the host's credential, so a plugin that never reaches its own delete cannot leave a
//! deployment billing. Every deletion is audited (command `janitor`).

use crate::audit::{AuditRecord, now_ms};
use crate::credentials::Family;
use crate::hooks::{SharedOutbound, inject};
use crate::net::client::OutBody;
use crate::policy::classify::CONTROLLER_HOSTS;
use crate::spend::{LEASE_ANNOTATION, deployment_identity};
use crate::tenant::store::{Lease, LeaseState, StoreHandle};
use http_body_util::BodyExt;
use serde_json::Value;

/// What the janitor did with one lease.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Cleanup {
    pub lease: i64,
    pub tenant: String,
    pub deployment: Option<String>,
    /// deleted, already-gone, not-found (never created), failed
    pub outcome: String,
    pub detail: String,
}

impl Cleanup {
    /// One log line for what the janitor did.
    pub fn log(&self) {
        tracing::info!(
            "janitor: lease {} of `{}` ({}): {} ({})",
            self.lease,
            self.tenant,
            self.deployment.as_deref().unwrap_or("?"),
            self.outcome,
            self.detail
        );
    }
}

/// A deployment deleted through the host (by the plugin's delete): its lease ends.
pub async fn end_lease_by_identity(store: &StoreHandle, tenant: &str, shard: &str, suffix: &str) {
    let Ok(opened) = store.get().await else {
        return;
    };
    match opened.leases(Some(tenant), true).await {
        Ok(leases) => {
            for l in leases.iter().filter(|l| {
                l.shard.as_deref() == Some(shard) && l.suffix.as_deref() == Some(suffix)
            }) {
                if let Err(e) = opened.lease_deleted(l.id).await {
                    tracing::error!("ending lease {}: {e}", l.id);
                }
            }
        }
        Err(e) => tracing::error!("reading leases: {e}"),
    }
}

/// One pass: every lease whose expiry passed, or disposable lease whose call is gone.
pub async fn pass(shared: &SharedOutbound) -> anyhow::Result<Vec<Cleanup>> {
    let store = shared.store.get().await?;
    let expired = store.expired_leases(now_ms() as i64).await?;
    let mut done = Vec::new();
    for lease in expired {
        done.push(clean(shared, &lease, "its lease expired").await);
    }
    Ok(done)
}

/// The disposable deployments of the call `holder`, deleted when the call ends, however it ended.
pub async fn end_of_call(shared: &SharedOutbound, tenant: &str, holder: &str) -> Vec<Cleanup> {
    let Ok(store) = shared.store.get().await else {
        return Vec::new();
    };
    let Ok(leases) = store.leases(Some(tenant), true).await else {
        return Vec::new();
    };
    let mut done = Vec::new();
    for lease in leases
        .iter()
        .filter(|l| l.disposable && l.owner.as_deref() == Some(holder))
    {
        done.push(clean(shared, lease, "its disposable call ended").await);
    }
    done
}

async fn clean(shared: &SharedOutbound, lease: &Lease, why: &str) -> Cleanup {
    let identity = match (&lease.shard, &lease.suffix) {
        (Some(shard), Some(suffix)) => Some((shard.clone(), suffix.clone())),
        // The host died (or the answer was unreadable) before the create answered: find the
        // deployment by the lease annotation the host put on it.
        _ => find_by_annotation(shared, lease).await,
    };
    let mut cleanup = Cleanup {
        lease: lease.id,
        tenant: lease.tenant.clone(),
        deployment: identity.as_ref().map(|(a, b)| format!("{a}/{b}")),
        outcome: String::new(),
        detail: String::new(),
    };
    let store = match shared.store.get().await {
        Ok(s) => s,
        Err(e) => {
            cleanup.outcome = "failed".into();
            cleanup.detail = e.to_string();
            return cleanup;
        }
    };
    let Some((shard, suffix)) = identity else {
        // Not in the project's list: never created, or gone. Its hours stay charged (the store
        // never under-counts); the lease is closed so it is not looked for again.
        let ended = if lease.state == LeaseState::Intent {
            store.lease_deleted(lease.id).await
        } else {
            Ok(())
        };
        cleanup.outcome = "not-found".into();
        cleanup.detail = format!(
            "{why}; no deployment with {LEASE_ANNOTATION}={} is listed{}",
            lease.id,
            ended.err().map(|e| format!(" ({e})")).unwrap_or_default()
        );
        audit(shared, lease, None, 0, &cleanup);
        return cleanup;
    };
    let mut last = (0, String::new());
    for noun in ["deployment", "deployments"] {
        let path = format!(
            "/{noun}/{}/{}?project_id={}",
            enc(&shard),
            enc(&suffix),
            enc(&lease.project)
        );
        match request(shared, http::Method::DELETE, &path).await {
            Ok((status, _)) if (200..300).contains(&status) => {
                last = (status, "deleted".into());
                break;
            }
            Ok((404, _)) => last = (404, "already-gone".into()),
            Ok((status, body)) => {
                last = (status, "failed".into());
                cleanup.detail = String::from_utf8_lossy(&body).chars().take(200).collect();
                break;
            }
            Err(e) => {
                last = (0, "failed".into());
                cleanup.detail = e;
                break;
            }
        }
    }
    cleanup.outcome = last.1.clone();
    if matches!(cleanup.outcome.as_str(), "deleted" | "already-gone") {
        if let Err(e) = store.lease_deleted(lease.id).await {
            cleanup.detail = format!("deleted, but the lease could not be closed: {e}");
        } else {
            cleanup.detail = why.to_owned();
        }
    }
    audit(
        shared,
        lease,
        Some(format!("/deployment/{shard}/{suffix}")),
        last.0,
        &cleanup,
    );
    cleanup
}

async fn find_by_annotation(shared: &SharedOutbound, lease: &Lease) -> Option<(String, String)> {
    for noun in ["deployment", "deployments"] {
        let path = format!("/{noun}/list?project_id={}", enc(&lease.project));
        let Ok((200..=299, body)) = request(shared, http::Method::GET, &path).await else {
            continue;
        };
        let Ok(answer) = serde_json::from_slice::<Value>(&body) else {
            continue;
        };
        let items = [
            &answer,
            &answer["body"],
            &answer["deployments"],
            &answer["body"]["deployments"],
        ]
        .into_iter()
        .find_map(|v| v.as_array().cloned())
        .unwrap_or_default();
        let tag = lease.id.to_string();
        if let Some(found) = items.iter().find(|d| {
            ["Annotations", "annotations"]
                .iter()
                .any(|k| d[*k][LEASE_ANNOTATION].as_str() == Some(tag.as_str()))
        }) {
            return deployment_identity(found);
        }
        return None;
    }
    None
}

/// One request to the controller with the host's own credential.
async fn request(
    shared: &SharedOutbound,
    method: http::Method,
    path_and_query: &str,
) -> Result<(u16, bytes::Bytes), String> {
    let credential = shared.credentials.get(Family::Controller).ok_or_else(|| {
        "the host has no controller credential (THETA_EC_API_KEY): it cannot delete deployments"
            .to_owned()
    })?;
    let host = CONTROLLER_HOSTS[0];
    let uri: http::Uri = format!("https://{host}{path_and_query}")
        .parse()
        .map_err(|e| format!("bad janitor URL: {e}"))?;
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, http::HeaderValue::from_static(host));
    inject(&mut headers, &credential.injection).map_err(|e| e.to_string())?;
    let body: OutBody = http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut wire = http::Request::new(body);
    *wire.method_mut() = method;
    *wire.uri_mut() = shared.client.wire_uri(&uri);
    *wire.headers_mut() = headers;
    let response =
        tokio::time::timeout(std::time::Duration::from_secs(30), shared.client.send(wire))
            .await
            .map_err(|_| "the controller did not answer within 30 s".to_owned())?
            .map_err(|e| match e {
                crate::net::client::SendError::NonPublic(why) => why,
                crate::net::client::SendError::Transport(e) => e.to_string(),
            })?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((status, body))
}

fn audit(shared: &SharedOutbound, lease: &Lease, path: Option<String>, status: u16, c: &Cleanup) {
    shared.audit.record(AuditRecord {
        ts_unix_ms: now_ms(),
        tenant: lease.tenant.clone(),
        command: "janitor".into(),
        call_id: 0,
        request: 0,
        method: "DELETE".into(),
        host: CONTROLLER_HOSTS[0].into(),
        path: path.unwrap_or_default(),
        query: None,
        decision: "allowed".into(),
        outcome: Some(c.outcome.clone()),
        effect: Some(crate::policy::Effect::Mutate),
        status: (status != 0).then_some(status),
        bytes_in: 0,
        spend_usd: None,
        duration_ms: 0,
        reason: Some(format!("lease {}: {}", lease.id, c.detail)),
    });
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How often a long-running host (`mcp`) runs a janitor pass.
pub const INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs a pass now and then every [`INTERVAL`] for as long as the runtime lives.
pub fn run_in_background(rt: &crate::Runtime) {
    let shared = rt.shared().clone();
    tokio::spawn(async move {
        loop {
            match pass(&shared).await {
                Ok(done) => done.iter().for_each(Cleanup::log),
                Err(e) => tracing::warn!("janitor pass failed: {e:#}"),
            }
            tokio::time::sleep(INTERVAL).await;
        }
    });
}
