//! Drop-in compatibility with Theta's official on-demand MCP server (`@thetalabs/on-demand-api-mcp`,
//! v0.1.7): its four tools `list_services`, `infer`, `get_request_status` and `get_upload_url` accept
//! the same arguments here and answer with one text item in the same format, so agents and prompts
//! written for that server keep working. The plugin's own JSON result travels beside it as
//! `structuredContent`.
//!
//! Only this layer adapts; the plugin's commands are unchanged. Differences, on purpose:
//! - `list_services`: categories come from the plugin (it also knows `vision`, and files chat models
//!   such as qwen3 under `text`, where the official server says `other`); the example input is built from
//!   the input field names (the plugin does not return their types).
//! - `infer` / `get_request_status`: the cost line reads `Cost: <x> USD` from `cost_usd` (the official
//!   server prints `credits` from a `cost` field that live answers do not have); `failed` and `cancelled`
//!   count as failures like `error`; a chat input is answered as JSON, not SSE (the official server fails
//!   on it).
//! - `get_upload_url`: reads both answer shapes (the official server only knows `urls[field].upload_url`,
//!   which live answers do not use) and also accepts `input_fields` for several files at once.
//! - Errors: `isError: true` with `Error: <kind>: <message>` (the official server has no kinds).

use serde_json::{Map, Value};

/// The official server's tool names.
pub const OFFICIAL_TOOLS: [&str; 4] = [
    "list_services",
    "infer",
    "get_request_status",
    "get_upload_url",
];

/// The plugin's categories (`list_services`' enum).
const CATEGORIES: [&str; 6] = ["image", "audio", "text", "video", "vision", "other"];

/// Widens a command's schema to what the official server accepts.
pub fn adapt_schema(tool: &str, schema: &mut Map<String, Value>) {
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    match tool {
        // The official schema types `wait` as a number; fractions are rounded up here.
        "infer" => {
            if let Some(Value::Object(wait)) = props.get_mut("wait") {
                wait.insert("type".into(), Value::String("number".into()));
            }
        }
        // The official server takes any category string (unknown ones list nothing).
        "list_services" => {
            if let Some(Value::Object(category)) = props.get_mut("category") {
                category.remove("enum");
                category.insert(
                    "description".into(),
                    Value::String(format!(
                        "Only services of this category, e.g. {} (case-insensitive).",
                        CATEGORIES.join(", ")
                    )),
                );
            }
        }
        _ => {}
    }
}

/// What to do with the plugin's answer after the call.
#[derive(Debug, Default, PartialEq)]
pub struct After {
    /// `list_services` with a category the plugin does not know: the official server lists nothing.
    pub unknown_category: bool,
}

/// Rewrites official-style arguments into the plugin's: `wait` as a whole number of seconds, the
/// category in lower case. Arguments the plugin rejects are left for it to report.
pub fn adapt_args(tool: &str, args: &mut Value) -> After {
    let mut after = After::default();
    let Some(obj) = args.as_object_mut() else {
        return after;
    };
    match tool {
        "infer" => {
            if let Some(Value::Number(n)) = obj.get("wait")
                && n.as_u64().is_none()
                && let Some(f) = n.as_f64()
                && (0.0..=60.0).contains(&f)
            {
                obj.insert("wait".into(), Value::from(f.ceil() as u64));
            }
        }
        "list_services" => {
            if let Some(Value::String(c)) = obj.get("category") {
                let lower = c.trim().to_ascii_lowercase();
                if CATEGORIES.contains(&lower.as_str()) {
                    obj.insert("category".into(), Value::String(lower));
                } else {
                    obj.remove("category");
                    after.unknown_category = true;
                }
            }
        }
        _ => {}
    }
    after
}

/// The official server's text for a result, and the structured content beside it; `None` for tools
/// that are not the official four.
pub fn render(tool: &str, args: &Value, result: &Value, after: &After) -> Option<(String, Value)> {
    match tool {
        "list_services" => {
            let empty = Vec::new();
            let all = result.as_array().unwrap_or(&empty);
            let services: Vec<Value> = if after.unknown_category {
                Vec::new()
            } else {
                all.clone()
            };
            let text = list_services_text(&services);
            Some((text, serde_json::json!({ "services": services })))
        }
        "infer" => Some((infer_text(result), result.clone())),
        "get_request_status" => Some((status_text(result), result.clone())),
        "get_upload_url" => {
            let text = upload_text(result, s(args, "service").unwrap_or("<service>"));
            Some((text, serde_json::json!({ "urls": result })))
        }
        _ => None,
    }
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Placeholder values for an example input, as the official server builds them.
fn example_input(service: &Value) -> Value {
    let mut example = Map::new();
    for field in service
        .get("input_fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let value = if field.contains("url") || field.contains("filename") {
            Value::String("https://example.com/file".into())
        } else if field == "prompt" {
            Value::String("Your prompt here".into())
        } else if field == "messages" {
            serde_json::json!([{"role": "user", "content": "Hello"}])
        } else {
            Value::String("string value".into())
        };
        example.insert(field.to_owned(), value);
    }
    Value::Object(example)
}

pub fn list_services_text(services: &[Value]) -> String {
    // Grouped by category, in the order categories first appear.
    let mut groups: Vec<(String, Vec<&Value>)> = Vec::new();
    for service in services {
        let category = s(service, "category").unwrap_or("other").to_owned();
        match groups.iter_mut().find(|(c, _)| *c == category) {
            Some((_, list)) => list.push(service),
            None => groups.push((category, vec![service])),
        }
    }
    let mut out = format!("Found {} available services:\n\n", services.len());
    for (category, list) in groups {
        out.push_str(&format!("## {}\n\n", category.to_uppercase()));
        for service in list {
            let alias = s(service, "alias").unwrap_or("");
            out.push_str(&format!(
                "### {} ({alias})\n",
                s(service, "name").unwrap_or(alias)
            ));
            out.push_str(&format!(
                "{}\n",
                s(service, "description").unwrap_or("No description available")
            ));
            let variants: Vec<&str> = service
                .get("variants")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if variants.len() > 1 {
                out.push_str(&format!("Variants: {}\n", variants.join(", ")));
            }
            out.push_str(&format!(
                "Example input: {}\n\n",
                pretty(&example_input(service))
            ));
        }
    }
    out
}

fn failed(state: &str) -> bool {
    matches!(state, "error" | "failed" | "cancelled")
}

/// The output and cost of a finished request, as the official server writes them.
fn output_text(request: &Value) -> String {
    let mut out = String::new();
    if let Some(output) = request.get("output").filter(|o| !o.is_null()) {
        if let Some(text) = s(output, "text") {
            out.push_str(&format!("**Result:**\n{text}\n"));
        } else if let Some(url) = s(output, "url") {
            out.push_str(&format!("**Generated Image URL:**\n{url}\n"));
        } else if let Some(urls) = output.get("urls").and_then(Value::as_array) {
            out.push_str("**Generated Image URLs:**\n");
            for url in urls {
                match url.as_str() {
                    Some(u) => out.push_str(&format!("- {u}\n")),
                    None => out.push_str(&format!("- {url}\n")),
                }
            }
        } else {
            out.push_str(&format!("**Output:**\n```json\n{}\n```\n", pretty(output)));
        }
    }
    if let Some(cost) = request.get("cost_usd").and_then(Value::as_f64) {
        out.push_str(&format!("\nCost: {cost} USD"));
    }
    out
}

pub fn infer_text(request: &Value) -> String {
    let id = s(request, "id").unwrap_or("");
    let state = s(request, "state").unwrap_or("unknown");
    if state == "success" {
        format!(
            "Inference completed successfully!\n\nRequest ID: {id}\n\n{}",
            output_text(request)
        )
    } else if failed(state) {
        format!(
            "Inference failed.\n\nRequest ID: {id}\nError: {}\n",
            s(request, "error_message").unwrap_or("Unknown error")
        )
    } else {
        format!(
            "Inference request is still processing.\n\nRequest ID: {id}\nCurrent State: {state}\n\n\
             To check the status later, use:\nget_request_status(request_id=\"{id}\")\n"
        )
    }
}

pub fn status_text(request: &Value) -> String {
    let state = s(request, "state").unwrap_or("unknown");
    let mut out = format!(
        "Request ID: {}\nState: {state}\nCreated: {}\nUpdated: {}\n\n",
        s(request, "id").unwrap_or(""),
        s(request, "create_time").unwrap_or("unknown"),
        s(request, "update_time").unwrap_or("unknown"),
    );
    if state == "success" {
        out.push_str(&output_text(request));
    } else if failed(state) {
        out.push_str(&format!(
            "**Error:** {}\n",
            s(request, "error_message").unwrap_or("Unknown error")
        ));
    } else if state == "pending" || state == "processing" {
        out.push_str(&format!(
            "The request is still {state}. Check again in a few seconds.\n"
        ));
    }
    out
}

pub fn upload_text(urls: &Value, service: &str) -> String {
    let empty = Vec::new();
    urls.as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|u| {
            let field = s(u, "field").unwrap_or("");
            let url = s(u, "upload_url").unwrap_or("");
            let filename = s(u, "filename").unwrap_or("");
            format!(
                "**Upload URL Generated**\n\n\
                 Upload your file using a PUT request to:\n`{url}`\n\n\
                 After uploading, use this filename in your infer() call:\n`{filename}`\n\n\
                 **Example cURL command:**\n```bash\ncurl -X PUT -T your-file.wav \"{url}\"\n```\n\n\
                 **Then run inference:**\n```\ninfer(\n  service=\"{service}\",\n  input={{\"{field}\": \"{filename}\"}}\n)\n```\n"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn official_arguments_are_accepted() {
        let mut args = json!({"service": "flux", "input": {}, "wait": 2.5});
        adapt_args("infer", &mut args);
        assert_eq!(args["wait"], 3);
        let mut args = json!({"category": "IMAGE"});
        assert_eq!(adapt_args("list_services", &mut args), After::default());
        assert_eq!(args["category"], "image");
        let mut args = json!({"category": "music"});
        assert!(adapt_args("list_services", &mut args).unknown_category);
        assert!(args.get("category").is_none());
    }

    #[test]
    fn list_services_reads_like_the_official_server() {
        let services = json!([
            {"alias": "flux", "name": "FLUX.1", "category": "image", "description": "Images",
             "variants": ["a", "b"], "input_fields": ["prompt"]},
            {"alias": "whisper", "name": "Whisper", "category": "audio", "description": null,
             "variants": [], "input_fields": ["audio_filename"]},
        ]);
        let (text, structured) =
            render("list_services", &json!({}), &services, &After::default()).unwrap();
        assert_eq!(
            text,
            "Found 2 available services:\n\n## IMAGE\n\n### FLUX.1 (flux)\nImages\nVariants: a, b\n\
             Example input: {\n  \"prompt\": \"Your prompt here\"\n}\n\n## AUDIO\n\n### Whisper (whisper)\n\
             No description available\nExample input: {\n  \"audio_filename\": \"https://example.com/file\"\n}\n\n"
        );
        assert_eq!(structured["services"][1]["alias"], "whisper");
        let (none, _) = render(
            "list_services",
            &json!({}),
            &services,
            &After {
                unknown_category: true,
            },
        )
        .unwrap();
        assert_eq!(none, "Found 0 available services:\n\n");
    }

    #[test]
    fn infer_states_read_like_the_official_server() {
        let done = json!({"id": "r1", "state": "success", "output": {"url": "https://x/y.png"}, "cost_usd": 0.01});
        assert_eq!(
            infer_text(&done),
            "Inference completed successfully!\n\nRequest ID: r1\n\n**Generated Image URL:**\nhttps://x/y.png\n\nCost: 0.01 USD"
        );
        let pending = json!({"id": "r2", "state": "pending"});
        assert!(infer_text(&pending).contains("get_request_status(request_id=\"r2\")"));
        let failed = json!({"id": "r3", "state": "error", "error_message": "boom"});
        assert_eq!(
            infer_text(&failed),
            "Inference failed.\n\nRequest ID: r3\nError: boom\n"
        );
        assert!(
            status_text(&json!({"id": "r2", "state": "processing"}))
                .contains("The request is still processing.")
        );
        let out =
            status_text(&json!({"id": "r4", "state": "success", "output": {"image_url": "u"}}));
        assert!(out.contains("**Output:**\n```json\n{\n  \"image_url\": \"u\"\n}\n```\n"));
    }

    #[test]
    fn upload_url_reads_like_the_official_server() {
        let urls = json!([{"field": "audio_filename", "upload_url": "https://storage/x?sig", "filename": "f.wav"}]);
        let text = upload_text(&urls, "whisper");
        assert!(text.starts_with("**Upload URL Generated**\n\nUpload your file using a PUT request to:\n`https://storage/x?sig`"));
        assert!(text.contains("service=\"whisper\",\n  input={\"audio_filename\": \"f.wav\"}"));
    }

    #[test]
    fn the_official_schema_shape_is_accepted() {
        let mut schema = json!({"type": "object", "properties": {"wait": {"type": "integer"}, "category": {"type": "string", "enum": ["image"]}}});
        let map = schema.as_object_mut().unwrap();
        adapt_schema("infer", map);
        assert_eq!(map["properties"]["wait"]["type"], "number");
        adapt_schema("list_services", map);
        assert!(map["properties"]["category"].get("enum").is_none());
    }
}
