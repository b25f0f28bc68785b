//! Name resolution that only ever yields public addresses.
//!
//! The HTTP connector dials exactly the addresses this resolver returns, so checking them here checks
//! what the connection actually reaches: a Theta name that resolves (or rebinds) to loopback, a private
//! network or a metadata address is refused before any socket opens.

use crate::policy::address::non_public_reason;
use hyper_util::client::legacy::connect::dns::Name;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The error a refused resolution carries; the hook finds it in the error chain to explain the refusal.
#[derive(Debug, thiserror::Error)]
#[error("host `{host}` resolves to {ip}, a non-public address ({reason})")]
pub struct NonPublicAddress {
    pub host: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

/// Resolves with the system resolver, or from fixed overrides (used by tests to simulate DNS answers).
#[derive(Clone, Debug, Default)]
pub struct PublicOnlyResolver {
    overrides: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl PublicOnlyResolver {
    pub fn new(overrides: HashMap<String, Vec<IpAddr>>) -> Self {
        Self {
            overrides: Arc::new(overrides),
        }
    }

    /// Resolves `host` and refuses the whole answer if any address is not public: a mixed answer is how
    /// DNS rebinding hides a private address behind a public one.
    pub async fn resolve(&self, host: &str) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = match self.overrides.get(host) {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
            None => tokio::net::lookup_host((host, 0)).await?.collect(),
        };
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("host `{host}` has no addresses"),
            ));
        }
        if let Some((ip, reason)) = addrs
            .iter()
            .find_map(|a| non_public_reason(a.ip()).map(|r| (a.ip(), r)))
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                NonPublicAddress {
                    host: host.to_owned(),
                    ip,
                    reason,
                },
            ));
        }
        Ok(addrs)
    }
}

impl tower_service::Service<Name> for PublicOnlyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.resolve(name.as_str()).await?.into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overrides_to_private_addresses_are_refused() {
        let r = PublicOnlyResolver::new(HashMap::from([
            (
                "a.thetaedgecloud.com".to_owned(),
                vec!["10.0.0.5".parse().unwrap()],
            ),
            (
                "b.thetaedgecloud.com".to_owned(),
                vec!["8.8.8.8".parse().unwrap(), "127.0.0.1".parse().unwrap()],
            ),
            (
                "c.thetaedgecloud.com".to_owned(),
                vec!["8.8.4.4".parse().unwrap()],
            ),
        ]));
        let err = r.resolve("a.thetaedgecloud.com").await.unwrap_err();
        assert!(err.to_string().contains("10.0.0.5"), "{err}");
        let err = r.resolve("b.thetaedgecloud.com").await.unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        assert_eq!(r.resolve("c.thetaedgecloud.com").await.unwrap().len(), 1);
    }
}
