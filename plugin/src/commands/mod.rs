//! The command registry: for every command its name, summary, JSON Schema, effect and credentials,
//! and `invoke`, which parses a JSON arguments object, runs the command and returns JSON.
//! `describe()` and `invoke()` read the same table, so they cannot disagree.

pub mod account;
pub mod agents;
pub mod args;
pub mod chat;
pub mod deployments;
pub mod inference;
pub mod ondemand;
pub mod readiness;
pub mod route;
pub mod upload;
pub mod video;

use crate::client::Ctx;
use crate::error::{Result, ThetaError};
use args::Args;
use serde_json::Value;

/// What a command does to the outside world (hosts use it for grants and dry-run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    Mutate,
    Spend,
}

/// One command as `describe()` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandInfo {
    pub name: String,
    pub summary: String,
    pub args_schema: String,
    pub effect: Effect,
    pub credentials: Vec<String>,
}

struct Command {
    name: &'static str,
    summary: &'static str,
    /// JSON Schema (draft 2020-12) of the arguments, as text.
    schema: &'static str,
    effect: Effect,
    fam: Fam,
    /// Needs none of the family's credentials (public catalogues).
    public: bool,
    run: fn(&Ctx, Args) -> Result<Value>,
}

/// A command family: each needs only its own credentials and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fam {
    OnDemand,
    Deployments,
    Inference,
    Agents,
    Video,
    Billing,
    Auth,
}

impl Fam {
    pub const ALL: [Fam; 7] = [
        Fam::OnDemand,
        Fam::Deployments,
        Fam::Inference,
        Fam::Agents,
        Fam::Video,
        Fam::Billing,
        Fam::Auth,
    ];

    pub fn name(self) -> &'static str {
        [
            "ondemand",
            "deployments",
            "inference",
            "ai-agents",
            "video",
            "billing",
            "auth",
        ][self as usize]
    }

    /// The variables the family needs (secrets and settings), by name.
    pub fn vars(self) -> &'static [&'static str] {
        match self {
            Fam::OnDemand => &["THETA_ONDEMAND_API_TOKEN"],
            Fam::Deployments | Fam::Agents => &["THETA_EC_API_KEY", "THETA_EC_PROJECT_ID"],
            Fam::Inference => &["THETA_INFERENCE_ENDPOINT"],
            Fam::Video => &["THETA_VIDEO_SA_ID", "THETA_VIDEO_SA_SECRET"],
            Fam::Billing => &["THETA_EC_API_KEY", "THETA_ORG_ID"],
            Fam::Auth => &[],
        }
    }
}

/// Every command's family, by name.
pub fn families() -> Vec<(Fam, &'static str)> {
    commands().iter().map(|c| (c.fam, c.name)).collect()
}

/// Other names callers use for the same commands (the skill's camelCase vocabulary).
const ALIASES: [(&str, &str); 6] = [
    ("theta.ondemand.listServices", "list_services"),
    ("theta.ondemand.infer", "infer"),
    ("theta.ondemand.status", "get_request_status"),
    ("theta.ondemand.inputPresignedUrls", "get_upload_url"),
    (
        "theta.deployments.listStandard",
        "theta.deployments.listTemplates",
    ),
    ("theta.video.ingestorList", "theta.video.ingestor.list"),
];

/// Results as JSON, written by hand: serde's derived serializers would triple the component's size.
pub trait ToJson {
    fn to_json(&self) -> Value;
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

pub(crate) fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

pub(crate) fn str_list(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// An object from (key, value) pairs, in that order of keys.
pub(crate) fn object(pairs: Vec<(&str, Value)>) -> Value {
    // Inserted one by one: collecting into the map would pull in a sort.
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

/// A field by any of these names, ignoring case and `_` (Theta mixes PascalCase and snake_case).
pub(crate) fn field<'v>(v: &'v Value, names: &[&str]) -> Option<&'v Value> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let map = v.as_object()?;
    names.iter().find_map(|n| {
        let n = norm(n);
        map.iter()
            .find(|(k, v)| norm(k) == n && !v.is_null())
            .map(|(_, v)| v)
    })
}

/// A string (or number) field, as text.
pub(crate) fn text(v: &Value, names: &[&str]) -> Option<String> {
    match field(v, names)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The items of a list answer: the body itself when it is an array, else its first array under `keys`.
pub(crate) fn items<'v>(body: &'v Value, keys: &[&str]) -> Vec<&'v Value> {
    body.as_array()
        .or_else(|| {
            keys.iter()
                .find_map(|k| body.get(*k).and_then(Value::as_array))
        })
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// A required non-secret setting (project id, org id, endpoint): `missing-credential` naming it.
pub(crate) fn setting(value: &Option<String>, var: &str) -> Result<String> {
    value.clone().ok_or_else(|| crate::client::missing(var))
}

fn to_json<T: ToJson>(value: T) -> Result<Value> {
    Ok(value.to_json())
}

fn commands() -> Vec<Command> {
    vec![
        Command {
            name: "list_services",
            summary: "List the services of the on-demand catalogue (public ones), optionally of one category.",
            schema: ondemand::LIST_SERVICES_SCHEMA,
            effect: Effect::Read,
            fam: Fam::OnDemand,
            public: true,
            run: |ctx, args| {
                to_json(ondemand::list_services(
                    ctx,
                    ondemand::parse_list_services(args)?,
                )?)
            },
        },
        Command {
            name: "infer",
            summary: "Run inference on an on-demand service (paid). With wait 0 it returns a pending request to poll \
                          with get_request_status.",
            schema: ondemand::INFER_SCHEMA,
            effect: Effect::Spend,
            fam: Fam::OnDemand,
            public: false,
            run: |ctx, args| to_json(ondemand::infer(ctx, ondemand::parse_infer(args)?)?),
        },
        Command {
            name: "get_request_status",
            summary: "Status and, when finished, output of an inference request.",
            schema: ondemand::STATUS_SCHEMA,
            effect: Effect::Read,
            fam: Fam::OnDemand,
            public: false,
            run: |ctx, args| {
                to_json(ondemand::get_request_status(
                    ctx,
                    &ondemand::parse_status(args)?,
                )?)
            },
        },
        Command {
            name: "get_upload_url",
            summary: "Presigned upload URLs for a service's file inputs (free, but creates URLs). PUT the file to \
                          upload_url, then pass filename as the field's value in infer.",
            schema: ondemand::UPLOAD_SCHEMA,
            effect: Effect::Mutate,
            fam: Fam::OnDemand,
            public: false,
            run: |ctx, args| {
                let (service, fields, prediction) = ondemand::parse_upload(args)?;
                to_json(ondemand::get_upload_url(
                    ctx,
                    &service,
                    &fields,
                    prediction.as_deref(),
                )?)
            },
        },
        Command {
            name: "theta.ondemand.chat",
            summary: "Chat with an on-demand LLM: qwen3 by default (tokens streamed as they arrive), or gpt_oss_120b \
                          (answer and reasoning returned apart). Paid.",
            schema: chat::CHAT_SCHEMA,
            effect: Effect::Spend,
            fam: Fam::OnDemand,
            public: false,
            run: |ctx, args| to_json(chat::chat(ctx, chat::parse_chat(args)?)?),
        },
        Command {
            name: "theta.ondemand.upload",
            summary: "Upload one file (base64, at most 8 MiB) for a service's file input in one call: asks for a \
                          presigned URL, PUTs the bytes to it and returns the `input` to pass to infer. Free, but \
                          stores the file.",
            schema: upload::UPLOAD_SCHEMA,
            effect: Effect::Mutate,
            fam: Fam::OnDemand,
            public: false,
            run: |ctx, args| to_json(upload::upload(ctx, upload::parse_upload(args)?)?),
        },
        // ---- deployments (controller, project scoped) ----
        cmd(
            "theta.deployments.list",
            "List the project's deployments (route shape probed, or given).",
            deployments::LIST_SCHEMA,
            Effect::Read,
            Fam::Deployments,
            |ctx, args| {
                args.allow_only(&["route"])?;
                let (route, list) = deployments::list(ctx, deployments::parse_route(&args)?)?;
                Ok(object(vec![
                    ("route", Value::String(route)),
                    ("deployments", list.to_json()),
                ]))
            },
        ),
        cmd(
            "theta.deployments.get",
            "One deployment by Shard and Suffix.",
            deployments::GET_SCHEMA,
            Effect::Read,
            Fam::Deployments,
            |ctx, args| {
                args.allow_only(&["shard", "suffix", "route"])?;
                let (shard, suffix) = deployments::parse_target(&args)?;
                to_json(deployments::get(
                    ctx,
                    &shard,
                    &suffix,
                    deployments::parse_route(&args)?,
                )?)
            },
        ),
        cmd(
            "theta.deployments.create",
            "Create a deployment (paid, billed hourly). Without vm_id it prefers vm_gt1 when \
             it has capacity, else vm_gt2, else a V100 type, and says which and why.",
            deployments::CREATE_SCHEMA,
            Effect::Spend,
            Fam::Deployments,
            |ctx, args| {
                args.allow_only(&deployments_create_fields())?;
                to_json(deployments::create(
                    ctx,
                    deployments::parse_create(ctx, &args)?,
                )?)
            },
        ),
        cmd(
            "theta.deployments.delete",
            "Delete a deployment by Shard and Suffix (stops its billing).",
            deployments::GET_SCHEMA,
            Effect::Mutate,
            Fam::Deployments,
            |ctx, args| {
                args.allow_only(&["shard", "suffix", "route"])?;
                let (shard, suffix) = deployments::parse_target(&args)?;
                deployments::delete(ctx, &shard, &suffix, deployments::parse_route(&args)?)
            },
        ),
        cmd(
            "theta.deployments.start",
            "Start a stopped deployment (paid: billed hourly again until stopped or deleted).",
            deployments::GET_SCHEMA,
            Effect::Spend,
            Fam::Deployments,
            |ctx, args| lifecycle(ctx, args, deployments::LifecycleAction::Start),
        ),
        cmd(
            "theta.deployments.stop",
            "Stop a deployment: its hourly billing ends, its endpoint and credentials are kept \
             (start resumes it, delete removes it).",
            deployments::GET_SCHEMA,
            Effect::Mutate,
            Fam::Deployments,
            |ctx, args| lifecycle(ctx, args, deployments::LifecycleAction::Stop),
        ),
        Command {
            public: true,
            ..cmd(
                "theta.deployments.listVm",
                "VM (machine) types with GPU, price and free capacity when listed.",
                inference::NO_ARGS_SCHEMA,
                Effect::Read,
                Fam::Deployments,
                |ctx, args| {
                    args.allow_only(&[])?;
                    to_json(deployments::list_vm_types(ctx)?)
                },
            )
        },
        cmd(
            "theta.deployments.listTemplates",
            "Deployment templates: standard ones by category, or the project's custom ones.",
            deployments::TEMPLATES_SCHEMA,
            Effect::Read,
            Fam::Deployments,
            |ctx, args| {
                let (category, custom, page, number) = deployments::parse_templates(args)?;
                to_json(deployments::list_templates(
                    ctx,
                    category.as_deref(),
                    custom,
                    page,
                    number,
                )?)
            },
        ),
        cmd(
            "theta.deployments.routeProbe",
            "Which route shape the project answers: /deployment/... or /deployments/...",
            inference::NO_ARGS_SCHEMA,
            Effect::Read,
            Fam::Deployments,
            |ctx, args| {
                args.allow_only(&[])?;
                to_json(deployments::route_probe(ctx)?)
            },
        ),
        cmd(
            "theta.deployments.validateDisposable",
            "Create one disposable deployment with Basic auth (generated when not given), wait until \
             ready, chat with it once, delete it and check the list that it is gone; the org \
             balance before and after when THETA_ORG_ID is set (paid). It always deletes what it \
             created, even when a step fails.",
            deployments::VALIDATE_SCHEMA,
            Effect::Spend,
            Fam::Deployments,
            |ctx, args| {
                deployments::validate_disposable(ctx, deployments::parse_validate(ctx, args)?)
            },
        ),
        // ---- dedicated inference endpoint ----
        cmd(
            "theta.inference.ready",
            "Poll THETA_INFERENCE_ENDPOINT until it answers (openai: /v1/models, gradio: /config), \
             riding out warm-up 404/502 for the given window.",
            inference::READY_SCHEMA,
            Effect::Read,
            Fam::Inference,
            |ctx, args| {
                let (probe, timeout, interval) = inference::parse_ready(ctx, args)?;
                to_json(inference::ready(ctx, &probe, timeout, interval)?)
            },
        ),
        cmd(
            "theta.inference.models",
            "The models the dedicated endpoint serves (/v1/models), riding out warm-up \
             (404/502/503) for the readiness window.",
            inference::MODELS_SCHEMA,
            Effect::Read,
            Fam::Inference,
            |ctx, args| {
                let wait = inference::parse_models(ctx, args)?;
                to_json(inference::models(ctx, &wait)?)
            },
        ),
        cmd(
            "theta.inference.chat",
            "Chat with the dedicated endpoint (/v1/chat/completions), riding out warm-up \
             (404/502/503) for the readiness window. Paid.",
            inference::CHAT_SCHEMA,
            Effect::Spend,
            Fam::Inference,
            |ctx, args| {
                let (chat_args, model, wait) = inference::parse_chat(ctx, args)?;
                to_json(inference::chat(ctx, chat_args, model, &wait)?)
            },
        ),
        // ---- AI agents ----
        cmd(
            "theta.ai.agent.create",
            "Create an AI agent (RAG chatbot) in the project.",
            agents::CREATE_SCHEMA,
            Effect::Mutate,
            Fam::Agents,
            |ctx, args| {
                args.allow_only(&agents::AGENT_FIELDS)?;
                to_json(agents::create(
                    ctx,
                    agents::parse_agent_fields(&args, true)?,
                )?)
            },
        ),
        cmd(
            "theta.ai.agent.get",
            "One AI agent by id.",
            agents::ID_SCHEMA,
            Effect::Read,
            Fam::Agents,
            |ctx, args| {
                args.allow_only(&["chatbot_id", "chatbotId"])?;
                to_json(agents::get(ctx, &agents::chatbot_id(&args)?)?)
            },
        ),
        cmd(
            "theta.ai.agent.update",
            "Change an AI agent's settings.",
            agents::UPDATE_SCHEMA,
            Effect::Mutate,
            Fam::Agents,
            |ctx, mut args| {
                let id = agents::chatbot_id(&args)?;
                args.take("chatbot_id");
                args.take("chatbotId");
                args.allow_only(&agents::AGENT_FIELDS)?;
                to_json(agents::update(
                    ctx,
                    &id,
                    agents::parse_agent_fields(&args, false)?,
                )?)
            },
        ),
        cmd(
            "theta.ai.agent.list",
            "The project's AI agents.",
            agents::PAGE_SCHEMA,
            Effect::Read,
            Fam::Agents,
            |ctx, args| {
                args.allow_only(&["page", "number"])?;
                let (page, number) = agents::page_args(&args, 100)?;
                to_json(agents::list(ctx, page, number)?)
            },
        ),
        cmd(
            "theta.ai.agent.document.create",
            "Add a knowledge document to an agent; its content is the given string.",
            agents::DOC_WRITE_SCHEMA,
            Effect::Mutate,
            Fam::Agents,
            |ctx, args| {
                let (chatbot, _, file, metadata) = agents::parse_doc_write(&args, false)?;
                agents::write_document(ctx, &chatbot, None, &file, &metadata)
            },
        ),
        cmd(
            "theta.ai.agent.document.update",
            "Replace a knowledge document of an agent.",
            agents::DOC_WRITE_SCHEMA,
            Effect::Mutate,
            Fam::Agents,
            |ctx, args| {
                let (chatbot, document, file, metadata) = agents::parse_doc_write(&args, true)?;
                agents::write_document(ctx, &chatbot, document.as_deref(), &file, &metadata)
            },
        ),
        cmd(
            "theta.ai.agent.document.get",
            "One knowledge document, with its content.",
            agents::DOC_GET_SCHEMA,
            Effect::Read,
            Fam::Agents,
            |ctx, args| {
                let (chatbot, document) = agents::parse_doc_get(&args)?;
                agents::get_document(ctx, &chatbot, &document)
            },
        ),
        cmd(
            "theta.ai.agent.document.list",
            "An agent's knowledge documents.",
            agents::DOC_LIST_SCHEMA,
            Effect::Read,
            Fam::Agents,
            |ctx, args| {
                args.allow_only(&["chatbot_id", "chatbotId", "page", "number"])?;
                let (page, number) = agents::page_args(&args, 30)?;
                agents::list_documents(ctx, &agents::chatbot_id(&args)?, page, number)
            },
        ),
        // ---- video ----
        cmd(
            "theta.video.list",
            "Videos of the service account.",
            video::LIST_SCHEMA,
            Effect::Read,
            Fam::Video,
            |ctx, args| to_json(video::list(ctx, args)?),
        ),
        cmd(
            "theta.video.uploadCreate",
            "A presigned upload slot for a video file (PUT the bytes to it).",
            inference::NO_ARGS_SCHEMA,
            Effect::Mutate,
            Fam::Video,
            |ctx, args| {
                args.allow_only(&[])?;
                video::upload_create(ctx)
            },
        ),
        cmd(
            "theta.video.videoCreate",
            "Transcode an uploaded video or a public URL (paid); poll theta.video.videoGet \
             until state is success or error.",
            video::VIDEO_CREATE_SCHEMA,
            Effect::Spend,
            Fam::Video,
            |ctx, args| to_json(video::video_create(ctx, video::parse_video_create(args)?)?),
        ),
        cmd(
            "theta.video.videoGet",
            "A video's state (created, processing, success, error), progress and playback URLs.",
            video::VIDEO_GET_SCHEMA,
            Effect::Read,
            Fam::Video,
            |ctx, args| {
                to_json(video::video_get(
                    ctx,
                    &video::id_arg(&args, "video_id", "videoId")?,
                )?)
            },
        ),
        cmd(
            "theta.video.streamCreate",
            "Create a livestream (at most 3 per service account).",
            video::STREAM_CREATE_SCHEMA,
            Effect::Mutate,
            Fam::Video,
            |ctx, args| video::stream_create(ctx, video::parse_stream_create(args)?),
        ),
        cmd(
            "theta.video.streamGet",
            "A livestream's status and playback URL.",
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["stream_id"],"properties":{"stream_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The stream id."}}}"#,
            Effect::Read,
            Fam::Video,
            |ctx, args| video::stream_get(ctx, &video::id_arg(&args, "stream_id", "streamId")?),
        ),
        cmd(
            "theta.video.streamList",
            "The service account's livestreams.",
            video::STREAM_LIST_SCHEMA,
            Effect::Read,
            Fam::Video,
            video::stream_list,
        ),
        cmd(
            "theta.video.ingestor.list",
            "Edge ingestors, nearest first.",
            inference::NO_ARGS_SCHEMA,
            Effect::Read,
            Fam::Video,
            |ctx, args| {
                args.allow_only(&[])?;
                video::ingestor_list(ctx)
            },
        ),
        cmd(
            "theta.video.ingestor.select",
            "Bind an ingestor to a stream (unlocks its stream_server and stream_key).",
            video::SELECT_SCHEMA,
            Effect::Mutate,
            Fam::Video,
            |ctx, args| video::ingestor_select(ctx, args, true),
        ),
        cmd(
            "theta.video.ingestor.unselect",
            "Release an ingestor.",
            video::UNSELECT_SCHEMA,
            Effect::Mutate,
            Fam::Video,
            |ctx, args| video::ingestor_select(ctx, args, false),
        ),
        // ---- billing and auth ----
        cmd(
            "theta.billing.balance",
            "The organisation's credit balance.",
            account::BALANCE_SCHEMA,
            Effect::Read,
            Fam::Billing,
            |ctx, args| {
                let org = account::parse_org(ctx, args)?;
                account::balance(ctx, &org)
            },
        ),
        cmd(
            "theta.billing.balanceSnapshot",
            "The organisation's balance as one number: {balance, skipped: false}, or {skipped: true, \
             reason} when the answer has no number.",
            account::BALANCE_SCHEMA,
            Effect::Read,
            Fam::Billing,
            |ctx, args| {
                let org = account::parse_org(ctx, args)?;
                to_json(account::balance_reading(ctx, &org)?)
            },
        ),
        cmd(
            "theta.auth.capabilities",
            "For every command family: whether its credentials are configured (names only, \
             never values) and which commands it has.",
            inference::NO_ARGS_SCHEMA,
            Effect::Read,
            Fam::Auth,
            |ctx, args| {
                args.allow_only(&[])?;
                Ok(Value::Array(
                    account::capabilities(ctx)
                        .iter()
                        .map(ToJson::to_json)
                        .collect(),
                ))
            },
        ),
        Command {
            name: "theta.route",
            summary: "Where a kind of AI work runs cheapest on Theta: the command, the services in order of \
                      preference with their current catalogue entries, what the host reserves per call, and the \
                      rule (on-demand first; dedicated needs readiness retries). Read-only, free.",
            schema: route::ROUTE_SCHEMA,
            effect: Effect::Read,
            fam: Fam::OnDemand,
            public: true,
            run: |ctx, args| to_json(route::route(ctx, route::parse_route(args)?)?),
        },
    ]
}

fn cmd(
    name: &'static str,
    summary: &'static str,
    schema: &'static str,
    effect: Effect,
    fam: Fam,
    run: fn(&Ctx, Args) -> Result<Value>,
) -> Command {
    Command {
        name,
        summary,
        schema,
        effect,
        fam,
        public: false,
        run,
    }
}

/// `theta.deployments.start` / `stop` by Shard and Suffix.
fn lifecycle(ctx: &Ctx, args: Args, action: deployments::LifecycleAction) -> Result<Value> {
    args.allow_only(&["shard", "suffix", "route"])?;
    let (shard, suffix) = deployments::parse_target(&args)?;
    deployments::change_state(
        ctx,
        action,
        &shard,
        &suffix,
        deployments::parse_route(&args)?,
    )
}

fn deployments_create_fields() -> Vec<&'static str> {
    deployments::CREATE_FIELDS.to_vec()
}

/// Every command this plugin offers (canonical names only).
pub fn describe() -> Vec<CommandInfo> {
    commands()
        .into_iter()
        .map(|c| CommandInfo {
            name: c.name.into(),
            summary: c.summary.into(),
            args_schema: c.schema.to_owned(),
            effect: c.effect,
            credentials: if c.public {
                Vec::new()
            } else {
                c.fam.vars().iter().map(|v| v.to_string()).collect()
            },
        })
        .collect()
}

/// The canonical name of a command or alias.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    let name = name.trim();
    commands()
        .iter()
        .map(|c| c.name)
        .find(|n| *n == name)
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, c)| *c))
}

/// Runs a command by name with a JSON arguments object; returns the result as JSON text.
pub fn invoke(ctx: &Ctx, name: &str, args_json: &str) -> Result<String> {
    let Some(canonical) = canonical_name(name) else {
        let valid: Vec<&str> = commands().iter().map(|c| c.name).collect();
        return Err(ThetaError::invalid(
            "name",
            format!(
                "unknown command `{name}`; valid commands: {}",
                valid.join(", ")
            ),
        ));
    };
    let args = Args::parse(args_json)?;
    let command = commands()
        .into_iter()
        .find(|c| c.name == canonical)
        .ok_or_else(|| ThetaError::invalid("name", "unknown command"))?;
    let result = (command.run)(ctx, args)?;
    Ok(result.to_string())
}

#[cfg(test)]
mod tests;
