//! Tenants: who may run which commands, reach which hosts, spend how much, and use how many resources.
//! One host process serves many tenants; each call runs as exactly one of them.

pub mod file;
pub mod pricing;
pub mod rate;
pub mod store;

use crate::limits::CallLimits;
use crate::policy::{Allowlist, Effect};

/// What a tenant is granted: command names (exact, `*`, or `prefix.*`) and request effects.
#[derive(Clone, Debug)]
pub struct Grants {
    pub commands: Vec<String>,
    pub effects: Vec<Effect>,
}

impl Grants {
    pub fn everything() -> Self {
        Self {
            commands: vec!["*".into()],
            effects: vec![Effect::Read, Effect::Mutate, Effect::Spend],
        }
    }

    pub fn allows_command(&self, name: &str) -> bool {
        self.commands.iter().any(|g| {
            g == "*"
                || g == name
                || g.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with('.') && name.starts_with(prefix))
        })
    }

    pub fn allows_effect(&self, effect: Effect) -> bool {
        self.effects.contains(&effect)
    }
}

/// Everything the host enforces for one tenant.
#[derive(Clone, Debug)]
pub struct TenantPolicy {
    pub name: String,
    pub grants: Grants,
    pub allowlist: Allowlist,
    pub dry_run: bool,
    /// Spend cap in micro-dollars.
    pub spend_cap_micros: u64,
    pub requests_per_minute: Option<u32>,
    pub max_concurrent_calls: u32,
    /// Hours a deployment created through the host lives (and is charged) before the janitor
    /// deletes it.
    pub max_deployment_hours: u32,
    /// Rate and concurrent-call limits are kept in the spend store, so they hold across processes
    /// (tenants of a policy file); else they are this process's own (the single-user CLI).
    pub shared_limits: bool,
    pub limits: CallLimits,
}

impl TenantPolicy {
    /// The single-user tenant of the CLI: everything granted, no cap beyond the limits given.
    pub fn single_user(
        name: &str,
        allowlist: Allowlist,
        dry_run: bool,
        limits: CallLimits,
    ) -> Self {
        Self {
            name: name.to_owned(),
            grants: Grants::everything(),
            allowlist,
            dry_run,
            spend_cap_micros: u64::MAX,
            requests_per_minute: None,
            max_concurrent_calls: 64,
            max_deployment_hours: 1,
            shared_limits: false,
            limits,
        }
    }
}
