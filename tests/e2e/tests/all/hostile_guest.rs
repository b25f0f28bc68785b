//! A hostile component in the real host: every escape attempt is refused by the host, and the test
//! asserts which refusal came back and that nothing reached the (fake) network.

use crate::common::*;
use fake_edgecloud::{Fault, FaultKind, RouteMatch};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use theta_host::credentials::{
    CONTROLLER_KEY_VAR, Credentials, INFERENCE_TOKEN_VAR, ONDEMAND_TOKEN_VARS,
};
use theta_host::net::Upstream;
use theta_host::{HostConfig, Runtime};

async fn hostile(cfg: HostConfig) -> Runtime {
    Runtime::new(cfg, &hostile_wasm())
        .await
        .expect("hostile guest loads")
}

/// The real command whose route a raw request would match (the hostile guest is called as it), so
/// requests the route table allows get through and the rest are refused by the other rules.
pub fn command_for(args: &Value) -> &'static str {
    let method = args["method"].as_str().unwrap_or("GET");
    let path = args["path"].as_str().unwrap_or("/");
    match (method, path) {
        ("GET", p) if p.starts_with("/infer_request/") => "get_request_status",
        (_, p) if p.starts_with("/infer_request/") => "infer",
        (_, p) if p.starts_with("/deployment") => "theta.deployments.list",
        (_, p) if p.starts_with("/balance") => "theta.billing.balance",
        _ => "list_services",
    }
}

async fn fetch(rt: &Runtime, args: Value) -> Value {
    let out = rt
        .invoke(command_for(&args), &args.to_string(), Arc::new(|_| {}))
        .await
        .expect("host survives");
    serde_json::from_str(&out.expect("hostile fetch reports its outcome")).unwrap()
}

fn req(scheme: &str, authority: &str, path: &str) -> Value {
    json!({"scheme": scheme, "authority": authority, "path": path, "method": "GET"})
}

/// What a case must produce.
enum Expect {
    /// The request reached the fake and got this status.
    Status(u16),
    /// Refused before the network; the outcome detail contains this text.
    Refused(&'static str),
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_are_refused_by_the_host() {
    let fake = fake().await;
    let rt = hostile(config_for(&fake)).await;
    let h = "ondemand.thetaedgecloud.com";
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "baseline: allowed host, HTTPS",
            req("https", h, "/service/list"),
            Expect::Status(200),
        ),
        (
            "mixed case is the same host",
            req("https", "OnDemand.ThetaEdgeCloud.COM", "/service/list"),
            Expect::Status(200),
        ),
        (
            "plain http",
            req("http", h, "/service/list"),
            Expect::Refused("HTTPS only"),
        ),
        ("other scheme", req("gopher", h, "/"), Expect::Refused("")),
        (
            "non-allowlisted host",
            req("https", "example.com", "/"),
            Expect::Refused("not an allowed Theta host"),
        ),
        (
            "suffix trick",
            req("https", "thetaedgecloud.com.evil.example", "/"),
            Expect::Refused("not an allowed Theta host"),
        ),
        (
            "lookalike prefix",
            req("https", "evilthetaedgecloud.com", "/"),
            Expect::Refused("not an allowed Theta host"),
        ),
        (
            "lookalike tld",
            req("https", "ondemand.thetaedgecloud.co", "/"),
            Expect::Refused("not an allowed Theta host"),
        ),
        (
            "IPv4 literal",
            req("https", "127.0.0.1", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "metadata IP",
            req("https", "169.254.169.254", "/latest/meta-data"),
            Expect::Refused("IP literal"),
        ),
        (
            "decimal IPv4",
            req("https", "2130706433", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "hex IPv4",
            req("https", "0x7f000001", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "octal IPv4",
            req("https", "0177.0.0.1", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "short IPv4",
            req("https", "127.1", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "IPv6 loopback",
            req("https", "[::1]", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "IPv4-mapped IPv6",
            req("https", "[::ffff:127.0.0.1]", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "userinfo",
            req("https", "user:pw@ondemand.thetaedgecloud.com", "/"),
            Expect::Refused(""),
        ),
        (
            "userinfo host swap",
            req("https", "ondemand.thetaedgecloud.com@evil.example", "/"),
            Expect::Refused(""),
        ),
        (
            "trailing dot",
            req("https", "ondemand.thetaedgecloud.com.", "/service/list"),
            Expect::Refused("ends with a dot"),
        ),
        (
            "non-default port",
            req("https", "ondemand.thetaedgecloud.com:8443", "/"),
            Expect::Refused("port 8443"),
        ),
        (
            "port 80 over https",
            req("https", "ondemand.thetaedgecloud.com:80", "/"),
            Expect::Refused("port 80"),
        ),
        (
            "very long URL",
            req("https", h, &format!("/service/{}", "a".repeat(10_000))),
            Expect::Refused("limit is"),
        ),
        (
            "CONNECT",
            json!({"scheme":"https","authority":h,"path":"/","method":"CONNECT"}),
            Expect::Refused("method CONNECT"),
        ),
        (
            "TRACE",
            json!({"scheme":"https","authority":h,"path":"/","method":"TRACE"}),
            Expect::Refused("method TRACE"),
        ),
        (
            "own Authorization header",
            json!({"scheme":"https","authority":h,"path":"/service/list","hname":"authorization","hvalue":"Bearer stolen"}),
            Expect::Refused("Forbidden"),
        ),
        (
            "own x-api-key header",
            json!({"scheme":"https","authority":h,"path":"/","hname":"x-api-key","hvalue":"k"}),
            Expect::Refused("Forbidden"),
        ),
        (
            "own Host header",
            json!({"scheme":"https","authority":h,"path":"/","hname":"host","hvalue":"evil.example"}),
            Expect::Refused("Forbidden"),
        ),
        (
            "unicode host",
            req("https", "ondemand.thetaedgecloud.com\u{2024}evil", "/"),
            Expect::Refused(""),
        ),
        (
            "percent-encoded host",
            req("https", "ondemand%2ethetaedgecloud.com", "/"),
            Expect::Refused(""),
        ),
        (
            "unspecified IPv4",
            req("https", "0.0.0.0", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "unspecified IPv6",
            req("https", "[::]", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "hex-mapped IPv6",
            req("https", "[::ffff:7f00:1]", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "IPv6 literal with port",
            req("https", "[::1]:443", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "IPv6 zone id",
            req("https", "[fe80::1%25eth0]", "/"),
            Expect::Refused(""),
        ),
        (
            "zero-padded IPv4",
            req("https", "127.000.000.001", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "mixed-radix IPv4",
            req("https", "0x7f.0.0.1", "/"),
            Expect::Refused("IP literal"),
        ),
        (
            "localhost",
            req("https", "localhost", "/"),
            Expect::Refused("not an allowed Theta host"),
        ),
        (
            "wildcard label",
            req("https", "*.thetaedgecloud.com", "/"),
            Expect::Refused(""),
        ),
        (
            "empty label",
            req("https", "ondemand..thetaedgecloud.com", "/"),
            Expect::Refused(""),
        ),
        (
            "suffix trick with port",
            req("https", "ondemand.thetaedgecloud.com.evil.example:443", "/"),
            Expect::Refused("not an allowed Theta host"),
        ),
        (
            "lookalike of the second domain",
            req("https", "x.onthetaedgecloud.com.evil.example", "/"),
            Expect::Refused("not an allowed Theta host"),
        ),
        (
            "empty authority",
            req("https", "", "/"),
            Expect::Refused(""),
        ),
        ("ftp scheme", req("ftp", h, "/"), Expect::Refused("")),
        (
            "CRLF in path",
            req("https", h, "/x\r\nHost: evil.example"),
            Expect::Refused(""),
        ),
        (
            "own Proxy-Authorization header",
            json!({"scheme":"https","authority":h,"path":"/","hname":"proxy-authorization","hvalue":"Basic eA=="}),
            Expect::Refused("Forbidden"),
        ),
        (
            "own Cookie header",
            json!({"scheme":"https","authority":h,"path":"/","hname":"cookie","hvalue":"session=1"}),
            Expect::Refused("Forbidden"),
        ),
        (
            "own video service-account header",
            json!({"scheme":"https","authority":h,"path":"/","hname":"x-tva-sa-secret","hvalue":"s"}),
            Expect::Refused("Forbidden"),
        ),
        (
            "mixed-case Authorization header",
            json!({"scheme":"https","authority":h,"path":"/service/list","hname":"AuThOrIzAtIoN","hvalue":"Bearer stolen"}),
            Expect::Refused("Forbidden"),
        ),
        (
            "CRLF in a header value",
            json!({"scheme":"https","authority":h,"path":"/","hname":"x-note","hvalue":"a\r\nauthorization: Bearer x"}),
            Expect::Refused(""),
        ),
    ];
    let (mut tried, mut refused) = (0, 0);
    for (name, args, expect) in cases {
        tried += 1;
        let before = fake.requests().len();
        let out = fetch(&rt, args).await;
        let after = fake.requests().len();
        match expect {
            Expect::Status(status) => {
                assert_eq!(out["outcome"], "response", "{name}: {out}");
                assert_eq!(out["status"], status, "{name}: {out}");
                assert_eq!(
                    after,
                    before + 1,
                    "{name}: the fake should see exactly one request"
                );
            }
            Expect::Refused(why) => {
                refused += 1;
                assert_ne!(out["outcome"], "response", "{name} got through: {out}");
                let detail = out["detail"].as_str().unwrap_or_default();
                assert!(detail.contains(why), "{name}: expected `{why}` in {out}");
                assert_eq!(
                    after, before,
                    "{name}: a refused request reached the network"
                );
            }
        }
    }
    println!(
        "hostile battery (URL and header forms): {tried} cases tried, {refused} refused, {} allowed as expected",
        tried - refused
    );
    // Every refusal is in the audit trail, none carries the token.
    let audit = audit_text(&rt);
    assert!(audit.contains("\"decision\":\"denied\""), "{audit}");
    assert!(!audit.contains(TOKEN), "the audit trail leaked the token");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_upstreams_and_bodies_are_contained() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.limits.max_request_time = std::time::Duration::from_millis(400);
    cfg.limits.max_request_bytes = 1 << 20;
    cfg.limits.max_response_bytes = 2 << 20;
    let rt = hostile(cfg).await;
    let h = "ondemand.thetaedgecloud.com";
    let mut tried = 0;

    // A redirect off the allowlist is handed to the guest as a response, never followed by the host.
    tried += 1;
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::Redirect {
            status: 302,
            location: "http://127.0.0.1:9/steal".into(),
        },
    ));
    fake.clear_requests();
    let out = fetch(&rt, req("https", h, "/service/list")).await;
    assert_eq!(out["status"], 302, "{out}");
    assert_eq!(fake.requests().len(), 1, "the host followed a redirect");

    // A request body over the limit is cut off at the host.
    tried += 1;
    let out = fetch(
        &rt,
        json!({"scheme":"https","authority":h,"path":"/infer_request/flux","method":"POST",
               "body": "x".repeat(4000), "body_repeat": "1100"}),
    )
    .await;
    assert_ne!(
        out["status"], 200,
        "a 4 MiB body went through a 1 MiB limit: {out}"
    );
    assert!(
        !fake.requests().iter().any(|r| r.body.len() > 1 << 20),
        "the fake received more than the limit"
    );

    // A response body over the limit stops at the limit with an error the guest sees.
    tried += 1;
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::HugeBody(8 << 20),
    ));
    let out = fetch(&rt, req("https", h, "/service/list")).await;
    assert_eq!(out["status"], 200, "{out}");
    assert!(
        out["bytes"].as_u64().unwrap() <= 2 << 20,
        "the guest read past the response limit: {}",
        out["bytes"]
    );
    assert!(
        !out["body_error"].as_str().unwrap().is_empty(),
        "the guest was not told the body was cut: {out}"
    );

    // A slow upstream is cut at the host's request-time cap.
    tried += 1;
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::SlowFirstByte(std::time::Duration::from_secs(3)),
    ));
    let started = std::time::Instant::now();
    let out = fetch(&rt, req("https", h, "/service/list")).await;
    assert_eq!(out["outcome"], "error-code", "{out}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the host waited for the slow upstream"
    );

    // A hung upstream is cut the same way.
    tried += 1;
    fake.inject(Fault::once(
        RouteMatch::get("/service/list"),
        FaultKind::Hang,
    ));
    let out = fetch(&rt, req("https", h, "/service/list")).await;
    assert_eq!(out["outcome"], "error-code", "{out}");

    println!(
        "hostile battery (upstream behaviour and body sizes): {tried} cases tried, {tried} contained"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_environment_holds_no_secret() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.passthrough
        .push(("THETA_EC_PROJECT_ID".into(), "prj_demo".into()));
    let rt = hostile(cfg).await;
    let out = rt
        .invoke("list_services", r#"{"action":"env"}"#, Arc::new(|_| {}))
        .await
        .unwrap()
        .unwrap();
    assert!(!out.contains(TOKEN), "the guest saw the token: {out}");
    let env: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = env["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    for secret in theta_host::credentials::SECRET_VARS {
        assert!(!names.contains(&secret), "{secret} reached the guest");
    }
    assert!(
        names.contains(&"THETA_HOST_INJECTS_CREDENTIALS"),
        "{names:?}"
    );
    assert!(
        out.contains("THETA_ONDEMAND_API_TOKEN"),
        "the configured credential's NAME is reported: {out}"
    );
    assert_eq!(env["args"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_refuses_posts_at_the_host_but_lets_reads_through() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.policy.dry_run = true;
    let rt = hostile(cfg).await;
    let h = "ondemand.thetaedgecloud.com";
    for (method, refusal) in [
        ("POST", "theta-policy dry-run"),
        // Not a route at all: refused whatever the mode.
        ("PUT", "not a request the plugin makes"),
        ("DELETE", "not a request the plugin makes"),
        ("PATCH", "not a request the plugin makes"),
    ] {
        let out = fetch(&rt, json!({"scheme":"https","authority":h,"path":"/infer_request/flux","method":method,"body":"{\"input\":{}}"})).await;
        assert_eq!(out["outcome"], "error-code", "{method}: {out}");
        assert!(
            out["detail"].as_str().unwrap().contains(refusal),
            "{method}: {out}"
        );
    }
    assert!(
        fake.requests().is_empty(),
        "a mutating request reached the fake under dry-run"
    );
    let out = fetch(&rt, req("https", h, "/service/list")).await;
    assert_eq!(out["status"], 200, "reads work under dry-run: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_injects_the_key_and_refuses_without_one() {
    let fake = fake().await;
    let rt = hostile(config_for(&fake)).await;
    let out = fetch(&rt, json!({"scheme":"https","authority":"ondemand.thetaedgecloud.com","path":"/infer_request/flux","method":"POST","body":"{\"input\":{\"prompt\":\"x\"},\"wait\":5}"})).await;
    assert_eq!(out["status"], 200, "{out}");
    let seen = fake.requests();
    let auth = seen[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));

    // No credential configured: refused at the host, naming the variable; nothing sent.
    let mut cfg = config_for(&fake);
    cfg.credentials = Default::default();
    let rt = hostile(cfg).await;
    fake.clear_requests();
    let out = fetch(&rt, json!({"scheme":"https","authority":"ondemand.thetaedgecloud.com","path":"/infer_request/flux","method":"POST","body":"{}"})).await;
    assert!(
        out["detail"]
            .as_str()
            .unwrap()
            .contains("missing-credential THETA_ONDEMAND_API_TOKEN"),
        "{out}"
    );
    assert!(fake.requests().is_empty());
    // The public catalogue still works without a key, and no Authorization header is invented.
    let out = fetch(
        &rt,
        req("https", "ondemand.thetaedgecloud.com", "/service/list"),
    )
    .await;
    assert_eq!(out["status"], 200, "{out}");
    assert!(
        fake.requests()[0]
            .headers
            .iter()
            .all(|(k, _)| k != "authorization")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_resolve_to_private_addresses_are_refused_before_connecting() {
    // Real upstream mode (no test server), with DNS answers fixed to non-public addresses.
    // Every family holds a (dummy) credential, so the only thing left to refuse is the address.
    let mut cfg = HostConfig::empty();
    cfg.credentials = Credentials::from_lookup(&|name| {
        let dummy = [
            ONDEMAND_TOKEN_VARS[0],
            CONTROLLER_KEY_VAR,
            INFERENCE_TOKEN_VAR,
        ];
        dummy.contains(&name).then(|| "dummy-not-a-key".to_owned())
    });
    cfg.upstream = Upstream::Real;
    cfg.policy.inference_host = Some("x.tec-s1.onthetaedgecloud.com".into());
    cfg.dns_overrides = HashMap::from([
        (
            "ondemand.thetaedgecloud.com".to_owned(),
            vec!["127.0.0.1".parse().unwrap()],
        ),
        (
            "controller.thetaedgecloud.com".to_owned(),
            vec!["10.1.2.3".parse().unwrap()],
        ),
        (
            "api.thetaedgecloud.com".to_owned(),
            vec!["169.254.169.254".parse().unwrap()],
        ),
        (
            "x.tec-s1.onthetaedgecloud.com".to_owned(),
            vec!["::ffff:192.168.0.1".parse().unwrap()],
        ),
        (
            "y.thetaedgecloud.com".to_owned(),
            vec!["8.8.8.8".parse().unwrap(), "fd00::1".parse().unwrap()],
        ),
    ]);
    let rt = hostile(cfg).await;
    let mut refused = 0;
    for (host, ip, path, command) in [
        (
            "ondemand.thetaedgecloud.com",
            "127.0.0.1",
            "/service/list",
            "list_services",
        ),
        (
            "controller.thetaedgecloud.com",
            "10.1.2.3",
            "/deployment/list",
            "theta.deployments.list",
        ),
        (
            "api.thetaedgecloud.com",
            "169.254.169.254",
            "/resource/vm/list",
            "theta.deployments.listVm",
        ),
        (
            "x.tec-s1.onthetaedgecloud.com",
            "192.168.0.1",
            "/v1/models",
            "theta.inference.models",
        ),
    ] {
        let args = req("https", host, path);
        let out = rt
            .invoke(command, &args.to_string(), Arc::new(|_| {}))
            .await
            .unwrap()
            .unwrap();
        let out: Value = serde_json::from_str(&out).unwrap();
        let detail = out["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("non-public address") && detail.contains(ip),
            "{host}: {out}"
        );
        refused += 1;
    }
    // A Theta name no route uses never gets as far as a DNS lookup.
    let out = fetch(&rt, req("https", "y.thetaedgecloud.com", "/service/list")).await;
    assert!(
        out["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not an API this call may reach"),
        "{out}"
    );
    refused += 1;
    println!("DNS-rebinding battery: 5 cases tried, {refused} refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn runaway_guests_are_stopped_with_a_clear_error() {
    let fake = fake().await;
    let mut cfg = config_for(&fake);
    cfg.limits.cpu = std::time::Duration::from_millis(300);
    cfg.limits.memory_bytes = 32 << 20;
    let rt = hostile(cfg).await;
    let err = rt
        .invoke("list_services", r#"{"action":"spin"}"#, Arc::new(|_| {}))
        .await
        .expect_err("spin must be stopped");
    assert!(format!("{err:#}").contains("CPU budget"), "{err:#}");
    let err = rt
        .invoke("list_services", r#"{"action":"alloc"}"#, Arc::new(|_| {}))
        .await
        .expect_err("alloc must be stopped");
    let text = format!("{err:#}");
    assert!(
        text.contains("trapped") || text.contains("memory"),
        "{text}"
    );
    // A bounded allocation under the limit still works: the limit is not a blanket refusal.
    let ok = rt
        .invoke(
            "list_services",
            r#"{"action":"alloc","mib":"4"}"#,
            Arc::new(|_| {}),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(ok.contains("\"allocated_mib\":4"), "{ok}");
}
