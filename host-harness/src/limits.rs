//! Per-call resource limits: memory (store limiter), CPU (epoch deadline), wall clock, request count
//! and body sizes. Defaults suit one agent call; tenants may be given tighter ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One epoch tick; CPU budgets are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct CallLimits {
    /// Whole call, including every request and wait (qwen3 may take 120 s to answer).
    pub wall_clock: Duration,
    /// Guest CPU time before the call traps, measured in epoch ticks of [`EPOCH_TICK`].
    pub cpu: Duration,
    /// Linear memory of the guest.
    pub memory_bytes: usize,
    /// Outbound requests one call may make (retries and polls count).
    pub max_requests: u32,
    pub max_response_bytes: u64,
    pub max_request_bytes: u64,
    /// Upper bound for any single request's first-byte / between-bytes timeout the guest asks for.
    pub max_request_time: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            wall_clock: Duration::from_secs(300),
            cpu: Duration::from_secs(30),
            memory_bytes: 128 << 20,
            max_requests: 200,
            max_response_bytes: 32 << 20,
            max_request_bytes: 8 << 20,
            max_request_time: Duration::from_secs(180),
        }
    }
}

impl CallLimits {
    pub fn cpu_ticks(&self) -> u64 {
        (self.cpu.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a background thread until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: wasmtime::Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("theta-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
