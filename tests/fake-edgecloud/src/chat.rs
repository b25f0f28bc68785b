//! Deterministic chat answers ("Echo: <last user message>") and their OpenAI shapes: streamed
//! `chat.completion.chunk` frames and the bare `chat.completion` object.

use crate::clock::unix_now;
use crate::sse::Frame;
use serde_json::{Value, json};

/// Below this `max_tokens`, a reasoning model (gpt_oss_120b) spends the whole budget on
/// reasoning and answers with empty content and `finish_reason:"length"` (seen live).
pub(crate) const REASONING_BUDGET_FLOOR: u64 = 200;

/// Whether a model emits `reasoning` before its content.
pub(crate) fn is_reasoning_model(alias: &str) -> bool {
    alias.starts_with("gpt_oss")
}

/// Default `max_tokens` per model.
pub(crate) fn default_max_tokens(alias: &str) -> u64 {
    if is_reasoning_model(alias) { 1800 } else { 500 }
}

/// A generated answer, as word tokens (each after the first starts with a space).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub model: String,
    pub reasoning: Vec<String>,
    pub content: Vec<String>,
    pub finish_reason: &'static str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Answer {
    pub fn content_text(&self) -> String {
        self.content.concat()
    }

    pub fn reasoning_text(&self) -> String {
        self.reasoning.concat()
    }

    pub fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        })
    }
}

/// The text of a message's `content`: a string, or the `text` parts of an array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str().or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_owned()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

/// Answer `messages` as `model` would, within `max_tokens`.
pub(crate) fn answer(model: &str, messages: &Value, max_tokens: Option<u64>) -> Answer {
    let list = messages.as_array().map(Vec::as_slice).unwrap_or_default();
    let last_user = list
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default();
    let prompt_tokens = list
        .iter()
        .map(|m| content_text(&m["content"]).split_whitespace().count() as u64 + 4)
        .sum::<u64>()
        + 3;
    let budget = max_tokens.unwrap_or_else(|| default_max_tokens(model));
    let budget_words = usize::try_from(budget).unwrap_or(usize::MAX);
    let mut content = words(&format!("Echo: {last_user}"));
    let mut reasoning = Vec::new();
    let mut finish_reason = "stop";
    let completion_tokens;
    if is_reasoning_model(model) {
        reasoning = words(&format!(
            "The user wrote \"{last_user}\". Echo it back, prefixed with \"Echo:\"."
        ));
        if budget < REASONING_BUDGET_FLOOR {
            reasoning.truncate(budget_words);
            content.clear();
            finish_reason = "length";
            completion_tokens = budget;
        } else {
            completion_tokens = (reasoning.len() + content.len()) as u64;
        }
    } else {
        if content.len() > budget_words {
            content.truncate(budget_words);
            finish_reason = "length";
        }
        completion_tokens = content.len() as u64;
    }
    Answer {
        model: model.to_owned(),
        reasoning,
        content,
        finish_reason,
        prompt_tokens,
        completion_tokens,
    }
}

fn chunk(id: &str, created: u64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    })
}

/// The SSE frames of a streamed answer: a role chunk, a keep-alive comment, reasoning deltas,
/// content deltas, a final chunk with `finish_reason` and `usage`, then `[DONE]`.
pub(crate) fn stream_frames(id: &str, answer: &Answer) -> Vec<Frame> {
    let created = unix_now();
    let model = answer.model.as_str();
    let mut frames = vec![
        Frame::data(&chunk(
            id,
            created,
            model,
            json!({"role": "assistant", "content": ""}),
            None,
        )),
        Frame::Comment("keep-alive".into()),
    ];
    for token in &answer.reasoning {
        frames.push(Frame::data(&chunk(
            id,
            created,
            model,
            json!({"reasoning": token}),
            None,
        )));
    }
    for token in &answer.content {
        frames.push(Frame::data(&chunk(
            id,
            created,
            model,
            json!({"content": token}),
            None,
        )));
    }
    let mut last = chunk(id, created, model, json!({}), Some(answer.finish_reason));
    last["usage"] = answer.usage();
    frames.push(Frame::data(&last));
    frames.push(Frame::Done);
    frames
}

/// The bare OpenAI `chat.completion` object (no envelope).
pub(crate) fn completion(id: &str, answer: &Answer) -> Value {
    let mut message = json!({"role": "assistant", "content": answer.content_text()});
    if is_reasoning_model(&answer.model) {
        message["reasoning"] = json!(answer.reasoning_text());
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": answer.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": answer.finish_reason}],
        "usage": answer.usage(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Value {
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": text}])
    }

    #[test]
    fn echoes_the_last_user_message_word_by_word() {
        let a = answer("qwen3", &user("hello there"), None);
        assert_eq!(a.content, vec!["Echo:", " hello", " there"]);
        assert_eq!(a.finish_reason, "stop");
        assert!(a.reasoning.is_empty());
        assert_eq!(a.completion_tokens, 3);
        let parts = json!([{"role": "user", "content": [{"type": "text", "text": "from parts"}]}]);
        assert_eq!(
            answer("qwen3", &parts, None).content_text(),
            "Echo: from parts"
        );
    }

    #[test]
    fn max_tokens_truncates_and_the_low_budget_reasoning_quirk() {
        let a = answer("qwen3", &user("one two three four"), Some(2));
        assert_eq!(a.content_text(), "Echo: one");
        assert_eq!(a.finish_reason, "length");
        let g = answer("gpt_oss_120b", &user("hi"), Some(48));
        assert_eq!(g.content_text(), "");
        assert!(!g.reasoning.is_empty());
        assert_eq!((g.finish_reason, g.completion_tokens), ("length", 48));
        let g = answer("gpt_oss_120b", &user("hi"), None);
        assert_eq!(g.content_text(), "Echo: hi");
        assert_eq!(g.finish_reason, "stop");
    }
}
