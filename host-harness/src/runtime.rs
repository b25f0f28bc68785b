//! The `theta:edgecloud/plugin` world on the sandbox: the component is compiled once (cached on disk,
//! precompiled) and linked once into an `InstancePre`; every call gets a fresh `Store`, and is checked
//! against the tenant's grants before it runs.

use crate::audit::AuditSink;
use crate::bindings::{CommandPlugin as Plugin, CommandPluginPre as PluginPre, ThetaError};
use crate::config::HostConfig;
use crate::events::EventCallback;
use crate::policy::routes;
use crate::sandbox::{Sandbox, bounded};
use crate::state::CallState;
use crate::tenant::TenantPolicy;
use crate::tenant::file::PolicyFile;
use anyhow::Context;
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
        let sandbox = Sandbox::from_policy_file(config, file)?;
        // Tenants have caps: a store that cannot be opened is a start-up error, not a paid
        // request refused later.
        sandbox
            .store()
            .get()
            .await
            .with_context(|| format!("opening the spend store {}", sandbox.store().describe()))?;
        Self::on(sandbox, wasm_path).await
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
        Ok(Self { sandbox, pre, load })
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

    /// Dollars the spend store counts for `tenant` (settled and open reservations).
    pub async fn spent_usd(&self, tenant: &str) -> f64 {
        crate::tenant::pricing::micros_to_usd(self.sandbox.spent_micros(tenant).await)
    }

    /// Micro-dollars the spend store counts for `tenant` (settled and open reservations).
    pub async fn spent_micros(&self, tenant: &str) -> u64 {
        self.sandbox.spent_micros(tenant).await
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
        let command = routes::canonical_command(command).unwrap_or(command);
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
        let command = routes::canonical_command(command).unwrap_or(command);
        let mut store = self.sandbox.new_store(tenant, command, events);
        let instance = self
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(anyhow::Error::from)?;
        Ok((store, instance))
    }

    /// Every command the plugin offers that this host knows (its route table decides what a command
    /// may do; a command it does not know could never make a request). `describe` itself runs with
    /// no outbound access: no route belongs to it.
    pub async fn describe(&self) -> anyhow::Result<Vec<crate::bindings::CommandInfo>> {
        let mut all = self.describe_all().await?;
        all.retain(|c| {
            let known = routes::canonical_command(&c.name) == Some(c.name.as_str());
            if !known {
                tracing::warn!(
                    "the plugin offers `{}`, a command this host does not know; it is not offered",
                    crate::text::for_terminal(&c.name)
                );
            }
            known
        });
        Ok(all)
    }

    /// Everything the plugin's `describe()` reports, known to the host or not.
    pub async fn describe_all(&self) -> anyhow::Result<Vec<crate::bindings::CommandInfo>> {
        let (mut store, plugin) = self
            .instantiate_as(&self.sandbox.config.tenant, DESCRIBE, Arc::new(|_| {}))
            .await?;
        bounded(
            &self.sandbox.config.limits,
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
        let command = match self.grant_check(policy, name) {
            Ok(command) => command,
            Err(refusal) => return Ok(Err(ThetaError::Denied(refusal))),
        };
        let call_id = self.sandbox.next_call_id();
        let holder = self.sandbox.holder(call_id);
        let owns_leases = OWNS_DISPOSABLE_LEASES.contains(&command);
        // A short grace before refusing: a call that was just cancelled or just finished may still
        // be releasing its slot (an MCP client sends its next request right after the cancel).
        let Some(permit) = self
            .sandbox
            .acquire_call(tenant, &holder, owns_leases, SLOT_GRACE)
            .await?
        else {
            return Ok(Err(ThetaError::Denied(format!(
                "tenant `{}` already has {} calls running, its limit; retry when one finishes",
                policy.name, policy.max_concurrent_calls
            ))));
        };
        // Declared after the permit, so it runs first: the call's disposable deployments are
        // deleted before its slot (which keeps them alive for other hosts' janitors) is released.
        let cleanup = owns_leases.then(|| crate::sandbox::DisposableGuard {
            shared: self.sandbox.shared().clone(),
            tenant: policy.name.clone(),
            holder: holder.clone(),
        });
        let mut store = self.sandbox.new_store_for(tenant, command, call_id, events);
        let outcome = match self.pre.instantiate_async(&mut store).await {
            Ok(plugin) => {
                bounded(
                    &policy.limits,
                    plugin.theta_edgecloud_commands().call_invoke(
                        &mut store,
                        name,
                        // WIT `json` is an alias of `string`: bindgen wants `&String` for it.
                        &args_json.to_owned(),
                    ),
                )
                .await
            }
            Err(e) => Err(e.into()),
        };
        // The route's prices are the host's (the spend cap's), not the guest's to state.
        let outcome = if command == "theta.route" {
            outcome.map(|o| o.map(|json| self.sandbox.shared().prices.with_reservations(&json)))
        } else {
            outcome
        };
        drop(store);
        // However the call ended (not cancelled): its disposable deployments are deleted, then its
        // slot is given back, both before this returns.
        if let Some(cleanup) = cleanup {
            cleanup.finish().await;
        }
        permit.release().await;
        outcome
    }

    /// One janitor pass over the spend store: deletes deployments whose lease expired (and
    /// disposable ones whose call is gone), auditing each.
    pub async fn janitor(&self) -> anyhow::Result<Vec<crate::janitor::Cleanup>> {
        crate::janitor::pass(self.sandbox.shared()).await
    }

    /// What every call shares (for the janitor and embedders).
    pub fn shared(&self) -> &Arc<crate::hooks::SharedOutbound> {
        self.sandbox.shared()
    }

    /// The spend store (for `theta-host spend` and embedders).
    pub fn store(&self) -> &crate::tenant::store::StoreHandle {
        self.sandbox.store()
    }

    /// Whether `tenant` may run `name`: the grant check [`invoke_as`](Self::invoke_as) applies before a
    /// call (command name and the effect of its routes; under dry-run a mutating command may run).
    /// False for an unknown tenant or command.
    pub fn is_granted(&self, tenant: &str, name: &str) -> bool {
        self.sandbox
            .tenant(tenant)
            .is_ok_and(|t| self.grant_check(t.policy(), name).is_ok())
    }

    /// The canonical command `name` runs, if `tenant` may run it. Decided from the host's route table,
    /// never from what the plugin says about itself: an alias needs the grant of what it runs, and a
    /// command is as strong as its strongest route.
    fn grant_check(&self, tenant: &TenantPolicy, name: &str) -> Result<&'static str, String> {
        let Some(command) = routes::canonical_command(name.trim()) else {
            return Err(format!(
                "unknown command `{}`: this host runs only the commands of its route table (see `theta-host commands`)",
                crate::text::for_terminal(&name.chars().take(80).collect::<String>())
            ));
        };
        // An alias is granted only through what it runs.
        if !tenant.grants.allows_command(command) {
            return Err(format!(
                "tenant `{}` is not granted the command `{command}`",
                tenant.name
            ));
        }
        let effect = routes::command_effect(command);
        // Under dry-run a mutating or paid command may run: the host refuses its requests and the
        // plugin returns the preview.
        if !tenant.grants.allows_effect(effect) && !tenant.dry_run {
            return Err(format!(
                "tenant `{}` is not granted {} commands (`{command}`)",
                tenant.name,
                effect.name()
            ));
        }
        Ok(command)
    }
}

/// Commands whose deployments are disposable: deleted by the host when the call ends.
const OWNS_DISPOSABLE_LEASES: [&str; 1] = ["theta.deployments.validateDisposable"];

/// The pseudo-command `describe()` runs as: no route belongs to it, so it can send nothing.
const DESCRIBE: &str = "describe";
