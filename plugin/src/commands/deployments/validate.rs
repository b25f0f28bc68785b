//! `theta.deployments.validateDisposable`, as the skill does it: Basic-auth credentials (generated
//! from `wasi:random` when none are given), the organisation balance before and after (when
//! `THETA_ORG_ID` is set), create, readiness with the credentials, one small OpenAI-shaped chat with
//! them, delete, and a check of the list that it is gone. The delete runs whatever happened before
//! it, and the password never appears in the result, an error or a progress event.

use super::{CREATE_FIELDS, CreateArgs, create, delete, list, parse_create};
use crate::client::{Api, Call, Client, Ctx};
use crate::commands::account;
use crate::commands::args::Args;
use crate::commands::chat;
use crate::commands::readiness::{
    BasicAuth, Readiness, probe_path, seconds_ms, wait_ready, window_ms,
};
use crate::commands::{ToJson, object, str_list};
use crate::error::{Result, ThetaError};
use serde_json::{Value, json};

pub const VALIDATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["template_id"],"properties":{"template_id":{"type":"string","description":"deployment_template_id of a serving template."},"container_image":{"type":"string","description":"Container image; default the template's."},"vm_id":{"type":"string","description":"Exact VM type; absent: vm_gt1 when it has capacity, else vm_gt2, else a V100 type."},"env_vars":{"type":"object","description":"Environment variables of the container (string values)."},"annotations":{"type":"object","description":"Deployment annotations."},"auth_username":{"type":"string","description":"Basic-auth user the disposable endpoint requires; with auth_password. Both absent: generated at random for this call."},"auth_password":{"type":"string","description":"Basic-auth password (never shown in results, errors or logs). Both absent: generated at random."},"route":{"type":"string","enum":["deployment","deployments"],"description":"Route shape, deployment or deployments; probed when absent."},"probe":{"type":"string","enum":["openai","gradio"],"description":"openai: GET /v1/models, then one small chat; gradio: GET /config. Default openai."},"pending_timeout_seconds":{"type":"number","minimum":0,"maximum":1800,"description":"Without vm_id: how long a create may stay pending (not scheduled) before the next VM type is tried (default 60)."},"ready_timeout_seconds":{"type":"number","minimum":0,"maximum":1800,"description":"How long to wait for readiness (default 120). The pending and readiness windows together must fit in the host's per-call wall clock (THETA_CALL_WALL_CLOCK_MS, default 300 s, less 30 s kept for create, chat and delete); a longer window is refused, the default is shortened to fit."},"interval_seconds":{"type":"number","minimum":0.01,"maximum":60,"description":"Between readiness polls (default 10)."}}}"#;

/// The prompt of the validation chat: small, so it costs next to nothing.
const PROBE_PROMPT: &str = "Reply with the single word OK.";

pub struct ValidateArgs {
    pub create: CreateArgs,
    pub probe: String,
    pub timeout_ms: u64,
    pub interval_ms: u64,
}

pub fn parse_validate(ctx: &Ctx, args: Args) -> Result<ValidateArgs> {
    let mut allowed = CREATE_FIELDS.to_vec();
    allowed.retain(|f| *f != "min_replicas" && *f != "max_replicas");
    allowed.extend(["probe", "ready_timeout_seconds", "interval_seconds"]);
    args.allow_only(&allowed)?;
    let probe = args.string("probe")?.unwrap_or_else(|| "openai".into());
    probe_path(&probe)?;
    let mut create = parse_create(ctx, &args)?;
    // The readiness window comes first; a default pending window gets what is left of the call's
    // wall clock (none left: the pending wait is skipped), an explicit one must fit beside it.
    let pending = args.f64("pending_timeout_seconds")?;
    let timeout_ms = window_ms(
        ctx,
        "ready_timeout_seconds",
        args.f64("ready_timeout_seconds")?,
        120.0,
        pending.map_or(0, |s| (s * 1000.0) as u64),
    )?;
    create.pending_timeout_ms = window_ms(
        ctx,
        "pending_timeout_seconds",
        pending,
        super::create::PENDING_DEFAULT_S,
        timeout_ms,
    )?;
    Ok(ValidateArgs {
        create,
        probe,
        timeout_ms,
        interval_ms: seconds_ms(&args, "interval_seconds", 10.0, 0.01, 60.0)?,
    })
}

/// The caller's credentials, or a fresh pair from `wasi:random`: (user, password, generated).
fn credentials(ctx: &Ctx, create: &CreateArgs) -> Result<(BasicAuth, bool)> {
    match (&create.auth_username, &create.auth_password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Ok(((u.clone(), p.clone()), false)),
        (None, None) => {
            let hex =
                |bytes: Vec<u8>| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
            let user = format!("validate-{}", hex(ctx.transport.random_bytes(4)));
            let password = hex(ctx.transport.random_bytes(24));
            Ok(((user, password), true))
        }
        _ => Err(ThetaError::invalid(
            "auth_password",
            "give both auth_username and auth_password (non-empty), or neither: then a random pair \
             is generated for this validation",
        )),
    }
}

/// The organisation balance when `THETA_ORG_ID` is set: a number, or why there is none.
fn balance_now(ctx: &Ctx) -> Value {
    let Some(org) = ctx.config.org_id.as_deref() else {
        return json!({"skipped": "THETA_ORG_ID is not set"});
    };
    match account::balance_reading(ctx, org) {
        Ok(account::BalanceReading::Balance(b)) => json!({"balance": b}),
        Ok(account::BalanceReading::Skipped(why)) => json!({"skipped": why}),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// One small chat with the endpoint, with the credentials; the model is the first one it serves.
fn probe_chat(ctx: &Ctx, api: &Api, auth: &BasicAuth, readiness: &Readiness) -> Result<Value> {
    let model = readiness
        .answer
        .as_ref()
        .and_then(|a| {
            crate::commands::items(a, &["data", "models"])
                .first()
                .copied()
        })
        .and_then(|m| crate::commands::text(m, &["id"]))
        .ok_or_else(|| {
            ThetaError::transport("the endpoint's /v1/models answer lists no model to chat with")
        })?;
    let mut call = Call::post(
        "/v1/chat/completions".into(),
        json!({
            "model": model,
            "messages": [{"role": "user", "content": PROBE_PROMPT}],
            "max_tokens": 16,
            "stream": false,
        }),
    )
    .on(api.clone());
    call.retries = Some(0);
    call.timeout_ms = Some(crate::config::CHAT_TIMEOUT_MS);
    call.basic_auth = Some(auth.clone());
    let reply = chat::reply_from_json(&Client::new(ctx).json(&call)?)?;
    Ok(json!({"model": model, "content": reply.content, "finish_reason": reply.finish_reason}))
}

/// Create one disposable deployment, wait until it is ready, chat with it, delete it. The delete
/// runs whatever happened before it; the answer says whether anything was left behind.
pub fn validate_disposable(ctx: &Ctx, mut args: ValidateArgs) -> Result<Value> {
    let ((user, password), generated) = credentials(ctx, &args.create)?;
    args.create.auth_username = Some(user.clone());
    args.create.auth_password = Some(password.clone());
    let auth: BasicAuth = (user.clone(), password.clone());
    run(ctx, args, &auth, generated).map_err(|e| redact_error(e, &password))
}

fn run(ctx: &Ctx, args: ValidateArgs, auth: &BasicAuth, generated: bool) -> Result<Value> {
    let mut steps: Vec<String> = Vec::new();
    let balance_before = balance_now(ctx);
    let created = create(ctx, args.create.clone())?;
    let d = created.deployment.clone();
    steps.push(format!(
        "created {}/{} on {}",
        d.shard, d.suffix, created.vm_id
    ));
    // Everything between create and delete is collected, never returned early.
    let checked: Result<(Readiness, Option<Value>)> = (|| {
        let endpoint = d.endpoint.clone().ok_or_else(|| {
            ThetaError::transport("the created deployment has no Endpoint to probe")
        })?;
        let base =
            crate::config::validate_base_url(&endpoint).map_err(|why| ThetaError::Denied {
                reason: format!(
                    "the deployment's endpoint `{endpoint}` is not a Theta HTTPS host: {why}"
                ),
            })?;
        let api = Api::Public(base);
        let readiness = wait_ready(
            ctx,
            api.clone(),
            &args.probe,
            args.timeout_ms,
            args.interval_ms,
            Some(auth),
        )?;
        let chat = if args.probe == "openai" {
            Some(probe_chat(ctx, &api, auth, &readiness)?)
        } else {
            None
        };
        Ok((readiness, chat))
    })();
    match &checked {
        Ok((r, chat)) => {
            steps.push(format!(
                "ready after {} polls ({} ms); probe GET {} answered",
                r.statuses.len(),
                r.elapsed_ms,
                r.path
            ));
            if chat.is_some() {
                steps.push("chat POST /v1/chat/completions answered".into());
            }
        }
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
            let listed = list(ctx, Some(created.route.clone())).map(|(_, all)| {
                all.iter()
                    .any(|x| x.shard == d.shard && x.suffix == d.suffix)
            });
            match listed {
                Ok(false) => {
                    steps.push("the list no longer shows it".into());
                    false
                }
                Ok(true) => {
                    steps.push("the list STILL shows it".into());
                    true
                }
                Err(e) => {
                    steps.push(format!("could not list to verify the delete: {e}"));
                    false
                }
            }
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
    let (readiness, chat) = match checked {
        Ok(r) => r,
        Err(e) => {
            let message = format!(
                "{e}; the disposable deployment was deleted (steps: {})",
                steps.join("; ")
            );
            return Err(match e {
                ThetaError::Timeout { .. } => ThetaError::Timeout { message },
                ThetaError::Denied { .. } => ThetaError::Denied { reason: message },
                ThetaError::Upstream {
                    status, retriable, ..
                } => ThetaError::Upstream {
                    status,
                    message,
                    retriable,
                },
                _ => ThetaError::transport(message),
            });
        }
    };
    let balance_after = balance_now(ctx);
    let spent = match (
        balance_before["balance"].as_f64(),
        balance_after["balance"].as_f64(),
    ) {
        (Some(b), Some(a)) => Value::from(b - a),
        _ => Value::Null,
    };
    Ok(object(vec![
        ("ok", Value::Bool(true)),
        ("deployment", d.to_json()),
        ("vm_id", Value::String(created.vm_id.clone())),
        ("vm_reason", Value::String(created.reason.clone())),
        ("vm_attempts", created.to_json()["attempts"].clone()),
        ("readiness", readiness.to_json()),
        ("chat", chat.unwrap_or(Value::Null)),
        ("deleted", Value::Bool(true)),
        ("verified_gone", Value::Bool(true)),
        (
            "auth",
            json!({"username": auth.0, "password": "[redacted]", "generated": generated}),
        ),
        (
            "balance",
            json!({"before": balance_before, "after": balance_after, "spent": spent}),
        ),
        ("steps", str_list(&steps)),
    ]))
}

/// The error with the password (and its Basic-auth form) replaced, wherever an answer echoed it.
fn redact_error(e: ThetaError, password: &str) -> ThetaError {
    let r = |s: String| s.replace(password, "[redacted]");
    match e {
        ThetaError::InvalidArgument { field, reason } => ThetaError::InvalidArgument {
            field,
            reason: r(reason),
        },
        ThetaError::Denied { reason } => ThetaError::Denied { reason: r(reason) },
        ThetaError::Upstream {
            status,
            message,
            retriable,
        } => ThetaError::Upstream {
            status,
            message: r(message),
            retriable,
        },
        ThetaError::CapacityExhausted {
            service,
            attempts,
            message,
        } => ThetaError::CapacityExhausted {
            service,
            attempts,
            message: r(message),
        },
        ThetaError::Timeout { message } => ThetaError::Timeout {
            message: r(message),
        },
        ThetaError::Transport { message } => ThetaError::Transport {
            message: r(message),
        },
        ThetaError::DryRun { mut preview } => {
            preview.body = preview.body.map(r);
            ThetaError::DryRun { preview }
        }
        other => other,
    }
}
