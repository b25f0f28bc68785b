//! The `theta:edgecloud/plugin` world on the sandbox: the component is compiled once (cached on disk,
//! precompiled) and linked once into an `InstancePre`; every call gets a fresh `Store`, and is checked
//! against the tenant's grants before it runs.

use crate::audit::AuditSink;
use crate::bindings::{CommandPlugin as Plugin, CommandPluginPre as PluginPre, ThetaError};
use crate::config::HostConfig;
use crate::events::EventCallback;
use crate::policy::Effect;
use crate::sandbox::{Sandbox, bounded};
use crate::state::CallState;
use crate::tenant::TenantPolicy;
use crate::tenant::file::PolicyFile;
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::Linker;

pub use crate::sandbox::{CallError, LoadReport};

/// The result of one command: the plugin's own JSON answer or its typed error.
pub type CallOutput = Result<String, ThetaError>;

pub struct Runtime {
    sandbox: Sandbox,
    pre: PluginPre<CallState>,
    /// Each command's effect, from the plugin's own `describe()`, for grant checks before a call.
    effects: HashMap<String, Effect>,
    load: LoadReport,
}

/// How long a call waits for one of its tenant's call slots before it is refused.
const SLOT_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

impl Runtime {
    /// Loads the component at `wasm_path` (any component of the `plugin` world) for one tenant
    /// (`config.tenant`) with every command granted and the config's limits.
    pub async fn new(config: HostConfig, wasm_path: &Path) -> anyhow::Result<Self> {
        Self::on(Sandbox::single_tenant(config)?, wasm_path).await
    }

    /// A multi-tenant host from a tenant policy file.
    pub async fn with_tenants(
        config: HostConfig,
        wasm_path: &Path,
        file: PolicyFile,
    ) -> anyhow::Result<Self> {
        Self::on(Sandbox::from_policy_file(config, file)?, wasm_path).await
    }

    async fn on(sandbox: Sandbox, wasm_path: &Path) -> anyhow::Result<Self> {
        let (component, load) = sandbox.load(wasm_path)?;
        let mut linker: Linker<CallState> = Linker::new(&sandbox.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not fit the theta:edgecloud/command-plugin world (it imports something this host does not provide)",
                    wasm_path.display()
                )
            })?;
        let pre = PluginPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not export theta:edgecloud/commands (world theta:edgecloud/command-plugin)",
                    wasm_path.display()
                )
            })?;
        let mut rt = Self {
            sandbox,
            pre,
            effects: HashMap::new(),
            load,
        };
        rt.effects = rt
            .describe()
            .await?
            .into_iter()
            .map(|c| {
                let effect = match c.effect {
                    crate::bindings::Effect::Read => Effect::Read,
                    crate::bindings::Effect::Mutate => Effect::Mutate,
                    crate::bindings::Effect::Spend => Effect::Spend,
                };
                (c.name, effect)
            })
            .collect();
        Ok(rt)
    }

    pub fn load_report(&self) -> &LoadReport {
        &self.load
    }

    pub fn config(&self) -> &HostConfig {
        &self.sandbox.config
    }

    pub fn audit(&self) -> &AuditSink {
        self.sandbox.audit()
    }

    pub fn tenant_names(&self) -> Vec<String> {
        self.sandbox.tenant_names()
    }

    pub fn spent_usd(&self, tenant: &str) -> f64 {
        self.sandbox.spent_usd(tenant)
    }

    /// A fresh store and instance for one call of the default tenant. Public so embedders can call the
    /// typed exports.
    pub async fn instantiate(
        &self,
        command: &str,
        events: EventCallback,
    ) -> anyhow::Result<(Store<CallState>, Plugin)> {
        self.instantiate_as(&self.sandbox.config.tenant, command, events)
            .await
    }

    pub async fn instantiate_as(
        &self,
        tenant: &str,
        command: &str,
        events: EventCallback,
    ) -> anyhow::Result<(Store<CallState>, Plugin)> {
        let tenant = self.sandbox.tenant(tenant)?;
        let mut store = self.sandbox.new_store(tenant, command, events);
        let plugin = self.pre.instantiate_async(&mut store).await?;
        Ok((store, plugin))
    }

    /// A fresh store and the raw component instance, for embedders that bind a larger world than
    /// `command-plugin` (e.g. the full `plugin` world's typed interfaces) with their own bindgen.
    /// The instance's outbound requests go through the same policy hook as every call.
    pub async fn instantiate_raw_as(
        &self,
        tenant: &str,
        command: &str,
        events: EventCallback,
    ) -> anyhow::Result<(Store<CallState>, wasmtime::component::Instance)> {
        let tenant = self.sandbox.tenant(tenant)?;
        let mut store = self.sandbox.new_store(tenant, command, events);
        let instance = self
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(anyhow::Error::from)?;
        Ok((store, instance))
    }

    /// Every command the plugin offers.
    pub async fn describe(&self) -> anyhow::Result<Vec<crate::bindings::CommandInfo>> {
        let (mut store, plugin) = self.instantiate("describe", Arc::new(|_| {})).await?;
        let wall = self.sandbox.config.limits.wall_clock;
        bounded(
            wall,
            plugin.theta_edgecloud_commands().call_describe(&mut store),
        )
        .await
    }

    /// Runs one command by name with JSON arguments, as the default tenant.
    pub async fn invoke(
        &self,
        name: &str,
        args_json: &str,
        events: EventCallback,
    ) -> anyhow::Result<CallOutput> {
        self.invoke_as(&self.sandbox.config.tenant, name, args_json, events)
            .await
    }

    /// Runs one command as `tenant`: the command must be granted, the tenant must have a free call slot,
    /// and every request the call makes is checked against the tenant's policy.
    pub async fn invoke_as(
        &self,
        tenant_name: &str,
        name: &str,
        args_json: &str,
        events: EventCallback,
    ) -> anyhow::Result<CallOutput> {
        let tenant = self.sandbox.tenant(tenant_name)?;
        let policy = tenant.policy();
        if let Some(refusal) = self.grant_refusal(policy, name) {
            return Ok(Err(ThetaError::Denied(refusal)));
        }
        // A short grace before refusing: a call that was just cancelled or just finished may still
        // be releasing its slot (an MCP client sends its next request right after the cancel).
        let Ok(Ok(_permit)) = tokio::time::timeout(SLOT_GRACE, tenant.calls.acquire()).await else {
            return Ok(Err(ThetaError::Denied(format!(
                "tenant `{}` already has {} calls running, its limit; retry when one finishes",
                policy.name, policy.max_concurrent_calls
            ))));
        };
        let mut store = self.sandbox.new_store(tenant, name, events);
        let plugin = self.pre.instantiate_async(&mut store).await?;
        bounded(
            policy.limits.wall_clock,
            plugin.theta_edgecloud_commands().call_invoke(
                &mut store,
                name,
                // WIT `json` is an alias of `string`: bindgen wants `&String` for it.
                &args_json.to_owned(),
            ),
        )
        .await
    }

    /// Whether `tenant` may run `name`: the grant check [`invoke_as`](Self::invoke_as) applies before a
    /// call (command name and effect; under dry-run a mutating command may run). False for an unknown
    /// tenant.
    pub fn is_granted(&self, tenant: &str, name: &str) -> bool {
        self.sandbox
            .tenant(tenant)
            .is_ok_and(|t| self.grant_refusal(t.policy(), name).is_none())
    }

    /// Why `tenant` may not run `name`, if it may not. Commands the plugin does not describe (aliases)
    /// are treated as paid, the strictest class.
    fn grant_refusal(&self, tenant: &TenantPolicy, name: &str) -> Option<String> {
        if !tenant.grants.allows_command(name) {
            return Some(format!(
                "tenant `{}` is not granted the command `{name}`",
                tenant.name
            ));
        }
        let effect = self.effects.get(name).copied().unwrap_or(Effect::Spend);
        // Under dry-run a mutating command may run: the host refuses its requests and the plugin
        // returns the preview.
        if !tenant.grants.allows_effect(effect) && !tenant.dry_run {
            return Some(format!(
                "tenant `{}` is not granted {} commands (`{name}`)",
                tenant.name,
                match effect {
                    Effect::Read => "read",
                    Effect::Mutate => "mutating",
                    Effect::Spend => "paid",
                }
            ));
        }
        None
    }
}
