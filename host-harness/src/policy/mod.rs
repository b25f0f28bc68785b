//! The host's outbound policy: every rule a request must pass before it leaves the host.
//!
//! Kept apart from transport (`net`) and from the wasmtime hook (`hooks`) so each rule can be read and
//! tested on its own.

pub mod address;
pub mod allowlist;
pub mod classify;

use crate::credentials::Family;
pub use allowlist::{AllowedTarget, Allowlist};
pub use classify::{Classified, Effect};
use http::{HeaderName, Method, Uri};

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

/// Headers the guest may never set: credentials (the host injects them) and hop-by-hop headers.
pub const GUEST_FORBIDDEN_HEADERS: [&str; 16] = [
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
];

pub fn header_forbidden(name: &HeaderName) -> bool {
    GUEST_FORBIDDEN_HEADERS.contains(&name.as_str())
}

/// The static part of the policy, built once per host.
#[derive(Clone, Debug)]
pub struct OutboundPolicy {
    pub allowlist: Allowlist,
    pub dry_run: bool,
    /// Host of `THETA_INFERENCE_ENDPOINT`, if configured (already allowlist-checked).
    pub inference_host: Option<String>,
}

/// A request that passed every rule.
#[derive(Clone, Debug)]
pub struct Approved {
    pub target: AllowedTarget,
    pub class: Classified,
}

impl OutboundPolicy {
    /// Checks one request: method, URL, dry-run, and whether its credential is configured.
    pub fn check(
        &self,
        method: &Method,
        uri: &Uri,
        credential_configured: impl Fn(Family) -> bool,
    ) -> Result<Approved, Refusal> {
        if !classify::method_allowed(method) {
            return Err(Refusal::Denied(format!("method {method} is not allowed")));
        }
        let target = self.allowlist.check(uri).map_err(Refusal::Denied)?;
        let path = uri.path();
        let class = classify::classify(method, &target.host, path, self.inference_host.as_deref());
        if self.dry_run && class.effect != Effect::Read {
            return Err(Refusal::DryRun {
                method: method.to_string(),
                url: format!("https://{}{}", target.host, path),
            });
        }
        if class.needs_credential && !credential_configured(class.family) {
            let variable = crate::credentials::variable_for(class.family).to_owned();
            return Err(Refusal::MissingCredential {
                hint: format!(
                    "the host has no {} credential: set {variable} in the host's environment or .env.local (see `theta-host auth`)",
                    class.family.label()
                ),
                variable,
            });
        }
        Ok(Approved { target, class })
    }
}
