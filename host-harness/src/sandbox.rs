//! The world-independent core of the host: one engine (epoch interruption, optional pooling), the
//! shared outbound boundary, the tenants, and a fresh `Store` per call. [`crate::runtime::Runtime`]
//! runs the `theta:edgecloud/plugin` world on it; [`crate::ironclaw`] runs IronClaw's tool world.

use crate::audit::AuditSink;
use crate::config::HostConfig;
use crate::events::EventCallback;
use crate::hooks::{CallContext, CallOutbound, PolicyHooks, SharedOutbound, TenantOutbound};
use crate::limits::{CallLimits, EpochTicker};
use crate::net::OutboundClient;
use crate::policy::OutboundPolicy;
use crate::state::CallState;
use crate::tenant::TenantPolicy;
use crate::tenant::file::PolicyFile;
use crate::tenant::pricing::PriceTable;
use crate::tenant::rate::RateLimiter;
use crate::tenant::store::{CallSlot, StoreHandle, default_location};
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
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
    #[error("theta-policy limit: {0}")]
    Stopped(String),
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

pub use crate::cache::LoadReport;

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
        let store = StoreHandle::new(default_location(config.store.as_deref())?);
        Self::new(config, vec![tenant], PriceTable::default(), store)
    }

    /// The tenants, prices and spend store of a policy file (the file's `store`, else
    /// `THETA_STORE_URL`, else the user's default store).
    pub fn from_policy_file(config: HostConfig, file: PolicyFile) -> anyhow::Result<Self> {
        let location = match file.store {
            Some(s) => s,
            None => default_location(config.store.as_deref())?,
        };
        Self::new(
            config,
            file.tenants.into_values().collect(),
            file.prices,
            StoreHandle::new(location),
        )
    }

    pub fn new(
        mut config: HostConfig,
        tenants: Vec<TenantPolicy>,
        prices: PriceTable,
        store: StoreHandle,
    ) -> anyhow::Result<Self> {
        // A pooled slot must fit the largest tenant's memory: never lower a tenant's limit silently.
        let largest_memory = tenants
            .iter()
            .map(|t| t.limits.memory_bytes)
            .chain([config.limits.memory_bytes])
            .max()
            .unwrap_or(config.limits.memory_bytes);
        let engine = engine(&config, largest_memory)?;
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
            store,
        });
        let tenants: HashMap<String, Tenant> = tenants
            .into_iter()
            .map(|t| {
                let outbound = TenantOutbound {
                    policy: OutboundPolicy {
                        allowlist: t.allowlist.clone(),
                        dry_run: t.dry_run || config.policy.dry_run,
                        inference_host: config.policy.inference_host.clone(),
                        ondemand_host: config.policy.ondemand_host.clone(),
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

    /// The spend store (opened on first use).
    pub fn store(&self) -> &StoreHandle {
        &self.shared.store
    }

    /// What every call of this host shares (credentials, client, audit, prices, store).
    pub fn shared(&self) -> &Arc<SharedOutbound> {
        &self.shared
    }

    /// Micro-dollars the spend store counts for a tenant (settled + open reservations); 0 when the
    /// store cannot be read (the error is logged).
    pub async fn spent_micros(&self, tenant: &str) -> u64 {
        match self.shared.store.get().await {
            Ok(store) => match store.totals(tenant).await {
                Ok(t) => t.counted_micros(),
                Err(e) => {
                    tracing::error!("reading the spend store: {e}");
                    0
                }
            },
            Err(e) => {
                tracing::error!("opening the spend store: {e}");
                0
            }
        }
    }

    /// Takes one of `tenant`'s call slots, waiting up to `grace`: from the spend store when the
    /// tenant's limits are shared across processes, else from this process's semaphore. A call that
    /// may own disposable deployments (`owns_leases`) always holds a store slot too: its leases are
    /// alive exactly as long as that slot, so no other host's janitor deletes them mid-call.
    pub async fn acquire_call<'a>(
        &'a self,
        tenant: &'a Tenant,
        holder: &str,
        owns_leases: bool,
        grace: Duration,
    ) -> anyhow::Result<Option<CallPermit<'a>>> {
        let policy = tenant.policy();
        let mut permit = CallPermit {
            local: None,
            shared: None,
        };
        if !policy.shared_limits {
            permit.local = match tokio::time::timeout(grace, tenant.calls.acquire()).await {
                Ok(Ok(p)) => Some(p),
                _ => return Ok(None),
            };
            if !owns_leases {
                return Ok(Some(permit));
            }
        }
        let max = if policy.shared_limits {
            policy.max_concurrent_calls
        } else {
            u32::MAX
        };
        let store = self.shared.store.get().await?;
        // A slot outlives its call by at most this: a host killed mid-call frees it by itself.
        let ttl = policy.limits.wall_clock + Duration::from_secs(10);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            if let Some(slot) = store
                .acquire_call_slot(&policy.name, max, holder, ttl)
                .await?
            {
                permit.shared = Some((store.clone(), slot));
                return Ok(Some(permit));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A new call id, unique in this process.
    pub fn next_call_id(&self) -> u64 {
        self.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Loads a component, from the on-disk cache of precompiled code when it is there.
    pub fn load(&self, wasm_path: &Path) -> anyhow::Result<(Component, LoadReport)> {
        crate::cache::load_component(&self.engine, wasm_path, self.config.cache_dir.as_deref())
    }

    /// A fresh store for one call of `tenant`: its own WASI context, hooks, memory limit and CPU budget.
    pub fn new_store(
        &self,
        tenant: &Tenant,
        command: &str,
        events: EventCallback,
    ) -> Store<CallState> {
        self.new_store_for(tenant, command, self.next_call_id(), events)
    }

    /// The holder id of call `call_id` of this process in the spend store.
    pub fn holder(&self, call_id: u64) -> String {
        format!("{}#{call_id}", self.shared.store.host_id())
    }

    /// [`new_store`](Self::new_store) for a call id taken with [`next_call_id`](Self::next_call_id).
    pub fn new_store_for(
        &self,
        tenant: &Tenant,
        command: &str,
        call_id: u64,
        events: EventCallback,
    ) -> Store<CallState> {
        let limits = &tenant.outbound.tenant.limits;
        let call = CallContext {
            tenant: tenant.outbound.tenant.name.clone(),
            command: command.to_owned(),
            call_id,
            holder: self.holder(call_id),
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
        // And its wall clock, so it refuses a waiting window the host would cut short.
        env.push((
            "THETA_CALL_WALL_CLOCK_MS".into(),
            limits.wall_clock.as_millis().to_string(),
        ));
        let state = CallState::new(&env, hooks, limits, events);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // The guest yields to other calls every tick; the CPU budget is charged by `bounded`
        // (thread CPU time of every poll). A call the boundary stopped ends at its next tick.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |ctx| {
            if let Some(why) = ctx.data().outbound().stop_reason() {
                return Err(CallError::Stopped(why).into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }
}

/// A held call slot (this process's, the store's, or both); released when dropped.
pub struct CallPermit<'a> {
    local: Option<tokio::sync::SemaphorePermit<'a>>,
    shared: Option<(crate::tenant::store::SpendStore, CallSlot)>,
}

impl CallPermit<'_> {
    /// Gives the slot back now (a CLI process exits right after its call: a release spawned from
    /// `drop` would die with its runtime and hold the slot until its TTL).
    pub async fn release(mut self) {
        if let Some((store, slot)) = self.shared.take()
            && let Err(e) = store.release_call_slot(&slot).await
        {
            tracing::warn!("releasing a call slot: {e}");
        }
    }
}

impl Drop for CallPermit<'_> {
    fn drop(&mut self) {
        if let Some((store, slot)) = self.shared.take() {
            // Released in the background; a slot whose release is lost expires with its TTL.
            crate::background::spawn(async move {
                if let Err(e) = store.release_call_slot(&slot).await {
                    tracing::warn!("releasing a call slot: {e}");
                }
            });
        }
        self.local.take();
    }
}

/// Deletes a call's disposable deployments when the call ends, however it ends (finished, failed,
/// timed out, or dropped by a cancel): the cleanup is spawned from `drop`.
pub struct DisposableGuard {
    pub shared: Arc<SharedOutbound>,
    pub tenant: String,
    pub holder: String,
}

impl DisposableGuard {
    /// Deletes the call's disposable deployments now, before the process may exit; `drop` (a
    /// cancelled call) is only the fallback.
    pub async fn finish(mut self) {
        let holder = std::mem::take(&mut self.holder);
        crate::janitor::end_of_call(&self.shared, &self.tenant, &holder)
            .await
            .iter()
            .for_each(crate::janitor::Cleanup::log);
    }
}

impl Drop for DisposableGuard {
    fn drop(&mut self) {
        if self.holder.is_empty() {
            return;
        }
        let (shared, tenant, holder) = (
            self.shared.clone(),
            std::mem::take(&mut self.tenant),
            std::mem::take(&mut self.holder),
        );
        crate::background::spawn(async move {
            crate::janitor::end_of_call(&shared, &tenant, &holder)
                .await
                .iter()
                .for_each(crate::janitor::Cleanup::log);
        });
    }
}

/// Linear memory kept mapped between calls in a pooled slot (a typical call touches ~1-2 MiB).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

fn engine(config: &HostConfig, max_memory_bytes: usize) -> anyhow::Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true).epoch_interruption(true);
    if let Some(instances) = config.pooling_instances {
        // Pre-reserved slots: instantiation becomes a few page-table operations.
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .max_memory_size(max_memory_bytes)
            // A freed slot is reset with memset up to this size instead of being unmapped, so the
            // next call does not page-fault its way through the guest's first megabytes again.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(64 << 10);
        cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(Engine::new(&cfg)?)
}

/// Applies a call's wall-clock limit and CPU budget, and turns traps into [`CallError`]s.
pub async fn bounded<T>(
    limits: &CallLimits,
    fut: impl Future<Output = wasmtime::Result<T>>,
) -> anyhow::Result<T> {
    let metered = crate::limits::CpuMetered::new(fut, limits.cpu);
    match tokio::time::timeout(limits.wall_clock, metered).await {
        Err(_) => Err(CallError::WallClock(limits.wall_clock).into()),
        Ok(Err(_exhausted)) => Err(CallError::CpuBudget(limits.cpu).into()),
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(explain_trap(e.into())),
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
