//! Retry scheduling: when a message that failed for a passing reason is tried again.
//!
//! The delay grows exponentially with the message's `attempt_count`, starts at the error's own
//! suggested delay when Meta's code has one (2 s for 130429, 6 s for 131056, a day for 131049),
//! is capped, and is jittered (`backon`'s exponential backoff adds up to 100 % so retries of a
//! burst spread out). After `max_attempts` attempts the message fails for good, with the last
//! error's help.

use crate::lang::Lang;
use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use std::time::Duration;

/// The retry rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay when the error suggests none.
    pub base: Duration,
    /// Longest delay between two attempts (a longer suggestion from Meta wins).
    pub max: Duration,
    /// Attempts before the message is marked failed.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(3600),
            max_attempts: 8,
        }
    }
}

/// What to do with a message after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Back to `queued`, due at `next_attempt_at`, with the new `attempt_count`.
    Retry {
        attempt_count: u32,
        next_attempt_at: DateTime<Utc>,
    },
    /// Attempts exhausted: mark it failed.
    GiveUp { attempt_count: u32 },
}

impl RetryPolicy {
    /// The delay before the attempt that follows `attempts_made` failed ones (1 after the first
    /// failure), starting from `hint` when the error suggests one.
    pub fn delay(&self, attempts_made: u32, hint: Option<Duration>) -> Duration {
        let first = hint.unwrap_or(self.base).max(Duration::from_millis(100));
        let max = self.max.max(first);
        let index = attempts_made.saturating_sub(1) as usize;
        ExponentialBuilder::default()
            .with_min_delay(first)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(index)
            .unwrap_or(max)
    }

    /// Decides after a retryable failure of a message that had `attempt_count` failed attempts
    /// before this one.
    pub fn decide(
        &self,
        attempt_count: u32,
        hint: Option<Duration>,
        now: DateTime<Utc>,
    ) -> RetryDecision {
        let attempts = attempt_count.saturating_add(1);
        if attempts >= self.max_attempts {
            return RetryDecision::GiveUp {
                attempt_count: attempts,
            };
        }
        let delay = self.delay(attempts, hint);
        let delay = TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(24));
        RetryDecision::Retry {
            attempt_count: attempts,
            next_attempt_at: now + delay,
        }
    }

    /// The help written when the attempts are exhausted, in `lang`.
    pub fn give_up_help(&self, attempts: u32, last_help: &str, lang: Lang) -> String {
        tr!(
            lang,
            "WhatsApp refused this message {attempts} times for a passing reason, so the daemon \
             stopped trying. The last answer was: {last_help} Click 'Retry' on the message once \
             the cause is gone.",
            "WhatsApp a refusé ce message {attempts} fois pour une raison passagère, le démon a \
             donc cessé d'essayer. La dernière réponse était : {last_help} Cliquez sur \
             « Réessayer » sur le message une fois la cause disparue."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn delays_grow_exponentially_with_jitter() {
        let p = RetryPolicy::default();
        for (attempt, low) in [(1u32, 5.0), (2, 10.0), (3, 20.0), (4, 40.0)] {
            for _ in 0..50 {
                let d = p.delay(attempt, None);
                assert!(
                    d >= secs(low) && d < secs(2.0 * low),
                    "attempt {attempt}: {d:?} not in [{low}, {})",
                    2.0 * low
                );
            }
        }
        // Not all the same: jittered.
        let samples: std::collections::HashSet<Duration> =
            (0..20).map(|_| p.delay(1, None)).collect();
        assert!(samples.len() > 1);
    }

    #[test]
    fn delays_are_capped() {
        let p = RetryPolicy::default();
        let d = p.delay(30, None);
        assert!(d >= secs(3600.0) && d < secs(7200.0), "{d:?}");
    }

    #[test]
    fn the_errors_hint_is_the_first_delay() {
        let p = RetryPolicy::default();
        let d = p.delay(1, Some(Duration::from_secs(6)));
        assert!(d >= secs(6.0) && d < secs(12.0), "{d:?}");
        // A day for 131049, beyond the one-hour cap.
        let d = p.delay(1, Some(Duration::from_secs(86_400)));
        assert!(d >= secs(86_400.0), "{d:?}");
    }

    #[test]
    fn attempts_are_bounded() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        match p.decide(0, Some(Duration::from_secs(2)), now) {
            RetryDecision::Retry {
                attempt_count,
                next_attempt_at,
            } => {
                assert_eq!(attempt_count, 1);
                let wait = next_attempt_at - now;
                assert!(wait >= TimeDelta::seconds(2) && wait < TimeDelta::seconds(4));
            }
            other => panic!("expected a retry, got {other:?}"),
        }
        assert!(matches!(
            p.decide(1, None, now),
            RetryDecision::Retry {
                attempt_count: 2,
                ..
            }
        ));
        assert_eq!(
            p.decide(2, None, now),
            RetryDecision::GiveUp { attempt_count: 3 }
        );
        let help = p.give_up_help(3, "Meta had an internal error.", Lang::En);
        assert!(help.contains("3 times") && help.contains("Meta had an internal error."));
        let aide = p.give_up_help(3, "Meta a eu une erreur interne.", Lang::Fr);
        assert!(
            aide.contains("3 fois") && aide.contains("« Réessayer »"),
            "{aide}"
        );
    }
}
