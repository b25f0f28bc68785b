//! Drop-in compatibility with Theta's official on-demand MCP server (`@thetalabs/on-demand-api-mcp`,
//! v0.1.7): its four tools `list_services`, `infer`, `get_request_status` and `get_upload_url` take the
//! same required arguments with the same defaults, are as tolerant, and answer with one text item in the
//! same format, so agents and prompts written for that server keep working. Their results are text only;
//! the plugin's JSON comes along as `structuredContent` only with `mcp --structured-content`.
//!
//! Only this layer adapts; the plugin's commands are unchanged. The deliberate differences are listed in
//! one place, `docs/mcp-differences.md`, which the compatibility test reads.

use serde_json::{Map, Value, json};

/// The official server's tool names.
pub const OFFICIAL_TOOLS: [&str; 4] = [
    "list_services",
    "infer",
    "get_request_status",
    "get_upload_url",
];

/// Longest `wait` Theta accepts, in seconds.
pub const MAX_WAIT: u64 = 60;

/// The official server's default `wait`, in seconds.
pub const DEFAULT_WAIT: u64 = 30;

/// Whether a command is one of the official four.
pub fn is_official(command: &str) -> bool {
    OFFICIAL_TOOLS.contains(&command)
}

/// The official server's category of a service, from its alias (first match wins); `other` otherwise.
pub fn official_category(alias: &str) -> &'static str {
    let a = alias.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| a.contains(w));
    if has(&["whisper", "audio", "voice"]) {
        "audio"
    } else if has(&["flux", "sdxl", "stable", "image", "upscale"]) {
        "image"
    } else if has(&["llama", "llm", "text", "chat", "mistral"]) {
        "text"
    } else if a.contains("video") {
        "video"
    } else {
        "other"
    }
}

/// Rewrites a command's schema into the official one for the official four: the same required fields
/// and defaults, no `additionalProperties: false` (unknown arguments are ignored with a note), and only
/// the properties that work through MCP.
pub fn adapt_schema(tool: &str, schema: &mut Map<String, Value>) {
    if !is_official(tool) {
        return;
    }
    schema.remove("additionalProperties");
    let required: &[&str] = match tool {
        "infer" => &["service", "input"],
        "get_request_status" => &["request_id"],
        "get_upload_url" => &["service", "input_field"],
        _ => &[],
    };
    schema.insert("required".into(), json!(required));
    let Some(Value::Object(props)) = schema.get_mut("properties") else {
        return;
    };
    match tool {
        "infer" => {
            // `payload` and `options` are the plugin's other spellings; through MCP `input` is required.
            props.remove("payload");
            props.remove("options");
            // Polling is the host's through MCP (progress while `wait` runs); the official four stay exact.
            props.remove("poll_until_done");
            props.remove("poll_timeout_seconds");
            props.insert(
                "wait".into(),
                json!({
                    "type": "number", "minimum": 0, "maximum": MAX_WAIT, "default": DEFAULT_WAIT,
                    "description": "Seconds to wait for the result (0-60, default 30; more is clamped to 60). \
                                    0 returns at once with a request id for get_request_status."
                }),
            );
            if let Some(Value::Object(input)) = props.get_mut("input") {
                input.insert(
                    "description".into(),
                    "The service's input object (see list_services' example input).".into(),
                );
            }
        }
        "list_services" => {
            props.insert(
                "category".into(),
                json!({
                    "type": "string",
                    "description": "Only services of this category: image, audio, text, video or other (case-insensitive)."
                }),
            );
        }
        _ => {}
    }
}

/// What to do with the plugin's answer after the call.
#[derive(Debug, Default, PartialEq)]
pub struct After {
    /// `list_services`: only services of this official category (lower case).
    pub category: Option<String>,
    /// Notes for the text: arguments ignored or changed.
    pub notes: Vec<String>,
}

/// Rewrites official-style arguments into the plugin's, as tolerant as the official server: unknown
/// arguments are dropped (with a note), `wait` may be a numeric string or a fraction and is clamped to
/// 60 (with a note), the category is matched in lower case here. Wrong types are left for the plugin
/// to report. `known` are the properties of the tool's schema.
pub fn adapt_args(tool: &str, args: &mut Value, known: &[&str]) -> After {
    let mut after = After::default();
    if !is_official(tool) {
        return after;
    }
    let Some(obj) = args.as_object_mut() else {
        return after;
    };
    let unknown: Vec<String> = obj
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in unknown {
        obj.remove(&key);
        after.notes.push(format!(
            "the argument `{key}` is not one of {tool}'s ({}) and was ignored.",
            known.join(", ")
        ));
    }
    match tool {
        "infer" => {
            let wait = match obj.get("wait") {
                Some(Value::String(t)) => t.trim().parse::<f64>().ok(),
                Some(Value::Number(n)) => n.as_f64(),
                _ => None,
            };
            if let Some(w) = wait.filter(|w| w.is_finite() && *w >= 0.0) {
                let mut secs = w.ceil() as u64;
                if secs > MAX_WAIT {
                    after.notes.push(format!(
                        "wait {w} is more than the most Theta holds a request ({MAX_WAIT} s); waited {MAX_WAIT} s."
                    ));
                    secs = MAX_WAIT;
                }
                obj.insert("wait".into(), Value::from(secs));
            }
        }
        "list_services" => {
            if let Some(Value::String(c)) = obj.get("category") {
                after.category = Some(c.to_lowercase());
                obj.remove("category");
            }
        }
        _ => {}
    }
    after
}

/// The official server's text for a result, and the plugin's JSON for `structuredContent`; `None` for
/// tools that are not the official four.
pub fn render(tool: &str, args: &Value, result: &Value, after: &After) -> Option<(String, Value)> {
    let (mut text, structured) = match tool {
        "list_services" => {
            let empty = Vec::new();
            let services: Vec<Value> = result
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter(|s| {
                    after
                        .category
                        .as_deref()
                        .is_none_or(|c| official_category(self::s(s, "alias").unwrap_or("")) == c)
                })
                .cloned()
                .collect();
            (
                list_services_text(&services),
                json!({ "services": services }),
            )
        }
        "infer" => (infer_text(result), result.clone()),
        "get_request_status" => (status_text(result), result.clone()),
        "get_upload_url" => (
            upload_text(result, s(args, "service").unwrap_or("<service>")),
            json!({ "urls": result }),
        ),
        _ => return None,
    };
    text.push_str(&notes_text(&after.notes));
    Some((text, structured))
}

/// The notes, as a paragraph after the official text (empty without notes).
pub fn notes_text(notes: &[String]) -> String {
    notes.iter().map(|n| format!("\n\nNote: {n}")).collect()
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

pub fn list_services_text(services: &[Value]) -> String {
    // Grouped by category, in the order categories first appear.
    let mut groups: Vec<(String, Vec<&Value>)> = Vec::new();
    for service in services {
        let category = official_category(s(service, "alias").unwrap_or("")).to_owned();
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
                s(service, "instructions").unwrap_or("No description available")
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
            let example = service
                .get("input_example")
                .filter(|e| e.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            out.push_str(&format!("Example input: {}\n\n", pretty(&example)));
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

    const INFER_KNOWN: [&str; 6] = [
        "service",
        "input",
        "wait",
        "prediction",
        "variant",
        "webhook",
    ];

    #[test]
    fn official_arguments_are_accepted_with_tolerance() {
        let mut args = json!({"service": "flux", "input": {}, "wait": 2.5});
        assert_eq!(
            adapt_args("infer", &mut args, &INFER_KNOWN),
            After::default()
        );
        assert_eq!(args["wait"], 3);
        let mut args = json!({"service": "flux", "input": {}, "wait": "10", "bogus": 1});
        let after = adapt_args("infer", &mut args, &INFER_KNOWN);
        assert_eq!(args, json!({"service": "flux", "input": {}, "wait": 10}));
        assert_eq!(after.notes.len(), 1);
        assert!(after.notes[0].contains("`bogus`"), "{:?}", after.notes);
        let mut args = json!({"service": "flux", "input": {}, "wait": 90});
        let after = adapt_args("infer", &mut args, &INFER_KNOWN);
        assert_eq!(args["wait"], 60);
        assert!(after.notes[0].contains("waited 60 s"), "{:?}", after.notes);
        // Wrong types stay for the plugin to report.
        let mut args = json!({"service": "flux", "input": {}, "wait": "soon"});
        adapt_args("infer", &mut args, &INFER_KNOWN);
        assert_eq!(args["wait"], "soon");
        let mut args = json!({"category": "IMAGE"});
        let after = adapt_args("list_services", &mut args, &["category"]);
        assert_eq!(after.category.as_deref(), Some("image"));
        assert_eq!(args, json!({}));
        // Other tools are the plugin's business.
        let mut args = json!({"bogus": 1});
        assert_eq!(
            adapt_args("theta.ondemand.chat", &mut args, &[]),
            After::default()
        );
        assert_eq!(args, json!({"bogus": 1}));
    }

    #[test]
    fn categories_are_the_official_servers() {
        for (alias, category) in [
            ("qwen3", "other"),
            ("llama_3_1_70b", "text"),
            ("flux", "image"),
            ("stable_diffusion_xl_turbo", "image"),
            ("whisper", "audio"),
            ("step_video", "video"),
            ("image_to_image", "image"),
            ("llava", "other"),
            ("kokoro_82m", "other"),
        ] {
            assert_eq!(official_category(alias), category, "{alias}");
        }
    }

    #[test]
    fn list_services_reads_like_the_official_server() {
        let services = json!([
            {"alias": "flux", "name": "FLUX.1", "instructions": "Images",
             "variants": ["a", "b"], "input_example": {"prompt": "Your prompt here", "height": 1024}},
            {"alias": "whisper", "name": "Whisper", "instructions": null,
             "variants": [], "input_example": {"audio_filename": "https://example.com/file"}},
            {"alias": "qwen3", "name": "Qwen3", "variants": ["default"], "input_example": {"stream": true}},
        ]);
        let (text, structured) =
            render("list_services", &json!({}), &services, &After::default()).unwrap();
        assert_eq!(
            text,
            "Found 3 available services:\n\n## IMAGE\n\n### FLUX.1 (flux)\nImages\nVariants: a, b\n\
             Example input: {\n  \"height\": 1024,\n  \"prompt\": \"Your prompt here\"\n}\n\n## AUDIO\n\n### Whisper (whisper)\n\
             No description available\nExample input: {\n  \"audio_filename\": \"https://example.com/file\"\n}\n\n\
             ## OTHER\n\n### Qwen3 (qwen3)\nNo description available\nExample input: {\n  \"stream\": true\n}\n\n"
        );
        assert_eq!(structured["services"][1]["alias"], "whisper");
        let other = After {
            category: Some("other".into()),
            ..After::default()
        };
        let (text, _) = render("list_services", &json!({}), &services, &other).unwrap();
        assert!(
            text.starts_with("Found 1 available services:\n\n## OTHER\n"),
            "{text}"
        );
        let none = After {
            category: Some("music".into()),
            notes: vec!["x.".into()],
        };
        let (text, _) = render("list_services", &json!({}), &services, &none).unwrap();
        assert_eq!(text, "Found 0 available services:\n\n\n\nNote: x.");
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
    fn the_official_schemas_required_fields_and_defaults() {
        let mut schema = json!({"type": "object", "additionalProperties": false, "required": ["service"],
            "properties": {"service": {"type": "string"}, "input": {"type": "object"}, "payload": {}, "options": {},
                           "wait": {"type": "integer"}}});
        let map = schema.as_object_mut().unwrap();
        adapt_schema("infer", map);
        assert_eq!(map["required"], json!(["service", "input"]));
        assert_eq!(map["properties"]["wait"]["type"], "number");
        assert_eq!(map["properties"]["wait"]["default"], 30);
        assert!(map.get("additionalProperties").is_none());
        assert!(map["properties"].get("payload").is_none());
        let mut schema = json!({"type": "object", "properties": {"category": {"type": "string", "enum": ["image"]}}});
        let map = schema.as_object_mut().unwrap();
        adapt_schema("list_services", map);
        assert!(map["properties"]["category"].get("enum").is_none());
        assert_eq!(map["required"], json!([]));
    }
}
