//! Dedicated deployments on the controller (`controller.thetaedgecloud.com`, `x-api-key`, project
//! scoped) and VM types on the platform API (theta-api-sources.md §2.2, §2.3): list, get, delete, VM
//! types, templates and the singular/plural route probe. Create (VM fallback), start/stop and the
//! disposable validation live in their own files.

mod create;
mod lifecycle;
mod validate;

pub use create::{CREATE_FIELDS, CREATE_SCHEMA, CreateArgs, Created, create, parse_create};
pub use lifecycle::{LifecycleAction, change_state};
pub use validate::{VALIDATE_SCHEMA, ValidateArgs, parse_validate, validate_disposable};

use super::args::{Args, as_object, check_name, check_range};
use super::{ToJson, field, items, object, opt_str, setting, text};
use crate::client::{Api, Call, Client, Ctx, encode, truncate};
use crate::config::PROJECT_ID_VAR;
use crate::error::{Result, ThetaError};
use serde_json::{Map, Value};

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

pub(crate) fn project(ctx: &Ctx) -> Result<String> {
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
pub(crate) fn working_route(ctx: &Ctx, route: Option<String>) -> Result<String> {
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

/// `env_vars` etc. given as JSON text by typed callers.
pub fn object_arg(field_name: &str, text: Option<String>) -> Result<Option<Map<String, Value>>> {
    text.map(|t| {
        let v: Value = serde_json::from_slice(t.as_bytes())
            .map_err(|e| ThetaError::invalid(field_name, format!("not valid JSON: {e}")))?;
        as_object(field_name, &v)
    })
    .transpose()
}
