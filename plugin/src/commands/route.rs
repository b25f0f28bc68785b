//! `theta.route`: which Theta command and services do a kind of AI work, the skill's reason to exist
//! (route work to Theta to cut cost). Read-only: the routing table below plus the live catalogue
//! entry of each service. The host adds what it would reserve per call from its price table.

use super::args::Args;
use super::ondemand::{ServiceSummary, list_services};
use super::{ToJson, object, str_list};
use crate::client::Ctx;
use crate::error::{Result, ThetaError};
use serde_json::Value;

/// The skill's operational rule, returned with every route (and said in the MCP instructions).
pub const RULE: &str = "On-demand services (infer, theta.ondemand.chat) and the video API are the production \
default: paid per request, nothing to start or stop. Dedicated deployments bill hourly until deleted and answer \
404/502/503 while warming up, so their calls need readiness retries; use them for sustained load or custom images.";

/// One kind of work and where it goes.
struct Workload {
    kind: &'static str,
    command: &'static str,
    /// On-demand services in order of preference (empty: not an on-demand service).
    services: &'static [&'static str],
    how: &'static str,
}

const WORKLOADS: [Workload; 10] = [
    Workload {
        kind: "chat",
        command: "theta.ondemand.chat",
        services: &["qwen3", "llama_3_1_70b", "llama_3_8b"],
        how: "messages in, tokens streamed; qwen3 is the default",
    },
    Workload {
        kind: "reasoning_chat",
        command: "theta.ondemand.chat",
        services: &["gpt_oss_120b", "minimax_m2_5"],
        how: "answer and reasoning apart; keep max_tokens ≥ 1800 (reasoning uses the same budget)",
    },
    Workload {
        kind: "image_generation",
        command: "infer",
        services: &["flux", "stable_diffusion_xl_turbo", "instant_id"],
        how: "input.prompt; poll with get_request_status when wait is 0",
    },
    Workload {
        kind: "image_upscaling",
        command: "infer",
        services: &["esrgan", "image_to_image"],
        how: "upload the image (theta.ondemand.upload or get_upload_url), pass its filename in the file field",
    },
    Workload {
        kind: "vision",
        command: "infer",
        services: &["blip", "llava", "grounding_dino"],
        how: "upload the image, pass its filename in input_img (llava: plus question, grounding_dino: detection_prompt)",
    },
    Workload {
        kind: "transcription",
        command: "infer",
        services: &["whisper"],
        how: "upload the audio (or give a public https URL) in audio_filename",
    },
    Workload {
        kind: "voice",
        command: "infer",
        services: &["kokoro_82m", "voice_cloning"],
        how: "input.text; voice_cloning also takes an uploaded reference_audio",
    },
    Workload {
        kind: "video_generation",
        command: "infer",
        services: &["step_video", "talking_head"],
        how: "input.prompt (talking_head: an uploaded portrait and audio); long-running: wait 0, then poll",
    },
    Workload {
        kind: "video_transcoding",
        command: "theta.video.videoCreate",
        services: &[],
        how: "theta.video.uploadCreate for a presigned upload (or a public source_uri), then theta.video.videoCreate, then poll theta.video.videoGet",
    },
    Workload {
        kind: "gpu_job",
        command: "theta.deployments.create",
        services: &[],
        how: "a dedicated deployment from theta.deployments.listTemplates on a VM type from theta.deployments.listVm; \
              call it through theta.inference.* with readiness retries and delete it when done (or use theta.deployments.validateDisposable)",
    },
];

pub const ROUTE_SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"required":["workload"],"properties":{
"workload":{"type":"string","enum":["chat","reasoning_chat","image_generation","image_upscaling","vision","transcription","voice","video_generation","video_transcoding","gpu_job"],"description":"The kind of work to route."},
"catalogue":{"type":"boolean","description":"Read each service's current catalogue entry (default true; false answers from the table alone, offline)."}}}"#;

#[derive(Debug, Clone, PartialEq)]
pub struct RouteArgs {
    pub workload: String,
    pub catalogue: bool,
}

pub fn parse_route(args: Args) -> Result<RouteArgs> {
    args.allow_only(&["workload", "catalogue"])?;
    let workload = args
        .string("workload")?
        .ok_or_else(|| ThetaError::invalid("workload", "required"))?;
    if !WORKLOADS.iter().any(|w| w.kind == workload) {
        let kinds: Vec<&str> = WORKLOADS.iter().map(|w| w.kind).collect();
        return Err(ThetaError::invalid(
            "workload",
            format!("expected one of {}, got `{workload}`", kinds.join(", ")),
        ));
    }
    Ok(RouteArgs {
        workload,
        catalogue: args.bool("catalogue")?.unwrap_or(true),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub workload: &'static str,
    pub command: &'static str,
    pub how: &'static str,
    pub services: Vec<&'static str>,
    /// Each service's catalogue entry when read (`None`: not asked, or not in the catalogue now).
    pub catalogue: Option<Vec<(&'static str, Option<ServiceSummary>)>>,
}

pub fn route(ctx: &Ctx, args: RouteArgs) -> Result<Route> {
    let w = WORKLOADS
        .iter()
        .find(|w| w.kind == args.workload)
        .ok_or_else(|| ThetaError::invalid("workload", "unknown workload"))?;
    let catalogue = if args.catalogue && !w.services.is_empty() {
        let live = list_services(ctx, None)?;
        Some(
            w.services
                .iter()
                .map(|alias| (*alias, live.iter().find(|s| s.alias == *alias).cloned()))
                .collect(),
        )
    } else {
        None
    };
    Ok(Route {
        workload: w.kind,
        command: w.command,
        how: w.how,
        services: w.services.to_vec(),
        catalogue,
    })
}

impl ToJson for Route {
    fn to_json(&self) -> Value {
        let services: Vec<String> = self.services.iter().map(|s| (*s).to_owned()).collect();
        let catalogue = self.catalogue.as_ref().map_or(Value::Null, |entries| {
            Value::Array(
                entries
                    .iter()
                    .map(|(alias, entry)| {
                        object(vec![
                            ("alias", Value::String((*alias).to_owned())),
                            ("available", Value::Bool(entry.is_some())),
                            ("entry", entry.as_ref().map_or(Value::Null, ToJson::to_json)),
                        ])
                    })
                    .collect(),
            )
        });
        object(vec![
            ("workload", Value::String(self.workload.into())),
            ("command", Value::String(self.command.into())),
            ("services", str_list(&services)),
            ("how", Value::String(self.how.into())),
            ("rule", Value::String(RULE.into())),
            ("catalogue", catalogue),
        ])
    }
}
