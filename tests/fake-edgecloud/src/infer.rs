//! On-demand infer requests: the InferRequest object (theta-api-sources.md §2.1), its outputs
//! per service, and the pending → processing → success|error lifecycle (§4).

use crate::clock::now_iso;
use crate::state::{Outcome, State, StoredInfer};
use crate::{ORG_ID, PROJECT_ID};
use serde_json::{Value, json};

/// Where generated files are served from (live: `ondemand-outputs.thetaedgecloud.com`).
pub(crate) const OUTPUTS_BASE: &str = "https://ondemand-outputs.thetaedgecloud.com";

/// A request to create.
pub(crate) struct NewInfer<'a> {
    pub service: &'a Value,
    pub prediction: &'a str,
    pub variant: Option<String>,
    pub webhook: Value,
    pub input: Value,
    /// A ready-made outcome (chat answers); otherwise derived from the service and input.
    pub outcome: Option<Outcome>,
}

/// Whether the input asks for the error lifecycle: `"fail": true`, or any text containing "FAIL".
pub(crate) fn wants_failure(input: &Value) -> bool {
    input["fail"] == true
        || input.as_object().is_some_and(|m| {
            m.values()
                .any(|v| v.as_str().is_some_and(|s| s.contains("FAIL")))
        })
}

fn output_url(service: &Value, id: &str, field: &str, ext: &str) -> String {
    format!(
        "{OUTPUTS_BASE}/{}/{PROJECT_ID}/{id}_{field}.{ext}",
        service["id"].as_str().unwrap_or_default()
    )
}

/// The output a service produces for `input`; `uploaded` gives the size of an uploaded file by
/// name, so outputs about an upload say something derived from it.
fn output_for(
    service: &Value,
    id: &str,
    input: &Value,
    uploaded: &dyn Fn(&str) -> Option<usize>,
) -> Value {
    let text = |k: &str| input[k].as_str().unwrap_or_default().to_owned();
    let size = |k: &str| uploaded(&text(k));
    let of_upload = |k: &str| {
        size(k)
            .map(|n| format!(" (from a {n}-byte upload)"))
            .unwrap_or_default()
    };
    match service["alias"].as_str().unwrap_or_default() {
        "flux" | "stable_diffusion_xl_turbo" | "image_to_image" => {
            json!({"image_url": output_url(service, id, "image_url", "jpg")})
        }
        "grounding_dino" => {
            let detections: Vec<Value> = text("detection_prompt")
                .split('.')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .enumerate()
                .map(|(i, label)| {
                    let x = 10 + 40 * i as u64;
                    json!({"label": label, "score": 0.9, "box": [x, 10, x + 30, 60]})
                })
                .collect();
            let mut out = json!({"image_url": output_url(service, id, "image_url", "jpg"), "detections": detections});
            if let Some(n) = size("input_img") {
                out["input_bytes"] = json!(n);
            }
            out
        }
        "blip" => json!({"text": format!(
            "a photo of a blue cloud icon on a white background{}",
            of_upload("input_img")
        )}),
        "llava" => json!({"text": format!(
            "Looking at the image{}: {}",
            of_upload("input_img"),
            text("question")
        )}),
        "whisper" => {
            json!({"text": format!(
                "Transcript of {}{}: hello from the fake.",
                text("audio_filename"),
                of_upload("audio_filename")
            )})
        }
        "step_video" => json!({"video_url": output_url(service, id, "video_url", "mp4")}),
        "kokoro_82m" => json!({"audio_url": output_url(service, id, "audio_url", "wav")}),
        _ => output_from_vars(service, id),
    }
}

/// An output shaped by the default prediction's `output_vars`: a download URL for media, text else.
fn output_from_vars(service: &Value, id: &str) -> Value {
    let prediction = service["default_prediction"].as_str().unwrap_or_default();
    let vars = service["predictions"][prediction]["output_vars"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    for (field, spec) in vars {
        let value = match spec["type"].as_str().unwrap_or_default() {
            "image_url" => json!(output_url(service, id, &field, "jpg")),
            "video_url" => json!(output_url(service, id, &field, "mp4")),
            "audio_url" => json!(output_url(service, id, &field, "wav")),
            _ => json!("ok"),
        };
        out.insert(field, value);
    }
    if out.is_empty() {
        out.insert("result".into(), json!("ok"));
    }
    Value::Object(out)
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Move to `processing` (assigned to a worker).
fn start(object: &mut Value) {
    let now = now_iso();
    object["state"] = json!("processing");
    object["infer_endpoint_id"] = json!("ie_fake00000000000000000001");
    if object["assigned_time"].is_null() {
        object["assigned_time"] = json!(now);
    }
    if object["process_time"].is_null() {
        object["process_time"] = json!(now);
    }
    object["update_time"] = json!(now);
}

/// Move to the terminal state.
fn finish(object: &mut Value, outcome: &Outcome) {
    start(object);
    let now = now_iso();
    match outcome {
        Ok((output, (input_units, output_units))) => {
            let divisor = number(&object["prediction_cost_divisor"]).max(1.0);
            let cost = |units: u64, key: &str| {
                // Cents per `divisor` units, reported in dollars.
                units as f64 * number(&object["prediction_cost"][key]) / divisor / 100.0
            };
            object["cost_usd"] = json!({
                "input": cost(*input_units, "input"),
                "output": cost(*output_units, "output"),
            });
            object["usage"] = json!({"input": input_units, "output": output_units});
            object["state"] = json!("success");
            object["output"] = output.clone();
            object["success_time"] = json!(now);
        }
        Err(message) => {
            object["state"] = json!("error");
            object["error_message"] = json!(message);
            object["error"] = json!(message);
            object["error_time"] = json!(now);
        }
    }
    object["update_time"] = json!(now);
}

/// Create a request; finished at once when `wait > 0` (the wait is modelled as instantaneous),
/// else left `pending` for polls to advance. Returns the object as created.
pub(crate) fn create(state: &State, new: NewInfer<'_>, wait: u64) -> Value {
    let id = state.next_infer_id();
    let service = new.service;
    let prediction = &service["predictions"][new.prediction];
    let variant = new.variant.unwrap_or_else(|| "default".into());
    let template_id = service["variant_templates"][&variant]["template_id"]
        .as_str()
        .or(service["template_id"].as_str())
        .unwrap_or_default()
        .to_owned();
    let now = now_iso();
    let outcome = new.outcome.unwrap_or_else(|| {
        if wants_failure(&new.input) {
            Err("inference failed: the worker could not process this input (fake failure requested)".into())
        } else {
            let uploaded = |name: &str| state.upload(name).map(|b| b.len());
            Ok((output_for(service, &id, &new.input, &uploaded), (0, 1)))
        }
    });
    let mut object = json!({
        "id": id,
        "org_id": ORG_ID,
        "project_id": PROJECT_ID,
        "service_id": service["id"],
        "template_id": template_id,
        "prediction": new.prediction,
        "variant": variant,
        "webhook": new.webhook,
        "community_worker_only": false,
        "state": "pending",
        "infer_endpoint_id": null,
        "input": new.input,
        "output": null,
        "usage": {"input": 0, "output": 0},
        "prediction_cost": prediction["cost"],
        "prediction_cost_divisor": prediction["cost_divisor"],
        "cost_usd": {"input": 0, "output": 0},
        "create_time": now,
        "update_time": now,
        "assigned_time": null,
        "process_time": null,
        "success_time": null,
        "error_message": null,
        "error_time": null,
        "is_new": true,
    });
    if wait > 0 {
        finish(&mut object, &outcome);
    }
    let mut stored_object = object.clone();
    stored_object["is_new"] = json!(false);
    state.store_infer(
        &id,
        StoredInfer {
            object: stored_object,
            polls: 0,
            outcome,
        },
    );
    object
}

/// One `GET /infer_request/{id}`: advance the lifecycle and return the object.
pub(crate) fn poll(state: &State, id: &str, polls_until_done: u32) -> Option<Value> {
    state.update_infer(id, |stored| {
        if matches!(stored.object["state"].as_str(), Some("success" | "error")) {
            return;
        }
        stored.polls += 1;
        if stored.polls >= polls_until_done {
            finish(&mut stored.object, &stored.outcome);
        } else {
            start(&mut stored.object);
        }
    })
}

/// The `model_quotas` entry for one more use of `template_id`.
pub(crate) fn quota(state: &State, template_id: &str) -> Value {
    let used = state.use_quota(template_id);
    json!([{
        "template_id": template_id,
        "ten_min_quota": 100,
        "ten_min_remaining": 100u32.saturating_sub(used),
        "daily_quota": 1000,
        "daily_remaining": 1000u32.saturating_sub(used),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue;

    fn new<'a>(service: &'a Value, prediction: &'a str, input: Value) -> NewInfer<'a> {
        NewInfer {
            service,
            prediction,
            variant: None,
            webhook: Value::Null,
            input,
            outcome: None,
        }
    }

    #[test]
    fn lifecycle_pending_processing_success() {
        let state = State::default();
        let flux = catalogue::find("flux").unwrap();
        let created = create(
            &state,
            new(flux, "generate_image", json!({"prompt": "x"})),
            0,
        );
        assert_eq!(created["state"], "pending");
        let id = created["id"].as_str().unwrap();
        assert!(id.starts_with("infr_rqst_"));
        assert_eq!(poll(&state, id, 2).unwrap()["state"], "processing");
        let done = poll(&state, id, 2).unwrap();
        assert_eq!(done["state"], "success");
        assert!(
            done["output"]["image_url"]
                .as_str()
                .unwrap()
                .starts_with(OUTPUTS_BASE)
        );
        assert_eq!(done["cost_usd"]["output"], 0.01);
        assert_eq!(poll(&state, id, 2).unwrap()["state"], "success");
        assert!(poll(&state, "infr_rqst_nope", 2).is_none());
    }

    #[test]
    fn failure_is_requested_by_the_input() {
        let state = State::default();
        let sdxl = catalogue::find("stable_diffusion_xl_turbo").unwrap();
        let r = create(
            &state,
            new(sdxl, "predict", json!({"prompt": "FAIL now"})),
            5,
        );
        assert_eq!(r["state"], "error");
        assert!(r["error_message"].as_str().unwrap().contains("failed"));
        assert!(wants_failure(&json!({"fail": true})));
        assert!(!wants_failure(&json!({"prompt": "fine"})));
    }
}
