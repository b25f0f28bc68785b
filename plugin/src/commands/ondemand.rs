//! The on-demand model API commands with Theta's official MCP vocabulary: `list_services`, `infer`,
//! `get_request_status`, `get_upload_url`. Answers are read tolerantly: the API's shapes vary between
//! sources (see /work/shared/theta-api-sources.md §2.1, §5).

use super::args::{Args, as_string, check_name, check_range, kind};
use super::{ToJson, object, opt_str, str_list};
use crate::client::{Call, Client, Ctx, encode, truncate};
use crate::config::CHAT_TIMEOUT_MS;
use crate::error::{Result, ThetaError};
use crate::events::Event;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// list_services

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Image,
    Audio,
    Text,
    Video,
    Vision,
    Other,
}

impl Category {
    pub const NAMES: [&'static str; 6] = ["image", "audio", "text", "video", "vision", "other"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "image" => Self::Image,
            "audio" => Self::Audio,
            "text" => Self::Text,
            "video" => Self::Video,
            "vision" => Self::Vision,
            "other" => Self::Other,
            _ => return None,
        })
    }

    /// Theta has no category field: derive it from the alias, as the skill does (§6), first match wins.
    pub fn of_alias(alias: &str) -> Self {
        let a = alias.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| a.contains(w));
        if has(&["whisper", "audio", "voice", "kokoro", "tts"]) {
            Self::Audio
        } else if has(&[
            "flux",
            "sdxl",
            "stable",
            "image",
            "esrgan",
            "instant_id",
            "upscale",
        ]) {
            Self::Image
        } else if has(&["llava", "vision", "blip", "grounding", "dino"]) {
            Self::Vision
        } else if has(&["video", "step_video", "talking_head"]) {
            Self::Video
        } else if has(&[
            "qwen", "gpt", "llama", "glm", "minimax", "llm", "chat", "text",
        ]) {
            Self::Text
        } else {
            Self::Other
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSummary {
    pub alias: String,
    pub name: String,
    pub category: Category,
    pub default_prediction: Option<String>,
    pub predictions: Vec<String>,
    pub variants: Vec<String>,
    /// Input fields of the default prediction, required ones first.
    pub input_fields: Vec<String>,
    pub description: Option<String>,
    /// The default prediction's `instructions` as Theta gives them (text; an object as JSON text).
    pub instructions: Option<String>,
    /// An example `input` for `infer`, typed from each input's declared type and default, built as
    /// Theta's official MCP server builds it.
    pub input_example: Map<String, Value>,
}

pub const LIST_SERVICES_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"category":{"type":"string","enum":["image","audio","text","video","vision","other"],"description":"Only services of this category (derived from the alias)."}}}"#;

pub fn parse_list_services(args: Args) -> Result<Option<Category>> {
    args.allow_only(&["category"])?;
    args.string("category")?
        .map(|c| {
            Category::parse(&c).ok_or_else(|| {
                ThetaError::invalid(
                    "category",
                    format!(
                        "expected one of {}, got `{}`",
                        Category::NAMES.join(", "),
                        truncate(&c, 40)
                    ),
                )
            })
        })
        .transpose()
}

pub fn list_services(ctx: &Ctx, category: Option<Category>) -> Result<Vec<ServiceSummary>> {
    let mut call = Call::get("/service/list?expand=template_id".into());
    call.needs_credential = false;
    let body = Client::new(ctx).json(&call)?;
    let services = body
        .get("services")
        .or(Some(&body))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ThetaError::transport(format!(
                "the catalogue answer has no `services` list: {}",
                truncate(&body.to_string(), 200)
            ))
        })?;
    Ok(services
        .iter()
        .filter(|s| {
            s.get("state")
                .and_then(Value::as_str)
                .is_none_or(|st| st == "public")
        })
        .filter_map(summarize)
        .filter(|s| category.is_none_or(|c| s.category == c))
        .collect())
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Sort key that puts missing ranks/indexes last.
fn rank_of(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::MAX)
}

/// One catalogue entry as a summary; entries without an alias are skipped.
pub fn summarize(service: &Value) -> Option<ServiceSummary> {
    let alias = str_of(service, "alias")?.to_owned();
    let empty = Map::new();
    let predictions_map = service
        .get("predictions")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut predictions: Vec<(&String, &Value)> = predictions_map.iter().collect();
    small_sort(&mut predictions, |a, b| {
        rank_of(a.1, "rank")
            .total_cmp(&rank_of(b.1, "rank"))
            .then_with(|| a.0.cmp(b.0))
    });
    let default_prediction = str_of(service, "default_prediction")
        .map(str::to_owned)
        .or_else(|| predictions.first().map(|(n, _)| (*n).clone()));
    let default = default_prediction
        .as_ref()
        .and_then(|d| predictions_map.get(d))
        .or_else(|| predictions.first().map(|(_, v)| *v));

    let mut variants: Vec<String> = Vec::new();
    let mut add_variant = |v: &str| {
        if !v.is_empty() && !variants.iter().any(|x| x == v) {
            variants.push(v.to_owned());
        }
    };
    if let Some(list) = default
        .and_then(|d| d.get("variants"))
        .and_then(Value::as_array)
    {
        list.iter()
            .filter_map(Value::as_str)
            .for_each(&mut add_variant);
    }
    if let Some(map) = service.get("variant_templates").and_then(Value::as_object) {
        map.keys().for_each(|k| add_variant(k));
    }

    let mut inputs: Vec<(&String, &Value)> = default
        .and_then(|d| d.get("input_vars"))
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    let required = |v: &Value| v.get("required").and_then(Value::as_bool).unwrap_or(false);
    small_sort(&mut inputs, |a, b| {
        required(b.1)
            .cmp(&required(a.1))
            .then_with(|| rank_of(a.1, "index").total_cmp(&rank_of(b.1, "index")))
            .then_with(|| a.0.cmp(b.0))
    });

    let instructions = default.and_then(|d| match d.get("instructions") {
        Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
        _ => None,
    });
    let input_example = inputs
        .iter()
        .map(|(name, var)| ((*name).clone(), example_value(name, var)))
        .collect();
    Some(ServiceSummary {
        instructions,
        input_example,
        name: str_of(service, "name").unwrap_or(&alias).to_owned(),
        category: Category::of_alias(&alias),
        default_prediction,
        predictions: predictions.iter().map(|(n, _)| (*n).clone()).collect(),
        variants,
        input_fields: inputs.iter().map(|(n, _)| (*n).clone()).collect(),
        description: default.and_then(describe_prediction),
        alias,
    })
}

/// The example value of one input, by the official MCP server's rules: strings by name (URLs and file
/// names, the prompt) or their default, other types their default, else a placeholder of the type.
/// A default of `0`, `false` or `""` counts as no default there, and so it does here.
pub(crate) fn example_value(name: &str, var: &Value) -> Value {
    let default = var.get("default").filter(|d| match d {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
    // JSON numbers as JavaScript prints them: `1.0` is `1`.
    let default = default.map(|d| match d.as_f64() {
        Some(f) if d.is_f64() && f.fract() == 0.0 && f.abs() < 9e15 => Value::from(f as i64),
        _ => d.clone(),
    });
    match var.get("type").and_then(Value::as_str).unwrap_or("") {
        "string" if name.contains("url") || name.contains("filename") => {
            Value::String("https://example.com/file".into())
        }
        "string" if name == "prompt" => Value::String("Your prompt here".into()),
        "string" => default.unwrap_or_else(|| Value::String("string value".into())),
        "number" | "integer" => default.unwrap_or_else(|| Value::from(1)),
        "boolean" => default.unwrap_or(Value::Bool(false)),
        "array" => default.unwrap_or_else(|| Value::Array(Vec::new())),
        _ => default.unwrap_or(Value::Null),
    }
}

/// Insertion sort: these lists are short, and the standard sorts add kilobytes per use to the component.
fn small_sort<T>(items: &mut [T], cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && cmp(&items[j - 1], &items[j]) == std::cmp::Ordering::Greater {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// A description from `instructions` (plain text, or a JSON string with a description and/or unit)
/// and the price from `cost` (a number, or `{input, output}` in US cents per unit).
fn describe_prediction(prediction: &Value) -> Option<String> {
    let mut description = None;
    let mut unit = None;
    let parsed;
    let instructions = match prediction.get("instructions") {
        Some(Value::String(text)) => {
            let text = text.trim();
            match serde_json::from_slice::<Value>(text.as_bytes()) {
                Ok(v @ (Value::Object(_) | Value::String(_))) => {
                    parsed = v;
                    Some(&parsed)
                }
                _ => {
                    if !text.is_empty() {
                        description = Some(text.to_owned());
                    }
                    None
                }
            }
        }
        Some(v @ Value::Object(_)) => Some(v),
        _ => None,
    };
    match instructions {
        Some(Value::String(s)) if !s.trim().is_empty() => description = Some(s.trim().to_owned()),
        Some(obj @ Value::Object(_)) => {
            description = str_of(obj, "description").map(str::to_owned);
            unit = str_of(obj, "unit").map(str::to_owned);
        }
        _ => {}
    }
    let per = unit.map(|u| format!(" per {u}")).unwrap_or_default();
    let price = match prediction.get("cost") {
        Some(Value::Number(n)) => Some(format!("cost {n}{per}")),
        Some(Value::Object(c)) => match (c.get("input"), c.get("output")) {
            (Some(i), Some(o)) => Some(format!("cost {i} input / {o} output{per}")),
            (Some(x), None) | (None, Some(x)) => Some(format!("cost {x}{per}")),
            _ => None,
        },
        _ => (!per.is_empty()).then(|| format!("priced{per}")),
    };
    match (description, price) {
        (Some(d), Some(p)) => Some(format!("{d} ({p})")),
        (d, p) => d.or(p),
    }
}

// ---------------------------------------------------------------------------------------------
// infer and get_request_status

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InferArgs {
    pub service: String,
    pub input: Map<String, Value>,
    pub wait: Option<u32>,
    pub prediction: Option<String>,
    pub variant: Option<String>,
    pub webhook: Option<String>,
    /// Poll an unfinished request until it ends (default `THETA_POLL_UNTIL_DONE`, off).
    pub poll_until_done: Option<bool>,
    /// How long to poll (default `THETA_POLL_TIMEOUT_SECONDS`, 120).
    pub poll_timeout_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    pub id: String,
    pub state: String,
    pub service_id: Option<String>,
    pub output: Option<Value>,
    pub error_message: Option<String>,
    pub cost_usd: Option<f64>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
}

/// Seconds Theta holds the request when `wait` is not given (the official MCP's default).
const DEFAULT_WAIT: u32 = 30;

pub const INFER_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["service"],"properties":{
"service":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Service alias from list_services, e.g. `flux`."},
"input":{"type":"object","description":"The service's input object (see the service's input fields). Required unless payload is given."},
"wait":{"type":"integer","minimum":0,"maximum":60,"description":"Seconds to wait for the result; 0 returns at once with a request id to poll. Default 30."},
"prediction":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Prediction method when the service has several."},
"variant":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Service variant, e.g. `quantized`."},
"webhook":{"type":"string","format":"uri","pattern":"^https://","description":"HTTPS URL Theta calls when the request finishes."},
"poll_until_done":{"type":"boolean","description":"When the answer is not final yet, poll it (every THETA_POLL_INTERVAL_SECONDS, default 3 s) until it is, with progress; default THETA_POLL_UNTIL_DONE (off)."},
"poll_timeout_seconds":{"type":"integer","minimum":1,"maximum":3600,"description":"How long to poll (default THETA_POLL_TIMEOUT_SECONDS, 120); wait plus this must fit in the host's per-call wall clock, or the call is refused before anything is sent. A request still running then is returned as it is, to poll with get_request_status."},
"payload":{"type":"object","description":"MCP style: an object holding input (and variant, webhook), or the bare input."},
"options":{"type":"object","additionalProperties":false,"description":"Skill style: wait and prediction.","properties":{"wait":{"type":"integer","minimum":0,"maximum":60,"description":"As wait."},"prediction":{"type":"string","description":"As prediction."}}}}}"#;

pub fn parse_infer(args: Args) -> Result<InferArgs> {
    args.allow_only(&[
        "service",
        "input",
        "wait",
        "prediction",
        "variant",
        "webhook",
        "payload",
        "options",
        "poll_until_done",
        "poll_timeout_seconds",
    ])?;
    let service = args.required_string("service")?;
    let payload = args.object("payload")?;
    let options = args
        .object("options")?
        .map(|o| Args::from_value(Value::Object(o), "options"))
        .transpose()?;
    if let Some(o) = &options {
        o.allow_only(&["wait", "prediction"])
            .map_err(|e| prefix_field("options.", e))?;
    }
    let mut variant = args.string("variant")?;
    let mut webhook = args.string("webhook")?;
    let input = match (args.get("input"), payload) {
        (Some(_), Some(_)) => {
            return Err(ThetaError::invalid(
                "payload",
                "give either input or payload, not both",
            ));
        }
        (Some(v), None) => super::args::as_object("input", v)?,
        (None, Some(mut p)) if p.contains_key("input") => {
            let input = super::args::as_object("payload.input", &p["input"])?;
            for (key, slot) in [("variant", &mut variant), ("webhook", &mut webhook)] {
                if let Some(v) = p.remove(key).filter(|v| !v.is_null()) {
                    let v = as_string(&format!("payload.{key}"), &v)?;
                    slot.get_or_insert(v);
                }
            }
            input
        }
        (None, Some(p)) => p,
        (None, None) => {
            return Err(ThetaError::invalid(
                "input",
                "required; expected a JSON object with the service's input fields",
            ));
        }
    };
    let wait = match args.u32("wait")? {
        Some(w) => Some(w),
        None => options
            .as_ref()
            .map(|o| o.u32("wait"))
            .transpose()
            .map_err(|e| prefix_field("options.", e))?
            .flatten(),
    };
    let prediction = match args.string("prediction")? {
        Some(p) => Some(p),
        None => options
            .as_ref()
            .map(|o| o.string("prediction"))
            .transpose()
            .map_err(|e| prefix_field("options.", e))?
            .flatten(),
    };
    Ok(InferArgs {
        service,
        input,
        wait,
        prediction,
        variant,
        webhook,
        poll_until_done: args.bool("poll_until_done")?,
        poll_timeout_seconds: args.u32("poll_timeout_seconds")?,
    })
}

fn prefix_field(prefix: &str, e: ThetaError) -> ThetaError {
    match e {
        ThetaError::InvalidArgument { field, reason } => {
            ThetaError::invalid(format!("{prefix}{field}"), reason)
        }
        other => other,
    }
}

/// An HTTPS URL with a host, for Theta to call back.
pub fn check_webhook(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| ThetaError::invalid("webhook", "expected an https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || host.contains('@')
        || url.len() > 2048
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ThetaError::invalid(
            "webhook",
            "expected an https:// URL with a host, no user info or spaces, at most 2048 characters",
        ));
    }
    Ok(())
}

fn unknown_service(service: &str) -> String {
    format!("unknown service `{service}`: see list_services for the available aliases")
}

pub fn infer(ctx: &Ctx, mut args: InferArgs) -> Result<InferRequest> {
    check_name("service", &args.service)?;
    check_range("wait", args.wait, 0, 60)?;
    if let Some(p) = &args.prediction {
        check_name("prediction", p)?;
    }
    if let Some(v) = &args.variant {
        check_name("variant", v)?;
    }
    if let Some(w) = &args.webhook {
        check_webhook(w)?;
    }
    check_range("poll_timeout_seconds", args.poll_timeout_seconds, 1, 3600)?;
    // Theta may hold the first request `wait` seconds; the polling window must fit in what is left
    // of the call's wall clock.
    let poll = match args.poll_until_done.unwrap_or(ctx.config.poll.until_done) {
        true => Some(super::readiness::window_ms(
            ctx,
            "poll_timeout_seconds",
            args.poll_timeout_seconds.map(f64::from),
            ctx.config.poll.timeout_ms as f64 / 1000.0,
            u64::from(args.wait.unwrap_or(DEFAULT_WAIT)) * 1000,
        )?),
        false => None,
    };
    let chat = args.input.contains_key("messages");
    // A chat input streams SSE unless told otherwise; `infer` wants the JSON answer.
    if chat && !args.input.contains_key("stream") {
        args.input.insert("stream".into(), Value::Bool(false));
    }
    let wait = args.wait.unwrap_or(DEFAULT_WAIT);
    let mut path = format!("/infer_request/{}?wait={wait}", encode(&args.service));
    if let Some(p) = &args.prediction {
        path.push_str(&format!("&prediction={}", encode(p)));
    }
    let mut body = json!({ "input": args.input });
    if let Some(v) = args.variant {
        body["variant"] = Value::String(v);
    }
    if let Some(w) = args.webhook {
        body["webhook"] = Value::String(w);
    }
    let mut call = Call::post(path, body);
    // Theta holds the request up to `wait` seconds: the time limit must outlast it.
    let base = ctx.config.timeout_ms;
    call.timeout_ms = Some(if chat {
        CHAT_TIMEOUT_MS
    } else {
        base.max((u64::from(wait) + 15) * 1000).min(CHAT_TIMEOUT_MS)
    });
    call.not_found = Some(unknown_service(&args.service));
    call.service = Some(args.service);
    let request = infer_request_from(&Client::new(ctx).json(&call)?)?;
    match poll {
        Some(timeout_ms) => poll_until_done(ctx, request, timeout_ms),
        None => Ok(request),
    }
}

/// A request's state once it will not change any more.
fn is_final(state: &str) -> bool {
    matches!(
        state,
        "success" | "completed" | "error" | "failed" | "cancelled"
    )
}

/// Polls `request` every `THETA_POLL_INTERVAL_SECONDS` until it is final or `timeout_ms` ran out,
/// one progress event per poll; a request still running is returned as it is.
fn poll_until_done(ctx: &Ctx, mut request: InferRequest, timeout_ms: u64) -> Result<InferRequest> {
    let interval = ctx.config.poll.interval_ms.max(1);
    let polls = (timeout_ms / interval).max(1);
    for attempt in 1..=polls {
        if is_final(&request.state) {
            return Ok(request);
        }
        ctx.transport.sleep_ms(interval);
        request = get_request_status(ctx, &request.id)?;
        ctx.events.emit(Event::Progress {
            message: format!(
                "request {}: {} (poll {attempt} of at most {polls}, every {} ms)",
                request.id, request.state, interval
            ),
            attempt: attempt as u32,
        });
    }
    if !is_final(&request.state) {
        ctx.events.emit(Event::Progress {
            message: format!(
                "request {} still {} after {} s of polling: poll it with get_request_status",
                request.id,
                request.state,
                timeout_ms / 1000
            ),
            attempt: polls as u32,
        });
    }
    Ok(request)
}

pub const STATUS_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"description":"Give request_id (or its camelCase spelling requestId).","properties":{
"request_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The inference request id, e.g. `infr_rqst_...` (required unless requestId is given)."},
"requestId":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Same as request_id (camelCase spelling)."}}}"#;

pub fn parse_status(args: Args) -> Result<String> {
    args.allow_only(&["request_id", "requestId"])?;
    match args.first(&["request_id", "requestId"]) {
        Some((name, v)) => as_string(name, v),
        None => Err(ThetaError::invalid(
            "request_id",
            "required; expected the request id string",
        )),
    }
}

pub fn get_request_status(ctx: &Ctx, request_id: &str) -> Result<InferRequest> {
    check_name("request_id", request_id)?;
    let mut call = Call::get(format!("/infer_request/{}", encode(request_id)));
    call.not_found = Some(format!("unknown inference request `{request_id}`"));
    infer_request_from(&Client::new(ctx).json(&call)?)
}

/// `infer_requests[0]` of an answer (or the answer itself when it is a bare request object).
pub fn infer_request_from(body: &Value) -> Result<InferRequest> {
    let r = body
        .get("infer_requests")
        .and_then(|a| a.get(0))
        .or_else(|| body.get("id").map(|_| body))
        .ok_or_else(|| {
            ThetaError::transport(format!(
                "the answer has no infer_requests[0]: {}",
                truncate(&body.to_string(), 200)
            ))
        })?;
    let text = |k: &str| str_of(r, k).map(str::to_owned);
    let id = match r.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ThetaError::transport(
                "the inference request in the answer has no id",
            ));
        }
    };
    let error_message = text("error_message").or_else(|| match r.get("error") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    Ok(InferRequest {
        id,
        state: text("state").unwrap_or_else(|| "unknown".into()),
        service_id: text("service_id"),
        output: r.get("output").filter(|o| !o.is_null()).cloned(),
        error_message,
        cost_usd: r.get("cost_usd").and_then(cost_sum),
        create_time: text("create_time"),
        update_time: text("update_time"),
    })
}

/// A cost given as a number or as `{input, output}`.
pub fn cost_sum(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Object(o) => {
            let i = o.get("input").and_then(Value::as_f64);
            let out = o.get("output").and_then(Value::as_f64);
            if i.is_none() && out.is_none() {
                None
            } else {
                Some(i.unwrap_or(0.0) + out.unwrap_or(0.0))
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// get_upload_url

#[derive(Debug, Clone, PartialEq)]
pub struct UploadUrl {
    pub field: String,
    /// PUT the file's bytes here.
    pub upload_url: String,
    /// Pass this as the field's value in `infer`.
    pub filename: String,
}

pub const UPLOAD_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["service"],"description":"Give the file field as input_field, or several as input_fields (camelCase spellings accepted).","properties":{
"service":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Service alias, e.g. `whisper`."},
"input_field":{"type":"string","description":"The file input field, e.g. `audio_filename` (this or input_fields is required)."},
"inputField":{"type":"string","description":"Same as input_field."},
"input_fields":{"type":"array","items":{"type":"string"},"minItems":1,"description":"Several file input fields, instead of input_field."},
"inputFields":{"type":"array","items":{"type":"string"},"minItems":1,"description":"Same as input_fields."},
"prediction":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Prediction method, when the service has several."}}}"#;

pub fn parse_upload(args: Args) -> Result<(String, Vec<String>, Option<String>)> {
    args.allow_only(&[
        "service",
        "input_field",
        "inputField",
        "input_fields",
        "inputFields",
        "prediction",
    ])?;
    let service = args.required_string("service")?;
    let fields = match args.first(&["input_fields", "inputFields", "input_field", "inputField"]) {
        Some((name, Value::String(s))) => vec![as_string(name, &Value::String(s.clone()))?],
        Some((name, Value::Array(items))) => items
            .iter()
            .enumerate()
            .map(|(i, v)| as_string(&format!("{name}[{i}]"), v))
            .collect::<Result<_>>()?,
        Some((name, other)) => {
            return Err(ThetaError::invalid(
                name,
                format!(
                    "expected a string or a list of strings, got {}",
                    kind(other)
                ),
            ));
        }
        None => {
            return Err(ThetaError::invalid(
                "input_fields",
                "required: give input_field (a string) or input_fields (a list of strings)",
            ));
        }
    };
    Ok((service, fields, args.string("prediction")?))
}

pub fn get_upload_url(
    ctx: &Ctx,
    service: &str,
    fields: &[String],
    prediction: Option<&str>,
) -> Result<Vec<UploadUrl>> {
    check_name("service", service)?;
    if fields.is_empty() {
        return Err(ThetaError::invalid(
            "input_fields",
            "expected at least one input field",
        ));
    }
    let mut unique: Vec<String> = Vec::new();
    for f in fields {
        check_name("input_fields", f)?;
        if !unique.contains(f) {
            unique.push(f.clone());
        }
    }
    let mut path = format!("/infer_request/{}", encode(service));
    if let Some(p) = prediction {
        check_name("prediction", p)?;
        path.push_str(&format!("/{}", encode(p)));
    }
    path.push_str("/input_presigned_urls");
    let mut call = Call::post(path, json!({ "input_fields": unique }));
    call.not_found = Some(unknown_service(service));
    call.service = Some(service.to_owned());
    upload_urls_from(&Client::new(ctx).json(&call)?, &unique)
}

/// Accepts both shapes seen: `{field: {presigned_url, filename}}` (live) and
/// `{urls: {field: {upload_url, filename}}}` (official MCP).
pub fn upload_urls_from(body: &Value, fields: &[String]) -> Result<Vec<UploadUrl>> {
    let map = body.get("urls").filter(|u| u.is_object()).unwrap_or(body);
    fields
        .iter()
        .map(|field| {
            let entry = map.get(field).ok_or_else(|| {
                let seen: Vec<&String> = map
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                ThetaError::transport(format!(
                    "the answer has no upload URL for `{field}` (it has: {seen:?})"
                ))
            })?;
            let url = str_of(entry, "presigned_url")
                .or_else(|| str_of(entry, "upload_url"))
                .or_else(|| entry.as_str())
                .ok_or_else(|| {
                    ThetaError::transport(format!("the upload entry for `{field}` has no URL"))
                })?;
            let filename = str_of(entry, "filename")
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    // No filename: the object name in the presigned URL is what Theta expects.
                    url.split('?')
                        .next()
                        .and_then(|p| p.rsplit('/').next())
                        .unwrap_or(field)
                        .to_owned()
                });
            Ok(UploadUrl {
                field: field.clone(),
                upload_url: url.to_owned(),
                filename,
            })
        })
        .collect()
}

impl ToJson for ServiceSummary {
    fn to_json(&self) -> Value {
        object(vec![
            ("alias", Value::String(self.alias.clone())),
            ("name", Value::String(self.name.clone())),
            ("category", Value::String(self.category.name().into())),
            ("default_prediction", opt_str(&self.default_prediction)),
            ("predictions", str_list(&self.predictions)),
            ("variants", str_list(&self.variants)),
            ("input_fields", str_list(&self.input_fields)),
            ("description", opt_str(&self.description)),
            ("instructions", opt_str(&self.instructions)),
            ("input_example", Value::Object(self.input_example.clone())),
        ])
    }
}

impl ToJson for InferRequest {
    fn to_json(&self) -> Value {
        object(vec![
            ("id", Value::String(self.id.clone())),
            ("state", Value::String(self.state.clone())),
            ("service_id", opt_str(&self.service_id)),
            ("output", self.output.clone().unwrap_or(Value::Null)),
            ("error_message", opt_str(&self.error_message)),
            ("cost_usd", self.cost_usd.map_or(Value::Null, Value::from)),
            ("create_time", opt_str(&self.create_time)),
            ("update_time", opt_str(&self.update_time)),
        ])
    }
}

impl ToJson for UploadUrl {
    fn to_json(&self) -> Value {
        object(vec![
            ("field", Value::String(self.field.clone())),
            ("upload_url", Value::String(self.upload_url.clone())),
            ("filename", Value::String(self.filename.clone())),
        ])
    }
}
