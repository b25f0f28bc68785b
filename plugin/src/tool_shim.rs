//! Every command as ONE agent tool whose parameters name the command: what IronClaw's
//! `near:agent/tool` interface needs (`execute(params)`, `schema()`, `description()`). Pure functions
//! over [`crate::commands::describe`], so they are unit-tested natively and cannot drift from the
//! registry; `crate::ironclaw` only wires them to the generated bindings and the host's HTTP import.
//!
//! Parameters: `{"command": NAME, "args": {...}, "dry_run": bool}`. `args` is the command's own
//! arguments object (the schema `describe()` gives for it); when `args` is absent, the other top-level
//! keys are taken as the arguments (agents often flatten them). `dry_run: true` previews mutating and
//! paid requests without sending them.

use crate::commands::{CommandInfo, Effect};
use crate::error::ThetaError;
use serde_json::{Map, Value};

/// One parsed `execute` call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub command: String,
    /// The command's arguments, as a JSON object text.
    pub args_json: String,
    pub dry_run: bool,
    /// The Theta project for deployment and agent commands: IronClaw gives tools no environment,
    /// so `THETA_EC_PROJECT_ID` comes with the call. Not a secret.
    pub project_id: Option<String>,
    /// The dedicated endpoint for `theta.inference.*` in the per-command IronClaw tools (IronClaw
    /// has no environment for `THETA_INFERENCE_ENDPOINT`; IronClaw injects the endpoint's token only
    /// into the literal host the extension package names, so another endpoint gets no credential).
    pub endpoint: Option<String>,
}

const USAGE: &str =
    r#"expected a JSON object like {"command": "list_services", "args": {"category": "image"}}"#;

/// Parses the `params` of one `execute` call.
pub fn parse_params(params: &str) -> Result<ToolCall, ThetaError> {
    let mut object = match serde_json::from_str::<Value>(params) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(ThetaError::invalid("params", USAGE)),
        Err(e) => {
            return Err(ThetaError::invalid(
                "params",
                format!("not valid JSON ({e}); {USAGE}"),
            ));
        }
    };
    let command = match object.remove("command") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        Some(_) => return Err(ThetaError::invalid("command", "must be a command name")),
        None => {
            return Err(ThetaError::invalid(
                "command",
                format!("missing; one of: {}", command_names().join(", ")),
            ));
        }
    };
    let dry_run = match object.remove("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ThetaError::invalid("dry_run", "must be true or false")),
    };
    let project_id = project_id(object.remove("project_id"))?;
    let args = match object.remove("args") {
        Some(Value::Object(map)) => {
            if let Some(extra) = object.keys().next() {
                return Err(ThetaError::invalid(
                    extra.as_str(),
                    "unexpected beside `args`: put the command's arguments inside `args`",
                ));
            }
            map
        }
        // Some agents send the arguments as a JSON text.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ThetaError::invalid("args", "must be a JSON object")),
        },
        Some(Value::Null) => Map::new(),
        Some(_) => return Err(ThetaError::invalid("args", "must be a JSON object")),
        // Flattened: the remaining keys are the arguments.
        None => object,
    };
    Ok(ToolCall {
        command,
        args_json: Value::Object(args).to_string(),
        dry_run,
        project_id,
        endpoint: None,
    })
}

fn command_names() -> Vec<String> {
    crate::commands::describe()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

fn effect_label(effect: Effect) -> &'static str {
    match effect {
        Effect::Read => "read",
        Effect::Mutate => "mutate",
        Effect::Spend => "spend",
    }
}

/// The JSON Schema of `params`: `command` is an enum of every command, and an `if`/`then` per command
/// gives `args` that command's own schema.
pub fn params_schema(commands: &[CommandInfo]) -> Value {
    let names: Vec<Value> = commands
        .iter()
        .map(|c| Value::String(c.name.clone()))
        .collect();
    let per_command: Vec<Value> = commands
        .iter()
        .map(|c| {
            let schema = serde_json::from_str::<Value>(&c.args_schema)
                .unwrap_or_else(|_| object(vec![("type", "object".into())]));
            object(vec![
                (
                    "if",
                    object(vec![(
                        "properties",
                        object(vec![(
                            "command",
                            object(vec![("const", c.name.as_str().into())]),
                        )]),
                    )]),
                ),
                (
                    "then",
                    object(vec![("properties", object(vec![("args", schema)]))]),
                ),
            ])
        })
        .collect();
    object(vec![
        ("$schema", "https://json-schema.org/draft/2020-12/schema".into()),
        ("type", "object".into()),
        (
            "properties",
            object(vec![
                (
                    "command",
                    object(vec![
                        ("type", "string".into()),
                        ("enum", Value::Array(names)),
                        ("description", "Which Theta EdgeCloud command to run.".into()),
                    ]),
                ),
                (
                    "args",
                    object(vec![
                        ("type", "object".into()),
                        (
                            "description",
                            "The command's arguments; each command's schema is in `allOf`.".into(),
                        ),
                    ]),
                ),
                (
                    "project_id",
                    object(vec![
                        ("type", "string".into()),
                        ("pattern", "^[A-Za-z0-9_-]+$".into()),
                        (
                            "description",
                            "Theta project id (prj_…) for theta.deployments.* and theta.ai.agent.* commands."
                                .into(),
                        ),
                    ]),
                ),
                (
                    "dry_run",
                    object(vec![
                        ("type", "boolean".into()),
                        (
                            "description",
                            "Return the request a mutating or paid command would send, without sending it."
                                .into(),
                        ),
                    ]),
                ),
            ]),
        ),
        ("required", Value::Array(vec!["command".into()])),
        ("allOf", Value::Array(per_command)),
    ])
}

/// IronClaw cuts tool descriptions at 4096 bytes; ours stays below.
pub const MAX_DESCRIPTION: usize = 4000;

/// What the tool does, for the agent's model: every command with its effect and, while the text stays
/// under [`MAX_DESCRIPTION`], its summary (the schema has the details either way).
pub fn description(commands: &[CommandInfo]) -> String {
    let head = "Theta EdgeCloud APIs: on-demand AI models (LLM chat, image, vision, audio, video) and the \
                other commands listed below. Call with {\"command\": NAME, \"args\": {...}}; each \
                command's arguments are in the schema. Commands marked spend cost money; add \"dry_run\": \
                true to preview their request. Streamed answers arrive as one response. Commands:";
    let line = |c: &CommandInfo, summary: bool| {
        let mut l = format!("\n- {} ({})", c.name, effect_label(c.effect));
        if summary {
            l.push_str(": ");
            l.push_str(&c.summary);
        }
        l
    };
    let full: String = commands.iter().map(|c| line(c, true)).collect();
    if head.len() + full.len() <= MAX_DESCRIPTION {
        return format!("{head}{full}");
    }
    // Too long with every summary: keep every name, and summaries (first sentence) in command order
    // (on-demand first) while they fit.
    let short: usize = commands.iter().map(|c| line(c, false).len()).sum();
    let mut budget = MAX_DESCRIPTION.saturating_sub(head.len() + short);
    let mut text = String::from(head);
    for c in commands {
        text.push_str(&line(c, false));
        let first = c.summary.split(". ").next().unwrap_or_default();
        let extra = first.len() + 2;
        if !first.is_empty() && extra <= budget {
            budget -= extra;
            text.push_str(": ");
            text.push_str(first);
        }
    }
    if text.len() > MAX_DESCRIPTION {
        let cut = (0..MAX_DESCRIPTION)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The credential variables IronClaw holds as secrets and injects per host. The other variables a
/// command lists (`THETA_EC_PROJECT_ID`, `THETA_ORG_ID`, ...) are settings, not secrets.
pub const SECRET_VARIABLES: [&str; 5] = [
    "THETA_ONDEMAND_API_TOKEN",
    "THETA_EC_API_KEY",
    "THETA_INFERENCE_AUTH_TOKEN",
    "THETA_VIDEO_SA_ID",
    "THETA_VIDEO_SA_SECRET",
];

/// The IronClaw secret that holds a credential variable: its lower-case name
/// (`THETA_ONDEMAND_API_TOKEN` → `theta_ondemand_api_token`).
pub fn secret_name(variable: &str) -> String {
    variable.to_ascii_lowercase()
}

/// The `error` text of a failed `execute`: one line a person or model can act on, then the error as
/// JSON (`{"kind": ...}`, as in the WIT `theta-error`) for programs.
pub fn error_text(error: &ThetaError) -> String {
    format!("{error}\n{}", error.to_json())
}

/// Rewrites a missing-credential hint for a host that stores secrets by name (IronClaw).
pub fn missing_secret(variable: &str) -> ThetaError {
    let secret = secret_name(variable);
    ThetaError::MissingCredential {
        variable: variable.to_owned(),
        hint: format!(
            "store the secret `{secret}` in IronClaw (e.g. `ironclaw tool auth theta`); IronClaw injects it \
             into requests to Theta EdgeCloud, the tool never sees it"
        ),
    }
}

/// The IronClaw extension this build is installed as; every tool id is `theta.<name>`.
pub const EXTENSION_ID: &str = "theta";

/// The IronClaw tool id of a command: `theta.` and the command name in IronClaw's capability
/// grammar (lower case, digits, `_`; one dot after the extension): the `theta.` prefix of a name is
/// dropped, dots become `_` and camelCase becomes snake_case
/// (`theta.deployments.listTemplates` → `theta.deployments_list_templates`, `infer` → `theta.infer`).
pub fn tool_id(command: &str) -> String {
    let bare = command.strip_prefix("theta.").unwrap_or(command);
    let mut name = String::with_capacity(bare.len() + 4);
    for ch in bare.chars() {
        match ch {
            '.' | '-' => name.push('_'),
            c if c.is_ascii_uppercase() => {
                if !name.is_empty() && !name.ends_with('_') {
                    name.push('_');
                }
                name.push(c.to_ascii_lowercase());
            }
            c => name.push(c),
        }
    }
    format!("{EXTENSION_ID}.{name}")
}

/// The command a tool id names (`None`: not one of ours).
pub fn command_for_tool(commands: &[CommandInfo], id: &str) -> Option<String> {
    commands
        .iter()
        .find(|c| tool_id(&c.name) == id.trim())
        .map(|c| c.name.clone())
}

/// The `capability_id` of IronClaw's execute context (`{"capability_id": "theta.infer", ...}`);
/// `None` without a context or without that key (the one-tool form: the command is in the params).
pub fn capability_id(context: Option<&str>) -> Result<Option<String>, ThetaError> {
    let Some(text) = context.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => match map.get("capability_id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(id)) => Ok(Some(id.clone())),
            Some(_) => Err(ThetaError::invalid(
                "context.capability_id",
                "must be a tool id such as theta.infer",
            )),
        },
        // A context that is not ours to read (IronClaw's job state): the params decide.
        _ => Ok(None),
    }
}

/// Whether a command reads the Theta project from the configuration (`THETA_EC_PROJECT_ID`), which
/// IronClaw cannot give a tool: its tool takes `project_id` instead.
fn takes_project(info: &CommandInfo) -> bool {
    info.credentials.iter().any(|v| v == "THETA_EC_PROJECT_ID")
}

/// Whether a command calls the dedicated endpoint of `THETA_INFERENCE_ENDPOINT`.
pub fn takes_endpoint(info: &CommandInfo) -> bool {
    info.credentials
        .iter()
        .any(|v| v == "THETA_INFERENCE_ENDPOINT")
}

/// The input schema of one command's IronClaw tool: the command's own argument schema, plus
/// `dry_run` for mutating and paid commands, `project_id` for those that act in a project and
/// `endpoint` for those of a dedicated endpoint.
pub fn tool_input_schema(info: &CommandInfo) -> Value {
    let mut schema = serde_json::from_str::<Value>(&info.args_schema)
        .unwrap_or_else(|_| object(vec![("type", "object".into())]));
    if let Some(props) = schema
        .as_object_mut()
        .map(|o| {
            o.entry("properties")
                .or_insert_with(|| Value::Object(Map::new()))
        })
        .and_then(Value::as_object_mut)
    {
        if info.effect != Effect::Read {
            props.insert(
                "dry_run".into(),
                object(vec![
                    ("type", "boolean".into()),
                    (
                        "description",
                        "true: return the request this call would send, without sending it.".into(),
                    ),
                ]),
            );
        }
        if takes_project(info) {
            props.insert(
                "project_id".into(),
                object(vec![
                    ("type", "string".into()),
                    ("pattern", "^[A-Za-z0-9_-]+$".into()),
                    (
                        "description",
                        "Theta project id (prj_…); IronClaw gives tools no environment, so it comes with the call."
                            .into(),
                    ),
                ]),
            );
        }
        if takes_endpoint(info) {
            props.insert(
                "endpoint".into(),
                object(vec![
                    ("type", "string".into()),
                    ("pattern", "^https://[A-Za-z0-9.-]+\\.onthetaedgecloud\\.com(/.*)?$".into()),
                    (
                        "description",
                        "The dedicated deployment's endpoint, https://<name>.onthetaedgecloud.com; IronClaw sends its token only to the host the extension package names."
                            .into(),
                    ),
                ]),
            );
        }
    }
    schema
}

/// Parses the `params` of a per-command tool (dispatched on `capability_id`): the command's
/// arguments, less the `dry_run` / `project_id` its tool schema adds.
pub fn parse_tool_params(info: &CommandInfo, params: &str) -> Result<ToolCall, ThetaError> {
    let mut args = match serde_json::from_str::<Value>(params) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => Map::new(),
        Ok(_) => {
            return Err(ThetaError::invalid(
                "params",
                "expected a JSON object of the tool's arguments",
            ));
        }
        Err(e) => {
            return Err(ThetaError::invalid(
                "params",
                format!("not valid JSON ({e})"),
            ));
        }
    };
    let mut dry_run = false;
    if info.effect != Effect::Read {
        dry_run = match args.remove("dry_run") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => return Err(ThetaError::invalid("dry_run", "must be true or false")),
        };
    }
    let project_id = if takes_project(info) {
        project_id(args.remove("project_id"))?
    } else {
        None
    };
    let endpoint = if takes_endpoint(info) {
        match args.remove("endpoint") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) if url.starts_with("https://") => Some(url),
            Some(_) => {
                return Err(ThetaError::invalid(
                    "endpoint",
                    "must be the deployment's https:// endpoint",
                ));
            }
        }
    } else {
        None
    };
    Ok(ToolCall {
        command: info.name.clone(),
        args_json: Value::Object(args).to_string(),
        dry_run,
        project_id,
        endpoint,
    })
}

fn project_id(value: Option<Value>) -> Result<Option<String>, ThetaError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id))
            if !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(Some(id))
        }
        Some(_) => Err(ThetaError::invalid(
            "project_id",
            "must be a project id such as prj_abc123 (letters, digits, _ and -)",
        )),
    }
}

/// IronClaw's `error-kind` (near:agent@0.4.1 `tool.error-kind`), mirrored so the mapping is a pure,
/// natively tested function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    AuthRequired,
    Input,
    OutputTooLarge,
    Executor,
    NetworkDenied,
    Client,
    OperationFailed,
}

/// A `guest-failure`: kind, a stable short code, and the message (the error's line, a newline,
/// then the error as JSON, as [`error_text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub code: String,
    pub message: String,
}

/// Maps a plugin error onto IronClaw's `guest-failure`:
/// invalid-argument → `input`; missing-credential and Theta's 401/403 → `auth-required`; a host
/// refusal (policy, dry-run mode) → `network-denied`; other 4xx → `client`; 5xx, no capacity and
/// broken connections → `operation-failed`; timeouts → `executor`. The code is the error's kind
/// (`upstream-502`, `transport-after-send` when a paid or mutating request failed after it was
/// sent: it may have run, do not resend it blindly).
pub fn failure(error: &ThetaError) -> Failure {
    let (kind, code) = match error {
        ThetaError::InvalidArgument { .. } => (FailureKind::Input, "invalid-argument".to_owned()),
        ThetaError::MissingCredential { .. } => {
            (FailureKind::AuthRequired, "missing-credential".to_owned())
        }
        ThetaError::Denied { .. } => (FailureKind::NetworkDenied, "denied".to_owned()),
        ThetaError::DryRun { .. } => (FailureKind::NetworkDenied, "dry-run".to_owned()),
        ThetaError::Upstream { status, .. } => (
            match status {
                401 | 403 => FailureKind::AuthRequired,
                400..=499 => FailureKind::Client,
                _ => FailureKind::OperationFailed,
            },
            format!("upstream-{status}"),
        ),
        ThetaError::CapacityExhausted { .. } => (
            FailureKind::OperationFailed,
            "capacity-exhausted".to_owned(),
        ),
        ThetaError::Timeout { message } => (
            FailureKind::Executor,
            if message.ends_with(crate::client::SENT_NOTE) {
                "timeout-after-send".to_owned()
            } else {
                "timeout".to_owned()
            },
        ),
        ThetaError::Transport { message } => (
            FailureKind::OperationFailed,
            if message.ends_with(crate::client::SENT_NOTE) {
                "transport-after-send".to_owned()
            } else {
                "transport".to_owned()
            },
        ),
    };
    Failure {
        kind,
        code,
        message: error_text(error),
    }
}

fn object(pairs: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::describe;
    use serde_json::json;

    #[test]
    fn params_with_args() {
        let call =
            parse_params(r#"{"command":"list_services","args":{"category":"image"}}"#).unwrap();
        assert_eq!(call.command, "list_services");
        assert_eq!(call.args_json, r#"{"category":"image"}"#);
        assert!(!call.dry_run);
        let call = parse_params(r#"{"command":" infer ","args":null,"dry_run":true}"#).unwrap();
        assert_eq!(
            (call.command.as_str(), call.args_json.as_str(), call.dry_run),
            ("infer", "{}", true)
        );
    }

    #[test]
    fn flattened_and_stringified_args_are_accepted() {
        let call = parse_params(r#"{"command":"list_services","category":"image"}"#).unwrap();
        assert_eq!(call.args_json, r#"{"category":"image"}"#);
        let call = parse_params(r#"{"command":"list_services","args":"{\"category\":\"audio\"}"}"#)
            .unwrap();
        assert_eq!(call.args_json, r#"{"category":"audio"}"#);
    }

    #[test]
    fn bad_params_name_the_field() {
        let field = |p: &str| match parse_params(p).unwrap_err() {
            ThetaError::InvalidArgument { field, .. } => field,
            e => panic!("{e}"),
        };
        assert_eq!(field("not json"), "params");
        assert_eq!(field("[1]"), "params");
        assert_eq!(field("{}"), "command");
        assert_eq!(field(r#"{"command":3}"#), "command");
        assert_eq!(field(r#"{"command":"infer","dry_run":"yes"}"#), "dry_run");
        assert_eq!(field(r#"{"command":"infer","args":[1]}"#), "args");
        assert_eq!(
            field(r#"{"command":"infer","args":{},"service":"flux"}"#),
            "service"
        );
        match parse_params("{}").unwrap_err() {
            ThetaError::InvalidArgument { reason, .. } => {
                assert!(reason.contains("list_services"), "{reason}")
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn schema_gives_every_command_its_own_args_schema() {
        let commands = describe();
        let schema = params_schema(&commands);
        let names: Vec<&str> = schema["properties"]["command"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            commands.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()
        );
        assert_eq!(schema["required"], json!(["command"]));
        for (c, rule) in commands.iter().zip(schema["allOf"].as_array().unwrap()) {
            assert_eq!(
                rule["if"]["properties"]["command"]["const"],
                c.name.as_str()
            );
            let own: Value = serde_json::from_str(&c.args_schema).unwrap();
            assert_eq!(rule["then"]["properties"]["args"], own, "{}", c.name);
        }
    }

    #[test]
    fn description_lists_commands_with_effects() {
        let text = description(&describe());
        assert!(text.contains("\n- infer (spend): "), "{text}");
        assert!(text.contains("\n- list_services (read): "), "{text}");
        assert!(text.contains("one response"), "{text}");
    }

    #[test]
    fn long_descriptions_shorten_summaries_to_stay_under_the_limit() {
        let many: Vec<CommandInfo> = (0..60)
            .map(|i| CommandInfo {
                name: format!("theta.family.command_{i}"),
                summary: format!("A long summary{}. Second sentence.", " word".repeat(16)),
                args_schema: "{}".into(),
                effect: Effect::Spend,
                credentials: Vec::new(),
            })
            .collect();
        let text = description(&many);
        assert!(text.len() <= MAX_DESCRIPTION + 3, "{}", text.len());
        assert!(
            text.contains("\n- theta.family.command_59 (spend)"),
            "{text}"
        );
        // Full summaries no longer fit: first sentences for the first commands, bare names after.
        assert!(!text.contains("Second sentence"), "{text}");
        assert!(
            text.contains("\n- theta.family.command_0 (spend): A long summary word"),
            "{text}"
        );
        assert!(
            text.ends_with("\n- theta.family.command_59 (spend)"),
            "{text}"
        );
    }

    #[test]
    fn errors_are_a_line_then_json() {
        let text = error_text(&missing_secret("THETA_ONDEMAND_API_TOKEN"));
        let (line, json) = text.split_once('\n').unwrap();
        assert!(
            line.starts_with("missing credential THETA_ONDEMAND_API_TOKEN"),
            "{line}"
        );
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["kind"], "missing-credential");
        assert!(
            v["hint"]
                .as_str()
                .unwrap()
                .contains("`theta_ondemand_api_token`")
        );
    }

    #[test]
    fn tool_ids_fit_ironclaws_capability_grammar_and_round_trip() {
        assert_eq!(tool_id("infer"), "theta.infer");
        assert_eq!(tool_id("list_services"), "theta.list_services");
        assert_eq!(
            tool_id("theta.deployments.listTemplates"),
            "theta.deployments_list_templates"
        );
        assert_eq!(
            tool_id("theta.video.ingestor.list"),
            "theta.video_ingestor_list"
        );
        let commands = describe();
        let mut seen = std::collections::HashSet::new();
        for c in &commands {
            let id = tool_id(&c.name);
            let (ext, name) = id.split_once('.').unwrap();
            assert_eq!(ext, EXTENSION_ID);
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{id}"
            );
            assert!(seen.insert(id.clone()), "two commands share {id}");
            assert_eq!(
                command_for_tool(&commands, &id).as_deref(),
                Some(c.name.as_str())
            );
        }
        assert_eq!(command_for_tool(&commands, "theta.nope"), None);
    }

    #[test]
    fn the_execute_context_names_the_tool() {
        assert_eq!(capability_id(None).unwrap(), None);
        assert_eq!(capability_id(Some("")).unwrap(), None);
        assert_eq!(
            capability_id(Some(r#"{"capability_id":"theta.infer","job":{}}"#)).unwrap(),
            Some("theta.infer".into())
        );
        assert_eq!(capability_id(Some(r#"{"job_id":"j1"}"#)).unwrap(), None);
        assert_eq!(capability_id(Some("not json")).unwrap(), None);
        assert!(capability_id(Some(r#"{"capability_id":3}"#)).is_err());
    }

    #[test]
    fn per_command_tools_take_the_commands_own_arguments() {
        let commands = describe();
        let infer = commands.iter().find(|c| c.name == "infer").unwrap();
        let call =
            parse_tool_params(infer, r#"{"service":"flux","input":{},"dry_run":true}"#).unwrap();
        assert_eq!(call.command, "infer");
        assert!(call.dry_run);
        assert_eq!(call.args_json, r#"{"input":{},"service":"flux"}"#);
        let schema = tool_input_schema(infer);
        assert_eq!(schema["properties"]["dry_run"]["type"], "boolean");
        assert!(schema["properties"].get("project_id").is_none());

        let list = commands.iter().find(|c| c.name == "list_services").unwrap();
        assert!(
            tool_input_schema(list)["properties"]
                .get("dry_run")
                .is_none()
        );
        // A read has no dry_run: the key stays and the command refuses it as unknown.
        let call = parse_tool_params(list, r#"{"dry_run":true}"#).unwrap();
        assert_eq!(call.args_json, r#"{"dry_run":true}"#);

        let deployments = commands
            .iter()
            .find(|c| c.name == "theta.deployments.list")
            .unwrap();
        assert_eq!(
            tool_input_schema(deployments)["properties"]["project_id"]["type"],
            "string"
        );
        let call = parse_tool_params(deployments, r#"{"project_id":"prj_1"}"#).unwrap();
        assert_eq!(
            (call.project_id.as_deref(), call.args_json.as_str()),
            (Some("prj_1"), "{}")
        );
        assert!(parse_tool_params(deployments, r#"{"project_id":"../x"}"#).is_err());
        assert!(parse_tool_params(deployments, "[]").is_err());
        assert_eq!(
            parse_tool_params(deployments, "null").unwrap().args_json,
            "{}"
        );
    }

    #[test]
    fn errors_map_onto_guest_failure_kinds() {
        use crate::error::RequestPreview;
        let kind = |e: ThetaError| {
            let f = failure(&e);
            assert!(f.message.starts_with(&e.to_string()));
            (f.kind, f.code)
        };
        assert_eq!(
            kind(ThetaError::invalid("x", "y")),
            (FailureKind::Input, "invalid-argument".into())
        );
        assert_eq!(
            kind(missing_secret("THETA_EC_API_KEY")).0,
            FailureKind::AuthRequired
        );
        assert_eq!(
            kind(ThetaError::Denied {
                reason: "no".into()
            })
            .0,
            FailureKind::NetworkDenied
        );
        assert_eq!(
            kind(ThetaError::DryRun {
                preview: RequestPreview {
                    method: "POST".into(),
                    url: "https://x".into(),
                    headers: vec![],
                    body: None
                }
            }),
            (FailureKind::NetworkDenied, "dry-run".into())
        );
        let upstream = |status| ThetaError::Upstream {
            status,
            message: String::new(),
            retriable: false,
        };
        assert_eq!(
            kind(upstream(401)),
            (FailureKind::AuthRequired, "upstream-401".into())
        );
        assert_eq!(
            kind(upstream(404)),
            (FailureKind::Client, "upstream-404".into())
        );
        assert_eq!(
            kind(upstream(503)),
            (FailureKind::OperationFailed, "upstream-503".into())
        );
        assert_eq!(
            kind(ThetaError::CapacityExhausted {
                service: "qwen3".into(),
                attempts: 3,
                message: String::new()
            })
            .0,
            FailureKind::OperationFailed
        );
        assert_eq!(
            kind(ThetaError::Timeout {
                message: "t".into()
            }),
            (FailureKind::Executor, "timeout".into())
        );
        assert_eq!(
            kind(ThetaError::transport(format!(
                "POST x: reset{}",
                crate::client::SENT_NOTE
            ))),
            (FailureKind::OperationFailed, "transport-after-send".into())
        );
        assert_eq!(kind(ThetaError::transport("reset")).1, "transport");
    }
}
