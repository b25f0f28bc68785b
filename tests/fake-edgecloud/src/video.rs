//! The Theta Video API (`api.thetavideoapi.com`, `x-tva-sa-id` + `x-tva-sa-secret`): upload slots,
//! transcodes that go created → processing → success, livestreams (at most 3) and edge ingestors
//! (theta-api-sources.md §2.7).

use crate::clock::now_iso;
use crate::reply::Reply;
use crate::server::Shared;
use crate::state::RecordedRequest;
use crate::store::{json_body, not_found, segments};
use serde_json::{Value, json};

const INGESTORS: [&str; 2] = ["ingestor_fake0000000001", "ingestor_fake0000000002"];

pub(crate) fn handle(req: &RecordedRequest, shared: &Shared) -> Reply {
    let (sa, secret) = &shared.config.video_account;
    match (req.header("x-tva-sa-id"), req.header("x-tva-sa-secret")) {
        (Some(i), Some(s)) if i == sa && s == secret => {}
        (None, _) | (_, None) => {
            return Reply::error(401, "missing service account credentials");
        }
        _ => return Reply::error(401, "invalid service account credentials"),
    }
    let Some(seg) = segments(&req.path) else {
        return not_found(req);
    };
    let result = match (req.method.as_str(), seg.as_slice()) {
        ("POST", ["upload"]) => Ok(shared.state.with_store(|s| {
            let id = s.id("upload_");
            s.uploads.push(id.clone());
            Reply::success(json!({"uploads": [{
                "id": id, "service_account_id": sa,
                "presigned_url": format!("https://storage.googleapis.com/fake-tva-uploads/{id}?X-Goog-Signature=fake"),
                "presigned_url_expiration": now_iso(), "presigned_url_expired": false,
                "create_time": now_iso(), "update_time": now_iso()}]}))
        })),
        ("POST", ["video"]) => create_video(req, shared),
        ("GET", ["video", owner, "list"]) => {
            if owner != sa {
                Err(Reply::error(403, "You are not allowed to access this service account"))
            } else {
                let videos: Vec<Value> =
                    shared.state.with_store(|s| s.videos.iter().map(|(v, _)| v.clone()).collect());
                Ok(Reply::success(json!({"videos": videos, "total_count": videos.len()})))
            }
        }
        ("GET", ["video", id]) => get_video(shared, id),
        ("POST", ["stream"]) => create_stream(req, shared),
        ("GET", ["stream", id]) => shared
            .state
            .with_store(|s| s.streams.iter().find(|x| x["id"] == *id).cloned())
            .map(|st| Reply::success(json!({"stream": st})))
            .ok_or_else(|| Reply::error(404, "stream not found")),
        ("GET", ["service_account", owner, "streams"]) => {
            if owner != sa {
                Err(Reply::error(403, "You are not allowed to access this service account"))
            } else {
                let status = req.query_param("status");
                let streams: Vec<Value> = shared.state.with_store(|s| {
                    s.streams
                        .iter()
                        .filter(|x| status.as_ref().is_none_or(|st| x["status"] == st.as_str()))
                        .cloned()
                        .collect()
                });
                Ok(Reply::success(json!({"streams": streams})))
            }
        }
        ("GET", ["ingestor", "filter"]) => Ok(Reply::success(json!({"ingestors": [
            {"id": INGESTORS[0], "ip": "203.0.113.10", "region": "us-east", "state": "available", "distance": 12},
            {"id": INGESTORS[1], "ip": "203.0.113.20", "region": "eu-west", "state": "available", "distance": 840},
        ]}))),
        ("PUT", ["ingestor", id, verb @ ("select" | "unselect")]) => select(req, shared, id, verb),
        _ => Err(not_found(req)),
    };
    result.unwrap_or_else(|r| r)
}

fn create_video(req: &RecordedRequest, shared: &Shared) -> Result<Reply, Reply> {
    let body = json_body(req)?;
    let upload = body["source_upload_id"].as_str();
    let uri = body["source_uri"].as_str();
    if upload.is_some() == uri.is_some() {
        return Err(Reply::error(
            400,
            "exactly one of source_upload_id or source_uri is required",
        ));
    }
    if let Some(u) = uri
        && !u.starts_with("https://")
    {
        return Err(Reply::error(400, "source_uri must be an https URL"));
    }
    let policy = body["playback_policy"].as_str().unwrap_or("public");
    if policy != "public" && policy != "private" {
        return Err(Reply::error(
            400,
            "playback_policy must be public or private",
        ));
    }
    let (sa, _) = &shared.config.video_account;
    shared.state.with_store(|s| {
        if let Some(u) = upload
            && !s.uploads.iter().any(|x| x == u)
        {
            return Err(Reply::error(404, format!("upload `{u}` not found")));
        }
        let id = s.id("video_");
        let v = json!({"id": id, "playback_uri": null, "player_uri": null, "create_time": now_iso(),
            "update_time": now_iso(), "service_account_id": sa, "file_name": body["file_name"],
            "state": "created", "sub_state": "none", "source_upload_id": upload, "source_uri": uri,
            "playback_policy": policy, "progress": 0, "error": null, "duration": null,
            "metadata": body["metadata"]});
        s.videos.push((v.clone(), 0));
        Ok(Reply::success(json!({"videos": [v]})))
    })
}

fn get_video(shared: &Shared, id: &str) -> Result<Reply, Reply> {
    let until = shared.config.video_polls_until_done.max(1);
    shared.state.with_store(|s| {
        let (v, polls) = s
            .videos
            .iter_mut()
            .find(|(v, _)| v["id"] == id)
            .ok_or_else(|| Reply::error(404, "video not found"))?;
        *polls += 1;
        if v["state"] != "success" {
            if *polls >= until {
                v["state"] = json!("success");
                v["sub_state"] = json!("none");
                v["progress"] = json!(100);
                v["duration"] = json!(12.5);
                v["playback_uri"] =
                    json!(format!("https://media.thetavideoapi.com/{id}/master.m3u8"));
                v["player_uri"] = json!(format!("https://player.thetavideoapi.com/video/{id}"));
            } else {
                v["state"] = json!("processing");
                v["sub_state"] = json!("transcoding");
                v["progress"] = json!(100 * *polls / until);
            }
            v["update_time"] = json!(now_iso());
        }
        Ok(Reply::success(json!({"videos": [v.clone()]})))
    })
}

fn create_stream(req: &RecordedRequest, shared: &Shared) -> Result<Reply, Reply> {
    let body = json_body(req)?;
    let name = body["name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Reply::error(400, "name is required"))?;
    let (sa, _) = &shared.config.video_account;
    shared.state.with_store(|s| {
        if s.streams.len() >= 3 {
            return Err(Reply::error(
                400,
                "maximum number of streams (3) reached for this service account",
            ));
        }
        let id = s.id("stream_");
        let st = json!({"id": id, "service_account_id": sa, "name": name,
            "resolutions": body.get("resolutions").cloned().unwrap_or(json!(["360p", "720p"])),
            "source_resolution": body["source_resolution"].as_str().unwrap_or("720p"),
            "fps": body["fps"].as_u64().unwrap_or(30).to_string(), "status": "off", "update_time": now_iso(),
            "playback_url": format!("https://media.thetavideoapi.com/{id}/master.m3u8"),
            "thumbnail_url": null, "stream_server": null, "stream_key": null});
        s.streams.push(st.clone());
        Ok(Reply::success(json!({"stream": st})))
    })
}

fn select(req: &RecordedRequest, shared: &Shared, id: &str, verb: &str) -> Result<Reply, Reply> {
    if !INGESTORS.contains(&id) {
        return Err(Reply::error(404, "ingestor not found"));
    }
    let body = json_body(req)?;
    if verb == "unselect" {
        return Ok(Reply::success(
            json!({"ingestor": {"id": id, "state": "available"}}),
        ));
    }
    // Without tva_stream the API answers 403 (XFUEL).
    let stream = body["tva_stream"]
        .as_str()
        .ok_or_else(|| Reply::error(403, "tva_stream is required to select an ingestor"))?;
    shared.state.with_store(|s| {
        let st = s
            .streams
            .iter_mut()
            .find(|x| x["id"] == stream)
            .ok_or_else(|| Reply::error(404, "stream not found"))?;
        st["stream_server"] = json!("rtmp://live5in.thetavideoapi.com/live");
        st["stream_key"] = json!(format!("key_{stream}"));
        Ok(Reply::success(
            json!({"ingestor": {"id": id, "state": "selected"}, "stream": st.clone()}),
        ))
    })
}
