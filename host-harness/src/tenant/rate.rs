//! Per-tenant request rate (token bucket over outbound requests) and concurrent-call limits.

use std::sync::Mutex;
use std::time::Instant;

/// A token bucket: `per_minute` requests, refilled continuously, bursting up to `per_minute`.
pub struct RateLimiter {
    per_minute: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self {
            per_minute,
            state: Mutex::new((per_minute, Instant::now())),
        }
    }

    /// Takes one token, or says how many seconds until one is available.
    pub fn try_acquire(&self) -> Result<(), f64> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *st;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_minute / 60.0)
            .min(self.per_minute);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) * 60.0 / self.per_minute)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_up_to_the_rate_then_refuses() {
        let r = RateLimiter::new(3);
        assert!(r.try_acquire().is_ok());
        assert!(r.try_acquire().is_ok());
        assert!(r.try_acquire().is_ok());
        let wait = r.try_acquire().unwrap_err();
        assert!(wait > 0.0 && wait <= 20.0, "{wait}");
    }
}
