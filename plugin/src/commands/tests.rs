//! Command logic over an in-memory fake transport: exact requests sent, retries, dry-run, error mapping,
//! streamed chat across odd chunk splits.

use super::*;
use crate::client::Ctx;
use crate::config::Config;
use crate::events::{Event, RecordedEvents};
use crate::transport::{HttpRequest, HttpResponse, MemoryBody, Transport, TransportError};
use serde_json::json;
use std::cell::RefCell;
use std::collections::VecDeque;

enum Canned {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        chunks: Vec<usize>,
    },
    Fail(TransportError),
}

#[derive(Default)]
struct Fake {
    answers: RefCell<VecDeque<Canned>>,
    sent: RefCell<Vec<HttpRequest>>,
    sleeps: RefCell<Vec<u64>>,
}

impl Fake {
    fn reply(self, status: u16, body: &str) -> Self {
        self.reply_with(status, &[], body, vec![usize::MAX])
    }
    fn reply_with(
        self,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
        chunks: Vec<usize>,
    ) -> Self {
        self.answers.borrow_mut().push_back(Canned::Answer {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            chunks,
        });
        self
    }
    fn fail(self, e: TransportError) -> Self {
        self.answers.borrow_mut().push_back(Canned::Fail(e));
        self
    }
    fn sent(&self) -> Vec<HttpRequest> {
        self.sent.borrow().clone()
    }
    fn body(&self, i: usize) -> Value {
        serde_json::from_slice(self.sent()[i].body.as_deref().unwrap()).unwrap()
    }
}

impl Transport for Fake {
    fn send(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        self.sent.borrow_mut().push(request.clone());
        match self
            .answers
            .borrow_mut()
            .pop_front()
            .expect("an unexpected request was sent")
        {
            Canned::Answer {
                status,
                headers,
                body,
                chunks,
            } => Ok(HttpResponse {
                status,
                headers,
                body: Box::new(MemoryBody::new(body, chunks)),
            }),
            Canned::Fail(e) => Err(e),
        }
    }
    fn sleep_ms(&self, ms: u64) {
        self.sleeps.borrow_mut().push(ms);
    }
    fn random_bytes(&self, n: usize) -> Vec<u8> {
        // Deterministic in unit tests; the component reads wasi:random.
        (0..n)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
            .collect()
    }
}

fn host_config() -> Config {
    Config {
        host_injects_credentials: true,
        ..Config::default()
    }
}

/// Runs `invoke` and returns (result, events).
fn run(config: &Config, fake: &Fake, name: &str, args: Value) -> (Result<Value>, Vec<Event>) {
    let events = RecordedEvents::default();
    let ctx = Ctx {
        config,
        transport: fake,
        events: &events,
    };
    let result = invoke(&ctx, name, &args.to_string()).map(|s| serde_json::from_str(&s).unwrap());
    (result, events.0.into_inner())
}

fn field_of(e: &ThetaError) -> &str {
    match e {
        ThetaError::InvalidArgument { field, .. } => field,
        other => panic!("expected invalid-argument, got {other}"),
    }
}

fn tokens(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Token { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

const CATALOGUE: &str = r#"{"status":"success","body":{"services":[
 {"id":"srvc_1","name":"Qwen3","alias":"qwen3","state":"public","default_prediction":"completions",
  "predictions":{"completions":{"rank":1,"cost":{"input":20,"output":40},"instructions":"{\"unit\":\"1M input tokens\"}",
   "variants":["default","parallax_32b_fp8"],
   "input_vars":{"max_tokens":{"type":"integer"},"messages":{"type":"chat_array","required":true},"stream":{"type":"bool"}}}}},
 {"id":"srvc_2","name":"FLUX","alias":"flux","state":"public","default_prediction":"generate_image",
  "predictions":{"generate_image":{"cost":1,"instructions":"Generate an image from a prompt",
   "input_vars":{"guidance":{"type":"float","index":2},"prompt":{"type":"string","required":true,"index":1},"height":{"type":"int","index":1}}}},
  "variant_templates":{"quantized":{"template_id":"img_q"}}},
 {"id":"srvc_3","name":"Hidden","alias":"internal_thing","state":"internal","predictions":{}},
 {"id":"srvc_4","name":"LLaVA","alias":"llava","state":"public","predictions":{"predict":{"instructions":"\"Ask about an image\""}}},
 {"id":"srvc_5","name":"Whisper","alias":"whisper","state":"public","predictions":{"stt":{}}}
]}}"#;

#[test]
fn describe_lists_canonical_commands_with_valid_schemas() {
    let all = describe();
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names[..5],
        [
            "list_services",
            "infer",
            "get_request_status",
            "get_upload_url",
            "theta.ondemand.chat"
        ]
    );
    for family in [
        "theta.deployments.",
        "theta.inference.",
        "theta.ai.agent.",
        "theta.video.",
        "theta.billing.",
        "theta.auth.",
    ] {
        assert!(names.iter().any(|n| n.starts_with(family)), "{family}");
    }
    for c in &all {
        let schema: Value =
            serde_json::from_str(&c.args_schema).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        // Flat: model APIs refuse a combinator at the top of a tool's input schema; the rules between
        // alternative fields are in the descriptions and checked by the commands.
        for combinator in ["oneOf", "anyOf", "allOf", "not", "if"] {
            assert!(
                schema.get(combinator).is_none(),
                "{}: top-level {combinator}",
                c.name
            );
        }
        for (field, prop) in schema["properties"].as_object().unwrap() {
            assert!(
                prop["description"].is_string(),
                "{}.{field} has no description",
                c.name
            );
        }
    }
    let effect = |n: &str| all.iter().find(|c| c.name == n).unwrap().effect;
    assert_eq!(effect("list_services"), Effect::Read);
    assert_eq!(effect("infer"), Effect::Spend);
    assert_eq!(effect("get_upload_url"), Effect::Mutate);
    assert!(all[0].credentials.is_empty());
    assert_eq!(all[1].credentials, ["THETA_ONDEMAND_API_TOKEN"]);
}

#[test]
fn unknown_commands_and_bad_json_name_the_field() {
    let fake = Fake::default();
    let (r, _) = run(&host_config(), &fake, "no.such", json!({}));
    let e = r.unwrap_err();
    assert_eq!(field_of(&e), "name");
    assert!(e.to_string().contains("list_services"), "{e}");
    let events = RecordedEvents::default();
    let ctx = Ctx {
        config: &host_config(),
        transport: &fake,
        events: &events,
    };
    assert_eq!(
        field_of(&invoke(&ctx, "infer", "{not json").unwrap_err()),
        "args"
    );
    assert!(fake.sent().is_empty());
}

#[test]
fn list_services_summarises_filters_and_sends_no_credential() {
    let config = Config {
        ondemand_token: Some(("THETA_ONDEMAND_API_TOKEN".into(), "secret-token".into())),
        ..Config::default()
    };
    let fake = Fake::default().reply(200, CATALOGUE);
    let (r, _) = run(&config, &fake, "theta.ondemand.listServices", json!({}));
    let all = r.unwrap();
    let sent = &fake.sent()[0];
    assert_eq!(sent.method, "GET");
    assert_eq!(
        sent.url,
        "https://ondemand.thetaedgecloud.com/service/list?expand=template_id"
    );
    assert!(!sent.headers.iter().any(|(k, _)| k == "authorization"));
    assert!(
        sent.headers
            .contains(&("user-agent".into(), "theta-edgecloud-plugin/0.1".into()))
    );
    let aliases: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["alias"].as_str().unwrap())
        .collect();
    assert_eq!(
        aliases,
        ["qwen3", "flux", "llava", "whisper"],
        "internal services are hidden"
    );
    let qwen = &all[0];
    assert_eq!(qwen["category"], "text");
    assert_eq!(
        qwen["input_fields"],
        json!(["messages", "max_tokens", "stream"])
    );
    assert_eq!(qwen["variants"], json!(["default", "parallax_32b_fp8"]));
    // The official server's example input: typed from the declared type (no defaults here).
    assert_eq!(
        qwen["input_example"],
        json!({"max_tokens": 1, "messages": null, "stream": null})
    );
    assert_eq!(qwen["instructions"], "{\"unit\":\"1M input tokens\"}");
    assert_eq!(
        qwen["description"],
        "cost 20 input / 40 output per 1M input tokens"
    );
    let flux = &all[1];
    assert_eq!(flux["category"], "image");
    assert_eq!(flux["default_prediction"], "generate_image");
    assert_eq!(
        flux["input_fields"],
        json!(["prompt", "height", "guidance"])
    );
    assert_eq!(flux["variants"], json!(["quantized"]));
    assert_eq!(
        flux["input_example"],
        json!({"prompt": "Your prompt here", "height": null, "guidance": null})
    );
    assert_eq!(
        flux["description"],
        "Generate an image from a prompt (cost 1)"
    );
    assert_eq!(all[2]["category"], "vision");
    assert_eq!(all[2]["description"], "Ask about an image");
    assert_eq!(all[2]["default_prediction"], "predict");
    assert_eq!(all[3]["category"], "audio");

    let fake = Fake::default().reply(200, CATALOGUE);
    let (r, _) = run(
        &config,
        &fake,
        "list_services",
        json!({"category": "image"}),
    );
    assert_eq!(r.unwrap().as_array().unwrap().len(), 1);
    let (r, _) = run(
        &config,
        &Fake::default(),
        "list_services",
        json!({"category": "music"}),
    );
    assert_eq!(field_of(&r.unwrap_err()), "category");
}

#[test]
fn categories_follow_the_skill_rule() {
    use ondemand::Category::{self, *};
    for (alias, c) in [
        ("whisper", Audio),
        ("voice_cloning", Audio),
        ("kokoro_82m", Audio),
        ("flux", Image),
        ("stable_diffusion_xl_turbo", Image),
        ("esrgan", Image),
        ("instant_id", Image),
        ("image_to_image", Image),
        ("llava", Vision),
        ("blip", Vision),
        ("grounding_dino", Vision),
        ("step_video", Video),
        ("talking_head", Video),
        ("qwen3", Text),
        ("gpt_oss_120b", Text),
        ("llama_3_1_70b", Text),
        ("glm_5_3_flash", Text),
        ("minimax_m2_5", Text),
        ("something_new", Other),
    ] {
        assert_eq!(Category::of_alias(alias), c, "{alias}");
    }
}

const DONE_REQUEST: &str = r#"{"status":"success","body":{"infer_requests":[{"id":"infr_rqst_1","service_id":"srvc_2",
 "state":"success","output":{"image_url":"https://ondemand-outputs.thetaedgecloud.com/x.jpg"},
 "cost_usd":{"input":0,"output":0.01},"error_message":null,"create_time":"t0","update_time":"t1"}]}}"#;

#[test]
fn infer_sends_the_official_shape_and_maps_the_request() {
    let fake = Fake::default().reply(200, DONE_REQUEST);
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {"prompt": "a blue cloud"}, "wait": 10, "prediction": "generate_image",
               "variant": "quantized", "webhook": "https://example.com/hook"}),
    );
    let r = r.unwrap();
    assert_eq!(r["id"], "infr_rqst_1");
    assert_eq!(r["state"], "success");
    assert_eq!(
        r["output"]["image_url"],
        "https://ondemand-outputs.thetaedgecloud.com/x.jpg"
    );
    assert_eq!(r["cost_usd"], 0.01);
    assert_eq!(r["service_id"], "srvc_2");
    let sent = &fake.sent()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.url,
        "https://ondemand.thetaedgecloud.com/infer_request/flux?wait=10&prediction=generate_image"
    );
    assert_eq!(
        fake.body(0),
        json!({"input": {"prompt": "a blue cloud"}, "variant": "quantized", "webhook": "https://example.com/hook"})
    );
    assert!(
        !sent.headers.iter().any(|(k, _)| k == "authorization"),
        "the host injects it"
    );
    assert!(
        sent.timeouts.first_byte_ms >= 25_000,
        "the time limit outlasts wait"
    );

    // MCP-style payload, chat input gets stream:false, `error` spelling and numeric cost.
    let fake = Fake::default().reply(
        200,
        r#"{"infer_requests":[{"id":"r2","state":"error","error":"boom","cost_usd":0.5}]}"#,
    );
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.infer",
        json!({"service": "qwen3", "payload": {"input": {"messages": []}, "variant": "parallax_32b_fp8"}}),
    );
    let r = r.unwrap();
    assert_eq!(
        (
            r["state"].as_str(),
            r["error_message"].as_str(),
            r["cost_usd"].as_f64()
        ),
        (Some("error"), Some("boom"), Some(0.5))
    );
    assert_eq!(
        fake.body(0),
        json!({"input": {"messages": [], "stream": false}, "variant": "parallax_32b_fp8"})
    );
    assert!(fake.sent()[0].url.ends_with("/infer_request/qwen3?wait=30"));
}

#[test]
fn infer_argument_errors_name_the_field_and_send_nothing() {
    let fake = Fake::default();
    for (args, field) in [
        (json!({"input": {}}), "service"),
        (json!({"service": "flux"}), "input"),
        (json!({"service": "flux", "input": "text"}), "input"),
        (json!({"service": "flux", "input": {}, "wait": 99}), "wait"),
        (json!({"service": "flux", "input": {}, "wait": -1}), "wait"),
        (
            json!({"service": "flux", "input": {}, "webhook": "http://example.com"}),
            "webhook",
        ),
        (json!({"service": "../admin", "input": {}}), "service"),
        (
            json!({"service": "flux", "input": {}, "variant": "a/b"}),
            "variant",
        ),
        (json!({"service": "flux", "input": {}, "bogus": 1}), "bogus"),
        (json!({"service": 5, "input": {}}), "service"),
    ] {
        let (r, _) = run(&host_config(), &fake, "infer", args.clone());
        assert_eq!(field_of(&r.unwrap_err()), field, "{args}");
    }
    assert!(fake.sent().is_empty());
}

#[test]
fn no_instances_is_retried_with_backoff_then_capacity_exhausted() {
    let busy = r#"{"status":"error","message":"No instances available - try again later"}"#;
    let fake = Fake::default()
        .reply(409, busy)
        .reply(409, busy)
        .reply(200, DONE_REQUEST);
    let (r, events) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    );
    assert_eq!(r.unwrap()["state"], "success");
    assert_eq!(fake.sent().len(), 3);
    assert_eq!(*fake.sleeps.borrow(), [250, 500]);
    let attempts: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);

    let fake = Fake::default()
        .reply(409, busy)
        .reply(409, busy)
        .reply(409, busy);
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    );
    match r.unwrap_err() {
        ThetaError::CapacityExhausted {
            service,
            attempts,
            message,
        } => {
            assert_eq!((service.as_str(), attempts), ("flux", 3));
            assert!(message.contains("No instances"));
        }
        e => panic!("{e}"),
    }
}

#[test]
fn paid_posts_are_not_retried_on_5xx_or_broken_connections() {
    let fake = Fake::default().reply(502, "bad gateway");
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {}}),
    );
    assert!(matches!(
        r.unwrap_err(),
        ThetaError::Upstream {
            status: 502,
            retriable: true,
            ..
        }
    ));
    assert_eq!(fake.sent().len(), 1);

    let fake = Fake::default().fail(TransportError::Failed("connection reset".into()));
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {}}),
    );
    assert!(matches!(r.unwrap_err(), ThetaError::Transport { .. }));
    assert_eq!(fake.sent().len(), 1);
}

#[test]
fn a_host_that_says_whether_the_request_left_decides_retries_of_paid_posts() {
    // Never sent (the host says so): sent again, even a paid POST.
    let fake = Fake::default()
        .fail(TransportError::NotSent("connection refused".into()))
        .reply(200, DONE_REQUEST);
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {}}),
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(fake.sent().len(), 2);

    // Sent, then the exchange broke: not sent again, and the error says it may have run.
    let fake = Fake::default().fail(TransportError::AfterSend("connection reset".into()));
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {}}),
    );
    match r.unwrap_err() {
        ThetaError::Transport { message } => {
            assert!(message.ends_with(crate::client::SENT_NOTE), "{message}")
        }
        e => panic!("{e}"),
    }
    assert_eq!(fake.sent().len(), 1);

    // A read that broke after it was sent is simply sent again.
    let fake = Fake::default()
        .fail(TransportError::AfterSend("connection reset".into()))
        .reply(200, DONE_REQUEST);
    let (r, _) = run(
        &host_config(),
        &fake,
        "get_request_status",
        json!({"requestId": "infr_rqst_1"}),
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(fake.sent().len(), 2);
}

#[test]
fn reads_are_retried_and_retry_after_is_honoured() {
    let fake = Fake::default()
        .reply(503, "")
        .fail(TransportError::Failed("reset".into()))
        .reply(200, DONE_REQUEST);
    let (r, _) = run(
        &host_config(),
        &fake,
        "get_request_status",
        json!({"requestId": "infr_rqst_1"}),
    );
    assert_eq!(r.unwrap()["id"], "infr_rqst_1");
    assert_eq!(
        fake.sent()[0].url,
        "https://ondemand.thetaedgecloud.com/infer_request/infr_rqst_1"
    );
    assert_eq!(fake.sent().len(), 3);

    let fake = Fake::default()
        .reply_with(
            429,
            &[("Retry-After", "2")],
            r#"{"message":"slow down"}"#,
            vec![usize::MAX],
        )
        .reply(200, DONE_REQUEST);
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {}}),
    );
    assert!(r.is_ok());
    assert_eq!(*fake.sleeps.borrow(), [2000]);

    // A timeout is reported with its limit and not retried.
    let fake = Fake::default().fail(TransportError::Timeout(
        "no response within 20000 ms".into(),
    ));
    let (r, _) = run(&host_config(), &fake, "list_services", json!({}));
    assert!(matches!(r.unwrap_err(), ThetaError::Timeout { message } if message.contains("20000")));
    assert_eq!(fake.sent().len(), 1);
}

#[test]
fn dry_run_previews_with_credentials_redacted_and_sends_nothing() {
    let fake = Fake::default();
    let own = Config {
        dry_run: true,
        ondemand_token: Some(("THETA_ONDEMAND_API_TOKEN".into(), "tok-123456".into())),
        ..Config::default()
    };
    let (r, _) = run(
        &own,
        &fake,
        "infer",
        json!({"service": "flux", "input": {"prompt": "x"}}),
    );
    match r.unwrap_err() {
        ThetaError::DryRun { preview } => {
            assert_eq!(preview.method, "POST");
            assert_eq!(
                preview.url,
                "https://ondemand.thetaedgecloud.com/infer_request/flux?wait=30"
            );
            assert!(
                preview
                    .headers
                    .contains(&("authorization".into(), "[redacted]".into()))
            );
            assert!(!format!("{preview:?}").contains("tok-123456"));
            assert_eq!(preview.body.as_deref(), Some(r#"{"input":{"prompt":"x"}}"#));
        }
        e => panic!("{e}"),
    }
    let injected = Config {
        dry_run: true,
        ..host_config()
    };
    let (r, _) = run(
        &injected,
        &fake,
        "get_upload_url",
        json!({"service": "whisper", "input_field": "audio_filename"}),
    );
    match r.unwrap_err() {
        ThetaError::DryRun { preview } => {
            assert!(
                preview
                    .headers
                    .contains(&("authorization".into(), "[injected by host]".into()))
            );
            assert!(
                preview
                    .url
                    .ends_with("/infer_request/whisper/input_presigned_urls")
            );
        }
        e => panic!("{e}"),
    }
    assert!(fake.sent().is_empty());

    // The host refusing under dry-run gives the same preview.
    let fake = Fake::default().fail(TransportError::DryRun);
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(
        matches!(r.unwrap_err(), ThetaError::DryRun { preview } if preview.url.contains("/infer_request/qwen3"))
    );
}

#[test]
fn credentials_missing_refused_or_wrong_are_named() {
    let fake = Fake::default();
    let (r, _) = run(
        &Config::default(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {}}),
    );
    assert!(
        matches!(r.unwrap_err(), ThetaError::MissingCredential { variable, .. } if variable == "THETA_ONDEMAND_API_TOKEN")
    );
    assert!(fake.sent().is_empty());

    let fake = Fake::default().fail(TransportError::MissingCredential {
        variable: "THETA_ONDEMAND_API_TOKEN".into(),
        hint: "h".into(),
    });
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "flux", "input": {}}),
    );
    assert!(matches!(
        r.unwrap_err(),
        ThetaError::MissingCredential { .. }
    ));

    let fake = Fake::default().fail(TransportError::Denied("host not allowed".into()));
    let (r, _) = run(&host_config(), &fake, "list_services", json!({}));
    assert!(
        matches!(r.unwrap_err(), ThetaError::Denied { reason } if reason == "host not allowed")
    );

    let own = Config {
        ondemand_token: Some(("THETA_API_KEY".into(), "wrong-token".into())),
        ..Config::default()
    };
    let fake = Fake::default().reply(401, r#"{"message":"Invalid access token wrong-token"}"#);
    let (r, _) = run(
        &own,
        &fake,
        "get_request_status",
        json!({"request_id": "x"}),
    );
    match r.unwrap_err() {
        ThetaError::Upstream {
            status: 401,
            message,
            retriable: false,
        } => {
            assert!(
                message.contains("THETA_API_KEY") && message.contains("check"),
                "{message}"
            );
            assert!(!message.contains("wrong-token"), "{message}");
        }
        e => panic!("{e}"),
    }
    assert!(
        fake.sent()[0]
            .headers
            .contains(&("authorization".into(), "Bearer wrong-token".into()))
    );
}

#[test]
fn unknown_service_and_bad_json_are_clear() {
    let fake = Fake::default().reply(404, r#"{"status":"error","message":"service not found"}"#);
    let (r, _) = run(
        &host_config(),
        &fake,
        "infer",
        json!({"service": "no_such_model", "input": {}}),
    );
    match r.unwrap_err() {
        ThetaError::Upstream {
            status: 404,
            message,
            ..
        } => {
            assert!(
                message.contains("`no_such_model`") && message.contains("list_services"),
                "{message}"
            )
        }
        e => panic!("{e}"),
    }
    let fake = Fake::default().reply(200, "<html>");
    let (r, _) = run(&host_config(), &fake, "list_services", json!({}));
    assert!(
        matches!(r.unwrap_err(), ThetaError::Transport { message } if message.contains("not JSON"))
    );
    let fake = Fake::default().reply(
        200,
        r#"{"status":"error","message":"10 minute quota reached"}"#,
    );
    let (r, _) = run(
        &host_config(),
        &fake,
        "get_request_status",
        json!({"request_id": "x"}),
    );
    assert!(
        matches!(r.unwrap_err(), ThetaError::Upstream { message, .. } if message.contains("quota"))
    );
}

#[test]
fn upload_urls_accept_both_answer_shapes_and_all_spellings() {
    let live = r#"{"status":"success","body":{"audio_filename":{"presigned_url":"https://storage.googleapis.com/b/f1?sig","filename":"f1.wav"}}}"#;
    let mcp = r#"{"status":"success","body":{"urls":{"audio_filename":{"upload_url":"https://storage.googleapis.com/b/f2?sig","filename":"f2.wav"}}}}"#;
    for (answer, args, file) in [
        (
            live,
            json!({"service": "whisper", "input_field": "audio_filename"}),
            "f1.wav",
        ),
        (
            mcp,
            json!({"service": "whisper", "inputFields": ["audio_filename"]}),
            "f2.wav",
        ),
        (
            live,
            json!({"service": "whisper", "input_fields": ["audio_filename", "audio_filename"]}),
            "f1.wav",
        ),
    ] {
        let fake = Fake::default().reply(200, answer);
        let (r, _) = run(
            &host_config(),
            &fake,
            "theta.ondemand.inputPresignedUrls",
            args.clone(),
        );
        let r = r.unwrap();
        assert_eq!(r.as_array().unwrap().len(), 1, "{args}");
        assert_eq!(r[0]["field"], "audio_filename");
        assert!(
            r[0]["upload_url"]
                .as_str()
                .unwrap()
                .starts_with("https://storage.googleapis.com/")
        );
        assert_eq!(r[0]["filename"], file);
        assert_eq!(fake.body(0), json!({"input_fields": ["audio_filename"]}));
    }
    let fake = Fake::default().reply(200, live);
    let (r, _) = run(
        &host_config(),
        &fake,
        "get_upload_url",
        json!({"service": "image_to_image", "input_field": "audio_filename", "prediction": "background_removal"}),
    );
    assert!(r.is_ok());
    assert!(
        fake.sent()[0]
            .url
            .ends_with("/infer_request/image_to_image/background_removal/input_presigned_urls")
    );
    for (args, field) in [
        (json!({"service": "whisper"}), "input_fields"),
        (
            json!({"service": "whisper", "input_fields": []}),
            "input_fields",
        ),
        (
            json!({"service": "whisper", "input_fields": [1]}),
            "input_fields[0]",
        ),
        (
            json!({"service": "whisper", "input_field": "a b"}),
            "input_fields",
        ),
    ] {
        let (r, _) = run(
            &host_config(),
            &Fake::default(),
            "get_upload_url",
            args.clone(),
        );
        assert_eq!(field_of(&r.unwrap_err()), field, "{args}");
    }
}

const QWEN_STREAM: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\", 世界\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn qwen3_chat_streams_tokens_across_odd_chunk_splits() {
    for chunks in [
        vec![1],
        vec![2],
        vec![3, 7],
        vec![13, 1, 5],
        vec![usize::MAX],
    ] {
        let fake = Fake::default().reply_with(
            200,
            &[("content-type", "text/event-stream")],
            QWEN_STREAM,
            chunks.clone(),
        );
        let (r, events) = run(
            &host_config(),
            &fake,
            "theta.ondemand.chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        );
        let r = r.unwrap();
        assert_eq!(r["content"], "Héllo, 世界", "{chunks:?}");
        assert_eq!(tokens(&events), "Héllo, 世界");
        assert_eq!(r["streamed"], true);
        assert_eq!(r["service"], "qwen3");
        assert_eq!(r["finish_reason"], "stop");
        assert_eq!(
            r["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 3})
        );
        assert!(r["note"].is_null());
    }
    let fake = Fake::default().reply(200, QWEN_STREAM);
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hi"}], "variant": "parallax_32b_fp8"}),
    );
    assert!(r.is_ok(), "SSE is recognised without a content type");
    let sent = &fake.sent()[0];
    assert_eq!(
        sent.url,
        "https://ondemand.thetaedgecloud.com/infer_request/qwen3?prediction=completions&wait=60"
    );
    assert_eq!(sent.timeouts.first_byte_ms, 120_000);
    assert_eq!(
        fake.body(0),
        json!({"input": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 500, "temperature": 0.5, "top_p": 0.7, "stream": true},
               "variant": "parallax_32b_fp8"})
    );
}

#[test]
fn a_cut_stream_is_an_error_not_a_short_answer() {
    let cut = &QWEN_STREAM[..QWEN_STREAM.find(", 世界").unwrap() + 5];
    let fake =
        Fake::default().reply_with(200, &[("content-type", "text/event-stream")], cut, vec![5]);
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(
        matches!(r.unwrap_err(), ThetaError::Transport { message } if message.contains("stream was cut after 1 tokens"))
    );
    // Without [DONE] but with a finish_reason the answer is complete.
    let done_less = QWEN_STREAM.replace("data: [DONE]\n\n", "");
    let fake = Fake::default().reply(200, &done_less);
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.unwrap()["content"], "Héllo, 世界");
}

#[test]
fn sse_framings_are_read_whatever_the_content_type_says() {
    let chat = |content_type: Option<&str>, body: &str| {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| ("content-type", t))
            .into_iter()
            .collect();
        let fake = Fake::default().reply_with(200, &headers, body, vec![3]);
        run(
            &host_config(),
            &fake,
            "theta.ondemand.chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .0
    };
    // The same stream labelled JSON, unlabelled, with CRLF everywhere, and with a multi-line `data:`.
    let crlf = QWEN_STREAM.replace("\r\n", "\n").replace('\n', "\r\n");
    let multi_line = QWEN_STREAM.replace(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"}",
        "data: {\"id\":\"c1\",\ndata: \"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"}",
    );
    for (label, content_type, body) in [
        (
            "labelled JSON",
            Some("application/json"),
            QWEN_STREAM.to_owned(),
        ),
        ("no content type", None, QWEN_STREAM.to_owned()),
        ("CRLF", Some("text/event-stream"), crlf),
        ("multi-line data", Some("text/event-stream"), multi_line),
    ] {
        let r = chat(content_type, &body).unwrap_or_else(|e| panic!("{label}: {e:?}"));
        assert_eq!(r["content"], "Héllo, 世界", "{label}");
        assert!(r["note"].is_null(), "{label}: {r}");
    }
    // An `event: error` frame ends the stream with its message.
    let error_event = QWEN_STREAM.replace(
        "data: [DONE]",
        "event: error\ndata: {\"message\":\"model worker crashed\"}",
    );
    let e = chat(Some("text/event-stream"), &error_event).unwrap_err();
    assert!(
        matches!(&e, ThetaError::Upstream { message, .. } if message.contains("model worker crashed")),
        "{e:?}"
    );
    // A JSON error object where the stream should be.
    let e = chat(
        Some("text/event-stream"),
        r#"{"status":"error","message":"No instances available - try again later"}"#,
    )
    .unwrap_err();
    assert!(
        matches!(&e, ThetaError::Upstream { message, .. } if message.contains("No instances available")),
        "{e:?}"
    );
    // A clean end without [DONE] and without a finish_reason: complete, with a note.
    let open_ended = QWEN_STREAM
        .replace("data: [DONE]\n\n", "")
        .replace("\"finish_reason\":\"stop\"", "\"finish_reason\":null");
    let r = chat(Some("text/event-stream"), &open_ended).unwrap();
    assert_eq!(r["content"], "Héllo, 世界");
    assert!(
        r["note"]
            .as_str()
            .unwrap_or_default()
            .contains("without [DONE]"),
        "{r}"
    );
}

#[test]
fn chat_json_answers_and_gpt_oss_reasoning() {
    let qwen_json = r#"{"status":"success","body":{"infer_requests":[{"id":"r","state":"success","output":{"message":"Hi there"}}]}}"#;
    let fake = Fake::default().reply_with(
        200,
        &[("content-type", "application/json")],
        qwen_json,
        vec![4],
    );
    let (r, events) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"messages": [{"role": "user", "content": "hi"}], "stream": false}),
    );
    let r = r.unwrap();
    assert_eq!(
        (r["content"].as_str(), r["streamed"].as_bool()),
        (Some("Hi there"), Some(false))
    );
    assert!(tokens(&events).is_empty());

    let gpt = r#"{"id":"x","choices":[{"message":{"content":"Rayleigh scattering.","reasoning":"Think about light."},"finish_reason":"stop"}],"usage":{"prompt_tokens":75,"completion_tokens":76,"total_tokens":151}}"#;
    let fake = Fake::default().reply(200, gpt);
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"service": "gpt_oss_120b", "messages": [{"role": "user", "content": "why"}]}),
    );
    let r = r.unwrap();
    assert_eq!(r["content"], "Rayleigh scattering.");
    assert_eq!(r["reasoning"], "Think about light.");
    assert_eq!(r["usage"]["completion_tokens"], 76);
    assert_eq!(
        fake.sent()[0].url,
        "https://ondemand.thetaedgecloud.com/infer_request/chat/completions"
    );
    assert_eq!(
        fake.body(0),
        json!({"model": "gpt_oss_120b", "messages": [{"role": "user", "content": "why"}], "max_tokens": 1800, "reasoning_effort": "low", "stream": false})
    );

    let empty = r#"{"choices":[{"message":{"content":"","reasoning":"Hmm, let me think"},"finish_reason":"length"}]}"#;
    let fake = Fake::default().reply(200, empty);
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"service": "gpt_oss_120b", "max_tokens": 48, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let r = r.unwrap();
    assert_eq!(r["content"], "");
    let note = r["note"].as_str().unwrap();
    assert!(
        note.contains("max_tokens") && note.contains("length") && note.contains("48"),
        "{note}"
    );

    let gpt_stream = concat!(
        "data: {\"choices\":[{\"delta\":{\"reasoning\":\"Think\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Blue\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
    );
    let fake = Fake::default().reply_with(
        200,
        &[("content-type", "text/event-stream; charset=utf-8")],
        gpt_stream,
        vec![3],
    );
    let (r, events) = run(
        &host_config(),
        &fake,
        "theta.ondemand.chat",
        json!({"service": "gpt_oss_120b", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let r = r.unwrap();
    assert_eq!(
        (r["content"].as_str(), r["reasoning"].as_str()),
        (Some("Blue"), Some("Think"))
    );
    assert!(events.contains(&Event::Reasoning {
        text: "Think".into()
    }));
    assert_eq!(fake.body(0)["stream"], true);
}

#[test]
fn chat_argument_errors_name_the_field() {
    for (args, field) in [
        (json!({}), "messages"),
        (json!({"messages": []}), "messages"),
        (json!({"messages": "hi"}), "messages"),
        (
            json!({"messages": [{"role": "king", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": 3}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3}),
            "temperature",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "top_p": -0.1}),
            "top_p",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}),
            "reasoning_effort",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "wait": 61}),
            "wait",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
            "stream",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "service": "a/b"}),
            "service",
        ),
    ] {
        let (r, _) = run(
            &host_config(),
            &Fake::default(),
            "theta.ondemand.chat",
            args.clone(),
        );
        assert_eq!(field_of(&r.unwrap_err()), field, "{args}");
    }
}

#[test]
fn example_inputs_are_typed_like_the_official_servers() {
    use super::ondemand::example_value;
    let cases = [
        (
            "prompt",
            json!({"type": "string"}),
            json!("Your prompt here"),
        ),
        (
            "audio_url",
            json!({"type": "string"}),
            json!("https://example.com/file"),
        ),
        (
            "voice",
            json!({"type": "string", "default": "af_sky"}),
            json!("af_sky"),
        ),
        ("language", json!({"type": "string"}), json!("string value")),
        (
            "height",
            json!({"type": "integer", "default": 1024}),
            json!(1024),
        ),
        ("seed", json!({"type": "integer"}), json!(1)),
        ("speed", json!({"type": "float", "default": 1.0}), json!(1)),
        (
            "temperature",
            json!({"type": "float", "default": 0.7}),
            json!(0.7),
        ),
        (
            "guidance",
            json!({"type": "float", "default": 0.0}),
            Value::Null,
        ),
        (
            "stream",
            json!({"type": "bool", "default": true}),
            json!(true),
        ),
        ("flag", json!({"type": "boolean"}), json!(false)),
        ("list", json!({"type": "array"}), json!([])),
        ("input_img", json!({"type": "file"}), Value::Null),
    ];
    for (name, var, want) in cases {
        assert_eq!(example_value(name, &var), want, "{name}");
    }
}

#[test]
fn waiting_windows_fit_the_hosts_wall_clock_or_are_refused_naming_it() {
    let fake = Fake::default();
    let events = RecordedEvents::default();
    let config = Config {
        call_wall_clock_ms: Some(60_000),
        ..host_config()
    };
    let ctx = Ctx {
        config: &config,
        transport: &fake,
        events: &events,
    };
    use super::readiness::window_ms;
    // 60 s wall clock: 12 s kept for the call's requests, 48 s for its windows.
    assert_eq!(window_ms(&ctx, "w", Some(48.0), 120.0, 0).unwrap(), 48_000);
    assert_eq!(window_ms(&ctx, "w", None, 120.0, 0).unwrap(), 48_000);
    assert_eq!(window_ms(&ctx, "w", None, 120.0, 40_000).unwrap(), 8_000);
    let e = window_ms(&ctx, "w", Some(49.0), 120.0, 0).unwrap_err();
    assert_eq!(field_of(&e), "w");
    assert!(e.to_string().contains("THETA_CALL_WALL_CLOCK_MS"), "{e}");
    assert!(window_ms(&ctx, "w", Some(10.0), 120.0, 40_000).is_err());
    // A host that says nothing: the schema's bounds only.
    let ctx = Ctx {
        config: &host_config(),
        transport: &fake,
        events: &events,
    };
    assert_eq!(window_ms(&ctx, "w", None, 120.0, 0).unwrap(), 120_000);
    assert!(window_ms(&ctx, "w", Some(1801.0), 120.0, 0).is_err());
    assert!(fake.sent().is_empty());
}

#[test]
fn a_window_too_long_for_validate_disposable_sends_nothing() {
    let fake = Fake::default();
    let config = Config {
        call_wall_clock_ms: Some(300_000),
        project_id: Some("prj_x".into()),
        ..host_config()
    };
    let (r, _) = run(
        &config,
        &fake,
        "theta.deployments.validateDisposable",
        json!({"template_id": "img_x", "ready_timeout_seconds": 600}),
    );
    assert_eq!(field_of(&r.unwrap_err()), "ready_timeout_seconds");
    let (r, _) = run(
        &config,
        &fake,
        "theta.deployments.validateDisposable",
        json!({"template_id": "img_x", "auth_password": "only-one"}),
    );
    assert_eq!(field_of(&r.unwrap_err()), "auth_password");
    assert!(fake.sent().is_empty());
}

const SIGNED: &str = "https://storage.googleapis.com/b/f1_input_img?X-Goog-Credential=acct%2F1&X-Goog-Signature=deadbeef";

#[test]
fn upload_asks_for_the_url_then_puts_the_bytes_to_exactly_it() {
    let answer = format!(
        r#"{{"status":"success","body":{{"input_img":{{"presigned_url":"{SIGNED}","filename":"f1_input_img"}}}}}}"#
    );
    let fake = Fake::default().reply(200, &answer).reply(200, "");
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.upload",
        json!({"service": "blip", "input_field": "input_img", "data_base64": "aGVsbG8=", "content_type": "image/png"}),
    );
    let r = r.unwrap();
    assert_eq!(
        r,
        json!({"service": "blip", "input_field": "input_img", "filename": "f1_input_img",
               "uploaded_bytes": 5, "input": {"input_img": "f1_input_img"}})
    );
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert!(
        sent[0]
            .url
            .ends_with("/infer_request/blip/input_presigned_urls")
    );
    assert_eq!(
        (sent[1].method.as_str(), sent[1].url.as_str()),
        ("PUT", SIGNED)
    );
    assert_eq!(sent[1].body.as_deref(), Some(&b"hello"[..]));
    assert!(
        sent[1]
            .headers
            .iter()
            .all(|(k, _)| !k.eq_ignore_ascii_case("authorization"))
    );
}

#[test]
fn upload_refusals_name_the_cap_and_never_the_signature() {
    let big = "A".repeat((upload::MAX_UPLOAD_BYTES / 3 + 1) * 4);
    let fake = Fake::default();
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.upload",
        json!({"service": "blip", "input_field": "input_img", "data_base64": big}),
    );
    match r.unwrap_err() {
        ThetaError::InvalidArgument { field, reason } => {
            assert_eq!(field, "data_base64");
            assert!(reason.contains("8388608"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.sent().is_empty());
    for bad in ["a$bc", "abc=d", "a"] {
        assert!(upload::decode_base64(bad).is_err(), "{bad}");
    }
    assert_eq!(upload::decode_base64("aGk").unwrap(), b"hi");

    let answer = format!(r#"{{"input_img":{{"presigned_url":"{SIGNED}","filename":"f1"}}}}"#);
    let xml = format!(
        "<?xml version='1.0'?><Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message><StringToSign>{SIGNED}</StringToSign></Error>"
    );
    let fake = Fake::default().reply(200, &answer).reply(403, &xml);
    let (r, _) = run(
        &host_config(),
        &fake,
        "theta.ondemand.upload",
        json!({"service": "blip", "input_field": "input_img", "data_base64": "aGk="}),
    );
    let text = format!("{:?}", r.unwrap_err());
    assert!(text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(
        text.contains("https://storage.googleapis.com/b/f1_input_img"),
        "{text}"
    );
    assert!(
        !text.contains("deadbeef") && !text.contains("X-Goog"),
        "{text}"
    );
    assert_eq!(fake.sent().len(), 2, "a PUT is never retried");
}
