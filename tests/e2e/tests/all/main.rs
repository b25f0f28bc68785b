//! Every end-to-end test in one binary (one link of wasmtime instead of one per file, as wasmtime's
//! own `tests/all` does): one module per area, sharing `common` and `families`.

mod common;
mod families;

mod agents;
mod billing;
mod boundary;
mod deployment_lifecycle;
mod deployments;
mod hostile_guest;
mod inference;
mod ironclaw;
mod mcp;
mod mcp_compat;
mod money;
mod ondemand;
mod serve;
mod smoke;
mod tenants;
mod typed;
mod uploads;
mod video;
mod wasm_docs;
