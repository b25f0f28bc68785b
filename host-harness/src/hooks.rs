//! The `wasi:http` hook: every request the guest sends arrives here, and only what passes the policy
//! leaves the host. This is the boundary that holds against a hostile guest: the guest's own checks are a
//! courtesy, these are the rules.

use crate::audit::{AuditRecord, AuditSink, now_ms};
use crate::credentials::{Credentials, Injection};
use crate::limits::CallLimits;
use crate::net::OutboundClient;
use crate::net::body::GuardedBody;
use crate::net::client::{OutBody, SendError};
use crate::policy::{self, Effect, OutboundPolicy, Refusal};
use crate::tenant::TenantPolicy;
use crate::tenant::ledger::{Reservation, SpendLedger};
use crate::tenant::pricing::PriceTable;
use crate::tenant::rate::RateLimiter;
use http::{HeaderValue, header};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{
    Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiHttpHooks,
};

/// What every call of one host shares: credentials, the keep-alive client, prices, the spend ledger and
/// the audit trail.
pub struct SharedOutbound {
    pub credentials: Credentials,
    pub client: OutboundClient,
    pub audit: AuditSink,
    pub prices: PriceTable,
    pub ledger: SpendLedger,
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
    pub command: String,
    pub call_id: u64,
}

/// One call's view of the outbound boundary: every request the call makes goes through
/// [`CallOutbound::send`], whichever guest interface it came from (`wasi:http`, or a host `http-request`).
pub struct CallOutbound {
    shared: Arc<SharedOutbound>,
    tenant: Arc<TenantOutbound>,
    call: Arc<CallContext>,
    limits: CallLimits,
    requests: AtomicU32,
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
        }
    }

    /// Checks, sends and audits one request; refusals come back as `InternalError("theta-policy ...")`.
    pub async fn send(
        &self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, HttpError> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        send(
            &self.shared,
            &self.tenant,
            &self.call,
            &self.limits,
            n,
            request,
            options,
        )
        .await
        .map(|(response, ())| response)
    }

    /// Whether the host holds a credential for this family (names only ever leave the host).
    pub fn credential_configured(&self, variable: &str) -> bool {
        self.shared
            .credentials
            .configured_variables()
            .contains(&variable)
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
    shared: &SharedOutbound,
    tenant: &TenantOutbound,
    call: &Arc<CallContext>,
    limits: &CallLimits,
    request_number: u32,
    request: http::Request<wasmtime_wasi_http::WasiBody>,
    options: Option<RequestOptions>,
) -> Result<(http::Response<wasmtime_wasi_http::WasiBody>, ()), HttpError> {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let audit_base = AuditRecord {
        ts_unix_ms: now_ms(),
        tenant: call.tenant.clone(),
        command: call.command.clone(),
        call_id: call.call_id,
        method: method.to_string(),
        host: uri.host().unwrap_or("").to_ascii_lowercase(),
        path: uri.path().chars().take(512).collect(),
        decision: String::new(),
        effect: None,
        status: None,
        bytes_in: 0,
        spend_usd: None,
        duration_ms: 0,
        reason: None,
    };
    let refuse = |refusal: Refusal| {
        shared.audit.record(AuditRecord {
            decision: refusal.decision().into(),
            reason: Some(shared.credentials.scrub(&refusal.to_string())),
            duration_ms: started.elapsed().as_millis() as u64,
            ..audit_base.clone()
        });
        HttpError::InternalError(Some(refusal.to_string()))
    };

    if request_number > limits.max_requests {
        return Err(refuse(Refusal::Limit(format!(
            "this call already made {} requests, the most one call may make",
            limits.max_requests
        ))));
    }
    let approved = tenant
        .policy
        .check(&method, &uri, |family| {
            shared.credentials.get(family).is_some()
        })
        .map_err(refuse)?;
    let effect = approved.class.effect;
    if !tenant.tenant.grants.allows_effect(effect) {
        return Err(refuse(Refusal::Denied(format!(
            "tenant `{}` is not granted {} requests ({method} {})",
            tenant.tenant.name,
            effect_name(effect),
            uri.path()
        ))));
    }
    if let Some(rate) = &tenant.rate
        && let Err(wait) = rate.try_acquire()
    {
        return Err(refuse(Refusal::Limit(format!(
            "tenant `{}` is over its request rate of {} per minute; retry in {wait:.1} s",
            tenant.tenant.name,
            tenant.tenant.requests_per_minute.unwrap_or(0)
        ))));
    }
    // Paid requests are reserved in the ledger (on disk) before anything is sent.
    let reservation = if effect == Effect::Spend {
        let estimate = shared.prices.estimate(uri.path());
        let what = format!("{method} {}{}", approved.target.host, uri.path());
        Some(
            shared
                .ledger
                .reserve(
                    &tenant.tenant.name,
                    estimate,
                    tenant.tenant.spend_cap_micros,
                    &what,
                )
                .map_err(|e| refuse(Refusal::Limit(e.to_string())))?,
        )
    } else {
        None
    };
    let settle = |r: &Option<Reservation>, ran: bool| {
        if let Some(r) = r {
            if ran {
                shared.ledger.settle(r)
            } else {
                shared.ledger.release(r)
            }
        }
    };

    // Rebuild the request for the wire: the guest's headers minus anything credential-like, plus the
    // family's credential, sent to the approved target only.
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    for name in policy::GUEST_FORBIDDEN_HEADERS {
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
    if let Some(credential) = shared.credentials.get(approved.class.family) {
        inject(&mut headers, &credential.injection)?;
    }
    let body: OutBody = GuardedBody::request(body, limits.max_request_bytes).boxed_unsync();
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

    let response = match tokio::time::timeout(first_byte, shared.client.send(wire)).await {
        Err(_) => {
            // It may have run upstream: keep the reservation.
            settle(&reservation, true);
            shared.audit.record(AuditRecord {
                decision: "error".into(),
                effect: Some(approved.class.effect),
                reason: Some(format!("no response within {}", fmt_duration(first_byte))),
                duration_ms: started.elapsed().as_millis() as u64,
                ..audit_base
            });
            return Err(HttpError::ConnectionReadTimeout);
        }
        Ok(Err(SendError::NonPublic(why))) => {
            settle(&reservation, false);
            return Err(refuse(Refusal::Denied(why)));
        }
        Ok(Err(SendError::Transport(e))) => {
            // Refused connections and failed lookups never reached Theta; anything else may have.
            let never_sent = matches!(e, HttpError::ConnectionRefused | HttpError::DnsError { .. });
            settle(&reservation, !never_sent);
            shared.audit.record(AuditRecord {
                decision: "error".into(),
                effect: Some(approved.class.effect),
                reason: Some(shared.credentials.scrub(&e.to_string())),
                duration_ms: started.elapsed().as_millis() as u64,
                ..audit_base
            });
            return Err(e);
        }
        Ok(Ok(response)) => response,
    };

    let status = response.status().as_u16();
    // 4xx (incl. 409 no instances, 429 rate limited) means Theta did not run it: give the money back.
    settle(&reservation, !(400..500).contains(&status));
    let audit = shared.audit.clone();
    let charged = reservation
        .as_ref()
        .filter(|_| !(400..500).contains(&status))
        .map(|r| crate::tenant::pricing::micros_to_usd(r.micros));
    let record = AuditRecord {
        decision: "allowed".into(),
        effect: Some(effect),
        status: Some(status),
        spend_usd: charged,
        ..audit_base
    };
    let response = response.map(|body| {
        GuardedBody::response(body, limits.max_response_bytes, Some(between_bytes))
            .on_finish(Box::new(move |bytes, clean| {
                audit.record(AuditRecord {
                    bytes_in: bytes,
                    duration_ms: started.elapsed().as_millis() as u64,
                    reason: (!clean).then(|| "response body not read to the end".to_owned()),
                    ..record
                });
            }))
            .boxed_unsync()
    });
    Ok((response, ()))
}

fn inject(headers: &mut http::HeaderMap, injection: &Injection) -> Result<(), HttpError> {
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

fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Read => "read",
        Effect::Mutate => "mutating",
        Effect::Spend => "paid",
    }
}

fn fmt_duration(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
