//! Host-side bindings of the `theta:edgecloud/command-plugin` world (the by-name part of `plugin`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "theta:edgecloud/command-plugin",
    exports: { default: async },
    require_store_data_send: true,
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:cli": wasmtime_wasi::p2::bindings::cli,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
});

pub use exports::theta::edgecloud::commands::CommandInfo;
pub use exports::theta::edgecloud::types::{Effect, ThetaError};
