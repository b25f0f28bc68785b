//! `theta.ondemand.chat`: qwen3 and other `/infer_request/{alias}` chat services (SSE streamed by
//! default, tokens emitted as they arrive) and `gpt_oss_120b` on the OpenAI-compatible route (answer and
//! reasoning apart). A stream cut mid-event or by a reset is an error, never a short answer.

use super::args::{Args, as_string, check_name, check_range};
use super::{ToJson, object, opt_str};
use crate::client::{Call, Client, Ctx, encode, parse_json_body, truncate};
use crate::config::CHAT_TIMEOUT_MS;
use crate::error::{Result, ThetaError};
use crate::events::{Event, EventSink};
use crate::sse::{SseEvent, SseParser};
use crate::transport::HttpResponse;
use serde_json::{Map, Value, json};

pub const DEFAULT_SERVICE: &str = "qwen3";
/// Served on `/infer_request/chat/completions` with an OpenAI body.
pub const OPENAI_ROUTE_SERVICES: [&str; 1] = ["gpt_oss_120b"];
const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];
const EFFORTS: [&str; 3] = ["low", "medium", "high"];
const MAX_TOKENS_LIMIT: u32 = 32_768;

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatArgs {
    pub messages: Vec<ChatMessage>,
    pub service: Option<String>,
    pub variant: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub reasoning_effort: Option<String>,
    pub stream: Option<bool>,
    pub wait: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    pub service: String,
    pub content: String,
    pub reasoning: Option<String>,
    pub finish_reason: Option<String>,
    pub note: Option<String>,
    pub usage: Option<TokenUsage>,
    pub streamed: bool,
}

pub const CHAT_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["messages"],"properties":{
"messages":{"type":"array","minItems":1,"description":"The conversation, oldest first.","items":{"type":"object","additionalProperties":false,"required":["role","content"],"properties":{"role":{"type":"string","enum":["system","user","assistant","tool"],"description":"Who wrote the message."},"content":{"type":"string","description":"The message text."}}}},
"service":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Chat service alias; default `qwen3`. `gpt_oss_120b` uses the OpenAI-compatible route."},
"variant":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"Service variant, e.g. `parallax_32b_fp8` for qwen3."},
"max_tokens":{"type":"integer","minimum":1,"maximum":32768,"description":"Answer budget; default 500 (qwen3) or 1800 (gpt_oss_120b, whose reasoning uses the same budget)."},
"temperature":{"type":"number","minimum":0,"maximum":2,"description":"Sampling temperature; default 0.5 on /infer_request services."},
"top_p":{"type":"number","minimum":0,"maximum":1,"description":"Nucleus sampling; default 0.7 on /infer_request services."},
"reasoning_effort":{"type":"string","enum":["low","medium","high"],"description":"Reasoning effort (gpt_oss_120b; default low)."},
"stream":{"type":"boolean","description":"Stream tokens as they arrive (default true for qwen3, false for gpt_oss_120b)."},
"wait":{"type":"integer","minimum":0,"maximum":60,"description":"Seconds Theta may hold the request (default 60)."}}}"#;

pub fn parse_chat(args: Args) -> Result<ChatArgs> {
    args.allow_only(&[
        "messages",
        "service",
        "variant",
        "max_tokens",
        "temperature",
        "top_p",
        "reasoning_effort",
        "stream",
        "wait",
    ])?;
    let messages = match args.get("messages") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let field = format!("messages[{i}]");
                let m = super::args::as_object(&field, m)?;
                if let Some(k) = m.keys().find(|k| *k != "role" && *k != "content") {
                    return Err(ThetaError::invalid(
                        format!("{field}.{k}"),
                        "unknown field; a message has role and content",
                    ));
                }
                let get = |k: &str| {
                    m.get(k)
                        .ok_or_else(|| {
                            ThetaError::invalid(
                                format!("{field}.{k}"),
                                "required; expected a string",
                            )
                        })
                        .and_then(|v| as_string(&format!("{field}.{k}"), v))
                };
                Ok(ChatMessage {
                    role: get("role")?,
                    content: get("content")?,
                })
            })
            .collect::<Result<Vec<_>>>()?,
        Some(other) => {
            return Err(ThetaError::invalid(
                "messages",
                format!(
                    "expected a list of {{role, content}}, got {}",
                    super::args::kind(other)
                ),
            ));
        }
        None => {
            return Err(ThetaError::invalid(
                "messages",
                "required; expected a non-empty list of {role, content}",
            ));
        }
    };
    Ok(ChatArgs {
        messages,
        service: args.string("service")?,
        variant: args.string("variant")?,
        max_tokens: args.u32("max_tokens")?,
        temperature: args.f64("temperature")?,
        top_p: args.f64("top_p")?,
        reasoning_effort: args.string("reasoning_effort")?,
        stream: args.bool("stream")?,
        wait: args.u32("wait")?,
    })
}

pub fn validate(args: &ChatArgs) -> Result<()> {
    if args.messages.is_empty() {
        return Err(ThetaError::invalid(
            "messages",
            "expected at least one message",
        ));
    }
    for (i, m) in args.messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(ThetaError::invalid(
                format!("messages[{i}].role"),
                format!(
                    "expected one of {}, got `{}`",
                    ROLES.join(", "),
                    truncate(&m.role, 40)
                ),
            ));
        }
    }
    if let Some(s) = &args.service {
        check_name("service", s)?;
    }
    if let Some(v) = &args.variant {
        check_name("variant", v)?;
    }
    check_range("max_tokens", args.max_tokens, 1, MAX_TOKENS_LIMIT)?;
    check_range("temperature", args.temperature, 0.0, 2.0)?;
    check_range("top_p", args.top_p, 0.0, 1.0)?;
    check_range("wait", args.wait, 0, 60)?;
    if let Some(e) = &args.reasoning_effort
        && !EFFORTS.contains(&e.as_str())
    {
        return Err(ThetaError::invalid(
            "reasoning_effort",
            format!(
                "expected one of {}, got `{}`",
                EFFORTS.join(", "),
                truncate(e, 40)
            ),
        ));
    }
    Ok(())
}

pub fn chat(ctx: &Ctx, args: ChatArgs) -> Result<ChatReply> {
    validate(&args)?;
    let service = args
        .service
        .clone()
        .unwrap_or_else(|| DEFAULT_SERVICE.into());
    let openai = OPENAI_ROUTE_SERVICES.contains(&service.as_str());
    let messages = Value::Array(
        args.messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect(),
    );
    let (call, budget) = if openai {
        let max_tokens = args.max_tokens.unwrap_or(1800);
        let mut body = json!({
            "model": service,
            "messages": messages,
            "max_tokens": max_tokens,
            "reasoning_effort": args.reasoning_effort.as_deref().unwrap_or("low"),
            "stream": args.stream.unwrap_or(false),
        });
        if let Some(t) = args.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = args.top_p {
            body["top_p"] = json!(p);
        }
        let mut call = Call::post("/infer_request/chat/completions".into(), body);
        call.not_found = Some(format!(
            "unknown service `{service}` on /infer_request/chat/completions: see list_services"
        ));
        (call, max_tokens)
    } else {
        let max_tokens = args.max_tokens.unwrap_or(500);
        let mut input = Map::new();
        input.insert("messages".into(), messages);
        input.insert("max_tokens".into(), json!(max_tokens));
        input.insert("temperature".into(), json!(args.temperature.unwrap_or(0.5)));
        input.insert("top_p".into(), json!(args.top_p.unwrap_or(0.7)));
        input.insert("stream".into(), json!(args.stream.unwrap_or(true)));
        if let Some(e) = &args.reasoning_effort {
            input.insert("reasoning_effort".into(), json!(e));
        }
        let wait = args.wait.unwrap_or(60);
        let mut body = json!({ "input": input });
        let query = match &args.variant {
            Some(v) => {
                body["variant"] = json!(v);
                format!("prediction=completions&wait={wait}")
            }
            None => format!("wait={wait}"),
        };
        let mut call = Call::post(format!("/infer_request/{}?{query}", encode(&service)), body);
        call.not_found = Some(format!(
            "unknown service `{service}`: see list_services for the chat services"
        ));
        (call, max_tokens)
    };
    let mut call = call;
    call.service = Some(service.clone());
    // The first text can take 30–50 s.
    call.timeout_ms = Some(CHAT_TIMEOUT_MS);
    call.accept = "text/event-stream, application/json";

    let client = Client::new(ctx);
    let response = client.send(&call)?;
    let mut reply = read_reply(&client, &call, response, ctx.events)?;
    reply.service = service;
    if reply.content.is_empty() && reply.note.is_none() {
        let reason = reply.finish_reason.as_deref().unwrap_or("none");
        reply.note = Some(
            if reply.reasoning.as_deref().is_some_and(|r| !r.is_empty()) || openai {
                format!(
                    "the answer is empty (finish_reason: {reason}): the max_tokens budget of {budget} went to reasoning; \
                 raise max_tokens (e.g. 1800 or more) or lower reasoning_effort"
                )
            } else {
                format!(
                    "the model returned no text (finish_reason: {reason}); raise max_tokens ({budget}) or try again"
                )
            },
        );
    }
    Ok(reply)
}

/// How many bytes of a body decide whether it is a stream or a JSON document.
const SNIFF_BYTES: usize = 16;

/// Reads a chat answer: SSE when the body starts like a stream (`data:`, `event:`, a comment),
/// JSON when it starts like a document (`{`, `[`), whatever the `Content-Type` says; the type only
/// decides a body that starts otherwise. Servers label streams `application/json` or not at all, and
/// answer errors as a JSON object on an `event-stream` response.
fn read_reply(
    client: &Client,
    call: &Call,
    mut response: HttpResponse,
    events: &dyn EventSink,
) -> Result<ChatReply> {
    let content_type = response
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    // Enough of the body to see how it starts (a first chunk may be a byte or two).
    let mut first: Vec<u8> = Vec::new();
    let mut ended = false;
    while first.iter().filter(|b| !b.is_ascii_whitespace()).count() < SNIFF_BYTES {
        match response
            .body
            .next_chunk()
            .map_err(|e| client.body_error(call, e))?
        {
            Some(more) => first.extend_from_slice(&more),
            None => {
                ended = true;
                break;
            }
        }
    }
    let start = String::from_utf8_lossy(&first);
    let start = start.trim_start();
    let is_stream = if start.starts_with('{') || start.starts_with('[') {
        false
    } else if ["data:", "event:", ":", "id:", "retry:"]
        .iter()
        .any(|p| start.starts_with(p))
    {
        true
    } else {
        content_type.contains("event-stream")
    };
    if is_stream {
        read_stream(client, call, response, first, ended, events)
    } else {
        let mut bytes = first;
        while !ended {
            match response
                .body
                .next_chunk()
                .map_err(|e| client.body_error(call, e))?
            {
                Some(more) => bytes.extend_from_slice(&more),
                None => ended = true,
            }
            if bytes.len() > 16 * 1024 * 1024 {
                return Err(ThetaError::transport("chat answer larger than 16 MiB"));
            }
        }
        reply_from_json(&parse_json_body(&bytes)?)
    }
}

/// Reads an SSE chat stream whose first bytes are `first` (`ended`: the body has no more).
fn read_stream(
    client: &Client,
    call: &Call,
    mut response: HttpResponse,
    first: Vec<u8>,
    ended: bool,
    events: &dyn EventSink,
) -> Result<ChatReply> {
    let mut stream = ChatStream::default();
    let mut parser = SseParser::new();
    let mut chunk = Some(first);
    while let Some(bytes) = chunk {
        for event in parser.feed(&bytes) {
            stream.on_event(&event, events)?;
        }
        if ended {
            break;
        }
        chunk = response
            .body
            .next_chunk()
            .map_err(|e| match client.body_error(call, e) {
                ThetaError::Timeout { message } => ThetaError::Timeout {
                    message: format!("{message} (stream stopped after {} tokens)", stream.pieces),
                },
                ThetaError::Transport { message } => ThetaError::transport(format!(
                    "stream was cut after {} tokens: {message}",
                    stream.pieces
                )),
                other => other,
            })?;
    }
    // A last event without its blank line: complete if it parses, a cut line if it does not.
    if let Some(event) = parser.finish() {
        if !event.is_done() && serde_json::from_str::<Value>(&event.data).is_err() {
            stream.cut_mid_event = true;
        } else {
            stream.on_event(&event, events)?;
        }
    }
    stream.finish()
}

fn usage_from(v: &Value) -> Option<TokenUsage> {
    let u = v.get("usage")?;
    let n = |k: &str| {
        u.get(k)
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
    };
    if n("prompt_tokens").is_none() && n("completion_tokens").is_none() {
        return None;
    }
    Some(TokenUsage {
        prompt_tokens: n("prompt_tokens").unwrap_or(0),
        completion_tokens: n("completion_tokens").unwrap_or(0),
    })
}

fn text_at<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v str> {
    keys.iter().find_map(|k| v.get(k).and_then(Value::as_str))
}

/// A JSON answer: an OpenAI `chat.completion`, or an infer request whose `output.message` is the text.
pub fn reply_from_json(body: &Value) -> Result<ChatReply> {
    // An error object where the answer should be (also on a 200 `event-stream` response).
    if body.get("status").and_then(Value::as_str) == Some("error")
        || body.get("error").is_some_and(|e| !e.is_null())
    {
        return Err(ThetaError::Upstream {
            status: 200,
            message: format!(
                "the chat answer is an error: {}",
                crate::client::error_message(&body.to_string())
            ),
            retriable: false,
        });
    }
    let mut reply = ChatReply {
        service: String::new(),
        content: String::new(),
        reasoning: None,
        finish_reason: None,
        note: None,
        usage: usage_from(body),
        streamed: false,
    };
    let from_choices = |reply: &mut ChatReply, v: &Value| {
        let choice = &v["choices"][0];
        let message = &choice["message"];
        reply.content = text_at(message, &["content"])
            .or_else(|| text_at(choice, &["text"]))
            .unwrap_or("")
            .to_owned();
        reply.reasoning = text_at(message, &["reasoning", "reasoning_content"])
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        reply.finish_reason = text_at(choice, &["finish_reason"]).map(str::to_owned);
        if reply.usage.is_none() {
            reply.usage = usage_from(v);
        }
    };
    if body.get("choices").is_some() {
        from_choices(&mut reply, body);
        return Ok(reply);
    }
    let request = super::ondemand::infer_request_from(body)?;
    match request.state.as_str() {
        "success" | "completed" => {}
        "error" | "failed" | "cancelled" => {
            return Err(ThetaError::Upstream {
                status: 200,
                message: format!(
                    "chat request {} ended in state `{}`: {}",
                    request.id,
                    request.state,
                    request
                        .error_message
                        .as_deref()
                        .unwrap_or("no error message")
                ),
                retriable: false,
            });
        }
        state => {
            reply.note = Some(format!(
                "request {} is still {state} after the wait; poll it with get_request_status",
                request.id
            ));
            return Ok(reply);
        }
    }
    let output = request.output.unwrap_or(Value::Null);
    match output.get("message") {
        Some(Value::String(s)) => reply.content = s.clone(),
        Some(m @ Value::Object(_)) if m.get("choices").is_some() => from_choices(&mut reply, m),
        Some(Value::Object(m)) => {
            reply.content = m
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        }
        _ if output.get("choices").is_some() => from_choices(&mut reply, &output),
        _ => {
            reply.content = text_at(&output, &["text", "content"])
                .unwrap_or("")
                .to_owned()
        }
    }
    if reply.usage.is_none() {
        reply.usage = usage_from(&output);
    }
    Ok(reply)
}

/// What a chat stream has delivered so far.
#[derive(Debug, Default)]
pub struct ChatStream {
    content: String,
    reasoning: String,
    finish_reason: Option<String>,
    usage: Option<TokenUsage>,
    done: bool,
    /// The body ended inside an event (its last line is not whole JSON): the answer is cut.
    cut_mid_event: bool,
    /// Number of content pieces (tokens, roughly) received.
    pub pieces: usize,
}

impl ChatStream {
    /// Handles one event: an `event: error` frame ends the stream with its message.
    pub fn on_event(&mut self, event: &SseEvent, events: &dyn EventSink) -> Result<()> {
        if event.event.as_deref() == Some("error") {
            return Err(ThetaError::Upstream {
                status: 200,
                message: format!(
                    "the stream sent an error event after {} tokens: {}",
                    self.pieces,
                    crate::client::error_message(&event.data)
                ),
                retriable: false,
            });
        }
        self.on_data(&event.data, events)
    }

    /// Handles one `data:` payload: emits token/reasoning events and collects the rest.
    pub fn on_data(&mut self, data: &str, events: &dyn EventSink) -> Result<()> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data.as_bytes()) else {
            return Ok(()); // a malformed line is skipped, as other clients do; truncation is still caught
        };
        if chunk.get("error").is_some_and(|e| !e.is_null())
            || chunk.get("status").and_then(Value::as_str) == Some("error")
        {
            return Err(ThetaError::Upstream {
                status: 200,
                message: format!(
                    "the stream reported an error after {} tokens: {}",
                    self.pieces,
                    crate::client::error_message(data)
                ),
                retriable: false,
            });
        }
        if let Some(u) = usage_from(&chunk) {
            self.usage = Some(u);
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(text) = text_at(delta, &["content"])
            .or_else(|| text_at(choice, &["text"]))
            .filter(|t| !t.is_empty())
        {
            self.content.push_str(text);
            self.pieces += 1;
            events.emit(Event::Token {
                text: text.to_owned(),
            });
        }
        if let Some(text) =
            text_at(delta, &["reasoning", "reasoning_content"]).filter(|t| !t.is_empty())
        {
            self.reasoning.push_str(text);
            events.emit(Event::Reasoning {
                text: text.to_owned(),
            });
        }
        if let Some(reason) = text_at(choice, &["finish_reason"]) {
            self.finish_reason = Some(reason.to_owned());
        }
        Ok(())
    }

    /// The body ended cleanly. Cut only when it ended inside an event; a clean end without `[DONE]`
    /// and without a finish reason is complete, with a note (some servers just close the stream).
    pub fn finish(self) -> Result<ChatReply> {
        if self.cut_mid_event {
            return Err(ThetaError::transport(format!(
                "stream was cut after {} tokens (the body ended inside an event); the answer is incomplete",
                self.pieces
            )));
        }
        let note = (!self.done && self.finish_reason.is_none()).then(|| {
            format!(
                "the stream ended without [DONE] and without a finish_reason after {} tokens; the server closed it cleanly, so the answer is taken as complete",
                self.pieces
            )
        });
        Ok(ChatReply {
            service: String::new(),
            content: self.content,
            reasoning: (!self.reasoning.is_empty()).then_some(self.reasoning),
            finish_reason: self.finish_reason,
            note,
            usage: self.usage,
            streamed: true,
        })
    }
}

impl ToJson for ChatReply {
    fn to_json(&self) -> Value {
        object(vec![
            ("service", Value::String(self.service.clone())),
            ("content", Value::String(self.content.clone())),
            ("reasoning", opt_str(&self.reasoning)),
            ("finish_reason", opt_str(&self.finish_reason)),
            ("note", opt_str(&self.note)),
            (
                "usage",
                self.usage.map_or(Value::Null, |u| {
                    object(vec![
                        ("prompt_tokens", u.prompt_tokens.into()),
                        ("completion_tokens", u.completion_tokens.into()),
                    ])
                }),
            ),
            ("streamed", Value::Bool(self.streamed)),
        ])
    }
}
