//! One keep-alive HTTPS client shared by every call: connections to Theta are reused across calls and
//! tenants, TLS is rustls with the webpki roots, and every dial goes through [`PublicOnlyResolver`].

use super::resolver::{NonPublicAddress, PublicOnlyResolver};
use bytes::Bytes;
use http::Uri;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_http::Error as HttpError;

/// The body type sent upstream.
pub type OutBody = UnsyncBoxBody<Bytes, HttpError>;

/// Where approved requests go.
#[derive(Clone, Debug, Default)]
pub enum Upstream {
    /// The real hosts, over HTTPS, public addresses only.
    #[default]
    Real,
    /// Tests and the demo only: every approved request goes over plain HTTP to this loopback address,
    /// with the original `Host` header. Off unless explicitly configured.
    TestServer(SocketAddr),
}

#[derive(Clone)]
pub struct OutboundClient {
    client: Client<HttpsConnector<HttpConnector<PublicOnlyResolver>>, OutBody>,
    upstream: Upstream,
}

/// Why a send failed, already translated for the guest.
#[derive(Debug)]
pub enum SendError {
    /// The destination resolved to a non-public address: a policy refusal.
    NonPublic(String),
    Transport(HttpError),
}

impl OutboundClient {
    pub fn new(upstream: Upstream, dns_overrides: HashMap<String, Vec<IpAddr>>) -> Self {
        let mut http = HttpConnector::new_with_resolver(PublicOnlyResolver::new(dns_overrides));
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.set_nodelay(true);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        // Plain HTTP exists only for the explicit loopback test server.
        let connector = match upstream {
            Upstream::Real => builder.https_only().enable_http1().wrap_connector(http),
            Upstream::TestServer(_) => builder.https_or_http().enable_http1().wrap_connector(http),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .build(connector);
        Self { client, upstream }
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The URI actually dialled for an approved request.
    pub fn wire_uri(&self, uri: &Uri) -> Uri {
        match &self.upstream {
            Upstream::Real => uri.clone(),
            Upstream::TestServer(addr) => {
                let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                format!("http://{addr}{pq}")
                    .parse()
                    .expect("socket address and path form a valid URI")
            }
        }
    }

    pub async fn send(
        &self,
        request: http::Request<OutBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendError> {
        self.client.request(request).await.map_err(translate)
    }
}

fn translate(err: hyper_util::client::legacy::Error) -> SendError {
    // Walk the chain: a NonPublicAddress from the resolver is a policy refusal, not a network error.
    let mut source: Option<&(dyn StdError + 'static)> = Some(&err);
    while let Some(e) = source {
        if let Some(np) = e.downcast_ref::<NonPublicAddress>() {
            return SendError::NonPublic(np.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(np) = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<NonPublicAddress>())
        {
            return SendError::NonPublic(np.to_string());
        }
        // The request body was cut at the host's size limit (GuardedBody): say so, not "protocol error".
        if let Some(HttpError::HttpRequestBodySize(limit)) = e.downcast_ref::<HttpError>() {
            return SendError::Transport(HttpError::HttpRequestBodySize(*limit));
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return SendError::Transport(HttpError::ConnectionReadTimeout);
            }
            if h.is_incomplete_message() {
                return SendError::Transport(HttpError::HttpResponseIncomplete);
            }
        }
        source = e.source();
    }
    if err.is_connect() {
        let text = err.source().map(|s| s.to_string()).unwrap_or_default();
        if text.contains("dns error") || text.contains("failed to lookup") {
            return SendError::Transport(HttpError::DnsError {
                rcode: Some(text),
                info_code: None,
            });
        }
        return SendError::Transport(HttpError::ConnectionRefused);
    }
    SendError::Transport(HttpError::HttpProtocolError)
}
