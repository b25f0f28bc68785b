//! Waiting on a dedicated endpoint while it warms up (404, then 502/503, then 200): the readiness
//! probe of `theta.inference.ready` and `theta.deployments.validateDisposable`, the warm-up ride-out
//! of `theta.inference.models` / `chat`, and the waiting windows, which must fit the host's per-call
//! wall clock (`THETA_CALL_WALL_CLOCK_MS`).

use super::args::{Args, check_range};
use super::{ToJson, object};
use crate::client::{Api, Call, Client, Ctx, truncate};
use crate::error::{Result, ThetaError};
use crate::events::Event;
use serde_json::Value;

/// The variable through which a host tells the guest its per-call wall clock.
pub const WALL_CLOCK_VAR: &str = "THETA_CALL_WALL_CLOCK_MS";
/// The longest waiting window any argument may ask for when the host says nothing.
pub const MAX_WINDOW_S: f64 = 1800.0;
/// What a call keeps for its other requests (create, delete, list, chat) besides its waiting
/// windows: 30 s, or a fifth of a shorter wall clock.
const CALL_RESERVE_MS: u64 = 30_000;

/// Statuses a warming endpoint answers before its model server is up.
pub const WARMUP_STATUSES: [u16; 3] = [404, 502, 503];

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

/// Basic-auth credentials a disposable deployment requires: (user, password).
pub type BasicAuth = (String, String);

/// Polls `api` with the probe until it answers 2xx or `timeout_ms` passes. Warm-up answers (404, 401,
/// 5xx, broken connections) are expected and waited out; one attempt per poll, no hidden retries.
/// `basic` is sent with every poll (a deployment created with Basic auth answers 401 without it).
pub fn wait_ready(
    ctx: &Ctx,
    api: Api,
    probe: &str,
    timeout_ms: u64,
    interval_ms: u64,
    basic: Option<&BasicAuth>,
) -> Result<Readiness> {
    let path = probe_path(probe)?;
    let client = Client::new(ctx);
    let mut statuses = Vec::new();
    let mut waited = 0u64;
    loop {
        let mut call = Call::get(path.into()).on(api.clone());
        call.retries = Some(0);
        call.timeout_ms = Some(ctx.config.timeout_ms.min(30_000));
        call.basic_auth = basic.cloned();
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
                    shown(&statuses)
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

fn shown(statuses: &[u16]) -> String {
    statuses
        .iter()
        .map(|s| {
            if *s == 0 {
                "no answer".into()
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<String>>()
        .join(", ")
}

/// The status of a warm-up failure (0: no answer), `None` for anything else.
pub fn warmup_status(e: &ThetaError, statuses: &[u16]) -> Option<u16> {
    match e {
        ThetaError::Upstream { status, .. } if statuses.contains(status) => Some(*status),
        ThetaError::Transport { .. } | ThetaError::Timeout { .. } => Some(0),
        _ => None,
    }
}

/// Runs `attempt` until it succeeds, fails with something `warming` does not call warm-up (it
/// returns the status, 0 for no answer), or `window_ms` of pauses has passed; every pause is a
/// progress event. The last failure is returned as it was (same status), saying how long it was
/// waited out.
pub fn ride_out_warmup<T>(
    ctx: &Ctx,
    what: &str,
    window_ms: u64,
    interval_ms: u64,
    mut warming: impl FnMut(&ThetaError) -> Option<u16>,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    let mut seen = Vec::new();
    let mut waited = 0u64;
    loop {
        let e = match attempt() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(status) = warming(&e) else {
            return Err(e);
        };
        seen.push(status);
        if waited >= window_ms {
            let note = format!(
                " (still warming up after {waited} ms of the {window_ms} ms readiness window; {}: {}; \
                 wait longer with ready_timeout_seconds or see theta.inference.ready)",
                what,
                shown(&seen)
            );
            return Err(match e {
                ThetaError::Upstream {
                    status,
                    message,
                    retriable,
                } => ThetaError::Upstream {
                    status,
                    message: format!("{message}{note}"),
                    retriable,
                },
                ThetaError::Timeout { message } => ThetaError::Timeout {
                    message: format!("{message}{note}"),
                },
                ThetaError::Transport { message } => ThetaError::Transport {
                    message: format!("{message}{note}"),
                },
                other => other,
            });
        }
        let pause = interval_ms.min(window_ms - waited).max(1);
        ctx.events.emit(Event::Progress {
            message: format!(
                "{what}: {}, the endpoint is warming up; trying again in {pause} ms",
                if status == 0 {
                    "no answer".to_owned()
                } else {
                    status.to_string()
                }
            ),
            attempt: seen.len() as u32,
        });
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

/// The longest waiting window a call may spend, given `other_ms` already promised to other windows
/// of the same call; `None` when the host did not say its wall clock.
pub fn window_budget_ms(ctx: &Ctx, other_ms: u64) -> Option<u64> {
    ctx.config.call_wall_clock_ms.map(|wall| {
        wall.saturating_sub(CALL_RESERVE_MS.min(wall / 5))
            .saturating_sub(other_ms)
    })
}

/// A waiting window argument in seconds (`value`), as milliseconds: an explicit window longer than
/// what the host's per-call wall clock leaves is refused naming the limit; the default is shortened
/// to fit. `other_ms`: other windows of the same call.
pub fn window_ms(
    ctx: &Ctx,
    name: &str,
    value: Option<f64>,
    default_s: f64,
    other_ms: u64,
) -> Result<u64> {
    check_range(name, value, 0.0, MAX_WINDOW_S)?;
    let budget = window_budget_ms(ctx, other_ms);
    match (value, budget) {
        (Some(s), Some(max)) if (s * 1000.0) as u64 > max => Err(ThetaError::invalid(
            name,
            format!(
                "{s} s does not fit in this call: the host ends every call after {} ms \
                 ({WALL_CLOCK_VAR}), which leaves at most {:.1} s for this window once the \
                 call's other requests and waits are counted; ask for at most that, or have \
                 the host's wall clock raised",
                ctx.config.call_wall_clock_ms.unwrap_or_default(),
                max as f64 / 1000.0
            ),
        )),
        (Some(s), _) => Ok((s * 1000.0) as u64),
        (None, Some(max)) => Ok(((default_s * 1000.0) as u64).min(max)),
        (None, None) => Ok((default_s * 1000.0) as u64),
    }
}

/// The pause between polls inside a window: a sixth of it, between 50 ms and 10 s.
pub fn poll_interval_ms(window_ms: u64) -> u64 {
    (window_ms / 6).clamp(50, 10_000)
}
