//! The `wasi:http` hook: every request the guest sends arrives here, and only what passes the policy
//! leaves the host. This is the boundary that holds against a hostile guest: the guest's own checks are a
//! courtesy, these are the rules.

use crate::audit::{AuditRecord, AuditSink, now_ms};
use crate::credentials::{Credentials, Injection};
use crate::limits::CallLimits;
use crate::net::OutboundClient;
use crate::net::body::GuardedBody;
use crate::net::client::{OutBody, SendError};
use crate::policy::{self, Effect, OutboundPolicy, Price, Refusal};
use crate::spend::{CallFacts, Hold};
use crate::tenant::TenantPolicy;
use crate::tenant::pricing::PriceTable;
use crate::tenant::rate::RateLimiter;
use crate::tenant::store::StoreHandle;
use bytes::Bytes;
use http::{HeaderValue, header};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{
    Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiHttpHooks,
};

/// What every call of one host shares: credentials, the keep-alive client, prices, the spend store and
/// the audit trail.
pub struct SharedOutbound {
    pub credentials: Credentials,
    pub client: OutboundClient,
    pub audit: AuditSink,
    pub prices: PriceTable,
    pub store: StoreHandle,
}

/// What one tenant's calls share: its policy and its request-rate bucket.
pub struct TenantOutbound {
    pub tenant: TenantPolicy,
    pub policy: OutboundPolicy,
    pub rate: Option<RateLimiter>,
}

/// Per-call identity and counters, for limits and the audit trail.
#[derive(Clone, Debug)]
pub struct CallContext {
    pub tenant: String,
    /// The canonical command the call runs (the host's name for it, never an alias).
    pub command: String,
    pub call_id: u64,
    /// `host:pid#call`: names the call in the spend store (slot holder, disposable lease owner).
    pub holder: String,
}

/// Refusals one call may collect before the host stops it: a plugin that keeps knocking is hostile
/// or broken, and each refusal is an audit line.
pub const MAX_REFUSALS_PER_CALL: u32 = 32;

/// One call's view of the outbound boundary: every request the call makes goes through
/// [`CallOutbound::send`], whichever guest interface it came from (`wasi:http`, or a host `http-request`).
pub struct CallOutbound {
    shared: Arc<SharedOutbound>,
    tenant: Arc<TenantOutbound>,
    call: Arc<CallContext>,
    limits: CallLimits,
    requests: AtomicU32,
    refusals: AtomicU32,
    /// Set once the call collected too many refusals; the sandbox stops the call at its next tick.
    stopped: AtomicBool,
    /// Endpoints of deployments this call created: the only `*.onthetaedgecloud.com` hosts it may
    /// reach besides the configured dedicated endpoint. With each, the Basic auth its create asked
    /// the endpoint to require: the host adds it to the call's requests to that endpoint (the guest
    /// may not set credential headers).
    own_deployments: Mutex<Vec<(String, Option<Injection>)>>,
    /// Presigned upload URLs (canonical) this call's upload-URL answers named and it has not PUT to
    /// yet: single-use grants, the only way to the storage host.
    upload_grants: Mutex<Vec<String>>,
}

impl CallOutbound {
    pub fn new(
        shared: Arc<SharedOutbound>,
        tenant: Arc<TenantOutbound>,
        call: CallContext,
        limits: CallLimits,
    ) -> Self {
        Self {
            shared,
            tenant,
            call: Arc::new(call),
            limits,
            requests: AtomicU32::new(0),
            refusals: AtomicU32::new(0),
            stopped: AtomicBool::new(false),
            own_deployments: Mutex::new(Vec::new()),
            upload_grants: Mutex::new(Vec::new()),
        }
    }

    /// Checks, sends and audits one request; refusals come back as `InternalError("theta-policy ...")`.
    pub async fn send(
        &self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, HttpError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        send(self, n, request, options).await
    }

    /// Whether the host holds a credential for this family (names only ever leave the host).
    pub fn credential_configured(&self, variable: &str) -> bool {
        self.shared
            .credentials
            .configured_variables()
            .contains(&variable)
    }

    /// Why the host stopped this call, once it has.
    pub fn stop_reason(&self) -> Option<String> {
        self.stopped.load(Ordering::SeqCst).then(|| {
            format!(
                "the plugin made {MAX_REFUSALS_PER_CALL} requests the host refused; the call was stopped"
            )
        })
    }

    fn own_deployments(&self) -> Vec<String> {
        self.own_deployments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(host, _)| host.clone())
            .collect()
    }

    fn upload_grants(&self) -> Vec<String> {
        self.upload_grants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn learn_upload_grants(&self, urls: Vec<String>) {
        let mut grants = self.upload_grants.lock().unwrap_or_else(|p| p.into_inner());
        for url in urls {
            if !grants.contains(&url) {
                grants.push(url);
            }
        }
    }

    /// Uses up the grant of `url`; false when it is not (or no longer) granted, e.g. a second
    /// request to it that passed the check while the first was being read.
    fn take_upload_grant(&self, url: &str) -> bool {
        let mut grants = self.upload_grants.lock().unwrap_or_else(|p| p.into_inner());
        let before = grants.len();
        grants.retain(|g| g != url);
        grants.len() < before
    }

    fn learn_deployment_host(&self, host: String, auth: Option<Injection>) {
        let mut hosts = self
            .own_deployments
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match hosts.iter_mut().find(|(h, _)| *h == host) {
            Some((_, known)) => {
                if auth.is_some() {
                    *known = auth;
                }
            }
            None => hosts.push((host, auth)),
        }
    }

    /// The Basic auth the create of this own deployment asked its endpoint to require.
    fn own_deployment_auth(&self, host: &str) -> Option<Injection> {
        self.own_deployments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(h, _)| h == host)
            .and_then(|(_, auth)| auth.clone())
    }
}

/// The `wasi:http` hooks of one call's store.
pub struct PolicyHooks {
    outbound: Arc<CallOutbound>,
}

impl PolicyHooks {
    pub fn new(outbound: Arc<CallOutbound>) -> Self {
        Self { outbound }
    }

    pub fn outbound(&self) -> &Arc<CallOutbound> {
        &self.outbound
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for PolicyHooks {
    // An outgoing body holds at most two chunks on the host (one buffered, one in flight).
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        crate::limits::BODY_CHUNK_SIZE
    }

    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| {
            wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
                || policy::header_forbidden(name)
        })
    }

    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let outbound = self.outbound.clone();
        Box::new(async move {
            let response = outbound.send(request, options).await?;
            Ok((
                response,
                Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

async fn send(
    out: &CallOutbound,
    request_number: u32,
    request: http::Request<wasmtime_wasi_http::WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, HttpError> {
    let shared = &*out.shared;
    let tenant = &*out.tenant;
    let call = &out.call;
    let limits = &out.limits;
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let audit_base = AuditRecord {
        ts_unix_ms: now_ms(),
        tenant: call.tenant.clone(),
        command: call.command.clone(),
        call_id: call.call_id,
        request: request_number,
        method: method.to_string(),
        host: uri.host().unwrap_or("").to_ascii_lowercase(),
        path: crate::text::for_terminal(&uri.path().chars().take(512).collect::<String>()),
        query: uri
            .query()
            .map(|q| shared.credentials.scrub(&crate::audit::redact_query(q))),
        decision: String::new(),
        outcome: None,
        effect: None,
        status: None,
        bytes_in: 0,
        spend_usd: None,
        duration_ms: 0,
        reason: None,
    };
    let refuse = |refusal: Refusal| {
        let n = out.refusals.fetch_add(1, Ordering::SeqCst) + 1;
        // Past the bound, one summary line and a stopped call instead of a line per attempt.
        if n < MAX_REFUSALS_PER_CALL {
            shared.audit.record(AuditRecord {
                decision: refusal.decision().into(),
                reason: Some(shared.credentials.scrub(&refusal.to_string())),
                duration_ms: started.elapsed().as_millis() as u64,
                ..audit_base.clone()
            });
        } else if n == MAX_REFUSALS_PER_CALL {
            out.stopped.store(true, Ordering::SeqCst);
            shared.audit.record(AuditRecord {
                decision: "limit".into(),
                reason: Some(format!(
                    "{MAX_REFUSALS_PER_CALL} refused requests in this call (the last: {}); the call is stopped and further attempts are not logged one by one",
                    shared.credentials.scrub(&refusal.to_string())
                )),
                duration_ms: started.elapsed().as_millis() as u64,
                ..audit_base.clone()
            });
        }
        HttpError::InternalError(Some(refusal.to_string()))
    };

    if out.stopped.load(Ordering::SeqCst) {
        return Err(refuse(Refusal::Limit(
            out.stop_reason().unwrap_or_default(),
        )));
    }
    if request_number > limits.max_requests {
        return Err(refuse(Refusal::Limit(format!(
            "this call already made {} requests, the most one call may make",
            limits.max_requests
        ))));
    }
    let approved = tenant
        .policy
        .check(
            &method,
            &uri,
            &call.command,
            &out.own_deployments(),
            &out.upload_grants(),
            |family| shared.credentials.get(family).is_some(),
        )
        .map_err(refuse)?;
    let route = approved.route;
    let effect = route.effect;
    if !tenant.tenant.grants.allows_effect(effect) {
        return Err(refuse(Refusal::Denied(format!(
            "tenant `{}` is not granted {} requests ({method} {})",
            tenant.tenant.name,
            effect.name(),
            audit_base.path
        ))));
    }
    if let Some(per_minute) = tenant.tenant.requests_per_minute {
        // Kept in the spend store when the tenant's limits are shared across processes.
        let taken = if tenant.tenant.shared_limits {
            match shared.store.get().await {
                Ok(store) => store
                    .take_request(&tenant.tenant.name, per_minute)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        } else {
            Ok(tenant
                .rate
                .as_ref()
                .map_or(Ok(()), RateLimiter::try_acquire))
        };
        match taken {
            Ok(Ok(())) => {}
            Ok(Err(wait)) => {
                return Err(refuse(Refusal::Limit(format!(
                    "tenant `{}` is over its request rate of {per_minute} per minute; retry in {wait:.1} s",
                    tenant.tenant.name
                ))));
            }
            Err(e) => {
                return Err(refuse(Refusal::Limit(format!(
                    "the request-rate limit cannot be checked ({e}); refusing"
                ))));
            }
        }
    }

    let (parts, body) = request.into_parts();
    // Bodies the price depends on, and every paid body, are read whole before anything is sent: the
    // size limit is reported as a limit (never a transport fault), and the price is read from what
    // will actually be sent.
    // A presigned upload is read whole too: the size limit refuses it before anything is sent.
    let presigned_upload = approved.api == policy::Api::PresignedUpload;
    let mut outgoing = if effect == Effect::Spend || route.price != Price::Free || presigned_upload
    {
        match read_body(body, limits.max_request_bytes).await {
            Ok(bytes) => Outgoing::Read(bytes),
            Err(BodyRead::TooLarge(seen)) => {
                return Err(refuse(Refusal::Limit(format!(
                    "the request body is larger than this call's request-size limit of {} bytes (at least {seen} bytes); nothing was sent",
                    limits.max_request_bytes
                ))));
            }
            Err(BodyRead::Failed(e)) => return Err(e),
        }
    } else {
        Outgoing::Streamed(body)
    };
    if presigned_upload {
        let url = policy::presigned::canonical_url(&uri).unwrap_or_default();
        if !out.take_upload_grant(&url) {
            return Err(refuse(Refusal::Denied(format!(
                "PUT {} was used already: a presigned upload URL is granted for one PUT",
                policy::presigned::shown(&uri)
            ))));
        }
    }
    let mut body_json: Option<serde_json::Value> = match &outgoing {
        Outgoing::Read(bytes) => serde_json::from_slice(bytes).ok(),
        Outgoing::Streamed(_) => None,
    };

    // A create that asks its endpoint to require Basic auth: the host adds it to this call's
    // requests to that endpoint once the answer names it.
    let create_auth = (route.price == Price::DeploymentHours
        && method == http::Method::POST
        && approved.segments.len() == 1)
        .then(|| body_json.as_ref().and_then(deployment_basic_auth))
        .flatten();

    // Paid requests hold their price in the spend store (deployments: a lease) before anything is
    // sent; over the cap, or without a usable store, nothing is sent.
    let hold = if effect == Effect::Spend {
        let facts = CallFacts {
            tenant: &tenant.tenant,
            command: &call.command,
            holder: &call.holder,
            what: format!("{method} {}{}", approved.target.host, audit_base.path),
        };
        let hold = crate::spend::hold(
            &shared.store,
            &shared.prices,
            facts,
            &approved,
            &method,
            &mut body_json,
        )
        .await
        .map_err(|why| refuse(Refusal::Limit(why)))?;
        Some(hold)
    } else {
        None
    };
    // A lease tags a create's JSON object with its annotation: send what the host holds.
    if let (Some(Hold::Lease { .. }), Some(v @ serde_json::Value::Object(_))) = (&hold, &body_json)
    {
        outgoing = Outgoing::Read(Bytes::from(serde_json::to_vec(v).unwrap_or_default()));
    }

    // Rebuild the request for the wire: the guest's headers minus anything credential-like or
    // meaning-changing, plus the family's credential, sent to the approved target only.
    let mut headers = parts.headers;
    let strip: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| policy::header_forbidden(name))
        .cloned()
        .collect();
    for name in strip {
        headers.remove(name);
    }
    let host_header = match approved.target.port {
        443 => approved.target.host.clone(),
        port => format!("{}:{port}", approved.target.host),
    };
    headers.insert(
        header::HOST,
        HeaderValue::from_str(&host_header).map_err(|_| HttpError::HttpRequestUriInvalid)?,
    );
    // A presigned URL carries its own signature: no credential of ours ever goes to the storage host.
    if !presigned_upload && let Some(credential) = shared.credentials.get(approved.family()) {
        inject(&mut headers, &credential.injection)?;
    }
    if approved.api == policy::Api::OwnDeployment
        && let Some(auth) = out.own_deployment_auth(&approved.target.host)
    {
        inject(&mut headers, &auth)?;
    }
    let body: OutBody = match outgoing {
        Outgoing::Read(bytes) => {
            // What is sent is what was read (and maybe tagged): its length, not the guest's claim.
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            full_body(bytes)
        }
        Outgoing::Streamed(body) => {
            GuardedBody::request(body, limits.max_request_bytes).boxed_unsync()
        }
    };
    let mut wire = http::Request::new(body);
    *wire.method_mut() = method.clone();
    *wire.uri_mut() = shared.client.wire_uri(&uri);
    *wire.headers_mut() = headers;

    // The guest may ask for shorter timeouts, never for longer ones than the host allows.
    let cap = limits.max_request_time;
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(cap)
        .min(cap);
    let between_bytes = options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(cap)
        .min(cap);

    // Intent first: the line is on disk before the request leaves, and the guard completes it as
    // `abandoned` if the guest drops the response future.
    let sent = AuditRecord {
        decision: "allowed".into(),
        outcome: Some("sent".into()),
        effect: Some(effect),
        spend_usd: hold
            .as_ref()
            .map(|h| crate::tenant::pricing::micros_to_usd(h.micros())),
        ..audit_base.clone()
    };
    shared.audit.record(sent.clone());
    let mut in_flight = InFlight {
        shared,
        record: sent,
        open: true,
        hold,
        started,
    };

    let response = match tokio::time::timeout(first_byte, shared.client.send(wire)).await {
        Err(_) => {
            // It may have run upstream: keep the reservation.
            in_flight
                .finish(
                    "timeout",
                    true,
                    Some(format!("no response within {}", fmt_duration(first_byte))),
                )
                .await;
            return Err(HttpError::ConnectionReadTimeout);
        }
        Ok(Err(SendError::NonPublic(why))) => {
            in_flight.refused().await;
            return Err(refuse(Refusal::Denied(why)));
        }
        Ok(Err(SendError::Transport(e))) => {
            // Refused connections and failed lookups never reached Theta; anything else may have.
            let never_sent = matches!(e, HttpError::ConnectionRefused | HttpError::DnsError { .. });
            in_flight
                .finish(
                    "error",
                    !never_sent,
                    Some(shared.credentials.scrub(&e.to_string())),
                )
                .await;
            return Err(e);
        }
        Ok(Ok(response)) => response,
    };

    let status = response.status().as_u16();
    // 4xx (incl. 409 no instances, 429 rate limited) means Theta did not run it: give the money back.
    let accepted = !(400..500).contains(&status);
    let (record, hold) = in_flight.take_response(status, accepted);
    // A create's answer is read whole: it names the deployment (lease) and its endpoint, which
    // becomes reachable for the rest of the call. So is an upload-URL answer: its presigned URLs
    // become this call's single-use upload grants.
    let grants_uploads = policy::routes::grants_uploads(route);
    let reads_answer =
        (route.price == Price::DeploymentHours || grants_uploads) && (200..300).contains(&status);
    let (parts, body) = response.into_parts();
    let body: wasmtime_wasi_http::WasiBody = if reads_answer {
        let bytes = match read_body(body, limits.max_response_bytes).await {
            Ok(bytes) => bytes,
            Err(BodyRead::TooLarge(_)) => {
                if let Some(h) = hold {
                    h.finish(true).await;
                }
                return Err(HttpError::HttpResponseBodySize(Some(
                    limits.max_response_bytes,
                )));
            }
            Err(BodyRead::Failed(e)) => {
                if let Some(h) = hold {
                    h.finish(true).await;
                }
                return Err(e);
            }
        };
        let answer = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        if grants_uploads && let Some(answer) = &answer {
            out.learn_upload_grants(policy::presigned::granted_urls(answer));
        }
        if let Some(host) = answer
            .as_ref()
            .filter(|_| route.price == Price::DeploymentHours)
            .and_then(crate::policy::classify::deployment_endpoint_host)
            .filter(|h| tenant.policy.allowlist.allows_host(h))
        {
            out.learn_deployment_host(host, create_auth.clone());
        }
        if let Some(h) = hold {
            h.answered(status, answer.as_ref()).await;
        }
        full_body(bytes)
    } else {
        if let Some(h) = hold {
            h.answered(status, None).await;
        }
        body.map_err(HttpError::from).boxed_unsync()
    };
    // A deployment deleted through the host ends its lease.
    if method == http::Method::DELETE
        && approved.api == policy::Api::Controller
        && ((200..300).contains(&status) || status == 404)
        && let [noun, shard, suffix] = approved.segments.as_slice()
        && noun.starts_with("deployment")
    {
        crate::janitor::end_lease_by_identity(&shared.store, &tenant.tenant.name, shard, suffix)
            .await;
    }
    let audit = shared.audit.clone();
    let body = GuardedBody::response(body, limits.max_response_bytes, Some(between_bytes))
        .on_finish(Box::new(move |bytes, clean| {
            let outcome = match (clean, (200..400).contains(&status)) {
                (false, _) => "abandoned",
                (true, true) => "ok",
                (true, false) => "upstream-error",
            };
            audit.record(AuditRecord {
                outcome: Some(outcome.into()),
                bytes_in: bytes,
                duration_ms: started.elapsed().as_millis() as u64,
                reason: (!clean).then(|| "response body not read to the end".to_owned()),
                ..record
            });
        }))
        .boxed_unsync();
    Ok(http::Response::from_parts(parts, body))
}

/// A request that left the host and has no outcome yet. Dropped unfinished (the guest abandoned the
/// response future), it records `abandoned` and keeps the money held: the request may have run.
struct InFlight<'a> {
    shared: &'a SharedOutbound,
    /// The `sent` record; its outcome is written once, when `open` turns false.
    record: AuditRecord,
    open: bool,
    hold: Option<Hold>,
    started: Instant,
}

impl InFlight<'_> {
    async fn finish(&mut self, outcome: &str, ran: bool, reason: Option<String>) {
        if let Some(h) = self.hold.take() {
            h.finish(ran).await;
        }
        self.record_outcome(outcome, ran, reason);
    }

    /// Settles the hold without an outcome line: the caller's refusal line is the outcome.
    async fn refused(&mut self) {
        if let Some(h) = self.hold.take() {
            h.finish(false).await;
        }
        self.open = false;
    }

    fn record_outcome(&mut self, outcome: &str, ran: bool, reason: Option<String>) {
        if std::mem::take(&mut self.open) {
            self.shared.audit.record(AuditRecord {
                outcome: Some(outcome.into()),
                spend_usd: self.record.spend_usd.filter(|_| ran),
                duration_ms: self.started.elapsed().as_millis() as u64,
                reason,
                ..self.record.clone()
            });
        }
    }

    /// The response arrived: hand the record (for the response body) and the hold to the caller.
    fn take_response(&mut self, status: u16, accepted: bool) -> (AuditRecord, Option<Hold>) {
        self.open = false;
        (
            AuditRecord {
                status: Some(status),
                spend_usd: self.record.spend_usd.filter(|_| accepted),
                ..self.record.clone()
            },
            self.hold.take(),
        )
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.hold.take() {
            h.finish_in_background(true);
        }
        self.record_outcome(
            "abandoned",
            true,
            Some("the plugin dropped the request before its response arrived".into()),
        );
    }
}

/// A request body: read whole by the host (paid or priced routes), or streamed through.
enum Outgoing {
    Read(Bytes),
    Streamed(wasmtime_wasi_http::WasiBody),
}

/// A body the host holds whole.
fn full_body(bytes: Bytes) -> UnsyncBoxBody<Bytes, HttpError> {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

enum BodyRead {
    TooLarge(u64),
    Failed(HttpError),
}

/// Reads a body whole, refusing it as soon as it passes `max` bytes.
async fn read_body<B>(mut body: B, max: u64) -> Result<Bytes, BodyRead>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<HttpError>,
{
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyRead::Failed(e.into()))?;
        if let Some(data) = frame.data_ref() {
            if out.len() as u64 + data.len() as u64 > max {
                return Err(BodyRead::TooLarge(out.len() as u64 + data.len() as u64));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out.freeze())
}

/// `auth_username` / `auth_password` of a deployment create body, as the Basic auth to inject.
fn deployment_basic_auth(body: &serde_json::Value) -> Option<Injection> {
    let text = |k: &str| {
        body.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
    };
    Some(Injection::Basic {
        user: crate::credentials::Secret::new(text("auth_username")?),
        pass: crate::credentials::Secret::new(text("auth_password")?),
    })
}

pub(crate) fn inject(
    headers: &mut http::HeaderMap,
    injection: &Injection,
) -> Result<(), HttpError> {
    let invalid = |_| {
        HttpError::InternalError(Some(
            "theta-policy denied: a configured credential is not a valid header value".into(),
        ))
    };
    match injection {
        Injection::Bearer(token) => {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(invalid)?;
            v.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, v);
        }
        Injection::ApiKey(key) => {
            let mut v = HeaderValue::from_str(key.expose()).map_err(invalid)?;
            v.set_sensitive(true);
            headers.insert("x-api-key", v);
        }
        Injection::VideoServiceAccount { id, secret } => {
            let mut v = HeaderValue::from_str(id.expose()).map_err(invalid)?;
            v.set_sensitive(true);
            headers.insert("x-tva-sa-id", v);
            let mut v = HeaderValue::from_str(secret.expose()).map_err(invalid)?;
            v.set_sensitive(true);
            headers.insert("x-tva-sa-secret", v);
        }
        Injection::Basic { user, pass } => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                user.expose(),
                pass.expose()
            ));
            let mut v = HeaderValue::from_str(&format!("Basic {encoded}")).map_err(invalid)?;
            v.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, v);
        }
    }
    Ok(())
}

fn fmt_duration(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
