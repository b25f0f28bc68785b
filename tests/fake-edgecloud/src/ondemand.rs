//! The on-demand model API (`ondemand.thetaedgecloud.com`), theta-api-sources.md §2.1, §3–§5.

use crate::PROJECT_ID;
use crate::catalogue;
use crate::chat;
use crate::infer::{self, NewInfer};
use crate::reply::Reply;
use crate::server::Shared;
use crate::state::RecordedRequest;
use serde_json::{Value, json};

/// A resolved on-demand route.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    ServiceList,
    Service(&'a str),
    ChatCompletions,
    Create(&'a str, Option<&'a str>),
    Get(&'a str),
    ProjectList(&'a str),
    Presigned(&'a str, Option<&'a str>),
}

impl Route<'_> {
    /// The catalogue reads are public (clients call them without a token).
    fn is_public(&self) -> bool {
        matches!(self, Route::ServiceList | Route::Service(_))
    }
}

/// The route for `method path`, or the error reply (404 unknown path, 405 wrong method).
fn route<'a>(method: &str, path: &'a str) -> Result<Route<'a>, Reply> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(not_found(method, path));
    }
    // (GET route, POST route) for the path shape.
    let (get, post) = match segments.as_slice() {
        ["service", "list"] => (Some(Route::ServiceList), None),
        ["service", alias] => (Some(Route::Service(alias)), None),
        ["infer_request", "chat", "completions"] => (None, Some(Route::ChatCompletions)),
        ["infer_request", id] => (Some(Route::Get(id)), Some(Route::Create(id, None))),
        ["infer_request", alias, "input_presigned_urls"] => {
            (None, Some(Route::Presigned(alias, None)))
        }
        ["infer_request", project, "list"] => (
            Some(Route::ProjectList(project)),
            Some(Route::Create(project, Some("list"))),
        ),
        ["infer_request", alias, prediction] => {
            (None, Some(Route::Create(alias, Some(prediction))))
        }
        ["infer_request", alias, prediction, "input_presigned_urls"] => {
            (None, Some(Route::Presigned(alias, Some(prediction))))
        }
        _ => return Err(not_found(method, path)),
    };
    let allow = match (&get, &post) {
        (Some(_), Some(_)) => "GET, POST",
        (Some(_), None) => "GET",
        _ => "POST",
    };
    match method {
        "GET" => get,
        "POST" => post,
        _ => None,
    }
    .ok_or_else(|| {
        Reply::error(405, format!("method {method} not allowed on {path}"))
            .with_header("allow", allow)
    })
}

fn not_found(method: &str, path: &str) -> Reply {
    Reply::error(404, format!("not found: {method} {path}"))
}

fn service_not_found() -> Reply {
    Reply::error(404, "service not found")
}

/// Answer one on-demand request.
pub(crate) fn handle(req: &RecordedRequest, shared: &Shared) -> Reply {
    let route = match route(&req.method, &req.path) {
        Ok(route) => route,
        Err(reply) => return reply,
    };
    if !route.is_public()
        && let Err(reply) = authorize(req, &shared.config.ondemand_token)
    {
        return reply;
    }
    let result = match route {
        Route::ServiceList => Ok(service_list(req)),
        Route::Service(alias) => catalogue::find(alias)
            .map(|s| Reply::success(json!({"services": [s]})))
            .ok_or_else(service_not_found),
        Route::ChatCompletions => chat_completions(req, shared),
        Route::Create(alias, prediction) => create(req, shared, alias, prediction),
        Route::Get(id) => infer::poll(&shared.state, id, shared.config.polls_until_done)
            .map(|r| Reply::success(json!({"infer_requests": [r]})))
            .ok_or_else(|| Reply::error(404, "infer request not found")),
        Route::ProjectList(project) => project_list(shared, project),
        Route::Presigned(alias, prediction) => presigned(req, shared, alias, prediction),
    };
    result.unwrap_or_else(|reply| reply)
}

/// `Authorization: Bearer <token>`; 401 with the live-style messages otherwise.
fn authorize(req: &RecordedRequest, token: &str) -> Result<(), Reply> {
    let unauthorized =
        |message: &str| Err(Reply::error(401, message).with_header("www-authenticate", "Bearer"));
    match req.header("authorization").map(str::trim) {
        None | Some("") => unauthorized("Unauthorized: missing access token"),
        Some(value) => {
            let presented = value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            if presented == Some(token) {
                Ok(())
            } else {
                unauthorized("Invalid access token")
            }
        }
    }
}

fn service_list(req: &RecordedRequest) -> Reply {
    let expand = req
        .query_param("expand")
        .is_some_and(|e| e.split(',').any(|f| f.trim() == "template_id"));
    let services: Vec<Value> = catalogue::services()
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if expand {
                s["template"] = catalogue::template(&s);
            }
            s
        })
        .collect();
    let total = services.len();
    Reply::success(json!({
        "services": services,
        "pagination": {"page": 0, "number": total, "total": total},
    }))
}

/// The prediction named by the path, else by `?prediction=`, else the service's default.
fn pick_prediction<'s>(
    req: &RecordedRequest,
    service: &'s Value,
    from_path: Option<&str>,
) -> Result<(String, &'s Value), Reply> {
    let name = from_path
        .map(str::to_owned)
        .or_else(|| req.query_param("prediction").filter(|p| !p.is_empty()))
        .unwrap_or_else(|| {
            service["default_prediction"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
    match catalogue::prediction(service, &name) {
        Some(p) => Ok((name, p)),
        None => Err(Reply::error(
            400,
            format!(
                "unknown prediction `{name}` for service `{}` (available: {})",
                service["alias"].as_str().unwrap_or_default(),
                catalogue::prediction_names(service).join(", ")
            ),
        )),
    }
}

/// `wait` from the query (wins) or the body; absent means 0.
fn wait_seconds(req: &RecordedRequest, body: &Value) -> Result<u64, Reply> {
    let invalid = |v: &dyn std::fmt::Display| {
        Reply::error(
            400,
            format!("invalid `wait` {v}: expected a number of seconds >= 0"),
        )
    };
    if let Some(q) = req.query_param("wait") {
        return q
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .map(|w| w.ceil() as u64)
            .ok_or_else(|| invalid(&q));
    }
    match &body["wait"] {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_f64()
            .filter(|w| *w >= 0.0)
            .map(|w| w.ceil() as u64)
            .ok_or_else(|| invalid(n)),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && *w >= 0.0)
            .map(|w| w.ceil() as u64)
            .ok_or_else(|| invalid(s)),
        other => Err(invalid(other)),
    }
}

/// `POST /infer_request/{alias}[/{prediction}]`.
fn create(
    req: &RecordedRequest,
    shared: &Shared,
    alias: &str,
    from_path: Option<&str>,
) -> Result<Reply, Reply> {
    let service = catalogue::find(alias).ok_or_else(service_not_found)?;
    let body = crate::store::json_body(req)?;
    let (prediction_name, prediction) = pick_prediction(req, service, from_path)?;
    let variant = match &body["variant"] {
        Value::Null => None,
        Value::String(v) => {
            let known = prediction["variants"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(|k| k == v));
            if !known {
                return Err(Reply::error(
                    400,
                    format!(
                        "unknown variant `{v}` for {alias}/{prediction_name} (available: {})",
                        list(&prediction["variants"])
                    ),
                ));
            }
            Some(v.clone())
        }
        _ => return Err(Reply::error(400, "invalid `variant`: expected a string")),
    };
    let webhook = match &body["webhook"] {
        w @ (Value::Null | Value::String(_)) => w.clone(),
        _ => {
            return Err(Reply::error(
                400,
                "invalid `webhook`: expected a URL string",
            ));
        }
    };
    let wait = wait_seconds(req, &body)?;
    let input = match &body["input"] {
        i @ Value::Object(_) => i.clone(),
        Value::Null => {
            return Err(Reply::error(
                400,
                "missing `input`: expected {\"input\": {...}}",
            ));
        }
        _ => return Err(Reply::error(400, "invalid `input`: expected a JSON object")),
    };
    if let Some(missing) = catalogue::required_fields(prediction)
        .into_iter()
        .find(|f| input[f.as_str()].is_null())
    {
        return Err(Reply::error(
            400,
            format!("missing required input field `{missing}`"),
        ));
    }
    // A file field naming an upload URL's file must name one whose bytes arrived (URLs and other
    // values are taken as they are).
    for field in catalogue::file_fields(prediction) {
        if let Some(name) = input[field.as_str()].as_str()
            && shared.state.upload_issued(name)
            && shared.state.upload(name).is_none()
        {
            return Err(Reply::error(
                400,
                format!(
                    "input field `{field}`: file `{name}` was never uploaded: PUT it to its presigned URL first"
                ),
            ));
        }
    }
    if catalogue::is_chat(prediction) {
        let messages = &input["messages"];
        if !messages.is_array() {
            return Err(Reply::error(
                400,
                "invalid input field `messages`: expected an array",
            ));
        }
        let answer = chat::answer(alias, messages, input["max_tokens"].as_u64());
        if input["stream"] != false {
            let id = shared.state.next_chat_id();
            return Ok(Reply::events(chat::stream_frames(&id, &answer)));
        }
        let mut output = json!({"message": answer.content_text()});
        if chat::is_reasoning_model(alias) {
            output["reasoning"] = json!(answer.reasoning_text());
        }
        let new = NewInfer {
            service,
            prediction: &prediction_name,
            variant,
            webhook,
            input,
            outcome: Some(Ok((
                output,
                (answer.prompt_tokens, answer.completion_tokens),
            ))),
        };
        // A non-streamed chat answer is returned complete.
        return Ok(created(
            shared,
            infer::create(&shared.state, new, wait.max(1)),
        ));
    }
    let new = NewInfer {
        service,
        prediction: &prediction_name,
        variant,
        webhook,
        input,
        outcome: None,
    };
    Ok(created(shared, infer::create(&shared.state, new, wait)))
}

fn created(shared: &Shared, request: Value) -> Reply {
    let quotas = infer::quota(
        &shared.state,
        request["template_id"].as_str().unwrap_or_default(),
    );
    Reply::success(json!({"infer_requests": [request], "model_quotas": quotas}))
}

fn list(values: &Value) -> String {
    values
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `POST /infer_request/chat/completions`: OpenAI body in, bare OpenAI JSON or SSE out.
fn chat_completions(req: &RecordedRequest, shared: &Shared) -> Result<Reply, Reply> {
    let body = crate::store::json_body(req)?;
    let model = body["model"]
        .as_str()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            Reply::error(400, "missing `model`: the service alias, e.g. gpt_oss_120b")
        })?;
    let service = catalogue::find(model).ok_or_else(service_not_found)?;
    let alias = service["alias"].as_str().unwrap_or(model);
    let default = service["default_prediction"].as_str().unwrap_or_default();
    if !catalogue::prediction(service, default).is_some_and(catalogue::is_chat) {
        return Err(Reply::error(
            400,
            format!("model `{alias}` does not support chat completions"),
        ));
    }
    let messages = &body["messages"];
    if messages.as_array().is_none_or(|m| m.is_empty()) {
        return Err(Reply::error(
            400,
            "invalid `messages`: expected a non-empty array",
        ));
    }
    let max_tokens = body["max_tokens"]
        .as_u64()
        .or(body["max_completion_tokens"].as_u64());
    let answer = chat::answer(alias, messages, max_tokens);
    let id = shared.state.next_chat_id();
    if body["stream"] == false {
        Ok(Reply::json(200, &chat::completion(&id, &answer)))
    } else {
        Ok(Reply::events(chat::stream_frames(&id, &answer)))
    }
}

/// `GET /infer_request/{project_id}/list`: the project's requests, oldest first. The token is
/// bound to [`PROJECT_ID`]; any other project is forbidden.
fn project_list(shared: &Shared, project: &str) -> Result<Reply, Reply> {
    if project != PROJECT_ID {
        return Err(Reply::error(
            403,
            "You are not allowed to perform this action",
        ));
    }
    let requests = shared.state.infers();
    let total = requests.len();
    Ok(Reply::success(json!({
        "infer_requests": requests,
        "pagination": {"page": 0, "number": total, "total": total},
    })))
}

/// `POST /infer_request/{alias}[/{prediction}]/input_presigned_urls` — the live shape
/// `{"<field>": {"presigned_url", "filename"}}`.
fn presigned(
    req: &RecordedRequest,
    shared: &Shared,
    alias: &str,
    from_path: Option<&str>,
) -> Result<Reply, Reply> {
    let service = catalogue::find(alias).ok_or_else(service_not_found)?;
    let (prediction_name, prediction) = pick_prediction(req, service, from_path)?;
    let body = crate::store::json_body(req)?;
    let file_fields = catalogue::file_fields(prediction);
    if file_fields.is_empty() {
        return Err(Reply::error(
            400,
            format!("{alias}/{prediction_name} has no file inputs"),
        ));
    }
    let requested: Vec<String> = match &body["input_fields"] {
        Value::Null => Vec::new(),
        Value::Array(fields) => fields
            .iter()
            .map(|f| f.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Reply::error(400, "invalid `input_fields`: expected an array of strings")
            })?,
        _ => {
            return Err(Reply::error(
                400,
                "invalid `input_fields`: expected an array of strings",
            ));
        }
    };
    let fields = if requested.is_empty() {
        file_fields.clone()
    } else {
        requested
    };
    let mut out = serde_json::Map::new();
    for field in fields {
        if !file_fields.contains(&field) {
            return Err(Reply::error(
                400,
                format!(
                    "unknown input field `{field}` for {alias}/{prediction_name} (file inputs: {})",
                    file_fields.join(", ")
                ),
            ));
        }
        let n = shared.state.next_upload();
        let filename = format!("{:016x}_{field}", 0x5eed_0000_0000u64 + n);
        let signature: String = format!("{:064x}", u128::from(n) * 0x9e37_79b9_7f4a_7c15);
        shared.state.issue_upload(&filename, &signature);
        let url = format!(
            "https://{}/{}/{filename}?X-Goog-Algorithm=GOOG4-RSA-SHA256\
             &X-Goog-Credential=ondemand%40theta-fake.iam.gserviceaccount.com%2F20260526%2Fauto%2Fstorage%2Fgoog4_request\
             &X-Goog-Date=20260526T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature={signature}",
            crate::storage::STORAGE_HOST,
            crate::storage::BUCKET
        );
        out.insert(field, json!({"presigned_url": url, "filename": filename}));
    }
    Ok(Reply::success(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve_by_method_and_shape() {
        assert_eq!(route("GET", "/service/list").unwrap(), Route::ServiceList);
        assert_eq!(
            route("POST", "/infer_request/qwen3").unwrap(),
            Route::Create("qwen3", None)
        );
        assert_eq!(
            route("GET", "/infer_request/infr_rqst_1").unwrap(),
            Route::Get("infr_rqst_1")
        );
        assert_eq!(
            route(
                "POST",
                "/infer_request/image_to_image/upscale/input_presigned_urls"
            )
            .unwrap(),
            Route::Presigned("image_to_image", Some("upscale"))
        );
        assert_eq!(
            route("GET", "/infer_request/prj_1/list").unwrap(),
            Route::ProjectList("prj_1")
        );
        assert_eq!(route("DELETE", "/infer_request/x").unwrap_err().status, 405);
        assert_eq!(
            route("GET", "/infer_request/chat/completions")
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(route("GET", "/nope").unwrap_err().status, 404);
        assert_eq!(route("GET", "/service/").unwrap_err().status, 404);
    }
}
