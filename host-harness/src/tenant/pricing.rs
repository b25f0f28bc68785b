//! What a paid request is estimated to cost, in micro-dollars (integers, so sums never drift).
//!
//! Prices are per request. Defaults come from public Theta pricing where known (image models $0.01 per
//! image, step_video $0.20 per video); LLM calls are priced conservatively per request, since the cost
//! depends on tokens only known afterwards; anything unknown costs the conservative default.

use crate::policy::Price;
use serde_json::Value;
use std::collections::BTreeMap;

/// One US dollar in micro-dollars.
pub const MICROS_PER_USD: u64 = 1_000_000;

pub fn usd_to_micros(usd: f64) -> Option<u64> {
    (0.0..1e9)
        .contains(&usd)
        .then(|| (usd * MICROS_PER_USD as f64).round() as u64)
}

pub fn micros_to_usd(micros: u64) -> f64 {
    micros as f64 / MICROS_PER_USD as f64
}

/// LLM output tokens are priced at this bound per token (micro-dollars), whatever the table says, so a
/// large `max_tokens` can never be run at a small per-call price.
pub const LLM_MICROS_PER_TOKEN: f64 = 0.5;

/// Services billed by output tokens (their price is scaled by the body's `max_tokens`).
const LLM_SERVICES: [&str; 6] = [
    "qwen3",
    "llama_3_1_70b",
    "gpt_oss_120b",
    "minimax_m2_5",
    "llama_3_8b",
    "chat/completions",
];

#[derive(Clone, Debug)]
pub struct PriceTable {
    per_request: BTreeMap<String, u64>,
    default: u64,
    /// Per hour of one replica, by VM type; `deployment_hourly_default` for the rest.
    vm_hourly: BTreeMap<String, u64>,
    deployment_hourly_default: u64,
    video_encode: u64,
    dedicated_chat: u64,
}

impl Default for PriceTable {
    fn default() -> Self {
        let known: [(&str, f64); 19] = [
            ("flux", 0.01),
            ("stable_diffusion_xl_turbo", 0.01),
            ("grounding_dino", 0.01),
            ("blip", 0.01),
            ("llava", 0.01),
            ("image_to_image", 0.01),
            ("esrgan", 0.02),
            ("voice_cloning", 0.01),
            ("instant_id", 0.24),
            ("talking_head", 0.02),
            ("step_video", 0.20),
            ("whisper", 0.01),
            ("kokoro_82m", 0.01),
            // LLMs: a generous per-call bound (~60k output tokens at 50¢/1M), more for a larger max_tokens.
            ("qwen3", 0.03),
            ("llama_3_1_70b", 0.03),
            ("gpt_oss_120b", 0.03),
            ("minimax_m2_5", 0.03),
            ("llama_3_8b", 0.03),
            ("chat/completions", 0.05),
        ];
        let usd = |v: f64| usd_to_micros(v).unwrap_or(0);
        Self {
            per_request: known
                .iter()
                .map(|(k, v)| (k.to_string(), usd(*v)))
                .collect(),
            default: usd(0.25),
            vm_hourly: BTreeMap::new(),
            deployment_hourly_default: usd(2.0),
            video_encode: usd(0.50),
            dedicated_chat: usd(0.01),
        }
    }
}

impl PriceTable {
    pub fn set(&mut self, service: &str, micros: u64) {
        self.per_request.insert(service.to_owned(), micros);
    }

    pub fn set_default(&mut self, micros: u64) {
        self.default = micros;
    }

    pub fn set_vm_hourly(&mut self, vm: &str, micros: u64) {
        self.vm_hourly.insert(vm.to_owned(), micros);
    }

    pub fn set_deployment_hourly_default(&mut self, micros: u64) {
        self.deployment_hourly_default = micros;
    }

    pub fn set_video_encode(&mut self, micros: u64) {
        self.video_encode = micros;
    }

    /// The most any paid request is estimated at without a body (what an unknown service costs).
    pub fn default_micros(&self) -> u64 {
        self.default
    }

    /// The estimate for one paid request of a route priced by `price`, from the route's canonical
    /// `segments` and its JSON `body` (absent or not JSON: the most conservative reading).
    pub fn estimate(&self, price: Price, segments: &[String], body: Option<&Value>) -> u64 {
        match price {
            Price::Free => 0,
            Price::Service => {
                let service = segments.get(1).map(String::as_str).unwrap_or("");
                let max_tokens = body.and_then(|b| b.get("input")).and_then(max_tokens);
                self.service_price(service, max_tokens)
            }
            Price::ChatModel => {
                let model = body.and_then(|b| b.get("model")).and_then(Value::as_str);
                let max_tokens = body.and_then(max_tokens);
                match model {
                    // The model runs on the service of that name; the route's own price is a floor.
                    Some(m) => self
                        .service_price(m, max_tokens)
                        .max(self.service_price("chat/completions", max_tokens)),
                    None => self
                        .default
                        .max(self.service_price("chat/completions", max_tokens)),
                }
            }
            Price::DedicatedChat => self.dedicated_chat,
            Price::VideoEncode => self.video_encode,
            Price::DeploymentHours => self.deployment_hourly(body),
        }
    }

    /// One hour of a deployment created with `body` (VM type × replicas).
    pub fn deployment_hourly(&self, body: Option<&Value>) -> u64 {
        let vm = body.and_then(|b| b.get("vm_id")).and_then(Value::as_str);
        let hourly = vm
            .and_then(|v| self.vm_hourly.get(v))
            .copied()
            .unwrap_or(self.deployment_hourly_default);
        let replicas = ["max_replicas", "min_replicas", "replicas"]
            .iter()
            .filter_map(|k| body.and_then(|b| b.get(*k)).and_then(Value::as_u64))
            .max()
            .unwrap_or(1)
            .clamp(1, 1000);
        hourly.saturating_mul(replicas)
    }

    /// `theta.route`'s answer with what this table reserves against the spend cap per call of each
    /// service it names (per hour for a deployment, per video for a transcode): the figure a cap
    /// counts, not Theta's bill. An answer that is not a route object is returned unchanged.
    pub fn with_reservations(&self, answer: &str) -> String {
        let Ok(mut route) = serde_json::from_str::<Value>(answer) else {
            return answer.to_owned();
        };
        let usd = |micros: u64| Value::from(micros_to_usd(micros));
        let mut per_call = serde_json::Map::new();
        for alias in route["services"].as_array().into_iter().flatten() {
            if let Some(alias) = alias.as_str() {
                per_call.insert(alias.to_owned(), usd(self.service_price(alias, None)));
            }
        }
        let reserve = match route["command"].as_str() {
            Some("theta.deployments.create") => serde_json::json!({
                "per_hour_usd": usd(self.deployment_hourly(None)),
            }),
            Some("theta.video.videoCreate") => serde_json::json!({
                "per_video_usd": usd(self.video_encode),
            }),
            _ => serde_json::json!({ "per_call_usd": per_call }),
        };
        if let Some(object) = route.as_object_mut() {
            object.insert("host_reserves".into(), reserve);
        }
        route.to_string()
    }

    fn service_price(&self, service: &str, max_tokens: Option<u64>) -> u64 {
        let base = self
            .per_request
            .get(service)
            .copied()
            .unwrap_or(self.default);
        if !LLM_SERVICES.contains(&service) {
            return base;
        }
        let by_tokens = max_tokens.map_or(0, |t| (t as f64 * LLM_MICROS_PER_TOKEN).ceil() as u64);
        base.max(by_tokens)
    }
}

/// `max_tokens` (or OpenAI's `max_completion_tokens`) of a body; a non-integer counts as huge.
fn max_tokens(body: &Value) -> Option<u64> {
    ["max_tokens", "max_completion_tokens", "max_new_tokens"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(|v| v.as_u64().unwrap_or(u64::MAX / 4))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').skip(1).map(str::to_owned).collect()
    }

    #[test]
    fn estimates_by_route_and_body_with_a_conservative_default() {
        let t = PriceTable::default();
        assert_eq!(
            t.estimate(Price::Service, &segs("/infer_request/flux"), None),
            10_000
        );
        assert_eq!(
            t.estimate(Price::Service, &segs("/infer_request/brand_new"), None),
            250_000
        );
        assert_eq!(
            t.estimate(
                Price::ChatModel,
                &segs("/infer_request/chat/completions"),
                None
            ),
            250_000
        );
        let body = json!({"model": "gpt_oss_120b", "max_tokens": 100});
        assert_eq!(t.estimate(Price::ChatModel, &[], Some(&body)), 50_000);
        // A large max_tokens cannot ride on a small per-call price.
        let body = json!({"input": {"max_tokens": 2_000_000}});
        assert_eq!(
            t.estimate(Price::Service, &segs("/infer_request/qwen3"), Some(&body)),
            1_000_000
        );
        let body = json!({"input": {"max_tokens": "lots"}});
        assert!(
            t.estimate(Price::Service, &segs("/infer_request/qwen3"), Some(&body)) > 1_000_000_000
        );
        let body = json!({"vm_id": "vm_gt1", "max_replicas": 3});
        assert_eq!(t.deployment_hourly(Some(&body)), 6_000_000);
        assert_eq!(t.estimate(Price::Free, &[], None), 0);
        assert_eq!(usd_to_micros(-1.0), None);
        assert_eq!(usd_to_micros(f64::NAN), None);
    }
}
