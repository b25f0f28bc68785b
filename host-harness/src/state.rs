//! The data of one call's `Store`: a fresh WASI context (no files, no sockets, non-secret env only), the
//! HTTP context with the policy hooks, and the memory limiter. Nothing here outlives the call.

use crate::events::{EventCallback, EventStream};
use crate::hooks::PolicyHooks;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: PolicyHooks,
    events: EventCallback,
    pub limits: StoreLimits,
    /// Epoch ticks this call has spent running guest code.
    pub cpu_ticks: u64,
    pub cpu_budget_ticks: u64,
}

impl CallState {
    pub fn new(
        env: &[(String, String)],
        hooks: PolicyHooks,
        memory_bytes: usize,
        cpu_budget_ticks: u64,
        events: EventCallback,
    ) -> Self {
        let mut builder = WasiCtx::builder();
        // No inherited env, args, stdio, files or sockets: only what is given here.
        builder
            .envs(env)
            .stderr(EventStream::new(events.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        Self {
            wasi: builder.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            events,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(4)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            cpu_ticks: 0,
            cpu_budget_ticks,
        }
    }
}

impl CallState {
    /// The call's outbound boundary (for host interfaces other than `wasi:http`).
    pub fn outbound(&self) -> &std::sync::Arc<crate::hooks::CallOutbound> {
        self.hooks.outbound()
    }

    pub fn events(&self) -> &EventCallback {
        &self.events
    }

    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
