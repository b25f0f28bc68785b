//! The plugin's configuration, read from its environment (`wasi:cli/environment`). Every value is
//! checked here, once, so a bad setting fails with the variable's name before anything is sent.

use crate::error::{Result, ThetaError};

pub const DEFAULT_ONDEMAND_BASE: &str = "https://ondemand.thetaedgecloud.com";
pub const BASE_URL_VARS: [&str; 2] = ["THETA_ONDEMAND_API_BASE_URL", "THETA_API_BASE_URL"];
/// Where the on-demand token may come from, in order; the first is the one we name in errors.
pub const ONDEMAND_TOKEN_VARS: [&str; 3] = [
    "THETA_ONDEMAND_API_TOKEN",
    "THETA_ONDEMAND_API_KEY",
    "THETA_API_KEY",
];
pub const ONDEMAND_TOKEN_VAR: &str = ONDEMAND_TOKEN_VARS[0];
/// Credentials of the other families, when they come from our own environment (other hosts).
pub const CONTROLLER_KEY_VAR: &str = "THETA_EC_API_KEY";
pub const PROJECT_ID_VAR: &str = "THETA_EC_PROJECT_ID";
pub const ORG_ID_VAR: &str = "THETA_ORG_ID";
pub const INFERENCE_ENDPOINT_VAR: &str = "THETA_INFERENCE_ENDPOINT";
pub const INFERENCE_TOKEN_VAR: &str = "THETA_INFERENCE_AUTH_TOKEN";
pub const INFERENCE_USER_VAR: &str = "THETA_INFERENCE_AUTH_USER";
pub const INFERENCE_PASS_VAR: &str = "THETA_INFERENCE_AUTH_PASS";
pub const VIDEO_ID_VAR: &str = "THETA_VIDEO_SA_ID";
pub const VIDEO_SECRET_VAR: &str = "THETA_VIDEO_SA_SECRET";
const OWN_SECRET_VARS: [&str; 5] = [
    CONTROLLER_KEY_VAR,
    INFERENCE_TOKEN_VAR,
    INFERENCE_USER_VAR,
    INFERENCE_PASS_VAR,
    VIDEO_SECRET_VAR,
];
/// Chat with `messages` may take 30–50 s before the first token.
pub const CHAT_TIMEOUT_MS: u64 = 120_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Validated on-demand base URL, without a trailing slash.
    pub ondemand_base: String,
    pub dry_run: bool,
    pub timeout_ms: u64,
    pub max_retries: u32,
    pub backoff_ms: u64,
    /// The host adds credentials at the HTTP boundary (`THETA_HOST_INJECTS_CREDENTIALS=1`).
    pub host_injects_credentials: bool,
    /// A token from our own environment (other hosts): (variable, value).
    pub ondemand_token: Option<(String, String)>,
    /// Other families' secrets from our own environment: (variable, value).
    pub own_secrets: Vec<(String, String)>,
    /// `THETA_CONFIGURED_CREDENTIALS`: the names the host holds (never values); `None` when not told.
    pub configured: Option<Vec<String>>,
    /// Non-secret settings: project, organisation, video service account, dedicated endpoint, model.
    pub project_id: Option<String>,
    pub org_id: Option<String>,
    pub video_sa_id: Option<String>,
    /// Raw `THETA_INFERENCE_ENDPOINT`; validated by the commands that use it.
    pub inference_endpoint: Option<String>,
    pub inference_model: Option<String>,
    /// `THETA_MAX_REQUEST_BYTES`: the host's limit on one request body; a bigger body is refused here,
    /// before anything is sent (`None`: the host did not say).
    pub max_request_bytes: Option<u64>,
    /// `THETA_CALL_WALL_CLOCK_MS`: how long the host lets one call run; waiting windows must fit in
    /// it (`None`: the host did not say).
    pub call_wall_clock_ms: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ondemand_base: DEFAULT_ONDEMAND_BASE.into(),
            dry_run: false,
            timeout_ms: 20_000,
            max_retries: 2,
            backoff_ms: 250,
            host_injects_credentials: false,
            ondemand_token: None,
            own_secrets: Vec::new(),
            configured: None,
            project_id: None,
            org_id: None,
            video_sa_id: None,
            inference_endpoint: None,
            inference_model: None,
            max_request_bytes: None,
            call_wall_clock_ms: None,
        }
    }
}

impl Config {
    /// Reads the component's environment.
    pub fn load() -> Result<Self> {
        Self::from_vars(&wasip2::cli::environment::get_environment())
    }

    pub fn from_vars(vars: &[(String, String)]) -> Result<Self> {
        let get = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let mut cfg = Config::default();
        for var in BASE_URL_VARS {
            if let Some(url) = get(var) {
                cfg.ondemand_base = validate_base_url(url).map_err(|reason| {
                    ThetaError::invalid(var, format!("{reason} (got `{url}`)"))
                })?;
                break;
            }
        }
        cfg.dry_run = match get("THETA_DRY_RUN") {
            Some(v) => parse_bool("THETA_DRY_RUN", v)?,
            None => false,
        };
        cfg.host_injects_credentials = match get("THETA_HOST_INJECTS_CREDENTIALS") {
            Some(v) => parse_bool("THETA_HOST_INJECTS_CREDENTIALS", v)?,
            None => false,
        };
        if let Some(v) = get("THETA_HTTP_TIMEOUT_MS") {
            cfg.timeout_ms = parse_u64("THETA_HTTP_TIMEOUT_MS", v)?.clamp(1_000, 120_000);
        }
        if let Some(v) = get("THETA_MAX_REQUEST_BYTES") {
            cfg.max_request_bytes = Some(parse_u64("THETA_MAX_REQUEST_BYTES", v)?);
        }
        if let Some(v) = get("THETA_CALL_WALL_CLOCK_MS") {
            cfg.call_wall_clock_ms = Some(parse_u64("THETA_CALL_WALL_CLOCK_MS", v)?);
        }
        if let Some(v) = get("THETA_HTTP_MAX_RETRIES") {
            cfg.max_retries = parse_u64("THETA_HTTP_MAX_RETRIES", v)?.min(6) as u32;
        }
        if let Some(v) = get("THETA_HTTP_RETRY_BACKOFF_MS") {
            cfg.backoff_ms = parse_u64("THETA_HTTP_RETRY_BACKOFF_MS", v)?.clamp(25, 10_000);
        }
        cfg.ondemand_token = ONDEMAND_TOKEN_VARS
            .iter()
            .find_map(|var| get(var).map(|v| (var.to_string(), v.to_owned())));
        cfg.own_secrets = OWN_SECRET_VARS
            .iter()
            .filter_map(|var| get(var).map(|v| (var.to_string(), v.to_owned())))
            .collect();
        cfg.configured = vars
            .iter()
            .find(|(k, _)| k == "THETA_CONFIGURED_CREDENTIALS")
            .map(|(_, v)| {
                v.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            });
        let text = |name: &str| get(name).map(str::to_owned);
        cfg.project_id = text(PROJECT_ID_VAR);
        cfg.org_id = text(ORG_ID_VAR);
        cfg.video_sa_id = text(VIDEO_ID_VAR);
        cfg.inference_endpoint = text(INFERENCE_ENDPOINT_VAR);
        cfg.inference_model = text("THETA_INFERENCE_MODEL");
        Ok(cfg)
    }

    /// A secret of ours (not the host's) by variable name.
    pub fn own(&self, var: &str) -> Option<&str> {
        self.own_secrets
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a credential variable is available: ours, or the host says it holds it (a host that
    /// injects but does not list its names is trusted to have it).
    pub fn has(&self, var: &str) -> bool {
        self.own(var).is_some()
            || (var == ONDEMAND_TOKEN_VAR && self.ondemand_token.is_some())
            || (self.host_injects_credentials
                && self.configured.as_ref().is_none_or(|c| {
                    c.iter().any(|n| {
                        n == var
                            || (var == ONDEMAND_TOKEN_VAR
                                && ONDEMAND_TOKEN_VARS.contains(&n.as_str()))
                    })
                }))
    }

    /// Delay before retry number `attempt` (1-based): base × 2^(attempt−1).
    pub fn backoff_for(&self, attempt: u32) -> u64 {
        self.backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
    }
}

fn parse_bool(var: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ThetaError::invalid(
            var,
            format!("expected 1/true/yes or 0/false/no, got `{v}`"),
        )),
    }
}

fn parse_u64(var: &str, v: &str) -> Result<u64> {
    v.parse::<u64>().map_err(|_| {
        ThetaError::invalid(var, format!("expected a non-negative integer, got `{v}`"))
    })
}

/// Theta's API hosts: these domains or their subdomains, nothing else.
const ALLOWED_DOMAINS: [&str; 2] = ["thetaedgecloud.com", "onthetaedgecloud.com"];

/// Checks a base URL: `https://`, host under an allowed domain, no userinfo, port, IP, query or
/// fragment. Returns it without a trailing slash.
pub fn validate_base_url(url: &str) -> std::result::Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("must start with https://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("must not contain user info".into());
    }
    if authority.contains(':') || authority.contains('[') {
        return Err("must not name a port or an IP address".into());
    }
    if path.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
    {
        return Err("the path may only contain letters, digits and - . _ ~ /".into());
    }
    let host = authority.to_ascii_lowercase();
    if host.is_empty()
        || host.ends_with('.')
        || host.split('.').any(|label| {
            label.is_empty()
                || label.starts_with('-')
                || label.ends_with('-')
                || !label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    {
        return Err("the host name is not valid".into());
    }
    if host
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("must not be an IP address".into());
    }
    let allowed = ALLOWED_DOMAINS
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")));
    if !allowed {
        return Err(
            "the host must be thetaedgecloud.com or onthetaedgecloud.com or a subdomain".into(),
        );
    }
    Ok(format!("https://{host}{}", path.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(&[]).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.ondemand_base, "https://ondemand.thetaedgecloud.com");
    }

    #[test]
    fn base_url_rules() {
        for ok in [
            "https://ondemand.thetaedgecloud.com",
            "https://ondemand.thetaedgecloud.com/",
            "https://THETAEDGECLOUD.com",
            "https://x-1.tec-s1.onthetaedgecloud.com/api",
        ] {
            assert!(validate_base_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            validate_base_url("https://ondemand.thetaedgecloud.com/").unwrap(),
            "https://ondemand.thetaedgecloud.com"
        );
        for bad in [
            "http://ondemand.thetaedgecloud.com",
            "https://evil.com",
            "https://thetaedgecloud.com.evil.com",
            "https://evilthetaedgecloud.com",
            "https://user@ondemand.thetaedgecloud.com",
            "https://ondemand.thetaedgecloud.com:8443",
            "https://127.0.0.1",
            "https://[::1]",
            "https://ondemand.thetaedgecloud.com.",
            "https://ondemand.thetaedgecloud.com/?x=1",
            "https://ondemand.thetaedgecloud.com/#f",
            "https://a..thetaedgecloud.com",
            "https://",
            "ondemand.thetaedgecloud.com",
        ] {
            assert!(validate_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let e =
            Config::from_vars(&vars(&[("THETA_API_BASE_URL", "https://evil.com")])).unwrap_err();
        assert!(
            matches!(e, ThetaError::InvalidArgument { ref field, .. } if field == "THETA_API_BASE_URL"),
            "{e}"
        );
        // The on-demand specific variable wins over the MCP-style one.
        let c = Config::from_vars(&vars(&[
            (
                "THETA_ONDEMAND_API_BASE_URL",
                "https://a.thetaedgecloud.com",
            ),
            ("THETA_API_BASE_URL", "https://evil.com"),
        ]))
        .unwrap();
        assert_eq!(c.ondemand_base, "https://a.thetaedgecloud.com");
        let e = Config::from_vars(&vars(&[("THETA_HTTP_TIMEOUT_MS", "soon")])).unwrap_err();
        assert!(
            matches!(e, ThetaError::InvalidArgument { ref field, .. } if field == "THETA_HTTP_TIMEOUT_MS")
        );
        let e = Config::from_vars(&vars(&[("THETA_DRY_RUN", "maybe")])).unwrap_err();
        assert!(
            matches!(e, ThetaError::InvalidArgument { ref field, .. } if field == "THETA_DRY_RUN")
        );
    }

    #[test]
    fn knobs_are_clamped() {
        let c = Config::from_vars(&vars(&[
            ("THETA_HTTP_TIMEOUT_MS", "5"),
            ("THETA_HTTP_MAX_RETRIES", "60"),
            ("THETA_HTTP_RETRY_BACKOFF_MS", "999999"),
            ("THETA_DRY_RUN", "yes"),
            ("THETA_HOST_INJECTS_CREDENTIALS", "1"),
            ("THETA_API_KEY", "k"),
        ]))
        .unwrap();
        assert_eq!(
            (c.timeout_ms, c.max_retries, c.backoff_ms),
            (1_000, 6, 10_000)
        );
        assert!(c.dry_run && c.host_injects_credentials);
        assert_eq!(c.ondemand_token, Some(("THETA_API_KEY".into(), "k".into())));
        let c = Config::from_vars(&vars(&[("THETA_HTTP_TIMEOUT_MS", "999999")])).unwrap();
        assert_eq!(c.timeout_ms, 120_000);
        let c = Config::default();
        assert_eq!(
            (c.backoff_for(1), c.backoff_for(2), c.backoff_for(3)),
            (250, 500, 1000)
        );
    }
}
