//! The typed exports of the families beyond on-demand (`deployments`, `inference`, `agents`, `video`,
//! `account`): each converts WIT types to the same domain calls `invoke` uses, so both paths share
//! every check.

use crate::commands::args::Args;
use crate::commands::{account, agents, chat, deployments as dep, inference, video};
use crate::error::Result;
use crate::exports::theta::edgecloud::{
    account as w_acc, agents as w_ag, deployments as w_dep, inference as w_inf, ondemand as w_od,
    types::ThetaError as WitError, video as w_vid,
};
use crate::{Plugin, with_ctx};
use serde_json::{Map, Value};

type R<T> = std::result::Result<T, WitError>;

fn json_object(field: &str, text: Option<String>) -> Result<Option<Map<String, Value>>> {
    dep::object_arg(field, text)
}

fn args_of(value: Value) -> Result<Args> {
    Args::from_value(value, "args")
}

fn deployment(d: dep::Deployment) -> w_dep::Deployment {
    w_dep::Deployment {
        shard: d.shard,
        suffix: d.suffix,
        base_id: d.base_id,
        name: d.name,
        template_name: d.template_name,
        endpoint: d.endpoint,
        status: d.status,
        vm_id: d.vm_id,
        region: d.region,
    }
}

fn route_arg(route: Option<String>) -> Result<Option<String>> {
    let mut m = Map::new();
    if let Some(r) = route {
        m.insert("route".into(), Value::String(r));
    }
    dep::parse_route(&args_of(Value::Object(m))?)
}

fn create_args(ctx: &crate::client::Ctx, a: w_dep::CreateArgs) -> Result<dep::CreateArgs> {
    let pending = a.pending_timeout_seconds;
    let mut args = dep::CreateArgs {
        template_id: a.template_id,
        container_image: a.container_image,
        vm_id: a.vm_id,
        min_replicas: a.min_replicas,
        max_replicas: a.max_replicas,
        env_vars: json_object("env_vars", a.env_vars)?,
        annotations: json_object("annotations", a.annotations)?,
        auth_username: a.auth_username,
        auth_password: a.auth_password,
        route: route_arg(a.route)?,
        pending_timeout_ms: 0,
    };
    // The same checks as the JSON path.
    let mut m = Map::new();
    m.insert(
        "template_id".into(),
        Value::String(args.template_id.clone()),
    );
    if let Some(v) = &args.vm_id {
        m.insert("vm_id".into(), Value::String(v.clone()));
    }
    for (k, v) in [
        ("min_replicas", args.min_replicas),
        ("max_replicas", args.max_replicas),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), Value::from(v));
        }
    }
    if let Some(env) = &args.env_vars {
        m.insert("env_vars".into(), Value::Object(env.clone()));
    }
    if let Some(p) = pending {
        m.insert("pending_timeout_seconds".into(), serde_json::json!(p));
    }
    args.pending_timeout_ms =
        dep::parse_create(ctx, &args_of(Value::Object(m))?)?.pending_timeout_ms;
    Ok(args)
}

fn readiness(r: crate::commands::readiness::Readiness) -> w_dep::Readiness {
    w_dep::Readiness {
        ready: r.ready,
        probe: r.probe,
        path: r.path,
        statuses: r.statuses,
        elapsed_ms: r.elapsed_ms,
        answer: r.answer.map(|a| a.to_string()),
    }
}

fn probe_name(p: Option<w_dep::ProbeKind>) -> &'static str {
    match p {
        Some(w_dep::ProbeKind::Gradio) => "gradio",
        _ => "openai",
    }
}

fn seconds(field: &str, v: Option<f64>, default: f64, min: f64, max: f64) -> Result<u64> {
    let mut m = Map::new();
    if let Some(v) = v {
        m.insert(field.into(), serde_json::json!(v));
    }
    crate::commands::readiness::seconds_ms(&args_of(Value::Object(m))?, field, default, min, max)
}

fn str_of(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

impl w_dep::Guest for Plugin {
    fn list_deployments(route: Option<String>) -> R<Vec<w_dep::Deployment>> {
        with_ctx(|ctx| dep::list(ctx, route_arg(route)?))
            .map(|(_, l)| l.into_iter().map(deployment).collect())
    }

    fn get_deployment(shard: String, suffix: String) -> R<w_dep::Deployment> {
        with_ctx(|ctx| dep::get(ctx, &shard, &suffix, None)).map(deployment)
    }

    fn create_deployment(args: w_dep::CreateArgs) -> R<w_dep::CreatedDeployment> {
        with_ctx(|ctx| dep::create(ctx, create_args(ctx, args)?)).map(|c| {
            w_dep::CreatedDeployment {
                deployment: deployment(c.deployment),
                vm_id: c.vm_id,
                reason: c.reason,
                attempts: c
                    .attempts
                    .into_iter()
                    .map(|(vm_id, outcome)| w_dep::VmAttempt { vm_id, outcome })
                    .collect(),
                route: c.route,
            }
        })
    }

    fn delete_deployment(shard: String, suffix: String) -> R<()> {
        with_ctx(|ctx| dep::delete(ctx, &shard, &suffix, None)).map(|_| ())
    }

    fn start_deployment(shard: String, suffix: String) -> R<w_dep::LifecycleReport> {
        lifecycle(shard, suffix, dep::LifecycleAction::Start)
    }

    fn stop_deployment(shard: String, suffix: String) -> R<w_dep::LifecycleReport> {
        lifecycle(shard, suffix, dep::LifecycleAction::Stop)
    }

    fn list_vm_types() -> R<Vec<w_dep::VmType>> {
        with_ctx(dep::list_vm_types).map(|l| {
            l.into_iter()
                .map(|v| w_dep::VmType {
                    id: v.id,
                    name: v.name,
                    gpu: v.gpu,
                    available: v.available,
                    price_per_hour_usd: v.price_per_hour_usd,
                })
                .collect()
        })
    }

    fn list_templates(category: Option<String>, custom: bool) -> R<Vec<w_dep::Template>> {
        with_ctx(|ctx| {
            let mut m = Map::new();
            if let Some(c) = category {
                m.insert("category".into(), Value::String(c));
            }
            let (category, _, page, number) = dep::parse_templates(args_of(Value::Object(m))?)?;
            dep::list_templates(ctx, category.as_deref(), custom, page, number)
        })
        .map(|l| {
            l.into_iter()
                .map(|t| w_dep::Template {
                    id: t.id,
                    name: t.name,
                    category: t.category,
                    container_image: t.container_image,
                })
                .collect()
        })
    }

    fn route_probe() -> R<w_dep::RouteReport> {
        with_ctx(dep::route_probe).map(|p| w_dep::RouteReport {
            route: p.route,
            attempts: p
                .attempts
                .into_iter()
                .map(|a| w_dep::RouteAttempt {
                    route: a.route,
                    status: a.status,
                    ok: a.ok,
                    message: a.message,
                })
                .collect(),
        })
    }

    fn validate_disposable(args: w_dep::ValidateArgs) -> R<w_dep::ValidationReport> {
        with_ctx(|ctx| {
            // Through the JSON path's parser, so both paths share every check (the auth included:
            // it reaches the readiness probe and the chat).
            let a = args.create;
            let mut m = Map::new();
            m.insert("template_id".into(), Value::String(a.template_id));
            let optional = [
                ("container_image", a.container_image.map(Value::String)),
                ("vm_id", a.vm_id.map(Value::String)),
                (
                    "env_vars",
                    json_object("env_vars", a.env_vars)?.map(Value::Object),
                ),
                (
                    "annotations",
                    json_object("annotations", a.annotations)?.map(Value::Object),
                ),
                ("auth_username", a.auth_username.map(Value::String)),
                ("auth_password", a.auth_password.map(Value::String)),
                ("route", a.route.map(Value::String)),
                (
                    "pending_timeout_seconds",
                    a.pending_timeout_seconds.map(|v| serde_json::json!(v)),
                ),
                ("probe", Some(Value::String(probe_name(args.probe).into()))),
                (
                    "ready_timeout_seconds",
                    args.ready_timeout_seconds.map(|v| serde_json::json!(v)),
                ),
                (
                    "interval_seconds",
                    args.interval_seconds.map(|v| serde_json::json!(v)),
                ),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            let v = dep::parse_validate(ctx, args_of(Value::Object(m))?)?;
            let report = dep::validate_disposable(ctx, v)?;
            Ok(validation_report(&report))
        })
    }
}

fn lifecycle(
    shard: String,
    suffix: String,
    action: dep::LifecycleAction,
) -> R<w_dep::LifecycleReport> {
    with_ctx(|ctx| {
        let mut m = Map::new();
        m.insert("shard".into(), Value::String(shard));
        m.insert("suffix".into(), Value::String(suffix));
        let (shard, suffix) = dep::parse_target(&args_of(Value::Object(m))?)?;
        dep::change_state(ctx, action, &shard, &suffix, None)
    })
    .map(|v| w_dep::LifecycleReport {
        action: str_of(&v, "action").unwrap_or_default(),
        route: str_of(&v, "route").unwrap_or_default(),
        billing: str_of(&v, "billing").unwrap_or_default(),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn validation_report(report: &Value) -> w_dep::ValidationReport {
    let r = &report["readiness"];
    w_dep::ValidationReport {
        deployment: deployment(dep::Deployment::from_value(&report["deployment"])),
        vm_id: str_of(report, "vm_id").unwrap_or_default(),
        vm_reason: str_of(report, "vm_reason").unwrap_or_default(),
        vm_attempts: report["vm_attempts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| w_dep::VmAttempt {
                        vm_id: str_of(x, "vm_id").unwrap_or_default(),
                        outcome: str_of(x, "outcome").unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        readiness: w_dep::Readiness {
            ready: r["ready"].as_bool().unwrap_or(false),
            probe: str_of(r, "probe").unwrap_or_default(),
            path: str_of(r, "path").unwrap_or_default(),
            statuses: r["statuses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_u64())
                        .map(|s| s as u16)
                        .collect()
                })
                .unwrap_or_default(),
            elapsed_ms: r["elapsed_ms"].as_u64().unwrap_or(0),
            answer: r
                .get("answer")
                .filter(|a| !a.is_null())
                .map(Value::to_string),
        },
        chat_reply: str_of(&report["chat"], "content"),
        deleted: report["deleted"].as_bool().unwrap_or(false),
        auth_username: str_of(&report["auth"], "username").unwrap_or_default(),
        auth_generated: report["auth"]["generated"].as_bool().unwrap_or(false),
        balance_before: report["balance"]["before"]["balance"].as_f64(),
        balance_after: report["balance"]["after"]["balance"].as_f64(),
        steps: strings(&report["steps"]),
    }
}

/// WIT chat messages (shared by `ondemand` and `inference`) as the chat command's.
pub(crate) fn chat_messages(messages: Vec<w_od::ChatMessage>) -> Vec<chat::ChatMessage> {
    messages
        .into_iter()
        .map(|m| chat::ChatMessage {
            role: m.role,
            content: m.content,
        })
        .collect()
}

pub(crate) fn chat_reply(r: chat::ChatReply) -> w_od::ChatReply {
    w_od::ChatReply {
        service: r.service,
        content: r.content,
        reasoning: r.reasoning,
        finish_reason: r.finish_reason,
        note: r.note,
        usage: r.usage.map(|u| w_od::TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }),
        streamed: r.streamed,
    }
}

impl w_inf::Guest for Plugin {
    fn ready(
        probe: Option<w_dep::ProbeKind>,
        timeout_seconds: Option<f64>,
        interval_seconds: Option<f64>,
    ) -> R<w_dep::Readiness> {
        with_ctx(|ctx| {
            let timeout = crate::commands::readiness::window_ms(
                ctx,
                "timeout_seconds",
                timeout_seconds,
                120.0,
                0,
            )?;
            let interval = seconds("interval_seconds", interval_seconds, 5.0, 0.01, 60.0)?;
            inference::ready(ctx, probe_name(probe), timeout, interval)
        })
        .map(readiness)
    }

    fn models(ready_timeout_seconds: Option<f64>) -> R<Vec<w_inf::Model>> {
        with_ctx(|ctx| {
            let wait = inference::warmup_of(ctx, ready_timeout_seconds, None)?;
            inference::models(ctx, &wait)
        })
        .map(|l| {
            l.into_iter()
                .map(|m| w_inf::Model {
                    id: m.id,
                    owned_by: m.owned_by,
                })
                .collect()
        })
    }

    fn chat(args: w_inf::InferenceChatArgs) -> R<w_od::ChatReply> {
        let a = chat::ChatArgs {
            messages: chat_messages(args.messages),
            max_tokens: args.max_tokens,
            temperature: args.temperature,
            top_p: args.top_p,
            ..Default::default()
        };
        with_ctx(|ctx| {
            let wait = inference::warmup_of(ctx, args.ready_timeout_seconds, None)?;
            inference::chat(ctx, a, args.model, &wait)
        })
        .map(chat_reply)
    }
}

fn agent(a: agents::Agent) -> w_ag::Agent {
    w_ag::Agent {
        id: a.id,
        name: a.name,
        project_id: a.project_id,
        model: a.model,
        knowledge_base_id: a.knowledge_base_id,
        system_prompt: a.system_prompt,
        created_at: a.created_at,
    }
}

fn fields_of(text: &str, create: bool) -> Result<Map<String, Value>> {
    let m = json_object("fields", Some(text.to_owned()))?.unwrap_or_default();
    let args = args_of(Value::Object(m))?;
    args.allow_only(&agents::AGENT_FIELDS)?;
    agents::parse_agent_fields(&args, create)
}

/// Builds the JSON arguments of a document write and parses them with the JSON path's checks.
fn doc_write(
    chatbot_id: String,
    document_id: Option<String>,
    file: w_ag::DocumentFile,
    metadata: Option<String>,
) -> Result<(String, Option<String>, agents::DocumentFile, Value)> {
    let mut f = Map::new();
    f.insert("filename".into(), Value::String(file.filename));
    f.insert("content".into(), Value::String(file.content));
    if let Some(ct) = file.content_type {
        f.insert("content_type".into(), Value::String(ct));
    }
    let mut m = Map::new();
    m.insert("chatbot_id".into(), Value::String(chatbot_id));
    m.insert("file".into(), Value::Object(f));
    let update = document_id.is_some();
    if let Some(d) = document_id {
        m.insert("document_id".into(), Value::String(d));
    }
    if let Some(meta) = json_object("metadata", metadata)? {
        m.insert("metadata".into(), Value::Object(meta));
    }
    agents::parse_doc_write(&args_of(Value::Object(m))?, update)
}

fn document(d: &Value) -> w_ag::Document {
    w_ag::Document {
        id: str_of(d, "id"),
        knowledge_base_id: str_of(d, "knowledge_base_id"),
        metadata: d
            .get("metadata")
            .filter(|m| !m.is_null())
            .map(Value::to_string),
        content: str_of(d, "content"),
        created_at: str_of(d, "created_at"),
    }
}

impl w_ag::Guest for Plugin {
    fn create_agent(fields: String) -> R<w_ag::Agent> {
        with_ctx(|ctx| agents::create(ctx, fields_of(&fields, true)?)).map(agent)
    }

    fn get_agent(chatbot_id: String) -> R<w_ag::Agent> {
        with_ctx(|ctx| agents::get(ctx, &chatbot_id)).map(agent)
    }

    fn update_agent(chatbot_id: String, fields: String) -> R<w_ag::Agent> {
        with_ctx(|ctx| agents::update(ctx, &chatbot_id, fields_of(&fields, false)?)).map(agent)
    }

    fn list_agents(page: Option<u32>, number: Option<u32>) -> R<Vec<w_ag::Agent>> {
        with_ctx(|ctx| agents::list(ctx, page.unwrap_or(0), number.unwrap_or(100).clamp(1, 100)))
            .map(|l| l.into_iter().map(agent).collect())
    }

    fn create_document(
        chatbot_id: String,
        file: w_ag::DocumentFile,
        metadata: Option<String>,
    ) -> R<String> {
        with_ctx(|ctx| {
            let (c, _, f, m) = doc_write(chatbot_id, None, file, metadata)?;
            agents::write_document(ctx, &c, None, &f, &m)
        })
        .map(|v| str_of(&v, "id").unwrap_or_default())
    }

    fn update_document(
        chatbot_id: String,
        document_id: String,
        file: w_ag::DocumentFile,
        metadata: Option<String>,
    ) -> R<String> {
        with_ctx(|ctx| {
            let (c, d, f, m) = doc_write(chatbot_id, Some(document_id), file, metadata)?;
            agents::write_document(ctx, &c, d.as_deref(), &f, &m)
        })
        .map(|v| str_of(&v, "id").unwrap_or_default())
    }

    fn get_document(chatbot_id: String, document_id: String) -> R<w_ag::Document> {
        with_ctx(|ctx| agents::get_document(ctx, &chatbot_id, &document_id)).map(|d| document(&d))
    }

    fn list_documents(
        chatbot_id: String,
        page: Option<u32>,
        number: Option<u32>,
    ) -> R<w_ag::DocumentPage> {
        with_ctx(|ctx| {
            agents::list_documents(
                ctx,
                &chatbot_id,
                page.unwrap_or(0),
                number.unwrap_or(30).clamp(1, 100),
            )
        })
        .map(|v| w_ag::DocumentPage {
            documents: v["documents"]
                .as_array()
                .map(|a| a.iter().map(document).collect())
                .unwrap_or_default(),
            total_documents: v["total_documents"].as_u64().map(|n| n as u32),
            total_pages: v["total_pages"].as_u64().map(|n| n as u32),
        })
    }
}

fn video_of(v: video::Video) -> w_vid::Video {
    w_vid::Video {
        done: matches!(v.state.as_str(), "success" | "error"),
        id: v.id,
        state: v.state,
        sub_state: v.sub_state,
        progress: v.progress,
        playback_uri: v.playback_uri,
        player_uri: v.player_uri,
        file_name: v.file_name,
        error: v.error,
        duration: v.duration,
        create_time: v.create_time,
        update_time: v.update_time,
    }
}

fn stream(v: &Value) -> w_vid::LiveStream {
    w_vid::LiveStream {
        id: str_of(v, "id"),
        name: str_of(v, "name"),
        status: str_of(v, "status"),
        playback_url: str_of(v, "playback_url"),
        stream_server: str_of(v, "stream_server"),
        stream_key: str_of(v, "stream_key"),
    }
}

fn id_args(name: &str, id: String) -> Result<Args> {
    let mut m = Map::new();
    m.insert(name.into(), Value::String(id));
    args_of(Value::Object(m))
}

impl w_vid::Guest for Plugin {
    fn list_videos(page: Option<u32>, number: Option<u32>) -> R<Vec<w_vid::Video>> {
        with_ctx(|ctx| {
            let mut m = Map::new();
            for (k, v) in [("page", page), ("number", number)] {
                if let Some(v) = v {
                    m.insert(k.into(), Value::from(v));
                }
            }
            video::list(ctx, args_of(Value::Object(m))?)
        })
        .map(|l| l.into_iter().map(video_of).collect())
    }

    fn create_upload() -> R<w_vid::UploadSlot> {
        with_ctx(video::upload_create).map(|v| w_vid::UploadSlot {
            id: str_of(&v, "id"),
            presigned_url: str_of(&v, "presigned_url"),
            presigned_url_expiration: str_of(&v, "presigned_url_expiration"),
        })
    }

    fn create_video(
        source: w_vid::VideoSource,
        file_name: Option<String>,
        metadata: Option<String>,
    ) -> R<w_vid::Video> {
        with_ctx(|ctx| {
            let mut m = Map::new();
            match source {
                w_vid::VideoSource::UploadId(u) => {
                    m.insert("source_upload_id".into(), Value::String(u))
                }
                w_vid::VideoSource::Uri(u) => m.insert("source_uri".into(), Value::String(u)),
            };
            if let Some(f) = file_name {
                m.insert("file_name".into(), Value::String(f));
            }
            if let Some(meta) = json_object("metadata", metadata)? {
                m.insert("metadata".into(), Value::Object(meta));
            }
            video::video_create(ctx, video::parse_video_create(args_of(Value::Object(m))?)?)
        })
        .map(video_of)
    }

    fn get_video(video_id: String) -> R<w_vid::Video> {
        with_ctx(|ctx| {
            let id = video::id_arg(&id_args("video_id", video_id)?, "video_id", "videoId")?;
            video::video_get(ctx, &id)
        })
        .map(video_of)
    }

    fn create_stream(
        name: String,
        resolutions: Vec<String>,
        fps: Option<u32>,
    ) -> R<w_vid::LiveStream> {
        with_ctx(|ctx| {
            let mut m = Map::new();
            m.insert("name".into(), Value::String(name));
            if !resolutions.is_empty() {
                m.insert(
                    "resolutions".into(),
                    Value::Array(resolutions.into_iter().map(Value::String).collect()),
                );
            }
            if let Some(f) = fps {
                m.insert("fps".into(), Value::from(f));
            }
            video::stream_create(ctx, video::parse_stream_create(args_of(Value::Object(m))?)?)
        })
        .map(|v| stream(&v))
    }

    fn get_stream(stream_id: String) -> R<w_vid::LiveStream> {
        with_ctx(|ctx| {
            let id = video::id_arg(&id_args("stream_id", stream_id)?, "stream_id", "streamId")?;
            video::stream_get(ctx, &id)
        })
        .map(|v| stream(&v))
    }

    fn list_streams() -> R<Vec<w_vid::LiveStream>> {
        with_ctx(|ctx| video::stream_list(ctx, Args::default())).map(|v| {
            v.as_array()
                .map(|a| a.iter().map(stream).collect())
                .unwrap_or_default()
        })
    }

    fn list_ingestors() -> R<String> {
        with_ctx(video::ingestor_list).map(|v| v.to_string())
    }

    fn select_ingestor(ingestor_id: String, stream_id: String) -> R<Option<w_vid::LiveStream>> {
        with_ctx(|ctx| {
            let mut m = Map::new();
            m.insert("ingestor_id".into(), Value::String(ingestor_id));
            m.insert("stream_id".into(), Value::String(stream_id));
            video::ingestor_select(ctx, args_of(Value::Object(m))?, true)
        })
        .map(|v| Some(&v["stream"]).filter(|s| !s.is_null()).map(stream))
    }

    fn unselect_ingestor(ingestor_id: String) -> R<()> {
        with_ctx(|ctx| video::ingestor_select(ctx, id_args("ingestor_id", ingestor_id)?, false))
            .map(|_| ())
    }
}

fn org_args(org_id: Option<String>) -> Result<Args> {
    let mut m = Map::new();
    if let Some(o) = org_id {
        m.insert("org_id".into(), Value::String(o));
    }
    args_of(Value::Object(m))
}

impl w_acc::Guest for Plugin {
    fn balance(org_id: Option<String>) -> R<Option<f64>> {
        with_ctx(|ctx| {
            let org = account::parse_org(ctx, org_args(org_id)?)?;
            account::balance(ctx, &org)
        })
        .map(|v| v["balance"].as_f64())
    }

    fn balance_snapshot(org_id: Option<String>) -> R<w_acc::BalanceReading> {
        with_ctx(|ctx| {
            let org = account::parse_org(ctx, org_args(org_id)?)?;
            account::balance_reading(ctx, &org)
        })
        .map(|r| match r {
            account::BalanceReading::Balance(b) => w_acc::BalanceReading::Balance(b),
            account::BalanceReading::Skipped(why) => w_acc::BalanceReading::Skipped(why),
        })
    }

    fn capabilities() -> Vec<w_acc::Capability> {
        with_ctx(|ctx| Ok(account::capabilities(ctx)))
            .unwrap_or_default()
            .into_iter()
            .map(|c| w_acc::Capability {
                family: c.family.into(),
                configured: c.configured,
                required: c.required,
                missing: c.missing,
                commands: c.commands,
                note: c.note,
            })
            .collect()
    }
}
