//! The listener, the per-connection HTTP/1.1 loop, and dispatch: record the request, apply any
//! fault, route by `Host` to a family, then by path.

use crate::faults::FaultKind;
use crate::reply::{self, Delivery, Reply, RespBody};
use crate::state::{RecordedRequest, State};
use crate::{
    CONTROLLER_HOST, FakeConfig, Family, MAX_BODY_BYTES, ONDEMAND_HOST, PLATFORM_HOST, VIDEO_HOST,
    controller, dedicated, ondemand, platform, video,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// What every connection shares.
pub(crate) struct Shared {
    pub config: FakeConfig,
    pub state: State,
}

impl Shared {
    pub fn new(config: FakeConfig) -> Shared {
        Shared {
            config,
            state: State::default(),
        }
    }
}

/// The accept task; it owns every connection task, so ending it ends them all.
pub(crate) struct ServerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// Stop accepting, abort every connection and wait for them to be gone.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// Abort without waiting (from `Drop`): the accept task is dropped with its connections.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Bind `addr` and serve until the handle is shut down or aborted.
pub(crate) async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(connection(stream, shared.clone()));
                    }
                    Err(e) => {
                        tracing::warn!("fake-edgecloud: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    });
    Ok((local, ServerHandle { stop, task }))
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(request, &shared).await) }
    });
    if let Err(e) = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!("fake-edgecloud: connection ended: {e}");
    }
}

/// The `Host` header (or the URI authority) without the port, lower-cased.
fn host_of<B>(request: &Request<B>) -> String {
    let raw = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    strip_port(raw.trim()).to_ascii_lowercase()
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The family serving `host`.
fn family_for(host: &str, config: &FakeConfig) -> Option<Family> {
    match host {
        ONDEMAND_HOST => Some(Family::OnDemand),
        CONTROLLER_HOST => Some(Family::Controller),
        PLATFORM_HOST => Some(Family::Platform),
        VIDEO_HOST => Some(Family::Video),
        crate::STORAGE_HOST => Some(Family::Storage),
        "127.0.0.1" | "localhost" | "::1" => config.loopback_family,
        // Another on-demand deployment of Theta's (a base-URL override, e.g. a beta host).
        h if h.starts_with("ondemand") && h.ends_with(".thetaedgecloud.com") => {
            Some(Family::OnDemand)
        }
        h if h.ends_with(".onthetaedgecloud.com") || h.ends_with(".thetaedgecloud.com") => {
            Some(Family::Dedicated)
        }
        _ => None,
    }
}

/// A body that claims to be JSON but is not (an HTML error page from a proxy).
const NOT_JSON: &str = "<html><head><title>502 Bad Gateway</title></head>\
<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>\n";

/// Read, record, then answer one request.
async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<RespBody> {
    let host = host_of(&request);
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (body, too_large) = if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        (Bytes::new(), true)
    } else {
        match Limited::new(request.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(collected) => (collected.to_bytes(), false),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => (Bytes::new(), true),
            // The client went away mid-body; record what we know.
            Err(_) => (Bytes::new(), false),
        }
    };
    let recorded = RecordedRequest {
        method,
        host,
        path,
        query,
        headers,
        body: body.to_vec(),
    };
    shared.state.record(recorded.clone());
    if too_large {
        let reply = Reply::error(413, "request entity too large: the limit is 10 MiB");
        return reply::render(reply, &Delivery::default());
    }

    let mut delivery = Delivery {
        split: shared.config.sse_split,
        token_delay: shared.config.token_delay,
        ..Delivery::default()
    };
    let mut answer_after = None;
    match shared.state.take_fault(&recorded) {
        None => {}
        Some(FaultKind::Status {
            status,
            body,
            retry_after,
        }) => {
            let json = serde_json::from_str::<serde_json::Value>(&body).is_ok();
            let content_type = if json {
                "application/json; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            };
            let mut reply = Reply::raw(status, content_type, body);
            if let Some(secs) = retry_after {
                reply = reply.with_header("retry-after", secs.to_string());
            }
            return reply::render(reply, &delivery);
        }
        Some(FaultKind::BadJson) => {
            let reply = Reply::raw(200, "application/json; charset=utf-8", NOT_JSON);
            return reply::render(reply, &delivery);
        }
        Some(FaultKind::Redirect { status, location }) => {
            let reply = Reply::raw(status, "text/plain; charset=utf-8", "moved")
                .with_header("location", location);
            return reply::render(reply, &delivery);
        }
        Some(FaultKind::HugeBody(bytes)) => {
            let reply = Reply::raw(200, "application/json; charset=utf-8", "7".repeat(bytes));
            return reply::render(reply, &delivery);
        }
        Some(FaultKind::Hang) => std::future::pending::<()>().await,
        Some(FaultKind::SlowFirstByte(delay)) => tokio::time::sleep(delay).await,
        Some(FaultKind::SlowAnswer(delay)) => answer_after = Some(delay),
        Some(FaultKind::SlowBody {
            delay_between_chunks,
        }) => delivery.slow = Some(delay_between_chunks),
        Some(FaultKind::CutStream { after_events }) => delivery.cut_after = Some(after_events),
        Some(FaultKind::SseFraming(framing)) => delivery.framing = Some(framing),
    }

    let reply = match family_for(&recorded.host, &shared.config) {
        Some(Family::OnDemand) => ondemand::handle(&recorded, shared),
        Some(Family::Controller) => controller::handle(&recorded, shared),
        Some(Family::Platform) => platform::handle(&recorded, shared),
        Some(Family::Dedicated) => dedicated::handle(&recorded, shared),
        Some(Family::Video) => video::handle(&recorded, shared),
        Some(Family::Storage) => crate::storage::handle(&recorded, shared),
        None if recorded.host.is_empty() => Reply::error(400, "missing Host header"),
        None => Reply::error(
            421,
            format!(
                "misdirected request: unknown host `{}` (this fake serves {ONDEMAND_HOST})",
                recorded.host
            ),
        ),
    };
    // The request already took effect; only its answer is late.
    if let Some(delay) = answer_after {
        tokio::time::sleep(delay).await;
    }
    reply::render(reply, &delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(
            strip_port("ondemand.thetaedgecloud.com:443"),
            "ondemand.thetaedgecloud.com"
        );
        assert_eq!(strip_port("127.0.0.1"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        let config = FakeConfig::default();
        assert_eq!(
            family_for("ondemand.thetaedgecloud.com", &config),
            Some(Family::OnDemand)
        );
        assert_eq!(family_for("localhost", &config), Some(Family::OnDemand));
        assert_eq!(family_for("example.com", &config), None);
    }
}
