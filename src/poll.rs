//! What the polling loops (outbox, sale-order and invoice automations, button actions) do when
//! a step fails with Odoo: wait the poll interval doubled per failure in a row (up to 32 times,
//! at most 30 s), say so once as a warning and then as debug lines, and start over once a step
//! works again.

use std::fmt::Display;
use std::time::Duration;

/// The longest wait after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Failures in a row of one loop.
#[derive(Debug, Default)]
pub struct Failures {
    count: u32,
}

impl Failures {
    /// A step failed with `error`: logs it (`who` names the loop, `then` says what happens
    /// meanwhile) and returns how long to wait before the next step.
    pub fn failed(
        &mut self,
        error: &dyn Display,
        poll_interval: Duration,
        who: &str,
        then: &str,
    ) -> Duration {
        self.count = self.count.saturating_add(1);
        if self.count == 1 {
            tracing::warn!(error = %error, "{who}: cannot work with Odoo; {then}");
        } else {
            tracing::debug!(error = %error, failures = self.count, "{who}: Odoo still failing");
        }
        poll_interval
            .saturating_mul(2u32.saturating_pow(self.count.min(5)))
            .min(MAX_BACKOFF)
    }

    /// A step worked; returns how many failed before it (0: none).
    pub fn reset(&mut self) -> u32 {
        std::mem::take(&mut self.count)
    }

    /// Failures in a row so far.
    pub fn count(&self) -> u32 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_per_failure_up_to_thirty_seconds_and_starts_over_after_a_success() {
        let mut f = Failures::default();
        let poll = Duration::from_millis(500);
        let waits: Vec<u64> = (0..7)
            .map(|_| f.failed(&"down", poll, "test", "retrying").as_millis() as u64)
            .collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16000, 16000, 16000]);
        assert_eq!(
            f.failed(&"down", Duration::from_secs(2), "test", "retrying"),
            MAX_BACKOFF
        );
        assert_eq!(f.reset(), 8);
        assert_eq!(f.count(), 0);
        assert_eq!(
            f.failed(&"down", poll, "test", "retrying"),
            Duration::from_secs(1)
        );
    }
}
