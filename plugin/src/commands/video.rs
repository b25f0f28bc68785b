//! The Theta Video API (`api.thetavideoapi.com`, service-account headers; theta-api-sources.md §2.7):
//! videos (upload slot → transcode → poll `created → processing → success | error`), livestreams and
//! edge ingestors.

use super::args::{Args, check_name, check_range};
use super::{ToJson, field, object, opt_str, setting, text};
use crate::client::{Api, Call, Client, Ctx, encode, truncate};
use crate::config::VIDEO_ID_VAR;
use crate::error::{Result, ThetaError};
use serde_json::{Value, json};

const RESOLUTIONS: [&str; 6] = ["160p", "240p", "360p", "480p", "720p", "1080p"];

fn first_of<'v>(body: &'v Value, key: &str) -> Option<&'v Value> {
    body.get(key)
        .and_then(|a| a.get(0))
        .or_else(|| body.get("id").map(|_| body))
}

fn missing_object(what: &str, body: &Value) -> ThetaError {
    ThetaError::transport(format!(
        "the answer has no {what}: {}",
        truncate(&body.to_string(), 200)
    ))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub id: String,
    pub state: String,
    pub sub_state: Option<String>,
    pub progress: Option<f64>,
    pub playback_uri: Option<String>,
    pub player_uri: Option<String>,
    pub file_name: Option<String>,
    pub error: Option<String>,
    pub duration: Option<f64>,
    pub create_time: Option<String>,
    pub update_time: Option<String>,
}

impl Video {
    fn from_value(v: &Value) -> Option<Self> {
        let t = |k: &str| text(v, &[k]);
        let n = |k: &str| field(v, &[k]).and_then(Value::as_f64);
        Some(Video {
            id: t("id")?,
            state: t("state").unwrap_or_else(|| "unknown".into()),
            sub_state: t("sub_state"),
            progress: n("progress"),
            playback_uri: t("playback_uri"),
            player_uri: t("player_uri"),
            file_name: t("file_name"),
            error: t("error"),
            duration: n("duration"),
            create_time: t("create_time"),
            update_time: t("update_time"),
        })
    }

    fn one(body: &Value) -> Result<Self> {
        first_of(body, "videos")
            .and_then(Video::from_value)
            .ok_or_else(|| missing_object("videos[0]", body))
    }
}

fn num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

impl ToJson for Video {
    fn to_json(&self) -> Value {
        let done = matches!(self.state.as_str(), "success" | "error");
        object(vec![
            ("id", Value::String(self.id.clone())),
            ("state", Value::String(self.state.clone())),
            ("sub_state", opt_str(&self.sub_state)),
            ("progress", num(self.progress)),
            ("done", Value::Bool(done)),
            ("playback_uri", opt_str(&self.playback_uri)),
            ("player_uri", opt_str(&self.player_uri)),
            ("file_name", opt_str(&self.file_name)),
            ("error", opt_str(&self.error)),
            ("duration", num(self.duration)),
            ("create_time", opt_str(&self.create_time)),
            ("update_time", opt_str(&self.update_time)),
        ])
    }
}

fn service_account(ctx: &Ctx, args: &Args) -> Result<String> {
    let sa = match args.first(&["service_account_id", "serviceAccountId"]) {
        Some((name, v)) => super::args::as_string(name, v)?,
        None => setting(&ctx.config.video_sa_id, VIDEO_ID_VAR)?,
    };
    check_name("service_account_id", &sa)?;
    Ok(sa)
}

pub const LIST_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"service_account_id":{"type":"string","description":"Default THETA_VIDEO_SA_ID."},"page":{"type":"integer","minimum":1,"description":"Page number."},"number":{"type":"integer","minimum":1,"maximum":100,"description":"Items per page."}}}"#;

pub fn list(ctx: &Ctx, args: Args) -> Result<Vec<Video>> {
    args.allow_only(&["service_account_id", "serviceAccountId", "page", "number"])?;
    let sa = service_account(ctx, &args)?;
    let page = args.u32("page")?;
    check_range("page", page, 1, u32::MAX)?;
    let number = args.u32("number")?;
    check_range("number", number, 1, 100)?;
    let call = Call::get(format!(
        "/video/{}/list?page={}&number={}",
        encode(&sa),
        page.unwrap_or(1),
        number.unwrap_or(10)
    ))
    .on(Api::Video);
    let body = Client::new(ctx).json(&call)?;
    Ok(super::items(&body, &["videos"])
        .into_iter()
        .filter_map(Video::from_value)
        .collect())
}

pub fn upload_create(ctx: &Ctx) -> Result<Value> {
    let mut call = Call::get("/upload".into()).on(Api::Video).method("POST");
    call.retries = Some(0);
    let body = Client::new(ctx).json(&call)?;
    let u = first_of(&body, "uploads").ok_or_else(|| missing_object("uploads[0]", &body))?;
    let t = |k: &str| opt_str(&text(u, &[k]));
    Ok(object(vec![
        ("id", t("id")),
        ("presigned_url", t("presigned_url")),
        ("presigned_url_expiration", t("presigned_url_expiration")),
        (
            "next",
            Value::String(
                "PUT the file's bytes to presigned_url (Content-Type: application/octet-stream), then \
                 theta.video.videoCreate with source_upload_id"
                    .into(),
            ),
        ),
    ]))
}

pub const VIDEO_CREATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"source_upload_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"From theta.video.uploadCreate, after the PUT (exactly one of source_upload_id and source_uri)."},"source_uri":{"type":"string","pattern":"^https://","description":"Or a public https URL of the video (exactly one of source_upload_id and source_uri)."},"playback_policy":{"type":"string","enum":["public","private"],"description":"Default public."},"file_name":{"type":"string","description":"File name to record."},"metadata":{"type":"object","description":"Metadata object."}}}"#;

pub fn parse_video_create(args: Args) -> Result<Value> {
    args.allow_only(&[
        "source_upload_id",
        "source_uri",
        "playback_policy",
        "file_name",
        "metadata",
    ])?;
    let upload = args.string("source_upload_id")?;
    let uri = args.string("source_uri")?;
    let mut body = json!({});
    match (upload, uri) {
        (Some(u), None) => {
            check_name("source_upload_id", &u)?;
            body["source_upload_id"] = json!(u);
        }
        (None, Some(u)) => {
            super::ondemand::check_webhook(&u).map_err(|_| {
                ThetaError::invalid("source_uri", "expected an https:// URL with a host")
            })?;
            body["source_uri"] = json!(u);
        }
        _ => {
            return Err(ThetaError::invalid(
                "source_upload_id",
                "give exactly one of source_upload_id (from theta.video.uploadCreate) or source_uri",
            ));
        }
    }
    let policy = args
        .string("playback_policy")?
        .unwrap_or_else(|| "public".into());
    if policy != "public" && policy != "private" {
        return Err(ThetaError::invalid(
            "playback_policy",
            "expected public or private",
        ));
    }
    body["playback_policy"] = json!(policy);
    if let Some(f) = args.string("file_name")? {
        body["file_name"] = json!(f);
    }
    if let Some(m) = args.object("metadata")? {
        body["metadata"] = Value::Object(m);
    }
    Ok(body)
}

/// Starts transcoding (billed). The video starts `created`; poll theta.video.videoGet.
pub fn video_create(ctx: &Ctx, body: Value) -> Result<Video> {
    let mut call = Call::post("/video".into(), body).on(Api::Video);
    call.retries = Some(0);
    Video::one(&Client::new(ctx).json(&call)?)
}

pub const VIDEO_GET_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["video_id"],"properties":{"video_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The video id."}}}"#;

pub fn id_arg(args: &Args, snake: &str, camel: &str) -> Result<String> {
    args.allow_only(&[snake, camel])?;
    let id = match args.first(&[snake, camel]) {
        Some((name, v)) => super::args::as_string(name, v)?,
        None => return Err(ThetaError::invalid(snake, "required")),
    };
    check_name(snake, &id)?;
    Ok(id)
}

pub fn video_get(ctx: &Ctx, id: &str) -> Result<Video> {
    let mut call = Call::get(format!("/video/{}", encode(id))).on(Api::Video);
    call.not_found = Some(format!("no video `{id}` (see theta.video.list)"));
    Video::one(&Client::new(ctx).json(&call)?)
}

// ---------------------------------------------------------------------------------------------
// streams and ingestors

fn stream_json(s: &Value) -> Value {
    let t = |k: &str| opt_str(&text(s, &[k]));
    object(vec![
        ("id", t("id")),
        ("name", t("name")),
        ("status", t("status")),
        (
            "resolutions",
            field(s, &["resolutions"]).cloned().unwrap_or(Value::Null),
        ),
        ("source_resolution", t("source_resolution")),
        ("fps", t("fps")),
        ("playback_url", t("playback_url")),
        ("stream_server", t("stream_server")),
        ("stream_key", t("stream_key")),
        ("update_time", t("update_time")),
    ])
}

fn one_stream(body: &Value) -> Result<Value> {
    let s = body
        .get("stream")
        .or_else(|| first_of(body, "streams"))
        .ok_or_else(|| missing_object("stream", body))?;
    Ok(stream_json(s))
}

pub const STREAM_CREATE_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["name"],"properties":{"name":{"type":"string","minLength":1,"maxLength":100,"description":"Display name."},"resolutions":{"type":"array","items":{"type":"string","enum":["160p","240p","360p","480p","720p","1080p","source"]},"description":"Output resolutions."},"source_resolution":{"type":"string","description":"Resolution of the incoming stream."},"fps":{"type":"integer","minimum":1,"maximum":120,"description":"Frames per second."}}}"#;

pub fn parse_stream_create(args: Args) -> Result<Value> {
    args.allow_only(&["name", "resolutions", "source_resolution", "fps"])?;
    let name = args.required_string("name")?;
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ThetaError::invalid("name", "expected 1 to 100 characters"));
    }
    let mut body = json!({ "name": name });
    if let Some(r) = args.get("resolutions") {
        let ok = r.as_array().is_some_and(|a| {
            a.iter().all(|x| {
                x.as_str()
                    .is_some_and(|s| s == "source" || RESOLUTIONS.contains(&s))
            })
        });
        if !ok {
            return Err(ThetaError::invalid(
                "resolutions",
                format!("expected a list of {}, source", RESOLUTIONS.join(", ")),
            ));
        }
        body["resolutions"] = r.clone();
    }
    if let Some(s) = args.string("source_resolution")? {
        body["source_resolution"] = json!(s);
    }
    let fps = args.u32("fps")?;
    check_range("fps", fps, 1, 120)?;
    if let Some(f) = fps {
        body["fps"] = json!(f);
    }
    Ok(body)
}

pub fn stream_create(ctx: &Ctx, body: Value) -> Result<Value> {
    let mut call = Call::post("/stream".into(), body).on(Api::Video);
    call.retries = Some(0);
    one_stream(&Client::new(ctx).json(&call)?)
}

pub fn stream_get(ctx: &Ctx, id: &str) -> Result<Value> {
    let mut call = Call::get(format!("/stream/{}", encode(id))).on(Api::Video);
    call.not_found = Some(format!("no stream `{id}` (see theta.video.streamList)"));
    one_stream(&Client::new(ctx).json(&call)?)
}

pub const STREAM_LIST_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"properties":{"service_account_id":{"type":"string","description":"Video service account; default THETA_VIDEO_SA_ID."},"status":{"type":"string","enum":["on","off"],"description":"Only streams that are on or off."}}}"#;

pub fn stream_list(ctx: &Ctx, args: Args) -> Result<Value> {
    args.allow_only(&["service_account_id", "serviceAccountId", "status"])?;
    let sa = service_account(ctx, &args)?;
    let mut path = format!("/service_account/{}/streams", encode(&sa));
    if let Some(s) = args.string("status")? {
        if s != "on" && s != "off" {
            return Err(ThetaError::invalid("status", "expected on or off"));
        }
        path.push_str(&format!("?status={s}"));
    }
    let body = Client::new(ctx).json(&Call::get(path).on(Api::Video))?;
    Ok(Value::Array(
        super::items(&body, &["streams"])
            .into_iter()
            .map(stream_json)
            .collect(),
    ))
}

pub fn ingestor_list(ctx: &Ctx) -> Result<Value> {
    let body = Client::new(ctx).json(&Call::get("/ingestor/filter".into()).on(Api::Video))?;
    Ok(Value::Array(
        super::items(&body, &["ingestors"])
            .into_iter()
            .map(|i| {
                let t = |k: &str| opt_str(&text(i, &[k]));
                object(vec![
                    ("id", t("id")),
                    ("ip", t("ip")),
                    ("region", t("region")),
                    ("state", t("state")),
                    (
                        "distance",
                        field(i, &["distance"]).cloned().unwrap_or(Value::Null),
                    ),
                ])
            })
            .collect(),
    ))
}

pub const SELECT_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["ingestor_id","stream_id"],"properties":{"ingestor_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The ingestor id."},"stream_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The stream to bind (tva_stream)."}}}"#;
pub const UNSELECT_SCHEMA: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","additionalProperties":false,"required":["ingestor_id"],"properties":{"ingestor_id":{"type":"string","pattern":"^[A-Za-z0-9_.-]+$","description":"The ingestor id."}}}"#;

/// Binds an ingestor to a stream (`select`, which unlocks stream_server and stream_key) or releases it.
pub fn ingestor_select(ctx: &Ctx, args: Args, select: bool) -> Result<Value> {
    let allowed: &[&str] = if select {
        &["ingestor_id", "ingestorId", "stream_id", "streamId"]
    } else {
        &["ingestor_id", "ingestorId"]
    };
    args.allow_only(allowed)?;
    let get = |snake: &str, camel: &str| -> Result<String> {
        let id = match args.first(&[snake, camel]) {
            Some((n, v)) => super::args::as_string(n, v)?,
            None => return Err(ThetaError::invalid(snake, "required")),
        };
        check_name(snake, &id)?;
        Ok(id)
    };
    let ingestor = get("ingestor_id", "ingestorId")?;
    let (verb, body) = if select {
        (
            "select",
            json!({"tva_stream": get("stream_id", "streamId")?}),
        )
    } else {
        ("unselect", json!({}))
    };
    let mut call = Call::post(format!("/ingestor/{}/{verb}", encode(&ingestor)), body)
        .on(Api::Video)
        .method("PUT");
    call.not_found = Some(format!(
        "no ingestor `{ingestor}` (see theta.video.ingestor.list)"
    ));
    let answer = Client::new(ctx).json(&call)?;
    let stream = answer.get("stream").map(stream_json).unwrap_or(Value::Null);
    Ok(object(vec![
        ("ingestor_id", Value::String(ingestor)),
        ("selected", Value::Bool(select)),
        ("stream", stream),
    ]))
}
