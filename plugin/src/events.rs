//! Progress and streamed tokens, as `theta-event {json}` lines on stderr (docs/host-guest-contract.md),
//! so any host can show them while the call is still running.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
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

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warn,
    Debug,
}

impl Event {
    /// The whole line, newline included.
    pub fn line(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        format!("theta-event {json}\n")
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
        assert_eq!(
            Event::Token {
                text: "Hi \"x\"\n".into()
            }
            .line(),
            "theta-event {\"kind\":\"token\",\"text\":\"Hi \\\"x\\\"\\n\"}\n"
        );
        assert_eq!(
            Event::Progress {
                message: "retry".into(),
                attempt: 2
            }
            .line(),
            "theta-event {\"kind\":\"progress\",\"message\":\"retry\",\"attempt\":2}\n"
        );
        assert_eq!(
            Event::Log {
                level: LogLevel::Warn,
                message: "m".into()
            }
            .line(),
            "theta-event {\"kind\":\"log\",\"level\":\"warn\",\"message\":\"m\"}\n"
        );
    }
}
