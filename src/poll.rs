//! What the polling loops (outbox, accounts, sale-order and invoice automations, campaigns,
//! button actions, inbound processing) share:
//!
//! - [`Failures`]: what a loop does when a step fails with Odoo: wait the poll interval doubled
//!   per failure in a row (up to 32 times, at most 30 s), say so once as a warning and then as
//!   debug lines, and start over once a step works again;
//! - [`Wake`]: when an idle loop looks again. Odoo's bus ([`crate::bus`]) wakes a loop at once
//!   when the records it cares about change; while the bus is connected an idle loop polls only
//!   at the slow rate (`bus.slow_poll_interval_secs`, 30 s), and when the bus drops it goes back
//!   to its own interval at once. Polling stays the truth: a notification lost or duplicated
//!   changes nothing but latency. A loop never sleeps past its own next timed work (a retry, a
//!   debounce, a campaign's scheduled start), which it passes as `due`.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

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

/// How an idle polling loop is woken. Cheap to clone; clones share the wake-up.
#[derive(Clone, Debug)]
pub struct Wake {
    notify: Arc<Notify>,
    bus_up: watch::Receiver<bool>,
    slow: Duration,
}

impl Default for Wake {
    /// No bus: the loop polls at its own interval and is woken only by whoever holds
    /// [`Wake::notifier`].
    fn default() -> Self {
        Wake::new(
            Arc::new(Notify::new()),
            watch::channel(false).1,
            Duration::ZERO,
        )
    }
}

impl Wake {
    /// A wake-up on `notify`; `bus_up` says whether the bus is connected, `slow` is the idle
    /// interval while it is.
    pub fn new(notify: Arc<Notify>, bus_up: watch::Receiver<bool>, slow: Duration) -> Wake {
        Wake {
            notify,
            bus_up,
            slow,
        }
    }

    /// What wakes the loop (`notify_one`: a wake-up while the loop works is kept for its next
    /// pause).
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Takes a wake-up given since the last one taken or slept on, without waiting: whether
    /// there was one (a loop that must re-read something when told, e.g. a cache).
    pub fn take(&self) -> bool {
        use futures_util::FutureExt;
        self.notify.notified().now_or_never().is_some()
    }

    /// Whether Odoo's bus is connected now.
    pub fn bus_up(&self) -> bool {
        *self.bus_up.borrow()
    }

    /// The pause of a loop with nothing to do, whose own interval is `interval` and whose next
    /// timed work (if any) is `due` from now: the slow interval while the bus is up (never
    /// shorter than `interval`), else `interval`; never past `due`.
    pub fn idle_pause(&self, interval: Duration, due: Option<Duration>) -> Duration {
        let base = if self.bus_up() {
            self.slow.max(interval)
        } else {
            interval
        };
        due.map_or(base, |due| base.min(due))
    }

    /// The pause between two steps: a loop backing off after failures sleeps it all (a wake-up
    /// must not cut its backoff short), any other as [`Wake::sleep`].
    pub async fn pause(&self, pause: Duration, backing_off: bool) {
        if backing_off {
            tokio::time::sleep(pause).await;
        } else {
            self.sleep(pause).await;
        }
    }

    /// Sleeps `pause`, or less: until the loop is woken, or until the bus goes up or down (its
    /// pause may have to change).
    pub async fn sleep(&self, pause: Duration) {
        let mut bus_up = self.bus_up.clone();
        bus_up.borrow_and_update();
        let bus_changed = async move {
            if bus_up.changed().await.is_err() {
                // No bus task: its state never changes.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.notify.notified() => {}
            () = bus_changed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_idle_loop_sleeps_slowly_while_the_bus_is_up_and_wakes_when_told_or_when_it_drops() {
        let (up_tx, up_rx) = watch::channel(false);
        let wake = Wake::new(Arc::new(Notify::new()), up_rx, Duration::from_secs(30));
        let poll = Duration::from_secs(1);
        assert_eq!(wake.idle_pause(poll, None), poll);
        up_tx.send_replace(true);
        assert_eq!(wake.idle_pause(poll, None), Duration::from_secs(30));
        assert_eq!(
            wake.idle_pause(poll, Some(Duration::from_secs(4))),
            Duration::from_secs(4)
        );
        assert_eq!(
            wake.idle_pause(Duration::from_secs(60), None),
            Duration::from_secs(60)
        );

        // A wake-up given while the loop works is kept for its next sleep.
        wake.notifier().notify_one();
        let start = tokio::time::Instant::now();
        wake.sleep(Duration::from_secs(30)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);

        // The bus dropping ends a slow sleep.
        let sleeper = {
            let wake = wake.clone();
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                wake.sleep(Duration::from_secs(30)).await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        up_tx.send_replace(false);
        assert_eq!(sleeper.await.unwrap(), Duration::from_secs(2));
        assert_eq!(wake.idle_pause(poll, None), poll);

        // A wake-up can be taken without waiting, once.
        assert!(!wake.take());
        wake.notifier().notify_one();
        assert!(wake.take());
        assert!(!wake.take());

        // A loop backing off is not cut short.
        wake.notifier().notify_one();
        let start = tokio::time::Instant::now();
        wake.pause(Duration::from_secs(4), true).await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
        wake.pause(Duration::from_secs(4), false).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(4),
            "the kept wake-up ends it"
        );

        // Without a bus task, a sleep is a plain sleep.
        let alone = Wake::default();
        let start = tokio::time::Instant::now();
        alone.sleep(Duration::from_secs(3)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

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
