//! Money at the boundary: what a paid request holds in the spend store while it is in flight, and
//! what happens to it afterwards. A paid request is a reservation; a deployment create is a lease
//! (its hours charged up front, recorded *before* the create is sent, tagged so the janitor can find
//! it even if the host dies before the answer). Settling never blocks the guest and never loses
//! money: whatever is not settled stays counted.

use crate::policy::{Approved, Price};
use crate::tenant::TenantPolicy;
use crate::tenant::pricing::PriceTable;
use crate::tenant::store::{NewLease, Reservation, SpendStore, StoreError, StoreHandle};
use serde_json::Value;

/// The annotation a deployment created through the host carries: the lease id.
pub const LEASE_ANNOTATION: &str = "theta-host-lease";

/// Money held for one request in flight.
pub enum Hold {
    Request {
        store: SpendStore,
        reservation: Reservation,
    },
    Lease {
        store: SpendStore,
        id: i64,
        micros: u64,
    },
}

/// What a caller of [`hold`] needs to know about the call.
pub struct CallFacts<'a> {
    pub tenant: &'a TenantPolicy,
    pub command: &'a str,
    /// The call's holder id (its store slot holder), the owner of a disposable lease.
    pub holder: &'a str,
    pub what: String,
}

impl Hold {
    pub fn micros(&self) -> u64 {
        match self {
            Hold::Request { reservation, .. } => reservation.micros,
            Hold::Lease { micros, .. } => *micros,
        }
    }

    /// The request is over: `ran` says whether Theta may have run it. A lease is left to
    /// [`Hold::answered`]; here it stays counted (intent) unless Theta refused it.
    pub async fn finish(self, ran: bool) {
        let result = match &self {
            Hold::Request { store, reservation } if ran => store.settle(reservation, None).await,
            Hold::Request { store, reservation } => store.release(reservation).await,
            Hold::Lease { store, id, .. } if !ran => store.lease_failed(*id).await,
            // Unknown outcome: the lease stays an intent (counted); the janitor resolves it.
            Hold::Lease { .. } => Ok(()),
        };
        if let Err(e) = result {
            // Nothing is lost: an unsettled reservation stays counted as spent.
            tracing::error!("settling a spend hold: {e}");
        }
    }

    /// The same, from a place that cannot wait (a drop): in the background.
    pub fn finish_in_background(self, ran: bool) {
        crate::background::spawn(self.finish(ran));
    }

    /// Theta answered `status` (with `answer` when it was JSON and the route is a create).
    pub async fn answered(self, status: u16, answer: Option<&Value>) {
        let accepted = !(400..500).contains(&status);
        match &self {
            Hold::Lease { store, id, .. } if (200..300).contains(&status) => {
                match answer.and_then(deployment_identity) {
                    Some((shard, suffix)) => {
                        if let Err(e) = store.lease_created(*id, &shard, &suffix).await {
                            tracing::error!("recording deployment lease {id}: {e}");
                        }
                    }
                    None => tracing::warn!(
                        "deployment lease {id}: the create answer names no Shard/Suffix; the janitor will look for the deployment by its `{LEASE_ANNOTATION}` annotation"
                    ),
                }
            }
            _ => self.finish(accepted).await,
        }
    }
}

/// Reserves what a paid request of `approved` costs (or records a deployment lease), or says why not.
/// `body` is the request's JSON body; a deployment create gets the lease annotation added to it.
pub async fn hold(
    store: &StoreHandle,
    prices: &PriceTable,
    facts: CallFacts<'_>,
    approved: &Approved,
    method: &http::Method,
    body: &mut Option<Value>,
) -> Result<Hold, String> {
    let opened = store.get().await.map_err(store_refusal)?;
    let tenant = facts.tenant;
    let is_create = approved.route.price == Price::DeploymentHours
        && *method == http::Method::POST
        && approved.segments.len() == 1;
    if is_create {
        let hourly = prices.deployment_hourly(body.as_ref());
        let disposable = facts.command == "theta.deployments.validateDisposable";
        // A disposable deployment lives for its call (the call's wall clock); any other for the
        // tenant's max_deployment_hours. Both are charged for every started hour up front.
        let hours = if disposable {
            1
        } else {
            tenant.max_deployment_hours
        };
        let life_ms = if disposable {
            tenant.limits.wall_clock.as_millis() as i64
        } else {
            i64::from(hours) * 3_600_000
        };
        let project = body
            .as_ref()
            .and_then(|b| b.get("project_id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let vm_type = body
            .as_ref()
            .and_then(|b| b.get("vm_id"))
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let lease = NewLease {
            tenant: tenant.name.clone(),
            project,
            vm_type,
            hourly_micros: hourly,
            disposable,
            owner: disposable.then(|| facts.holder.to_owned()),
            prepaid_hours: hours,
            expires_at_unix_ms: Some(crate::audit::now_ms() as i64 + life_ms),
            host_id: store.host_id().to_owned(),
        };
        let id = opened
            .lease_intent(lease, tenant.spend_cap_micros)
            .await
            .map_err(cap_refusal)?;
        if let Some(Value::Object(b)) = body.as_mut() {
            let annotations = b
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(a) = annotations {
                a.insert(LEASE_ANNOTATION.into(), Value::String(id.to_string()));
            } else {
                // A non-object annotations value: replaced, so the janitor can find the deployment.
                *annotations = serde_json::json!({ LEASE_ANNOTATION: id.to_string() });
            }
        }
        return Ok(Hold::Lease {
            store: opened.clone(),
            id,
            micros: hourly.saturating_mul(u64::from(hours)),
        });
    }
    let mut estimate = prices.estimate(approved.route.price, &approved.segments, body.as_ref());
    if approved.route.price == Price::DeploymentHours {
        // Starting a stopped deployment bills it again for the tenant's hours.
        estimate = estimate.saturating_mul(u64::from(tenant.max_deployment_hours));
    }
    let reservation = opened
        .reserve(
            &tenant.name,
            estimate,
            tenant.spend_cap_micros,
            &facts.what,
            store.host_id(),
        )
        .await
        .map_err(cap_refusal)?;
    Ok(Hold::Request {
        store: opened.clone(),
        reservation,
    })
}

fn store_refusal(e: StoreError) -> String {
    format!("the spend store cannot be used ({e}); paid requests are refused until it can")
}

fn cap_refusal(e: StoreError) -> String {
    match e {
        StoreError::CapReached { .. } => e.to_string(),
        other => store_refusal(other),
    }
}

/// `(shard, suffix)` of a deployment in a create or list answer (`Shard` may be a number).
pub fn deployment_identity(answer: &Value) -> Option<(String, String)> {
    crate::policy::classify::deployment_records(answer)
        .into_iter()
        .find_map(|v| {
            let text = |keys: &[&str]| {
                keys.iter().find_map(|k| match v.get(*k) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                })
            };
            Some((text(&["Shard", "shard"])?, text(&["Suffix", "suffix"])?))
        })
}
