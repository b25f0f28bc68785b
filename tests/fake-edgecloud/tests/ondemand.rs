//! The on-demand API as a client sees it over real HTTP: catalogue, auth, errors, async lifecycle,
//! SSE chat, OpenAI chat/completions, presigned upload URLs, and the request log.

mod common;

use bytes::Bytes;
use common::*;
use fake_edgecloud::{FakeConfig, PROJECT_ID};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

#[tokio::test]
async fn the_catalogue_is_public_complete_and_includes_an_internal_service() {
    let fake = fake().await;
    let r = send(fake.addr(), Req::get("/service/list")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let v = r.json();
    assert_eq!(v["status"], "success");
    let services = v["body"]["services"].as_array().unwrap();
    let aliases: Vec<&str> = services
        .iter()
        .map(|s| s["alias"].as_str().unwrap())
        .collect();
    for alias in [
        "qwen3",
        "gpt_oss_120b",
        "llama_3_1_70b",
        "flux",
        "stable_diffusion_xl_turbo",
        "grounding_dino",
        "blip",
        "llava",
        "whisper",
        "step_video",
        "image_to_image",
        "kokoro_82m",
    ] {
        assert!(aliases.contains(&alias), "{alias} missing from {aliases:?}");
    }
    assert_eq!(
        services.iter().filter(|s| s["state"] == "internal").count(),
        1
    );
    assert_eq!(v["body"]["pagination"]["total"], services.len());
    for s in services {
        for field in [
            "id",
            "name",
            "alias",
            "state",
            "template_id",
            "workload_type",
            "predictions",
            "default_prediction",
            "create_time",
            "update_time",
        ] {
            assert!(!s[field].is_null(), "{field} missing in {s}");
        }
        assert!(s["id"].as_str().unwrap().starts_with("srvc_"));
        let default = s["default_prediction"].as_str().unwrap();
        let p = &s["predictions"][default];
        for field in [
            "rank",
            "func_type",
            "instructions",
            "cost",
            "cost_divisor",
            "input_vars",
            "output_vars",
            "variants",
        ] {
            assert!(
                !p[field].is_null(),
                "{field} missing in {}'s {default}",
                s["alias"]
            );
        }
        assert!(p["cost"]["input"].is_number() && p["cost"]["output"].is_number());
        assert!(s.get("template").is_none(), "not expanded unless asked");
    }
    let qwen = services.iter().find(|s| s["alias"] == "qwen3").unwrap();
    let completions = &qwen["predictions"]["completions"];
    assert_eq!(
        completions["variants"],
        json!(["default", "parallax_32b_fp8"])
    );
    for input in ["messages", "max_tokens", "temperature", "top_p", "stream"] {
        assert!(
            completions["input_vars"][input].is_object(),
            "qwen3 lacks {input}"
        );
    }
    let i2i = services
        .iter()
        .find(|s| s["alias"] == "image_to_image")
        .unwrap();
    for p in ["stylize", "upscale", "background_removal"] {
        assert!(i2i["predictions"][p]["input_vars"]["image_filename"].is_object());
    }
    assert!(services.iter().find(|s| s["alias"] == "whisper").unwrap()["predictions"]["stt"]["input_vars"]["audio_filename"].is_object());
    let kokoro = services
        .iter()
        .find(|s| s["alias"] == "kokoro_82m")
        .unwrap();
    let kokoro_inputs =
        &kokoro["predictions"][kokoro["default_prediction"].as_str().unwrap()]["input_vars"];
    assert!(kokoro_inputs["text"].is_object() && kokoro_inputs["voice"].is_object());

    let expanded = send(fake.addr(), Req::get("/service/list?expand=template_id"))
        .await
        .json();
    let first = &expanded["body"]["services"][0];
    assert_eq!(first["template"]["id"], first["template_id"]);

    let one = send(fake.addr(), Req::get("/service/whisper")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["body"]["services"][0]["alias"], "whisper");
    let missing = send(fake.addr(), Req::get("/service/no_such_model")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_message(), "service not found");
}

#[tokio::test]
async fn every_other_route_needs_the_bearer_token() {
    let fake = fake().await;
    let flux = json!({"input": {"prompt": "x"}});
    let none = send(fake.addr(), Req::post("/infer_request/flux", &flux)).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.error_message(), "Unauthorized: missing access token");
    let wrong = send(
        fake.addr(),
        Req::post("/infer_request/flux", &flux).header("authorization", "Bearer nope"),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.error_message(), "Invalid access token");
    let scheme = send(
        fake.addr(),
        Req::get("/infer_request/infr_rqst_1").header("authorization", format!("Basic {TOKEN}")),
    )
    .await;
    assert_eq!(scheme.status, 401);
    assert_eq!(scheme.error_message(), "Invalid access token");
    for target in [
        "/infer_request/chat/completions",
        "/infer_request/whisper/input_presigned_urls",
    ] {
        let r = send(fake.addr(), Req::post(target, &json!({}))).await;
        assert_eq!(r.status, 401, "{target}");
    }
    let list = send(
        fake.addr(),
        Req::get(&format!("/infer_request/{PROJECT_ID}/list")),
    )
    .await;
    assert_eq!(list.status, 401);
    let ok = send(fake.addr(), Req::post("/infer_request/flux", &flux).auth()).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
}

#[tokio::test]
async fn bad_requests_get_clear_errors_with_the_right_status() {
    let fake = fake().await;
    let post =
        |target: &'static str, body: Value| send(fake.addr(), Req::post(target, &body).auth());

    let r = post(
        "/infer_request/no_such_model",
        json!({"input": {"prompt": "x"}}),
    )
    .await;
    assert_eq!(
        (r.status, r.error_message()),
        (404, "service not found".into())
    );
    let r = post("/infer_request/flux", json!({"input": {"guidance": 2}})).await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("`prompt`"), "{}", r.text());
    let r = post("/infer_request/qwen3", json!({"input": {"stream": false}})).await;
    assert!(
        r.status == 400 && r.error_message().contains("`messages`"),
        "{}",
        r.text()
    );
    let r = post("/infer_request/flux", json!({"prompt": "no wrapper"})).await;
    assert!(
        r.status == 400 && r.error_message().contains("input"),
        "{}",
        r.text()
    );
    let r = post(
        "/infer_request/flux/upscale",
        json!({"input": {"prompt": "x"}}),
    )
    .await;
    assert!(
        r.status == 400 && r.error_message().contains("upscale"),
        "{}",
        r.text()
    );
    let r = post(
        "/infer_request/flux?prediction=nope",
        json!({"input": {"prompt": "x"}}),
    )
    .await;
    assert!(
        r.status == 400 && r.error_message().contains("nope"),
        "{}",
        r.text()
    );
    let r = post(
        "/infer_request/qwen3",
        json!({"input": {"messages": []}, "variant": "turbo"}),
    )
    .await;
    assert!(
        r.status == 400 && r.error_message().contains("turbo"),
        "{}",
        r.text()
    );
    let r = post(
        "/infer_request/flux?wait=soon",
        json!({"input": {"prompt": "x"}}),
    )
    .await;
    assert!(
        r.status == 400 && r.error_message().contains("wait"),
        "{}",
        r.text()
    );
    let r = send(
        fake.addr(),
        Req::new("POST", "/infer_request/flux")
            .auth()
            .body(b"{not json".to_vec()),
    )
    .await;
    assert!(
        r.status == 400 && r.error_message().contains("JSON"),
        "{}",
        r.text()
    );

    let r = send(fake.addr(), Req::get("/no/such/route").auth()).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], "error");
    let r = send(
        fake.addr(),
        Req::new("DELETE", "/infer_request/infr_rqst_1").auth(),
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    let r = send(fake.addr(), Req::post("/service/list", &json!({}))).await;
    assert_eq!(r.status, 405);
    let r = send(
        fake.addr(),
        Req::get("/infer_request/infr_rqst_nope").auth(),
    )
    .await;
    assert_eq!(
        (r.status, r.error_message()),
        (404, "infer request not found".into())
    );
    let r = send(
        fake.addr(),
        Req::get("/service/list").header("host", "evil.example"),
    )
    .await;
    assert_eq!(r.status, 421);
    assert!(r.error_message().contains("evil.example"));
    // A declared body over 10 MiB is refused without being read.
    let r = send(
        fake.addr(),
        Req::new("POST", "/infer_request/flux")
            .auth()
            .header("content-length", (10 * 1024 * 1024 + 1).to_string()),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
}

#[tokio::test]
async fn an_oversized_chunked_body_is_refused_with_413() {
    let fake = fake().await;
    let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /infer_request/flux HTTP/1.1\r\nhost: {HOST}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let piece = vec![b'a'; 1024 * 1024];
    for _ in 0..11 {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(&piece);
        chunk.extend_from_slice(b"\r\n");
        if stream.write_all(&chunk).await.is_err() {
            break; // the server answered and closed
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut wire = Vec::new();
    let _ = stream.read_to_end(&mut wire).await;
    let r = parse(&wire);
    assert_eq!(r.status, 413, "{}", r.text());
}

/// A keep-alive client, as the host uses.
fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn call(
    fake: &fake_edgecloud::FakeEdgeCloud,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", fake.base_url()))
        .header("host", HOST)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .unwrap();
    let response = client().request(request).await.expect("response");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

#[tokio::test]
async fn async_requests_go_pending_processing_success_over_polls() {
    let fake = fake().await;
    let (status, created) = call(&fake, "POST", "/infer_request/flux", Some(json!({"input": {"prompt": "a blue cloud"}, "webhook": "https://example.com/hook", "variant": "quantized"}))).await;
    assert_eq!(status, 200, "{created}");
    let request = &created["body"]["infer_requests"][0];
    assert_eq!(request["state"], "pending");
    assert!(request["output"].is_null());
    assert_eq!(request["webhook"], "https://example.com/hook");
    assert_eq!(request["variant"], "quantized");
    assert_eq!(request["project_id"], PROJECT_ID);
    assert!(request["service_id"].as_str().unwrap().starts_with("srvc_"));
    for field in [
        "org_id",
        "template_id",
        "prediction",
        "input",
        "usage",
        "prediction_cost",
        "prediction_cost_divisor",
        "cost_usd",
        "create_time",
        "update_time",
    ] {
        assert!(!request[field].is_null(), "{field} missing: {request}");
    }
    for field in [
        "assigned_time",
        "process_time",
        "success_time",
        "error_message",
    ] {
        assert!(request.get(field).is_some(), "{field} absent: {request}");
    }
    let quota = &created["body"]["model_quotas"][0];
    assert_eq!(quota["template_id"], request["template_id"]);
    assert!(
        quota["ten_min_remaining"].as_u64().unwrap() < quota["ten_min_quota"].as_u64().unwrap()
    );
    let id = request["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("infr_rqst_"));

    let (_, first) = call(&fake, "GET", &format!("/infer_request/{id}"), None).await;
    let first = &first["body"]["infer_requests"][0];
    assert_eq!(first["state"], "processing");
    assert!(first["assigned_time"].is_string());
    let (_, second) = call(&fake, "GET", &format!("/infer_request/{id}"), None).await;
    let second = &second["body"]["infer_requests"][0];
    assert_eq!(second["state"], "success");
    let url = second["output"]["image_url"].as_str().unwrap();
    assert!(
        url.starts_with("https://ondemand-outputs.thetaedgecloud.com/") && url.contains(&id),
        "{url}"
    );
    assert!(second["success_time"].is_string());
    assert_eq!(second["cost_usd"]["output"], 0.01);
    let (_, again) = call(&fake, "GET", &format!("/infer_request/{id}"), None).await;
    assert_eq!(
        again["body"]["infer_requests"][0]["state"], "success",
        "terminal states stay"
    );

    let (status, list) = call(
        &fake,
        "GET",
        &format!("/infer_request/{PROJECT_ID}/list"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["body"]["infer_requests"][0]["id"], id.as_str());
    let (status, _) = call(&fake, "GET", "/infer_request/prj_someone_else/list", None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn polls_until_done_is_configurable() {
    let fake = fake_with(FakeConfig {
        polls_until_done: 4,
        ..FakeConfig::default()
    })
    .await;
    let (_, created) = call(
        &fake,
        "POST",
        "/infer_request/whisper",
        Some(json!({"input": {"audio_filename": "clip.wav"}, "wait": 0})),
    )
    .await;
    let id = created["body"]["infer_requests"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut states = Vec::new();
    for _ in 0..5 {
        let (_, polled) = call(&fake, "GET", &format!("/infer_request/{id}"), None).await;
        states.push(
            polled["body"]["infer_requests"][0]["state"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        states,
        [
            "processing",
            "processing",
            "processing",
            "success",
            "success"
        ]
    );
}

#[tokio::test]
async fn wait_answers_at_once_and_the_query_wins_over_the_body() {
    let fake = fake().await;
    let outputs = [
        ("flux", json!({"prompt": "x"}), "image_url"),
        (
            "stable_diffusion_xl_turbo",
            json!({"prompt": "x"}),
            "image_url",
        ),
        ("whisper", json!({"audio_filename": "a.wav"}), "text"),
        (
            "kokoro_82m",
            json!({"text": "hi", "voice": "af_sky"}),
            "audio_url",
        ),
        ("step_video", json!({"prompt": "x"}), "video_url"),
        ("blip", json!({"input_img": "a.png"}), "text"),
    ];
    for (alias, input, key) in outputs {
        let (status, v) = call(
            &fake,
            "POST",
            &format!("/infer_request/{alias}?wait=10"),
            Some(json!({"input": input})),
        )
        .await;
        assert_eq!(status, 200, "{alias}: {v}");
        let r = &v["body"]["infer_requests"][0];
        assert_eq!(r["state"], "success", "{alias}: {r}");
        assert!(r["output"][key].is_string(), "{alias}: {r}");
    }
    // Body wait alone works.
    let (_, v) = call(
        &fake,
        "POST",
        "/infer_request/flux",
        Some(json!({"input": {"prompt": "x"}, "wait": 5})),
    )
    .await;
    assert_eq!(v["body"]["infer_requests"][0]["state"], "success");
    // The query wins.
    let (_, v) = call(
        &fake,
        "POST",
        "/infer_request/flux?wait=0",
        Some(json!({"input": {"prompt": "x"}, "wait": 5})),
    )
    .await;
    assert_eq!(v["body"]["infer_requests"][0]["state"], "pending");
    // Prediction by query and by path.
    let (_, v) = call(
        &fake,
        "POST",
        "/infer_request/image_to_image?prediction=upscale&wait=3",
        Some(json!({"input": {"image_filename": "f"}})),
    )
    .await;
    assert_eq!(v["body"]["infer_requests"][0]["prediction"], "upscale");
    let (_, v) = call(
        &fake,
        "POST",
        "/infer_request/image_to_image/background_removal?wait=3",
        Some(json!({"input": {"image_filename": "f"}})),
    )
    .await;
    assert_eq!(
        v["body"]["infer_requests"][0]["prediction"],
        "background_removal"
    );
}

#[tokio::test]
async fn requested_failures_end_in_the_error_state() {
    let fake = fake().await;
    let (_, v) = call(
        &fake,
        "POST",
        "/infer_request/flux?wait=5",
        Some(json!({"input": {"prompt": "please FAIL"}})),
    )
    .await;
    let r = &v["body"]["infer_requests"][0];
    assert_eq!(r["state"], "error");
    assert!(!r["error_message"].as_str().unwrap().is_empty());
    assert!(r["output"].is_null());

    let (_, v) = call(
        &fake,
        "POST",
        "/infer_request/whisper",
        Some(json!({"input": {"audio_filename": "a.wav", "fail": true}})),
    )
    .await;
    let id = v["body"]["infer_requests"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut states = Vec::new();
    for _ in 0..2 {
        let (_, p) = call(&fake, "GET", &format!("/infer_request/{id}"), None).await;
        states.push(
            p["body"]["infer_requests"][0]["state"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        if states.last().unwrap() == "error" {
            assert!(p["body"]["infer_requests"][0]["error_time"].is_string());
        }
    }
    assert_eq!(states, ["processing", "error"]);
}

fn content_of(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn qwen3_streams_openai_chunks_with_keep_alive_usage_and_done() {
    let fake = fake().await;
    let body = json!({"input": {"messages": [{"role": "user", "content": "hello there"}], "stream": true}});
    let r = send(
        fake.addr(),
        Req::post("/infer_request/qwen3?wait=60", &body).auth(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete);
    let blocks = r.sse_blocks();
    assert!(
        blocks
            .iter()
            .all(|b| b.starts_with("data: ") || b.starts_with(": ")),
        "{blocks:?}"
    );
    let keep_alive = blocks
        .iter()
        .position(|b| b == ": keep-alive")
        .expect("a keep-alive comment");
    let first_token = blocks
        .iter()
        .position(|b| b.contains("\"content\":\"Echo:\""))
        .expect("tokens");
    assert!(keep_alive < first_token);
    assert_eq!(blocks.last().unwrap(), "data: [DONE]");

    let events = r.sse_events();
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        events
            .iter()
            .all(|e| e["object"] == "chat.completion.chunk" && e["model"] == "qwen3")
    );
    assert_eq!(content_of(&events), "Echo: hello there");
    assert!(events.len() >= 5, "one event per token: {events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    let usage = &last["usage"];
    assert_eq!(usage["completion_tokens"], 3);
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + 3
    );

    // `stream` absent streams too; the parallax variant works through the prediction query.
    let body = json!({"input": {"messages": [{"role": "user", "content": "hi"}]}, "variant": "parallax_32b_fp8"});
    let r = send(
        fake.addr(),
        Req::post("/infer_request/qwen3?prediction=completions", &body).auth(),
    )
    .await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(content_of(&r.sse_events()), "Echo: hi");

    // `stream:false` gives the JSON envelope with output.message.
    let body = json!({"input": {"messages": [{"role": "user", "content": "hi"}], "stream": false}});
    let r = send(
        fake.addr(),
        Req::post("/infer_request/llama_3_1_70b/completions", &body).auth(),
    )
    .await;
    let v = r.json();
    let request = &v["body"]["infer_requests"][0];
    assert_eq!(request["state"], "success");
    assert_eq!(request["output"]["message"], "Echo: hi");
}

#[tokio::test]
async fn sse_split_cuts_every_write_into_small_chunks() {
    let fake = fake_with(FakeConfig {
        sse_split: Some(7),
        ..FakeConfig::default()
    })
    .await;
    let body =
        json!({"input": {"messages": [{"role": "user", "content": "split me into pieces"}]}});
    let r = send(fake.addr(), Req::post("/infer_request/qwen3", &body).auth()).await;
    assert!(r.complete);
    assert!(
        r.chunks.len() > r.body.len() / 7,
        "{} chunks for {} bytes",
        r.chunks.len(),
        r.body.len()
    );
    assert!(r.chunks.iter().all(|c| !c.is_empty() && c.len() <= 7));
    assert!(
        r.chunks.iter().any(|c| c.len() < 7),
        "the last piece of a write is short"
    );
    assert_eq!(content_of(&r.sse_events()), "Echo: split me into pieces");
    assert_eq!(r.sse_data().last().unwrap(), "[DONE]");

    // Without a split, one chunk per SSE write.
    let plain = fake_with(FakeConfig::default()).await;
    let r = send(
        plain.addr(),
        Req::post("/infer_request/qwen3", &body).auth(),
    )
    .await;
    assert_eq!(r.chunks.len(), r.sse_blocks().len());
    assert!(r.chunks.iter().all(|c| c.ends_with(b"\n\n")));
}

#[tokio::test]
async fn chat_completions_speaks_bare_openai_with_reasoning() {
    let fake = fake().await;
    let ask = |extra: Value| {
        let mut body = json!({"model": "gpt_oss_120b", "messages": [{"role": "user", "content": "why is the sky blue"}], "reasoning_effort": "low"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let r = send(
        fake.addr(),
        Req::post(
            "/infer_request/chat/completions",
            &ask(json!({"stream": false, "max_tokens": 1800})),
        )
        .auth(),
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v.get("status").is_none(), "no envelope: {v}");
    assert_eq!(v["object"], "chat.completion");
    let message = &v["choices"][0]["message"];
    assert_eq!(message["content"], "Echo: why is the sky blue");
    assert!(!message["reasoning"].as_str().unwrap().is_empty());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let usage = &v["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    // The live quirk: under 200 tokens the whole budget goes to reasoning.
    let low = send(
        fake.addr(),
        Req::post(
            "/infer_request/chat/completions",
            &ask(json!({"stream": false, "max_tokens": 48})),
        )
        .auth(),
    )
    .await
    .json();
    assert_eq!(low["choices"][0]["message"]["content"], "");
    assert_eq!(low["choices"][0]["finish_reason"], "length");
    assert!(
        !low["choices"][0]["message"]["reasoning"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(low["usage"]["completion_tokens"], 48);

    // Streaming (the default): reasoning deltas first, then content.
    let s = send(
        fake.addr(),
        Req::post("/infer_request/chat/completions", &ask(json!({}))).auth(),
    )
    .await;
    assert!(
        s.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = s.sse_events();
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| {
            let d = &e["choices"][0]["delta"];
            if d["reasoning"].is_string() {
                Some("r")
            } else if d["content"].as_str().is_some_and(|c| !c.is_empty()) {
                Some("c")
            } else {
                None
            }
        })
        .collect();
    let first_content = kinds.iter().position(|k| *k == "c").unwrap();
    assert!(
        first_content > 0
            && kinds[..first_content].iter().all(|k| *k == "r")
            && kinds[first_content..].iter().all(|k| *k == "c"),
        "{kinds:?}"
    );
    assert_eq!(content_of(&events), "Echo: why is the sky blue");
    assert!(events.last().unwrap()["usage"].is_object());
    assert_eq!(s.sse_data().last().unwrap(), "[DONE]");

    let qwen = send(
        fake.addr(),
        Req::post(
            "/infer_request/chat/completions",
            &json!({"model": "qwen", "messages": [{"role": "user", "content": "x"}]}),
        )
        .auth(),
    )
    .await;
    assert_eq!(
        (qwen.status, qwen.error_message()),
        (404, "service not found".into())
    );
    let flux = send(
        fake.addr(),
        Req::post(
            "/infer_request/chat/completions",
            &json!({"model": "flux", "messages": [{"role": "user", "content": "x"}]}),
        )
        .auth(),
    )
    .await;
    assert_eq!(flux.status, 400);
    let no_model = send(
        fake.addr(),
        Req::post("/infer_request/chat/completions", &json!({"messages": []})).auth(),
    )
    .await;
    assert!(no_model.status == 400 && no_model.error_message().contains("model"));
}

#[tokio::test]
async fn presigned_urls_use_the_live_shape() {
    let fake = fake().await;
    let r = send(
        fake.addr(),
        Req::post(
            "/infer_request/whisper/input_presigned_urls",
            &json!({"input_fields": ["audio_filename"]}),
        )
        .auth(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success");
    let body = v["body"].as_object().unwrap();
    assert_eq!(body.keys().collect::<Vec<_>>(), ["audio_filename"]);
    let slot = &body["audio_filename"];
    let filename = slot["filename"].as_str().unwrap();
    let url = slot["presigned_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "https://storage.googleapis.com/theta-fake-uploads/{filename}?"
        )),
        "{url}"
    );
    assert!(url.contains("X-Goog-Signature="));

    // `{}` and no body at all mean every file field.
    for request in [
        Req::post(
            "/infer_request/image_to_image/background_removal/input_presigned_urls",
            &json!({}),
        )
        .auth(),
        Req::new(
            "POST",
            "/infer_request/image_to_image/background_removal/input_presigned_urls",
        )
        .auth(),
    ] {
        let v = send(fake.addr(), request).await.json();
        assert!(
            v["body"]["image_filename"]["presigned_url"].is_string(),
            "{v}"
        );
    }
    let second = send(
        fake.addr(),
        Req::post("/infer_request/whisper/input_presigned_urls", &json!({})).auth(),
    )
    .await
    .json();
    assert_ne!(
        second["body"]["audio_filename"]["filename"], filename,
        "fresh file names"
    );

    let bad = send(
        fake.addr(),
        Req::post(
            "/infer_request/whisper/input_presigned_urls",
            &json!({"input_fields": ["image"]}),
        )
        .auth(),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.error_message().contains("`image`"));
    let unknown = send(
        fake.addr(),
        Req::post("/infer_request/nope/input_presigned_urls", &json!({})).auth(),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.error_message()),
        (404, "service not found".into())
    );
    let no_files = send(
        fake.addr(),
        Req::post("/infer_request/flux/input_presigned_urls", &json!({})).auth(),
    )
    .await;
    assert_eq!(no_files.status, 400);
}

#[tokio::test]
async fn every_request_is_recorded_in_order_with_everything() {
    let fake = fake().await;
    send(fake.addr(), Req::get("/service/list?expand=template_id")).await;
    send(
        fake.addr(),
        Req::post(
            "/infer_request/flux?wait=2",
            &json!({"input": {"prompt": "x"}}),
        )
        .auth()
        .header("x-extra", "1"),
    )
    .await;
    send(
        fake.addr(),
        Req::get("/service/list").header("host", "other.example:8443"),
    )
    .await;
    let seen = fake.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        (
            seen[0].method.as_str(),
            seen[0].path.as_str(),
            seen[0].query.as_str()
        ),
        ("GET", "/service/list", "expand=template_id")
    );
    assert_eq!(seen[0].host, HOST);
    assert!(seen[0].header("authorization").is_none());
    let post = &seen[1];
    assert_eq!(
        (
            post.method.as_str(),
            post.path.as_str(),
            post.query.as_str()
        ),
        ("POST", "/infer_request/flux", "wait=2")
    );
    assert!(
        post.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v == &format!("Bearer {TOKEN}"))
    );
    assert!(post.headers.iter().any(|(k, v)| k == "x-extra" && v == "1"));
    assert_eq!(
        serde_json::from_slice::<Value>(&post.body).unwrap()["input"]["prompt"],
        "x"
    );
    assert_eq!(post.query_param("wait").as_deref(), Some("2"));
    assert_eq!(seen[2].host, "other.example");
    fake.clear_requests();
    assert!(fake.requests().is_empty());
    send(fake.addr(), Req::get("/service/list")).await;
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn loopback_hosts_are_on_demand_unless_disabled() {
    let fake = fake().await;
    let r = send(
        fake.addr(),
        Req::get("/service/list").header("host", fake.addr().to_string()),
    )
    .await;
    assert_eq!(r.status, 200);
    let strict = fake_with(FakeConfig {
        loopback_family: None,
        ..FakeConfig::default()
    })
    .await;
    let r = send(
        strict.addr(),
        Req::get("/service/list").header("host", strict.addr().to_string()),
    )
    .await;
    assert_eq!(r.status, 421);
}
