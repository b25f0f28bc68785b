//! Progress and streamed tokens, as `theta-event {json}` lines on stderr (docs/host-guest-contract.md),
//! so any host can show them while the call is still running.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A piece of streamed chat answer.
    Token {
        text: String,
    },
    /// A piece of streamed reasoning.
    Reasoning {
        text: String,
    },
    /// Retries, polls, waits.
    Progress {
        message: String,
        attempt: u32,
    },
    Log {
        level: LogLevel,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogLevel {
    Info,
    Warn,
    Debug,
}

impl Event {
    /// The whole line, newline included.
    pub fn line(&self) -> String {
        let mut o = Map::new();
        let mut put = |k: &str, v: Value| {
            o.insert(k.to_owned(), v);
        };
        match self {
            Event::Token { text } => {
                put("kind", "token".into());
                put("text", text.as_str().into());
            }
            Event::Reasoning { text } => {
                put("kind", "reasoning".into());
                put("text", text.as_str().into());
            }
            Event::Progress { message, attempt } => {
                put("kind", "progress".into());
                put("message", message.as_str().into());
                put("attempt", (*attempt).into());
            }
            Event::Log { level, message } => {
                put("kind", "log".into());
                let level = match level {
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warn",
                    LogLevel::Debug => "debug",
                };
                put("level", level.into());
                put("message", message.as_str().into());
            }
        }
        format!("theta-event {}\n", Value::Object(o))
    }
}

/// Where events go: stderr in the component, a list in tests.
pub trait EventSink {
    fn emit(&self, event: Event);
}

/// Writes each event to `wasi:cli/stderr` and flushes it, so hosts see tokens as they arrive.
pub struct StderrEvents;

impl EventSink for StderrEvents {
    fn emit(&self, event: Event) {
        let line = event.line();
        let stderr = wasip2::cli::stderr::get_stderr();
        // `blocking-write-and-flush` takes at most 4096 bytes per call. A failed write only loses the event.
        for chunk in line.as_bytes().chunks(4096) {
            if stderr.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
}

/// Collects events in memory (tests, and hosts that return events with the result).
#[derive(Default)]
pub struct RecordedEvents(pub std::cell::RefCell<Vec<Event>>);

impl EventSink for RecordedEvents {
    fn emit(&self, event: Event) {
        self.0.borrow_mut().push(event);
    }
}

impl RecordedEvents {
    pub fn tokens(&self) -> String {
        self.0
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Event::Token { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_contract() {
        let parsed = |e: Event| {
            let line = e.line();
            assert!(
                line.ends_with('\n') && line.matches('\n').count() == 1,
                "{line}"
            );
            let json = line.strip_prefix("theta-event ").expect("prefix");
            serde_json::from_str::<Value>(json).unwrap()
        };
        assert_eq!(
            parsed(Event::Token {
                text: "Hi \"x\"\n".into()
            }),
            serde_json::json!({"kind": "token", "text": "Hi \"x\"\n"})
        );
        assert_eq!(
            parsed(Event::Progress {
                message: "retry".into(),
                attempt: 2
            }),
            serde_json::json!({"kind": "progress", "message": "retry", "attempt": 2})
        );
        assert_eq!(
            parsed(Event::Log {
                level: LogLevel::Warn,
                message: "m".into()
            }),
            serde_json::json!({"kind": "log", "level": "warn", "message": "m"})
        );
        assert_eq!(
            parsed(Event::Reasoning { text: "r".into() }),
            serde_json::json!({"kind": "reasoning", "text": "r"})
        );
    }
}
