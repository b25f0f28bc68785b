//! Per-call resource limits: memory (store limiter), CPU (epoch deadline), wall clock, request count
//! and body sizes. Defaults suit one agent call; tenants may be given tighter ones.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
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

/// The most host-side memory one `wasi:http` / WASI resource can hold: a header map
/// ([`FIELD_SIZE_LIMIT`]) or an outgoing body's buffered chunks (2 × [`BODY_CHUNK_SIZE`]).
pub const HOST_BYTES_PER_RESOURCE: usize = 64 << 10;
/// Bytes of one header map (names, values and their in-memory overhead).
pub const FIELD_SIZE_LIMIT: usize = 16 << 10;
/// Largest write into an outgoing body (one is buffered, one in flight).
pub const BODY_CHUNK_SIZE: usize = 32 << 10;
/// Largest `wasi:random` answer.
pub const MAX_RANDOM_BYTES: u64 = 64 << 10;

impl CallLimits {
    /// How many live resources (`ResourceTable` entries) one call may hold: a quarter of the memory
    /// budget is set aside for what they can hold on the host, the rest is the guest's linear memory.
    pub fn max_resources(&self) -> usize {
        (self.memory_bytes / 4 / HOST_BYTES_PER_RESOURCE).clamp(64, 4096)
    }

    /// The guest's linear memories together: the budget less the host-side reserve.
    pub fn linear_memory_bytes(&self) -> usize {
        self.memory_bytes
            .saturating_sub(self.max_resources() * HOST_BYTES_PER_RESOURCE)
            .max(1 << 20)
    }
}

/// The call's memory: every linear memory of the guest counts against one budget (not each memory
/// against its own), plus bounds on instances, tables and table growth.
pub struct CallMemory {
    budget: usize,
    used: usize,
}

impl CallMemory {
    pub fn new(budget: usize) -> Self {
        Self { budget, used: 0 }
    }
}

/// Table elements one call may hold (each is a pointer-sized slot on the host).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for CallMemory {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.budget {
            wasmtime::bail!(
                "the plugin asked for {} MiB of linear memory in all, over its limit of {} MiB",
                total >> 20,
                self.budget >> 20
            );
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!(
                "the plugin asked for a table of {desired} elements, over the limit of {MAX_TABLE_ELEMENTS}"
            );
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        4
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}

/// Thread CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on Linux
    // and the other Unixes this host builds for.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A call's future, charged with the CPU time of every poll: guest code and the host functions it
/// calls (random bytes, header maps, body copies) alike. Waiting for the network is not charged.
/// Epoch interruption makes the guest yield every tick, so no poll runs long past the budget.
pub struct CpuMetered<F> {
    inner: Pin<Box<F>>,
    used: Duration,
    budget: Duration,
}

impl<F> CpuMetered<F> {
    pub fn new(inner: F, budget: Duration) -> Self {
        Self {
            inner: Box::pin(inner),
            used: Duration::ZERO,
            budget,
        }
    }
}

/// The CPU budget ran out.
#[derive(Debug)]
pub struct CpuExhausted {
    pub used: Duration,
}

impl<F: Future> Future for CpuMetered<F> {
    type Output = Result<F::Output, CpuExhausted>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let start = thread_cpu_time();
        let polled = self.inner.as_mut().poll(cx);
        let spent = thread_cpu_time().saturating_sub(start);
        self.used += spent;
        match polled {
            Poll::Ready(v) => Poll::Ready(Ok(v)),
            Poll::Pending if self.used > self.budget => {
                Poll::Ready(Err(CpuExhausted { used: self.used }))
            }
            Poll::Pending => Poll::Pending,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn every_memory_of_a_call_counts_against_one_budget() {
        let mut m = CallMemory::new(16 << 20);
        // Two memories of 10 MiB each: the second passes the budget although it alone would fit.
        assert!(m.memory_growing(0, 10 << 20, None).unwrap());
        assert!(m.memory_growing(0, 10 << 20, None).is_err());
        // Growing the first within what is left still works.
        assert!(m.memory_growing(10 << 20, 15 << 20, None).unwrap());
        assert!(m.memory_growing(15 << 20, 17 << 20, None).is_err());
    }

    #[test]
    fn host_resources_are_reserved_out_of_the_memory_budget() {
        let limits = CallLimits {
            memory_bytes: 16 << 20,
            ..CallLimits::default()
        };
        assert_eq!(limits.max_resources(), 64);
        assert_eq!(
            limits.linear_memory_bytes() + limits.max_resources() * HOST_BYTES_PER_RESOURCE,
            16 << 20
        );
    }
}
