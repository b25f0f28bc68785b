//! AI agents (RAG chatbots) and their knowledge documents on the controller (theta-api-sources.md §2.5):
//! JSON for chatbots, multipart (`file`, `project_id`, `metadata`) for documents, whose content is a
//! string the caller provides (this plugin never reads files).

use super::args::{Args, as_object, check_name, check_range};
use super::{ToJson, object, opt_str, setting, text};
use crate::client::{Api, Call, Client, Ctx, encode, truncate};
use crate::config::PROJECT_ID_VAR;
use crate::error::{Result, ThetaError};
use serde_json::{Map, Value};

/// Document content larger than this is refused (the host caps request bodies too).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: String,
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub model: Option<String>,
    pub knowledge_base_id: Option<String>,
    pub system_prompt: Option<String>,
    pub created_at: Option<String>,
}

impl Agent {
    fn from_value(v: &Value) -> Result<Self> {
        Ok(Agent {
            id: text(v, &["id", "chatbot_id"]).ok_or_else(|| {
                ThetaError::transport(format!(
                    "the chatbot in the answer has no id: {}",
                    truncate(&v.to_string(), 200)
                ))
            })?,
            name: text(v, &["name"]),
            project_id: text(v, &["project_id"]),
            model: text(v, &["model"]),
            knowledge_base_id: text(v, &["knowledge_base_id"]),
            system_prompt: text(v, &["system_prompt"]),
            created_at: text(v, &["created_at", "create_time"]),
        })
    }
}

impl ToJson for Agent {
    fn to_json(&self) -> Value {
        object(vec![
            ("id", Value::String(self.id.clone())),
            ("name", opt_str(&self.name)),
            ("project_id", opt_str(&self.project_id)),
            ("model", opt_str(&self.model)),
            ("knowledge_base_id", opt_str(&self.knowledge_base_id)),
            ("system_prompt", opt_str(&self.system_prompt)),
            ("created_at", opt_str(&self.created_at)),
        ])
    }
}

fn project(ctx: &Ctx) -> Result<String> {
    setting(&ctx.config.project_id, PROJECT_ID_VAR)
}

/// The chatbot object, enveloped or bare (the doc example is bare).
fn one_agent(body: &Value) -> Result<Agent> {
    let v = body
        .get("chatbot")
        .or_else(|| body.get("chatbots").and_then(|a| a.get(0)))
        .unwrap_or(body);
    Agent::from_value(v)
}

pub const AGENT_FIELDS: [&str; 8] = [
    "name",
    "max_tokens",
    "temperature",
    "system_prompt",
    "warm_up_messages",
    "llm_endpoint_id",
    "settings",
    "model",
];

pub const CREATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["name"],"properties":{"name":{"type":"string","minLength":1,"maxLength":100,"description":"Display name."},"system_prompt":{"type":"string","description":"The agent's system prompt."},"max_tokens":{"type":"integer","minimum":1,"maximum":32768,"description":"Most tokens to generate."},"temperature":{"type":"number","minimum":0,"maximum":2,"description":"Sampling temperature."},"warm_up_messages":{"type":"array","items":{"type":"string"},"description":"Messages the agent starts with."},"llm_endpoint_id":{"type":"string","description":"The LLM endpoint the agent uses."},"model":{"type":"string","description":"Served model id."},"settings":{"type":"object","description":"e.g. {\"retriever.type\":\"rerank\",\"agent.tools\":{\"web_search\":false}}"}}}"#;

pub const UPDATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["chatbot_id"],"properties":{"chatbot_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The chatbot (agent) id."},"name":{"type":"string","minLength":1,"maxLength":100,"description":"Display name."},"system_prompt":{"type":"string","description":"The agent's system prompt."},"max_tokens":{"type":"integer","minimum":1,"maximum":32768,"description":"Most tokens to generate."},"temperature":{"type":"number","minimum":0,"maximum":2,"description":"Sampling temperature."},"warm_up_messages":{"type":"array","items":{"type":"string"},"description":"Messages the agent starts with."},"llm_endpoint_id":{"type":"string","description":"The LLM endpoint the agent uses."},"model":{"type":"string","description":"Served model id."},"settings":{"type":"object","description":"Settings."}}}"#;

/// The chatbot fields, checked; `project_id` is added from the configuration.
pub fn parse_agent_fields(args: &Args, create: bool) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    if create {
        args.required_string("name")?;
    }
    if let Some(n) = args.string("name")?
        && (n.trim().is_empty() || n.chars().count() > 100)
    {
        return Err(ThetaError::invalid("name", "expected 1 to 100 characters"));
    }
    args.string("system_prompt")?;
    args.string("llm_endpoint_id")?;
    args.string("model")?;
    check_range("max_tokens", args.u32("max_tokens")?, 1, 32_768)?;
    check_range("temperature", args.f64("temperature")?, 0.0, 2.0)?;
    args.object("settings")?;
    if let Some(w) = args.get("warm_up_messages")
        && !w.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(ThetaError::invalid(
            "warm_up_messages",
            "expected a list of strings",
        ));
    }
    for k in AGENT_FIELDS {
        if let Some(v) = args.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    if out.is_empty() {
        return Err(ThetaError::invalid(
            "name",
            format!(
                "nothing to set: give at least one of {}",
                AGENT_FIELDS.join(", ")
            ),
        ));
    }
    Ok(out)
}

pub fn create(ctx: &Ctx, mut fields: Map<String, Value>) -> Result<Agent> {
    fields.insert("project_id".into(), Value::String(project(ctx)?));
    let mut call = Call::post("/chatbot".into(), Value::Object(fields)).on(Api::Controller);
    call.retries = Some(0);
    one_agent(&Client::new(ctx).json(&call)?)
}

pub fn update(ctx: &Ctx, id: &str, mut fields: Map<String, Value>) -> Result<Agent> {
    check_name("chatbot_id", id)?;
    fields.insert("project_id".into(), Value::String(project(ctx)?));
    let mut call = Call::post(format!("/chatbot/{}", encode(id)), Value::Object(fields))
        .on(Api::Controller)
        .method("PUT");
    call.not_found = Some(format!("no chatbot `{id}` (see theta.ai.agent.list)"));
    one_agent(&Client::new(ctx).json(&call)?)
}

pub const ID_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["chatbot_id"],"properties":{"chatbot_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The chatbot (agent) id."}}}"#;

/// `chatbot_id` (or `chatbotId`).
pub fn chatbot_id(args: &Args) -> Result<String> {
    let id = match args.first(&["chatbot_id", "chatbotId"]) {
        Some((name, v)) => super::args::as_string(name, v)?,
        None => {
            return Err(ThetaError::invalid(
                "chatbot_id",
                "required; the chatbot (agent) id",
            ));
        }
    };
    check_name("chatbot_id", &id)?;
    Ok(id)
}

pub fn get(ctx: &Ctx, id: &str) -> Result<Agent> {
    check_name("chatbot_id", id)?;
    let mut call = Call::get(format!(
        "/chatbot/{}?project_id={}",
        encode(id),
        encode(&project(ctx)?)
    ))
    .on(Api::Controller);
    call.not_found = Some(format!("no chatbot `{id}` (see theta.ai.agent.list)"));
    one_agent(&Client::new(ctx).json(&call)?)
}

pub const PAGE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"page":{"type":"integer","minimum":0,"description":"Page number."},"number":{"type":"integer","minimum":1,"maximum":100,"description":"Items per page."}}}"#;

pub fn page_args(args: &Args, default_number: u32) -> Result<(u32, u32)> {
    let number = args.u32("number")?;
    check_range("number", number, 1, 100)?;
    Ok((
        args.u32("page")?.unwrap_or(0),
        number.unwrap_or(default_number),
    ))
}

pub fn list(ctx: &Ctx, page: u32, number: u32) -> Result<Vec<Agent>> {
    let call = Call::get(format!(
        "/chatbot/list?project_id={}&page={page}&number={number}",
        encode(&project(ctx)?)
    ))
    .on(Api::Controller);
    let body = Client::new(ctx).json(&call)?;
    super::items(&body, &["chatbots", "items"])
        .into_iter()
        .map(Agent::from_value)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// documents

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentFile {
    pub filename: String,
    pub content: String,
    pub content_type: String,
}

pub const DOC_WRITE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["chatbot_id","file"],"properties":{"chatbot_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The chatbot (agent) id."},"document_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Required for update."},"file":{"type":"object","additionalProperties":false,"required":["filename","content"],"properties":{"filename":{"type":"string","pattern":"^[^/\\\\\"\\r\\n]{1,200}$","description":"File name."},"content":{"type":"string","description":"The document text itself (never a path)."},"content_type":{"type":"string","description":"Default text/plain."}},"description":"The document: filename, content (the text itself) and content_type."},"metadata":{"type":"object","description":"e.g. {\"query_type\":\"text\",\"description\":\"…\"}; default {\"query_type\":\"text\"}."}}}"#;

pub fn parse_doc_write(
    args: &Args,
    update: bool,
) -> Result<(String, Option<String>, DocumentFile, Value)> {
    let mut allowed = vec!["chatbot_id", "chatbotId", "file", "metadata"];
    if update {
        allowed.extend(["document_id", "documentId"]);
    }
    args.allow_only(&allowed)?;
    let chatbot = chatbot_id(args)?;
    let document = if update {
        Some(document_id(args)?)
    } else {
        None
    };
    let file = args.object("file")?.ok_or_else(|| {
        ThetaError::invalid("file", "required; {filename, content, content_type?}")
    })?;
    let f = Args::from_value(Value::Object(file), "file")?;
    f.allow_only(&["filename", "content", "content_type", "contentType"])
        .map_err(|e| match e {
            ThetaError::InvalidArgument { field, reason } => {
                ThetaError::invalid(format!("file.{field}"), reason)
            }
            other => other,
        })?;
    let filename = f.required_string("filename").map_err(|_| {
        ThetaError::invalid("file.filename", "required; a file name such as notes.txt")
    })?;
    if filename.is_empty()
        || filename.len() > 200
        || filename
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '"' | '\r' | '\n'))
    {
        return Err(ThetaError::invalid(
            "file.filename",
            "expected a plain file name (1–200 characters, no / \\ \" or line breaks)",
        ));
    }
    let content = f.required_string("content").map_err(|_| {
        ThetaError::invalid("file.content", "required; the document text as a string")
    })?;
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(ThetaError::invalid(
            "file.content",
            format!(
                "{} bytes is more than the {MAX_DOCUMENT_BYTES} allowed",
                content.len()
            ),
        ));
    }
    let content_type = match f.first(&["content_type", "contentType"]) {
        Some((n, v)) => super::args::as_string(n, v)?,
        None => "text/plain".into(),
    };
    if content_type.chars().any(|c| c.is_control()) || !content_type.contains('/') {
        return Err(ThetaError::invalid(
            "file.content_type",
            "expected a MIME type such as text/plain",
        ));
    }
    let metadata = match args.get("metadata") {
        Some(v) => Value::Object(as_object("metadata", v)?),
        None => serde_json::json!({"query_type": "text"}),
    };
    Ok((
        chatbot,
        document,
        DocumentFile {
            filename,
            content,
            content_type,
        },
        metadata,
    ))
}

fn document_id(args: &Args) -> Result<String> {
    let id = match args.first(&["document_id", "documentId"]) {
        Some((name, v)) => super::args::as_string(name, v)?,
        None => {
            return Err(ThetaError::invalid(
                "document_id",
                "required; the document id",
            ));
        }
    };
    check_name("document_id", &id)?;
    Ok(id)
}

/// A `multipart/form-data` body: `project_id`, `metadata` (JSON text) and `file`.
fn multipart(project: &str, metadata: &Value, file: &DocumentFile) -> (String, Vec<u8>, String) {
    // The boundary must not occur in the content; extend it until it does not.
    let mut boundary = String::from("theta-plugin-boundary-7d1f");
    while file.content.contains(&boundary) {
        boundary.push('x');
    }
    let mut body = String::new();
    for (name, value) in [
        ("project_id", project.to_owned()),
        ("metadata", metadata.to_string()),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
        file.filename, file.content_type
    ));
    body.push_str(&file.content);
    body.push_str(&format!("\r\n--{boundary}--\r\n"));
    let preview = serde_json::json!({
        "project_id": project,
        "metadata": metadata,
        "file": {"filename": file.filename, "content_type": file.content_type,
                 "content": format!("[redacted: {} bytes]", file.content.len())},
    });
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
        preview.to_string(),
    )
}

/// Creates (`document_id` None) or replaces a document; returns `{id, chatbot_id}`.
pub fn write_document(
    ctx: &Ctx,
    chatbot: &str,
    document: Option<&str>,
    file: &DocumentFile,
    metadata: &Value,
) -> Result<Value> {
    let project = project(ctx)?;
    let (path, method) = match document {
        Some(d) => (
            format!("/chatbot/{}/document/{}", encode(chatbot), encode(d)),
            "PUT",
        ),
        None => (format!("/chatbot/{}/document", encode(chatbot)), "POST"),
    };
    let mut call = Call::get(path).on(Api::Controller).method(method);
    call.raw_body = Some(multipart(&project, metadata, file));
    call.retries = Some(0);
    call.not_found = Some(format!(
        "no chatbot `{chatbot}`{} (see theta.ai.agent.list)",
        document
            .map(|d| format!(" or document `{d}`"))
            .unwrap_or_default()
    ));
    let body = Client::new(ctx).json(&call)?;
    let id = text(&body, &["id", "document_id"]).ok_or_else(|| {
        ThetaError::transport(format!(
            "the answer has no document id: {}",
            truncate(&body.to_string(), 200)
        ))
    })?;
    Ok(object(vec![
        ("id", Value::String(id)),
        ("chatbot_id", Value::String(chatbot.into())),
        ("filename", Value::String(file.filename.clone())),
        ("bytes", Value::from(file.content.len())),
    ]))
}

pub const DOC_GET_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["chatbot_id","document_id"],"properties":{"chatbot_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The chatbot (agent) id."},"document_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The document id."}}}"#;

pub fn parse_doc_get(args: &Args) -> Result<(String, String)> {
    args.allow_only(&["chatbot_id", "chatbotId", "document_id", "documentId"])?;
    Ok((chatbot_id(args)?, document_id(args)?))
}

pub fn get_document(ctx: &Ctx, chatbot: &str, document: &str) -> Result<Value> {
    let mut call = Call::get(format!(
        "/chatbot/{}/document/{}?project_id={}",
        encode(chatbot),
        encode(document),
        encode(&project(ctx)?)
    ))
    .on(Api::Controller);
    call.not_found = Some(format!("no document `{document}` in chatbot `{chatbot}`"));
    let body = Client::new(ctx).json(&call)?;
    let d = body.get("document").unwrap_or(&body);
    Ok(document_json(d))
}

fn document_json(d: &Value) -> Value {
    object(vec![
        ("id", opt_str(&text(d, &["id"]))),
        (
            "knowledge_base_id",
            opt_str(&text(d, &["knowledge_base_id"])),
        ),
        (
            "metadata",
            super::field(d, &["metadata"])
                .cloned()
                .unwrap_or(Value::Null),
        ),
        ("content", opt_str(&text(d, &["content"]))),
        ("created_at", opt_str(&text(d, &["created_at"]))),
        (
            "embedding_token_count",
            super::field(d, &["embedding_token_count"])
                .cloned()
                .unwrap_or(Value::Null),
        ),
    ])
}

pub const DOC_LIST_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["chatbot_id"],"properties":{"chatbot_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The chatbot (agent) id."},"page":{"type":"integer","minimum":0,"description":"Page number."},"number":{"type":"integer","minimum":1,"maximum":100,"description":"Items per page."}}}"#;

pub fn list_documents(ctx: &Ctx, chatbot: &str, page: u32, number: u32) -> Result<Value> {
    let mut call = Call::get(format!(
        "/chatbot/{}/document/list?project_id={}&page={page}&number={number}",
        encode(chatbot),
        encode(&project(ctx)?)
    ))
    .on(Api::Controller);
    call.not_found = Some(format!("no chatbot `{chatbot}` (see theta.ai.agent.list)"));
    let body = Client::new(ctx).json(&call)?;
    let documents: Vec<Value> = super::items(&body, &["documents"])
        .into_iter()
        .map(document_json)
        .collect();
    Ok(object(vec![
        ("documents", Value::Array(documents)),
        (
            "total_documents",
            body.get("total_documents").cloned().unwrap_or(Value::Null),
        ),
        (
            "total_pages",
            body.get("total_pages").cloned().unwrap_or(Value::Null),
        ),
    ]))
}
