//! The host's own outbound transport: one shared keep-alive client for every call and tenant.

pub mod body;
pub mod client;
pub mod resolver;

pub use client::{OutboundClient, Upstream};
