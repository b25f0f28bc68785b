//! The plugin's events (streamed tokens, poll and retry progress) as MCP progress notifications.
//!
//! The [`EventCallback`] is called synchronously from the guest's stderr stream; it only queues the
//! event. A forwarding task sends `notifications/progress` for the client's `progressToken`, in order,
//! and is awaited before the tool result is sent, so every notification precedes the result.

use crate::events::{EventCallback, GuestEvent};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Most time spent flushing queued notifications once a call has finished.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Forwards one call's events until the call's store (which holds the callback) is dropped.
pub struct Forwarder {
    task: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// The callback for one call, and the forwarder that must be [`finish`](Self::finish)ed after it.
    /// Without a progress token the events are only logged (the host's stderr, never stdout).
    pub fn start(
        peer: Peer<RoleServer>,
        token: Option<ProgressToken>,
        tool: &str,
    ) -> (EventCallback, Forwarder) {
        let Some(token) = token else {
            let tool = tool.to_owned();
            return (
                Arc::new(move |event| log_event(&tool, &event)),
                Forwarder { task: None },
            );
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<GuestEvent>();
        let tool = tool.to_owned();
        let task = tokio::spawn(async move {
            let mut progress = 0.0;
            while let Some(event) = rx.recv().await {
                let Some(param) = notification(&token, &mut progress, &event) else {
                    log_event(&tool, &event);
                    continue;
                };
                if peer.notify_progress(param).await.is_err() {
                    // The client went away; keep draining so the guest is never blocked.
                    tracing::debug!(tool, "progress notification not delivered");
                }
            }
        });
        let callback: EventCallback = Arc::new(move |event| {
            let _ = tx.send(event);
        });
        (callback, Forwarder { task: Some(task) })
    }

    /// Waits until every queued notification is sent (the call's callback must be dropped by now).
    pub async fn finish(self) {
        if let Some(task) = self.task
            && tokio::time::timeout(FLUSH_LIMIT, task).await.is_err()
        {
            tracing::warn!("progress notifications still queued after the call; dropped");
        }
    }
}

/// How often `infer` reports that it is still waiting for Theta.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// For `infer` with a `wait`: one progress event when the request goes out and one every
/// [`HEARTBEAT`] while Theta holds it. Abort the task when the call ends.
pub fn wait_heartbeat(events: EventCallback, args: &serde_json::Value) -> JoinHandle<()> {
    let wait = args
        .get("wait")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(super::official::DEFAULT_WAIT);
    let service = args
        .get("service")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("the service")
        .to_owned();
    tokio::spawn(async move {
        if wait == 0 {
            return;
        }
        events(GuestEvent::Progress {
            message: format!(
                "infer {service}: request sent; Theta holds it up to {wait} s for the result"
            ),
            attempt: None,
        });
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(started + HEARTBEAT, HEARTBEAT);
        loop {
            tick.tick().await;
            events(GuestEvent::Progress {
                message: format!(
                    "infer {service}: still waiting for the result ({} s of {wait} s)",
                    started.elapsed().as_secs()
                ),
                attempt: None,
            });
        }
    })
}

/// The notification for an event, or `None` for events that are only logged. `progress` counts the
/// notifications sent, so it increases with every one, as MCP requires.
pub fn notification(
    token: &ProgressToken,
    progress: &mut f64,
    event: &GuestEvent,
) -> Option<ProgressNotificationParam> {
    let message = match event {
        // The text exactly as streamed: a client concatenating the messages gets the answer.
        GuestEvent::Token { text } | GuestEvent::Reasoning { text } => text.clone(),
        GuestEvent::Progress { message, attempt } => match attempt {
            Some(n) => format!("{message} (attempt {n})"),
            None => message.clone(),
        },
        GuestEvent::Log { .. } | GuestEvent::Stderr(_) => return None,
    };
    *progress += 1.0;
    Some(ProgressNotificationParam::new(token.clone(), *progress).with_message(message))
}

fn log_event(tool: &str, event: &GuestEvent) {
    match event {
        GuestEvent::Log { level, message } => {
            tracing::info!(
                tool,
                level = level.as_deref().unwrap_or("info"),
                "{message}"
            )
        }
        GuestEvent::Stderr(line) => tracing::debug!(tool, "plugin: {line}"),
        GuestEvent::Progress { message, .. } => tracing::debug!(tool, "progress: {message}"),
        GuestEvent::Token { .. } | GuestEvent::Reasoning { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;

    #[test]
    fn tokens_and_progress_become_numbered_notifications_logs_do_not() {
        let token = ProgressToken(NumberOrString::Number(7));
        let mut n = 0.0;
        let a = notification(&token, &mut n, &GuestEvent::Token { text: "Hel".into() }).unwrap();
        assert_eq!((a.progress, a.message.as_deref()), (1.0, Some("Hel")));
        let b = notification(
            &token,
            &mut n,
            &GuestEvent::Progress {
                message: "poll".into(),
                attempt: Some(2),
            },
        )
        .unwrap();
        assert_eq!(
            (b.progress, b.message.as_deref()),
            (2.0, Some("poll (attempt 2)"))
        );
        assert_eq!(b.progress_token, token);
        assert!(notification(&token, &mut n, &GuestEvent::Stderr("x".into())).is_none());
        assert_eq!(n, 2.0);
    }
}
