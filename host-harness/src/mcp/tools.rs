//! The plugin's `describe()` as MCP tools: name, description, the command's JSON Schema as the input
//! schema, and annotations from the command's effect.

use crate::bindings::{CommandInfo, Effect};
use crate::report;
use rmcp::model::{JsonObject, MetaObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use std::sync::Arc;

/// The MCP tool for one command.
pub fn tool(command: &CommandInfo) -> Tool {
    let mut schema = match serde_json::from_str::<Value>(&command.args_schema) {
        Ok(Value::Object(map)) => map,
        // A plugin with a broken schema still gets a tool; the plugin validates the arguments anyway.
        _ => json!({"type": "object"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    if !schema.contains_key("type") {
        schema.insert("type".into(), Value::String("object".into()));
    }
    // Some model APIs refuse a `$schema` key in a tool's input schema; MCP assumes 2020-12 anyway.
    schema.remove("$schema");
    super::official::adapt_schema(&command.name, &mut schema);
    let description = format!(
        "{} [effect: {}{}]",
        command.summary,
        report::effect_label(command.effect),
        match command.effect {
            Effect::Read => "; reads only",
            Effect::Mutate => "; changes state at Theta EdgeCloud",
            Effect::Spend => "; PAID: runs billable work at Theta EdgeCloud",
        }
    );
    let mut meta = MetaObject::new();
    meta.insert(
        "theta/effect".into(),
        Value::String(report::effect_label(command.effect).into()),
    );
    meta.insert("theta/credentials".into(), json!(command.credentials));
    Tool::new(command.name.clone(), description, Arc::new(schema))
        .with_annotations(annotations(command))
        .with_meta(meta)
}

/// Hints from the effect: reads are read-only and idempotent; mutating and paid commands are neither,
/// and are marked destructive (the effect does not say whether a change can be undone, and money spent
/// cannot). Every command talks to Theta EdgeCloud, an open world.
pub fn annotations(command: &CommandInfo) -> ToolAnnotations {
    let read = matches!(command.effect, Effect::Read);
    ToolAnnotations::with_title(title(&command.name))
        .read_only(read)
        .destructive(!read)
        .idempotent(read)
        .open_world(true)
}

fn title(name: &str) -> String {
    let base = name.rsplit('.').next().unwrap_or(name);
    let mut words: Vec<String> = base
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if name.starts_with("theta.ondemand.") {
        words.insert(0, "On-demand".into());
    }
    words.join(" ")
}

/// The arguments of a call as a JSON object (MCP sends an object or nothing).
pub fn arguments(args: Option<JsonObject>) -> Value {
    Value::Object(args.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(name: &str, effect: Effect, schema: &str) -> CommandInfo {
        CommandInfo {
            name: name.into(),
            summary: "Does a thing.".into(),
            args_schema: schema.into(),
            effect,
            credentials: vec!["THETA_ONDEMAND_API_TOKEN".into()],
        }
    }

    #[test]
    fn effects_become_hints() {
        let read = annotations(&command("list_services", Effect::Read, "{}"));
        assert_eq!(
            (
                read.read_only_hint,
                read.destructive_hint,
                read.idempotent_hint,
                read.open_world_hint
            ),
            (Some(true), Some(false), Some(true), Some(true))
        );
        for effect in [Effect::Mutate, Effect::Spend] {
            let a = annotations(&command("x", effect, "{}"));
            assert_eq!(
                (a.read_only_hint, a.destructive_hint, a.open_world_hint),
                (Some(false), Some(true), Some(true))
            );
        }
    }

    #[test]
    fn schema_is_the_commands_own_and_names_are_titled() {
        let t = tool(&command(
            "theta.ondemand.chat",
            Effect::Spend,
            r#"{"type":"object","properties":{"messages":{"type":"array"}}}"#,
        ));
        assert_eq!(t.name, "theta.ondemand.chat");
        assert_eq!(t.input_schema["properties"]["messages"]["type"], "array");
        assert!(t.description.unwrap().contains("PAID"));
        assert_eq!(
            t.annotations.unwrap().title.as_deref(),
            Some("On-demand Chat")
        );
        let broken = tool(&command("x", Effect::Read, "not json"));
        assert_eq!(broken.input_schema["type"], "object");
    }
}
