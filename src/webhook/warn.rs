//! A warning that cannot flood the log: at most one line per period, saying how many were held
//! back since the previous line. Refused webhook signatures use it, since anybody on the
//! internet can send those, and so do webhook batches Odoo does not store (every batch fails the
//! same way while the daemon's user lacks a right or Odoo is away; the right itself is said once
//! at start, see `crate::daemon`).

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts occurrences and lets one through per period.
pub struct RateLimitedWarning<C: Clock = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    held_back: AtomicU64,
}

impl RateLimitedWarning<DefaultClock> {
    /// At most one line per `period` (a zero period is taken as one second).
    pub fn new(period: Duration) -> Self {
        Self::with_clock(period, DefaultClock::default())
    }
}

impl<C: Clock> RateLimitedWarning<C> {
    /// The same, on a given clock (tests use a fake one).
    pub fn with_clock(period: Duration, clock: C) -> Self {
        let quota =
            Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
        RateLimitedWarning {
            limiter: RateLimiter::direct_with_clock(quota, clock),
            held_back: AtomicU64::new(0),
        }
    }

    /// Records one occurrence. Returns `Some(n)` when this one should be logged, `n` being how
    /// many were held back since the last logged one; `None` when it should stay quiet.
    pub fn occurrence(&self) -> Option<u64> {
        match self.limiter.check() {
            Ok(()) => Some(self.held_back.swap(0, Ordering::Relaxed)),
            Err(_) => {
                self.held_back.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn one_line_per_period_with_the_count_held_back() {
        let clock = FakeRelativeClock::default();
        let warn = RateLimitedWarning::with_clock(Duration::from_secs(10), clock.clone());
        assert_eq!(warn.occurrence(), Some(0));
        for _ in 0..41 {
            assert_eq!(warn.occurrence(), None);
        }
        clock.advance(Duration::from_secs(9));
        assert_eq!(warn.occurrence(), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(warn.occurrence(), Some(42));
        assert_eq!(warn.occurrence(), None);
        clock.advance(Duration::from_secs(10));
        assert_eq!(warn.occurrence(), Some(1));
    }
}
