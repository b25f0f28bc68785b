//! Billing (`api.thetaedgecloud.com/balance`, org scoped; theta-api-sources.md §2.3) and
//! `theta.auth.capabilities`: which command families have their credentials, by name only.

use super::args::{Args, check_name};
use super::{Fam, ToJson, object, setting, str_list};
use crate::client::{Api, Call, Client, Ctx, encode, truncate};
use crate::config::ORG_ID_VAR;
use crate::error::Result;
use serde_json::Value;

pub const BALANCE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"org_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Organisation id (org_…); default THETA_ORG_ID."}}}"#;

pub fn parse_org(ctx: &Ctx, args: Args) -> Result<String> {
    args.allow_only(&["org_id", "orgId"])?;
    let org = match args.first(&["org_id", "orgId"]) {
        Some((n, v)) => super::args::as_string(n, v)?,
        None => setting(&ctx.config.org_id, ORG_ID_VAR)?,
    };
    check_name("org_id", &org)?;
    Ok(org)
}

fn fetch(ctx: &Ctx, org: &str) -> Result<Value> {
    let call = Call::get(format!("/balance?orgID={}", encode(org))).on(Api::Platform);
    Client::new(ctx).json(&call)
}

/// Keys under which a numeric balance may appear, in the skill's order.
const BALANCE_KEYS: [&str; 7] = [
    "balance",
    "amount",
    "available",
    "credit",
    "credits",
    "remaining",
    "total",
];

/// The first number under one of [`BALANCE_KEYS`], searching depth first (numeric strings count).
pub fn find_balance(v: &Value) -> Option<f64> {
    match v {
        Value::Object(map) => {
            for k in BALANCE_KEYS {
                let hit = map.get(k).and_then(|x| match x {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                    _ => None,
                });
                if hit.is_some() {
                    return hit;
                }
            }
            map.values().find_map(find_balance)
        }
        Value::Array(items) => items.iter().find_map(find_balance),
        _ => None,
    }
}

pub fn balance(ctx: &Ctx, org: &str) -> Result<Value> {
    let body = fetch(ctx, org)?;
    let balances = super::items(&body, &["balances"]);
    let mine = balances
        .iter()
        .find(|b| super::text(b, &["org_id"]).as_deref() == Some(org))
        .or(balances.first())
        .copied();
    Ok(object(vec![
        ("org_id", Value::String(org.into())),
        (
            "balance",
            mine.and_then(find_balance).map_or(Value::Null, Value::from),
        ),
        (
            "balances",
            Value::Array(balances.into_iter().cloned().collect()),
        ),
    ]))
}

/// A balance snapshot: the number, or why there is none (the answer has no numeric balance).
#[derive(Debug, Clone, PartialEq)]
pub enum BalanceReading {
    Balance(f64),
    Skipped(String),
}

impl ToJson for BalanceReading {
    fn to_json(&self) -> Value {
        match self {
            BalanceReading::Balance(b) => object(vec![
                ("balance", Value::from(*b)),
                ("skipped", Value::Bool(false)),
            ]),
            BalanceReading::Skipped(why) => object(vec![
                ("balance", Value::Null),
                ("skipped", Value::Bool(true)),
                ("reason", Value::String(why.clone())),
            ]),
        }
    }
}

/// The number, or `Skipped` saying the answer has none (as the skill does: a snapshot is a
/// best-effort reading, not a failure).
pub fn balance_reading(ctx: &Ctx, org: &str) -> Result<BalanceReading> {
    let body = fetch(ctx, org)?;
    Ok(match find_balance(&body) {
        Some(b) => BalanceReading::Balance(b),
        None => BalanceReading::Skipped(format!(
            "the balance answer for {org} has no numeric balance (looked for {}): {}",
            BALANCE_KEYS.join(", "),
            truncate(&body.to_string(), 200)
        )),
    })
}

// ---------------------------------------------------------------------------------------------
// theta.auth.capabilities

pub struct Capability {
    pub family: &'static str,
    pub configured: bool,
    pub required: Vec<String>,
    pub missing: Vec<String>,
    pub commands: Vec<String>,
    pub note: Option<String>,
}

impl ToJson for Capability {
    fn to_json(&self) -> Value {
        object(vec![
            ("family", Value::String(self.family.into())),
            ("configured", Value::Bool(self.configured)),
            ("required", str_list(&self.required)),
            ("missing", str_list(&self.missing)),
            ("commands", str_list(&self.commands)),
            ("note", super::opt_str(&self.note)),
        ])
    }
}

/// Whether a variable is set: non-secret settings from our environment, secrets by name from the host
/// (`THETA_CONFIGURED_CREDENTIALS`) or from our own environment. Never a value.
fn present(ctx: &Ctx, var: &str) -> bool {
    let c = ctx.config;
    match var {
        "THETA_EC_PROJECT_ID" => c.project_id.is_some(),
        "THETA_ORG_ID" => c.org_id.is_some(),
        "THETA_VIDEO_SA_ID" => c.video_sa_id.is_some(),
        "THETA_INFERENCE_ENDPOINT" => c.inference_endpoint.is_some(),
        _ => c.has(var),
    }
}

pub fn capabilities(ctx: &Ctx) -> Vec<Capability> {
    let all = super::families();
    Fam::ALL
        .iter()
        .filter(|f| **f != Fam::Auth)
        .map(|fam| {
            let required: Vec<String> = fam.vars().iter().map(|v| v.to_string()).collect();
            let missing: Vec<String> = required
                .iter()
                .filter(|v| !present(ctx, v))
                .cloned()
                .collect();
            let note = match fam {
                Fam::OnDemand => Some("list_services works without a token".into()),
                Fam::Inference => Some(format!(
                    "endpoint auth: {}",
                    if present(ctx, "THETA_INFERENCE_AUTH_TOKEN")
                        || present(ctx, "THETA_INFERENCE_AUTH_USER")
                    {
                        "configured"
                    } else {
                        "none (THETA_INFERENCE_AUTH_TOKEN or THETA_INFERENCE_AUTH_USER / _PASS, if the deployment needs it)"
                    }
                )),
                Fam::Deployments => Some("theta.deployments.listVm works without a key".into()),
                _ => None,
            };
            Capability {
                family: fam.name(),
                configured: missing.is_empty(),
                required,
                missing,
                commands: all
                    .iter()
                    .filter(|(f, _)| f == fam)
                    .map(|(_, n)| n.to_string())
                    .collect(),
                note,
            }
        })
        .collect()
}
