//! Dedicated deployments on the controller (`controller.thetaedgecloud.com`, `x-api-key`, project
//! scoped) and VM types on the platform API (theta-api-sources.md §2.2, §2.3): list, get, create (VM
//! fallback), delete, VM types, templates, the singular/plural route probe, and a disposable
//! create → ready → probe → delete validation that always deletes what it created.

use super::args::{Args, as_object, check_name, check_range};
use super::{ToJson, field, items, object, opt_str, setting, str_list, text};
use crate::client::{Api, Call, Client, Ctx, encode, truncate};
use crate::config::PROJECT_ID_VAR;
use crate::error::{Result, ThetaError};
use crate::events::Event;
use serde_json::{Map, Value, json};

/// The two route shapes projects answer (§8.7): singular first (live-verified), then plural.
pub const ROUTES: [&str; 2] = ["deployment", "deployments"];
/// VM types in order of preference: cheapest T4 first, then the second T4 type; V100 types after.
pub const PREFERRED_VMS: [&str; 2] = ["vm_gt1", "vm_gt2"];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Deployment {
    pub shard: String,
    pub suffix: String,
    pub base_id: Option<String>,
    pub name: Option<String>,
    pub template_name: Option<String>,
    pub endpoint: Option<String>,
    pub status: Option<String>,
    pub vm_id: Option<String>,
    pub region: Option<String>,
}

impl Deployment {
    pub fn from_value(v: &Value) -> Self {
        let t = |names: &[&str]| text(v, names);
        Deployment {
            shard: t(&["Shard"]).unwrap_or_default(),
            suffix: t(&["Suffix"]).unwrap_or_default(),
            base_id: t(&["BaseID", "base_id", "id"]),
            name: t(&["Name", "DisplayName"]),
            template_name: t(&["TemplateName"]),
            endpoint: t(&["Endpoint", "endpoint_url", "url"]),
            status: t(&["EndpointStatus", "Status", "state"]),
            vm_id: t(&["VmID", "vm_id", "Vm", "MachineType"]),
            region: t(&["Region"]),
        }
    }
}

impl ToJson for Deployment {
    fn to_json(&self) -> Value {
        object(vec![
            ("shard", Value::String(self.shard.clone())),
            ("suffix", Value::String(self.suffix.clone())),
            ("base_id", opt_str(&self.base_id)),
            ("name", opt_str(&self.name)),
            ("template_name", opt_str(&self.template_name)),
            ("endpoint", opt_str(&self.endpoint)),
            ("status", opt_str(&self.status)),
            ("vm_id", opt_str(&self.vm_id)),
            ("region", opt_str(&self.region)),
        ])
    }
}

fn project(ctx: &Ctx) -> Result<String> {
    setting(&ctx.config.project_id, PROJECT_ID_VAR)
}

/// `route` argument: `deployment` or `deployments`.
pub fn parse_route(args: &Args) -> Result<Option<String>> {
    match args.string("route")? {
        Some(r) if ROUTES.contains(&r.as_str()) => Ok(Some(r)),
        Some(r) => Err(ThetaError::invalid(
            "route",
            format!(
                "expected `deployment` or `deployments`, got `{}`",
                truncate(&r, 40)
            ),
        )),
        None => Ok(None),
    }
}

fn list_call(noun: &str, project: &str) -> Call {
    Call::get(format!("/{noun}/list?project_id={}", encode(project))).on(Api::Controller)
}

// ---------------------------------------------------------------------------------------------
// route probe

#[derive(Debug, Clone, PartialEq)]
pub struct RouteAttempt {
    pub route: String,
    pub status: Option<u16>,
    pub ok: bool,
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteProbe {
    pub route: Option<String>,
    pub attempts: Vec<RouteAttempt>,
}

impl ToJson for RouteProbe {
    fn to_json(&self) -> Value {
        object(vec![
            ("route", opt_str(&self.route)),
            (
                "attempts",
                Value::Array(
                    self.attempts
                        .iter()
                        .map(|a| {
                            object(vec![
                                ("route", Value::String(a.route.clone())),
                                ("status", a.status.map_or(Value::Null, Value::from)),
                                ("ok", Value::Bool(a.ok)),
                                ("message", opt_str(&a.message)),
                            ])
                        })
                        .collect(),
                ),
            ),
        ])
    }
}

/// Tries `GET /deployment/list`, then `/deployments/list`; the first that answers 2xx wins. Only a
/// 404/405 moves on to the other shape; any other error (bad key, project) is the answer.
pub fn route_probe(ctx: &Ctx) -> Result<RouteProbe> {
    let project = project(ctx)?;
    let client = Client::new(ctx);
    let mut attempts = Vec::new();
    for noun in ROUTES {
        let mut call = list_call(noun, &project);
        call.retries = Some(0);
        match client.json(&call) {
            Ok(_) => {
                attempts.push(RouteAttempt {
                    route: noun.into(),
                    status: Some(200),
                    ok: true,
                    message: None,
                });
                return Ok(RouteProbe {
                    route: Some(noun.into()),
                    attempts,
                });
            }
            Err(ThetaError::Upstream {
                status: status @ (404 | 405),
                message,
                ..
            }) => attempts.push(RouteAttempt {
                route: noun.into(),
                status: Some(status),
                ok: false,
                message: Some(message),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(RouteProbe {
        route: None,
        attempts,
    })
}

/// The route shape to use: the caller's, else the probed one; an error when neither answers.
fn working_route(ctx: &Ctx, route: Option<String>) -> Result<String> {
    if let Some(r) = route {
        return Ok(r);
    }
    let probe = route_probe(ctx)?;
    probe.route.ok_or_else(|| ThetaError::Upstream {
        status: 404,
        message: "neither /deployment/list nor /deployments/list answered for this project; check \
                  THETA_EC_PROJECT_ID"
            .into(),
        retriable: false,
    })
}

// ---------------------------------------------------------------------------------------------
// list, get, delete

pub const LIST_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"route":{"type":"string","enum":["deployment","deployments"],"description":"Route shape (see theta.deployments.routeProbe); probed when absent."}}}"#;

pub fn list(ctx: &Ctx, route: Option<String>) -> Result<(String, Vec<Deployment>)> {
    let project = project(ctx)?;
    let route = working_route(ctx, route)?;
    let body = Client::new(ctx).json(&list_call(&route, &project))?;
    let list = items(&body, &["deployments", "items"])
        .into_iter()
        .map(Deployment::from_value)
        .collect();
    Ok((route, list))
}

pub const GET_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["shard","suffix"],"properties":{"shard":{"type":["string","integer"],"description":"The deployment's Shard."},"suffix":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The deployment's Suffix."},"route":{"type":"string","enum":["deployment","deployments"],"description":"Route shape; probed when absent."}}}"#;

/// `shard` (a string or a number) and `suffix`, both checked as path segments.
pub fn parse_target(args: &Args) -> Result<(String, String)> {
    let shard = match args.get("shard") {
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => args.required_string("shard")?,
        None => {
            return Err(ThetaError::invalid(
                "shard",
                "required; the deployment's Shard",
            ));
        }
    };
    let suffix = args.required_string("suffix")?;
    check_name("shard", &shard)?;
    check_name("suffix", &suffix)?;
    Ok((shard, suffix))
}

/// The list has every field; there is no single-deployment read in the controller API.
pub fn get(ctx: &Ctx, shard: &str, suffix: &str, route: Option<String>) -> Result<Deployment> {
    let (_, all) = list(ctx, route)?;
    all.into_iter()
        .find(|d| d.shard == shard && d.suffix == suffix)
        .ok_or_else(|| ThetaError::Upstream {
            status: 404,
            message: format!(
                "no deployment {shard}/{suffix} in this project: see theta.deployments.list"
            ),
            retriable: false,
        })
}

pub fn delete(ctx: &Ctx, shard: &str, suffix: &str, route: Option<String>) -> Result<Value> {
    check_name("shard", shard)?;
    check_name("suffix", suffix)?;
    let project = project(ctx)?;
    let route = working_route(ctx, route)?;
    let mut call = Call::get(format!(
        "/{route}/{}/{}?project_id={}",
        encode(shard),
        encode(suffix),
        encode(&project)
    ))
    .on(Api::Controller)
    .method("DELETE");
    call.not_found = Some(format!("no deployment {shard}/{suffix} in this project"));
    let mut response = Client::new(ctx).send(&call)?;
    // The body is not documented; it is read and ignored.
    let _ = response.read_to_end(64 * 1024);
    Ok(object(vec![
        ("deleted", Value::Bool(true)),
        ("shard", Value::String(shard.into())),
        ("suffix", Value::String(suffix.into())),
        ("route", Value::String(route)),
    ]))
}

// ---------------------------------------------------------------------------------------------
// VM types and templates

#[derive(Debug, Clone, PartialEq)]
pub struct VmType {
    pub id: String,
    pub name: Option<String>,
    pub gpu: Option<String>,
    /// Free capacity when the list says so; `None` when it does not.
    pub available: Option<u32>,
    pub price_per_hour_usd: Option<f64>,
}

impl VmType {
    fn v100(&self) -> bool {
        let has = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains("V100"));
        self.id.starts_with("vm_gv") || has(&self.name) || has(&self.gpu)
    }
}

impl ToJson for VmType {
    fn to_json(&self) -> Value {
        object(vec![
            ("id", Value::String(self.id.clone())),
            ("name", opt_str(&self.name)),
            ("gpu", opt_str(&self.gpu)),
            ("available", self.available.map_or(Value::Null, Value::from)),
            (
                "price_per_hour_usd",
                self.price_per_hour_usd.map_or(Value::Null, Value::from),
            ),
        ])
    }
}

pub fn list_vm_types(ctx: &Ctx) -> Result<Vec<VmType>> {
    let mut call = Call::get("/resource/vm/list".into()).on(Api::Platform);
    // The VM catalogue is public (the skill calls it without a key).
    call.needs_credential = false;
    let body = Client::new(ctx).json(&call)?;
    Ok(items(&body, &["vms", "vm_types", "resources", "machines"])
        .into_iter()
        .filter_map(|v| {
            let available = match field(v, &["available", "available_count", "capacity", "free"]) {
                Some(Value::Number(n)) => n.as_u64().map(|n| n.min(u32::MAX as u64) as u32),
                Some(Value::Bool(b)) => Some(u32::from(*b)),
                _ => None,
            };
            Some(VmType {
                id: text(v, &["id", "vm_id"])?,
                name: text(v, &["name", "display_name"]),
                gpu: text(v, &["gpu", "gpu_model", "gpu_type"]),
                available,
                price_per_hour_usd: field(
                    v,
                    &["price_per_hour", "price_per_hour_usd", "hourly_price"],
                )
                .and_then(Value::as_f64),
            })
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub category: Option<String>,
    pub container_image: Option<String>,
}

impl ToJson for Template {
    fn to_json(&self) -> Value {
        object(vec![
            ("id", Value::String(self.id.clone())),
            ("name", Value::String(self.name.clone())),
            ("category", opt_str(&self.category)),
            ("container_image", opt_str(&self.container_image)),
        ])
    }
}

pub const TEMPLATES_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"category":{"type":"string","enum":["serving","prototyping"],"description":"Standard templates of this category (default serving)."},"custom":{"type":"boolean","description":"The project's custom templates instead of the standard ones."},"page":{"type":"integer","minimum":0,"description":"Page number."},"number":{"type":"integer","minimum":1,"maximum":100,"description":"Items per page."}}}"#;

pub fn parse_templates(args: Args) -> Result<(Option<String>, bool, u32, u32)> {
    args.allow_only(&["category", "custom", "page", "number"])?;
    let category = args.string("category")?;
    if let Some(c) = &category
        && c != "serving"
        && c != "prototyping"
    {
        return Err(ThetaError::invalid(
            "category",
            format!("expected serving or prototyping, got `{}`", truncate(c, 40)),
        ));
    }
    let number = args.u32("number")?;
    check_range("number", number, 1, 100)?;
    Ok((
        category,
        args.bool("custom")?.unwrap_or(false),
        args.u32("page")?.unwrap_or(0),
        number.unwrap_or(50),
    ))
}

pub fn list_templates(
    ctx: &Ctx,
    category: Option<&str>,
    custom: bool,
    page: u32,
    number: u32,
) -> Result<Vec<Template>> {
    let path = if custom {
        format!(
            "/deployment_template/list_custom_templates?project_id={}",
            encode(&project(ctx)?)
        )
    } else {
        format!(
            "/deployment_template/list_standard_templates?category={}&page={page}&number={number}",
            encode(category.unwrap_or("serving"))
        )
    };
    let body = Client::new(ctx).json(&Call::get(path).on(Api::Controller))?;
    Ok(items(&body, &["templates"])
        .into_iter()
        .filter_map(|t| {
            Some(Template {
                id: text(t, &["id"])?,
                name: text(t, &["name"]).unwrap_or_default(),
                category: text(t, &["category"]),
                container_image: text(t, &["container_image", "image"]).or_else(|| {
                    field(t, &["container_images"])
                        .and_then(|a| a.get(0))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }),
            })
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// create, with VM fallback

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
}

pub const CREATE_FIELDS: [&str; 10] = [
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
];

pub const CREATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["template_id"],"properties":{"template_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"deployment_template_id (img_…), see theta.deployments.listTemplates."},"container_image":{"type":"string","description":"Container image; default the template's."},"vm_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Exact VM type. Absent: vm_gt1 when it has capacity, else vm_gt2, else a V100 type."},"min_replicas":{"type":"integer","minimum":0,"maximum":10,"description":"Minimum replicas (default 1)."},"max_replicas":{"type":"integer","minimum":1,"maximum":10,"description":"Maximum replicas (default 1)."},"env_vars":{"type":"object","additionalProperties":{"type":"string"},"description":"Environment variables of the container (string values)."},"annotations":{"type":"object","description":"Deployment annotations."},"auth_username":{"type":"string","description":"Basic-auth user the endpoint will require."},"auth_password":{"type":"string","description":"Redacted in previews."},"route":{"type":"string","enum":["deployment","deployments"],"description":"Route shape, deployment or deployments; probed when absent."}}}"#;

pub fn parse_create(args: &Args) -> Result<CreateArgs> {
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
            "no VM type had capacity: {}{}",
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

// ---------------------------------------------------------------------------------------------
// readiness (shared with theta.inference.ready) and validateDisposable

#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    pub probe: String,
    pub path: String,
    pub statuses: Vec<u16>,
    pub elapsed_ms: u64,
    /// The probe's answer once ready (model list or Gradio config).
    pub answer: Option<Value>,
}

impl ToJson for Readiness {
    fn to_json(&self) -> Value {
        object(vec![
            ("ready", Value::Bool(self.ready)),
            ("probe", Value::String(self.probe.clone())),
            ("path", Value::String(self.path.clone())),
            ("attempts", Value::from(self.statuses.len())),
            (
                "statuses",
                Value::Array(self.statuses.iter().map(|s| Value::from(*s)).collect()),
            ),
            ("elapsed_ms", Value::from(self.elapsed_ms)),
            ("answer", self.answer.clone().unwrap_or(Value::Null)),
        ])
    }
}

pub fn probe_path(probe: &str) -> Result<&'static str> {
    match probe {
        "openai" => Ok("/v1/models"),
        "gradio" => Ok("/config"),
        other => Err(ThetaError::invalid(
            "probe",
            format!("expected openai or gradio, got `{}`", truncate(other, 40)),
        )),
    }
}

/// Polls `api` with the probe until it answers 2xx or `timeout_ms` passes. Warm-up answers (404, 401,
/// 5xx, broken connections) are expected and waited out; one attempt per poll, no hidden retries.
pub fn wait_ready(
    ctx: &Ctx,
    api: Api,
    probe: &str,
    timeout_ms: u64,
    interval_ms: u64,
) -> Result<Readiness> {
    let path = probe_path(probe)?;
    let client = Client::new(ctx);
    let mut statuses = Vec::new();
    let mut waited = 0u64;
    loop {
        let mut call = Call::get(path.into()).on(api.clone());
        call.retries = Some(0);
        call.timeout_ms = Some(ctx.config.timeout_ms.min(30_000));
        let outcome = client.json(&call);
        let status = match &outcome {
            Ok(_) => 200,
            Err(ThetaError::Upstream { status, .. }) => *status,
            Err(ThetaError::Transport { .. } | ThetaError::Timeout { .. }) => 0,
            Err(e) => return Err(e.clone()),
        };
        statuses.push(status);
        if let Ok(answer) = outcome {
            return Ok(Readiness {
                ready: true,
                probe: probe.into(),
                path: path.into(),
                statuses,
                elapsed_ms: waited,
                answer: Some(answer),
            });
        }
        if waited >= timeout_ms {
            let shown: Vec<String> = statuses
                .iter()
                .map(|s| {
                    if *s == 0 {
                        "no answer".into()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            let auth = if status == 401 || status == 403 {
                "; the endpoint refused the credential: check THETA_INFERENCE_AUTH_TOKEN or THETA_INFERENCE_AUTH_USER / _PASS"
            } else {
                ""
            };
            return Err(ThetaError::Timeout {
                message: format!(
                    "GET {path} was not ready after {} ms ({} polls: {}){auth}",
                    waited,
                    statuses.len(),
                    shown.join(", ")
                ),
            });
        }
        ctx.events.emit(Event::Progress {
            message: format!(
                "GET {path}: {status}, not ready yet; polling again in {interval_ms} ms"
            ),
            attempt: statuses.len() as u32,
        });
        let pause = interval_ms.min(timeout_ms - waited).max(1);
        ctx.transport.sleep_ms(pause);
        waited += pause;
    }
}

/// `interval_seconds` / `timeout_seconds` style numbers as milliseconds, range-checked.
pub fn seconds_ms(args: &Args, name: &str, default_s: f64, min: f64, max: f64) -> Result<u64> {
    let v = args.f64(name)?;
    check_range(name, v, min, max)?;
    Ok((v.unwrap_or(default_s) * 1000.0) as u64)
}

pub const VALIDATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["template_id"],"properties":{"template_id":{"type":"string","description":"deployment_template_id of a serving template."},"container_image":{"type":"string","description":"Container image; default the template's."},"vm_id":{"type":"string","description":"Exact VM type; absent: vm_gt1 when it has capacity, else vm_gt2, else a V100 type."},"env_vars":{"type":"object","description":"Environment variables of the container (string values)."},"annotations":{"type":"object","description":"Deployment annotations."},"route":{"type":"string","enum":["deployment","deployments"],"description":"Route shape, deployment or deployments; probed when absent."},"probe":{"type":"string","enum":["openai","gradio"],"description":"openai: GET /v1/models; gradio: GET /config. Default openai."},"ready_timeout_seconds":{"type":"number","minimum":0,"maximum":1800,"description":"How long to wait for readiness (default 120)."},"interval_seconds":{"type":"number","minimum":0.01,"maximum":60,"description":"Between readiness polls (default 10)."}}}"#;

pub struct ValidateArgs {
    pub create: CreateArgs,
    pub probe: String,
    pub timeout_ms: u64,
    pub interval_ms: u64,
}

pub fn parse_validate(args: Args) -> Result<ValidateArgs> {
    let mut allowed = CREATE_FIELDS.to_vec();
    allowed.retain(|f| !f.starts_with("auth_") && *f != "min_replicas" && *f != "max_replicas");
    allowed.extend(["probe", "ready_timeout_seconds", "interval_seconds"]);
    args.allow_only(&allowed)?;
    let probe = args.string("probe")?.unwrap_or_else(|| "openai".into());
    probe_path(&probe)?;
    Ok(ValidateArgs {
        create: parse_create(&args)?,
        probe,
        timeout_ms: seconds_ms(&args, "ready_timeout_seconds", 120.0, 0.0, 1800.0)?,
        interval_ms: seconds_ms(&args, "interval_seconds", 10.0, 0.01, 60.0)?,
    })
}

/// Create one disposable deployment, wait until it is ready, probe it, delete it. The delete runs
/// whatever happened before it; the answer says whether anything was left behind.
pub fn validate_disposable(ctx: &Ctx, args: ValidateArgs) -> Result<Value> {
    let mut steps: Vec<String> = Vec::new();
    let created = create(ctx, args.create.clone())?;
    let d = created.deployment.clone();
    steps.push(format!(
        "created {}/{} on {}",
        d.shard, d.suffix, created.vm_id
    ));
    // Everything between create and delete is collected, never returned early.
    let checked: Result<Readiness> = (|| {
        let endpoint = d.endpoint.clone().ok_or_else(|| {
            ThetaError::transport("the created deployment has no Endpoint to probe")
        })?;
        let base =
            crate::config::validate_base_url(&endpoint).map_err(|why| ThetaError::Denied {
                reason: format!(
                    "the deployment's endpoint `{endpoint}` is not a Theta HTTPS host: {why}"
                ),
            })?;
        wait_ready(
            ctx,
            Api::Public(base),
            &args.probe,
            args.timeout_ms,
            args.interval_ms,
        )
    })();
    match &checked {
        Ok(r) => steps.push(format!(
            "ready after {} polls ({} ms); probe GET {} answered",
            r.statuses.len(),
            r.elapsed_ms,
            r.path
        )),
        Err(e) => steps.push(format!("not ready: {e}")),
    }
    let deleted = if d.shard.is_empty() || d.suffix.is_empty() {
        Err(ThetaError::transport(
            "the created deployment has no Shard/Suffix to delete it by",
        ))
    } else {
        delete(ctx, &d.shard, &d.suffix, Some(created.route.clone()))
    };
    // Verify: it must be gone from the list.
    let left_over = match &deleted {
        Ok(_) => {
            steps.push(format!("deleted {}/{}", d.shard, d.suffix));
            list(ctx, Some(created.route.clone()))
                .map(|(_, all)| {
                    all.iter()
                        .any(|x| x.shard == d.shard && x.suffix == d.suffix)
                })
                .unwrap_or(false)
        }
        Err(e) => {
            steps.push(format!("DELETE FAILED: {e}"));
            true
        }
    };
    if left_over {
        return Err(ThetaError::Upstream {
            status: match &deleted {
                Err(ThetaError::Upstream { status, .. }) => *status,
                _ => 500,
            },
            message: format!(
                "the disposable deployment {}/{} may still exist and bill: delete it with \
                 theta.deployments.delete {{\"shard\":\"{}\",\"suffix\":\"{}\"}} (steps: {})",
                d.shard,
                d.suffix,
                d.shard,
                d.suffix,
                steps.join("; ")
            ),
            retriable: true,
        });
    }
    let readiness = match checked {
        Ok(r) => r,
        Err(e) => {
            let message = format!(
                "{e}; the disposable deployment was deleted (steps: {})",
                steps.join("; ")
            );
            return Err(match e {
                ThetaError::Timeout { .. } => ThetaError::Timeout { message },
                ThetaError::Denied { .. } => ThetaError::Denied { reason: message },
                _ => ThetaError::transport(message),
            });
        }
    };
    Ok(object(vec![
        ("ok", Value::Bool(true)),
        ("deployment", d.to_json()),
        ("vm_id", Value::String(created.vm_id)),
        ("vm_reason", Value::String(created.reason)),
        ("readiness", readiness.to_json()),
        ("deleted", Value::Bool(true)),
        ("steps", str_list(&steps)),
    ]))
}

/// `env_vars` etc. given as JSON text by typed callers.
pub fn object_arg(field_name: &str, text: Option<String>) -> Result<Option<Map<String, Value>>> {
    text.map(|t| {
        let v: Value = serde_json::from_slice(t.as_bytes())
            .map_err(|e| ThetaError::invalid(field_name, format!("not valid JSON: {e}")))?;
        as_object(field_name, &v)
    })
    .transpose()
}
