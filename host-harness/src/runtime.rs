//! The engine, set up once for many calls: the component is compiled once (and cached on disk,
//! precompiled), linked once into an `InstancePre`, and every call gets a fresh `Store` with its own
//! limits, hooks and event stream.

use crate::audit::AuditSink;
use crate::bindings::{Plugin, PluginPre, ThetaError};
use crate::config::HostConfig;
use crate::events::EventCallback;
use crate::hooks::{CallContext, PolicyHooks, SharedOutbound};
use crate::limits::EpochTicker;
use crate::net::OutboundClient;
use crate::state::CallState;
use anyhow::{Context, anyhow};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
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
    next_call: AtomicU64,
    load: LoadReport,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine and loads the component at `wasm_path` (any component of the `plugin` world).
    pub fn new(config: HostConfig, wasm_path: &Path) -> anyhow::Result<Self> {
        let engine = Self::engine()?;
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
            policy: config.policy.clone(),
            credentials: config.credentials.clone(),
            client: OutboundClient::new(config.upstream.clone(), config.dns_overrides.clone()),
            audit,
        });
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            guest_env: config.guest_env(),
            engine,
            pre,
            shared,
            config,
            next_call: AtomicU64::new(1),
            load,
            _ticker: ticker,
        })
    }

    fn engine() -> anyhow::Result<Engine> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true).epoch_interruption(true);
        Ok(Engine::new(&cfg)?)
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

    /// A fresh store and instance for one call. Public so embedders can call the typed exports.
    pub async fn instantiate(
        &self,
        command: &str,
        events: EventCallback,
    ) -> anyhow::Result<(Store<CallState>, Plugin)> {
        let limits = &self.config.limits;
        let call = CallContext {
            tenant: self.config.tenant.clone(),
            command: command.to_owned(),
            call_id: self.next_call.fetch_add(1, Ordering::Relaxed),
        };
        let hooks = PolicyHooks::new(self.shared.clone(), call, limits.clone());
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
        self.bounded(plugin.theta_edgecloud_commands().call_describe(&mut store))
            .await
    }

    /// Runs one command by name with JSON arguments.
    pub async fn invoke(
        &self,
        name: &str,
        args_json: &str,
        events: EventCallback,
    ) -> anyhow::Result<CallOutput> {
        let (mut store, plugin) = self.instantiate(name, events).await?;
        self.bounded(plugin.theta_edgecloud_commands().call_invoke(
            &mut store,
            &name.to_owned(),
            &args_json.to_owned(),
        ))
        .await
    }

    /// Applies the wall-clock limit and turns traps into [`CallError`]s.
    pub async fn bounded<T>(
        &self,
        fut: impl Future<Output = wasmtime::Result<T>>,
    ) -> anyhow::Result<T> {
        let wall = self.config.limits.wall_clock;
        match tokio::time::timeout(wall, fut).await {
            Err(_) => Err(CallError::WallClock(wall).into()),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(explain_trap(e.into())),
        }
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
