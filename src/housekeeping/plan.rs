//! The housekeeping's settings, schedules and domains, as pure functions.

use crate::odoo::{format_datetime, Domain};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// The fewest days a failed or unprocessed event is kept.
pub const MIN_FAILED_EVENT_DAYS: u32 = 90;

/// `[housekeeping]`.
#[derive(Debug, Clone)]
pub struct HousekeepingSettings {
    /// When old webhook events are deleted; `None`: never.
    pub retention: Option<Cron>,
    /// When every active account's templates are synced; `None`: never.
    pub template_sync: Option<Cron>,
    /// The zone the schedules are read in.
    pub time_zone: Tz,
    /// Events processed without error are kept this many days (0: for ever).
    pub processed_event_days: u32,
    /// Events not processed or failed are kept this many days (at least 90).
    pub failed_event_days: u32,
    /// Events deleted per call.
    pub batch_size: usize,
}

impl Default for HousekeepingSettings {
    fn default() -> Self {
        HousekeepingSettings {
            retention: crate::schedule::parse(DEFAULT_RETENTION).ok(),
            template_sync: crate::schedule::parse(DEFAULT_TEMPLATE_SYNC).ok(),
            time_zone: Tz::UTC,
            processed_event_days: 30,
            failed_event_days: MIN_FAILED_EVENT_DAYS,
            batch_size: 1000,
        }
    }
}

/// Daily at 03:30.
pub const DEFAULT_RETENTION: &str = "30 3 * * *";
/// Hourly, on the hour.
pub const DEFAULT_TEMPLATE_SYNC: &str = "0 * * * *";

/// A chore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Retention,
    TemplateSync,
}

impl HousekeepingSettings {
    /// The next chore after `t`, and when (`None`: none is scheduled).
    pub fn next(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, Job)> {
        [
            (&self.retention, Job::Retention),
            (&self.template_sync, Job::TemplateSync),
        ]
        .into_iter()
        .filter_map(|(cron, job)| {
            let at = crate::schedule::next_after(cron.as_ref()?, self.time_zone, t)?;
            Some((at, job))
        })
        .min_by_key(|(at, _)| *at)
    }

    /// The events that may be deleted at `now`: processed without error and older than
    /// `processed_event_days` (unless 0), or not processed or failed and older than
    /// `failed_event_days`.
    pub fn deletable(&self, now: DateTime<Utc>) -> Domain {
        let failed_cut = now - TimeDelta::days(i64::from(self.failed_event_days));
        let failed =
            Domain::leaf("received_at", "<", format_datetime(failed_cut)).and_domain(Domain::or(
                Domain::leaf("processed", "=", false),
                Domain::leaf("processing_error", "!=", false),
            ));
        if self.processed_event_days == 0 {
            return failed;
        }
        let done_cut = now - TimeDelta::days(i64::from(self.processed_event_days));
        let done = Domain::leaf("processed", "=", true)
            .and("processing_error", "=", false)
            .and("received_at", "<", format_datetime(done_cut));
        Domain::or(done, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn the_next_chore_is_the_earliest_of_the_two() {
        let s = HousekeepingSettings::default();
        let t = Utc.with_ymd_and_hms(2026, 12, 6, 3, 10, 0).unwrap();
        assert_eq!(
            s.next(t),
            Some((
                Utc.with_ymd_and_hms(2026, 12, 6, 3, 30, 0).unwrap(),
                Job::Retention
            ))
        );
        let t = Utc.with_ymd_and_hms(2026, 12, 6, 3, 40, 0).unwrap();
        assert_eq!(
            s.next(t),
            Some((
                Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap(),
                Job::TemplateSync
            ))
        );
        let none = HousekeepingSettings {
            retention: None,
            template_sync: None,
            ..HousekeepingSettings::default()
        };
        assert_eq!(none.next(t), None);
    }

    #[test]
    fn failed_events_are_kept_longer_and_processed_ones_can_be_kept_for_ever() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 3, 30, 0).unwrap();
        let s = HousekeepingSettings::default();
        assert_eq!(
            s.deletable(now).to_value(),
            json!([
                "|",
                "&",
                "&",
                ["processed", "=", true],
                ["processing_error", "=", false],
                ["received_at", "<", "2026-11-06 03:30:00"],
                "&",
                ["received_at", "<", "2026-09-07 03:30:00"],
                "|",
                ["processed", "=", false],
                ["processing_error", "!=", false]
            ])
        );
        let forever = HousekeepingSettings {
            processed_event_days: 0,
            ..HousekeepingSettings::default()
        };
        assert_eq!(
            forever.deletable(now).to_value(),
            json!([
                "&",
                ["received_at", "<", "2026-09-07 03:30:00"],
                "|",
                ["processed", "=", false],
                ["processing_error", "!=", false]
            ])
        );
    }
}
