//! One file per benchmark section; each returns its table rows.

pub mod cold_start;
pub mod concurrent;
pub mod first_start;
pub mod instantiate;
pub mod mcp;
pub mod one_call;
pub mod size;
pub mod spend;
pub mod sse;
