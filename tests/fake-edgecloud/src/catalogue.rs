//! The fixed service catalogue served by `GET /service/list`, shaped like the live one
//! (theta-api-sources.md §2.1 and §6): `Service` objects with `predictions`, each with
//! `cost{input,output}` in US cents over `cost_divisor`, `input_vars`, `output_vars` and `variants`.

use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const CREATED: &str = "2026-05-01T00:00:00.000Z";
const UPDATED: &str = "2026-05-26T00:00:00.000Z";

/// Every service, in rank order (one of them `state:"internal"`).
pub(crate) fn services() -> &'static [Value] {
    static CATALOGUE: OnceLock<Vec<Value>> = OnceLock::new();
    CATALOGUE.get_or_init(build)
}

/// A service by alias or id.
pub(crate) fn find(alias_or_id: &str) -> Option<&'static Value> {
    services()
        .iter()
        .find(|s| s["alias"] == alias_or_id || s["id"] == alias_or_id)
}

/// A service's prediction by name.
pub(crate) fn prediction<'a>(service: &'a Value, name: &str) -> Option<&'a Value> {
    service["predictions"].get(name)
}

/// The names of a service's predictions, by rank.
pub(crate) fn prediction_names(service: &Value) -> Vec<String> {
    let mut names: Vec<(i64, String)> = service["predictions"]
        .as_object()
        .map(|p| {
            p.iter()
                .map(|(k, v)| (v["rank"].as_i64().unwrap_or(0), k.clone()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.into_iter().map(|(_, n)| n).collect()
}

/// Whether a prediction is a chat completion (streams SSE unless `input.stream` is false).
pub(crate) fn is_chat(prediction: &Value) -> bool {
    prediction["func_type"] == "chat"
}

/// The file-type input fields of a prediction (those uploaded through presigned URLs).
pub(crate) fn file_fields(prediction: &Value) -> Vec<String> {
    input_vars(prediction)
        .iter()
        .filter(|(_, v)| v["type"] == "file")
        .map(|(k, _)| k.clone())
        .collect()
}

/// The required input fields of a prediction, in `index` order.
pub(crate) fn required_fields(prediction: &Value) -> Vec<String> {
    input_vars(prediction)
        .iter()
        .filter(|(_, v)| v["required"] == true)
        .map(|(k, _)| k.clone())
        .collect()
}

fn input_vars(prediction: &Value) -> Vec<(String, Value)> {
    let mut vars: Vec<(String, Value)> = prediction["input_vars"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    vars.sort_by_key(|(_, v)| v["index"].as_i64().unwrap_or(i64::MAX));
    vars
}

/// The template object that `?expand=template_id` adds as `template`.
pub(crate) fn template(service: &Value) -> Value {
    json!({
        "id": service["template_id"],
        "name": service["name"],
        "category": "serving",
        "container_image": format!("thetalabsofficial/{}:latest", service["alias"].as_str().unwrap_or("model")),
        "container_port": 8000,
        "create_time": CREATED,
        "update_time": UPDATED,
    })
}

struct Svc {
    n: u32,
    name: &'static str,
    alias: &'static str,
    workload: &'static str,
    default_prediction: &'static str,
    min_vram: u32,
    predictions: Value,
}

fn service(s: Svc) -> Value {
    let variants: Vec<String> = s.predictions.as_object().map_or_else(Vec::new, |p| {
        p.values()
            .flat_map(|v| v["variants"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .filter(|v| v != "default")
            .collect()
    });
    let mut variant_templates = Map::new();
    for (i, v) in variants.iter().enumerate() {
        variant_templates.insert(
            v.clone(),
            json!({"template_id": format!("img_fake{:02}v{}", s.n, i + 1), "min_vram": s.min_vram / 2, "min_ram": 16}),
        );
    }
    json!({
        "id": format!("srvc_fake{:02}{}", s.n, "x".repeat(20)),
        "name": s.name,
        "alias": s.alias,
        "state": "public",
        "template_id": format!("img_fake{:02}{}", s.n, "t".repeat(20)),
        "workload_type": s.workload,
        "predictions": s.predictions,
        "default_prediction": s.default_prediction,
        "min_vram": s.min_vram,
        "min_ram": 32,
        "executions": 1000 + s.n * 37,
        "rank": s.n,
        "variant_templates": variant_templates,
        "workers": if s.workload == "llm" { 2 } else { 1 },
        "create_time": CREATED,
        "update_time": UPDATED,
    })
}

/// A prediction; `cost` is `(input, output)` cents per `divisor` units.
#[allow(clippy::too_many_arguments)] // one positional row per prediction reads like the table it copies
fn pred(
    rank: u32,
    func_type: &str,
    unit: &str,
    cost: (u32, u32),
    divisor: u64,
    variants: &[&str],
    input_vars: Value,
    output_vars: Value,
) -> Value {
    json!({
        "rank": rank,
        "func_type": func_type,
        "instructions": json!({"unit": unit}).to_string(),
        "cost": {"input": cost.0, "output": cost.1},
        "cost_divisor": divisor,
        "input_vars": input_vars,
        "output_vars": output_vars,
        "variants": variants,
    })
}

fn chat_inputs(max_tokens: u32) -> Value {
    json!({
        "messages": {"type": "chat_array", "index": 0, "required": true, "description": "OpenAI-style messages [{role, content}]"},
        "max_tokens": {"type": "integer", "index": 1, "default": max_tokens, "default_value": max_tokens},
        "temperature": {"type": "float", "index": 2, "default": 0.7, "default_value": 0.7},
        "top_p": {"type": "float", "index": 3, "default": 0.9, "default_value": 0.9},
        "stream": {"type": "bool", "index": 4, "default": true, "default_value": true, "description": "stream server-sent events"},
    })
}

fn chat_outputs() -> Value {
    json!({"message": {"type": "string", "description": "the assistant's reply"}})
}

fn image_output() -> Value {
    json!({"image_url": {"type": "image_url", "action": "download", "results_path": "image_url"}})
}

fn text_output() -> Value {
    json!({"text": {"type": "string"}})
}

fn file(index: u32, description: &str) -> Value {
    json!({"type": "file", "index": index, "required": true, "description": description})
}

fn build() -> Vec<Value> {
    let llm = |n, name, alias, cost, ctx: u32, variants: &[&str]| {
        let mut inputs = chat_inputs(500);
        if alias == "gpt_oss_120b" {
            inputs["max_tokens"]["default"] = json!(1800);
            inputs["reasoning_effort"] = json!({"type": "string", "index": 5, "default": "low", "options": ["low", "medium", "high"]});
        }
        let mut p = pred(
            1,
            "chat",
            "1M input tokens",
            cost,
            1_000_000,
            variants,
            inputs,
            chat_outputs(),
        );
        p["openrouter_metadata"] = json!({"context_length": ctx});
        service(Svc {
            n,
            name,
            alias,
            workload: "llm",
            default_prediction: "completions",
            min_vram: 80,
            predictions: json!({"completions": p}),
        })
    };
    let mut services = vec![
        llm(
            1,
            "Qwen3",
            "qwen3",
            (20, 40),
            131_072,
            &["default", "parallax_32b_fp8"],
        ),
        llm(
            2,
            "GPT-OSS 120B",
            "gpt_oss_120b",
            (4, 20),
            131_072,
            &["default"],
        ),
        llm(
            3,
            "Llama 3.1 70B Instruct",
            "llama_3_1_70b",
            (20, 40),
            131_072,
            &["default", "quantized"],
        ),
        service(Svc {
            n: 4,
            name: "FLUX.1-schnell",
            alias: "flux",
            workload: "image",
            default_prediction: "generate_image",
            min_vram: 24,
            predictions: json!({"generate_image": pred(1, "generate_image", "image", (0, 1), 1, &["default", "quantized"], json!({
                "prompt": {"type": "string", "index": 0, "required": true, "description": "what to draw"},
                "guidance": {"type": "float", "index": 1, "default": 3.5},
                "height": {"type": "integer", "index": 2, "default": 1024},
                "width": {"type": "integer", "index": 3, "default": 1024},
                "num_steps": {"type": "integer", "index": 4, "default": 4},
                "seed": {"type": "integer", "index": 5},
                "image2image_strength": {"type": "float", "index": 6, "default": 0.8},
            }), image_output())}),
        }),
        service(Svc {
            n: 5,
            name: "Stable Diffusion XL Turbo",
            alias: "stable_diffusion_xl_turbo",
            workload: "image",
            default_prediction: "predict",
            min_vram: 16,
            predictions: json!({"predict": pred(1, "predict", "image", (0, 1), 1, &["default"], json!({
                "prompt": {"type": "string", "index": 0, "required": true},
                "steps": {"type": "integer", "index": 1, "default": 2},
                "strength": {"type": "float", "index": 2, "default": 0.5},
                "guidance": {"type": "float", "index": 3, "default": 0.0},
            }), image_output())}),
        }),
        service(Svc {
            n: 6,
            name: "Grounding DINO",
            alias: "grounding_dino",
            workload: "vision",
            default_prediction: "0",
            min_vram: 8,
            predictions: json!({"0": pred(1, "predict", "image", (0, 1), 1, &["default"], json!({
                "input_img": file(0, "image to search"),
                "detection_prompt": {"type": "string", "index": 1, "required": true, "description": "objects to detect, e.g. \"cat . dog\""},
            }), json!({
                "image_url": {"type": "image_url", "description": "the image with boxes drawn"},
                "detections": {"type": "json"},
            }))}),
        }),
        service(Svc {
            n: 7,
            name: "BLIP Image Captioning",
            alias: "blip",
            workload: "vision",
            default_prediction: "predict",
            min_vram: 8,
            predictions: json!({"predict": pred(1, "predict", "image", (0, 1), 1, &["default"], json!({
                "input_img": file(0, "image to caption"),
            }), text_output())}),
        }),
        service(Svc {
            n: 8,
            name: "LLaVA",
            alias: "llava",
            workload: "vision",
            default_prediction: "predict",
            min_vram: 16,
            predictions: json!({"predict": pred(1, "predict", "image", (0, 1), 1, &["default", "quantized"], json!({
                "input_img": file(0, "image to ask about"),
                "question": {"type": "string", "index": 1, "required": true},
            }), text_output())}),
        }),
        service(Svc {
            n: 9,
            name: "Whisper",
            alias: "whisper",
            workload: "audio",
            default_prediction: "stt",
            min_vram: 8,
            predictions: json!({"stt": pred(1, "stt", "audio clip", (0, 1), 2, &["default"], json!({
                "audio_filename": file(0, "an https URL or the filename returned by input_presigned_urls"),
                "language": {"type": "string", "index": 1, "default": "en"},
            }), text_output())}),
        }),
        service(Svc {
            n: 10,
            name: "Step-Video",
            alias: "step_video",
            workload: "video",
            default_prediction: "generate",
            min_vram: 80,
            predictions: json!({"generate": pred(1, "generate", "video", (0, 20), 1, &["default"], json!({
                "prompt": {"type": "string", "index": 0, "required": true},
                "frames": {"type": "integer", "index": 1, "default": 51},
                "fps": {"type": "integer", "index": 2, "default": 25},
            }), json!({"video_url": {"type": "video_url", "action": "download"}}))}),
        }),
        service(Svc {
            n: 11,
            name: "Image to Image",
            alias: "image_to_image",
            workload: "image",
            default_prediction: "stylize",
            min_vram: 16,
            predictions: json!({
                "stylize": pred(1, "predict", "image", (0, 1), 1, &["default"], json!({
                    "image_filename": file(0, "the uploaded image"),
                    "prompt": {"type": "string", "index": 1, "required": true, "description": "target style"},
                }), image_output()),
                "upscale": pred(2, "predict", "image", (0, 1), 1, &["default"], json!({
                    "image_filename": file(0, "the uploaded image"),
                    "scale": {"type": "integer", "index": 1, "default": 2},
                }), image_output()),
                "background_removal": pred(3, "predict", "image", (0, 1), 1, &["default"], json!({
                    "image_filename": file(0, "the uploaded image"),
                }), image_output()),
            }),
        }),
        service(Svc {
            n: 12,
            name: "Kokoro 82M",
            alias: "kokoro_82m",
            workload: "audio",
            default_prediction: "tts",
            min_vram: 4,
            predictions: json!({"tts": pred(1, "tts", "audio", (0, 1), 1, &["default"], json!({
                "text": {"type": "string", "index": 0, "required": true},
                "voice": {"type": "string", "index": 1, "default": "af_sky"},
                "speed": {"type": "float", "index": 2, "default": 1.0},
            }), json!({"audio_url": {"type": "audio_url", "action": "download"}}))}),
        }),
        // Catalogue entries the skill lists that are rarely live (theta-api.md): realistic specs, so
        // clients that read the catalogue generically meet their file, audio and video fields.
        llm(
            13,
            "MiniMax M2.5",
            "minimax_m2_5",
            (30, 120),
            196_608,
            &["default"],
        ),
        llm(
            14,
            "Llama 3 8B Instruct",
            "llama_3_8b",
            (5, 10),
            8_192,
            &["default"],
        ),
        service(Svc {
            n: 15,
            name: "Real-ESRGAN",
            alias: "esrgan",
            workload: "image",
            default_prediction: "upscale",
            min_vram: 8,
            predictions: json!({"upscale": pred(1, "predict", "image", (0, 2), 1, &["default"], json!({
                "input_img": file(0, "image to upscale"),
                "scale": {"type": "integer", "index": 1, "default": 4, "options": [2, 4]},
                "face_enhance": {"type": "bool", "index": 2, "default": false},
            }), image_output())}),
        }),
        service(Svc {
            n: 16,
            name: "Voice Cloning",
            alias: "voice_cloning",
            workload: "audio",
            default_prediction: "clone",
            min_vram: 8,
            predictions: json!({"clone": pred(1, "tts", "audio", (0, 1), 1, &["default"], json!({
                "text": {"type": "string", "index": 0, "required": true, "description": "what the voice says"},
                "reference_audio": file(1, "a few seconds of the voice to clone"),
                "language": {"type": "string", "index": 2, "default": "en"},
            }), json!({"audio_url": {"type": "audio_url", "action": "download"}}))}),
        }),
        service(Svc {
            n: 17,
            name: "InstantID",
            alias: "instant_id",
            workload: "image",
            default_prediction: "generate",
            min_vram: 24,
            predictions: json!({"generate": pred(1, "generate_image", "image", (0, 24), 1, &["default"], json!({
                "face_image": file(0, "a photo of the face to keep"),
                "prompt": {"type": "string", "index": 1, "required": true},
                "negative_prompt": {"type": "string", "index": 2, "default": ""},
                "identity_strength": {"type": "float", "index": 3, "default": 0.8},
            }), image_output())}),
        }),
        service(Svc {
            n: 18,
            name: "Talking Head",
            alias: "talking_head",
            workload: "video",
            default_prediction: "animate",
            min_vram: 16,
            predictions: json!({"animate": pred(1, "generate", "video", (0, 2), 1, &["default"], json!({
                "source_image": file(0, "the portrait to animate"),
                "driving_audio": file(1, "the speech to lip-sync"),
                "fps": {"type": "integer", "index": 2, "default": 25},
            }), json!({"video_url": {"type": "video_url", "action": "download"}}))}),
        }),
    ];
    let mut internal = service(Svc {
        n: 19,
        name: "Internal Eval Harness",
        alias: "internal_eval",
        workload: "llm",
        default_prediction: "completions",
        min_vram: 80,
        predictions: json!({"completions": pred(1, "chat", "1M input tokens", (0, 0), 1_000_000, &["default"], chat_inputs(500), chat_outputs())}),
    });
    internal["state"] = json!("internal");
    services.push(internal);
    services
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_by_alias_and_id_and_derived_fields() {
        let whisper = find("whisper").unwrap();
        assert_eq!(find(whisper["id"].as_str().unwrap()), Some(whisper));
        let stt = prediction(whisper, "stt").unwrap();
        assert_eq!(file_fields(stt), vec!["audio_filename"]);
        assert_eq!(required_fields(stt), vec!["audio_filename"]);
        let i2i = find("image_to_image").unwrap();
        assert_eq!(
            prediction_names(i2i),
            vec!["stylize", "upscale", "background_removal"]
        );
        assert!(is_chat(
            prediction(find("qwen3").unwrap(), "completions").unwrap()
        ));
        assert_eq!(
            services()
                .iter()
                .filter(|s| s["state"] == "internal")
                .count(),
            1
        );
        assert!(find("nope").is_none());
    }

    #[test]
    fn every_alias_the_skill_lists_is_served() {
        for alias in [
            "qwen3",
            "gpt_oss_120b",
            "llama_3_1_70b",
            "flux",
            "stable_diffusion_xl_turbo",
            "grounding_dino",
            "blip",
            "llava",
            "whisper",
            "minimax_m2_5",
            "llama_3_8b",
            "step_video",
            "esrgan",
            "voice_cloning",
            "instant_id",
            "talking_head",
        ] {
            let s = find(alias).unwrap_or_else(|| panic!("{alias} is missing"));
            let p = prediction(s, s["default_prediction"].as_str().unwrap())
                .unwrap_or_else(|| panic!("{alias}: no default prediction"));
            assert!(!required_fields(p).is_empty(), "{alias}: no required input");
            assert!(
                p["output_vars"].as_object().is_some_and(|o| !o.is_empty()),
                "{alias}"
            );
        }
        assert_eq!(
            file_fields(prediction(find("talking_head").unwrap(), "animate").unwrap()).len(),
            2
        );
    }
}
