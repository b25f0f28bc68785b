//! The wasmtime host for the Theta EdgeCloud plugin.
//!
//! The plugin is untrusted: every outbound request it makes passes through [`hooks::PolicyHooks`], which
//! checks it against [`policy`] (allowlisted HTTPS hosts, public addresses only, dry-run), injects the
//! credentials from [`credentials`] at the boundary, and records it in the [`audit`] trail. The guest never
//! sees a key. [`runtime::Runtime`] compiles the component once (cached on disk), and every call gets a
//! fresh [`wasmtime::Store`].

pub mod audit;
pub mod background;
pub mod bindings;
pub mod cache;
pub mod config;
pub mod credentials;
#[cfg(feature = "demo")]
pub mod demo;
pub mod events;
pub mod hooks;
pub mod ironclaw;
pub mod janitor;
pub mod limits;
pub mod mcp;
pub mod net;
pub mod policy;
pub mod report;
pub mod runtime;
pub mod sandbox;
pub mod setup;
pub mod smoke;
pub mod smoke_inputs;
pub mod spend;
pub mod state;
pub mod tenant;
pub mod text;

pub use config::HostConfig;
// For embedders that bind the full `plugin` world themselves (see `Runtime::instantiate_raw_as`).
pub use runtime::{CallOutput, Runtime};
pub use {wasmtime, wasmtime_wasi, wasmtime_wasi_http};
