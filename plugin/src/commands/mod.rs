//! The command registry: for every command its name, summary, JSON Schema, effect and credentials,
//! and `invoke`, which parses a JSON arguments object, runs the command and returns JSON.
//! `describe()` and `invoke()` read the same table, so they cannot disagree.

pub mod args;
pub mod chat;
pub mod ondemand;

use crate::client::Ctx;
use crate::config::ONDEMAND_TOKEN_VAR;
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
    needs_token: bool,
    run: fn(&Ctx, Args) -> Result<Value>,
}

/// Other names callers use for the same commands (the skill's camelCase vocabulary).
const ALIASES: [(&str, &str); 4] = [
    ("theta.ondemand.listServices", "list_services"),
    ("theta.ondemand.infer", "infer"),
    ("theta.ondemand.status", "get_request_status"),
    ("theta.ondemand.inputPresignedUrls", "get_upload_url"),
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

fn to_json<T: ToJson>(value: T) -> Result<Value> {
    Ok(value.to_json())
}

fn commands() -> [Command; 5] {
    [
        Command {
            name: "list_services",
            summary: "List the services of the on-demand catalogue (public ones), optionally of one category.",
            schema: ondemand::LIST_SERVICES_SCHEMA,
            effect: Effect::Read,
            needs_token: false,
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
            needs_token: true,
            run: |ctx, args| to_json(ondemand::infer(ctx, ondemand::parse_infer(args)?)?),
        },
        Command {
            name: "get_request_status",
            summary: "Status and, when finished, output of an inference request.",
            schema: ondemand::STATUS_SCHEMA,
            effect: Effect::Read,
            needs_token: true,
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
            needs_token: true,
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
            needs_token: true,
            run: |ctx, args| to_json(chat::chat(ctx, chat::parse_chat(args)?)?),
        },
    ]
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
            credentials: if c.needs_token {
                vec![ONDEMAND_TOKEN_VAR.into()]
            } else {
                Vec::new()
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
