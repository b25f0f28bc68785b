//! Host configuration: read once at start-up from the process environment merged with `.env.local`
//! (the environment wins). Secrets stay in [`Credentials`]; the guest gets only [`HostConfig::guest_env`].

use crate::credentials::{Credentials, SECRET_VARS};
use crate::limits::CallLimits;
use crate::net::Upstream;
use crate::policy::{Allowlist, OutboundPolicy};
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Non-secret variables the guest may see, passed through when set.
pub const GUEST_PASSTHROUGH_VARS: [&str; 14] = [
    "THETA_HTTP_TIMEOUT_MS",
    "THETA_HTTP_MAX_RETRIES",
    "THETA_HTTP_RETRY_BACKOFF_MS",
    "THETA_ONDEMAND_API_BASE_URL",
    "THETA_API_BASE_URL",
    "THETA_EC_PROJECT_ID",
    "THETA_ORG_ID",
    "THETA_INFERENCE_ENDPOINT",
    "THETA_INFERENCE_MODEL",
    "THETA_VIDEO_SA_ID",
    "THETA_WAIT_SECONDS",
    "THETA_POLL_UNTIL_DONE",
    "THETA_POLL_INTERVAL_SECONDS",
    "THETA_POLL_TIMEOUT_SECONDS",
];

/// Base-URL variables: host config, still subject to the allowlist.
const BASE_URL_VARS: [&str; 3] = [
    "THETA_ONDEMAND_API_BASE_URL",
    "THETA_API_BASE_URL",
    "THETA_INFERENCE_ENDPOINT",
];

#[derive(Clone, Debug)]
pub struct HostConfig {
    pub credentials: Credentials,
    pub policy: OutboundPolicy,
    pub limits: CallLimits,
    pub upstream: Upstream,
    /// Fixed DNS answers (tests): host name → addresses. Still checked for being public.
    pub dns_overrides: HashMap<String, Vec<IpAddr>>,
    /// Where the precompiled component is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    /// Keep audit records in memory too (tests read them back).
    pub audit_in_memory: bool,
    /// Non-secret settings passed to the guest's environment.
    pub passthrough: Vec<(String, String)>,
    pub tenant: String,
    /// Use the pooling allocator with this many pre-reserved instance slots.
    pub pooling_instances: Option<u32>,
    /// `THETA_STORE_URL`: the spend store when no tenants file names one.
    pub store: Option<String>,
}

impl HostConfig {
    /// A configuration with no credentials and defaults everywhere.
    pub fn empty() -> Self {
        Self {
            credentials: Credentials::default(),
            policy: OutboundPolicy {
                allowlist: Allowlist::theta_default(),
                dry_run: false,
                inference_host: None,
                ondemand_host: None,
            },
            limits: CallLimits::default(),
            upstream: Upstream::Real,
            dns_overrides: HashMap::new(),
            cache_dir: None,
            audit_log: None,
            audit_in_memory: false,
            passthrough: Vec::new(),
            tenant: "default".into(),
            pooling_instances: None,
            store: None,
        }
    }

    /// Reads the process environment merged with `env_file` (if it exists).
    pub fn from_env(env_file: Option<&Path>) -> anyhow::Result<Self> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Some(path) = env_file.filter(|p| p.exists()) {
            for item in dotenvy::from_path_iter(path)
                .with_context(|| format!("reading {}", path.display()))?
            {
                let (k, v) =
                    item.with_context(|| format!("{}: a line is not KEY=VALUE", path.display()))?;
                vars.insert(k, v);
            }
        }
        vars.extend(std::env::vars().filter(|(k, _)| k.starts_with("THETA_")));
        Self::from_vars(&vars)
    }

    /// Builds the configuration from a variable map; errors name the variable and what is wrong.
    pub fn from_vars(vars: &HashMap<String, String>) -> anyhow::Result<Self> {
        let get = |k: &str| vars.get(k).cloned();
        let mut cfg = Self::empty();
        cfg.credentials = Credentials::from_lookup(&get);
        cfg.policy.dry_run = get("THETA_DRY_RUN").is_some_and(|v| truthy(&v));
        if cfg
            .credentials
            .get(crate::credentials::Family::Video)
            .is_some()
            || get("THETA_ALLOW_VIDEO_API").is_some_and(|v| truthy(&v))
        {
            cfg.policy.allowlist = cfg.policy.allowlist.clone().with_video_api();
        }
        for var in BASE_URL_VARS {
            if let Some(value) = get(var).filter(|v| !v.trim().is_empty()) {
                let uri: http::Uri = value
                    .trim()
                    .parse()
                    .with_context(|| format!("{var} is not a valid URL: `{value}`"))?;
                let target = cfg.policy.allowlist.check(&uri).map_err(|why| {
                    anyhow::anyhow!("{var} is refused by the host allowlist: {why}")
                })?;
                if var == "THETA_INFERENCE_ENDPOINT" {
                    cfg.policy.inference_host = Some(target.host);
                    continue;
                }
                // An on-demand base URL override: its host becomes the on-demand family (its
                // credential, routes and prices), so it must not be a host of another family, and
                // the plugin's paths must stay the route table's paths (no prefix).
                let known = crate::policy::KnownHosts::default();
                match crate::policy::classify::api_for_host(&target.host, known) {
                    None => cfg.policy.ondemand_host = Some(target.host.clone()),
                    Some(crate::policy::Api::OnDemand) => {}
                    Some(other) => bail!(
                        "{var} names {}, a host of the {} API, not an on-demand host: point it at ondemand.thetaedgecloud.com or another on-demand host",
                        target.host,
                        other.family().label()
                    ),
                }
                if !matches!(uri.path(), "" | "/") {
                    bail!(
                        "{var} has the path `{}`: the host's route table matches Theta's own paths, so give only the scheme and host (https://{})",
                        uri.path(),
                        target.host
                    );
                }
            }
        }
        if let Some(addr) = get("THETA_TEST_UPSTREAM").filter(|v| !v.is_empty()) {
            cfg.upstream = Upstream::TestServer(parse_test_upstream(&addr)?);
        }
        if let Some(dir) = get("THETA_HOST_CACHE_DIR") {
            cfg.cache_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
        } else {
            cfg.cache_dir = default_cache_dir();
        }
        if let Some(n) = get("THETA_HOST_POOLING_INSTANCES").filter(|v| !v.is_empty()) {
            cfg.pooling_instances = Some(n.trim().parse().with_context(|| {
                format!("THETA_HOST_POOLING_INSTANCES must be a positive integer, got `{n}`")
            })?);
        }
        cfg.store = get("THETA_STORE_URL").filter(|v| !v.trim().is_empty());
        cfg.audit_log = get("THETA_AUDIT_LOG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        cfg.passthrough = GUEST_PASSTHROUGH_VARS
            .iter()
            .filter_map(|k| get(k).map(|v| (k.to_string(), v)))
            .collect();
        Ok(cfg)
    }

    /// The guest's whole environment: non-secret settings and the names of configured credentials.
    pub fn guest_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .passthrough
            .iter()
            .filter(|(k, _)| !SECRET_VARS.contains(&k.as_str()))
            .cloned()
            .collect();
        env.push(("THETA_HOST_INJECTS_CREDENTIALS".into(), "1".into()));
        env.push((
            "THETA_CONFIGURED_CREDENTIALS".into(),
            self.credentials.configured_variables().join(","),
        ));
        if self.policy.dry_run {
            env.push(("THETA_DRY_RUN".into(), "1".into()));
        }
        env
    }
}

/// Accepts only a loopback `IP:PORT`: the test upstream must never point at a real network.
pub fn parse_test_upstream(text: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = text
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("THETA_TEST_UPSTREAM must be a loopback IP:PORT, got `{text}`"))?;
    if !addr.ip().is_loopback() {
        bail!("THETA_TEST_UPSTREAM must be a loopback address, got {addr}");
    }
    Ok(addr)
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("theta-host"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn guest_env_never_holds_a_secret() {
        let cfg = HostConfig::from_vars(&vars(&[
            ("THETA_ONDEMAND_API_TOKEN", "tok-secret-value"),
            ("THETA_EC_API_KEY", "ec-secret-value"),
            ("THETA_HTTP_MAX_RETRIES", "3"),
            ("THETA_DRY_RUN", "true"),
        ]))
        .unwrap();
        let env = cfg.guest_env();
        let text = format!("{env:?}");
        assert!(!text.contains("secret-value"), "{text}");
        assert!(env.contains(&("THETA_HTTP_MAX_RETRIES".into(), "3".into())));
        assert!(env.contains(&("THETA_DRY_RUN".into(), "1".into())));
        assert!(env.contains(&(
            "THETA_CONFIGURED_CREDENTIALS".into(),
            "THETA_ONDEMAND_API_TOKEN,THETA_EC_API_KEY".into()
        )));
    }

    #[test]
    fn base_url_overrides_obey_the_allowlist() {
        let err = HostConfig::from_vars(&vars(&[(
            "THETA_ONDEMAND_API_BASE_URL",
            "https://evil.example",
        )]))
        .unwrap_err();
        assert!(
            err.to_string().contains("THETA_ONDEMAND_API_BASE_URL"),
            "{err}"
        );
        assert!(
            HostConfig::from_vars(&vars(&[(
                "THETA_ONDEMAND_API_BASE_URL",
                "https://ondemand.thetaedgecloud.com"
            )]))
            .is_ok()
        );
        let err =
            HostConfig::from_vars(&vars(&[("THETA_TEST_UPSTREAM", "10.0.0.1:80")])).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
