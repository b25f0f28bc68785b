//! `theta.deployments.start` / `theta.deployments.stop`: `POST /{route}/{shard}/{suffix}/start|stop`.
//! Stopping ends the hourly billing but keeps the deployment, its endpoint and its credentials;
//! starting bills it again. Projects answer either route spelling (§8.7), and a controller may have
//! these routes under only one of them: a 404/405 on one spelling is retried on the other.

use super::{Deployment, ROUTES, project, working_route};
use crate::client::{Api, Call, Client, Ctx, encode};
use crate::commands::{ToJson, object};
use crate::error::{Result, ThetaError};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    Start,
    Stop,
}

impl LifecycleAction {
    fn verb(self) -> &'static str {
        match self {
            LifecycleAction::Start => "start",
            LifecycleAction::Stop => "stop",
        }
    }

    fn done(self) -> &'static str {
        match self {
            LifecycleAction::Start => "started",
            LifecycleAction::Stop => "stopped",
        }
    }

    fn billing(self) -> &'static str {
        match self {
            LifecycleAction::Start => "billed hourly again from now until stopped or deleted",
            LifecycleAction::Stop => {
                "stopped: no hourly billing while stopped; the endpoint and its credentials are kept \
                 (theta.deployments.start resumes it, theta.deployments.delete removes it)"
            }
        }
    }
}

/// Starts or stops `shard/suffix`; the answer says which route spelling worked and what it bills.
pub fn change_state(
    ctx: &Ctx,
    action: LifecycleAction,
    shard: &str,
    suffix: &str,
    route: Option<String>,
) -> Result<Value> {
    let project = project(ctx)?;
    let first = working_route(ctx, route)?;
    let order: Vec<&str> = std::iter::once(first.as_str())
        .chain(ROUTES.iter().copied().filter(|r| *r != first))
        .collect();
    let client = Client::new(ctx);
    let mut tried = Vec::new();
    for noun in order {
        let mut call = Call::post(
            format!(
                "/{noun}/{}/{}/{}?project_id={}",
                encode(shard),
                encode(suffix),
                action.verb(),
                encode(&project)
            ),
            json!({"project_id": project}),
        )
        .on(Api::Controller);
        // A start is paid: never sent twice blindly.
        call.retries = Some(0);
        let mut response = match client.send(&call) {
            Ok(r) => r,
            Err(ThetaError::Upstream {
                status: status @ (404 | 405),
                message,
                ..
            }) => {
                tried.push(format!("/{noun}/…/{}: {status} {message}", action.verb()));
                continue;
            }
            Err(e) => return Err(e),
        };
        // The answer is not documented: a deployment object when it is one, else ignored.
        let answer = response
            .read_to_end(64 * 1024)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|v| crate::client::unwrap_envelope(v.clone()).unwrap_or(v));
        let deployment = answer
            .as_ref()
            .map(|a| Deployment::from_value(a.get("deployment").unwrap_or(a)))
            .filter(|d| !d.suffix.is_empty());
        return Ok(object(vec![
            ("action", Value::String(action.done().into())),
            ("shard", Value::String(shard.into())),
            ("suffix", Value::String(suffix.into())),
            ("route", Value::String(noun.into())),
            ("billing", Value::String(action.billing().into())),
            (
                "deployment",
                deployment.map_or(Value::Null, |d| d.to_json()),
            ),
            (
                "tried_first",
                Value::Array(tried.into_iter().map(Value::String).collect()),
            ),
        ]));
    }
    Err(ThetaError::Upstream {
        status: 404,
        message: format!(
            "no deployment {shard}/{suffix} to {} in this project (both route spellings answered \
             not found: {}); see theta.deployments.list",
            action.verb(),
            tried.join("; ")
        ),
        retriable: false,
    })
}
