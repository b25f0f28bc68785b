//! A dedicated deployment's own endpoint (`*.onthetaedgecloud.com`): the warm-up pattern seen live
//! (404, then 502, then 200), OpenAI-compatible `/v1/models` and `/v1/chat/completions`, and the Gradio
//! `/config` probe (theta-api-sources.md §2.6).

use crate::clock::unix_now;
use crate::reply::Reply;
use crate::server::Shared;
use crate::state::RecordedRequest;
use crate::store::json_body;
use serde_json::json;

pub(crate) const MODEL: &str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B";

fn openai_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"object": "error", "message": message, "code": status}),
    )
}

pub(crate) fn handle(req: &RecordedRequest, shared: &Shared) -> Reply {
    let host = req.host.clone();
    let (hit, deployment, deleted, auth) = shared.state.with_store(|s| {
        let hit = s.endpoint_hits.entry(host.clone()).or_default();
        *hit += 1;
        let hit = *hit;
        let deployment = s
            .deployments
            .iter()
            .find(|d| d["Endpoint"].as_str().is_some_and(|e| e.ends_with(&host)))
            .cloned();
        (
            hit,
            deployment,
            s.deleted_hosts.contains(&host),
            s.endpoint_auth.get(&host).cloned(),
        )
    });
    if deleted {
        return Reply::raw(404, "text/plain; charset=utf-8", "404 page not found\n");
    }
    // Warm-up: the first requests of a new endpoint see the proxy before the model server is up.
    let warmup = &shared.config.endpoint_warmup;
    if let Some(status) = warmup.get(hit as usize - 1) {
        return match status {
            404 => Reply::raw(404, "text/plain; charset=utf-8", "404 page not found\n"),
            502 => Reply::raw(
                502,
                "text/html",
                "<html><body><h1>502 Bad Gateway</h1></body></html>\n",
            ),
            s => Reply::error(*s, "endpoint is starting"),
        };
    }
    if deployment
        .as_ref()
        .is_some_and(|d| d["EndpointStatus"] == "Stopped")
    {
        return openai_error(503, "the deployment is stopped");
    }
    // A deployment created with auth_username / auth_password requires them as Basic auth.
    if let Some((user, pass)) = &auth
        && req.header("authorization")
            != Some(&format!(
                "Basic {}",
                crate::store::base64(&format!("{user}:{pass}"))
            ))
    {
        return openai_error(401, "Unauthorized");
    }
    // A configured endpoint may require a bearer token; a deployment's own endpoint without
    // auth is open.
    if deployment.is_none()
        && let Some(token) = &shared.config.endpoint_token
        && req.header("authorization") != Some(&format!("Bearer {token}"))
    {
        return openai_error(401, "Unauthorized");
    }
    let gradio = deployment
        .as_ref()
        .is_some_and(|d| d["TemplateName"] == "Grounding Dino");
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/models") if !gradio => Reply::json(
            200,
            &json!({"object": "list", "data": [{"id": MODEL, "object": "model", "created": unix_now(), "owned_by": "vllm"}]}),
        ),
        ("GET", "/config") if gradio || deployment.is_none() => Reply::json(
            200,
            &json!({"version": "3.41.2", "mode": "blocks", "components": []}),
        ),
        ("POST", "/v1/chat/completions") if !gradio => chat(req),
        _ => Reply::raw(404, "application/json", "{\"detail\":\"Not Found\"}"),
    }
}

fn chat(req: &RecordedRequest) -> Reply {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let model = body["model"].as_str().unwrap_or_default();
    if model != MODEL {
        return openai_error(404, &format!("The model `{model}` does not exist."));
    }
    let Some(messages) = body["messages"].as_array().filter(|m| !m.is_empty()) else {
        return openai_error(400, "messages must be a non-empty list");
    };
    let last = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let content = format!("Dedicated answer to: {last}");
    let words = content.split_whitespace().count() as u64;
    Reply::json(
        200,
        &json!({"id": "chatcmpl-dedicated", "object": "chat.completion", "created": unix_now(), "model": MODEL,
               "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words}}),
    )
}
