//! Which URLs the guest may reach: HTTPS only, allowlisted host names only, no tricks.
//!
//! Patterns are parsed once when the host starts; each request is checked against them. The checks work on
//! the URI wasmtime built from the guest's request, before any connection exists, and refuse anything
//! ambiguous (IP literals in any notation, userinfo, trailing dots, non-default ports, odd characters)
//! rather than trying to normalise it.

use http::Uri;

/// Theta's own domains: the apex and every subdomain.
pub const DEFAULT_ALLOWED_HOSTS: [&str; 4] = [
    "thetaedgecloud.com",
    "*.thetaedgecloud.com",
    "onthetaedgecloud.com",
    "*.onthetaedgecloud.com",
];

/// The Theta Video API lives outside Theta's EdgeCloud domains; it is allowed only when configured
/// (`THETA_VIDEO_SA_ID` set, or named in a tenant's `allowed_hosts`).
pub const VIDEO_API_HOST: &str = "api.thetavideoapi.com";

/// Longest path-and-query accepted, in bytes.
pub const MAX_PATH_AND_QUERY: usize = 8 * 1024;

/// One allowed host: an exact name, or `*.suffix` for every subdomain of `suffix` (not `suffix` itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    /// Parses `name` or `*.name`; the name must be a plain lower-case DNS name.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim().to_ascii_lowercase();
        let (wildcard, name) = match pattern.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, pattern.clone()),
        };
        validate_dns_name(&name)
            .map_err(|why| format!("allowed host pattern `{pattern}` is invalid: {why}"))?;
        if !name.contains('.') {
            return Err(format!(
                "allowed host pattern `{pattern}` is a bare top-level name; name a domain"
            ));
        }
        Ok(if wildcard {
            HostPattern::Subdomains(name)
        } else {
            HostPattern::Exact(name)
        })
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// The parsed allowlist: host patterns plus the ports allowed besides 443.
#[derive(Clone, Debug)]
pub struct Allowlist {
    patterns: Vec<HostPattern>,
    extra_ports: Vec<u16>,
}

/// A URL that passed the allowlist: the host (lower case) and port to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedTarget {
    pub host: String,
    pub port: u16,
}

impl Allowlist {
    /// Parses host patterns; every pattern must stay inside Theta's domains, so configuration can narrow
    /// the allowlist but never widen it past them.
    pub fn new(patterns: &[impl AsRef<str>], extra_ports: Vec<u16>) -> Result<Self, String> {
        let roots: Vec<HostPattern> = DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|p| HostPattern::parse(p).expect("built-in patterns are valid"))
            .collect();
        let mut parsed = Vec::new();
        for p in patterns {
            let pattern = HostPattern::parse(p.as_ref())?;
            let name = match &pattern {
                HostPattern::Exact(n) | HostPattern::Subdomains(n) => n,
            };
            if !roots.iter().any(|r| r.matches(name)) && name != VIDEO_API_HOST {
                return Err(format!(
                    "allowed host pattern `{}` is outside thetaedgecloud.com / onthetaedgecloud.com",
                    p.as_ref()
                ));
            }
            parsed.push(pattern);
        }
        Ok(Self {
            patterns: parsed,
            extra_ports,
        })
    }

    /// The default allowlist: Theta's domains, port 443 only.
    pub fn theta_default() -> Self {
        Self::new(&DEFAULT_ALLOWED_HOSTS, Vec::new()).expect("built-in patterns are valid")
    }

    /// The default allowlist plus the Theta Video API host.
    pub fn with_video_api(mut self) -> Self {
        let video = HostPattern::Exact(VIDEO_API_HOST.to_owned());
        if !self.patterns.contains(&video) {
            self.patterns.push(video);
        }
        self
    }

    pub fn allows_host(&self, host: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(host))
    }

    /// Checks a request URI; the error says which rule refused it.
    pub fn check(&self, uri: &Uri) -> Result<AllowedTarget, String> {
        self.check_with(uri, |host| self.allows_host(host))
    }

    /// Checks a URL the call was granted (a presigned upload URL): every rule of [`Self::check`]
    /// applies, but its host is allowed for this one URL although it is in no pattern.
    pub fn check_granted(&self, uri: &Uri, granted_host: &str) -> Result<AllowedTarget, String> {
        self.check_with(uri, |host| host == granted_host)
    }

    fn check_with(
        &self,
        uri: &Uri,
        host_allowed: impl Fn(&str) -> bool,
    ) -> Result<AllowedTarget, String> {
        match uri.scheme_str() {
            Some("https") => {}
            Some(other) => return Err(format!("scheme `{other}` is not allowed: HTTPS only")),
            None => return Err("the URL has no scheme: HTTPS only".into()),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| "the URL has no host".to_owned())?;
        if authority.as_str().contains('@') {
            return Err("credentials in the URL (userinfo) are not allowed".into());
        }
        let raw_host = authority.host();
        if raw_host.starts_with('[') {
            return Err(format!(
                "IP literal `{raw_host}` is not allowed: use a host name"
            ));
        }
        if raw_host.ends_with('.') {
            return Err(format!(
                "host `{raw_host}` ends with a dot: write the name without it"
            ));
        }
        if looks_numeric(raw_host) {
            return Err(format!(
                "IP literal `{raw_host}` is not allowed: use a host name"
            ));
        }
        let host = raw_host.to_ascii_lowercase();
        validate_dns_name(&host).map_err(|why| format!("host `{raw_host}` is invalid: {why}"))?;
        if !host_allowed(&host) {
            return Err(format!(
                "host `{host}` is not an allowed Theta host (allowed: {})",
                self.describe()
            ));
        }
        let port = match authority.port_u16() {
            None => 443,
            Some(443) => 443,
            Some(p) if self.extra_ports.contains(&p) => p,
            Some(p) => return Err(format!("port {p} is not allowed: only 443")),
        };
        if authority.as_str().matches(':').count() > 1 {
            return Err("the URL's authority is malformed".into());
        }
        let pq = uri
            .path_and_query()
            .map(|pq| pq.as_str().len())
            .unwrap_or(0);
        if pq > MAX_PATH_AND_QUERY {
            return Err(format!(
                "the URL path and query are {pq} bytes; the limit is {MAX_PATH_AND_QUERY}"
            ));
        }
        Ok(AllowedTarget { host, port })
    }

    pub fn describe(&self) -> String {
        self.patterns
            .iter()
            .map(|p| match p {
                HostPattern::Exact(n) => n.clone(),
                HostPattern::Subdomains(n) => format!("*.{n}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// True when the last label is numeric (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`): every
/// notation that a resolver might read as an IPv4 address. Real top-level domains are never numeric.
fn looks_numeric(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let last = last.to_ascii_lowercase();
    !last.is_empty()
        && (last.chars().all(|c| c.is_ascii_digit())
            || (last.starts_with("0x") && last[2..].chars().all(|c| c.is_ascii_hexdigit())))
}

/// Accepts only LDH names: labels of `a-z`, `0-9`, `-`, 1–63 bytes, 253 bytes in all.
fn validate_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty host".into());
    }
    if name.len() > 253 {
        return Err("longer than 253 bytes".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 bytes".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with `-`".into());
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!("character `{}` is not allowed", c.escape_default()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str) -> Result<AllowedTarget, String> {
        Allowlist::theta_default().check(&url.parse::<Uri>().expect("valid URI"))
    }

    #[test]
    fn theta_hosts_pass() {
        assert_eq!(
            check("https://ondemand.thetaedgecloud.com/service/list").unwrap(),
            AllowedTarget {
                host: "ondemand.thetaedgecloud.com".into(),
                port: 443
            }
        );
        assert!(check("https://x-1.tec-s1.onthetaedgecloud.com/v1/models").is_ok());
        assert!(check("https://ONDEMAND.ThetaEdgeCloud.com:443/").is_ok());
    }

    #[test]
    fn tricks_are_refused_with_the_rule() {
        let cases = [
            ("http://ondemand.thetaedgecloud.com/", "HTTPS only"),
            (
                "https://ondemand.thetaedgecloud.com.evil.example/",
                "not an allowed",
            ),
            ("https://evilthetaedgecloud.com/", "not an allowed"),
            ("https://thetaedgecloud.com@evil.example/", "userinfo"),
            ("https://127.0.0.1/", "IP literal"),
            ("https://2130706433/", "IP literal"),
            ("https://0x7f.0.0.1/", "IP literal"),
            ("https://[::1]/", "IP literal"),
            ("https://ondemand.thetaedgecloud.com./", "ends with a dot"),
            ("https://ondemand.thetaedgecloud.com:8443/", "port 8443"),
            ("ftp://ondemand.thetaedgecloud.com/", "HTTPS only"),
        ];
        for (url, why) in cases {
            let err = check(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn patterns_cannot_widen_past_theta() {
        assert!(Allowlist::new(&["*.evil.example"], vec![]).is_err());
        assert!(Allowlist::new(&["*.thetavideoapi.com"], vec![]).is_err());
        assert!(!Allowlist::theta_default().allows_host(VIDEO_API_HOST));
        assert!(
            Allowlist::theta_default()
                .with_video_api()
                .allows_host(VIDEO_API_HOST)
        );
        assert!(Allowlist::new(&["ondemand.thetaedgecloud.com"], vec![]).is_ok());
        let narrow = Allowlist::new(&["ondemand.thetaedgecloud.com"], vec![]).unwrap();
        assert!(!narrow.allows_host("controller.thetaedgecloud.com"));
        // `*.x` does not match `x` itself, nor `evilx`.
        let sub = HostPattern::parse("*.thetaedgecloud.com").unwrap();
        assert!(!sub.matches("thetaedgecloud.com"));
        assert!(!sub.matches("evilthetaedgecloud.com"));
        assert!(sub.matches("a.thetaedgecloud.com"));
    }
}
