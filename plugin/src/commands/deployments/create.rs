//! `theta.deployments.create` with VM fallback: vm_gt1 → vm_gt2 → V100 types, moving on when the VM
//! list shows no capacity, when the controller answers 409 "capacity", and when a create is accepted
//! but stays pending (not scheduled) for the pending window: that attempt is deleted first.

use super::{
    Deployment, PREFERRED_VMS, VmType, delete, list, list_vm_types, parse_route, project,
    working_route,
};
use crate::client::{Api, Call, Client, Ctx, truncate};
use crate::commands::args::{Args, check_name, check_range};
use crate::commands::readiness::{poll_interval_ms, window_ms};
use crate::commands::{ToJson, object};
use crate::error::{Result, ThetaError};
use crate::events::Event;
use serde_json::{Map, Value, json};

/// How long an accepted create may stay pending before the next VM type is tried (default).
pub const PENDING_DEFAULT_S: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CreateArgs {
    pub template_id: String,
    pub container_image: Option<String>,
    pub vm_id: Option<String>,
    pub min_replicas: Option<u32>,
    pub max_replicas: Option<u32>,
    pub env_vars: Option<Map<String, Value>>,
    pub annotations: Option<Map<String, Value>>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub route: Option<String>,
    /// How long an accepted create may stay pending (not scheduled) before it is deleted and the
    /// next VM type is tried; 0 disables the wait. Only with the fallback (no `vm_id`).
    pub pending_timeout_ms: u64,
}

pub const CREATE_FIELDS: [&str; 11] = [
    "template_id",
    "container_image",
    "vm_id",
    "min_replicas",
    "max_replicas",
    "env_vars",
    "annotations",
    "auth_username",
    "auth_password",
    "route",
    "pending_timeout_seconds",
];

pub const CREATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["template_id"],"properties":{"template_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"deployment_template_id (img_…), see theta.deployments.listTemplates."},"container_image":{"type":"string","description":"Container image; default the template's."},"vm_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Exact VM type. Absent: vm_gt1 when it has capacity, else vm_gt2, else a V100 type."},"min_replicas":{"type":"integer","minimum":0,"maximum":10,"description":"Minimum replicas (default 1)."},"max_replicas":{"type":"integer","minimum":1,"maximum":10,"description":"Maximum replicas (default 1)."},"env_vars":{"type":"object","additionalProperties":{"type":"string"},"description":"Environment variables of the container (string values)."},"annotations":{"type":"object","description":"Deployment annotations."},"auth_username":{"type":"string","description":"Basic-auth user the endpoint will require."},"auth_password":{"type":"string","description":"Redacted in previews."},"route":{"type":"string","enum":["deployment","deployments"],"description":"Route shape, deployment or deployments; probed when absent."},"pending_timeout_seconds":{"type":"number","minimum":0,"maximum":1800,"description":"Without vm_id: how long an accepted create may stay pending (not scheduled) before it is deleted and the next VM type is tried (default 60; 0: do not wait). Must fit in the host's per-call wall clock (THETA_CALL_WALL_CLOCK_MS, less 30 s for the call's other requests); a longer window is refused."}}}"#;

pub fn parse_create(ctx: &Ctx, args: &Args) -> Result<CreateArgs> {
    let a = CreateArgs {
        template_id: args.required_string("template_id")?,
        container_image: args.string("container_image")?,
        vm_id: args.string("vm_id")?,
        min_replicas: args.u32("min_replicas")?,
        max_replicas: args.u32("max_replicas")?,
        env_vars: args.object("env_vars")?,
        annotations: args.object("annotations")?,
        auth_username: args.string("auth_username")?,
        auth_password: args.string("auth_password")?,
        route: parse_route(args)?,
        pending_timeout_ms: window_ms(
            ctx,
            "pending_timeout_seconds",
            args.f64("pending_timeout_seconds")?,
            PENDING_DEFAULT_S,
            0,
        )?,
    };
    check_name("template_id", &a.template_id)?;
    if let Some(v) = &a.vm_id {
        check_name("vm_id", v)?;
    }
    check_range("min_replicas", a.min_replicas, 0, 10)?;
    check_range("max_replicas", a.max_replicas, 1, 10)?;
    if let Some(env) = &a.env_vars
        && let Some((k, _)) = env.iter().find(|(_, v)| !v.is_string())
    {
        return Err(ThetaError::invalid(
            format!("env_vars.{k}"),
            "expected a string value",
        ));
    }
    Ok(a)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub deployment: Deployment,
    pub vm_id: String,
    /// Why this VM type: requested, or which preferred ones had no capacity.
    pub reason: String,
    /// (vm id, what happened), in order.
    pub attempts: Vec<(String, String)>,
    pub route: String,
}

impl ToJson for Created {
    fn to_json(&self) -> Value {
        object(vec![
            ("deployment", self.deployment.to_json()),
            ("vm_id", Value::String(self.vm_id.clone())),
            ("reason", Value::String(self.reason.clone())),
            (
                "attempts",
                Value::Array(
                    self.attempts
                        .iter()
                        .map(|(vm, outcome)| {
                            object(vec![
                                ("vm_id", Value::String(vm.clone())),
                                ("outcome", Value::String(outcome.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("route", Value::String(self.route.clone())),
        ])
    }
}

/// Candidates in order, with the reasons some were skipped: the listed capacity of vm_gt1, vm_gt2,
/// then every V100-backed type.
fn vm_candidates(vms: &[VmType], skipped: &mut Vec<(String, String)>) -> Vec<String> {
    let mut order: Vec<&VmType> = Vec::new();
    for id in PREFERRED_VMS {
        if let Some(v) = vms.iter().find(|v| v.id == id) {
            order.push(v);
        }
    }
    order.extend(vms.iter().filter(|v| v.v100()));
    let mut out = Vec::new();
    for v in order {
        if v.available == Some(0) {
            skipped.push((
                v.id.clone(),
                "skipped: the VM list shows no free capacity".into(),
            ));
        } else if !out.contains(&v.id) {
            out.push(v.id.clone());
        }
    }
    if vms.is_empty() {
        // No list: try the preferred types anyway.
        out = PREFERRED_VMS.iter().map(|s| s.to_string()).collect();
    }
    out
}

/// A create refused for lack of capacity (nothing was created, another type may work).
fn no_capacity(e: &ThetaError) -> bool {
    match e {
        ThetaError::CapacityExhausted { .. } => true,
        ThetaError::Upstream {
            status, message, ..
        } => {
            let m = message.to_ascii_lowercase();
            *status == 409
                || ((400..500).contains(status)
                    && (m.contains("capacity")
                        || m.contains("no instances")
                        || m.contains("not available")))
        }
        _ => false,
    }
}

pub fn create(ctx: &Ctx, args: CreateArgs) -> Result<Created> {
    let project = project(ctx)?;
    let route = working_route(ctx, args.route.clone())?;
    let mut attempts: Vec<(String, String)> = Vec::new();
    let (candidates, requested) = match &args.vm_id {
        Some(vm) => (vec![vm.clone()], true),
        None => {
            let vms = list_vm_types(ctx).unwrap_or_default();
            (vm_candidates(&vms, &mut attempts), false)
        }
    };
    if candidates.is_empty() {
        return Err(ThetaError::CapacityExhausted {
            service: "deployment".into(),
            attempts: 0,
            message: "no VM type has free capacity (vm_gt1, vm_gt2 and the V100 types are full)"
                .into(),
        });
    }
    let client = Client::new(ctx);
    let mut last_error = None;
    for vm in &candidates {
        let mut body = json!({
            "project_id": project,
            "deployment_template_id": args.template_id,
            "vm_id": vm,
            "min_replicas": args.min_replicas.unwrap_or(1),
            "max_replicas": args.max_replicas.unwrap_or(1),
        });
        let optional = [
            (
                "container_image",
                args.container_image.clone().map(Value::String),
            ),
            ("env_vars", args.env_vars.clone().map(Value::Object)),
            ("annotations", args.annotations.clone().map(Value::Object)),
            (
                "auth_username",
                args.auth_username.clone().map(Value::String),
            ),
            (
                "auth_password",
                args.auth_password.clone().map(Value::String),
            ),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                body[k] = v;
            }
        }
        let mut call = Call::post(format!("/{route}"), body).on(Api::Controller);
        // A paid create is never retried blindly; another VM type is tried instead.
        call.retries = Some(0);
        call.service = Some(format!("deployment on {vm}"));
        match client.json(&call) {
            Ok(answer) => {
                let one = answer
                    .as_array()
                    .and_then(|a| a.first())
                    .or_else(|| answer.get("deployment"))
                    .unwrap_or(&answer);
                let mut deployment = Deployment::from_value(one);
                deployment.vm_id.get_or_insert_with(|| vm.clone());
                if !requested && args.pending_timeout_ms > 0 && is_pending(&deployment.status) {
                    match wait_scheduled(ctx, &route, &deployment, args.pending_timeout_ms)? {
                        Some(scheduled) => deployment = scheduled,
                        None => {
                            let why = give_up_pending(
                                ctx,
                                &route,
                                &deployment,
                                vm,
                                args.pending_timeout_ms,
                            )?;
                            attempts.push((vm.clone(), why));
                            continue;
                        }
                    }
                }
                attempts.push((vm.clone(), "created".into()));
                let reason = if requested {
                    format!("{vm} was requested")
                } else if vm == PREFERRED_VMS[0] {
                    format!("{vm} is preferred and had capacity")
                } else {
                    let before: Vec<String> = attempts
                        .iter()
                        .filter(|(v, _)| v != vm)
                        .map(|(v, o)| format!("{v} ({o})"))
                        .collect();
                    format!(
                        "{vm} chosen because the preferred types had no capacity: {}",
                        before.join("; ")
                    )
                };
                ctx.events.emit(Event::Progress {
                    message: format!("deployment created on {vm}"),
                    attempt: attempts.len() as u32,
                });
                return Ok(Created {
                    deployment,
                    vm_id: vm.clone(),
                    reason,
                    attempts,
                    route,
                });
            }
            Err(e) if !requested && no_capacity(&e) => {
                let message = match &e {
                    ThetaError::Upstream { message, .. }
                    | ThetaError::CapacityExhausted { message, .. } => truncate(message, 120),
                    _ => String::new(),
                };
                attempts.push((vm.clone(), format!("no capacity: {message}")));
                ctx.events.emit(Event::Progress {
                    message: format!("{vm} has no capacity, trying the next VM type"),
                    attempt: attempts.len() as u32,
                });
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(ThetaError::CapacityExhausted {
        service: "deployment".into(),
        attempts: attempts.len() as u32,
        message: format!(
            "no VM type had capacity (tried: {}){}",
            attempts
                .iter()
                .map(|(v, o)| format!("{v}: {o}"))
                .collect::<Vec<_>>()
                .join("; "),
            last_error
                .map(|e| format!(" (last: {e})"))
                .unwrap_or_default()
        ),
    })
}

/// A status that says the deployment is accepted but not scheduled on a machine yet.
fn is_pending(status: &Option<String>) -> bool {
    status.as_deref().is_some_and(|s| {
        let s = s.to_ascii_lowercase();
        s.contains("pending") || s.contains("queue") || s.contains("schedul")
    })
}

/// Polls the list until `created` is no longer pending: `Some(it)` as listed then, `None` when it is
/// still pending after `window_ms` of pauses. A deployment that left the list is an error.
fn wait_scheduled(
    ctx: &Ctx,
    route: &str,
    created: &Deployment,
    window_ms: u64,
) -> Result<Option<Deployment>> {
    let interval = poll_interval_ms(window_ms);
    let mut waited = 0u64;
    let mut polls = 0u32;
    while waited < window_ms {
        // Soon at first (most creates schedule at once), then every `interval`.
        let pause = (250u64 << polls.min(8))
            .min(interval)
            .min(window_ms - waited);
        ctx.events.emit(Event::Progress {
            message: format!(
                "{}/{} on {} is pending (not scheduled yet); checking again in {pause} ms",
                created.shard,
                created.suffix,
                created.vm_id.as_deref().unwrap_or("?")
            ),
            attempt: polls + 1,
        });
        ctx.transport.sleep_ms(pause);
        waited += pause;
        polls += 1;
        let (_, all) = list(ctx, Some(route.to_owned()))?;
        match all
            .into_iter()
            .find(|d| d.shard == created.shard && d.suffix == created.suffix)
        {
            Some(d) if !is_pending(&d.status) => return Ok(Some(d)),
            Some(_) => {}
            None => {
                return Err(ThetaError::Upstream {
                    status: 404,
                    message: format!(
                        "the deployment {}/{} was accepted but is gone from the list while pending",
                        created.shard, created.suffix
                    ),
                    retriable: true,
                });
            }
        }
    }
    Ok(None)
}

/// Deletes an attempt that stayed pending; the outcome to record for it. A failed delete is the
/// call's error: the attempt may still exist and bill.
fn give_up_pending(
    ctx: &Ctx,
    route: &str,
    pending: &Deployment,
    vm: &str,
    window_ms: u64,
) -> Result<String> {
    let waited = format!("{:.1} s", window_ms as f64 / 1000.0);
    if pending.shard.is_empty() || pending.suffix.is_empty() {
        return Err(ThetaError::Upstream {
            status: 500,
            message: format!(
                "the create on {vm} stayed pending for {waited} and its answer names no Shard/Suffix \
                 to delete it by: check theta.deployments.list, it may still bill"
            ),
            retriable: false,
        });
    }
    delete(ctx, &pending.shard, &pending.suffix, Some(route.to_owned())).map_err(|e| {
        ThetaError::Upstream {
            status: 500,
            message: format!(
                "the create on {vm} stayed pending for {waited} and deleting it failed ({e}): \
                 it may still exist and bill; delete it with theta.deployments.delete \
                 {{\"shard\":\"{}\",\"suffix\":\"{}\"}}",
                pending.shard, pending.suffix
            ),
            retriable: true,
        }
    })?;
    ctx.events.emit(Event::Progress {
        message: format!("{vm} accepted the create but did not schedule it in {waited}; deleted it, trying the next VM type"),
        attempt: 1,
    });
    Ok(format!(
        "accepted but still pending (not scheduled) after {waited}: deleted {}/{}",
        pending.shard, pending.suffix
    ))
}
