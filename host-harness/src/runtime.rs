//! The engine, set up once for many calls: the component is compiled once (and cached on disk,
//! precompiled), linked once into an `InstancePre`, and every call gets a fresh `Store` with its own
//! limits, hooks and event stream.

use crate::audit::AuditSink;
use crate::bindings::{Plugin, PluginPre, ThetaError};
use crate::config::HostConfig;
use crate::events::EventCallback;
use crate::hooks::{CallContext, CallOutbound, PolicyHooks, SharedOutbound, TenantOutbound};
use crate::limits::EpochTicker;
use crate::net::OutboundClient;
use crate::policy::{Effect, OutboundPolicy};
use crate::state::CallState;
use crate::tenant::TenantPolicy;
use crate::tenant::file::PolicyFile;
use crate::tenant::ledger::SpendLedger;
use crate::tenant::pricing::PriceTable;
use crate::tenant::rate::RateLimiter;
use anyhow::{Context, anyhow};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, UpdateDeadline};

/// Why a call failed in the host, as opposed to an error the plugin returned.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the call ran longer than its wall-clock limit of {0:?} and was stopped")]
    WallClock(Duration),
    #[error("the plugin used more than its CPU budget of {0:?} and was stopped")]
    CpuBudget(Duration),
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("unknown tenant `{0}`: it is not in the tenant policy file")]
    UnknownTenant(String),
}

/// One tenant's policy, rate bucket and concurrent-call permits.
struct Tenant {
    outbound: Arc<TenantOutbound>,
    calls: Semaphore,
}

/// How the component was loaded, for `--verbose` output and benchmarks.
#[derive(Clone, Debug)]
pub struct LoadReport {
    pub from_cache: bool,
    pub load_time: Duration,
    pub cache_file: Option<PathBuf>,
}

/// The result of one command: the plugin's own JSON answer or its typed error.
pub type CallOutput = Result<String, ThetaError>;

pub struct Runtime {
    engine: Engine,
    pre: PluginPre<CallState>,
    shared: Arc<SharedOutbound>,
    config: HostConfig,
    guest_env: Vec<(String, String)>,
    tenants: HashMap<String, Tenant>,
    /// Each command's effect, from the plugin's own `describe()`, for grant checks before a call.
    effects: HashMap<String, Effect>,
    next_call: AtomicU64,
    load: LoadReport,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine and loads the component at `wasm_path` (any component of the `plugin` world),
    /// for one tenant (`config.tenant`) with every command granted and the config's limits.
    pub async fn new(config: HostConfig, wasm_path: &Path) -> anyhow::Result<Self> {
        let tenant = TenantPolicy::single_user(
            &config.tenant,
            config.policy.allowlist.clone(),
            config.policy.dry_run,
            config.limits.clone(),
        );
        Self::build(
            config,
            wasm_path,
            vec![tenant],
            PriceTable::default(),
            SpendLedger::in_memory(),
        )
        .await
    }

    /// A multi-tenant host from a tenant policy file.
    pub async fn with_tenants(
        config: HostConfig,
        wasm_path: &Path,
        file: PolicyFile,
    ) -> anyhow::Result<Self> {
        let ledger = match &file.ledger {
            Some(path) => SpendLedger::open(path)
                .with_context(|| format!("opening the spend ledger {}", path.display()))?,
            None => SpendLedger::in_memory(),
        };
        Self::build(
            config,
            wasm_path,
            file.tenants.into_values().collect(),
            file.prices,
            ledger,
        )
        .await
    }

    async fn build(
        config: HostConfig,
        wasm_path: &Path,
        tenants: Vec<TenantPolicy>,
        prices: PriceTable,
        ledger: SpendLedger,
    ) -> anyhow::Result<Self> {
        let engine = Self::engine(&config)?;
        let (component, load) = load_component(&engine, wasm_path, config.cache_dir.as_deref())?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = linker.instantiate_pre(&component).map_err(anyhow::Error::from).with_context(|| {
            format!(
                "{} does not fit the theta:edgecloud/plugin world (it imports something this host does not provide)",
                wasm_path.display()
            )
        })?;
        let pre = PluginPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "{} does not export the theta:edgecloud/plugin world",
                    wasm_path.display()
                )
            })?;
        let mut audit = match &config.audit_log {
            Some(path) => AuditSink::to_file(path)
                .with_context(|| format!("opening the audit log {}", path.display()))?,
            None => AuditSink::default(),
        };
        if config.audit_in_memory {
            audit = audit.with_memory();
        }
        let shared = Arc::new(SharedOutbound {
            credentials: config.credentials.clone(),
            client: OutboundClient::new(config.upstream.clone(), config.dns_overrides.clone()),
            audit,
            prices,
            ledger,
        });
        let tenants = tenants
            .into_iter()
            .map(|t| {
                let outbound = TenantOutbound {
                    policy: OutboundPolicy {
                        allowlist: t.allowlist.clone(),
                        dry_run: t.dry_run || config.policy.dry_run,
                        inference_host: config.policy.inference_host.clone(),
                    },
                    rate: t.requests_per_minute.map(RateLimiter::new),
                    tenant: t,
                };
                let permits = outbound.tenant.max_concurrent_calls as usize;
                (
                    outbound.tenant.name.clone(),
                    Tenant {
                        outbound: Arc::new(outbound),
                        calls: Semaphore::new(permits),
                    },
                )
            })
            .collect();
        let ticker = EpochTicker::start(engine.clone());
        let mut rt = Self {
            guest_env: config.guest_env(),
            engine,
            pre,
            shared,
            config,
            tenants,
            effects: HashMap::new(),
            next_call: AtomicU64::new(1),
            load,
            _ticker: ticker,
        };
        // `describe` runs as the first tenant when there is no default one.
        if !rt.tenants.contains_key(&rt.config.tenant)
            && let Some(first) = rt.tenant_names().into_iter().next()
        {
            rt.config.tenant = first;
        }
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

    fn engine(config: &HostConfig) -> anyhow::Result<Engine> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true).epoch_interruption(true);
        if let Some(instances) = config.pooling_instances {
            // Pre-reserved slots: instantiation becomes a few page-table operations.
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(instances)
                .total_core_instances(instances.saturating_mul(4))
                .total_memories(instances.saturating_mul(2))
                .total_tables(instances.saturating_mul(4))
                .max_memory_size(config.limits.memory_bytes);
            cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        Ok(Engine::new(&cfg)?)
    }

    /// The tenant names this host serves.
    pub fn tenant_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tenants.keys().cloned().collect();
        names.sort();
        names
    }

    /// Dollars counted as spent by a tenant (open reservations included).
    pub fn spent_usd(&self, tenant: &str) -> f64 {
        crate::tenant::pricing::micros_to_usd(self.shared.ledger.spent(tenant))
    }

    pub fn load_report(&self) -> &LoadReport {
        &self.load
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    pub fn audit(&self) -> &AuditSink {
        &self.shared.audit
    }

    fn tenant(&self, name: &str) -> anyhow::Result<&Tenant> {
        self.tenants
            .get(name)
            .ok_or_else(|| CallError::UnknownTenant(name.to_owned()).into())
    }

    /// A fresh store and instance for one call of the default tenant. Public so embedders can call the
    /// typed exports.
    pub async fn instantiate(
        &self,
        command: &str,
        events: EventCallback,
    ) -> anyhow::Result<(Store<CallState>, Plugin)> {
        self.instantiate_as(&self.config.tenant, command, events)
            .await
    }

    pub async fn instantiate_as(
        &self,
        tenant: &str,
        command: &str,
        events: EventCallback,
    ) -> anyhow::Result<(Store<CallState>, Plugin)> {
        let tenant = self.tenant(tenant)?;
        let limits = &tenant.outbound.tenant.limits;
        let call = CallContext {
            tenant: tenant.outbound.tenant.name.clone(),
            command: command.to_owned(),
            call_id: self.next_call.fetch_add(1, Ordering::Relaxed),
        };
        let hooks = PolicyHooks::new(Arc::new(CallOutbound::new(
            self.shared.clone(),
            tenant.outbound.clone(),
            call,
            limits.clone(),
        )));
        let state = CallState::new(
            &self.guest_env,
            hooks,
            limits.memory_bytes,
            limits.cpu_ticks(),
            events,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Every tick spent in guest code counts against the CPU budget, and yields to other calls.
        store.set_epoch_deadline(1);
        let cpu = limits.cpu;
        store.epoch_deadline_callback(move |mut ctx| {
            let s = ctx.data_mut();
            s.cpu_ticks += 1;
            if s.cpu_ticks > s.cpu_budget_ticks {
                return Err(CallError::CpuBudget(cpu).into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let plugin = self.pre.instantiate_async(&mut store).await?;
        Ok((store, plugin))
    }

    /// Every command the plugin offers.
    pub async fn describe(&self) -> anyhow::Result<Vec<crate::bindings::CommandInfo>> {
        let (mut store, plugin) = self.instantiate("describe", Arc::new(|_| {})).await?;
        let wall = self.config.limits.wall_clock;
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
        self.invoke_as(&self.config.tenant, name, args_json, events)
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
        let tenant = self.tenant(tenant_name)?;
        let policy = &tenant.outbound.tenant;
        if let Some(refusal) = self.grant_refusal(policy, name) {
            return Ok(Err(ThetaError::Denied(refusal)));
        }
        let Ok(_permit) = tenant.calls.try_acquire() else {
            return Ok(Err(ThetaError::Denied(format!(
                "tenant `{}` already has {} calls running, its limit; retry when one finishes",
                policy.name, policy.max_concurrent_calls
            ))));
        };
        let (mut store, plugin) = self.instantiate_as(tenant_name, name, events).await?;
        bounded(
            policy.limits.wall_clock,
            plugin.theta_edgecloud_commands().call_invoke(
                &mut store,
                &name.to_owned(),
                &args_json.to_owned(),
            ),
        )
        .await
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

/// Applies a wall-clock limit and turns traps into [`CallError`]s.
pub async fn bounded<T>(
    wall: Duration,
    fut: impl Future<Output = wasmtime::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(wall, fut).await {
        Err(_) => Err(CallError::WallClock(wall).into()),
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(explain_trap(e.into())),
    }
}

fn explain_trap(e: anyhow::Error) -> anyhow::Error {
    if e.downcast_ref::<CallError>().is_some() {
        return e;
    }
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return CallError::Trap(format!("{trap} ({e:#})")).into();
    }
    e
}

/// Loads the component, from the on-disk cache of precompiled code when it is there.
fn load_component(
    engine: &Engine,
    wasm_path: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<(Component, LoadReport)> {
    let started = Instant::now();
    let bytes = std::fs::read(wasm_path).with_context(|| {
        format!(
            "reading the plugin {} (build it with scripts/build-wasm.sh)",
            wasm_path.display()
        )
    })?;
    let cache_file = cache_dir.map(|dir| dir.join(format!("{}.cwasm", cache_key(engine, &bytes))));
    if let Some(file) = cache_file.as_ref().filter(|f| f.exists()) {
        // SAFETY: the file is in the host's own cache directory, written by `store_in_cache` below and
        // named by the SHA-256 of the component plus the engine's compatibility hash; wasmtime also
        // checks its header against this engine before use.
        match unsafe { Component::deserialize_file(engine, file) } {
            Ok(component) => {
                return Ok((
                    component,
                    LoadReport {
                        from_cache: true,
                        load_time: started.elapsed(),
                        cache_file,
                    },
                ));
            }
            Err(e) => tracing::warn!("ignoring unusable cache file {}: {e:#}", file.display()),
        }
    }
    let component = Component::new(engine, &bytes).map_err(|e| {
        anyhow!(
            "{} is not a loadable WebAssembly component: {e:#}",
            wasm_path.display()
        )
    })?;
    if let Some(file) = &cache_file
        && let Err(e) = store_in_cache(&component, file)
    {
        tracing::warn!(
            "could not cache the compiled plugin at {}: {e:#}",
            file.display()
        );
    }
    Ok((
        component,
        LoadReport {
            from_cache: false,
            load_time: started.elapsed(),
            cache_file,
        },
    ))
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let digest = Sha256::digest(wasm);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{:016x}", engine_hash.finish())
}

fn store_in_cache(component: &Component, file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().context("cache file has no directory")?;
    std::fs::create_dir_all(dir)?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}
