//! A dedicated deployment's own endpoint (theta-api-sources.md §2.6): readiness, models, chat. The
//! endpoint comes only from `THETA_INFERENCE_ENDPOINT` (host configuration), HTTPS under
//! `thetaedgecloud.com` / `onthetaedgecloud.com`; no argument can change it.

use super::args::{Args, as_string};
use super::chat::{self, ChatReply};
use super::readiness::{
    self, Readiness, WARMUP_STATUSES, ride_out_warmup, seconds_ms, warmup_status, window_ms,
};
use super::{ToJson, object, opt_str, setting, text};
use crate::client::{Api, Call, Client, Ctx};
use crate::config::INFERENCE_ENDPOINT_VAR;
use crate::error::{Result, ThetaError};
use serde_json::{Value, json};

/// The configured endpoint, validated.
pub fn endpoint(ctx: &Ctx) -> Result<Api> {
    let raw = setting(&ctx.config.inference_endpoint, INFERENCE_ENDPOINT_VAR)?;
    let base = crate::config::validate_base_url(&raw).map_err(|why| {
        ThetaError::invalid(
            INFERENCE_ENDPOINT_VAR,
            format!("{why}: the endpoint must be https:// under thetaedgecloud.com or onthetaedgecloud.com"),
        )
    })?;
    let host = base["https://".len()..].split('/').next().unwrap_or("");
    if !host.contains('.') || host == "thetaedgecloud.com" || host == "onthetaedgecloud.com" {
        return Err(ThetaError::invalid(
            INFERENCE_ENDPOINT_VAR,
            "expected a deployment's own host, e.g. https://name-…tec-s1.onthetaedgecloud.com",
        ));
    }
    Ok(Api::Inference(base))
}

/// Refuses any attempt to pass the endpoint per call.
fn no_endpoint_arg(args: &Args) -> Result<()> {
    for name in ["endpoint", "url", "base_url"] {
        if args.get(name).is_some() {
            return Err(ThetaError::invalid(
                name,
                "the endpoint is never taken from arguments: it is THETA_INFERENCE_ENDPOINT in the host's configuration",
            ));
        }
    }
    Ok(())
}

pub const READY_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"probe":{"type":"string","enum":["openai","gradio"],"description":"openai: GET /v1/models; gradio: GET /config. Default openai."},"timeout_seconds":{"type":"number","minimum":0,"maximum":1800,"description":"How long to ride out warm-up (404, 502, ...) before failing; default 120."},"interval_seconds":{"type":"number","minimum":0.01,"maximum":60,"description":"Between polls; default 5."}}}"#;

pub fn parse_ready(ctx: &Ctx, args: Args) -> Result<(String, u64, u64)> {
    no_endpoint_arg(&args)?;
    args.allow_only(&["probe", "timeout_seconds", "interval_seconds"])?;
    let probe = args.string("probe")?.unwrap_or_else(|| "openai".into());
    readiness::probe_path(&probe)?;
    Ok((
        probe,
        window_ms(
            ctx,
            "timeout_seconds",
            args.f64("timeout_seconds")?,
            120.0,
            0,
        )?,
        seconds_ms(&args, "interval_seconds", 5.0, 0.01, 60.0)?,
    ))
}

pub fn ready(ctx: &Ctx, probe: &str, timeout_ms: u64, interval_ms: u64) -> Result<Readiness> {
    let api = endpoint(ctx)?;
    readiness::wait_ready(ctx, api, probe, timeout_ms, interval_ms, None)
}

/// How long models and chat ride out a warming endpoint (404/502/503), and how often they try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warmup {
    pub window_ms: u64,
    pub interval_ms: u64,
}

/// The warm-up arguments of models and chat; the window must fit the host's per-call wall clock.
pub const WARMUP_FIELDS: [&str; 2] = ["ready_timeout_seconds", "interval_seconds"];

fn parse_warmup(ctx: &Ctx, args: &Args) -> Result<Warmup> {
    Ok(Warmup {
        window_ms: window_ms(
            ctx,
            "ready_timeout_seconds",
            args.f64("ready_timeout_seconds")?,
            120.0,
            0,
        )?,
        interval_ms: seconds_ms(args, "interval_seconds", 5.0, 0.01, 60.0)?,
    })
}

/// The typed path's warm-up values, through the same checks.
pub fn warmup_of(ctx: &Ctx, window_s: Option<f64>, interval_s: Option<f64>) -> Result<Warmup> {
    let mut m = serde_json::Map::new();
    if let Some(w) = window_s {
        m.insert("ready_timeout_seconds".into(), json!(w));
    }
    if let Some(i) = interval_s {
        m.insert("interval_seconds".into(), json!(i));
    }
    parse_warmup(ctx, &Args::from_value(Value::Object(m), "args")?)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub id: String,
    pub owned_by: Option<String>,
}

impl ToJson for Model {
    fn to_json(&self) -> Value {
        object(vec![
            ("id", Value::String(self.id.clone())),
            ("owned_by", opt_str(&self.owned_by)),
        ])
    }
}

pub const NO_ARGS_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{}}"#;

/// The warm-up properties shared by the models and chat schemas.
macro_rules! warmup_properties {
    () => {
        r#""ready_timeout_seconds":{"type":"number","minimum":0,"maximum":1800,"description":"How long to ride out a warming endpoint (404, 502, 503) before failing; default 120. Must fit in the host's per-call wall clock (THETA_CALL_WALL_CLOCK_MS, less 30 s for the call's requests): a longer window is refused, the default is shortened to fit."},"interval_seconds":{"type":"number","minimum":0.01,"maximum":60,"description":"Between attempts while warming up; default 5."}"#
    };
}

pub const MODELS_SCHEMA: &str = concat!(
    r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"#,
    warmup_properties!(),
    "}}"
);

pub fn parse_models(ctx: &Ctx, args: Args) -> Result<Warmup> {
    no_endpoint_arg(&args)?;
    args.allow_only(&WARMUP_FIELDS)?;
    parse_warmup(ctx, &args)
}

pub fn models(ctx: &Ctx, wait: &Warmup) -> Result<Vec<Model>> {
    let api = endpoint(ctx)?;
    let client = Client::new(ctx);
    let body = ride_out_warmup(
        ctx,
        "GET /v1/models",
        wait.window_ms,
        wait.interval_ms,
        |e| warmup_status(e, &WARMUP_STATUSES),
        || {
            let mut call = Call::get("/v1/models".into()).on(api.clone());
            // One attempt per try: the ride-out is the retry.
            call.retries = Some(0);
            call.not_found = Some(
                "the endpoint has no /v1/models: it is not an OpenAI-compatible (vLLM) deployment, or it \
                 is still starting (see theta.inference.ready)"
                    .into(),
            );
            client.json(&call)
        },
    )?;
    Ok(super::items(&body, &["data", "models"])
        .into_iter()
        .filter_map(|m| {
            Some(Model {
                id: text(m, &["id"])?,
                owned_by: text(m, &["owned_by"]),
            })
        })
        .collect())
}

pub const CHAT_SCHEMA: &str = concat!(
    r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["messages"],"properties":{"messages":{"type":"array","minItems":1,"items":{"type":"object","additionalProperties":false,"required":["role","content"],"properties":{"role":{"type":"string","enum":["system","user","assistant","tool"],"description":"Role."},"content":{"type":"string","description":"The document text itself."}}},"description":"The conversation, oldest first."},"model":{"type":"string","description":"Served model id; default THETA_INFERENCE_MODEL, else the first of /v1/models."},"max_tokens":{"type":"integer","minimum":1,"maximum":32768,"description":"Most tokens to generate."},"temperature":{"type":"number","minimum":0,"maximum":2,"description":"Sampling temperature."},"top_p":{"type":"number","minimum":0,"maximum":1,"description":"Nucleus sampling."},"#,
    warmup_properties!(),
    "}}"
);

pub fn parse_chat(ctx: &Ctx, mut args: Args) -> Result<(chat::ChatArgs, Option<String>, Warmup)> {
    no_endpoint_arg(&args)?;
    args.allow_only(&[
        "messages",
        "model",
        "max_tokens",
        "temperature",
        "top_p",
        WARMUP_FIELDS[0],
        WARMUP_FIELDS[1],
    ])?;
    let model = args
        .take("model")
        .map(|v| as_string("model", &v))
        .transpose()?;
    let wait = parse_warmup(ctx, &args)?;
    for f in WARMUP_FIELDS {
        args.take(f);
    }
    Ok((chat::parse_chat(args)?, model, wait))
}

/// `POST /v1/chat/completions` (not streamed). Paid: the deployment bills while it runs.
/// `POST /v1/chat/completions` (not streamed). Paid: the deployment bills while it runs. A warming
/// endpoint (502/503, or 404 while `/v1/models` does not answer either) is ridden out for the window;
/// a 404 from an endpoint that serves `/v1/models` is the answer (no such model).
pub fn chat(
    ctx: &Ctx,
    args: chat::ChatArgs,
    model: Option<String>,
    wait: &Warmup,
) -> Result<ChatReply> {
    chat::validate(&args)?;
    let api = endpoint(ctx)?;
    let model = match model.or_else(|| ctx.config.inference_model.clone()) {
        Some(m) => m,
        None => models(ctx, wait)?
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| {
                ThetaError::invalid("model", "the endpoint lists no model; pass model")
            })?,
    };
    let messages: Vec<Value> = args
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({
        "model": model,
        "messages": messages,
        "max_tokens": args.max_tokens.unwrap_or(512),
        "stream": false,
    });
    if let Some(t) = args.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = args.top_p {
        body["top_p"] = json!(p);
    }
    let mut call = Call::post("/v1/chat/completions".into(), body).on(api.clone());
    call.timeout_ms = Some(crate::config::CHAT_TIMEOUT_MS);
    call.not_found = Some(format!(
        "the endpoint has no /v1/chat/completions or no model `{model}` (see theta.inference.models)"
    ));
    let client = Client::new(ctx);
    let answer = ride_out_warmup(
        ctx,
        "POST /v1/chat/completions",
        wait.window_ms,
        wait.interval_ms,
        |e| match warmup_status(e, &WARMUP_STATUSES) {
            // The model server is up: this 404 is about the request (no such model), not warm-up.
            Some(404) if serves_models(&client, &api) => None,
            other => other,
        },
        || client.json(&call),
    );
    let mut reply = chat::reply_from_json(&answer?)?;
    reply.service = model;
    Ok(reply)
}

/// Whether the endpoint answers `GET /v1/models` right now (one attempt).
fn serves_models(client: &Client, api: &Api) -> bool {
    let mut call = Call::get("/v1/models".into()).on(api.clone());
    call.retries = Some(0);
    client.json(&call).is_ok()
}
