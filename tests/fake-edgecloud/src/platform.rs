//! The platform API (`api.thetaedgecloud.com`): VM types (public) and the org balance (`x-api-key`),
//! theta-api-sources.md §2.3.

use crate::ORG_ID;
use crate::reply::Reply;
use crate::server::Shared;
use crate::state::RecordedRequest;
use crate::store::{self, not_found};
use serde_json::{Value, json};

fn vm_catalogue() -> [(&'static str, &'static str, &'static str, f64); 5] {
    [
        ("vm_gt1", "G-T4_16GB-x1", "T4", 0.29),
        ("vm_gt2", "G-T4_16GB-x2", "T4", 0.58),
        ("vm_gv1", "G-V100_32GB-x1", "V100", 0.79),
        ("vm_ga1", "G-A100_80GB-x1", "A100", 1.89),
        ("vm_gh200x1", "G-H200_141GB-x1", "H200", 3.99),
    ]
}

pub(crate) fn handle(req: &RecordedRequest, shared: &Shared) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/resource/vm/list") => {
            let used = shared.state.with_store(|s| s.vm_used.clone());
            let vms: Vec<Value> = vm_catalogue()
                .iter()
                .map(|(id, name, gpu, price)| {
                    let capacity = shared
                        .config
                        .vm_capacity
                        .iter()
                        .find(|(v, _)| v == id)
                        .map_or(0, |(_, c)| *c);
                    let free = capacity.saturating_sub(used.get(*id).copied().unwrap_or(0));
                    json!({"id": id, "name": name, "gpu_model": gpu, "gpu_count": 1,
                           "price_per_hour": price, "available": free})
                })
                .collect();
            Reply::success(json!({"vms": vms}))
        }
        ("GET", "/balance") => {
            if let Err(r) = store::api_key(req, &shared.config.controller_key) {
                return r;
            }
            match req.query_param("orgID") {
                None => Reply::error(400, "orgID is required"),
                Some(o) if o != ORG_ID => {
                    Reply::error(403, "You are not allowed to perform this action")
                }
                Some(o) => {
                    let entry = match shared.config.balance {
                        Some(b) => json!({"org_id": o, "balance": b}),
                        None => json!({"org_id": o, "currency": "USD"}),
                    };
                    Reply::success(json!({"balances": [entry]}))
                }
            }
        }
        (_, "/resource/vm/list" | "/balance") => {
            Reply::error(405, format!("method {} not allowed", req.method))
        }
        _ => not_found(req),
    }
}
