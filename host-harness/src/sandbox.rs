//! The world-independent core of the host: one engine (epoch interruption, optional pooling), the
//! shared outbound boundary, the tenants, and a fresh `Store` per call. [`crate::runtime::Runtime`]
//! runs the `theta:edgecloud/plugin` world on it; [`crate::ironclaw`] runs IronClaw's tool world.

use crate::audit::AuditSink;
use crate::config::HostConfig;
use crate::events::EventCallback;
use crate::hooks::{CallContext, CallOutbound, PolicyHooks, SharedOutbound, TenantOutbound};
use crate::limits::EpochTicker;
use crate::net::OutboundClient;
use crate::policy::OutboundPolicy;
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
use wasmtime::component::Component;
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
pub struct Tenant {
    pub outbound: Arc<TenantOutbound>,
    pub calls: Semaphore,
}

impl Tenant {
    pub fn policy(&self) -> &TenantPolicy {
        &self.outbound.tenant
    }
}

/// How the component was loaded, for `--verbose` output and benchmarks.
#[derive(Clone, Debug)]
pub struct LoadReport {
    pub from_cache: bool,
    pub load_time: Duration,
    pub cache_file: Option<PathBuf>,
}

pub struct Sandbox {
    pub engine: Engine,
    shared: Arc<SharedOutbound>,
    pub config: HostConfig,
    guest_env: Vec<(String, String)>,
    tenants: HashMap<String, Tenant>,
    next_call: AtomicU64,
    _ticker: EpochTicker,
}

impl Sandbox {
    /// One tenant (`config.tenant`) with everything granted and the config's limits.
    pub fn single_tenant(config: HostConfig) -> anyhow::Result<Self> {
        let tenant = TenantPolicy::single_user(
            &config.tenant,
            config.policy.allowlist.clone(),
            config.policy.dry_run,
            config.limits.clone(),
        );
        Self::new(
            config,
            vec![tenant],
            PriceTable::default(),
            SpendLedger::in_memory(),
        )
    }

    /// The tenants, prices and ledger of a policy file.
    pub fn from_policy_file(config: HostConfig, file: PolicyFile) -> anyhow::Result<Self> {
        let ledger = match &file.ledger {
            Some(path) => SpendLedger::open(path)
                .with_context(|| format!("opening the spend ledger {}", path.display()))?,
            None => SpendLedger::in_memory(),
        };
        Self::new(
            config,
            file.tenants.into_values().collect(),
            file.prices,
            ledger,
        )
    }

    pub fn new(
        mut config: HostConfig,
        tenants: Vec<TenantPolicy>,
        prices: PriceTable,
        ledger: SpendLedger,
    ) -> anyhow::Result<Self> {
        let engine = engine(&config)?;
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
        let tenants: HashMap<String, Tenant> = tenants
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
        // Calls without a tenant name run as the first tenant when there is no default one.
        if !tenants.contains_key(&config.tenant)
            && let Some(first) = tenants.keys().min().cloned()
        {
            config.tenant = first;
        }
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            guest_env: config.guest_env(),
            engine,
            shared,
            config,
            tenants,
            next_call: AtomicU64::new(1),
            _ticker: ticker,
        })
    }

    pub fn audit(&self) -> &AuditSink {
        &self.shared.audit
    }

    pub fn tenant(&self, name: &str) -> anyhow::Result<&Tenant> {
        self.tenants
            .get(name)
            .ok_or_else(|| CallError::UnknownTenant(name.to_owned()).into())
    }

    /// The tenant names this host serves, sorted.
    pub fn tenant_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tenants.keys().cloned().collect();
        names.sort();
        names
    }

    /// Dollars counted as spent by a tenant (open reservations included).
    pub fn spent_usd(&self, tenant: &str) -> f64 {
        crate::tenant::pricing::micros_to_usd(self.shared.ledger.spent(tenant))
    }

    /// Loads a component, from the on-disk cache of precompiled code when it is there.
    pub fn load(&self, wasm_path: &Path) -> anyhow::Result<(Component, LoadReport)> {
        load_component(&self.engine, wasm_path, self.config.cache_dir.as_deref())
    }

    /// A fresh store for one call of `tenant`: its own WASI context, hooks, memory limit and CPU budget.
    pub fn new_store(
        &self,
        tenant: &Tenant,
        command: &str,
        events: EventCallback,
    ) -> Store<CallState> {
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
        // The guest learns its request-body limit, so it can refuse a bigger body before sending it.
        let mut env = self.guest_env.clone();
        env.push((
            "THETA_MAX_REQUEST_BYTES".into(),
            limits.max_request_bytes.to_string(),
        ));
        let state = CallState::new(&env, hooks, limits.memory_bytes, limits.cpu_ticks(), events);
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
        store
    }
}

/// Linear memory kept mapped between calls in a pooled slot (a typical call touches ~1-2 MiB).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

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
            .max_memory_size(config.limits.memory_bytes)
            // A freed slot is reset with memset up to this size instead of being unmapped, so the
            // next call does not page-fault its way through the guest's first megabytes again.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(64 << 10);
        cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&cfg)?)
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
