//! `theta-host smoke`: one cheap real call per on-demand service, through the sandboxed plugin, under a
//! budget. Each call's cost is estimated from the host's price table before it is sent; a call that
//! would take the total past `--max-budget-usd` is skipped, and so is every later one. Services with
//! a file input (`blip`, `grounding_dino`, `whisper`) upload a tiny generated file first
//! (`theta.ondemand.upload`). Knobs (host configuration or environment; the flags win):
//! `SERVICES` (comma list, as `--services`), `THETA_MAX_BUDGET_USD` (as `--max-budget-usd`, default
//! 2.00), `THETA_WAIT_SECONDS` (the `wait` of each call, default 30), `THETA_POLL_UNTIL_DONE` (poll
//! pending requests, default on), `THETA_POLL_INTERVAL_SECONDS` (3), `THETA_POLL_TIMEOUT_SECONDS`
//! (180).

use crate::events::EventCallback;
use crate::policy::Price;
use crate::runtime::Runtime;
use crate::smoke_inputs::upload_input;
use crate::tenant::pricing::{PriceTable, micros_to_usd, usd_to_micros};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Services the smoke run calls when none are named: the cheapest chat and image services.
pub const DEFAULT_SERVICES: [&str; 2] = ["qwen3", "flux"];
/// The budget when neither `--max-budget-usd` nor `THETA_MAX_BUDGET_USD` gives one.
pub const DEFAULT_MAX_BUDGET_USD: f64 = 2.0;

#[derive(Clone, Debug)]
pub struct SmokeOptions {
    pub services: Vec<String>,
    pub max_budget_usd: f64,
    pub wait_seconds: u32,
    pub poll_until_done: bool,
    pub poll_interval: Duration,
    pub poll_timeout: Duration,
}

impl SmokeOptions {
    /// Options from the flags (`services` empty and `max_budget_usd` `None` when not given) and the
    /// knobs (`get` reads host configuration and the environment); a flag wins over its knob.
    pub fn new(
        services: Vec<String>,
        max_budget_usd: Option<f64>,
        get: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let max_budget_usd = match max_budget_usd {
            Some(usd) => usd,
            None => match get("THETA_MAX_BUDGET_USD").filter(|v| !v.trim().is_empty()) {
                None => DEFAULT_MAX_BUDGET_USD,
                Some(v) => v.trim().parse::<f64>().map_err(|_| {
                    anyhow::anyhow!("THETA_MAX_BUDGET_USD must be a number of dollars, got `{v}`")
                })?,
            },
        };
        if !(max_budget_usd.is_finite() && max_budget_usd >= 0.0) {
            anyhow::bail!(
                "the budget (--max-budget-usd / THETA_MAX_BUDGET_USD) must be a non-negative number of dollars"
            );
        }
        let services = if services.iter().any(|s| !s.trim().is_empty()) {
            services
        } else {
            get("SERVICES")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let num = |name: &str, default: f64, max: f64| -> anyhow::Result<f64> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0 && *n <= max)
                    .ok_or_else(|| {
                        anyhow::anyhow!("{name} must be a number from 0 to {max}, got `{v}`")
                    }),
            }
        };
        let poll_until_done = match get("THETA_POLL_UNTIL_DONE")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => true,
            Some(v) if v.is_empty() => true,
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => anyhow::bail!("THETA_POLL_UNTIL_DONE must be 1/true or 0/false, got `{v}`"),
            },
        };
        let mut services: Vec<String> = services
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if services.is_empty() {
            services = DEFAULT_SERVICES.iter().map(|s| s.to_string()).collect();
        }
        Ok(Self {
            services,
            max_budget_usd,
            wait_seconds: num("THETA_WAIT_SECONDS", 30.0, 60.0)? as u32,
            poll_until_done,
            poll_interval: Duration::from_secs_f64(
                num("THETA_POLL_INTERVAL_SECONDS", 3.0, 600.0)?.max(0.01),
            ),
            poll_timeout: Duration::from_secs_f64(num(
                "THETA_POLL_TIMEOUT_SECONDS",
                180.0,
                3600.0,
            )?),
        })
    }
}

/// One line of the smoke table.
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct SmokeRow {
    pub service: String,
    pub command: String,
    /// ok, error, skipped
    pub outcome: String,
    /// The request's final state, when there is one.
    pub state: Option<String>,
    pub estimate_usd: f64,
    /// Estimated total after this row.
    pub total_usd: f64,
    pub elapsed_ms: u64,
    pub note: String,
}

const CHAT_SERVICES: [&str; 8] = [
    "qwen3",
    "gpt_oss_120b",
    "llama_3_1_70b",
    "llama_3_8b",
    "minimax_m2_5",
    "glm_5_2",
    "glm_5_3",
    "glm_5_3_flash",
];

/// The cheapest useful call for a service, or why there is none.
pub fn cheap_call(service: &str, wait: u32) -> Result<(&'static str, Value), String> {
    if CHAT_SERVICES.contains(&service) {
        let max_tokens = if service == "gpt_oss_120b" { 256 } else { 16 };
        return Ok((
            "theta.ondemand.chat",
            json!({"service": service, "messages": [{"role": "user", "content": "Reply with the word OK."}],
                   "max_tokens": max_tokens, "wait": wait}),
        ));
    }
    let input = match service {
        "flux" => {
            json!({"prompt": "a small blue square", "num_steps": 1, "width": 256, "height": 256})
        }
        "stable_diffusion_xl_turbo" => json!({"prompt": "a small blue square", "steps": 1}),
        "kokoro_82m" => json!({"text": "OK", "voice": "af_sky"}),
        // The file name is filled in once the file is uploaded (see `run`).
        other if upload_input(other).is_some() => {
            upload_input(other).map(|u| u.input).unwrap_or_default()
        }
        other => {
            return Err(format!(
                "no cheap smoke input is known for `{other}` (it needs a file or a long job)"
            ));
        }
    };
    Ok((
        "infer",
        json!({"service": service, "input": input, "wait": wait}),
    ))
}

/// What the host's price table estimates one smoke call of `service` at.
fn estimate_of(prices: &PriceTable, service: &str) -> u64 {
    if service == "gpt_oss_120b" {
        let body = json!({"model": service});
        prices.estimate(Price::ChatModel, &[], Some(&body))
    } else {
        let segments = ["infer_request".to_owned(), service.to_owned()];
        prices.estimate(Price::Service, &segments, None)
    }
}

fn is_final(state: &str) -> bool {
    matches!(
        state,
        "success" | "completed" | "error" | "failed" | "cancelled"
    )
}

/// Runs the smoke calls in order; stops spending before the cap would be passed.
pub async fn run(
    rt: &Runtime,
    opts: &SmokeOptions,
    prices: &PriceTable,
    events: EventCallback,
) -> anyhow::Result<Vec<SmokeRow>> {
    let cap = usd_to_micros(opts.max_budget_usd).unwrap_or(0);
    // Spend is what the host's own ledger counted for this run, never what the plugin reports.
    let tenant = rt.config().tenant.clone();
    let start = rt.spent_micros(&tenant).await;
    let mut total: u64 = 0;
    let mut rows = Vec::new();
    let mut capped = false;
    for service in &opts.services {
        let estimate = estimate_of(prices, service);
        let row = |outcome: &str,
                   command: &str,
                   state: Option<String>,
                   total: u64,
                   ms: u64,
                   note: String| SmokeRow {
            service: service.clone(),
            command: command.into(),
            outcome: outcome.into(),
            state,
            estimate_usd: micros_to_usd(estimate),
            total_usd: micros_to_usd(total),
            elapsed_ms: ms,
            note,
        };
        let (command, args) = match cheap_call(service, opts.wait_seconds) {
            Ok(c) => c,
            Err(why) => {
                rows.push(row("skipped", "-", None, total, 0, why));
                continue;
            }
        };
        if capped || total.saturating_add(estimate) > cap {
            capped = true;
            rows.push(row(
                "skipped",
                command,
                None,
                total,
                0,
                format!(
                    "would pass the budget: ${:.2} spent + ${:.2} > ${:.2}",
                    micros_to_usd(total),
                    micros_to_usd(estimate),
                    opts.max_budget_usd
                ),
            ));
            continue;
        }
        let started = Instant::now();
        let mut args = args;
        if let Some(file) = upload_input(service) {
            use base64::Engine;
            let upload = json!({
                "service": service,
                "input_field": file.field,
                "data_base64": base64::engine::general_purpose::STANDARD.encode(&file.bytes),
                "content_type": file.content_type,
            });
            match rt
                .invoke("theta.ondemand.upload", &upload.to_string(), events.clone())
                .await?
            {
                Ok(json) => {
                    let v: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
                    args["input"][file.field] = v["filename"].clone();
                }
                Err(e) => {
                    let note = format!("upload failed: {}", crate::report::error_text(&e));
                    let ms = started.elapsed().as_millis() as u64;
                    rows.push(row("error", "theta.ondemand.upload", None, total, ms, note));
                    continue;
                }
            }
        }
        let outcome = rt
            .invoke(command, &args.to_string(), events.clone())
            .await?;
        let (result, mut state, mut note) = match outcome {
            Ok(json) => {
                let v: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
                let state = v["state"].as_str().map(str::to_owned);
                let note = if command == "theta.ondemand.chat" {
                    format!("answer: {}", short(v["content"].as_str().unwrap_or(""), 60))
                } else {
                    format!("request {}", v["id"].as_str().unwrap_or("?"))
                };
                (Ok(v), state, note)
            }
            Err(e) => {
                let note = crate::report::error_text(&e);
                (Err(()), None, note)
            }
        };
        // Poll a pending request until it is done (or the poll window closes).
        if let (Ok(v), true) = (&result, opts.poll_until_done)
            && let (Some(id), Some(s)) = (v["id"].as_str(), state.as_deref())
            && !is_final(s)
        {
            let deadline = Instant::now() + opts.poll_timeout;
            while state.as_deref().is_some_and(|s| !is_final(s)) {
                if Instant::now() >= deadline {
                    note = format!(
                        "{note}; still {} after {:?}",
                        state.as_deref().unwrap_or("?"),
                        opts.poll_timeout
                    );
                    break;
                }
                tokio::time::sleep(opts.poll_interval).await;
                match rt
                    .invoke(
                        "get_request_status",
                        &json!({"request_id": id}).to_string(),
                        events.clone(),
                    )
                    .await?
                {
                    Ok(json) => {
                        let v: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
                        state = v["state"].as_str().map(str::to_owned);
                    }
                    Err(e) => {
                        note = format!("{note}; poll failed: {}", crate::report::error_text(&e));
                        break;
                    }
                }
            }
        }
        total = rt.spent_micros(&tenant).await.saturating_sub(start);
        let failed_state = state
            .as_deref()
            .is_some_and(|s| matches!(s, "error" | "failed" | "cancelled"));
        let outcome = match (&result, failed_state) {
            (Ok(_), false) => "ok",
            _ => "error",
        };
        rows.push(row(
            outcome,
            command,
            state,
            total,
            started.elapsed().as_millis() as u64,
            note,
        ));
    }
    Ok(rows)
}

/// The rows as a plain-text table, with the total.
pub fn table(rows: &[SmokeRow], cap_usd: f64) -> String {
    let mut out = format!(
        "{:<26}  {:<20}  {:<8}  {:<10}  {:>8}  {:>8}  {:>8}  NOTE\n",
        "SERVICE", "COMMAND", "OUTCOME", "STATE", "EST_USD", "TOTAL", "MS"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<26}  {:<20}  {:<8}  {:<10}  {:>8.4}  {:>8.4}  {:>8}  {}\n",
            r.service,
            r.command,
            r.outcome,
            r.state.as_deref().unwrap_or("-"),
            r.estimate_usd,
            r.total_usd,
            r.elapsed_ms,
            r.note
        ));
    }
    let spent = rows.last().map_or(0.0, |r| r.total_usd);
    out.push_str(&format!(
        "estimated total ${spent:.4} of a ${cap_usd:.2} budget; {} ok, {} error, {} skipped\n",
        rows.iter().filter(|r| r.outcome == "ok").count(),
        rows.iter().filter(|r| r.outcome == "error").count(),
        rows.iter().filter(|r| r.outcome == "skipped").count()
    ));
    out
}

fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_the_knobs_and_refuse_nonsense() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let o = SmokeOptions::new(vec![], None, env(&[])).unwrap();
        assert_eq!(o.max_budget_usd, DEFAULT_MAX_BUDGET_USD);
        assert_eq!(o.services, ["qwen3", "flux"]);
        assert_eq!((o.wait_seconds, o.poll_until_done), (30, true));
        let o = SmokeOptions::new(
            vec!["flux".into()],
            Some(1.0),
            env(&[
                ("THETA_WAIT_SECONDS", "0"),
                ("THETA_POLL_UNTIL_DONE", "0"),
                ("THETA_POLL_INTERVAL_SECONDS", "0.5"),
            ]),
        )
        .unwrap();
        assert_eq!((o.wait_seconds, o.poll_until_done), (0, false));
        assert_eq!(o.poll_interval, Duration::from_millis(500));
        assert!(SmokeOptions::new(vec![], Some(-1.0), env(&[])).is_err());
        assert!(
            SmokeOptions::new(vec![], Some(1.0), env(&[("THETA_WAIT_SECONDS", "600")])).is_err()
        );
        assert!(
            SmokeOptions::new(
                vec![],
                Some(1.0),
                env(&[("THETA_POLL_UNTIL_DONE", "maybe")])
            )
            .is_err()
        );
        // The skill's variables, and the flags over them.
        let skill = env(&[
            ("SERVICES", "blip, whisper"),
            ("THETA_MAX_BUDGET_USD", "0.5"),
        ]);
        let o = SmokeOptions::new(vec![], None, skill).unwrap();
        assert_eq!(
            (o.services.clone(), o.max_budget_usd),
            (vec!["blip".to_owned(), "whisper".to_owned()], 0.5)
        );
        let o = SmokeOptions::new(vec!["flux".into()], Some(0.1), skill).unwrap();
        assert_eq!(
            (o.services, o.max_budget_usd),
            (vec!["flux".to_owned()], 0.1)
        );
        assert!(SmokeOptions::new(vec![], None, env(&[("THETA_MAX_BUDGET_USD", "lots")])).is_err());
    }

    #[test]
    fn cheap_calls() {
        assert_eq!(cheap_call("qwen3", 5).unwrap().0, "theta.ondemand.chat");
        assert_eq!(cheap_call("flux", 5).unwrap().1["wait"], 5);
        assert_eq!(cheap_call("whisper", 5).unwrap().0, "infer");
        assert!(cheap_call("step_video", 5).is_err());
    }
}
