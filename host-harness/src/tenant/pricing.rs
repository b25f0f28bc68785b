//! What a paid request is estimated to cost, in micro-dollars (integers, so sums never drift).
//!
//! Prices are per request. Defaults come from public Theta pricing where known (image models $0.01 per
//! image, step_video $0.20 per video); LLM calls are priced conservatively per request, since the cost
//! depends on tokens only known afterwards; anything unknown costs the conservative default.

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

#[derive(Clone, Debug)]
pub struct PriceTable {
    per_request: BTreeMap<String, u64>,
    default: u64,
}

impl Default for PriceTable {
    fn default() -> Self {
        let known: [(&str, f64); 17] = [
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
            // LLMs: a generous per-call bound (~60k output tokens at 40¢/1M).
            ("qwen3", 0.03),
            ("llama_3_1_70b", 0.03),
            ("gpt_oss_120b", 0.03),
            ("chat/completions", 0.05),
        ];
        Self {
            per_request: known
                .iter()
                .map(|(k, v)| (k.to_string(), usd_to_micros(*v).unwrap_or(0)))
                .collect(),
            default: usd_to_micros(0.25).unwrap_or(0),
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

    /// The estimate for a paid request to `path` (on-demand `/infer_request/{alias}[...]`, or anything).
    pub fn estimate(&self, path: &str) -> u64 {
        let service = path
            .strip_prefix("/infer_request/")
            .map(|rest| {
                if rest.starts_with("chat/completions") {
                    "chat/completions"
                } else {
                    rest.split(['/', '?']).next().unwrap_or(rest)
                }
            })
            .unwrap_or("");
        self.per_request
            .get(service)
            .copied()
            .unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_by_service_with_a_conservative_default() {
        let t = PriceTable::default();
        assert_eq!(t.estimate("/infer_request/flux"), 10_000);
        assert_eq!(t.estimate("/infer_request/flux/generate_image"), 10_000);
        assert_eq!(t.estimate("/infer_request/chat/completions"), 50_000);
        assert_eq!(t.estimate("/infer_request/brand_new_model"), 250_000);
        assert_eq!(t.estimate("/deployment"), 250_000);
        assert_eq!(usd_to_micros(-1.0), None);
        assert_eq!(usd_to_micros(f64::NAN), None);
    }
}
