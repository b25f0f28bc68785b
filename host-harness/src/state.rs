//! The data of one call's `Store`: a fresh WASI context (no files, no sockets, non-secret env only), the
//! HTTP context with the policy hooks, and the memory limiter. Nothing here outlives the call.

use crate::events::{EventCallback, EventStream};
use crate::hooks::PolicyHooks;
use crate::limits::{CallLimits, CallMemory, FIELD_SIZE_LIMIT, MAX_RANDOM_BYTES};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: PolicyHooks,
    events: EventCallback,
    pub limits: CallMemory,
}

impl CallState {
    pub fn new(
        env: &[(String, String)],
        hooks: PolicyHooks,
        limits: &CallLimits,
        events: EventCallback,
    ) -> Self {
        let mut builder = WasiCtx::builder();
        // No inherited env, args, stdio, files or sockets: only what is given here.
        builder
            .envs(env)
            .stderr(EventStream::new(events.clone()))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // Host work per call is bounded per host call, so it stays inside the CPU budget.
            .max_random_size(MAX_RANDOM_BYTES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        // Host-side resources (header maps, bodies, streams) live outside linear memory: their
        // number is bounded so that what they can hold fits the memory budget's host share.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources());
        Self {
            wasi: builder.build(),
            http,
            table,
            hooks,
            events,
            limits: CallMemory::new(limits.linear_memory_bytes()),
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
