//! The controller (`controller.thetaedgecloud.com`, `x-api-key`): deployments in the project's route
//! shape, standard and custom templates, AI agents (chatbots) and their multipart documents
//! (theta-api-sources.md §2.2, §2.5).

use crate::clock::now_iso;
use crate::reply::Reply;
use crate::server::Shared;
use crate::state::RecordedRequest;
use crate::store::{self, hex16, json_body, multipart, not_found, project, segments};
use crate::{PROJECT_ID, RouteShape};
use serde_json::{Value, json};

/// The templates the fake knows (live-seen ids and images, HERMES).
pub(crate) fn templates() -> Vec<Value> {
    vec![
        json!({"id": "img_gf070dbq0kttgz1atmiatyunhdxm", "name": "DeepSeek R1 / Distill-Qwen-7B", "category": "serving",
               "container_images": ["thetalabsofficial/vllm-theta:latest"], "http_port": 8000, "probe": "openai"}),
        json!({"id": "img_qqu31asazaig666jtzp7gjd4pway", "name": "Grounding Dino", "category": "serving",
               "container_images": ["thetalabsofficial/grounding-dino:1.3"], "http_port": 7860, "probe": "gradio"}),
        json!({"id": "img_jupyter000000000000000000001", "name": "Jupyter Notebook", "category": "prototyping",
               "container_images": ["jupyter/base-notebook:latest"], "http_port": 8888}),
    ]
}

pub(crate) fn handle(req: &RecordedRequest, shared: &Shared) -> Reply {
    if let Err(r) = store::api_key(req, &shared.config.controller_key) {
        return r;
    }
    let Some(seg) = segments(&req.path) else {
        return not_found(req);
    };
    let noun_ok = |noun: &str| {
        matches!(
            (noun, shared.config.route_shape),
            ("deployment", RouteShape::Singular | RouteShape::Both)
                | ("deployments", RouteShape::Plural | RouteShape::Both)
        )
    };
    let m = req.method.as_str();
    let result = match (m, seg.as_slice()) {
        // Start/stop exist only under the plural spelling, whatever the project's list answers:
        // clients must fall back from one spelling to the other.
        ("POST" | "PUT", ["deployments", shard, suffix, action @ ("start" | "stop")]) => {
            change_state(req, shared, shard, suffix, action)
        }
        (_, [noun, ..]) if (*noun == "deployment" || *noun == "deployments") && !noun_ok(noun) => {
            Err(not_found(req))
        }
        ("GET", ["deployment" | "deployments", "list"]) => project(req, None).map(|_| {
            let all = shared.state.with_store(|s| {
                // A pending deployment is scheduled by the time it is listed, unless its VM
                // type never schedules.
                for d in s.deployments.iter_mut() {
                    let vm = d["VmID"].as_str().unwrap_or_default().to_owned();
                    if d["EndpointStatus"] == "Pending"
                        && !shared.config.unschedulable_vms.contains(&vm)
                    {
                        d["EndpointStatus"] = json!("Running");
                    }
                }
                s.deployments.clone()
            });
            // The list answer is a bare array (HERMES).
            Reply::success(Value::Array(all))
        }),
        ("POST", ["deployment" | "deployments"]) => create_deployment(req, shared),
        ("DELETE", ["deployment" | "deployments", shard, suffix]) => {
            delete_deployment(req, shared, shard, suffix)
        }
        ("GET", ["deployment_template", "list_standard_templates"]) => {
            let category = req
                .query_param("category")
                .unwrap_or_else(|| "serving".into());
            if category != "serving" && category != "prototyping" {
                Err(Reply::error(400, format!("invalid category `{category}`")))
            } else {
                let list: Vec<Value> = templates()
                    .into_iter()
                    .filter(|t| t["category"] == category.as_str())
                    .collect();
                Ok(Reply::success(
                    json!({"templates": list, "total_count": list.len()}),
                ))
            }
        }
        ("GET", ["deployment_template", "list_custom_templates"]) => project(req, None).map(|_| {
            Reply::success(
                json!({"templates": [{"id": "img_custom00000000000000000000001",
                "name": "My vLLM", "category": "serving", "project_id": PROJECT_ID,
                "container_images": ["registry.example/my-vllm:1"]}]}),
            )
        }),
        ("POST", ["chatbot"]) => create_chatbot(req, shared),
        ("GET", ["chatbot", "list"]) => project(req, None).map(|_| {
            let all = shared.state.with_store(|s| s.chatbots.clone());
            Reply::success(json!({"chatbots": all, "total_count": all.len()}))
        }),
        ("GET", ["chatbot", id]) => {
            project(req, None).and_then(|_| find_chatbot(shared, id).map(|c| Reply::json(200, &c)))
        }
        ("PUT", ["chatbot", id]) => update_chatbot(req, shared, id),
        ("POST", ["chatbot", id, "document"]) => write_document(req, shared, id, None),
        ("PUT", ["chatbot", id, "document", doc]) => write_document(req, shared, id, Some(doc)),
        ("GET", ["chatbot", id, "document", "list"]) => project(req, None)
            .and_then(|_| find_chatbot(shared, id))
            .map(|_| {
                let docs: Vec<Value> = shared.state.with_store(|s| {
                    s.documents
                        .iter()
                        .filter(|(c, _)| c == id)
                        .map(|(_, d)| {
                            let mut d = d.clone();
                            d.as_object_mut().map(|o| o.remove("content"));
                            d
                        })
                        .collect()
                });
                Reply::success(
                    json!({"documents": docs, "total_documents": docs.len(), "total_pages": 1}),
                )
            }),
        ("GET", ["chatbot", id, "document", doc]) => project(req, None).and_then(|_| {
            shared
                .state
                .with_store(|s| {
                    s.documents
                        .iter()
                        .find(|(c, d)| c == id && d["id"] == *doc)
                        .map(|(_, d)| d.clone())
                })
                .map(Reply::success)
                .ok_or_else(|| Reply::error(404, "document not found"))
        }),
        _ => Err(not_found(req)),
    };
    result.unwrap_or_else(|r| r)
}

fn create_deployment(req: &RecordedRequest, shared: &Shared) -> Result<Reply, Reply> {
    let body = json_body(req)?;
    project(req, Some(&body))?;
    let template_id = body["deployment_template_id"]
        .as_str()
        .ok_or_else(|| Reply::error(400, "deployment_template_id is required"))?;
    let template = templates()
        .into_iter()
        .find(|t| t["id"] == template_id)
        .ok_or_else(|| {
            Reply::error(
                404,
                format!("deployment template `{template_id}` not found"),
            )
        })?;
    let vm = body["vm_id"]
        .as_str()
        .ok_or_else(|| Reply::error(400, "vm_id is required"))?
        .to_owned();
    let capacity = shared
        .config
        .vm_capacity
        .iter()
        .find(|(id, _)| *id == vm)
        .map(|(_, c)| *c)
        .ok_or_else(|| Reply::error(400, format!("unknown vm_id `{vm}`")))?;
    for k in ["min_replicas", "max_replicas"] {
        if !(body[k].is_null() || body[k].is_u64()) {
            return Err(Reply::error(
                400,
                format!("invalid {k}: expected an integer"),
            ));
        }
    }
    let deployment = shared.state.with_store(|s| {
        let used = s.vm_used.entry(vm.clone()).or_default();
        if *used >= capacity {
            return Err(Reply::error(
                409,
                format!("Insufficient capacity for {vm}: no available machines, try another VM type"),
            ));
        }
        *used += 1;
        s.next_id += 1;
        let n = s.next_id;
        let slug: String = template["name"]
            .as_str()
            .unwrap_or("app")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect::<String>()
            .to_ascii_lowercase();
        let suffix = hex16(n)[..12].to_owned();
        let d = json!({
            "Endpoint": format!("https://{slug}{n}-{}.tec-s1.onthetaedgecloud.com", hex16(n)),
            "BaseID": format!("dplb_fake{n:010}"),
            "Shard": 1,
            "Suffix": suffix,
            "Name": format!("{slug}{n}"),
            "TemplateName": template["name"],
            "VmID": vm,
            "ContainerImage": body["container_image"].as_str().or(template["container_images"][0].as_str()),
            "AuthUsername": body["auth_username"],
            "EndpointStatus": "Pending",
            "Region": "us-east",
            "ProjectID": PROJECT_ID,
            "CreateTime": now_iso(),
            // Kept as the create gave them and listed with the deployment (a host finds a
            // deployment whose create answer it never saw by its annotation).
            "Annotations": body["annotations"],
        });
        if let (Some(user), Some(pass), Some(host)) = (
            body["auth_username"].as_str(),
            body["auth_password"].as_str(),
            d["Endpoint"].as_str(),
        ) {
            s.endpoint_auth.insert(
                host.trim_start_matches("https://").to_owned(),
                (user.to_owned(), pass.to_owned()),
            );
        }
        s.deployments.push(d.clone());
        Ok(d)
    })?;
    Ok(Reply::success(deployment))
}

fn delete_deployment(
    req: &RecordedRequest,
    shared: &Shared,
    shard: &str,
    suffix: &str,
) -> Result<Reply, Reply> {
    project(req, None)?;
    shared.state.with_store(|s| {
        let i = s
            .deployments
            .iter()
            .position(|d| {
                d["Shard"].as_u64().map(|n| n.to_string()).as_deref() == Some(shard)
                    && d["Suffix"] == suffix
            })
            .ok_or_else(|| Reply::error(404, "deployment not found"))?;
        let d = s.deployments.remove(i);
        if let Some(vm) = d["VmID"].as_str()
            && let Some(used) = s.vm_used.get_mut(vm)
        {
            *used = used.saturating_sub(1);
        }
        if let Some(host) = d["Endpoint"].as_str() {
            s.deleted_hosts
                .push(host.trim_start_matches("https://").to_owned());
        }
        Ok(Reply::success(json!({"deleted": true})))
    })
}

/// Stop (billing ends, endpoint and credentials kept) or start (billing again) a deployment.
fn change_state(
    req: &RecordedRequest,
    shared: &Shared,
    shard: &str,
    suffix: &str,
    action: &str,
) -> Result<Reply, Reply> {
    project(req, None)?;
    shared.state.with_store(|s| {
        let key = format!("{shard}/{suffix}");
        let d = s
            .deployments
            .iter_mut()
            .find(|d| store::deployment_key(d) == key)
            .ok_or_else(|| Reply::error(404, "deployment not found"))?;
        d["EndpointStatus"] = json!(if action == "stop" {
            "Stopped"
        } else {
            "Running"
        });
        let d = d.clone();
        s.stopped.retain(|k| *k != key);
        if action == "stop" {
            s.stopped.push(key);
        }
        Ok(Reply::success(d))
    })
}

fn find_chatbot(shared: &Shared, id: &str) -> Result<Value, Reply> {
    shared
        .state
        .with_store(|s| s.chatbots.iter().find(|c| c["id"] == id).cloned())
        .ok_or_else(|| Reply::error(404, "chatbot not found"))
}

/// Validates the chatbot fields of a create or update.
fn check_chatbot(body: &Value, create: bool) -> Result<(), Reply> {
    if create && !body["name"].is_string() {
        return Err(Reply::error(400, "name is required"));
    }
    if let Some(t) = body.get("temperature").filter(|t| !t.is_null())
        && !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return Err(Reply::error(400, "temperature must be between 0 and 2"));
    }
    Ok(())
}

fn create_chatbot(req: &RecordedRequest, shared: &Shared) -> Result<Reply, Reply> {
    let body = json_body(req)?;
    project(req, Some(&body))?;
    check_chatbot(&body, true)?;
    let bot = shared.state.with_store(|s| {
        let id = s.id("chatbot_");
        let kb = s.id("kb_");
        let mut bot = json!({
            "id": id, "project_id": PROJECT_ID, "knowledge_base_id": kb, "created_at": now_iso(),
            "model": "llama_3_1_70b", "max_tokens": 500, "temperature": 0.5, "system_prompt": "",
            "context_window": 8192, "settings": {}, "warm_up_messages": [], "llm_endpoints": [],
        });
        merge(&mut bot, &body);
        s.chatbots.push(bot.clone());
        bot
    });
    // The doc example answers with the bare chatbot object.
    Ok(Reply::json(200, &bot))
}

fn merge(bot: &mut Value, body: &Value) {
    if let (Some(b), Some(fields)) = (bot.as_object_mut(), body.as_object()) {
        for (k, v) in fields {
            if k != "id" && k != "project_id" {
                b.insert(k.clone(), v.clone());
            }
        }
    }
}

fn update_chatbot(req: &RecordedRequest, shared: &Shared, id: &str) -> Result<Reply, Reply> {
    let body = json_body(req)?;
    project(req, Some(&body))?;
    check_chatbot(&body, false)?;
    shared.state.with_store(|s| {
        let bot = s
            .chatbots
            .iter_mut()
            .find(|c| c["id"] == id)
            .ok_or_else(|| Reply::error(404, "chatbot not found"))?;
        merge(bot, &body);
        Ok(Reply::json(200, bot))
    })
}

fn write_document(
    req: &RecordedRequest,
    shared: &Shared,
    chatbot: &str,
    doc: Option<&str>,
) -> Result<Reply, Reply> {
    let parts = multipart(req)?;
    let field = |n: &str| parts.iter().find(|p| p.name == n);
    let project_id = field("project_id")
        .map(|p| p.data.clone())
        .ok_or_else(|| Reply::error(400, "project_id is required"))?;
    if project_id != PROJECT_ID {
        return Err(Reply::error(
            403,
            "You are not allowed to perform this action",
        ));
    }
    let file = field("file")
        .filter(|f| f.filename.is_some())
        .ok_or_else(|| Reply::error(400, "file is required"))?;
    let metadata: Value = match field("metadata") {
        Some(m) => serde_json::from_str(&m.data)
            .map_err(|e| Reply::error(400, format!("metadata is not JSON: {e}")))?,
        None => json!({}),
    };
    find_chatbot(shared, chatbot)?;
    shared.state.with_store(|s| {
        let mut meta = metadata.clone();
        meta["type"] = json!("file");
        meta["filename"] = json!(file.filename);
        let content_type = file.content_type.clone().unwrap_or_else(|| "text/plain".into());
        match doc {
            Some(doc) => {
                let (_, d) = s
                    .documents
                    .iter_mut()
                    .find(|(c, d)| c == chatbot && d["id"] == doc)
                    .ok_or_else(|| Reply::error(404, "document not found"))?;
                d["content"] = json!(file.data);
                d["metadata"] = meta;
                d["content_type"] = json!(content_type);
                Ok(Reply::success(json!({"id": doc})))
            }
            None => {
                let id = s.id("doc_");
                let kb = s
                    .chatbots
                    .iter()
                    .find(|c| c["id"] == chatbot)
                    .map(|c| c["knowledge_base_id"].clone())
                    .unwrap_or(Value::Null);
                s.documents.push((
                    chatbot.to_owned(),
                    json!({"id": id, "knowledge_base_id": kb, "metadata": meta, "content": file.data,
                           "content_type": content_type, "created_at": now_iso(),
                           "embedding_token_count": file.data.split_whitespace().count()}),
                ));
                Ok(Reply::success(json!({"id": id})))
            }
        }
    })
}
