//! `theta-host serve`: the MCP handler of [`super`] over streamable HTTP (rmcp's own transport, with
//! sessions, SSE, progress and cancellation), for many tenants.
//!
//! In front of rmcp, every request to `/mcp` passes the [`Gate`]: a foreign browser `Origin` gets 403,
//! a missing, unknown or revoked bearer token 401 (`WWW-Authenticate: Bearer`), each with an audit line
//! and nothing run. An authenticated request carries its tenant to the handler, which lists and runs
//! only that tenant's tools under its grants, caps and limits; a session stays its creator's. rmcp
//! checks the `Host` header (DNS rebinding). `GET /healthz` answers `ok` without authentication.
//!
//! One [`Runtime`] (one engine, one compiled component, one spend store) serves every tenant. On
//! SIGTERM or SIGINT the listener closes, new calls are refused, running calls get the grace period,
//! the rest are cancelled (their stores dropped, their holds and slots released), their answers are
//! delivered, and the process exits 0.

use super::auth::{Authenticated, LiveTokens, OriginPolicy, Refusal, TokenTable};
use super::{Options, Tenancy, ThetaMcp};
use crate::audit::{AuditRecord, AuditSink, now_ms};
use crate::runtime::Runtime;
use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{TaskTracker, task_tracker::TaskTrackerToken};

/// Where the MCP endpoint is.
pub const MCP_PATH: &str = "/mcp";
/// The liveness probe.
pub const HEALTH_PATH: &str = "/healthz";

/// How `theta-host serve` listens.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Browser origins allowed beside loopback (`--allow-origin`).
    pub allow_origins: Vec<String>,
    /// `Host` values allowed beside loopback and the listen address (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// PEM certificate chain and private key (`--tls-cert`, `--tls-key`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How long running calls may go on after SIGTERM/SIGINT before they are cancelled.
    pub shutdown_grace: Duration,
    /// The tenants file the tokens came from: re-read when it changes (revocations apply at once).
    pub tenants_file: Option<PathBuf>,
    pub mcp: Options,
}

/// How long cancelled calls and their clean-ups, and the delivery of the last answers, may take
/// once the grace period is over.
const AFTER_GRACE: Duration = Duration::from_secs(5);

type Body = BoxBody<Bytes, Infallible>;
type Mcp = StreamableHttpService<ThetaMcp, LocalSessionManager>;

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn serve(
    runtime: Runtime,
    tokens: TokenTable,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let active = tokens.active_tenants();
    if active.is_empty() {
        anyhow::bail!(
            "no tenant can sign in: give at least one tenant a `token_sha256` (see `theta-host token hash`) that is not revoked"
        );
    }
    let origins = OriginPolicy::loopback_and(&options.allow_origins)?;
    let tls = match &options.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    if !options.listen.ip().is_loopback() && tls.is_none() {
        eprintln!(
            "warning: listening on {} without TLS: bearer tokens cross the network in clear text unless a reverse proxy in front terminates TLS (or pass --tls-cert and --tls-key)",
            options.listen
        );
    }
    let audit = runtime.audit().clone();
    let tokens = LiveTokens::new(tokens, options.tenants_file.clone(), runtime.tenant_names());
    let server =
        ThetaMcp::shared(Arc::new(runtime), options.mcp.clone(), Tenancy::PerRequest).await?;
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let local = listener.local_addr()?;

    let sessions_closed = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(local, &options.allow_hosts))
        .with_cancellation_token(sessions_closed.clone());
    let handler = server.clone();
    let mcp: Mcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let gate = Arc::new(Gate {
        mcp,
        tokens,
        origins,
        audit,
        sessions: Mutex::default(),
        answers: TaskTracker::new(),
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    // On stderr whatever the log level: operators (and tests, with port 0) learn where it listens.
    eprintln!(
        "theta-host serve: listening on {scheme}://{local}{MCP_PATH} for tenants {} ({} tools at most)",
        active.join(", "),
        server.entries.len()
    );

    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: keep serving the connections there are.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            signal = &mut shutdown => {
                eprintln!("theta-host serve: {signal}: shutting down");
                break;
            }
        };
        let gate = gate.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let gate = gate.clone();
                async move { Ok::<_, Infallible>(gate.handle(req).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let served = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        watcher
                            .watch(http.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                    Err(e) => {
                        tracing::info!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                },
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);

    // New calls are refused from now on; running ones get the grace period.
    server.drain();
    if !server.calls_finished(options.shutdown_grace).await {
        eprintln!(
            "theta-host serve: {} call(s) still running after {} s: cancelling them",
            server.calls_running(),
            options.shutdown_grace.as_secs()
        );
        server.cancel_calls();
        if !server.calls_finished(AFTER_GRACE).await {
            tracing::warn!("calls still running after they were cancelled");
        }
    }
    // What cancelled calls left to release (call slots, spend holds, disposable deployments).
    if !crate::background::drain(AFTER_GRACE).await {
        tracing::warn!(
            "clean-ups of cancelled calls still running at exit; their reservations expire with their TTL"
        );
    }
    // Every call has answered: let the answers reach their clients, then end the sessions (and
    // with them the long-lived SSE streams) and the connections.
    gate.answers.close();
    if tokio::time::timeout(AFTER_GRACE, gate.answers.wait())
        .await
        .is_err()
    {
        tracing::warn!("answers still being delivered at exit");
    }
    sessions_closed.cancel();
    if tokio::time::timeout(AFTER_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open at exit");
    }
    eprintln!("theta-host serve: stopped");
    Ok(())
}

/// `Host` values rmcp accepts: loopback names, the listen address, and `extra`.
fn allowed_hosts(local: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !local.ip().is_unspecified() {
        hosts.push(local.ip().to_string());
    }
    hosts.extend(extra.iter().cloned());
    hosts
}

/// The signal that started the shutdown.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT: stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert {}: no CERTIFICATE in the file", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("--tls-key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("--tls-cert and --tls-key do not make a certificate and its key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Origin and bearer-token checks in front of rmcp, and the session → tenant bindings.
struct Gate {
    mcp: Mcp,
    tokens: LiveTokens,
    origins: OriginPolicy,
    audit: AuditSink,
    /// Which tenant created each session: another tenant's token cannot use it.
    sessions: Mutex<HashMap<String, String>>,
    /// One token per MCP answer still being sent (shutdown waits for them).
    answers: TaskTracker,
}

const SESSION_HEADER: &str = "mcp-session-id";

impl Gate {
    async fn handle(&self, mut req: Request<Incoming>) -> Response<Body> {
        match (req.method(), req.uri().path()) {
            (&Method::GET | &Method::HEAD, HEALTH_PATH) => return text(StatusCode::OK, "ok"),
            (_, MCP_PATH) => {}
            _ => return text(StatusCode::NOT_FOUND, "not found: the MCP endpoint is /mcp"),
        }
        if let Some(origin) = req.headers().get(header::ORIGIN)
            && !self.origins.allows(origin)
        {
            self.refused(&req, "", "the request's Origin is not allowed".into());
            return text(
                StatusCode::FORBIDDEN,
                "forbidden: this Origin may not use the server (see --allow-origin)",
            );
        }
        let tenant = match self
            .tokens
            .current()
            .check(req.headers().get(header::AUTHORIZATION))
        {
            Ok(tenant) => tenant,
            Err(refusal) => {
                self.refused(&req, refusal.tenant(), refusal.reason());
                return unauthorized(&refusal);
            }
        };
        let session = req
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(id) = &session {
            let owner = self.sessions_lock().get(id).cloned();
            if owner.as_ref().is_some_and(|owner| owner != &tenant) {
                self.refused(
                    &req,
                    &tenant,
                    "the session belongs to another tenant".into(),
                );
                // As for a session that does not exist: nothing about the other tenant's session.
                return text(StatusCode::NOT_FOUND, "Not Found: Session not found");
            }
        }
        req.extensions_mut().insert(Authenticated(tenant.clone()));
        let method = req.method().clone();
        let answer = self.answers.token();
        let response = self.mcp.handle(req).await;
        match (&session, response.headers().get(SESSION_HEADER)) {
            (None, Some(created)) => {
                if let Ok(id) = created.to_str() {
                    self.sessions_lock().insert(id.to_owned(), tenant);
                }
            }
            (Some(id), _) if method == Method::DELETE && response.status().is_success() => {
                self.sessions_lock().remove(id);
            }
            _ => {}
        }
        // A POST's answer (an SSE stream that ends after the call's result) counts until it is sent;
        // a GET's stream lasts as long as its session and is not waited for.
        if method == Method::POST {
            let (parts, body) = response.into_parts();
            Response::from_parts(
                parts,
                Tracked {
                    body,
                    _answer: answer,
                }
                .boxed(),
            )
        } else {
            response
        }
    }

    fn sessions_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The audit line of a refused request: who (if known), why; never the token.
    fn refused(&self, req: &Request<Incoming>, tenant: &str, reason: String) {
        tracing::info!(
            tenant,
            "serve: refused {} {}: {reason}",
            req.method(),
            MCP_PATH
        );
        self.audit.record(AuditRecord {
            ts_unix_ms: now_ms(),
            tenant: tenant.to_owned(),
            command: "mcp-http".into(),
            call_id: 0,
            request: 0,
            method: req.method().to_string(),
            host: req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(crate::text::for_terminal)
                .unwrap_or_default(),
            path: MCP_PATH.into(),
            query: None,
            decision: "denied".into(),
            outcome: None,
            effect: None,
            status: None,
            bytes_in: 0,
            spend_usd: None,
            duration_ms: 0,
            reason: Some(reason),
        });
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// 401 with the challenge RFC 6750 asks for.
fn unauthorized(refusal: &Refusal) -> Response<Body> {
    let (challenge, body) = match refusal {
        Refusal::NoToken => (
            "Bearer realm=\"theta-host\"",
            "unauthorized: send Authorization: Bearer <your tenant's token>",
        ),
        _ => (
            "Bearer realm=\"theta-host\", error=\"invalid_token\"",
            "unauthorized: the token is not valid (unknown or revoked)",
        ),
    };
    let mut response = text(StatusCode::UNAUTHORIZED, body);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static(challenge),
    );
    response
}

/// A response body that holds a tracker token until it has been sent (or dropped).
struct Tracked {
    body: Body,
    _answer: TaskTrackerToken,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
