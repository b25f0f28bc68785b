//! The host's outbound policy: every rule a request must pass before it leaves the host.
//!
//! Kept apart from transport (`net`) and from the wasmtime hook (`hooks`) so each rule can be read and
//! tested on its own.

pub mod address;
pub mod allowlist;
pub mod canonical;
pub mod classify;
pub mod presigned;
pub mod routes;

use crate::credentials::Family;
pub use allowlist::{AllowedTarget, Allowlist};
pub use classify::{Effect, KnownHosts};
use http::{HeaderName, Method, Uri};
pub use routes::{Api, Price, Route};

/// A refusal, rendered to the guest as `theta-policy <kind>...` (see docs/host-guest-contract.md).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("theta-policy denied: {0}")]
    Denied(String),
    #[error("theta-policy dry-run: {method} {url}")]
    DryRun { method: String, url: String },
    #[error("theta-policy missing-credential {variable}: {hint}")]
    MissingCredential { variable: String, hint: String },
    #[error("theta-policy limit: {0}")]
    Limit(String),
}

impl Refusal {
    /// Short decision label for the audit trail.
    pub fn decision(&self) -> &'static str {
        match self {
            Refusal::Denied(_) => "denied",
            Refusal::DryRun { .. } => "dry-run",
            Refusal::MissingCredential { .. } => "missing-credential",
            Refusal::Limit(_) => "limit",
        }
    }
}

/// Headers the guest may never set: credentials (the host injects them), hop-by-hop headers, and
/// headers that change a request's meaning behind a proxy (method overrides, rewritten URLs,
/// forwarding claims).
pub const GUEST_FORBIDDEN_HEADERS: [&str; 25] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-tva-sa-id",
    "x-tva-sa-secret",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "forwarded",
    "x-forwarded-for",
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
    "x-original-url",
    "x-rewrite-url",
    "x-original-method",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
];

pub fn header_forbidden(name: &HeaderName) -> bool {
    let name = name.as_str();
    GUEST_FORBIDDEN_HEADERS.contains(&name) || name.starts_with("x-forwarded-")
}

/// The static part of the policy, built once per host.
#[derive(Clone, Debug)]
pub struct OutboundPolicy {
    pub allowlist: Allowlist,
    pub dry_run: bool,
    /// Host of `THETA_INFERENCE_ENDPOINT`, if configured (already allowlist-checked).
    pub inference_host: Option<String>,
    /// Host of `THETA_ONDEMAND_API_BASE_URL` when it names another Theta host.
    pub ondemand_host: Option<String>,
}

/// A request that passed every rule.
#[derive(Clone, Debug)]
pub struct Approved {
    pub target: AllowedTarget,
    pub api: Api,
    pub route: &'static Route,
    /// The path's segments (canonical), for prices that depend on them.
    pub segments: Vec<String>,
}

impl Approved {
    pub fn family(&self) -> Family {
        self.api.family()
    }
}

impl OutboundPolicy {
    /// Checks one request of a call of `command` (canonical): method, URL, canonical path, the route
    /// table (the route must belong to `command`), dry-run, and whether its credential is configured.
    pub fn check(
        &self,
        method: &Method,
        uri: &Uri,
        command: &str,
        own_deployments: &[String],
        upload_grants: &[String],
        credential_configured: impl Fn(Family) -> bool,
    ) -> Result<Approved, Refusal> {
        if !classify::method_allowed(method) {
            return Err(Refusal::Denied(format!("method {method} is not allowed")));
        }
        if presigned::is_storage_host(uri) {
            return self.check_presigned_upload(method, uri, command, upload_grants);
        }
        let target = self.allowlist.check(uri).map_err(Refusal::Denied)?;
        let known = KnownHosts {
            ondemand: self.ondemand_host.as_deref(),
            inference: self.inference_host.as_deref(),
            own_deployments,
        };
        let api = classify::api_for_host(&target.host, known).ok_or_else(|| {
            Refusal::Denied(format!(
                "host `{}` is not an API this call may reach: only Theta's API hosts, the configured dedicated endpoint (THETA_INFERENCE_ENDPOINT) and deployments this call created",
                target.host
            ))
        })?;
        let path = uri.path();
        let segments = canonical::segments(path).map_err(Refusal::Denied)?;
        if let Some(why) = canonical::query_refusal(uri.query()) {
            return Err(Refusal::Denied(why));
        }
        let shown = crate::text::for_terminal(path);
        let route = routes::find(method.as_str(), api, &segments).ok_or_else(|| {
            Refusal::Denied(format!(
                "{method} {shown} on {} is not a request the plugin makes: unknown requests are never sent",
                target.host
            ))
        })?;
        if !route.used_by(command) {
            return Err(Refusal::Denied(format!(
                "{method} {shown} belongs to {}, not to `{}`: a call may only make its own command's requests",
                route.commands.join(", "),
                crate::text::for_terminal(command)
            )));
        }
        if self.dry_run && route.effect != Effect::Read {
            return Err(Refusal::DryRun {
                method: method.to_string(),
                url: format!("https://{}{}", target.host, path),
            });
        }
        let family = api.family();
        if route.credential && !credential_configured(family) {
            let variable = crate::credentials::variable_for(family).to_owned();
            return Err(Refusal::MissingCredential {
                hint: format!(
                    "the host has no {} credential: set {variable} in the host's environment or .env.local (see `theta-host auth`)",
                    family.label()
                ),
                variable,
            });
        }
        Ok(Approved {
            target,
            api,
            route,
            segments: segments.into_iter().map(str::to_owned).collect(),
        })
    }

    /// The storage host is in no allowlist pattern: it is reachable only with a PUT of the upload
    /// command to exactly a URL this call was granted (and not used yet; the caller takes the grant).
    fn check_presigned_upload(
        &self,
        method: &Method,
        uri: &Uri,
        command: &str,
        upload_grants: &[String],
    ) -> Result<Approved, Refusal> {
        let target = self
            .allowlist
            .check_granted(uri, presigned::STORAGE_HOST)
            .map_err(Refusal::Denied)?;
        let shown = presigned::shown(uri);
        let route = routes::find(method.as_str(), Api::PresignedUpload, &[]).ok_or_else(|| {
            Refusal::Denied(format!(
                "{method} {shown} is not allowed: the storage host takes only the one PUT to a presigned upload URL the call was given"
            ))
        })?;
        if !route.used_by(command) {
            return Err(Refusal::Denied(format!(
                "PUT {shown} belongs to {}, not to `{}`: a call may only make its own command's requests",
                route.commands.join(", "),
                crate::text::for_terminal(command)
            )));
        }
        let granted = presigned::canonical_url(uri).is_some_and(|url| upload_grants.contains(&url));
        if !granted {
            return Err(Refusal::Denied(format!(
                "PUT {shown} is not a presigned upload URL this call was given, or it was used already: the storage host is reachable only for the exact URL (path and signed query) the upload-URL answer of the same call named, once"
            )));
        }
        if self.dry_run {
            return Err(Refusal::DryRun {
                method: method.to_string(),
                url: shown,
            });
        }
        Ok(Approved {
            target,
            api: Api::PresignedUpload,
            route,
            segments: Vec::new(),
        })
    }
}
